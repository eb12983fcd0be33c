import { flushPromises, mount } from '@vue/test-utils';
import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import type { OutboxItem } from '@/api/bindings';
import OutboxEntry from '@/components/timeline/OutboxEntry.vue';

import { makeOutboxItem } from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);

function mountEntry(item: OutboxItem) {
  const { plugins } = createTestPlugins();
  return mount(OutboxEntry, { props: { item }, global: { plugins } });
}

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) =>
    command === 'outbox' ? [] : undefined,
  );
});

describe('OutboxEntry', () => {
  it('marks a pending send', () => {
    const entry = mountEntry(
      makeOutboxItem({ state: 'pending', body: 'on its way' }),
    );

    expect(entry.attributes('data-state')).toBe('pending');
    expect(entry.text()).toContain('on its way');
    expect(entry.get('[data-test="pending-marker"]').text()).toContain(
      'Sending…',
    );
    expect(entry.find('[data-test="outbox-retry"]').exists()).toBe(false);
    expect(entry.find('[data-test="outbox-discard"]').exists()).toBe(false);
  });

  it('describes a pending reaction', () => {
    const entry = mountEntry(
      makeOutboxItem({
        kind: 'react',
        body: null,
        emoji: '🎉',
        message_id: 'm1',
      }),
    );

    expect(entry.text()).toContain('Reaction 🎉');
    expect(entry.get('[data-test="pending-marker"]').text()).toContain(
      'Waiting for the server',
    );
  });

  it('shows the error of a failed item', () => {
    const entry = mountEntry(
      makeOutboxItem({
        state: 'failed',
        error_code: 'forbidden',
        error_message: 'You were removed from this room.',
      }),
    );

    expect(entry.attributes('data-state')).toBe('failed');
    expect(entry.find('[data-test="pending-marker"]').exists()).toBe(false);
    expect(entry.get('[data-test="outbox-error"]').text()).toBe(
      'You were removed from this room.',
    );
    expect(entry.find('[data-test="outbox-retry"]').exists()).toBe(true);
    expect(entry.find('[data-test="outbox-discard"]').exists()).toBe(true);
  });

  it('falls back to the error code', () => {
    const entry = mountEntry(
      makeOutboxItem({
        state: 'failed',
        error_code: 'body_too_long',
        error_message: null,
      }),
    );

    expect(entry.get('[data-test="outbox-error"]').text()).toBe(
      'body_too_long',
    );
  });

  it('retries a failed item', async () => {
    const entry = mountEntry(
      makeOutboxItem({ id: 41, state: 'failed', error_message: 'no' }),
    );

    await entry.get('[data-test="outbox-retry"]').trigger('click');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('retry_outbox', { id: 41 });
    expect(invokeMock).not.toHaveBeenCalledWith(
      'discard_outbox',
      expect.anything(),
    );
    // The list is refetched so the item shows its new state.
    expect(invokeMock).toHaveBeenCalledWith('outbox');
  });

  it('discards a failed item', async () => {
    const entry = mountEntry(
      makeOutboxItem({ id: 42, state: 'failed', error_message: 'no' }),
    );

    await entry.get('[data-test="outbox-discard"]').trigger('click');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('discard_outbox', { id: 42 });
    expect(invokeMock).not.toHaveBeenCalledWith(
      'retry_outbox',
      expect.anything(),
    );
  });
});
