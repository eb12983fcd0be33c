import type { UnlistenFn } from '@tauri-apps/api/event';

import { onEngineEvent, type EngineEvent, type Uuid } from '@/api/bindings';

import { useCallStore } from './call';
import { useConnectionStore } from './connection';
import { useOutboxStore } from './outbox';
import { useRoomsStore } from './rooms';
import { useTimelineStore } from './timeline';

/** Events of one burst are applied together after this pause, in milliseconds. */
const COALESCE_MS = 50;

/**
 * Subscribes the stores to `engine-event`: cache changes refetch what they touched, and
 * connection changes update the banner. `onVisibleMessages` is called after a room's
 * timeline and the room list were refetched, so that the caller can mark what the user
 * sees as read.
 */
export async function connectEngineEvents(
  onVisibleMessages: (roomId: Uuid) => void,
): Promise<UnlistenFn> {
  const call = useCallStore();
  const connection = useConnectionStore();
  const outbox = useOutboxStore();
  const rooms = useRoomsStore();
  const timeline = useTimelineStore();

  let roomsDue = false;
  let outboxDue = false;
  const messagesDue = new Set<Uuid>();
  let timer: ReturnType<typeof setTimeout> | null = null;

  const flush = async () => {
    timer = null;
    const refreshRooms = roomsDue;
    const refreshOutbox = outboxDue;
    const roomIds = [...messagesDue];
    roomsDue = false;
    outboxDue = false;
    messagesDue.clear();

    const work: Promise<void>[] = [];
    if (refreshRooms) {
      work.push(rooms.refresh());
    }
    if (refreshOutbox) {
      work.push(outbox.refresh());
    }
    for (const roomId of roomIds) {
      work.push(timeline.refresh(roomId));
    }
    const results = await Promise.allSettled(work);
    for (const result of results) {
      if (result.status === 'rejected') {
        console.error(
          'Refetching after an engine event failed:',
          result.reason,
        );
      }
    }

    // After the room list, so that the callback reads the new unread counts.
    for (const roomId of roomIds) {
      onVisibleMessages(roomId);
    }
  };

  const schedule = () => {
    if (timer === null) {
      timer = setTimeout(() => void flush(), COALESCE_MS);
    }
  };

  const handle = (event: EngineEvent) => {
    if (event.type === 'connection') {
      connection.set(event);
      if (event.state === 'online') {
        // Calls are not replayed; the engine fetched them again on connecting.
        void call
          .refreshCalls()
          .catch((error: unknown) => console.error(error));
      }
      return;
    }
    if (event.type === 'call') {
      call.apply(event.room_id, event.event);
      return;
    }
    switch (event.kind) {
      case 'rooms_changed':
        roomsDue = true;
        break;
      case 'messages_changed':
        messagesDue.add(event.room_id);
        // New messages change the unread counts in the room list.
        roomsDue = true;
        break;
      case 'outbox_changed':
        outboxDue = true;
        break;
    }
    schedule();
  };

  const unlisten = await onEngineEvent(handle);
  return () => {
    unlisten();
    if (timer !== null) {
      clearTimeout(timer);
    }
  };
}
