import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import { HISTORY_MAX_LIMIT, type Message } from '@/api/bindings';
import { PAGE_SIZE, WINDOW_SIZE, useTimelineStore } from '@/stores/timeline';

import { ALICE, ME, makeMessage } from '../helpers/factories';

const invokeMock = vi.mocked(invoke);

interface PageArgs {
  limit: number;
  before: number | null;
  after: number | null;
  messageId: string;
}

/**
 * Serves the history commands from `messages` as the shell does over its cache:
 * `history` newest first, `history_page` and `history_around` oldest first.
 */
function serveHistory(messages: Message[]) {
  const sorted = [...messages].sort((a, b) => a.seq - b.seq);
  invokeMock.mockImplementation(async (command: string, args?: unknown) => {
    const { limit, before, after, messageId } = (args ?? {}) as PageArgs;
    switch (command) {
      case 'history':
        return [...sorted].reverse().slice(0, limit);
      case 'history_page':
        if (after !== null) {
          return sorted.filter((m) => m.seq > after).slice(0, limit);
        }
        return sorted.filter((m) => m.seq < (before ?? 0)).slice(-limit);
      case 'history_around': {
        const index = sorted.findIndex((m) => m.id === messageId);
        const newer = Math.floor(limit / 2);
        const start = Math.max(0, index + 1 - (limit - newer));
        return sorted.slice(start, index + 1 + newer);
      }
      default:
        return undefined;
    }
  });
}

/** Messages numbered 1 to `count`. */
function numbered(count: number): Message[] {
  return Array.from({ length: count }, (_, index) =>
    makeMessage({ id: `message-${index + 1}`, seq: index + 1 }),
  );
}

function seqs(messages: Message[] | undefined): number[] {
  return (messages ?? []).map((message) => message.seq);
}

beforeEach(() => {
  setActivePinia(createPinia());
  invokeMock.mockReset();
});

