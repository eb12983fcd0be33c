// The command contract between this UI and the Tauri shell. The types and the raw command
// calls come from src/api/generated.ts, which tauri-specta generates from the shell's Rust
// types, so a change on the Rust side fails the UI's type check. This module turns the
// generated calls' `{ status, data | error }` results back into promises that reject with a
// `CommandError`, which is what the stores expect.
//
// Optional arguments are always sent, as `null`, which the Rust side reads as `None`.

import { Channel, convertFileSrc, invoke } from '@tauri-apps/api/core';
import type { UnlistenFn } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';

import {
  commands,
  events,
  type CommandError,
  type DownloadProgress,
  type UploadedFile,
  type UploadProgress,
} from './generated';

export type {
  Attachment,
  CallDevices,
  CallEnded,
  CallEvent,
  CallFormat,
  CallMedia,
  CallMediaProblem,
  CallMediaState,
  CallParticipant,
  CallParticipants,
  CallRole,
  CallSummary,
  Device,
  InputChoice,
  JoinedCall,
  MediaChoice,
  MediaDevice,
  MediaProblemKind,
  OutputChoice,
  RoomCall,
  TileLevel,
  TileStats,
  Ban,
  CachedRoom,
  Change as CacheChange,
  CommandError,
  ConnectionState,
  DownloadProgress,
  EngineEvent,
  ErrorCode,
  Invite,
  LocalHit,
  LoginResult,
  Member,
  Mention,
  Message,
  NotificationLevel,
  OpenRoom,
  OperationKind,
  OutboxItem,
  OutboxState,
  Pin,
  Reaction,
  ReplyPreview,
  Role,
  Room,
  RoomFile,
  RoomKind,
  SessionStatus,
  UploadedFile,
  UploadProgress,
  UserRef,
} from './generated';
export {
  FRAME_HEADER_BYTES,
  HISTORY_MAX_LIMIT,
  STAGED_UPLOAD_MAX_BYTES,
} from './generated';

import { FRAME_SCHEME } from './generated';
import type {
  Ban,
  CachedRoom,
  CallDevices,
  CallEnded,
  CallFormat,
  CallMedia,
  CallParticipants,
  JoinedCall,
  MediaChoice,
  RoomCall,
  TileLevel,
  TileStats,
  EngineEvent,
  Invite,
  LocalHit,
  LoginResult,
  Member,
  Message,
  NotificationLevel,
  OpenRoom,
  OutboxItem,
  Role,
  Room,
  RoomFile,
  SessionStatus,
  ErrorCode,
} from './generated';

/** A UUID in its hyphenated text form. */
export type Uuid = string;
/** A timestamp in RFC 3339 form, e.g. `2024-05-01T12:00:00Z`. */
export type Timestamp = string;

type Outcome<T> =
  { status: 'ok'; data: T } | { status: 'error'; error: CommandError };

/** Resolves with a command's value, or rejects with its error. */
async function unwrap<T>(outcome: Promise<Outcome<T>>): Promise<T> {
  const result = await outcome;
  if (result.status === 'error') {
    throw result.error;
  }
  return result.data;
}

/** Resolves once a command that returns nothing has succeeded. */
async function done(outcome: Promise<Outcome<null>>): Promise<void> {
  await unwrap(outcome);
}

// Session

export function sessionStatus(): Promise<SessionStatus> {
  return unwrap(commands.sessionStatus());
}

export function login(
  server: string,
  login: string,
  password: string,
): Promise<LoginResult> {
  return unwrap(commands.login(server, login, password));
}

export function register(
  server: string,
  username: string,
  email: string,
  password: string,
): Promise<LoginResult> {
  return unwrap(commands.register(server, username, email, password));
}

export function logout(): Promise<void> {
  return done(commands.logout());
}

// Notifications

/** Returns which new messages show a native notification. */
export function notificationLevel(): Promise<NotificationLevel> {
  return commands.notificationLevel();
}

/** Sets which new messages notify, from the next one on; the shell stores it. */
export function setNotificationLevel(level: NotificationLevel): Promise<void> {
  return done(commands.setNotificationLevel(level));
}

