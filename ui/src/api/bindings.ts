// The command contract between this UI and the Tauri shell, written by hand. It mirrors
// desktop/app/src/commands.rs and the types that the shell serialises (desktop/app/src:
// dto.rs, error.rs and events.rs), which repeat those of roomler-shared and of the client
// engine with the same serde shape.
//
// TODO: the shell generates src/api/generated.ts from the same Rust types with
// tauri-specta. Once that file is committed, derive the types here from it, or replace
// this file with it, so that a change on the Rust side fails the UI's type check.
//
// Tauri 2 turns the camelCase argument names used here into the snake_case parameter
// names of the Rust command functions. Optional arguments are always sent, as `null`,
// which the Rust side reads as `None`.

import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

/** A UUID in its hyphenated text form. */
export type Uuid = string;
/** A timestamp in RFC 3339 form, e.g. `2024-05-01T12:00:00Z`. */
export type Timestamp = string;

// roomler-shared: model.rs

/** A user account as other users see it. `email` is present only for the account's owner. */
export interface User {
  id: Uuid;
  username: string;
  display_name: string;
  email?: string;
  /** Path of the avatar image, relative to the server's URL. */
  avatar_url: string | null;
  created_at: Timestamp;
}

/** The short form of a user carried inside messages and member lists. */
export interface UserRef {
  id: Uuid;
  username: string;
  display_name: string;
}

export type RoomKind = 'public' | 'private' | 'direct';

/** A member's role in one room; each role may do everything the roles before it may. */
export type Role = 'member' | 'moderator' | 'owner';

export interface Room {
  id: Uuid;
  /** The last segment of the path, e.g. `frontend`; empty for direct messages. */
  name: string;
  /** The dotted path that people type to join, e.g. `team.frontend`. */
  path: string;
  kind: RoomKind;
  parent_id: Uuid | null;
  topic: string;
  owner_id: Uuid | null;
  has_password: boolean;
  member_count: number;
  /** Sequence number of the newest message in the room, 0 when it has none. */
  last_seq: number;
  /** The caller's role, `null` when the caller is not a member. */
  role: Role | null;
  created_at: Timestamp;
}

export interface Member {
  user: UserRef;
  role: Role;
  joined_at: Timestamp;
}

/** A mention found in a message body and resolved against the room's members. */
export type Mention =
  | { kind: 'user'; user_id: Uuid; username: string }
  | { kind: 'room' }
  | { kind: 'here' };

/** The parent of a reply, as shown above the reply. */
export interface ReplyPreview {
  id: Uuid;
  author: UserRef;
  /** The start of the parent's Markdown source, empty when the parent was deleted. */
  excerpt: string;
  deleted: boolean;
}

export interface Reaction {
  /** The emoji itself, never a shortcode. */
  emoji: string;
  count: number;
  user_ids: Uuid[];
}

export interface Attachment {
  id: Uuid;
  name: string;
  /** Size in bytes. */
  size: number;
  mime: string;
  /** Path of the download, relative to the server's URL. */
  url: string;
  /** Path of a thumbnail, for images the server could decode. */
  thumbnail_url: string | null;
}

export interface Pin {
  by: Uuid;
  at: Timestamp;
}

export interface Message {
  id: Uuid;
  room_id: Uuid;
  /** Position in the room, from 1, without gaps. */
  seq: number;
  author: UserRef;
  /** The Markdown source, empty once deleted. */
  body: string;
  /** The sanitised HTML rendering of `body`. */
  html: string;
  mentions: Mention[];
  reply_to: ReplyPreview | null;
  reply_count: number;
  reactions: Reaction[];
  attachments: Attachment[];
  client_id: string | null;
  pinned: Pin | null;
  /** A deleted message stays as a tombstone so that history keeps its shape. */
  deleted: boolean;
  created_at: Timestamp;
  edited_at: Timestamp | null;
}

// The client engine: desktop/client/src/cache and engine.rs

/** A room as stored in the offline cache, with the user's unread count. */
export interface CachedRoom {
  room: Room;
  unread: number;
}

