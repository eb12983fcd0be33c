import { defineStore } from 'pinia';
import { computed, ref } from 'vue';

import * as api from '@/api/bindings';
import type { CachedRoom, Member, Room, Uuid } from '@/api/bindings';
import { countUnreadMentions } from '@/lib/mentions';
import { buildRoomTree } from '@/lib/room-tree';

import { useSessionStore } from './session';

/** Maximum number of unread messages read back per room to count mentions of the user. */
export const MENTION_SCAN_LIMIT = 50;

export const useRoomsStore = defineStore('rooms', () => {
  const rooms = ref<CachedRoom[]>([]);
  const selectedId = ref<Uuid | null>(null);
  const members = ref<Record<Uuid, Member[]>>({});
  const mentionCounts = ref<Record<Uuid, number>>({});

  const tree = computed(() => buildRoomTree(rooms.value, mentionCounts.value));
  const selected = computed(
    () =>
      rooms.value.find((cached) => cached.room.id === selectedId.value) ?? null,
  );

  function find(roomId: Uuid): CachedRoom | undefined {
    return rooms.value.find((cached) => cached.room.id === roomId);
  }

  async function refresh(): Promise<void> {
    rooms.value = await api.listRooms();
    await Promise.all([countMentions(), loadDirectMembers()]);
  }

  // NOTE: mentions are counted among at most the MENTION_SCAN_LIMIT newest unread
  // messages of each room, so a room with more unread may show a lower count.
  async function countMentions(): Promise<void> {
    const userId = useSessionStore().userId;
    if (!userId) {
      return;
    }
    const counts: Record<Uuid, number> = {};
    await Promise.all(
      rooms.value
        .filter((cached) => cached.unread > 0)
        .map(async (cached) => {
          const limit = Math.min(cached.unread, MENTION_SCAN_LIMIT);
          const messages = await api.history(cached.room.id, limit);
          counts[cached.room.id] = countUnreadMentions(
            messages,
            cached.unread,
            userId,
          );
        }),
    );
    mentionCounts.value = counts;
  }

  /** Loads the members of direct rooms, whose names are their participants. */
  async function loadDirectMembers(): Promise<void> {
    const direct = rooms.value.filter(
      (cached) =>
        cached.room.kind === 'direct' && !members.value[cached.room.id],
    );
    await Promise.all(direct.map((cached) => loadMembers(cached.room.id)));
  }

  async function loadMembers(roomId: Uuid): Promise<Member[]> {
    const list = await api.members(roomId);
    members.value[roomId] = list;
    return list;
  }

  function select(roomId: Uuid | null): void {
    selectedId.value = roomId;
  }

  /** Marks the room read up to `seq` and clears its badges without waiting for a refresh. */
  async function markRead(roomId: Uuid, seq: number): Promise<void> {
    await api.markRead(roomId, seq);
    const cached = find(roomId);
    if (cached) {
      cached.unread = 0;
    }
    mentionCounts.value = { ...mentionCounts.value, [roomId]: 0 };
  }

  /**
   * Lists the participants of a direct room other than the user, by display name, or `null`
   * while the members are not loaded.
   */
  function directParticipants(room: Room): string | null {
    const list = members.value[room.id];
    if (!list) {
      return null;
    }
    const userId = useSessionStore().userId;
    const others = list.filter((member) => member.user.id !== userId);
    // A conversation with oneself is named after oneself.
    const named = others.length > 0 ? others : list;
    return named
      .map((member) => member.user.display_name || member.user.username)
      .join(', ');
  }

  async function join(name: string, password: string | null): Promise<Room> {
    const room = await api.joinRoom(name, password);
    await refresh();
    select(room.id);
    return room;
  }

  async function create(
    name: string,
    isPrivate: boolean,
    parent: string | null,
    password: string | null,
  ): Promise<Room> {
    const room = await api.createRoom(name, isPrivate, parent, password);
    await refresh();
    select(room.id);
    return room;
  }

  function reset(): void {
    rooms.value = [];
    selectedId.value = null;
    members.value = {};
    mentionCounts.value = {};
  }

  return {
    rooms,
    selectedId,
    selected,
    members,
    mentionCounts,
    tree,
    find,
    refresh,
    loadMembers,
    select,
    markRead,
    directParticipants,
    join,
    create,
    reset,
  };
});
