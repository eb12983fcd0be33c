import { defineStore } from 'pinia';
import { ref } from 'vue';

import * as api from '@/api/bindings';
import type { Message, Role, Room, RoomFile, Uuid } from '@/api/bindings';

import { useRoomsStore } from './rooms';

/**
 * Moderator actions, a room's pins and files from the server, and the ways of joining
 * others: invites and direct messages. Every call needs the server.
 */
export const useModerationStore = defineStore('moderation', () => {
  const pins = ref<Record<Uuid, Message[]>>({});
  const files = ref<Record<Uuid, RoomFile[]>>({});

  async function loadPins(roomId: Uuid): Promise<Message[]> {
    const list = await api.pins(roomId);
    pins.value[roomId] = list;
    return list;
  }

  async function loadFiles(roomId: Uuid): Promise<RoomFile[]> {
    const list = await api.roomFiles(roomId);
    files.value[roomId] = list;
    return list;
  }

  async function updateRoom(
    roomId: Uuid,
    changes: Parameters<typeof api.updateRoom>[1],
  ): Promise<Room> {
    const room = await api.updateRoom(roomId, changes);
    await useRoomsStore().refresh();
    return room;
  }

  async function kick(roomId: Uuid, userId: Uuid): Promise<void> {
    useRoomsStore().members[roomId] = await api.kickMember(roomId, userId);
  }

  async function ban(roomId: Uuid, userId: Uuid): Promise<void> {
    useRoomsStore().members[roomId] = await api.banMember(roomId, userId);
  }

  async function transferOwnership(roomId: Uuid, userId: Uuid): Promise<void> {
    useRoomsStore().members[roomId] = await api.transferOwnership(
      roomId,
      userId,
    );
  }

  async function setRole(
    roomId: Uuid,
    userId: Uuid,
    role: Role,
  ): Promise<void> {
    useRoomsStore().members[roomId] = await api.setMemberRole(
      roomId,
      userId,
      role,
    );
  }

  async function setPin(message: Message, pinned: boolean): Promise<void> {
    await api.setPin(message.id, pinned);
    await loadPins(message.room_id);
  }

  /** Joins the room of an invite code and opens it. */
  async function acceptInvite(code: string): Promise<Room> {
    const room = await api.acceptInvite(code);
    const rooms = useRoomsStore();
    await rooms.refresh();
    rooms.select(room.id);
    return room;
  }

  /** Opens the direct room with `username`, creating it when there is none. */
  async function openDirect(username: string): Promise<Room> {
    const room = await api.openDirect(username);
    const rooms = useRoomsStore();
    await rooms.refresh();
    rooms.select(room.id);
    return room;
  }

  function reset(): void {
    pins.value = {};
    files.value = {};
  }

  return {
    pins,
    files,
    loadPins,
    loadFiles,
    updateRoom,
    kick,
    ban,
    setRole,
    transferOwnership,
    setPin,
    acceptInvite,
    openDirect,
    reset,
  };
});
