import { defineStore } from 'pinia';
import { ref } from 'vue';

import * as api from '@/api/bindings';
import { HISTORY_MAX_LIMIT, type Message, type Uuid } from '@/api/bindings';
import { firstUnreadSeq } from '@/lib/timeline';

/** Number of messages requested when a room opens, and per page while scrolling. */
export const PAGE_SIZE = 50;
/** Maximum number of messages requested when a room opens with many unread. */
export const MAX_INITIAL_LIMIT = 500;
/**
 * Maximum number of messages a timeline keeps while the user scrolls. Loading a page at
 * one end drops as many from the other, so memory stays flat in a long history.
 */
export const WINDOW_SIZE = 300;
/** Messages loaded around a message that the timeline jumps to. */
export const AROUND_SIZE = 100;
/** Sequence number above every real one, for "before the newest". */
const AFTER_ALL = Number.MAX_SAFE_INTEGER;

/** The part of a room's history that its timeline shows: a window of contiguous messages. */
export interface RoomTimeline {
  /** Oldest first, without gaps. */
  messages: Message[];
  loadingOlder: boolean;
  loadingNewer: boolean;
  /** True once the window starts at the room's first message. */
  complete: boolean;
  /** True while the window ends at the newest cached message, so new messages join it. */
  atNewest: boolean;
  /** Sequence number of the first unread message, before which the "new messages" divider goes. */
  firstUnreadSeq: number | null;
  /** The message to scroll to and highlight once it is shown, set by `jumpTo`. */
  focusId: Uuid | null;
}

