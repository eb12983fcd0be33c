import { beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

import * as api from '@/api/bindings';

const invokeMock = vi.mocked(invoke);
const listenMock = vi.mocked(listen);

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockResolvedValue(undefined);
});

describe('command wrappers', () => {
  // Each wrapper, the command name the shell registers, and the arguments it sends.
  const cases: Array<
    [
      string,
      () => Promise<unknown>,
      string,
      Record<string, unknown> | undefined,
    ]
  > = [
    ['sessionStatus', () => api.sessionStatus(), 'session_status', undefined],
    [
      'login',
      () => api.login('https://chat.example.com', 'alice', 'secret-pw'),
      'login',
      {
        server: 'https://chat.example.com',
        login: 'alice',
        password: 'secret-pw',
      },
    ],
    [
      'register',
      () => api.register('https://x.test', 'alice', 'a@x.test', 'secret-pw'),
      'register',
      {
        server: 'https://x.test',
        username: 'alice',
        email: 'a@x.test',
        password: 'secret-pw',
      },
    ],
    ['logout', () => api.logout(), 'logout', undefined],
    ['listRooms', () => api.listRooms(), 'list_rooms', undefined],
    [
      'chooseFiles',
      () => api.chooseFiles('Attach files'),
      'choose_files',
      { title: 'Attach files' },
    ],
    [
      'cancelUpload',
      () => api.cancelUpload('upload-1'),
      'cancel_upload',
      { uploadId: 'upload-1' },
    ],
    ['directory', () => api.directory('team'), 'directory', { query: 'team' }],
    [
      'joinRoom',
      () => api.joinRoom('team.frontend'),
      'join_room',
      { name: 'team.frontend', password: null },
    ],
    [
      'joinRoom with password',
      () => api.joinRoom('secret', 'pass'),
      'join_room',
      { name: 'secret', password: 'pass' },
    ],
    [
      'createRoom',
      () => api.createRoom('css', true, 'team.frontend', null),
      'create_room',
      { name: 'css', isPrivate: true, parent: 'team.frontend', password: null },
    ],
    ['members', () => api.members('r1'), 'members', { roomId: 'r1' }],
    [
      'markRead',
      () => api.markRead('r1', 42),
      'mark_read',
      { roomId: 'r1', seq: 42 },
    ],
    [
      'history',
      () => api.history('r1', 50),
      'history',
      { roomId: 'r1', limit: 50 },
    ],
    ['loadOlder', () => api.loadOlder('r1'), 'load_older', { roomId: 'r1' }],
    ['search', () => api.search('hello'), 'search', { query: 'hello' }],
    ['outbox', () => api.outbox(), 'outbox', undefined],
    [
      'sendMessage',
      () => api.sendMessage('r1', 'hi'),
      'send_message',
      { roomId: 'r1', body: 'hi', replyTo: null, attachments: [] },
    ],
    [
      'sendMessage as a reply',
      () => api.sendMessage('r1', 'hi', 'm1', ['f1']),
      'send_message',
      { roomId: 'r1', body: 'hi', replyTo: 'm1', attachments: ['f1'] },
    ],
    [
      'editMessage',
      () => api.editMessage('r1', 'm1', 'fixed'),
      'edit_message',
      { roomId: 'r1', messageId: 'm1', body: 'fixed' },
    ],
    [
      'deleteMessage',
      () => api.deleteMessage('r1', 'm1'),
      'delete_message',
      { roomId: 'r1', messageId: 'm1' },
    ],
    [
      'setReaction',
      () => api.setReaction('r1', 'm1', '🎉', false),
      'set_reaction',
      { roomId: 'r1', messageId: 'm1', emoji: '🎉', present: false },
    ],
    ['retryOutbox', () => api.retryOutbox(7), 'retry_outbox', { id: 7 }],
    ['discardOutbox', () => api.discardOutbox(7), 'discard_outbox', { id: 7 }],
  ];

  it.each(cases)(
    '%s invokes its command',
    async (_name, call, command, args) => {
      await call();

      expect(invokeMock).toHaveBeenCalledTimes(1);
      const [calledCommand, calledArgs] = invokeMock.mock.calls[0] ?? [];
      expect(calledCommand).toBe(command);
      expect(calledArgs).toEqual(args);
    },
  );

  it('passes the result through', async () => {
    invokeMock.mockResolvedValue(3);

    await expect(api.loadOlder('r1')).resolves.toBe(3);
  });
});

describe('events', () => {
  it('delivers engine-event payloads', async () => {
    const unlisten = vi.fn();
    listenMock.mockResolvedValue(unlisten);
    const handler = vi.fn();

    const stop = await api.onEngineEvent(handler);
    const [eventName, callback] = listenMock.mock.calls[0] ?? [];
    callback?.({
      event: 'engine-event',
      id: 1,
      payload: { type: 'cache', kind: 'outbox_changed' },
    });

    expect(eventName).toBe('engine-event');
    expect(handler).toHaveBeenCalledWith({
      type: 'cache',
      kind: 'outbox_changed',
    });
    expect(stop).toBe(unlisten);
  });

  it('delivers open-room payloads', async () => {
    listenMock.mockResolvedValue(vi.fn());
    const handler = vi.fn();

    await api.onOpenRoom(handler);
    const call = listenMock.mock.calls.find(([name]) => name === 'open-room');
    call?.[1]({ event: 'open-room', id: 2, payload: { room_id: 'r9' } });

    expect(call).toBeDefined();
    expect(handler).toHaveBeenCalledWith({ room_id: 'r9' });
  });
});

describe('toCommandError', () => {
  it('keeps a shell error as it is', () => {
    const error = {
      code: 'rejected',
      message: 'wrong password',
      server_code: 'invalid_credentials',
      retryable: false,
    };

    expect(api.toCommandError(error)).toEqual(error);
  });

  it('maps Tauri string errors to internal', () => {
    expect(api.toCommandError('command foo not found')).toEqual({
      code: 'internal',
      message: 'command foo not found',
      server_code: null,
      retryable: false,
    });
  });

  it('turns an unknown code into internal', () => {
    expect(api.toCommandError({ code: 'weird', message: 'x' }).code).toBe(
      'internal',
    );
  });

  it('reads an Error object', () => {
    expect(api.toCommandError(new Error('boom')).message).toBe('boom');
  });
});
