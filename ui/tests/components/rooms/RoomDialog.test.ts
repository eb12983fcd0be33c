import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import RoomDialog from '@/components/rooms/RoomDialog.vue';
import { useRoomsStore } from '@/stores/rooms';

import { makeCachedRoom, makeRoom } from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

const INVITED = makeRoom({ path: 'secret', kind: 'private' });
const DIRECT = makeRoom({ id: 'dm-1', path: 'dm-1', name: '', kind: 'direct' });

function serve(acceptInvite: () => unknown) {
  invokeMock.mockImplementation(async (command: string) => {
    switch (command) {
      case 'accept_invite':
        return acceptInvite();
      case 'open_direct':
        return DIRECT;
      case 'list_rooms':
        return [makeCachedRoom(INVITED), makeCachedRoom(DIRECT)];
      default:
        return [];
    }
  });
}

async function mountDialog() {
  const { plugins } = createTestPlugins();
  wrapper = mount(RoomDialog, {
    props: { modelValue: true },
    global: { plugins },
    attachTo: document.body,
  });
  await flushPromises();
  return wrapper;
}

function find<T extends HTMLElement>(selector: string): T {
  const element = document.querySelector<T>(selector);
  if (!element) {
    throw new Error(`${selector} is not in the document`);
  }
  return element;
}

async function type(selector: string, value: string) {
  const input = find<HTMLInputElement>(`${selector} input`);
  input.value = value;
  input.dispatchEvent(new Event('input'));
  await flushPromises();
}

async function openTab(name: string) {
  find(`[data-test="tab-${name}"]`).click();
  await flushPromises();
}

beforeEach(() => {
  invokeMock.mockReset();
  document.body.innerHTML = '';
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
});

describe('RoomDialog invite', () => {
  it('accepts the code of a full link and opens the room', async () => {
    serve(() => INVITED);
    await mountDialog();
    await openTab('invite');

    await type(
      '[data-test="invite-input"]',
      'https://chat.example.com/invite/Abc-123_x',
    );
    find('[data-test="invite-submit"]').click();
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('accept_invite', {
      code: 'Abc-123_x',
    });
    expect(useRoomsStore().selectedId).toBe(INVITED.id);
  });

  it('shows the server message for an expired code', async () => {
    const message =
      'The invite does not exist, has expired, or was already used; ask for a new one.';
    serve(() => {
      throw {
        code: 'rejected',
        message,
        server_code: 'invite_not_found',
        retryable: false,
      };
    });
    await mountDialog();
    await openTab('invite');

    await type('[data-test="invite-input"]', 'expiredcode');
    find('[data-test="invite-submit"]').click();
    await flushPromises();

    expect(find('[data-test="room-dialog-error"]').textContent?.trim()).toBe(
      message,
    );
    expect(useRoomsStore().selectedId).toBeNull();
  });

  it('keeps the join button off for text that is no invite', async () => {
    serve(() => INVITED);
    await mountDialog();
    await openTab('invite');

    await type('[data-test="invite-input"]', 'not an invite!');

    expect(
      find<HTMLButtonElement>('[data-test="invite-submit"]').disabled,
    ).toBe(true);
    expect(document.body.textContent).toContain(
      'This is not an invite code or link.',
    );
  });
});

describe('RoomDialog direct message', () => {
  it('opens the conversation with a username', async () => {
    serve(() => INVITED);
    await mountDialog();
    await openTab('direct');

    await type('[data-test="direct-username"]', ' alice ');
    find('[data-test="direct-submit"]').click();
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('open_direct', {
      username: 'alice',
    });
    expect(useRoomsStore().selectedId).toBe(DIRECT.id);
  });
});