// Rooms

export function listRooms(): Promise<CachedRoom[]> {
  return unwrap(commands.listRooms());
}

/** Public rooms on the server whose path matches `query`. */
export function directory(query: string): Promise<Room[]> {
  return unwrap(commands.directory(query));
}

/** Joins a room by its dotted path. */
export function joinRoom(
  name: string,
  password?: string | null,
): Promise<Room> {
  return unwrap(commands.joinRoom(name, password ?? null));
}

/** Creates a room; `parent` is the dotted path of the room to create it under. */
export function createRoom(
  name: string,
  isPrivate: boolean,
  parent?: string | null,
  password?: string | null,
): Promise<Room> {
  return unwrap(
    commands.createRoom(name, isPrivate, parent ?? null, password ?? null),
  );
}

export function members(roomId: Uuid): Promise<Member[]> {
  return unwrap(commands.members(roomId));
}

// Moderation and joining others. These go straight to the server, unqueued, so offline
// they reject with a `network` error. The server checks the user's role.

/**
 * Changes a room's name, topic or password. A `null` leaves a value as it is, and a
 * password of `''` removes the password.
 */
export function updateRoom(
  roomId: Uuid,
  changes: {
    name?: string | null;
    topic?: string | null;
    password?: string | null;
  },
): Promise<Room> {
  return unwrap(
    commands.updateRoom(
      roomId,
      changes.name ?? null,
      changes.topic ?? null,
      changes.password ?? null,
    ),
  );
}

/** Creates an invite that lasts `expiresInSecs` seconds, one day when `null`. */
export function createInvite(
  roomId: Uuid,
  expiresInSecs: number | null,
  singleUse: boolean,
): Promise<Invite> {
  return unwrap(commands.createInvite(roomId, expiresInSecs, singleUse));
}

/** Joins the room of an invite code or link. */
export function acceptInvite(code: string): Promise<Room> {
  return unwrap(commands.acceptInvite(code));
}

/** Opens the direct room with the user `username`, creating it when there is none. */
export function openDirect(username: string): Promise<Room> {
  return unwrap(commands.openDirect(username));
}

/** Removes a member and resolves with the members left. */
export function kickMember(roomId: Uuid, userId: Uuid): Promise<Member[]> {
  return unwrap(commands.kickMember(roomId, userId));
}

/** Bans a user and resolves with the members left. */
export function banMember(roomId: Uuid, userId: Uuid): Promise<Member[]> {
  return unwrap(commands.banMember(roomId, userId));
}

/** Lists the users banned from a room, newest first. Needs the moderator role. */
export function bans(roomId: Uuid): Promise<Ban[]> {
  return unwrap(commands.bans(roomId));
}

/** Lifts a user's ban, so they may join again, and resolves with the bans left. */
export function unbanMember(roomId: Uuid, userId: Uuid): Promise<Ban[]> {
  return unwrap(commands.unbanMember(roomId, userId));
}

/**
 * Makes the member `userId` the room's owner and resolves with the members. The user, the
 * owner until now, becomes a moderator.
 */
export function transferOwnership(
  roomId: Uuid,
  userId: Uuid,
): Promise<Member[]> {
  return unwrap(commands.transferOwnership(roomId, userId));
}

export function setMemberRole(
  roomId: Uuid,
  userId: Uuid,
  role: Role,
): Promise<Member[]> {
  return unwrap(commands.setMemberRole(roomId, userId, role));
}

export function setPin(messageId: Uuid, pinned: boolean): Promise<Message> {
  return unwrap(commands.setPin(messageId, pinned));
}

/** Fetches the pinned messages of a room from the server. */
export function pins(roomId: Uuid): Promise<Message[]> {
  return unwrap(commands.pins(roomId));
}

/** Fetches the files of a room from the server, newest first. */
export function roomFiles(roomId: Uuid): Promise<RoomFile[]> {
  return unwrap(commands.roomFiles(roomId));
}

/** Marks the messages up to and including `seq` as read. */
export function markRead(roomId: Uuid, seq: number): Promise<void> {
  return done(commands.markRead(roomId, seq));
}

