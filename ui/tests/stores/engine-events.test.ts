import { createPinia, setActivePinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

import type { EngineEvent } from '@/api/bindings';
import { useConnectionStore } from '@/stores/connection';
import { connectEngineEvents } from '@/stores/engine-events';
import { useTimelineStore } from '@/stores/timeline';

import { makeMessage, makeTimeline } from '../helpers/factories';

const invokeMock = vi.mocked(invoke);
const listenMock = vi.mocked(listen);

/** Connects the stores and returns a function that delivers one engine event. */
async function connect(onVisible = vi.fn()) {
  let deliver: ((event: EngineEvent) => void) | null = null;
  listenMock.mockImplementation(async (_name, handler) => {
    deliver = (payload) => handler({ event: 'engine-event', id: 1, payload });
    return () => {};
  });
  await connectEngineEvents(onVisible);
  return (event: EngineEvent) => deliver?.(event);
}

beforeEach(() => {
  vi.useFakeTimers();
  setActivePinia(createPinia());
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) => {
    switch (command) {
      case 'history':
        return [makeMessage({ seq: 2 }), makeMessage({ seq: 1 })];
      case 'list_rooms':
      case 'outbox':
        return [];
      default:
        return undefined;
    }
  });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('connectEngineEvents', () => {
  it('sets the connection state', async () => {
    const deliver = await connect();

    deliver({
      type: 'connection',
      state: 'reconnecting',
      attempt: 2,
      retry_in_ms: 4000,
    });

    const connection = useConnectionStore();
    expect(connection.state).toMatchObject({
      state: 'reconnecting',
      attempt: 2,
    });
    expect(connection.disconnected).toBe(true);
    expect(invokeMock).not.toHaveBeenCalled();
  });

  it('refetches the outbox once for a burst', async () => {
    const deliver = await connect();

    deliver({ type: 'cache', kind: 'outbox_changed' });
    deliver({ type: 'cache', kind: 'outbox_changed' });
    await vi.runAllTimersAsync();

    expect(
      invokeMock.mock.calls.filter(([name]) => name === 'outbox'),
    ).toHaveLength(1);
  });

  it('refetches a loaded room and the room list', async () => {
    const onVisible = vi.fn();
    const deliver = await connect(onVisible);
    useTimelineStore().rooms['room-1'] = makeTimeline({ complete: false });

    deliver({ type: 'cache', kind: 'messages_changed', room_id: 'room-1' });
    await vi.runAllTimersAsync();

    expect(invokeMock).toHaveBeenCalledWith('history', {
      roomId: 'room-1',
      limit: 50,
    });
    expect(invokeMock).toHaveBeenCalledWith('list_rooms');
    expect(
      useTimelineStore().rooms['room-1']?.messages.map(
        (message) => message.seq,
      ),
    ).toEqual([1, 2]);
    expect(onVisible).toHaveBeenCalledWith('room-1');
  });

  it('leaves rooms that are not loaded alone', async () => {
    const deliver = await connect();

    deliver({
      type: 'cache',
      kind: 'messages_changed',
      room_id: 'room-unseen',
    });
    await vi.runAllTimersAsync();

    expect(invokeMock).not.toHaveBeenCalledWith('history', expect.anything());
  });
});