/** A hit of a search over the offline cache. */
export interface LocalHit {
  room_id: Uuid;
  room_path: string;
  message: Message;
  /** The matching text, HTML-escaped, with the matches inside `<mark>` elements. */
  snippet: string;
}

export type OperationKind = 'send' | 'edit' | 'delete' | 'react' | 'unreact';

/**
 * `pending` items wait for the server; `failed` ones were rejected by it and stay until
 * the user retries or discards them.
 */
export type OutboxState = 'pending' | 'failed';

/** An operation of the user that the server has not confirmed yet. */
export interface OutboxItem {
  id: number;
  kind: OperationKind;
  room_id: Uuid;
  message_id: Uuid | null;
  client_id: string | null;
  body: string | null;
  reply_to: Uuid | null;
  attachments: Uuid[];
  emoji: string | null;
  state: OutboxState;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  created_at: Timestamp;
}

export type ConnectionState =
  | { state: 'offline' }
  | { state: 'connecting' }
  | { state: 'online' }
  /** Waiting `retry_in_ms` milliseconds before attempt number `attempt`. */
  | { state: 'reconnecting'; attempt: number; retry_in_ms: number };

/** A change in the offline cache, for the UI to refetch what it shows. */
export type CacheChange =
  | { kind: 'rooms_changed' }
  | { kind: 'messages_changed'; room_id: Uuid }
  | { kind: 'outbox_changed' };

/** The payload of the `engine-event` event. */
export type EngineEvent =
  | ({ type: 'cache' } & CacheChange)
  | ({ type: 'connection' } & ConnectionState);

/** The payload of the `open-room` event, sent after the user clicked a notification. */
export interface OpenRoom {
  room_id: Uuid;
}

// desktop/app: command results and errors

/** The session: the logged-in account, or the values to prefill the sign-in form with. */
export interface SessionStatus {
  logged_in: boolean;
  /** The session's server; when logged out, the last one used, or `null`. */
  server_url: string | null;
  /** The session's username; when logged out, the last one used, or `null`. */
  username: string | null;
  /** Set only while logged in. */
  user_id: Uuid | null;
  /** The live connection; `offline` while logged out. */
  connection: ConnectionState;
}

/** The account a `login` or `register` opened a session for. */
export interface LoginResult {
  user_id: Uuid;
  username: string;
}

/** The kind of failure a command met, from which the UI picks its next step. */
export type ErrorCode =
  | 'invalid_input'
  | 'rejected'
  | 'network'
  | 'cancelled'
  | 'not_logged_in'
  | 'not_found'
  | 'cache'
  | 'internal';

/** The value every failed command rejects with. */
export interface CommandError {
  code: ErrorCode;
  /** A sentence for people: what was wrong and what to do. */
  message: string;
  /** The server's own error code for rejections, e.g. `invalid_credentials`. */
  server_code: string | null;
  /** Whether the same request may succeed later, e.g. after a network failure. */
  retryable: boolean;
}

/** Maximum number of messages one `history` call returns; the shell rejects a larger `limit`. */
export const HISTORY_MAX_LIMIT = 1000;

export const ENGINE_EVENT = 'engine-event';
export const OPEN_ROOM_EVENT = 'open-room';

// Session

export function sessionStatus(): Promise<SessionStatus> {
  return invoke('session_status');
}

export function login(
  server: string,
  login: string,
  password: string,
): Promise<LoginResult> {
  return invoke('login', { server, login, password });
}

export function register(
  server: string,
  username: string,
  email: string,
  password: string,
): Promise<LoginResult> {
  return invoke('register', { server, username, email, password });
}

export function logout(): Promise<void> {
  return invoke('logout');
}

// Rooms

export function listRooms(): Promise<CachedRoom[]> {
  return invoke('list_rooms');
}

/** Public rooms on the server whose path matches `query`. */
export function directory(query: string): Promise<Room[]> {
  return invoke('directory', { query });
}

/** Joins a room by its dotted path. */
export function joinRoom(
  name: string,
  password?: string | null,
): Promise<Room> {
  return invoke('join_room', { name, password: password ?? null });
}

/** Creates a room; `parent` is the dotted path of the room to create it under. */
export function createRoom(
  name: string,
  isPrivate: boolean,
  parent?: string | null,
  password?: string | null,
): Promise<Room> {
  return invoke('create_room', {
    name,
    private: isPrivate,
    parent: parent ?? null,
    password: password ?? null,
  });
}