// Messages

/**
 * Reads the newest `limit` messages of a room, newest first, at most {@link HISTORY_MAX_LIMIT}.
 * Older pages are fetched into the cache first when it has fewer and the server is reachable.
 */
export function history(roomId: Uuid, limit: number): Promise<Message[]> {
  return unwrap(commands.history(roomId, limit));
}

/**
 * Reads up to `limit` messages of a room, oldest first, before the message numbered
 * `window.before` or after the one numbered `window.after`. Reading before fetches older
 * pages into the cache when it has too few; offline, it fails with `network` only when it
 * has nothing to return.
 */
export function historyPage(
  roomId: Uuid,
  window: { before: number } | { after: number },
  limit: number,
): Promise<Message[]> {
  const before = 'before' in window ? window.before : null;
  const after = 'after' in window ? window.after : null;
  return unwrap(commands.historyPage(roomId, before, after, limit));
}

/**
 * Reads up to `limit` messages of a room around the message `messageId`, oldest first,
 * fetching older pages into the cache until it is found.
 */
export function historyAround(
  roomId: Uuid,
  messageId: Uuid,
  limit: number,
): Promise<Message[]> {
  return unwrap(commands.historyAround(roomId, messageId, limit));
}

/**
 * Fetches the page before the oldest cached message into the cache and returns how many
 * messages it added, 0 once the whole history is cached. Fails with `network` offline.
 */
export function loadOlder(roomId: Uuid): Promise<number> {
  return unwrap(commands.loadOlder(roomId));
}

/** Full-text search over the offline cache. */
export function search(query: string): Promise<LocalHit[]> {
  return unwrap(commands.search(query));
}

// Outbox: each write is queued and returns the queued item at once. The shell sends it in
// the background, and the outcome arrives as `outbox_changed` and `messages_changed` events.

export function outbox(): Promise<OutboxItem[]> {
  return unwrap(commands.outbox());
}

export function sendMessage(
  roomId: Uuid,
  body: string,
  replyTo?: Uuid | null,
  attachments?: Uuid[],
): Promise<OutboxItem> {
  return unwrap(
    commands.sendMessage(roomId, body, replyTo ?? null, attachments ?? []),
  );
}

export function editMessage(
  roomId: Uuid,
  messageId: Uuid,
  body: string,
): Promise<OutboxItem> {
  return unwrap(commands.editMessage(roomId, messageId, body));
}

export function deleteMessage(
  roomId: Uuid,
  messageId: Uuid,
): Promise<OutboxItem> {
  return unwrap(commands.deleteMessage(roomId, messageId));
}

/** Adds the user's reaction when `present` is true, else removes it. */
export function setReaction(
  roomId: Uuid,
  messageId: Uuid,
  emoji: string,
  present: boolean,
): Promise<OutboxItem> {
  return unwrap(commands.setReaction(roomId, messageId, emoji, present));
}

/** Puts a failed outbox item back in the queue. */
export function retryOutbox(id: number): Promise<void> {
  return done(commands.retryOutbox(id));
}

export function discardOutbox(id: number): Promise<void> {
  return done(commands.discardOutbox(id));
}

// Calls

/** Lists the cameras, microphones and speakers of this computer. */
export function callDevices(): Promise<CallDevices> {
  return unwrap(commands.callDevices());
}

/**
 * Starts (or restarts with other devices) the self view and microphone meter of
 * the pre-join screen of `roomId`. Devices that stop later arrive as `call-media`
 * events.
 */
export function startCallPreview(
  roomId: Uuid,
  media: MediaChoice,
): Promise<void> {
  return done(commands.startCallPreview(roomId, media));
}

export function stopCallPreview(): Promise<void> {
  return commands.stopCallPreview();
}

/**
 * Joins a room's call, starting it when no one is in it yet. `format` applies only to
 * a join that starts the call; `null` starts a meeting.
 */
export function joinCall(
  roomId: Uuid,
  media: MediaChoice,
  format: CallFormat | null = null,
): Promise<JoinedCall> {
  return unwrap(commands.joinCall(roomId, media, format));
}

