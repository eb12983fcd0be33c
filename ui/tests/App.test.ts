import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));
vi.mock('@tauri-apps/api/event', () => ({
  listen: vi.fn(async () => () => {}),
}));
vi.mock('@tauri-apps/api/webview', () => ({
  getCurrentWebview: () => ({ onDragDropEvent: async () => () => {} }),
}));

import { invoke } from '@tauri-apps/api/core';

import App from '@/App.vue';
import type { SessionStatus } from '@/api/bindings';

import {
  ALICE,
  ME,
  makeCachedRoom,
  makeMember,
  makeMessage,
} from './helpers/factories';
import { createTestPlugins } from './helpers/mount';

const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

const LOGGED_IN: SessionStatus = {
  logged_in: true,
  server_url: 'https://chat.example.com',
  username: ME.username,
  user_id: ME.id,
  connection: { state: 'offline' },
};

function serve(status: SessionStatus) {
  invokeMock.mockImplementation(async (command: string) => {
    switch (command) {
      case 'session_status':
        return status;
      case 'list_rooms':
        return [
          makeCachedRoom({ path: 'general', topic: 'Everything else' }),
          makeCachedRoom({ path: 'random' }),
        ];
      case 'outbox':
        return [];
      case 'history':
        return [
          makeMessage({
            seq: 1,
            author: ALICE,
            room_id: 'room-general',
            body: 'welcome',
            html: '<p>welcome</p>',
          }),
        ];
      case 'members':
        return [makeMember(ME), makeMember(ALICE)];
      case 'search':
        return [
          {
            room_id: 'room-random',
            room_path: 'random',
            message: makeMessage({ seq: 9, room_id: 'room-random' }),
            snippet: 'a <mark>match</mark>',
          },
        ];
      default:
        return undefined;
    }
  });
}

async function mountApp() {
  const { plugins } = createTestPlugins();
  wrapper = mount(App, { global: { plugins }, attachTo: document.body });
  await flushPromises();
  return wrapper;
}

beforeEach(() => {
  localStorage.clear();
  invokeMock.mockReset();
  document.body.innerHTML = '';
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
});

describe('App', () => {
  it('shows the sign-in form without a session', async () => {
    serve({ ...LOGGED_IN, logged_in: false, user_id: null });

    const app = await mountApp();

    expect(app.find('[data-test="server"]').exists()).toBe(true);
    expect(
      app.get<HTMLInputElement>('[data-test="server"] input').element.value,
    ).toBe('https://chat.example.com');
  });

  it('opens the first room of a session', async () => {
    serve(LOGGED_IN);

    const app = await mountApp();

    expect(app.findAll('[data-test="room-item"]')).toHaveLength(2);
    expect(app.text()).toContain('Everything else');
    expect(app.get('[data-test="timeline"]').text()).toContain('welcome');
    expect(app.find('[data-test="composer-input"]').exists()).toBe(true);
    expect(invokeMock).toHaveBeenCalledWith('history', {
      roomId: 'room-general',
      limit: 50,
    });
    // The session status reports offline, so the banner shows before any event.
    expect(app.find('[data-test="offline-banner"]').exists()).toBe(true);
  });

  it('Ctrl+K search opens a hit', async () => {
    vi.useFakeTimers();
    try {
      serve(LOGGED_IN);
      const app = await mountApp();

      window.dispatchEvent(
        new KeyboardEvent('keydown', { key: 'k', ctrlKey: true }),
      );
      await flushPromises();
      const field = document.querySelector<HTMLInputElement>(
        '[data-test="search-input"] input',
      );
      expect(field).not.toBeNull();

      field!.value = 'match';
      field!.dispatchEvent(new Event('input'));
      await vi.runAllTimersAsync();
      await flushPromises();

      expect(invokeMock).toHaveBeenCalledWith('search', { query: 'match' });
      const hit = document.querySelector<HTMLElement>(
        '[data-test="search-hit"]',
      );
      expect(hit?.innerHTML).toContain('<mark>match</mark>');

      hit!.click();
      await vi.runAllTimersAsync();
      await flushPromises();

      expect(invokeMock).toHaveBeenCalledWith('history', {
        roomId: 'room-random',
        limit: 50,
      });
      expect(app.text()).toContain('random');
    } finally {
      vi.useRealTimers();
    }
  });

  it('closes a dialog on Esc', async () => {
    serve(LOGGED_IN);
    const app = await mountApp();
    const settingsActive = () =>
      document.querySelector(
        '.v-overlay--active [data-test="settings-dialog"]',
      ) !== null;

    await app.get('[data-test="open-settings"]').trigger('click');
    await flushPromises();
    expect(settingsActive()).toBe(true);

    const target = document.activeElement ?? document.body;
    target.dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }),
    );
    await flushPromises();

    expect(settingsActive()).toBe(false);
  });
});
