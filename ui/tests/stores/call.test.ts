import { createPinia, setActivePinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({
  invoke: vi.fn(),
  convertFileSrc: (path: string, protocol: string) =>
    `${protocol}://localhost/${path}`,
}));

import { invoke } from '@tauri-apps/api/core';

import type { CallRole } from '@/api/bindings';
import { useRoomsStore } from '@/stores/rooms';
import { useSessionStore } from '@/stores/session';
import {
  LEVEL_POLL_MS,
  defaultChoice,
  defaultOutput,
  useCallStore,
} from '@/stores/call';

import {
  LOST_CAMERA_MEDIA,
  WORKING_MEDIA,
  makeCachedRoom,
  makeCallParticipant,
  makeJoinedCall,
} from '../helpers/factories';

const invokeMock = vi.mocked(invoke);

const ROOM = 'room-1';

/** Replies to the call commands like the shell and records every call. */
function shell(overrides: Record<string, (args: unknown) => unknown> = {}) {
  const calls: Array<[string, unknown]> = [];
  invokeMock.mockImplementation(async (command: string, args?: unknown) => {
    calls.push([command, args]);
    const override = overrides[command];
    if (override) {
      return override(args);
    }
    switch (command) {
      case 'call_devices':
        return {
          cameras: [],
          microphones: [
            { name: 'USB mic', description: '', is_default: false },
            { name: 'Built-in', description: '', is_default: true },
          ],
          speakers: [],
          problems: [],
        };
      case 'join_call':
        return makeJoinedCall({ participants: [makeCallParticipant(1)] });
      case 'call_levels':
        return [
          { tile: 'local', dbov: -10 },
          { tile: '1', dbov: -30 },
        ];
      case 'room_calls':
        return [];
      default:
        return null;
    }
  });
  return calls;
}

