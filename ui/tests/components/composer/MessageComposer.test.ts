import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const { FakeChannel, dropListeners } = vi.hoisted(() => ({
  /** Stands in for Tauri's Channel: the test delivers progress through `onmessage`. */
  FakeChannel: class<T> {
    onmessage: (message: T) => void = () => {};
  },
  /** The handlers the composer registered for files dropped on the window. */
  dropListeners: [] as Array<(event: unknown) => void>,
}));

vi.mock('@tauri-apps/api/core', () => ({
  invoke: vi.fn(),
  Channel: FakeChannel,
}));

vi.mock('@tauri-apps/api/webview', () => ({
  getCurrentWebview: () => ({
    onDragDropEvent: (handler: (event: unknown) => void) => {
      dropListeners.push(handler);
      return Promise.resolve(() => {
        dropListeners.splice(dropListeners.indexOf(handler), 1);
      });
    },
  }),
}));

import { invoke } from '@tauri-apps/api/core';

import { STAGED_UPLOAD_MAX_BYTES } from '@/api/bindings';
import MessageComposer from '@/components/composer/MessageComposer.vue';
import { useComposerStore } from '@/stores/composer';
import { useSessionStore } from '@/stores/session';
import { useTimelineStore } from '@/stores/timeline';

import {
  ALICE,
  BOB,
  ME,
  makeMember,
  makeMessage,
  makeOutboxItem,
  makeTimeline,
} from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const ROOM_ID = 'room-1';
const NOTES = {
  id: 'file-1',
  name: 'notes.txt',
  size: 100,
  mime: 'text/plain',
};
const invokeMock = vi.mocked(invoke);

let wrapper: VueWrapper | null = null;

function commandCalls(command: string) {
  return invokeMock.mock.calls.filter(([name]) => name === command);
}

async function mountComposer() {
  const { plugins } = createTestPlugins();
  useSessionStore().status = {
    logged_in: true,
    server_url: 'https://chat.example.com',
    username: ME.username,
    user_id: ME.id,
    connection: { state: 'online' },
  };
  useTimelineStore().rooms[ROOM_ID] = makeTimeline({
    messages: [
      makeMessage({ seq: 1, author: ME, body: 'my first message' }),
      makeMessage({ seq: 2, author: ME, body: 'my latest message' }),
      makeMessage({ seq: 3, author: ALICE, body: 'a message from alice' }),
    ],
  });
  wrapper = mount(MessageComposer, {
    props: { roomId: ROOM_ID },
    global: { plugins },
    attachTo: document.body,
  });
  // The composer loads the room's members for completion when it mounts.
  await flushPromises();
  return wrapper;
}

function input(current: VueWrapper) {
  return current.get<HTMLTextAreaElement>('[data-test="composer-input"]');
}

/** Dispatches a keydown and returns whether the composer prevented its default action. */
function pressKey(
  current: VueWrapper,
  key: string,
  options: KeyboardEventInit = {},
): boolean {
  const event = new KeyboardEvent('keydown', {
    key,
    cancelable: true,
    bubbles: true,
    ...options,
  });
  input(current).element.dispatchEvent(event);
  return event.defaultPrevented;
}

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) => {
    switch (command) {
      case 'members':
        return [makeMember(ME), makeMember(ALICE), makeMember(BOB)];
      case 'send_message':
        return makeOutboxItem();
      case 'edit_message':
        return makeOutboxItem({ kind: 'edit' });
      case 'upload_file':
        return NOTES;
      case 'stage_upload':
        return '/profile/uploads/1/notes.txt';
      default:
        return undefined;
    }
  });
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
});

