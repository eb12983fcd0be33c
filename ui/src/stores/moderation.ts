import { defineStore } from 'pinia';
import { ref } from 'vue';

import * as api from '@/api/bindings';
import type { Ban, Message, Role, Room, RoomFile, Uuid } from '@/api/bindings';

import { useRoomsStore } from './rooms';

/**
 * Moderator actions, a room's pins and files from the server, and the ways of joining
 * others: invites and direct messages. Every call needs the server.
 */
export const useModerationStore = defineStore('moderation', () => {
  const pins = ref<Record<Uuid, Message[]>>({});
  const files = ref<Record<Uuid, RoomFile[]>>({});
  /** The users banned from each room, loaded only for moderators. */
  const bans = ref<Record<Uuid, Ban[]>>({});

  async function loadBans(roomId: Uuid): Promise<Ban[]> {
    const list = await api.bans(roomId);
    bans.value[roomId] = list;
    return list;
  }

  async function unban(roomId: Uuid, userId: Uuid): Promise<void> {
    bans.value[roomId] = await api.unbanMember(roomId, userId);
  }

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
    // The ban succeeded, so a failure to refresh the list only leaves it stale.
    await loadBans(roomId).catch((failure) => {
      console.warn(`Reloading the bans of room ${roomId} failed:`, failure);
    });
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
    bans,
    loadBans,
    unban,
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
