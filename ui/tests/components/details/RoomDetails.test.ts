import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const { FakeChannel } = vi.hoisted(() => ({
  /** Stands in for Tauri's Channel: the test delivers progress through `onmessage`. */
  FakeChannel: class<T> {
    onmessage: (message: T) => void = () => {};
  },
}));

vi.mock('@tauri-apps/api/core', () => ({
  invoke: vi.fn(),
  Channel: FakeChannel,
}));

import { invoke } from '@tauri-apps/api/core';

import type { Role, RoomFile } from '@/api/bindings';
import RoomDetails from '@/components/details/RoomDetails.vue';
import { useSessionStore } from '@/stores/session';
import { useTimelineStore } from '@/stores/timeline';

import {
  ALICE,
  BOB,
  ME,
  makeMember,
  makeMessage,
  makeRoom,
  makeTimeline,
} from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

const PINNED = makeMessage({
  id: 'm-pinned',
  room_id: 'room-general',
  body: 'the release checklist',
  pinned: { by: 'user-alice', at: '2024-05-01T12:00:00Z' },
});
const FILE: RoomFile = {
  id: 'file-1',
  name: 'report.pdf',
  size: 2048,
  mime: 'application/pdf',
  uploader: ALICE,
  uploaded_at: '2024-05-01T12:00:00Z',
};

const BANNED = {
  user: {
    id: 'user-mallory',
    username: 'mallory',
    display_name: 'Mallory Mayhem',
  },
  banned_by: ALICE.id,
  banned_at: '2024-05-02T09:00:00Z',
};

/** Mocks the commands RoomDetails sends. Alice owns the room and Bob is a member. */
function serve(myRole: Role) {
  invokeMock.mockImplementation(async (command: string) => {
    switch (command) {
      case 'members':
        return [
          makeMember(ME, myRole),
          makeMember(ALICE, myRole === 'owner' ? 'moderator' : 'owner'),
          makeMember(BOB),
        ];
      case 'pins':
        return [PINNED];
      case 'room_files':
        return [FILE];
      case 'kick_member':
        return [makeMember(ME, myRole), makeMember(ALICE, 'owner')];
      case 'bans':
        return [BANNED];
      case 'unban_member':
        return [];
      case 'transfer_ownership':
        return [
          makeMember(ME, 'moderator'),
          makeMember(ALICE, 'moderator'),
          makeMember(BOB, 'owner'),
        ];
      default:
        return null;
    }
  });
}

async function mountDetails(myRole: Role) {
  serve(myRole);
  const { plugins } = createTestPlugins();
  useSessionStore().status = {
    logged_in: true,
    server_url: 'https://chat.example.com',
    username: ME.username,
    user_id: ME.id,
    connection: { state: 'online' },
  };
  wrapper = mount(RoomDetails, {
    props: { room: makeRoom({ path: 'general', role: myRole }) },
    global: { plugins },
    attachTo: document.body,
  });
  await flushPromises();
  return wrapper;
}

/** Finds the member list row of `username`. */
function row(details: VueWrapper, username: string) {
  const item = details
    .findAll('[data-test="member-list"] .v-list-item')
    .find((candidate) => candidate.text().includes(`@${username}`));
  if (!item) {
    throw new Error(`no member row for ${username}`);
  }
  return item;
}

beforeEach(() => {
  invokeMock.mockReset();
  document.body.innerHTML = '';
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
});

