import type { RoomTimeline } from '@/stores/timeline';
import type {
  CachedRoom,
  CallMediaState,
  CallParticipant,
  JoinedCall,
  Member,
  Message,
  OutboxItem,
  Room,
  UserRef,
} from '@/api/bindings';

export const ME: UserRef = {
  id: 'user-me',
  username: 'me',
  display_name: 'Me Myself',
};
export const ALICE: UserRef = {
  id: 'user-alice',
  username: 'alice',
  display_name: 'Alice Liddell',
};
export const BOB: UserRef = {
  id: 'user-bob',
  username: 'bob',
  display_name: 'Bob Builder',
};

let nextSeq = 1;

/** Builds a message with every field filled; `created_at` defaults to a fixed local time. */
export function makeMessage(overrides: Partial<Message> = {}): Message {
  const seq = overrides.seq ?? nextSeq++;
  return {
    id: `message-${seq}`,
    room_id: 'room-1',
    seq,
    author: ALICE,
    body: `message ${seq}`,
    html: `<p>message ${seq}</p>`,
    mentions: [],
    reply_to: null,
    reply_count: 0,
    reactions: [],
    attachments: [],
    client_id: null,
    pinned: null,
    deleted: false,
    created_at: new Date(2024, 4, 1, 12, 0, 0).toISOString(),
    edited_at: null,
    ...overrides,
  };
}

/** Returns a May 2024 timestamp in local time, so day boundaries follow the machine's zone. */
export function localTime(
  day: number,
  hours: number,
  minutes: number,
  seconds = 0,
): string {
  return new Date(2024, 4, day, hours, minutes, seconds).toISOString();
}

export function makeMember(
  user: UserRef,
  role: Member['role'] = 'member',
): Member {
  return { user, role, joined_at: '2024-01-01T00:00:00Z' };
}

export function makeRoom(overrides: Partial<Room> = {}): Room {
  const path = overrides.path ?? 'general';
  return {
    id: `room-${path}`,
    name: path.split('.').pop() ?? path,
    path,
    kind: 'public',
    parent_id: null,
    topic: '',
    owner_id: null,
    has_password: false,
    member_count: 2,
    last_seq: 0,
    role: 'member',
    created_at: '2024-01-01T00:00:00Z',
    call: null,
    ...overrides,
  };
}

export function makeCachedRoom(
  overrides: Partial<Room> = {},
  unread = 0,
): CachedRoom {
  return { room: makeRoom(overrides), unread };
}

export function makeOutboxItem(
  overrides: Partial<OutboxItem> = {},
): OutboxItem {
  return {
    id: 7,
    kind: 'send',
    room_id: 'room-1',
    message_id: null,
    client_id: 'client-7',
    body: 'queued hello',
    reply_to: null,
    attachments: [],
    emoji: null,
    state: 'pending',
    error_code: null,
    error_message: null,
    attempts: 0,
    created_at: '2024-05-01T12:00:00Z',
    ...overrides,
  };
}

/** Builds a loaded timeline window that starts at the room's first message and ends at its newest. */
export function makeTimeline(
  overrides: Partial<RoomTimeline> = {},
): RoomTimeline {
  return {
    messages: [],
    loadingOlder: false,
    loadingNewer: false,
    complete: true,
    atNewest: true,
    firstUnreadSeq: null,
    focusId: null,
    ...overrides,
  };
}

/** The media state of a call whose devices all work. */
export const WORKING_MEDIA: CallMediaState = {
  muted: false,
  camera_off: false,
  problems: [],
};

/** The media state after the camera was lost: off, with the shell's advice. */
export const LOST_CAMERA_MEDIA: CallMediaState = {
  muted: false,
  camera_off: true,
  problems: [
    {
      kind: 'lost',
      device: 'camera',
      message:
        'camera "USB camera" was lost: no frame for 2 s; pick another camera, or the test pattern',
    },
  ],
};

/** Builds a participant with the feed `feed`: a speaker with microphone and camera on. */
export function makeCallParticipant(
  feed: number,
  overrides: Partial<CallParticipant> = {},
): CallParticipant {
  return {
    user_id: `user-${feed}`,
    username: `user${feed}`,
    display_name: `User ${feed}`,
    feed_id: feed,
    audio_muted: false,
    camera_off: false,
    role: 'speaker',
    hand_raised: false,
    ...overrides,
  };
}

/**
 * Builds the shell's reply to `join_call`: a meeting in room-1, joined as a speaker
 * with the feed 100, working devices and no other participant.
 */
export function makeJoinedCall(
  overrides: Partial<JoinedCall> = {},
): JoinedCall {
  return {
    room_id: 'room-1',
    call_id: 'call-1',
    feed_id: 100,
    media: WORKING_MEDIA,
    participants: [],
    format: 'meeting',
    role: 'speaker',
    ...overrides,
  };
}