describe('timeline store', () => {
  it('open orders messages oldest first', async () => {
    serveHistory(numbered(4));
    const timeline = useTimelineStore();

    await timeline.open('room-1', 2);

    const state = timeline.get('room-1');
    expect(seqs(state?.messages)).toEqual([1, 2, 3, 4]);
    expect(state?.firstUnreadSeq).toBe(3);
    expect(state?.complete).toBe(true);
    expect(state?.atNewest).toBe(true);
    expect(invokeMock).toHaveBeenCalledWith('history', {
      roomId: 'room-1',
      limit: PAGE_SIZE,
    });
  });

  it('open requests more when many unread', async () => {
    serveHistory([]);
    const timeline = useTimelineStore();

    await timeline.open('room-1', 120);

    expect(invokeMock).toHaveBeenCalledWith('history', {
      roomId: 'room-1',
      limit: 121,
    });
  });

  it('loadOlder prepends the page before', async () => {
    serveHistory(numbered(120));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    const added = await timeline.loadOlder('room-1');

    const state = timeline.get('room-1');
    expect(added).toBe(PAGE_SIZE);
    expect(state?.messages[0]?.seq).toBe(21);
    expect(state?.messages.at(-1)?.seq).toBe(120);
    expect(state?.complete).toBe(false);
    expect(invokeMock).toHaveBeenLastCalledWith('history_page', {
      roomId: 'room-1',
      before: 71,
      after: null,
      limit: PAGE_SIZE,
    });
  });

  it('loadOlder completes at the first message', async () => {
    serveHistory(numbered(60));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    expect(await timeline.loadOlder('room-1')).toBe(10);
    expect(await timeline.loadOlder('room-1')).toBe(0);

    expect(timeline.get('room-1')?.complete).toBe(true);
    expect(
      invokeMock.mock.calls.filter(([name]) => name === 'history_page'),
    ).toHaveLength(1);
  });

  it('loadOlder on an empty window completes', async () => {
    serveHistory([]);
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    expect(await timeline.loadOlder('room-1')).toBe(0);

    expect(timeline.get('room-1')?.complete).toBe(true);
  });

  it('window stays bounded while scrolling back', async () => {
    serveHistory(numbered(10_000));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    let pages = 0;
    while (!timeline.get('room-1')?.complete && pages < 1_000) {
      await timeline.loadOlder('room-1');
      pages += 1;
    }

    const state = timeline.get('room-1');
    expect(state?.complete).toBe(true);
    expect(state?.messages).toHaveLength(WINDOW_SIZE);
    expect(state?.messages[0]?.seq).toBe(1);
    expect(state?.messages.at(-1)?.seq).toBe(WINDOW_SIZE);
    expect(state?.atNewest).toBe(false);
    expect(timeline.newestSeq('room-1')).toBeNull();
  });

  it('loadNewer scrolls back to the newest', async () => {
    serveHistory(numbered(1_000));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);
    while (!timeline.get('room-1')?.complete) {
      await timeline.loadOlder('room-1');
    }

    let pages = 0;
    while (!timeline.get('room-1')?.atNewest && pages < 100) {
      await timeline.loadNewer('room-1');
      pages += 1;
    }

    const state = timeline.get('room-1');
    expect(state?.atNewest).toBe(true);
    expect(state?.messages).toHaveLength(WINDOW_SIZE);
    expect(state?.messages.at(-1)?.seq).toBe(1_000);
    expect(state?.complete).toBe(false);
    expect(timeline.newestSeq('room-1')).toBe(1_000);
    const gaps = seqs(state?.messages).filter(
      (seq, index, all) => index > 0 && seq !== (all[index - 1] ?? 0) + 1,
    );
    expect(gaps).toEqual([]);
  });

  it('loadNewer does nothing at the newest', async () => {
    serveHistory(numbered(10));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    expect(await timeline.loadNewer('room-1')).toBe(0);

    expect(
      invokeMock.mock.calls.filter(([name]) => name === 'history_page'),
    ).toHaveLength(0);
  });

  it('refresh keeps the window and adds new messages', async () => {
    const messages = numbered(120);
    serveHistory(messages);
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);
    await timeline.loadOlder('room-1');

    messages.push(makeMessage({ id: 'message-121', seq: 121 }));
    serveHistory(messages);
    await timeline.refresh('room-1');

    const state = timeline.get('room-1');
    expect(state?.messages[0]?.seq).toBe(21);
    expect(state?.messages.at(-1)?.seq).toBe(121);
    expect(invokeMock).toHaveBeenLastCalledWith('history_page', {
      roomId: 'room-1',
      before: null,
      after: 20,
      limit: HISTORY_MAX_LIMIT,
    });
  });

  it('refresh far back leaves out new messages', async () => {
    const messages = numbered(1_000);
    serveHistory(messages);
    const timeline = useTimelineStore();
    await timeline.jumpTo('room-1', 'message-100');
    const before = seqs(timeline.get('room-1')?.messages);

    messages.push(makeMessage({ id: 'message-1001', seq: 1_001 }));
    serveHistory(messages);
    await timeline.refresh('room-1');

    expect(seqs(timeline.get('room-1')?.messages)).toEqual(before);
  });

  it('jumpTo loads the messages around', async () => {
    serveHistory(numbered(1_000));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    await timeline.jumpTo('room-1', 'message-400');

    const state = timeline.get('room-1');
    const loaded = seqs(state?.messages);
    expect(loaded).toContain(400);
    expect(loaded[0]).toBeLessThan(400);
    expect(loaded.at(-1)).toBeGreaterThan(400);
    expect(state?.focusId).toBe('message-400');
    expect(state?.atNewest).toBe(false);
    expect(state?.complete).toBe(false);
  });

  it('jumpTo within the window only marks', async () => {
    serveHistory(numbered(10));
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);
    invokeMock.mockClear();

    await timeline.jumpTo('room-1', 'message-3');

    expect(timeline.get('room-1')?.focusId).toBe('message-3');
    expect(invokeMock).not.toHaveBeenCalled();
  });

  it('jumpTo near the newest ends at it', async () => {
    serveHistory(numbered(1_000));
    const timeline = useTimelineStore();

    await timeline.jumpTo('room-1', 'message-990');

    expect(timeline.get('room-1')?.atNewest).toBe(true);
    expect(timeline.newestSeq('room-1')).toBe(1_000);
  });

  it('pending focus is taken once', () => {
    const timeline = useTimelineStore();

    timeline.requestFocus('room-1', 'message-7');

    expect(timeline.takePendingFocus('room-1')).toBe('message-7');
    expect(timeline.takePendingFocus('room-1')).toBeNull();
  });

  it('finds last undeleted own message', async () => {
    serveHistory([
      makeMessage({ seq: 1, author: ME, body: 'older' }),
      makeMessage({ seq: 2, author: ME, body: 'gone', deleted: true }),
      makeMessage({ seq: 3, author: ALICE }),
    ]);
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    expect(timeline.lastOwnMessage('room-1', ME.id)?.body).toBe('older');
    expect(timeline.lastOwnMessage('room-1', 'nobody')).toBeNull();
  });
});
