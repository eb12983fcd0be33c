import { mount } from '@vue/test-utils';
import { describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import RoomList from '@/components/rooms/RoomList.vue';
import { useRoomsStore } from '@/stores/rooms';

import { ALICE, ME, makeCachedRoom, makeMember } from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';
import { useSessionStore } from '@/stores/session';

function mountList() {
  const { plugins } = createTestPlugins();
  useSessionStore().status = {
    logged_in: true,
    server_url: null,
    username: ME.username,
    user_id: ME.id,
    connection: { state: 'online' },
  };
  const rooms = useRoomsStore();
  rooms.rooms = [
    makeCachedRoom({ path: 'team' }, 3),
    makeCachedRoom({ path: 'team.frontend' }),
    makeCachedRoom({ id: 'dm-1', path: 'dm-1', name: '', kind: 'direct' }, 1),
  ];
  rooms.mentionCounts = { 'room-team': 2 };
  rooms.members = { 'dm-1': [makeMember(ME), makeMember(ALICE)] };
  return { list: mount(RoomList, { global: { plugins } }), rooms };
}

describe('RoomList', () => {
  it('nests sub-rooms, separates direct rooms', () => {
    const { list } = mountList();

    const titles = list
      .findAll('[data-test="room-item"]')
      .map((item) => item.text());
    expect(titles[0]).toContain('team');
    expect(titles[1]).toContain('frontend');
    expect(titles[1]).not.toContain('team.frontend');
    // A direct room is named after the other participants.
    expect(titles[2]).toContain('Alice Liddell');
  });

  it('shows unread and mention badges', () => {
    const { list } = mountList();

    const [team, frontend, direct] = list.findAll('[data-test="room-item"]');
    expect(team?.get('[data-test="unread-badge"]').text()).toBe('3');
    expect(team?.get('[data-test="mention-badge"]').text()).toBe('@2');
    expect(frontend?.find('[data-test="unread-badge"]').exists()).toBe(false);
    expect(direct?.get('[data-test="unread-badge"]').text()).toBe('1');
    expect(team?.attributes('aria-label')).toBe(
      'team, 3 unread messages, 2 mentions',
    );
  });

  it('selects a room on click', async () => {
    const { list, rooms } = mountList();

    await list.findAll('[data-test="room-item"]')[1]?.trigger('click');

    expect(rooms.selectedId).toBe('room-team.frontend');
  });
});
