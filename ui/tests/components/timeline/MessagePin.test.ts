import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import type { Role } from '@/api/bindings';
import TimelineView from '@/components/timeline/TimelineView.vue';
import { useRoomsStore } from '@/stores/rooms';
import { useSessionStore } from '@/stores/session';
import { useTimelineStore } from '@/stores/timeline';

import {
  ALICE,
  ME,
  makeCachedRoom,
  makeMessage,
  makeTimeline,
} from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const ROOM_ID = 'room-general';
const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

async function mountTimeline(role: Role) {
  const { plugins } = createTestPlugins();
  useSessionStore().status = {
    logged_in: true,
    server_url: 'https://chat.example.com',
    username: ME.username,
    user_id: ME.id,
    connection: { state: 'online' },
  };
  useRoomsStore().rooms = [makeCachedRoom({ path: 'general', role })];
  useTimelineStore().rooms[ROOM_ID] = makeTimeline({
    messages: [
      makeMessage({
        id: 'm-pinned',
        room_id: ROOM_ID,
        author: ALICE,
        pinned: { by: ME.id, at: '2024-05-01T12:00:00Z' },
      }),
      makeMessage({ id: 'm-plain', room_id: ROOM_ID, author: ALICE }),
    ],
  });
  wrapper = mount(TimelineView, {
    props: { roomId: ROOM_ID },
    global: { plugins },
  });
  await flushPromises();
  return wrapper;
}

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) =>
    command === 'set_pin' ? makeMessage({ room_id: ROOM_ID }) : [],
  );
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
});

describe('message pins', () => {
  it('are not offered to a member', async () => {
    const timeline = await mountTimeline('member');

    expect(timeline.find('[data-test="action-pin"]').exists()).toBe(false);
  });

  it('pin and unpin for a moderator', async () => {
    const timeline = await mountTimeline('moderator');

    const [pinned, plain] = timeline.findAll('[data-test="action-pin"]');
    expect(pinned?.attributes('aria-label')).toBe('Unpin message');
    expect(plain?.attributes('aria-label')).toBe('Pin message');

    await plain?.trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('set_pin', {
      messageId: 'm-plain',
      pinned: true,
    });
    expect(invokeMock).toHaveBeenCalledWith('pins', { roomId: ROOM_ID });

    await pinned?.trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('set_pin', {
      messageId: 'm-pinned',
      pinned: false,
    });
  });
});