export const useTimelineStore = defineStore('timeline', () => {
  const rooms = ref<Record<Uuid, RoomTimeline>>({});
  /** Messages to jump to when their room opens, e.g. a search hit in another room. */
  const pendingFocus = ref<Record<Uuid, Uuid>>({});

  function get(roomId: Uuid): RoomTimeline | undefined {
    return rooms.value[roomId];
  }

  function startsAtFirst(messages: Message[]): boolean {
    return messages[0]?.seq === 1;
  }

  /** Loads a room's newest messages and places the unread divider for `unread` messages. */
  async function open(roomId: Uuid, unread: number): Promise<void> {
    const limit = Math.min(Math.max(PAGE_SIZE, unread + 1), MAX_INITIAL_LIMIT);
    const newestFirst = await api.history(roomId, limit);
    const messages = [...newestFirst].reverse();
    rooms.value[roomId] = {
      messages,
      loadingOlder: false,
      loadingNewer: false,
      complete: startsAtFirst(messages),
      atNewest: true,
      firstUnreadSeq: firstUnreadSeq(messages, unread),
      focusId: null,
    };
  }

  /** Shows the newest messages again, e.g. after the user scrolled far back. */
  async function jumpToNewest(roomId: Uuid): Promise<void> {
    await open(roomId, 0);
  }

  /** Rereads a loaded room's window after the cache changed; rooms not loaded are left alone. */
  async function refresh(roomId: Uuid): Promise<void> {
    const timeline = rooms.value[roomId];
    if (!timeline) {
      return;
    }
    const oldest = timeline.messages[0];
    if (!oldest) {
      const newestFirst = await api.history(roomId, PAGE_SIZE);
      timeline.messages = [...newestFirst].reverse();
      timeline.complete = startsAtFirst(timeline.messages);
      return;
    }
    // The same window, plus whatever arrived after it when it ends at the newest.
    const limit = timeline.atNewest
      ? HISTORY_MAX_LIMIT
      : Math.min(timeline.messages.length, HISTORY_MAX_LIMIT);
    const page = await api.historyPage(
      roomId,
      { after: oldest.seq - 1 },
      limit,
    );
    if (timeline.atNewest && page.length >= HISTORY_MAX_LIMIT) {
      // So much arrived that the window would pass its bound: start again at the newest.
      const newestFirst = await api.history(roomId, WINDOW_SIZE);
      timeline.messages = [...newestFirst].reverse();
      timeline.complete = startsAtFirst(timeline.messages);
      return;
    }
    timeline.messages = page;
  }

  /** Loads the page before the window; returns how many messages were added. */
  async function loadOlder(roomId: Uuid): Promise<number> {
    const timeline = rooms.value[roomId];
    if (!timeline || timeline.loadingOlder || timeline.complete) {
      return 0;
    }
    timeline.loadingOlder = true;
    try {
      const before = timeline.messages[0]?.seq ?? AFTER_ALL;
      const page = await api.historyPage(roomId, { before }, PAGE_SIZE);
      // A refresh may have changed the window meanwhile, so only older messages join it.
      const oldest = timeline.messages[0]?.seq ?? AFTER_ALL;
      const older = page.filter((message) => message.seq < oldest);
      if (page.length === 0) {
        timeline.complete = true;
        return 0;
      }
      let messages = [...older, ...timeline.messages];
      if (messages.length > WINDOW_SIZE) {
        messages = messages.slice(0, WINDOW_SIZE);
        timeline.atNewest = false;
      }
      timeline.messages = messages;
      timeline.complete = startsAtFirst(messages);
      return older.length;
    } finally {
      timeline.loadingOlder = false;
    }
  }

  /** Loads the page after the window, when it does not end at the newest message. */
  async function loadNewer(roomId: Uuid): Promise<number> {
    const timeline = rooms.value[roomId];
    const newestShown = timeline?.messages[timeline.messages.length - 1];
    if (
      !timeline ||
      timeline.loadingNewer ||
      timeline.atNewest ||
      !newestShown
    ) {
      return 0;
    }
    timeline.loadingNewer = true;
    try {
      const page = await api.historyPage(
        roomId,
        { after: newestShown.seq },
        PAGE_SIZE,
      );
      const newest = timeline.messages[timeline.messages.length - 1]?.seq ?? 0;
      const newer = page.filter((message) => message.seq > newest);
      let messages = [...timeline.messages, ...newer];
      if (messages.length > WINDOW_SIZE) {
        messages = messages.slice(messages.length - WINDOW_SIZE);
      }
      timeline.messages = messages;
      timeline.complete = startsAtFirst(messages);
      if (page.length < PAGE_SIZE) {
        timeline.atNewest = true;
      }
      return newer.length;
    } finally {
      timeline.loadingNewer = false;
    }
  }

  /**
   * Shows the messages around `messageId` and marks it for the view to scroll to, e.g. a
   * reply's parent or a search hit. A message already in the window is only marked.
   */
  async function jumpTo(roomId: Uuid, messageId: Uuid): Promise<void> {
    const current = rooms.value[roomId];
    if (current?.messages.some((message) => message.id === messageId)) {
      current.focusId = messageId;
      return;
    }
    const messages = await api.historyAround(roomId, messageId, AROUND_SIZE);
    const newest = messages[messages.length - 1]?.seq ?? 0;
    const beyond = await api.historyPage(roomId, { after: newest }, 1);
    rooms.value[roomId] = {
      messages,
      loadingOlder: false,
      loadingNewer: false,
      complete: startsAtFirst(messages),
      atNewest: beyond.length === 0,
      firstUnreadSeq: current?.firstUnreadSeq ?? null,
      focusId: messageId,
    };
  }

  function clearFocus(roomId: Uuid): void {
    const timeline = rooms.value[roomId];
    if (timeline) {
      timeline.focusId = null;
    }
  }

  /** Remembers a message to jump to when its room opens next. */
  function requestFocus(roomId: Uuid, messageId: Uuid): void {
    pendingFocus.value[roomId] = messageId;
  }

  /** Returns the message to jump to in a room that is opening, and clears it. */
  function takePendingFocus(roomId: Uuid): Uuid | null {
    const messageId = pendingFocus.value[roomId] ?? null;
    delete pendingFocus.value[roomId];
    return messageId;
  }

  /** The newest message's sequence number, `null` while the window ends before it. */
  function newestSeq(roomId: Uuid): number | null {
    const timeline = rooms.value[roomId];
    if (!timeline?.atNewest) {
      return null;
    }
    return timeline.messages[timeline.messages.length - 1]?.seq ?? null;
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
    pendingFocus.value = {};
  }

  return {
    rooms,
    get,
    open,
    jumpToNewest,
    refresh,
    loadOlder,
    loadNewer,
    jumpTo,
    clearFocus,
    requestFocus,
    takePendingFocus,
    newestSeq,
    lastOwnMessage,
    clearUnreadDivider,
    reset,
  };
});