/** Raises the user's hand, in the audience of a presentation. */
export function raiseCallHand(): Promise<void> {
  return done(commands.raiseCallHand());
}

/** Lowers the user's own hand, or as a host the hand of `userId`. */
export function lowerCallHand(userId: Uuid | null = null): Promise<void> {
  return done(commands.lowerCallHand(userId));
}

/** As a host, lets an audience member speak. */
export function inviteToSpeak(userId: Uuid): Promise<void> {
  return done(commands.inviteToSpeak(userId));
}

/** Moves a speaker back to the audience: as a host, or the user themselves. */
export function moveToAudience(userId: Uuid): Promise<void> {
  return done(commands.moveToAudience(userId));
}

/** Switches the call to other devices; the old ones stay when the new ones fail. */
export function switchCallMedia(media: MediaChoice): Promise<void> {
  return done(commands.switchCallMedia(media));
}

export function leaveCall(): Promise<void> {
  return done(commands.leaveCall());
}

export function setCallMuted(muted: boolean): Promise<void> {
  return done(commands.setCallMuted(muted));
}

export function setCallCameraOff(off: boolean): Promise<void> {
  return done(commands.setCallCameraOff(off));
}

/**
 * Tells the engine which remote feeds are on screen: `large` receive the full-size
 * simulcast layer, `medium` the half-size one, `small` the lowest, and the others
 * are not decoded.
 */
export function setVisibleTiles(
  large: number[],
  medium: number[],
  small: number[],
): Promise<void> {
  return done(commands.setVisibleTiles(large, medium, small));
}

export function callLevels(): Promise<TileLevel[]> {
  return commands.callLevels();
}

export function callStats(): Promise<TileStats[]> {
  return unwrap(commands.callStats());
}

/** Lists the calls going on in the user's rooms. */
export function roomCalls(): Promise<RoomCall[]> {
  return unwrap(commands.roomCalls());
}

/**
 * The URL of a tile's newest picture newer than `after`: `local` for the self view or
 * a feed id. The response is {@link FRAME_HEADER_BYTES} of header and RGBA pixels.
 */
export function frameUrl(tile: string, after: number): string {
  return `${convertFileSrc(tile, FRAME_SCHEME)}?after=${after}`;
}

// Events

export function onEngineEvent(
  handler: (event: EngineEvent) => void,
): Promise<UnlistenFn> {
  return events.engineEvent.listen((event) => handler(event.payload));
}

/** Calls `handler` when the server ended the user's part in a call. */
export function onCallEnded(
  handler: (event: CallEnded) => void,
): Promise<UnlistenFn> {
  return events.callEnded.listen((event) => handler(event.payload));
}

/** Calls `handler` with each new participant list of the user's call. */
export function onCallParticipants(
  handler: (event: CallParticipants) => void,
): Promise<UnlistenFn> {
  return events.callParticipants.listen((event) => handler(event.payload));
}

/**
 * Calls `handler` with each new state of the user's own microphone, camera and
 * speaker in the call: a switch, a device lost during the call, or a failed
 * publish after an invitation to speak.
 */
export function onCallMedia(
  handler: (event: CallMedia) => void,
): Promise<UnlistenFn> {
  return events.callMedia.listen((event) => handler(event.payload));
}

