import { defineStore } from 'pinia';
import { ref } from 'vue';

import * as api from '@/api/bindings';
import { HISTORY_MAX_LIMIT, type Message, type Uuid } from '@/api/bindings';
import { firstUnreadSeq } from '@/lib/timeline';

/** Number of messages requested when a room opens. */
export const PAGE_SIZE = 50;
/** Maximum number of messages requested when a room opens with many unread. */
export const MAX_INITIAL_LIMIT = 500;

export interface RoomTimeline {
  /** Oldest first. */
  messages: Message[];
  /** How many of the newest messages to ask `history` for. */
  limit: number;
  loadingOlder: boolean;
  /**
   * True once `load_older` found nothing older, so the room's first message is loaded, or
   * once `limit` reached {@link HISTORY_MAX_LIMIT}, the most one `history` call returns.
   */
  complete: boolean;
  /** Sequence number of the first unread message, before which the "new messages" divider goes. */
  firstUnreadSeq: number | null;
}

export const useTimelineStore = defineStore('timeline', () => {
  const rooms = ref<Record<Uuid, RoomTimeline>>({});

  function get(roomId: Uuid): RoomTimeline | undefined {
    return rooms.value[roomId];
  }

  /** Loads a room's newest messages and places the unread divider for `unread` messages. */
  async function open(roomId: Uuid, unread: number): Promise<void> {
    const limit = Math.min(Math.max(PAGE_SIZE, unread + 1), MAX_INITIAL_LIMIT);
    const newestFirst = await api.history(roomId, limit);
    const messages = [...newestFirst].reverse();
    rooms.value[roomId] = {
      messages,
      limit,
      loadingOlder: false,
      complete: rooms.value[roomId]?.complete ?? false,
      firstUnreadSeq: firstUnreadSeq(messages, unread),
    };
  }

  /** Refetches a loaded room after the cache changed; rooms not loaded are left alone. */
  async function refresh(roomId: Uuid): Promise<void> {
    const timeline = rooms.value[roomId];
    if (!timeline) {
      return;
    }
    const newestFirst = await api.history(roomId, timeline.limit);
    timeline.messages = [...newestFirst].reverse();
  }

  /** Fetches the next older page; returns how many messages were added. */
  async function loadOlder(roomId: Uuid): Promise<number> {
    const timeline = rooms.value[roomId];
    if (!timeline || timeline.loadingOlder || timeline.complete) {
      return 0;
    }
    timeline.loadingOlder = true;
    try {
      const added = await api.loadOlder(roomId);
      if (!(added > 0)) {
        timeline.complete = true;
        return 0;
      }
      // NOTE: a timeline shows at most HISTORY_MAX_LIMIT messages; older ones stay
      // reachable through search only.
      timeline.limit = Math.min(timeline.limit + added, HISTORY_MAX_LIMIT);
      timeline.complete = timeline.limit >= HISTORY_MAX_LIMIT;
      await refresh(roomId);
      return added;
    } finally {
      timeline.loadingOlder = false;
    }
  }

  function newestSeq(roomId: Uuid): number | null {
    const messages = rooms.value[roomId]?.messages ?? [];
    return messages.length > 0
      ? (messages[messages.length - 1]?.seq ?? null)
      : null;
  }

  /** Finds the newest message of `userId` in the room that is not deleted. */
  function lastOwnMessage(roomId: Uuid, userId: Uuid): Message | null {
    const messages = rooms.value[roomId]?.messages ?? [];
    for (let index = messages.length - 1; index >= 0; index -= 1) {
      const message = messages[index];
      if (message && message.author.id === userId && !message.deleted) {
        return message;
      }
    }
    return null;
  }

  function clearUnreadDivider(roomId: Uuid): void {
    const timeline = rooms.value[roomId];
    if (timeline) {
      timeline.firstUnreadSeq = null;
    }
  }

  function reset(): void {
    rooms.value = {};
  }

  return {
    rooms,
    get,
    open,
    refresh,
    loadOlder,
    newestSeq,
    lastOwnMessage,
    clearUnreadDivider,
    reset,
  };
});
