import { defineStore } from 'pinia';
import { computed, ref } from 'vue';

import {
  callDevices,
  callLevels,
  callStats,
  joinCall,
  leaveCall,
  roomCalls,
  setCallCameraOff,
  setCallMuted,
  setVisibleTiles,
  startCallPreview,
  stopCallPreview,
  switchCallMedia,
  toCommandError,
  type CallDevices,
  type CallEvent,
  type CallParticipant,
  type CallSummary,
  type Device,
  type InputChoice,
  type MediaChoice,
  type OutputChoice,
  type TileStats,
  type Uuid,
} from '@/api/bindings';
import {
  GRID_LARGE_TILES,
  LOCAL_TILE,
  applyCallEvent,
  paginate,
  pickActiveSpeaker,
  rateQuality,
  type CallTile,
  type Quality,
} from '@/lib/call';

/** How often the meters and the active speaker are refreshed, in milliseconds. */
export const LEVEL_POLL_MS = 200;
/** How often the quality indicators are refreshed, in milliseconds. */
export const STATS_POLL_MS = 2000;

export type CallPhase = 'idle' | 'prejoin' | 'joining' | 'joined';
export type CallLayout = 'grid' | 'speaker';

/** Returns the device a picker starts on: the default one, the first one, or the synthetic source. */
export function defaultChoice(devices: Device[]): InputChoice {
  const device =
    devices.find((candidate) => candidate.is_default) ?? devices[0];
  return device
    ? { source: 'device', name: device.name }
    : { source: 'synthetic' };
}

/** Returns the speaker a picker starts on: the default one, the first one, or none. */
export function defaultOutput(devices: Device[]): OutputChoice {
  const choice = defaultChoice(devices);
  return choice.source === 'device' ? choice : { source: 'off' };
}

/**
 * Keeps the user's call: the pre-join screen with its preview, the call itself with its
 * participants, switches, meters and quality, and the calls going on in other rooms
 * for the room list. At most one call runs at a time.
 */