export function onOpenRoom(
  handler: (event: OpenRoom) => void,
): Promise<UnlistenFn> {
  return events.openRoom.listen((event) => handler(event.payload));
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

// Attachments

/** Returns an attachment's thumbnail as a `data:` URL, or `null` when it has none. */
export function attachmentThumbnail(
  messageId: Uuid,
  attachmentId: Uuid,
): Promise<string | null> {
  return unwrap(commands.attachmentThumbnail(messageId, attachmentId));
}

/**
 * Downloads an attachment into the profile and returns the file's path; `onProgress`
 * receives the bytes so far. Rejects with `cancelled` after {@link cancelDownload}.
 */
export function downloadAttachment(
  messageId: Uuid,
  attachmentId: Uuid,
  onProgress: (progress: DownloadProgress) => void,
): Promise<string> {
  const channel = new Channel<DownloadProgress>();
  channel.onmessage = onProgress;
  return unwrap(commands.downloadAttachment(messageId, attachmentId, channel));
}

/**
 * Downloads a file of a room's file list into the profile and returns the file's path,
 * as {@link downloadAttachment} does for a message's attachment.
 */
export function downloadRoomFile(
  roomId: Uuid,
  fileId: Uuid,
  onProgress: (progress: DownloadProgress) => void,
): Promise<string> {
  const channel = new Channel<DownloadProgress>();
  channel.onmessage = onProgress;
  return unwrap(commands.downloadRoomFile(roomId, fileId, channel));
}

/** Opens a file of a room's file list with the system's program, downloading it first. */
export function openRoomFile(roomId: Uuid, fileId: Uuid): Promise<void> {
  return done(commands.openRoomFile(roomId, fileId));
}

/** Stops a running download; resolves to false when none was running. */
export function cancelDownload(attachmentId: Uuid): Promise<boolean> {
  return commands.cancelDownload(attachmentId);
}

/** Returns an image attachment in full as a `data:` URL, for the viewer. */
export function attachmentImage(
  messageId: Uuid,
  attachmentId: Uuid,
): Promise<string> {
  return unwrap(commands.attachmentImage(messageId, attachmentId));
}

/** Opens an attachment with the system's program for its type, downloading it first. */
export function openAttachment(
  messageId: Uuid,
  attachmentId: Uuid,
): Promise<void> {
  return done(commands.openAttachment(messageId, attachmentId));
}

// Uploads. They need the server, so offline they reject with a `network` error.

/** Header of a `stage_upload` request with the file's name, as the shell reads it. */
const FILE_NAME_HEADER = 'x-roomler-file-name';

/**
 * Opens the system's file dialog, titled `title`, and resolves with the paths of the
 * files chosen, none when it was closed. {@link uploadFile} takes these paths.
 */
export function chooseFiles(title: string): Promise<string[]> {
  return unwrap(commands.chooseFiles(title));
}

/**
 * Uploads the file at `path` to a room; a message then attaches it by the returned id.
 * `path` comes from {@link chooseFiles}, a drop ({@link onFileDrop}) or
 * {@link stageUpload}. `onProgress` receives the bytes sent so far. The promise rejects
 * with `cancelled` after {@link cancelUpload} with the same `uploadId`.
 */
export function uploadFile(
  roomId: Uuid,
  path: string,
  uploadId: Uuid,
  onProgress: (progress: UploadProgress) => void,
): Promise<UploadedFile> {
  const channel = new Channel<UploadProgress>();
  channel.onmessage = onProgress;
  return unwrap(commands.uploadFile(roomId, path, uploadId, channel));
}

/** Stops a running upload; resolves to false when none with that id was running. */
export function cancelUpload(uploadId: Uuid): Promise<boolean> {
  return commands.cancelUpload(uploadId);
}

/**
 * Hands a file that only the page has, such as a pasted image, to the shell as a raw
 * IPC body, and resolves with the path to give {@link uploadFile}. The generated
 * binding cannot send a raw body, so this invokes the command itself.
 */
export async function stageUpload(
  name: string,
  bytes: Uint8Array,
): Promise<string> {
  try {
    return await invoke<string>('stage_upload', bytes, {
      headers: { [FILE_NAME_HEADER]: encodeURIComponent(name) },
    });
  } catch (failure) {
    throw toCommandError(failure);
  }
}

/**
 * Calls `handler` with the paths of files dropped on the window. The shell takes the
 * drop, so the page's own `drop` event carries no files in the app.
 */
export async function onFileDrop(
  handler: (paths: string[]) => void,
): Promise<UnlistenFn> {
  // Awaited inside this async function, so that outside the shell, where
  // `getCurrentWebview` throws at once, the promise rejects instead.
  return await getCurrentWebview().onDragDropEvent((event) => {
    if (event.payload.type === 'drop' && event.payload.paths.length > 0) {
      handler(event.payload.paths);
    }
  });
}
