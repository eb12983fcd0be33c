import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VSelect } from 'vuetify/components';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import type { Invite } from '@/api/bindings';
import RoomSettings from '@/components/details/RoomSettings.vue';

import { makeRoom } from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

const INVITE: Invite = {
  code: 'abc123',
  room_id: 'room-general',
  expires_at: '2024-05-08T12:00:00Z',
  single_use: false,
  url: 'https://chat.example.com/invite/abc123',
};

async function mountSettings() {
  const { plugins } = createTestPlugins();
  wrapper = mount(RoomSettings, {
    props: { room: makeRoom({ path: 'general', role: 'moderator' }) },
    global: { plugins },
    attachTo: document.body,
  });
  await flushPromises();
  return wrapper;
}

function inviteCalls() {
  return invokeMock.mock.calls.filter(([name]) => name === 'create_invite');
}

function stubClipboard(writeText: (text: string) => Promise<void>) {
  Object.defineProperty(navigator, 'clipboard', {
    value: { writeText: vi.fn(writeText) },
    configurable: true,
  });
  return navigator.clipboard.writeText as ReturnType<typeof vi.fn>;
}

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) =>
    command === 'create_invite' ? INVITE : null,
  );
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
  document.body.innerHTML = '';
});

describe('RoomSettings invites', () => {
  it('creates an invite lasting one day by default', async () => {
    const settings = await mountSettings();

    await settings.get('[data-test="invite-create"]').trigger('click');
    await flushPromises();

    expect(inviteCalls()).toEqual([
      [
        'create_invite',
        { roomId: INVITE.room_id, expiresInSecs: 86_400, singleUse: false },
      ],
    ]);
  });

  it('creates an invite with the chosen lifetime', async () => {
    const settings = await mountSettings();
    const lifetime = settings.findComponent(VSelect);
    const offered = (lifetime.props('items') as Array<{ value: number }>).map(
      (item) => item.value,
    );
    expect(offered).toEqual([3600, 86_400, 7 * 86_400, 30 * 86_400]);
    expect(lifetime.props('label')).toBe('Link expires after');

    lifetime.vm.$emit('update:modelValue', 7 * 86_400);
    await flushPromises();
    await settings.get('[data-test="invite-create"]').trigger('click');
    await flushPromises();

    expect(inviteCalls()[0]?.[1]).toMatchObject({ expiresInSecs: 604_800 });
  });

  it('copies the invite link', async () => {
    const writeText = stubClipboard(async () => {});
    const settings = await mountSettings();
    await settings.get('[data-test="invite-create"]').trigger('click');
    await flushPromises();

    const copy = settings.get('[data-test="invite-copy"]');
    expect(copy.attributes('aria-label')).toBe('Copy the invite link');
    await copy.trigger('click');
    await flushPromises();

    expect(writeText).toHaveBeenCalledWith(INVITE.url);
    expect(settings.get('[data-test="invite-copied"]').text()).toBe(
      'Copied to the clipboard.',
    );
  });

  it('copies the code without a public URL', async () => {
    const writeText = stubClipboard(async () => {});
    invokeMock.mockImplementation(async () => ({ ...INVITE, url: null }));
    const settings = await mountSettings();
    await settings.get('[data-test="invite-create"]').trigger('click');
    await flushPromises();

    await settings.get('[data-test="invite-copy"]').trigger('click');
    await flushPromises();

    expect(writeText).toHaveBeenCalledWith('abc123');
  });

  it('explains a failed copy', async () => {
    stubClipboard(async () => {
      throw new Error('clipboard access denied');
    });
    const settings = await mountSettings();
    await settings.get('[data-test="invite-create"]').trigger('click');
    await flushPromises();

    await settings.get('[data-test="invite-copy"]').trigger('click');
    await flushPromises();

    expect(settings.find('[data-test="invite-copied"]').exists()).toBe(false);
    expect(settings.get('[data-test="settings-error"]').text()).toContain(
      'Failed to copy to the clipboard: clipboard access denied',
    );
  });
});
