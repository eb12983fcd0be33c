import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

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
        return {
          id: 'file-1',
          name: 'notes.txt',
          size: 5,
          mime: 'text/plain',
        };
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

  it('sends a picked file as an attachment', async () => {
    const composer = await mountComposer();
    const picker = composer.get<HTMLInputElement>('[data-test="file-input"]');
    const file = new File(['hello'], 'notes.txt', { type: 'text/plain' });
    Object.defineProperty(picker.element, 'files', { value: [file] });
    await picker.trigger('change');
    // FileReader reports its result in a later task, not a microtask.
    await vi.waitFor(() => expect(commandCalls('upload_file')).toHaveLength(1));
    await flushPromises();

    const uploads = commandCalls('upload_file');
    expect(uploads[0]?.[1]).toEqual({
      roomId: ROOM_ID,
      name: 'notes.txt',
      bytes: [104, 101, 108, 108, 111],
    });
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

  it('shows why an upload failed', async () => {
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'upload_file') {
        throw {
          code: 'network',
          message: 'the server is unreachable: connection refused',
        };
      }
      return [];
    });
    const composer = await mountComposer();
    const picker = composer.get<HTMLInputElement>('[data-test="file-input"]');
    const file = new File(['x'], 'a.txt', { type: 'text/plain' });
    Object.defineProperty(picker.element, 'files', { value: [file] });
    await picker.trigger('change');
    await vi.waitFor(() =>
      expect(composer.find('[data-test="composer-error"]').exists()).toBe(true),
    );

    expect(composer.get('[data-test="composer-error"]').text()).toBe(
      'the server is unreachable: connection refused',
    );
    expect(composer.find('[data-test="attachment-chip"]').exists()).toBe(false);
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
