import { flushPromises, mount, type VueWrapper } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';

import type { Message } from '@/api/bindings';
import TimelineView from '@/components/timeline/TimelineView.vue';
import { useOutboxStore } from '@/stores/outbox';
import { useSessionStore } from '@/stores/session';
import { useTimelineStore } from '@/stores/timeline';

import {
  ALICE,
  BOB,
  ME,
  localTime,
  makeMessage,
  makeOutboxItem,
  makeTimeline,
} from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const ROOM_ID = 'room-1';
const invokeMock = vi.mocked(invoke);
let wrapper: VueWrapper | null = null;

async function mountTimeline(
  messages: Message[],
  firstUnreadSeq: number | null = null,
) {
  const { plugins } = createTestPlugins();
  useSessionStore().status = {
    logged_in: true,
    server_url: 'https://chat.example.com',
    username: ME.username,
    user_id: ME.id,
    connection: { state: 'online' },
  };
  useTimelineStore().rooms[ROOM_ID] = makeTimeline({
    messages,
    firstUnreadSeq,
  });
  wrapper = mount(TimelineView, {
    props: { roomId: ROOM_ID },
    global: { plugins },
  });
  await flushPromises();
  return wrapper;
}

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockResolvedValue(makeOutboxItem());
});

afterEach(() => {
  wrapper?.unmount();
  wrapper = null;
});