beforeEach(() => {
  setActivePinia(createPinia());
  invokeMock.mockReset();
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('defaultChoice', () => {
  it('takes the default device, else the first, else the synthetic source', () => {
    const device = (name: string, is_default = false) => ({
      name,
      description: '',
      is_default,
    });
    expect(defaultChoice([device('a'), device('b', true)])).toEqual({
      source: 'device',
      name: 'b',
    });
    expect(defaultChoice([device('a')])).toEqual({
      source: 'device',
      name: 'a',
    });
    expect(defaultChoice([])).toEqual({ source: 'synthetic' });
  });
});

describe('defaultOutput', () => {
  it('takes a speaker when there is one, else no sound', () => {
    const speaker = { name: 'Headset', description: '', is_default: false };
    expect(defaultOutput([speaker])).toEqual({
      source: 'device',
      name: 'Headset',
    });
    expect(defaultOutput([])).toEqual({ source: 'off' });
  });
});

describe('call store', () => {
  it('previews the default devices, joins, and leaves', async () => {
    const calls = shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    expect(call.phase).toBe('prejoin');
    // No camera here, so the test pattern; the default microphone.
    expect(calls).toContainEqual([
      'start_call_preview',
      {
        roomId: ROOM,
        media: {
          camera: { source: 'synthetic' },
          microphone: { source: 'device', name: 'Built-in' },
          speaker: { source: 'off' },
        },
      },
    ]);

    expect(await call.join()).toBe(true);
    expect(call.phase).toBe('joined');
    expect(call.tiles.map((tile) => tile.key)).toEqual(['local', '1']);
    expect(calls).toContainEqual([
      'set_visible_tiles',
      { large: [1], medium: [], small: [] },
    ]);

    await call.leave();
    expect(call.phase).toBe('idle');
    expect(call.tiles.map((tile) => tile.key)).toEqual(['local']);
    expect(calls.at(-1)?.[0]).toBe('leave_call');
  });

  it('keeps the pre-join screen with the error when joining fails', async () => {
    const calls = shell({
      join_call: () => {
        throw {
          code: 'rejected',
          message: 'You are not a member of this room.',
          server_code: 'not_a_member',
          retryable: false,
        };
      },
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    expect(await call.join()).toBe(false);
    expect(call.phase).toBe('prejoin');
    expect(call.error).toBe('You are not a member of this room.');
    const previews = calls.filter(
      ([command]) => command === 'start_call_preview',
    );
    expect(previews).toHaveLength(2);
  });

  it("takes the engine's participant list of its own call only", async () => {
    shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    const ownFeed = call.ownFeed;
    call.participantsChanged({
      room_id: ROOM,
      feed_id: ownFeed!,
      participants: [
        { ...makeCallParticipant(1), audio_muted: true },
        makeCallParticipant(2),
      ],
    });
    call.participantsChanged({
      room_id: 'another-room',
      feed_id: 7,
      participants: [makeCallParticipant(3)],
    });
    expect(call.tiles.map((tile) => [tile.key, tile.audioMuted])).toEqual([
      ['local', false],
      ['1', true],
      ['2', false],
    ]);
  });

  it('takes the new own feed after the engine joined again', async () => {
    shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    // A new join gave the user feed 101; the old feed 100 is gone for good.
    call.participantsChanged({
      room_id: ROOM,
      feed_id: 101,
      participants: [makeCallParticipant(2)],
    });
    expect(call.ownFeed).toBe(101);
    expect(call.tiles.map((tile) => tile.key)).toEqual(['local', '2']);
    expect(call.tiles[0]!.feedId).toBe(101);
  });

  it('decodes only the tiles of the page or the featured speaker', async () => {
    const many = Array.from({ length: 30 }, (_, index) =>
      makeCallParticipant(index + 1),
    );
    const calls = shell({
      join_call: () => makeJoinedCall({ participants: many }),
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    // The self view and 24 others on the first page, all small.
    expect(call.paged.pages).toBe(2);
    expect(call.visibleFeeds).toEqual(
      many.slice(0, 24).map((each) => each.feed_id),
    );
    expect(call.shownTileSize).toBe('small');
    expect(calls.at(-1)).toEqual([
      'set_visible_tiles',
      {
        large: [],
        medium: [],
        small: many.slice(0, 24).map((each) => each.feed_id),
      },
    ]);
    // Six others on the second page: between five and nine tiles.
    await call.setPage(1);
    expect(call.visibleFeeds).toEqual(
      many.slice(24).map((each) => each.feed_id),
    );
    expect(calls.at(-1)).toEqual([
      'set_visible_tiles',
      {
        large: [],
        medium: many.slice(24).map((each) => each.feed_id),
        small: [],
      },
    ]);
    await call.setLayout('speaker');
    expect(call.visibleFeeds).toEqual([1]);
    expect(call.shownTileSize).toBe('large');
    expect(calls.at(-1)).toEqual([
      'set_visible_tiles',
      { large: [1], medium: [], small: [] },
    ]);
  });

  it('lowers the layer as a page fills up', async () => {
    const calls = shell({
      join_call: () =>
        makeJoinedCall({
          participants: [1, 2, 3].map((feed) => makeCallParticipant(feed)),
        }),
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    // The self view and three others: four large tiles.
    expect(call.shownTileSize).toBe('large');
    expect(calls.at(-1)).toEqual([
      'set_visible_tiles',
      { large: [1, 2, 3], medium: [], small: [] },
    ]);
    const tileCalls = () =>
      calls.filter(([command]) => command === 'set_visible_tiles');
    const others = (count: number) =>
      Array.from({ length: count }, (_, index) => index + 1);

    // Five tiles, up to nine: the half-size layer.
    call.participantsChanged({
      room_id: ROOM,
      feed_id: 100,
      participants: others(4).map((feed) => makeCallParticipant(feed)),
    });
    expect(call.shownTileSize).toBe('medium');
    expect(tileCalls().at(-1)).toEqual([
      'set_visible_tiles',
      { large: [], medium: others(4), small: [] },
    ]);
    call.participantsChanged({
      room_id: ROOM,
      feed_id: 100,
      participants: others(8).map((feed) => makeCallParticipant(feed)),
    });
    expect(call.shownTileSize).toBe('medium');

    // Ten tiles: the lowest layer.
    call.participantsChanged({
      room_id: ROOM,
      feed_id: 100,
      participants: others(9).map((feed) => makeCallParticipant(feed)),
    });
    expect(call.shownTileSize).toBe('small');
    expect(tileCalls().at(-1)).toEqual([
      'set_visible_tiles',
      { large: [], medium: [], small: others(9) },
    ]);
  });

  it('polls levels without the own voice', async () => {
    shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    await vi.advanceTimersByTimeAsync(LEVEL_POLL_MS);
    expect(call.levels.local).toBe(-10);
    // Before joining, the own voice is all there is.
    expect(call.activeSpeaker).toBe('local');
    await call.join();
    await vi.advanceTimersByTimeAsync(LEVEL_POLL_MS);
    expect(call.activeSpeaker).toBe('1');
  });

  it('ends the call that the server removed the user from', async () => {
    shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    call.ended('another-room', 'elsewhere');
    expect(call.phase).toBe('joined');
    call.ended(ROOM, 'a moderator banned you from the room');
    expect(call.phase).toBe('idle');
    expect(call.error).toBe('a moderator banned you from the room');
  });

  it('switches devices in the call and keeps the old ones on failure', async () => {
    const calls = shell({
      switch_call_media: (args) => {
        const media = (args as { media: { camera: { source: string } } }).media;
        if (media.camera.source === 'device') {
          throw {
            code: 'invalid_input',
            message: 'no camera found named "Front"; pick another camera',
            server_code: null,
            retryable: false,
          };
        }
        return null;
      },
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    const speaker = { source: 'device' as const, name: 'Headset' };
    await call.chooseMedia({ ...call.media, speaker });
    expect(call.media.speaker).toEqual(speaker);
    expect(calls.at(-1)?.[0]).toBe('switch_call_media');

    await call.chooseMedia({
      ...call.media,
      camera: { source: 'device', name: 'Front' },
    });
    expect(call.media.camera).toEqual({ source: 'synthetic' });
    expect(call.error).toContain('"Front"');
  });

  it('switches the microphone and camera through the shell', async () => {
    const calls = shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    await call.toggleMuted();
    await call.toggleCamera();
    expect(call.muted).toBe(true);
    expect(call.cameraOff).toBe(true);
    expect(calls).toContainEqual(['set_call_muted', { muted: true }]);
    expect(calls).toContainEqual(['set_call_camera_off', { off: true }]);
    expect(call.tiles[0]).toMatchObject({ audioMuted: true, cameraOff: true });
  });
});

describe('own media', () => {
  it('starts from the media state of the join', async () => {
    shell({
      join_call: () => makeJoinedCall({ media: LOST_CAMERA_MEDIA }),
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    expect(call.cameraOff).toBe(true);
    expect(call.muted).toBe(false);
    expect(call.mediaProblems).toEqual(LOST_CAMERA_MEDIA.problems);
  });

  it('follows lost devices and the real switches', async () => {
    shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    expect(call.mediaProblems).toEqual([]);

    call.mediaChanged({ room_id: ROOM, media: LOST_CAMERA_MEDIA });
    expect(call.cameraOff).toBe(true);
    expect(call.mediaProblems).toHaveLength(1);
    const self = call.tiles.find((tile) => tile.self);
    expect(self?.cameraOff).toBe(true);

    // Another room's call changes nothing.
    call.mediaChanged({ room_id: 'room-2', media: WORKING_MEDIA });
    expect(call.cameraOff).toBe(true);

    // A switch to working devices brings the camera back.
    call.mediaChanged({ room_id: ROOM, media: WORKING_MEDIA });
    expect(call.cameraOff).toBe(false);
    expect(call.mediaProblems).toEqual([]);
  });

  it('shows devices lost in the preview until others are picked', async () => {
    shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    call.mediaChanged({ room_id: ROOM, media: LOST_CAMERA_MEDIA });
    expect(call.mediaProblems).toEqual(LOST_CAMERA_MEDIA.problems);
    // The switches stay the user's choice for the join.
    expect(call.cameraOff).toBe(false);

    await call.chooseMedia({
      camera: { source: 'synthetic' },
      microphone: { source: 'synthetic' },
      speaker: { source: 'off' },
    });
    expect(call.mediaProblems).toEqual([]);
  });

  it('ignores media states outside a call and forgets them on leaving', async () => {
    shell();
    const call = useCallStore();
    call.mediaChanged({ room_id: ROOM, media: LOST_CAMERA_MEDIA });
    expect(call.mediaProblems).toEqual([]);

    await call.prepare(ROOM);
    await call.join();
    call.mediaChanged({ room_id: ROOM, media: LOST_CAMERA_MEDIA });
    await call.leave();
    expect(call.mediaProblems).toEqual([]);
  });
});

describe('presentation', () => {
  /** Joins as `role` a presentation with a host (feed 1) and an audience member (feed 2). */
  async function joinPresentation(role: CallRole) {
    const calls = shell({
      join_call: () =>
        makeJoinedCall({
          participants: [
            makeCallParticipant(1, { role: 'host' }),
            makeCallParticipant(2, { role: 'audience' }),
          ],
          format: 'presentation',
          role,
        }),
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    return { calls, call };
  }

  it('starts a call in the format chosen before joining', async () => {
    const calls = shell();
    const call = useCallStore();
    await call.prepare(ROOM);
    call.startFormat = 'presentation';
    await call.join();
    const join = calls.find(([command]) => command === 'join_call');
    expect(join?.[1]).toMatchObject({ format: 'presentation' });
  });

  it('sends no format when joining a call already going on', async () => {
    const calls = shell({
      room_calls: () => [
        {
          room_id: ROOM,
          call: {
            call_id: 'call-1',
            format: 'presentation',
            participant_count: 1,
            started_at: '2026-01-01T00:00:00Z',
          },
        },
      ],
    });
    const call = useCallStore();
    await call.refreshCalls();
    await call.prepare(ROOM);
    expect(call.ongoing?.format).toBe('presentation');
    // A member who does not moderate the room joins its presentation as the
    // audience, so the pre-join screen opens no camera or microphone.
    expect(call.joinsAudience).toBe(true);
    expect(calls.map(([command]) => command)).not.toContain(
      'start_call_preview',
    );
    call.startFormat = 'meeting';
    await call.join();
    const join = calls.find(([command]) => command === 'join_call');
    expect(join?.[1]).toMatchObject({ format: null });
  });

  it('previews the devices of a moderator joining a presentation', async () => {
    const calls = shell({
      room_calls: () => [
        {
          room_id: ROOM,
          call: {
            call_id: 'call-1',
            format: 'presentation',
            participant_count: 1,
            started_at: '2026-01-01T00:00:00Z',
          },
        },
      ],
    });
    useRoomsStore().rooms = [makeCachedRoom({ id: ROOM, role: 'moderator' })];
    const call = useCallStore();
    await call.refreshCalls();
    await call.prepare(ROOM);
    expect(call.joinsAudience).toBe(false);
    expect(calls.map(([command]) => command)).toContain('start_call_preview');
  });

  it('shows the audience only the stage and counts the audience', async () => {
    const { call } = await joinPresentation('audience');
    expect(call.onStageSelf).toBe(false);
    expect(call.tiles.map((tile) => tile.key)).toEqual(['1']);
    expect(call.audienceCount).toBe(2);
    expect(call.isHost).toBe(false);
  });

  it('raises and lowers the own hand through the shell', async () => {
    const { calls, call } = await joinPresentation('audience');
    await call.toggleHand();
    expect(calls.at(-1)).toEqual(['raise_call_hand', undefined]);
    expect(call.handRaised).toBe(true);
    await call.toggleHand();
    expect(calls.at(-1)).toEqual(['lower_call_hand', { userId: null }]);
    expect(call.handRaised).toBe(false);
  });

  it('puts the user on the stage when a host lets them speak', async () => {
    const { call } = await joinPresentation('audience');
    await call.toggleHand();
    call.apply(ROOM, {
      event: 'role_changed',
      user_id: 'me',
      feed_id: 100,
      role: 'speaker',
    });
    expect(call.role).toBe('speaker');
    expect(call.handRaised).toBe(false);
    expect(call.tiles.map((tile) => tile.key)).toEqual(['local', '1']);
    expect(call.audienceCount).toBe(1);
  });

  it('lets an invited speaker go back to the audience', async () => {
    const { calls, call } = await joinPresentation('speaker');
    useSessionStore().status = {
      logged_in: true,
      user_id: 'me',
      username: 'me',
      server_url: 'http://127.0.0.1:3000',
      connection: { state: 'online' },
    };
    await call.leaveStage();
    expect(calls.at(-1)).toEqual(['move_to_audience', { userId: 'me' }]);
    call.apply(ROOM, {
      event: 'role_changed',
      user_id: 'me',
      feed_id: 100,
      role: 'audience',
    });
    expect(call.onStageSelf).toBe(false);
    expect(call.tiles.map((tile) => tile.key)).toEqual(['1']);
  });

  it('lists raised hands for a host, who lets them speak', async () => {
    const { calls, call } = await joinPresentation('host');
    expect(call.isHost).toBe(true);
    const host = { ...makeCallParticipant(1), role: 'host' as const };
    call.participantsChanged({
      room_id: ROOM,
      feed_id: 100,
      participants: [
        host,
        { ...makeCallParticipant(2), role: 'audience', hand_raised: true },
      ],
    });
    expect(call.raisedHands.map((each) => each.user_id)).toEqual(['user-2']);

    await call.letSpeak('user-2');
    expect(calls.at(-1)).toEqual(['invite_to_speak', { userId: 'user-2' }]);
    call.participantsChanged({
      room_id: ROOM,
      feed_id: 100,
      participants: [host, makeCallParticipant(2)],
    });
    expect(call.raisedHands).toEqual([]);
    expect(call.speakers.map((each) => each.user_id)).toEqual(['user-2']);
    expect(call.tiles.map((tile) => tile.key)).toEqual(['local', '1', '2']);

    await call.sendToAudience('user-2');
    expect(calls.at(-1)).toEqual(['move_to_audience', { userId: 'user-2' }]);
  });

  it('shows a refused invitation as the error', async () => {
    shell({
      join_call: () =>
        makeJoinedCall({ format: 'presentation', role: 'audience' }),
      invite_to_speak: () => {
        throw {
          code: 'rejected',
          message:
            'Only a host of the presentation may invite someone to speak.',
          server_code: 'forbidden',
          retryable: false,
        };
      },
    });
    const call = useCallStore();
    await call.prepare(ROOM);
    await call.join();
    await call.letSpeak('user-2');
    expect(call.error).toBe(
      'Only a host of the presentation may invite someone to speak.',
    );
  });
});
