import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import { HISTORY_MAX_LIMIT, type Message } from '@/api/bindings';
import { useTimelineStore } from '@/stores/timeline';

import { ALICE, ME, makeMessage } from '../helpers/factories';

const invokeMock = vi.mocked(invoke);

/** Serves `history` from `messages`, newest first, as the shell does. */
function serveHistory(messages: Message[], olderPages: number[] = []) {
  invokeMock.mockImplementation(async (command: string, args?: unknown) => {
    if (command === 'history') {
      const { limit } = args as { limit: number };
      return [...messages].sort((a, b) => b.seq - a.seq).slice(0, limit);
    }
    if (command === 'load_older') {
      return olderPages.shift() ?? 0;
    }
    return undefined;
  });
}

beforeEach(() => {
  setActivePinia(createPinia());
  invokeMock.mockReset();
});

describe('timeline store', () => {
  it('open orders messages oldest first', async () => {
    serveHistory([1, 2, 3, 4].map((seq) => makeMessage({ seq })));
    const timeline = useTimelineStore();

    await timeline.open('room-1', 2);

    const state = timeline.get('room-1');
    expect(state?.messages.map((message) => message.seq)).toEqual([1, 2, 3, 4]);
    expect(state?.firstUnreadSeq).toBe(3);
    expect(invokeMock).toHaveBeenCalledWith('history', {
      roomId: 'room-1',
      limit: 50,
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

  it('grows the limit by what load_older added', async () => {
    serveHistory([makeMessage({ seq: 1 })], [30]);
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    const added = await timeline.loadOlder('room-1');

    expect(added).toBe(30);
    expect(timeline.get('room-1')?.limit).toBe(80);
    expect(timeline.get('room-1')?.complete).toBe(false);
    expect(invokeMock).toHaveBeenLastCalledWith('history', {
      roomId: 'room-1',
      limit: 80,
    });
  });

  it('marks the room complete when nothing is older', async () => {
    serveHistory([makeMessage({ seq: 1 })], [0]);
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    await timeline.loadOlder('room-1');
    await timeline.loadOlder('room-1');

    expect(timeline.get('room-1')?.complete).toBe(true);
    expect(
      invokeMock.mock.calls.filter(([name]) => name === 'load_older'),
    ).toHaveLength(1);
  });

  it('stops at the history limit of the shell', async () => {
    serveHistory([makeMessage({ seq: 1 })], [2000]);
    const timeline = useTimelineStore();
    await timeline.open('room-1', 0);

    await timeline.loadOlder('room-1');

    expect(timeline.get('room-1')?.limit).toBe(HISTORY_MAX_LIMIT);
    expect(timeline.get('room-1')?.complete).toBe(true);
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