describe('MessageComposer', () => {
  it('sends on Enter and clears the text', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('hello there');

    const prevented = pressKey(composer, 'Enter');
    await flushPromises();

    expect(prevented).toBe(true);
    expect(commandCalls('send_message')).toEqual([
      [
        'send_message',
        {
          roomId: ROOM_ID,
          body: 'hello there',
          replyTo: null,
          attachments: [],
        },
      ],
    ]);
    expect(input(composer).element.value).toBe('');
  });

  it('keeps the text when the send fails', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'send_message') {
        throw { code: 'invalid_input', message: 'The message is too long.' };
      }
      return [];
    });
    const composer = await mountComposer();
    await input(composer).setValue('too long');

    pressKey(composer, 'Enter');
    await flushPromises();

    expect(input(composer).element.value).toBe('too long');
    expect(composer.get('[data-test="composer-error"]').text()).toBe(
      'The message is too long.',
    );
  });

  it('uploads a chosen file with progress, then sends it', async () => {
    let finish: (file: typeof NOTES) => void = () => {};
    let channel: InstanceType<
      typeof FakeChannel<{ bytes: number; total: number }>
    > | null = null;
    invokeMock.mockImplementation(async (command: string, args?: unknown) => {
      switch (command) {
        case 'choose_files':
          return ['/home/me/notes.txt'];
        case 'upload_file':
          channel = (args as { onProgress: typeof channel }).onProgress;
          return new Promise((resolve) => {
            finish = resolve;
          });
        case 'send_message':
          return makeOutboxItem();
        default:
          return [];
      }
    });
    const composer = await mountComposer();

    await composer.get('[data-test="attach"]').trigger('click');
    await flushPromises();
    expect(commandCalls('choose_files')[0]?.[1]).toEqual({
      title: 'Attach files',
    });
    expect(commandCalls('upload_file')[0]?.[1]).toMatchObject({
      roomId: ROOM_ID,
      path: '/home/me/notes.txt',
      uploadId: expect.any(String),
    });
    channel!.onmessage({ bytes: 25, total: 100 });
    await flushPromises();

    const upload = composer.get('[data-test="upload"]');
    expect(upload.text()).toContain('Uploading notes.txt');
    const bar = upload.get('[data-test="upload-progress"]');
    expect(bar.attributes('aria-valuenow')).toBe('25');
    expect(bar.attributes('aria-label')).toBe('Upload of notes.txt');
    expect(upload.get('[data-test="upload-percent"]').text()).toBe('25%');
    expect(
      upload.get('[data-test="upload-cancel"]').attributes('aria-label'),
    ).toBe('Cancel the upload of notes.txt');
    expect(
      composer.get('[data-test="send"]').attributes('disabled'),
    ).toBeDefined();

    finish(NOTES);
    await flushPromises();

    expect(composer.find('[data-test="upload"]').exists()).toBe(false);
    expect(composer.get('[data-test="attachment-chip"]').text()).toContain(
      'notes.txt',
    );
    // A message of files alone carries their names as its body.
    pressKey(composer, 'Enter');
    await flushPromises();
    expect(commandCalls('send_message')).toEqual([
      [
        'send_message',
        {
          roomId: ROOM_ID,
          body: 'notes.txt',
          replyTo: null,
          attachments: ['file-1'],
        },
      ],
    ]);
    expect(composer.find('[data-test="attachment-chip"]').exists()).toBe(false);
  });

  it('cancel stops an upload without an error', async () => {
    let fail: (error: unknown) => void = () => {};
    invokeMock.mockImplementation(async (command: string) => {
      switch (command) {
        case 'choose_files':
          return ['/home/me/big.iso'];
        case 'upload_file':
          return new Promise((_, reject) => {
            fail = reject;
          });
        case 'cancel_upload':
          return true;
        default:
          return [];
      }
    });
    const composer = await mountComposer();
    await composer.get('[data-test="attach"]').trigger('click');
    await flushPromises();
    const uploadId = (
      commandCalls('upload_file')[0]?.[1] as { uploadId: string }
    ).uploadId;

    await composer.get('[data-test="upload-cancel"]').trigger('click');
    expect(commandCalls('cancel_upload')).toEqual([
      ['cancel_upload', { uploadId }],
    ]);
    fail({ code: 'cancelled', message: 'the operation was cancelled' });
    await flushPromises();

    expect(composer.find('[data-test="upload"]').exists()).toBe(false);
    expect(composer.find('[data-test="composer-error"]').exists()).toBe(false);
    expect(composer.find('[data-test="attachment-chip"]').exists()).toBe(false);
  });

  it('uploads files dropped on the window', async () => {
    const composer = await mountComposer();

    for (const listener of dropListeners) {
      listener({
        payload: {
          type: 'drop',
          paths: ['/tmp/shots/a.png', 'C:\\Users\\me\\b.pdf'],
          position: { x: 10, y: 10 },
        },
      });
    }
    await flushPromises();

    const paths = commandCalls('upload_file').map(
      ([, args]) => (args as { path: string }).path,
    );
    expect(paths).toEqual(['/tmp/shots/a.png', 'C:\\Users\\me\\b.pdf']);
    const ids = commandCalls('upload_file').map(
      ([, args]) => (args as { uploadId: string }).uploadId,
    );
    expect(new Set(ids).size).toBe(2);
    expect(composer.findAll('[data-test="attachment-chip"]')).toHaveLength(2);
  });

  it('stops listening for drops when unmounted', async () => {
    const composer = await mountComposer();
    expect(dropListeners).toHaveLength(1);

    composer.unmount();
    wrapper = null;
    await flushPromises();

    expect(dropListeners).toHaveLength(0);
  });

  it('stages a picked file, then uploads its path', async () => {
    const composer = await mountComposer();
    const picker = composer.get<HTMLInputElement>('[data-test="file-input"]');
    const file = new File(['hello'], '屏幕 截图.txt', { type: 'text/plain' });
    Object.defineProperty(picker.element, 'files', { value: [file] });
    await picker.trigger('change');
    // FileReader reports its result in a later task, not a microtask.
    await vi.waitFor(() => expect(commandCalls('upload_file')).toHaveLength(1));
    await flushPromises();

    const [, body, options] = commandCalls('stage_upload')[0]!;
    expect(body).toEqual(new Uint8Array([104, 101, 108, 108, 111]));
    expect(options).toEqual({
      headers: {
        'x-roomler-file-name': encodeURIComponent('屏幕 截图.txt'),
      },
    });
    expect(commandCalls('upload_file')[0]?.[1]).toMatchObject({
      path: '/profile/uploads/1/notes.txt',
    });
    expect(composer.get('[data-test="attachment-chip"]').text()).toContain(
      'notes.txt',
    );
  });

  it('pastes an image through staging', async () => {
    const composer = await mountComposer();
    const image = new File(['png'], 'image.png', { type: 'image/png' });
    const paste = new Event('paste', { bubbles: true, cancelable: true });
    Object.defineProperty(paste, 'clipboardData', {
      value: { files: [image] },
    });
    input(composer).element.dispatchEvent(paste);
    await vi.waitFor(() => expect(commandCalls('upload_file')).toHaveLength(1));

    expect(paste.defaultPrevented).toBe(true);
    expect(commandCalls('stage_upload')[0]?.[2]).toEqual({
      headers: { 'x-roomler-file-name': 'image.png' },
    });
  });

  it('rejects a pasted file above the staging limit', async () => {
    const composer = await mountComposer();
    const huge = new File(['x'], 'huge.png', { type: 'image/png' });
    Object.defineProperty(huge, 'size', { value: STAGED_UPLOAD_MAX_BYTES + 1 });
    const paste = new Event('paste', { bubbles: true, cancelable: true });
    Object.defineProperty(paste, 'clipboardData', { value: { files: [huge] } });
    input(composer).element.dispatchEvent(paste);
    await flushPromises();

    expect(commandCalls('stage_upload')).toHaveLength(0);
    expect(composer.get('[data-test="composer-error"]').text()).toBe(
      'huge.png is larger than 25 MiB; attach a smaller file.',
    );
  });

  it('shows why an upload failed', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      switch (command) {
        case 'choose_files':
          return ['/home/me/a.txt'];
        case 'upload_file':
          throw {
            code: 'network',
            message: 'the server is unreachable: connection refused',
          };
        default:
          return [];
      }
    });
    const composer = await mountComposer();
    await composer.get('[data-test="attach"]').trigger('click');
    await flushPromises();

    expect(composer.get('[data-test="composer-error"]').text()).toBe(
      'Failed to upload a.txt: the server is unreachable: connection refused',
    );
    expect(composer.find('[data-test="upload"]').exists()).toBe(false);
    expect(composer.find('[data-test="attachment-chip"]').exists()).toBe(false);
  });

  it('falls back to the page file chooser', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'choose_files') {
        throw { code: 'internal', message: 'no dialog' };
      }
      return [];
    });
    const composer = await mountComposer();
    const picker = composer.get<HTMLInputElement>('[data-test="file-input"]');
    const click = vi.spyOn(picker.element, 'click');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});

    await composer.get('[data-test="attach"]').trigger('click');
    await flushPromises();

    expect(click).toHaveBeenCalledOnce();
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
  });

  it('sends nothing for blank text', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('   \n ');

    pressKey(composer, 'Enter');
    await flushPromises();

    expect(commandCalls('send_message')).toHaveLength(0);
  });

  it('leaves Shift+Enter to the textarea for a newline', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('line one');

    const prevented = pressKey(composer, 'Enter', { shiftKey: true });
    await flushPromises();

    // Not prevented, so the textarea inserts the line break itself.
    expect(prevented).toBe(false);
    expect(commandCalls('send_message')).toHaveLength(0);

    await input(composer).setValue('line one\nline two');
    pressKey(composer, 'Enter');
    await flushPromises();
    expect(commandCalls('send_message')[0]?.[1]).toMatchObject({
      body: 'line one\nline two',
    });
  });

  it('ignores Enter while an input method composes', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('ni hao');

    const prevented = pressKey(composer, 'Enter', { isComposing: true });
    await flushPromises();

    expect(prevented).toBe(false);
    expect(commandCalls('send_message')).toHaveLength(0);
  });

  it('sends a reply with its parent', async () => {
    const composer = await mountComposer();
    const parent = makeMessage({ seq: 3, id: 'parent-id', author: ALICE });
    useComposerStore().startReply(parent);
    await flushPromises();
    expect(composer.find('[data-test="reply-banner"]').exists()).toBe(true);

    await input(composer).setValue('agreed');
    pressKey(composer, 'Enter');
    await flushPromises();

    expect(commandCalls('send_message')[0]?.[1]).toMatchObject({
      replyTo: 'parent-id',
    });
    expect(composer.find('[data-test="reply-banner"]').exists()).toBe(false);
  });

  it('Up edits last own message', async () => {
    const composer = await mountComposer();

    const prevented = pressKey(composer, 'ArrowUp');
    await flushPromises();

    expect(prevented).toBe(true);
    expect(composer.find('[data-test="edit-banner"]').exists()).toBe(true);
    expect(input(composer).element.value).toBe('my latest message');

    await input(composer).setValue('my corrected message');
    pressKey(composer, 'Enter');
    await flushPromises();

    expect(commandCalls('edit_message')).toEqual([
      [
        'edit_message',
        {
          roomId: ROOM_ID,
          messageId: 'message-2',
          body: 'my corrected message',
        },
      ],
    ]);
    expect(commandCalls('send_message')).toHaveLength(0);
    expect(composer.find('[data-test="edit-banner"]').exists()).toBe(false);
    expect(input(composer).element.value).toBe('');
  });

  it('Up with text moves caret', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('draft');

    const prevented = pressKey(composer, 'ArrowUp');
    await flushPromises();

    expect(prevented).toBe(false);
    expect(composer.find('[data-test="edit-banner"]').exists()).toBe(false);
  });

  it('restores the draft when Esc cancels an edit', async () => {
    const composer = await mountComposer();
    pressKey(composer, 'ArrowUp');
    await flushPromises();

    pressKey(composer, 'Escape');
    await flushPromises();

    expect(composer.find('[data-test="edit-banner"]').exists()).toBe(false);
    expect(input(composer).element.value).toBe('');
    expect(commandCalls('edit_message')).toHaveLength(0);
  });

  it('completes mention by keyboard', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('hi @');

    const items = composer.findAll('[data-test="completion-item"]');
    // Members other than the user, then @room and @here.
    expect(items.map((item) => item.text())).toEqual([
      expect.stringContaining('@alice'),
      expect.stringContaining('@bob'),
      expect.stringContaining('@room'),
      expect.stringContaining('@here'),
    ]);

    pressKey(composer, 'ArrowDown');
    await flushPromises();
    const prevented = pressKey(composer, 'Enter');
    await flushPromises();

    expect(prevented).toBe(true);
    expect(input(composer).element.value).toBe('hi @bob ');
    expect(input(composer).element.selectionStart).toBe('hi @bob '.length);
    expect(composer.findAll('[data-test="completion-item"]')).toHaveLength(0);
    // Enter chose the completion and did not send.
    expect(commandCalls('send_message')).toHaveLength(0);
  });

  it('completes a mention with a click', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('ping @he');

    const [item] = composer.findAll('[data-test="completion-item"]');
    await item?.trigger('mousedown');
    await flushPromises();

    expect(input(composer).element.value).toBe('ping @here ');
  });

  it('completes a shortcode to its emoji', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('shipped :tad');

    const labels = composer
      .findAll('[data-test="completion-item"]')
      .map((item) => item.text());
    expect(labels[0]).toContain(':tada:');

    pressKey(composer, 'Tab');
    await flushPromises();

    expect(input(composer).element.value).toBe('shipped 🎉 ');
  });

  it('closes the completion menu on Esc', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('@al');
    expect(composer.findAll('[data-test="completion-item"]')).toHaveLength(1);

    pressKey(composer, 'Escape');
    await flushPromises();

    expect(composer.findAll('[data-test="completion-item"]')).toHaveLength(0);
    expect(input(composer).element.value).toBe('@al');
  });

  it('applies a toolbar format to the selection', async () => {
    const composer = await mountComposer();
    await input(composer).setValue('make this bold');
    input(composer).element.setSelectionRange(5, 9);

    await composer.get('[data-test="format-bold"]').trigger('click');
    await flushPromises();

    const element = input(composer).element;
    expect(element.value).toBe('make **this** bold');
    expect(
      element.value.slice(element.selectionStart, element.selectionEnd),
    ).toBe('this');
  });
});
