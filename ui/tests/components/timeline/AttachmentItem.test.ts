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

import type { Attachment } from '@/api/bindings';
import AttachmentItem from '@/components/timeline/AttachmentItem.vue';

import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);
const PIXEL = 'data:image/png;base64,iVBORw0KGgo=';
let wrapper: VueWrapper | null = null;

function makeAttachment(overrides: Partial<Attachment> = {}): Attachment {
  return {
    id: 'file-1',
    name: 'notes.txt',
    size: 1000,
    mime: 'text/plain',
    url: '/api/files/file-1',
    thumbnail_url: null,
    ...overrides,
  };
}

async function mountAttachment(attachment: Attachment) {
  const { plugins } = createTestPlugins();
  wrapper = mount(AttachmentItem, {
    props: { messageId: 'message-1', attachment },
    global: { plugins },
    attachTo: document.body,
  });
  await flushPromises();
  return wrapper;
}

beforeEach(() => {
  invokeMock.mockReset();
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
  document.body.innerHTML = '';
});

describe('AttachmentItem', () => {
  it('downloads a file with progress', async () => {
    let finish: (path: string) => void = () => {};
    let channel: InstanceType<
      typeof FakeChannel<{ bytes: number; total: number }>
    > | null = null;
    invokeMock.mockImplementation((command: string, args?: unknown) => {
      if (command === 'download_attachment') {
        channel = (args as { onProgress: typeof channel }).onProgress;
        return new Promise((resolve) => {
          finish = resolve as (path: string) => void;
        });
      }
      return Promise.resolve(undefined);
    });
    const item = await mountAttachment(makeAttachment());

    await item.get('[data-test="attachment-download"]').trigger('click');
    await flushPromises();
    channel!.onmessage({ bytes: 250, total: 1000 });
    await flushPromises();

    const bar = item.get('[data-test="attachment-progress"]');
    expect(bar.attributes('aria-valuenow')).toBe('25');
    expect(item.find('[data-test="attachment-cancel"]').exists()).toBe(true);

    finish('/profile/files/file-1-notes.txt');
    await flushPromises();

    expect(item.find('[data-test="attachment-progress"]').exists()).toBe(false);
    expect(item.get('[data-test="attachment-saved"]').attributes('title')).toBe(
      '/profile/files/file-1-notes.txt',
    );
    expect(item.find('[data-test="attachment-open"]').exists()).toBe(true);
  });

  it('cancel asks the shell to stop', async () => {
    invokeMock.mockImplementation((command: string) =>
      command === 'download_attachment'
        ? new Promise(() => {})
        : Promise.resolve(true),
    );
    const item = await mountAttachment(makeAttachment());
    await item.get('[data-test="attachment-download"]').trigger('click');
    await flushPromises();

    await item.get('[data-test="attachment-cancel"]').trigger('click');

    expect(invokeMock).toHaveBeenCalledWith('cancel_download', {
      attachmentId: 'file-1',
    });
  });

  it('shows an image inline and in the viewer', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'attachment_thumbnail') {
        return PIXEL;
      }
      return command === 'attachment_image' ? `${PIXEL}full` : undefined;
    });
    const item = await mountAttachment(
      makeAttachment({
        name: 'photo.png',
        mime: 'image/png',
        thumbnail_url: '/api/files/file-1/thumbnail',
      }),
    );

    const thumbnail = item.get('[data-test="attachment-thumbnail"] img');
    expect(thumbnail.attributes('src')).toBe(PIXEL);
    expect(item.find('[data-test="attachment-card"]').exists()).toBe(false);

    await item.get('[data-test="attachment-thumbnail"]').trigger('click');
    await flushPromises();

    const full = document.querySelector(
      '[data-test="attachment-viewer-image"]',
    );
    expect(full?.getAttribute('src')).toBe(`${PIXEL}full`);
  });

  it('image without thumbnail falls back to a card', async () => {
    invokeMock.mockRejectedValue({
      code: 'network',
      message: 'the server is unreachable',
    });
    const item = await mountAttachment(
      makeAttachment({
        name: 'photo.png',
        mime: 'image/png',
        thumbnail_url: '/api/files/file-1/thumbnail',
      }),
    );

    expect(item.find('[data-test="attachment-card"]').text()).toContain(
      'photo.png',
    );
  });
});