export const useCallStore = defineStore('call', () => {
  const phase = ref<CallPhase>('idle');
  const roomId = ref<Uuid | null>(null);
  const ownFeed = ref<number | null>(null);
  const participants = ref<CallParticipant[]>([]);
  const muted = ref(false);
  const cameraOff = ref(false);
  const devices = ref<CallDevices | null>(null);
  const media = ref<MediaChoice>({
    camera: { source: 'synthetic' },
    microphone: { source: 'synthetic' },
    speaker: { source: 'off' },
  });
  const error = ref<string | null>(null);
  const levels = ref<Record<string, number>>({});
  const activeSpeaker = ref<string | null>(null);
  const layout = ref<CallLayout>('grid');
  const page = ref(0);
  const quality = ref<Record<string, Quality>>({});
  const calls = ref<Record<Uuid, CallSummary>>({});

  let levelTimer: ReturnType<typeof setInterval> | null = null;
  let statsTimer: ReturnType<typeof setInterval> | null = null;
  let lastStats: { at: number; byFeed: Map<number, TileStats> } | null = null;

  const tiles = computed<CallTile[]>(() => {
    const others = participants.value.map<CallTile>((participant) => ({
      key: String(participant.feed_id),
      feedId: participant.feed_id,
      userId: participant.user_id,
      name: participant.display_name || participant.username,
      audioMuted: participant.audio_muted,
      cameraOff: participant.camera_off,
      self: false,
    }));
    const self: CallTile = {
      key: LOCAL_TILE,
      feedId: ownFeed.value,
      userId: '',
      name: '',
      audioMuted: muted.value,
      cameraOff: cameraOff.value,
      self: true,
    };
    return [self, ...others];
  });

  const paged = computed(() => paginate(tiles.value, page.value));

  /** Picks the tile shown large in the speaker layout: the active speaker, else the first other. */
  const featured = computed<CallTile | null>(() => {
    const speaking = tiles.value.find(
      (tile) => tile.key === activeSpeaker.value,
    );
    return (
      speaking ??
      tiles.value.find((tile) => !tile.self) ??
      tiles.value[0] ??
      null
    );
  });

  /** Lists the remote feeds whose video is on screen in the current layout and page. */
  const visibleFeeds = computed<number[]>(() => {
    const shown =
      layout.value === 'speaker'
        ? featured.value
          ? [featured.value]
          : []
        : paged.value.items;
    return shown
      .filter((tile) => !tile.self && tile.feedId !== null)
      .map((tile) => tile.feedId!);
  });

  /**
   * Whether the shown tiles are small: on a grid page of more than
   * {@link GRID_LARGE_TILES} tiles. The speaker layout's one tile is large.
   */
  const smallTiles = computed<boolean>(
    () =>
      layout.value === 'grid' && paged.value.items.length > GRID_LARGE_TILES,
  );

  function fail(failure: unknown): void {
    error.value = toCommandError(failure).message;
  }

  async function pollLevels(): Promise<void> {
    const next: Record<string, number> = {};
    for (const level of await callLevels()) {
      next[level.tile] = level.dbov ?? -127;
    }
    levels.value = next;
    activeSpeaker.value = pickActiveSpeaker(
      // The user's own voice never takes the large tile from the others.
      Object.fromEntries(
        Object.entries(next).filter(
          ([tile]) => phase.value !== 'joined' || tile !== LOCAL_TILE,
        ),
      ),
      activeSpeaker.value,
    );
  }

  async function pollStats(): Promise<void> {
    const now = performance.now();
    const byFeed = new Map<number, TileStats>();
    for (const stats of await callStats()) {
      byFeed.set(stats.feed_id, stats);
    }
    const seconds = lastStats ? (now - lastStats.at) / 1000 : 0;
    const shown = new Set(visibleFeeds.value);
    const next: Record<string, Quality> = {};
    for (const participant of participants.value) {
      const current = byFeed.get(participant.feed_id);
      next[String(participant.feed_id)] = current
        ? rateQuality(
            lastStats?.byFeed.get(participant.feed_id),
            current,
            seconds,
            {
              audio: !participant.audio_muted,
              video: !participant.camera_off && shown.has(participant.feed_id),
            },
          )
        : 'unknown';
    }
    quality.value = next;
    lastStats = { at: now, byFeed };
  }

  function startPolling(withStats: boolean): void {
    stopPolling();
    const report = (failure: unknown) =>
      console.error('Polling the call failed:', failure);
    levelTimer = setInterval(
      () => void pollLevels().catch(report),
      LEVEL_POLL_MS,
    );
    if (withStats) {
      statsTimer = setInterval(
        () => void pollStats().catch(report),
        STATS_POLL_MS,
      );
    }
  }

  function stopPolling(): void {
    if (levelTimer !== null) {
      clearInterval(levelTimer);
      levelTimer = null;
    }
    if (statsTimer !== null) {
      clearInterval(statsTimer);
      statsTimer = null;
    }
    lastStats = null;
  }

  /** Opens the pre-join screen for `room`: device lists, preview and meter. */
  async function prepare(room: Uuid): Promise<void> {
    if (phase.value === 'joined' || phase.value === 'joining') {
      return;
    }
    phase.value = 'prejoin';
    roomId.value = room;
    error.value = null;
    try {
      const listed = await callDevices();
      devices.value = listed;
      media.value = {
        camera: defaultChoice(listed.cameras),
        microphone: defaultChoice(listed.microphones),
        speaker: defaultOutput(listed.speakers),
      };
      await startCallPreview(media.value);
    } catch (failure) {
      fail(failure);
    }
    startPolling(false);
  }

  /** Switches the preview, or the call, to other devices. */
  async function chooseMedia(choice: MediaChoice): Promise<void> {
    error.value = null;
    try {
      if (phase.value === 'prejoin') {
        await startCallPreview(choice);
      } else if (phase.value === 'joined') {
        await switchCallMedia(choice);
      }
      media.value = choice;
    } catch (failure) {
      // The old devices stay in use, and the pickers show them again.
      fail(failure);
    }
  }

  async function cancel(): Promise<void> {
    if (phase.value !== 'prejoin') {
      return;
    }
    stopPolling();
    phase.value = 'idle';
    roomId.value = null;
    levels.value = {};
    await stopCallPreview();
  }

  /** Joins the call of the room the pre-join screen is for. */
  async function join(): Promise<boolean> {
    const room = roomId.value;
    if (room === null || phase.value !== 'prejoin') {
      return false;
    }
    stopPolling();
    phase.value = 'joining';
    error.value = null;
    try {
      const joined = await joinCall(room, media.value);
      ownFeed.value = joined.feed_id;
      participants.value = joined.participants;
      muted.value = false;
      cameraOff.value = false;
      page.value = 0;
      phase.value = 'joined';
      startPolling(true);
      await syncVisible();
      return true;
    } catch (failure) {
      fail(failure);
      phase.value = 'prejoin';
      // Joining stopped the preview; the pre-join screen shows it again.
      await startCallPreview(media.value).catch(() => {});
      startPolling(false);
      return false;
    }
  }

  /** Ends the call on the page after the server removed the user from it. */
  function ended(room: Uuid, reason: string): void {
    if (roomId.value !== room || phase.value !== 'joined') {
      return;
    }
    reset();
    error.value = reason;
  }

  function reset(): void {
    stopPolling();
    phase.value = 'idle';
    roomId.value = null;
    ownFeed.value = null;
    participants.value = [];
    levels.value = {};
    activeSpeaker.value = null;
    quality.value = {};
  }

  async function leave(): Promise<void> {
    reset();
    await leaveCall();
  }

  async function toggleMuted(): Promise<void> {
    const next = !muted.value;
    try {
      await setCallMuted(next);
      muted.value = next;
    } catch (failure) {
      fail(failure);
    }
  }

  async function toggleCamera(): Promise<void> {
    const next = !cameraOff.value;
    try {
      await setCallCameraOff(next);
      cameraOff.value = next;
    } catch (failure) {
      fail(failure);
    }
  }

  async function syncVisible(): Promise<void> {
    if (phase.value === 'joined') {
      const feeds = visibleFeeds.value;
      await (smallTiles.value
        ? setVisibleTiles([], feeds)
        : setVisibleTiles(feeds, []));
    }
  }

  async function setPage(next: number): Promise<void> {
    page.value = paginate(tiles.value, next).page;
    await syncVisible();
  }

  async function setLayout(next: CallLayout): Promise<void> {
    layout.value = next;
    await syncVisible();
  }

  async function refreshCalls(): Promise<void> {
    const next: Record<Uuid, CallSummary> = {};
    for (const call of await roomCalls()) {
      next[call.room_id] = call.call;
    }
    calls.value = next;
  }

  /** Follows a call event from the engine: the room list's calls and, for this call, its participants. */
  function apply(eventRoom: Uuid, event: CallEvent): void {
    if (phase.value === 'joined' && eventRoom === roomId.value) {
      participants.value = applyCallEvent(
        participants.value,
        event,
        ownFeed.value,
      );
      page.value = paginate(tiles.value, page.value).page;
      if (
        event.event === 'participant_joined' ||
        event.event === 'participant_left'
      ) {
        void syncVisible().catch((failure: unknown) => console.error(failure));
      }
    }
    if (
      ['started', 'ended', 'participant_joined', 'participant_left'].includes(
        event.event,
      )
    ) {
      void refreshCalls().catch((failure: unknown) => console.error(failure));
    }
  }

  return {
    phase,
    roomId,
    ownFeed,
    participants,
    muted,
    cameraOff,
    devices,
    media,
    error,
    levels,
    activeSpeaker,
    layout,
    page,
    quality,
    calls,
    tiles,
    paged,
    featured,
    visibleFeeds,
    smallTiles,
    prepare,
    chooseMedia,
    cancel,
    join,
    leave,
    reset,
    ended,
    toggleMuted,
    toggleCamera,
    setPage,
    setLayout,
    refreshCalls,
    apply,
    pollLevels,
    pollStats,
  };
});
