import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import { useRoomsStore } from '@/stores/rooms';
import { useSessionStore } from '@/stores/session';

import {
  ALICE,
  ME,
  makeCachedRoom,
  makeMember,
  makeMessage,
} from '../helpers/factories';

const invokeMock = vi.mocked(invoke);

beforeEach(() => {
  setActivePinia(createPinia());
  useSessionStore().status = {
    logged_in: true,
    server_url: null,
    username: ME.username,
    user_id: ME.id,
    connection: { state: 'online' },
  };
  invokeMock.mockReset();
});

describe('rooms store', () => {
  it('counts unread mentions of the user', async () => {
    const mention = {
      kind: 'user' as const,
      user_id: ME.id,
      username: ME.username,
    };
    invokeMock.mockImplementation(async (command: string, args?: unknown) => {
      switch (command) {
        case 'list_rooms':
          return [
            makeCachedRoom({ path: 'general' }, 2),
            makeCachedRoom({ path: 'quiet' }),
          ];
        case 'history':
          expect(args).toEqual({ roomId: 'room-general', limit: 2 });
          return [
            makeMessage({ seq: 3, mentions: [mention] }),
            makeMessage({ seq: 2 }),
          ];
        default:
          return [];
      }
    });
    const rooms = useRoomsStore();

    await rooms.refresh();

    expect(rooms.mentionCounts).toEqual({ 'room-general': 1 });
    expect(
      rooms.tree.rooms.map((node) => [node.room.path, node.mentions]),
    ).toEqual([
      ['general', 1],
      ['quiet', 0],
    ]);
  });

  it('names a direct room after the other members', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      switch (command) {
        case 'list_rooms':
          return [
            makeCachedRoom({ id: 'dm', path: 'dm', kind: 'direct', name: '' }),
          ];
        case 'members':
          return [makeMember(ME), makeMember(ALICE)];
        default:
          return [];
      }
    });
    const rooms = useRoomsStore();

    await rooms.refresh();

    expect(rooms.directParticipants(rooms.rooms[0]!.room)).toBe(
      'Alice Liddell',
    );
  });

  it('markRead clears the badges', async () => {
    invokeMock.mockResolvedValue(undefined);
    const rooms = useRoomsStore();
    rooms.rooms = [makeCachedRoom({ path: 'general' }, 5)];
    rooms.mentionCounts = { 'room-general': 2 };

    await rooms.markRead('room-general', 40);

    expect(invokeMock).toHaveBeenCalledWith('mark_read', {
      roomId: 'room-general',
      seq: 40,
    });
    expect(rooms.rooms[0]?.unread).toBe(0);
    expect(rooms.mentionCounts['room-general']).toBe(0);
  });
});