describe('TimelineView', () => {
  it('reply preview jumps to its parent', async () => {
    const parent = makeMessage({ id: 'parent-1', seq: 1, body: 'the parent' });
    const around = [parent, makeMessage({ id: 'other-2', seq: 2 })];
    invokeMock.mockImplementation(async (command: string) => {
      if (command === 'history_around') {
        return around;
      }
      // Nothing after the window: it ends at the newest message.
      return command === 'history_page' ? [] : undefined;
    });
    const timeline = await mountTimeline([
      makeMessage({
        id: 'reply-9',
        seq: 9,
        reply_to: {
          id: 'parent-1',
          author: ALICE,
          excerpt: 'the parent',
          deleted: false,
        },
      }),
    ]);

    await timeline.get('[data-test="reply-preview"]').trigger('click');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('history_around', {
      roomId: ROOM_ID,
      messageId: 'parent-1',
      limit: 100,
    });
    expect(timeline.find('[data-message-id="parent-1"]').exists()).toBe(true);
    expect(timeline.find('[data-message-id="reply-9"]').exists()).toBe(false);
  });

  it('far back offers a jump to newest', async () => {
    const { plugins } = createTestPlugins();
    useTimelineStore().rooms[ROOM_ID] = makeTimeline({
      messages: [makeMessage({ id: 'old-5', seq: 5 })],
      atNewest: false,
    });
    invokeMock.mockImplementation(async (command: string) =>
      command === 'history' ? [makeMessage({ id: 'new-80', seq: 80 })] : [],
    );
    wrapper = mount(TimelineView, {
      props: { roomId: ROOM_ID },
      global: { plugins },
    });
    await flushPromises();

    await wrapper.get('[data-test="jump-newest"]').trigger('click');
    await flushPromises();

    expect(wrapper.find('[data-message-id="new-80"]').exists()).toBe(true);
    expect(wrapper.find('[data-test="jump-newest"]').exists()).toBe(false);
  });

  it('renders author groups and day dividers', async () => {
    const timeline = await mountTimeline([
      makeMessage({ seq: 1, author: ALICE, created_at: localTime(1, 10, 0) }),
      makeMessage({ seq: 2, author: ALICE, created_at: localTime(1, 10, 1) }),
      makeMessage({ seq: 3, author: BOB, created_at: localTime(2, 9, 0) }),
    ]);

    const groups = timeline.findAll('[data-test="message-group"]');
    expect(groups).toHaveLength(2);
    expect(groups[0]?.findAll('[data-test="message"]')).toHaveLength(2);
    expect(groups[0]?.get('[data-test="group-author"]').text()).toBe(
      'Alice Liddell',
    );
    expect(timeline.findAll('[data-test="day-divider"]')).toHaveLength(2);
  });

  it('renders the server HTML of a message', async () => {
    const timeline = await mountTimeline([
      makeMessage({
        html: '<p>hi <span class="mention" data-mention="Me">@Me</span> <strong>now</strong></p>',
      }),
    ]);

    const body = timeline.get('.message-body');
    expect(body.find('strong').text()).toBe('now');
    expect(body.find('span.mention[data-mention="Me"]').exists()).toBe(true);
  });

  it('shows the unread divider', async () => {
    const timeline = await mountTimeline(
      [makeMessage({ seq: 1 }), makeMessage({ seq: 2, author: BOB })],
      2,
    );

    expect(timeline.get('[data-test="unread-divider"]').text()).toBe(
      'New messages',
    );
  });

  it('shows deleted, edited and reply states', async () => {
    const timeline = await mountTimeline([
      makeMessage({ seq: 1, deleted: true, body: '', html: '' }),
      makeMessage({ seq: 2, edited_at: localTime(1, 12, 5) }),
      makeMessage({
        seq: 3,
        reply_to: {
          id: 'message-2',
          author: BOB,
          excerpt: 'the parent text',
          deleted: false,
        },
      }),
    ]);

    expect(timeline.get('[data-test="deleted"]').text()).toBe(
      'This message was deleted.',
    );
    expect(timeline.get('[data-test="edited"]').text()).toBe('(edited)');
    const reply = timeline.get('[data-test="reply-preview"]');
    expect(reply.text()).toContain('Bob Builder');
    expect(reply.text()).toContain('the parent text');
  });

  it('toggles a reaction', async () => {
    const timeline = await mountTimeline([
      makeMessage({
        id: 'm1',
        reactions: [
          { emoji: '👍', count: 2, user_ids: [ME.id, BOB.id] },
          { emoji: '🎉', count: 1, user_ids: [BOB.id] },
        ],
      }),
    ]);

    const [mine, theirs] = timeline.findAll('[data-test="reaction"]');
    expect(mine?.text()).toContain('2');
    await mine?.trigger('click');
    await theirs?.trigger('click');
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('set_reaction', {
      roomId: ROOM_ID,
      messageId: 'm1',
      emoji: '👍',
      present: false,
    });
    expect(invokeMock).toHaveBeenCalledWith('set_reaction', {
      roomId: ROOM_ID,
      messageId: 'm1',
      emoji: '🎉',
      present: true,
    });
  });

  it('offers edit only on own messages', async () => {
    const timeline = await mountTimeline([
      makeMessage({ seq: 1, author: ME }),
      makeMessage({ seq: 2, author: ALICE }),
    ]);

    const [own, other] = timeline.findAll('[data-test="message"]');
    expect(own?.find('[data-test="action-edit"]').exists()).toBe(true);
    expect(other?.find('[data-test="action-edit"]').exists()).toBe(false);
    expect(other?.find('[data-test="action-delete"]').exists()).toBe(false);
  });

  it('hides outbox items already in history', async () => {
    const { plugins } = createTestPlugins();
    useOutboxStore().items = [
      makeOutboxItem({ id: 1, client_id: 'sent-already', body: 'delivered' }),
      makeOutboxItem({ id: 2, client_id: 'still-queued', body: 'waiting' }),
      makeOutboxItem({ id: 3, room_id: 'another-room', body: 'elsewhere' }),
    ];
    useTimelineStore().rooms[ROOM_ID] = makeTimeline({
      messages: [makeMessage({ client_id: 'sent-already', body: 'delivered' })],
    });
    wrapper = mount(TimelineView, {
      props: { roomId: ROOM_ID },
      global: { plugins },
    });
    await flushPromises();

    const entries = wrapper.findAll('[data-test="outbox-entry"]');
    expect(entries.map((entry) => entry.text())).toEqual([
      expect.stringContaining('waiting'),
    ]);
  });
  it('opens message links outside the app', async () => {
    const open = vi.spyOn(window, 'open').mockReturnValue(null);
    const timeline = await mountTimeline([
      makeMessage({ html: '<p><a href="https://example.com/doc">doc</a></p>' }),
    ]);

    const event = new MouseEvent('click', { bubbles: true, cancelable: true });
    timeline.get('.message-body a').element.dispatchEvent(event);

    expect(event.defaultPrevented).toBe(true);
    expect(open).toHaveBeenCalledWith(
      'https://example.com/doc',
      '_blank',
      'noopener,noreferrer',
    );
    open.mockRestore();
  });

  it('deletes a message after confirmation', async () => {
    const timeline = await mountTimeline([
      makeMessage({ id: 'm-own', author: ME }),
    ]);

    await timeline.get('[data-test="action-delete"]').trigger('click');
    await flushPromises();
    expect(invokeMock).not.toHaveBeenCalledWith(
      'delete_message',
      expect.anything(),
    );

    const confirm = document.querySelector<HTMLElement>(
      '[data-test="confirm-delete"]',
    );
    confirm?.click();
    await flushPromises();

    expect(invokeMock).toHaveBeenCalledWith('delete_message', {
      roomId: ROOM_ID,
      messageId: 'm-own',
    });
  });
});