describe('RoomDetails', () => {
  it('counts the loaded members over the cached count', async () => {
    const details = await mountDetails('member');

    // makeRoom caches a count of 2, which the three loaded members replace.
    expect(details.text()).toContain('3 members');
  });

  it('shows a member no moderator actions', async () => {
    const details = await mountDetails('member');

    expect(details.find('[data-test="room-settings"]').exists()).toBe(false);
    expect(details.find('[data-test="member-actions"]').exists()).toBe(false);
    expect(details.find('[data-test="pinned-unpin"]').exists()).toBe(false);
  });

  it('shows a moderator actions on plain members only', async () => {
    const details = await mountDetails('moderator');

    expect(details.find('[data-test="room-settings"]').exists()).toBe(true);
    expect(details.find('[data-test="invite-create"]').exists()).toBe(true);
    expect(details.find('[data-test="pinned-unpin"]').exists()).toBe(true);
    const bob = row(details, 'bob');
    expect(bob.find('[data-test="member-kick"]').exists()).toBe(true);
    expect(bob.find('[data-test="member-ban"]').exists()).toBe(true);
    // Only an owner changes roles.
    expect(bob.find('[data-test="member-role"]').exists()).toBe(false);
    expect(
      row(details, 'alice').find('[data-test="member-actions"]').exists(),
    ).toBe(false);
    expect(
      row(details, 'me').find('[data-test="member-actions"]').exists(),
    ).toBe(false);
  });

  it('lets an owner promote a member', async () => {
    const details = await mountDetails('owner');

    const button = row(details, 'bob').get('[data-test="member-role"]');
    expect(button.attributes('aria-label')).toBe(
      'Make Bob Builder a moderator',
    );
    await button.trigger('click');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('set_member_role', {
      roomId: 'room-general',
      userId: BOB.id,
      role: 'moderator',
    });
  });

  it('kicks only after confirmation', async () => {
    const details = await mountDetails('moderator');

    await row(details, 'bob').get('[data-test="member-kick"]').trigger('click');
    await flushPromises();
    expect(invokeMock).not.toHaveBeenCalledWith(
      'kick_member',
      expect.anything(),
    );
    const dialog = document.querySelector('[data-test="member-confirm"]');
    expect(dialog?.textContent).toContain('Remove Bob Builder?');

    document
      .querySelector<HTMLElement>('[data-test="member-confirm-ok"]')
      ?.click();
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('kick_member', {
      roomId: 'room-general',
      userId: BOB.id,
    });
    expect(details.text()).not.toContain('@bob');
  });

  it('lists bans for moderators and lifts one', async () => {
    const details = await mountDetails('moderator');

    expect(invokeMock).toHaveBeenCalledWith('bans', {
      roomId: 'room-general',
    });
    const item = details.get('[data-test="ban-item"]');
    expect(item.text()).toContain('Mallory Mayhem');
    const lift = item.get('[data-test="ban-lift"]');
    expect(lift.attributes('aria-label')).toBe(
      'Lift the ban on Mallory Mayhem',
    );

    await lift.trigger('click');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('unban_member', {
      roomId: 'room-general',
      userId: 'user-mallory',
    });
    expect(details.find('[data-test="ban-list"]').exists()).toBe(false);
  });

  it('hides bans from plain members', async () => {
    const details = await mountDetails('member');

    expect(invokeMock).not.toHaveBeenCalledWith('bans', expect.anything());
    expect(details.find('[data-test="ban-list"]').exists()).toBe(false);
  });

  it('reloads the bans after a ban', async () => {
    const details = await mountDetails('moderator');
    const before = invokeMock.mock.calls.filter(([name]) => name === 'bans');

    await row(details, 'bob').get('[data-test="member-ban"]').trigger('click');
    await flushPromises();
    document
      .querySelector<HTMLElement>('[data-test="member-confirm-ok"]')
      ?.click();
    await flushPromises();

    const after = invokeMock.mock.calls.filter(([name]) => name === 'bans');
    expect(after.length).toBe(before.length + 1);
  });

  it('offers ownership only to the owner', async () => {
    const asOwner = await mountDetails('owner');
    expect(
      row(asOwner, 'bob').find('[data-test="member-owner"]').exists(),
    ).toBe(true);
    expect(
      row(asOwner, 'bob')
        .get('[data-test="member-owner"]')
        .attributes('aria-label'),
    ).toBe('Make Bob Builder the owner');
    asOwner.unmount();
    document.body.innerHTML = '';

    const asModerator = await mountDetails('moderator');
    expect(asModerator.find('[data-test="member-owner"]').exists()).toBe(false);
  });

  it('transfers ownership only after confirmation', async () => {
    const details = await mountDetails('owner');

    await row(details, 'bob')
      .get('[data-test="member-owner"]')
      .trigger('click');
    await flushPromises();
    expect(invokeMock).not.toHaveBeenCalledWith(
      'transfer_ownership',
      expect.anything(),
    );
    const dialog = document.querySelector('[data-test="member-confirm"]');
    expect(dialog?.textContent).toContain('Make Bob Builder the owner?');
    expect(dialog?.textContent).toContain('You become a moderator.');
    document
      .querySelector<HTMLElement>('[data-test="member-confirm-cancel"]')
      ?.click();
    await flushPromises();
    expect(invokeMock).not.toHaveBeenCalledWith(
      'transfer_ownership',
      expect.anything(),
    );

    await row(details, 'bob')
      .get('[data-test="member-owner"]')
      .trigger('click');
    await flushPromises();
    document
      .querySelector<HTMLElement>('[data-test="member-confirm-ok"]')
      ?.click();
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('transfer_ownership', {
      roomId: 'room-general',
      userId: BOB.id,
    });
    // The owner's actions are gone now that the user is a moderator.
    expect(details.find('[data-test="member-owner"]').exists()).toBe(false);
  });

  it('does not kick when the confirmation is cancelled', async () => {
    const details = await mountDetails('moderator');

    await row(details, 'bob').get('[data-test="member-kick"]').trigger('click');
    await flushPromises();
    document
      .querySelector<HTMLElement>('[data-test="member-confirm-cancel"]')
      ?.click();
    await flushPromises();

    expect(invokeMock).not.toHaveBeenCalledWith(
      'kick_member',
      expect.anything(),
    );
    expect(details.text()).toContain('@bob');
  });

  it('asks before a ban with its own wording', async () => {
    const details = await mountDetails('moderator');

    await row(details, 'bob').get('[data-test="member-ban"]').trigger('click');
    await flushPromises();

    const dialog = document.querySelector('[data-test="member-confirm"]');
    expect(dialog?.textContent).toContain('Ban Bob Builder?');
    expect(dialog?.textContent).toContain('cannot join it again');
    expect(invokeMock).not.toHaveBeenCalledWith(
      'ban_member',
      expect.anything(),
    );
  });

  it('lists the server pins and the room files', async () => {
    const details = await mountDetails('member');

    expect(invokeMock).toHaveBeenCalledWith('pins', { roomId: 'room-general' });
    expect(details.get('[data-test="pinned-list"]').text()).toContain(
      'the release checklist',
    );
    const file = details.get('[data-test="file-item"]');
    expect(file.text()).toContain('report.pdf');
    expect(file.text()).toContain('2 KiB');
    expect(file.text()).toContain('Alice Liddell');
    expect(file.text()).toContain('2024');
  });

  it('downloads a file from the list', async () => {
    const details = await mountDetails('member');
    let finish: (path: string) => void = () => {};
    let channel: InstanceType<
      typeof FakeChannel<{ bytes: number; total: number }>
    > | null = null;
    invokeMock.mockImplementation(async (command: string, args?: unknown) => {
      if (command === 'download_room_file') {
        channel = (args as { onProgress: typeof channel }).onProgress;
        return new Promise((resolve) => {
          finish = resolve as (path: string) => void;
        });
      }
      return null;
    });
    const file = details.get('[data-test="file-item"]');

    await file.get('[data-test="attachment-download"]').trigger('click');
    await flushPromises();
    expect(
      invokeMock.mock.calls.find(
        ([name]) => name === 'download_room_file',
      )?.[1],
    ).toMatchObject({ roomId: 'room-general', fileId: 'file-1' });
    channel!.onmessage({ bytes: 1024, total: 2048 });
    await flushPromises();
    expect(
      file.get('[data-test="attachment-progress"]').attributes('aria-valuenow'),
    ).toBe('50');
    expect(
      invokeMock.mock.calls.some(([name]) => name === 'download_attachment'),
    ).toBe(false);

    finish('/profile/files/file-1-report.pdf');
    await flushPromises();

    expect(file.get('[data-test="attachment-saved"]').attributes('title')).toBe(
      '/profile/files/file-1-report.pdf',
    );
    await file.get('[data-test="attachment-open"]').trigger('click');
    expect(invokeMock).toHaveBeenCalledWith('open_room_file', {
      roomId: 'room-general',
      fileId: 'file-1',
    });
  });

  it('fetches the files again when one is posted', async () => {
    const details = await mountDetails('member');
    const before = invokeMock.mock.calls.filter(
      ([name]) => name === 'room_files',
    ).length;

    useTimelineStore().rooms['room-general'] = makeTimeline({
      messages: [
        makeMessage({
          room_id: 'room-general',
          attachments: [
            {
              id: FILE.id,
              name: FILE.name,
              size: FILE.size,
              mime: FILE.mime,
              url: '/api/files/file-1',
              thumbnail_url: null,
            },
          ],
        }),
      ],
    });
    await flushPromises();

    const after = invokeMock.mock.calls.filter(
      ([name]) => name === 'room_files',
    ).length;
    expect(after).toBe(before + 1);
    expect(details.text()).toContain('report.pdf');
  });

  it('lists loaded pins when offline', async () => {
    const { plugins } = createTestPlugins();
    useTimelineStore().rooms['room-general'] = makeTimeline({
      messages: [makeMessage({ ...PINNED, body: 'cached pin' })],
    });
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'members') {
        return [makeMember(ME)];
      }
      throw {
        code: 'network',
        message: 'the server is unreachable: connection refused',
        server_code: null,
        retryable: true,
      };
    });
    wrapper = mount(RoomDetails, {
      props: { room: makeRoom({ path: 'general' }) },
      global: { plugins },
    });
    await flushPromises();

    expect(wrapper.get('[data-test="pinned-list"]').text()).toContain(
      'cached pin',
    );
    expect(wrapper.find('.v-alert').exists()).toBe(false);
  });

  it('saves only the changed room settings', async () => {
    const details = await mountDetails('moderator');

    await details.get('[data-test="settings-topic"] input').setValue('On call');
    await details.get('[data-test="settings-save"]').trigger('submit');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('update_room', {
      roomId: 'room-general',
      name: null,
      topic: 'On call',
      password: null,
    });
  });

  it('shows the server error of a failed save as it is', async () => {
    const details = await mountDetails('moderator');
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'update_room') {
        throw {
          code: 'rejected',
          message:
            'Only a room moderator or above may do this; you are a member.',
          server_code: 'insufficient_role',
          retryable: false,
        };
      }
      return [];
    });

    await details.get('[data-test="settings-topic"] input').setValue('x');
    await details.get('[data-test="settings-save"]').trigger('submit');
    await flushPromises();

    expect(details.get('[data-test="settings-error"]').text()).toBe(
      'Only a room moderator or above may do this; you are a member.',
    );
  });
});