export function members(roomId: Uuid): Promise<Member[]> {
  return invoke('members', { roomId });
}

/** Marks the messages up to and including `seq` as read. */
export function markRead(roomId: Uuid, seq: number): Promise<void> {
  return invoke('mark_read', { roomId, seq });
}

// Messages

/**
 * Reads the newest `limit` messages of a room, newest first, at most {@link HISTORY_MAX_LIMIT}.
 * Older pages are fetched into the cache first when it has fewer and the server is reachable.
 */
export function history(roomId: Uuid, limit: number): Promise<Message[]> {
  return invoke('history', { roomId, limit });
}

/**
 * Fetches the page before the oldest cached message into the cache and returns how many
 * messages it added, 0 once the whole history is cached. Fails with `network` offline.
 */
export function loadOlder(roomId: Uuid): Promise<number> {
  return invoke('load_older', { roomId });
}

/** Full-text search over the offline cache. */
export function search(query: string): Promise<LocalHit[]> {
  return invoke('search', { query });
}

// Outbox: each write is queued and returns the queued item at once. The shell sends it in
// the background, and the outcome arrives as `outbox_changed` and `messages_changed` events.

export function outbox(): Promise<OutboxItem[]> {
  return invoke('outbox');
}

export function sendMessage(
  roomId: Uuid,
  body: string,
  replyTo?: Uuid | null,
  attachments?: Uuid[],
): Promise<OutboxItem> {
  return invoke('send_message', {
    roomId,
    body,
    replyTo: replyTo ?? null,
    attachments: attachments ?? [],
  });
}

export function editMessage(
  roomId: Uuid,
  messageId: Uuid,
  body: string,
): Promise<OutboxItem> {
  return invoke('edit_message', { roomId, messageId, body });
}

export function deleteMessage(
  roomId: Uuid,
  messageId: Uuid,
): Promise<OutboxItem> {
  return invoke('delete_message', { roomId, messageId });
}

/** Adds the user's reaction when `present` is true, else removes it. */
export function setReaction(
  roomId: Uuid,
  messageId: Uuid,
  emoji: string,
  present: boolean,
): Promise<OutboxItem> {
  return invoke('set_reaction', { roomId, messageId, emoji, present });
}

/** Puts a failed outbox item back in the queue. */
export function retryOutbox(id: number): Promise<void> {
  return invoke('retry_outbox', { id });
}

export function discardOutbox(id: number): Promise<void> {
  return invoke('discard_outbox', { id });
}

// Events

export function onEngineEvent(
  handler: (event: EngineEvent) => void,
): Promise<UnlistenFn> {
  return listen<EngineEvent>(ENGINE_EVENT, (event) => handler(event.payload));
}

export function onOpenRoom(
  handler: (event: OpenRoom) => void,
): Promise<UnlistenFn> {
  return listen<OpenRoom>(OPEN_ROOM_EVENT, (event) => handler(event.payload));
}

const ERROR_CODES: readonly ErrorCode[] = [
  'invalid_input',
  'rejected',
  'network',
  'cancelled',
  'not_logged_in',
  'not_found',
  'cache',
  'internal',
];

/**
 * Converts what a rejected command throws into a {@link CommandError}. The shell rejects
 * with a `CommandError`, but Tauri itself rejects with a plain string, e.g. for an unknown
 * command or an argument of the wrong type; that becomes an `internal` error.
 */
export function toCommandError(error: unknown): CommandError {
  if (typeof error === 'object' && error !== null) {
    const candidate = error as Partial<CommandError>;
    if (typeof candidate.message === 'string') {
      const code =
        ERROR_CODES.find((known) => known === candidate.code) ?? 'internal';
      return {
        code,
        message: candidate.message,
        server_code:
          typeof candidate.server_code === 'string'
            ? candidate.server_code
            : null,
        retryable: candidate.retryable === true,
      };
    }
  }
  const message = typeof error === 'string' ? error : String(error);
  return { code: 'internal', message, server_code: null, retryable: false };
}
