import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import SettingsDialog from '@/components/settings/SettingsDialog.vue';
import { useSettingsStore } from '@/stores/settings';

import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

async function mountDialog() {
  const { plugins } = createTestPlugins();
  wrapper = mount(SettingsDialog, {
    props: { modelValue: true },
    global: { plugins },
    attachTo: document.body,
  });
  await flushPromises();
  return wrapper;
}

function radio(level: string): HTMLInputElement {
  const element = document.querySelector<HTMLInputElement>(
    `[data-test="notification-level-${level}"] input`,
  );
  if (!element) {
    throw new Error(`the ${level} option is not in the document`);
  }
  return element;
}

function commandCalls(command: string) {
  return invokeMock.mock.calls.filter(([name]) => name === command);
}

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) =>
    command === 'notification_level' ? 'off' : null,
  );
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
  document.body.innerHTML = '';
});

describe('SettingsDialog notifications', () => {
  it('shows the level the shell stores', async () => {
    await mountDialog();

    expect(commandCalls('notification_level')).toHaveLength(1);
    expect(radio('off').checked).toBe(true);
    expect(radio('mentions').checked).toBe(false);
    expect(radio('all').checked).toBe(false);
    const labels = [
      ...document.querySelectorAll('[data-test="notification-level"] label'),
    ].map((label) => label.textContent?.trim());
    expect(labels).toEqual([
      'Notifications',
      'All new messages',
      'Direct messages, replies and mentions',
      'Off',
    ]);
  });

  it('saves a chosen level in the shell', async () => {
    await mountDialog();

    radio('all').click();
    await flushPromises();

    expect(commandCalls('set_notification_level')).toEqual([
      ['set_notification_level', { level: 'all' }],
    ]);
    expect(useSettingsStore().notifications).toBe('all');
    expect(radio('all').checked).toBe(true);
  });

  it('keeps the old level when saving fails', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'set_notification_level') {
        throw { code: 'internal', message: 'disk full' };
      }
      return 'mentions';
    });
    await mountDialog();

    radio('off').click();
    await flushPromises();

    expect(useSettingsStore().notifications).toBe('mentions');
    expect(radio('mentions').checked).toBe(true);
    expect(
      document.querySelector('[data-test="notification-error"]')?.textContent,
    ).toContain('Failed to save the notification setting: disk full');
  });

  it('explains a failed read', async () => {
    invokeMock.mockImplementation(async () => {
      throw 'command notification_level not found';
    });
    await mountDialog();

    expect(
      document.querySelector('[data-test="notification-error"]')?.textContent,
    ).toContain(
      'Failed to read the notification setting: command notification_level not found',
    );
    expect(radio('mentions').disabled).toBe(true);
  });
});
