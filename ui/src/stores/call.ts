import { defineStore } from 'pinia';
import { computed, ref } from 'vue';

import {
  callDevices,
  callLevels,
  callStats,
  inviteToSpeak,
  joinCall,
  leaveCall,
  lowerCallHand,
  moveToAudience,
  raiseCallHand,
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
  type CallFormat,
  type CallMedia,
  type CallMediaProblem,
  type CallParticipant,
  type CallParticipants,
  type CallRole,
  type CallSummary,
  type Device,
  type InputChoice,
  type MediaChoice,
  type OutputChoice,
  type TileStats,
  type Uuid,
} from '@/api/bindings';
import {
  LOCAL_TILE,
  onStage,
  paginate,
  pickActiveSpeaker,
  rateQuality,
  tileSize,
  type CallLayout,
  type CallTile,
  type Quality,
  type TileSize,
} from '@/lib/call';
import { useRoomsStore } from '@/stores/rooms';
import { useSessionStore } from '@/stores/session';

/** How often the meters and the active speaker are refreshed, in milliseconds. */
export const LEVEL_POLL_MS = 200;
/** How often the quality indicators are refreshed, in milliseconds. */
export const STATS_POLL_MS = 2000;

export type CallPhase = 'idle' | 'prejoin' | 'joining' | 'joined';
export type { CallLayout } from '@/lib/call';

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
 * for the room list. At most one call runs at a time. In a presentation the tiles
 * show the stage (hosts and invited speakers); the audience is only counted.
 */
export const useCallStore = defineStore('call', () => {
  const session = useSessionStore();
  const phase = ref<CallPhase>('idle');
  const roomId = ref<Uuid | null>(null);
  const ownFeed = ref<number | null>(null);
  const participants = ref<CallParticipant[]>([]);
  /** Whether the others hear nothing: the user muted, or the microphone was lost. */
  const muted = ref(false);
  /** Whether the others see the camera as off: the user turned it off, or the camera was lost. */
  const cameraOff = ref(false);
  /** The devices lost during the call, and a failed publish after an invitation to speak. */
  const mediaProblems = ref<CallMediaProblem[]>([]);
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
  /** The format of the joined call. */
  const format = ref<CallFormat>('meeting');
  /** The format the pre-join screen starts a call with, when none is going on. */
  const startFormat = ref<CallFormat>('meeting');
  const role = ref<CallRole>('speaker');
  const handRaised = ref(false);

  let levelTimer: ReturnType<typeof setInterval> | null = null;
  let statsTimer: ReturnType<typeof setInterval> | null = null;
  let lastStats: { at: number; byFeed: Map<number, TileStats> } | null = null;

  /** The call going on in the pre-join screen's room, which keeps its own format. */
  const ongoing = computed<CallSummary | null>(() =>
    roomId.value === null ? null : (calls.value[roomId.value] ?? null),
  );
  /**
   * Whether the pre-join screen's join lands in the audience: the room's presentation
   * is going on, and the user neither owns nor moderates the room. The audience needs
   * no camera or microphone, so the screen opens none.
   */
  const joinsAudience = computed(() => {
    if (ongoing.value?.format !== 'presentation' || roomId.value === null) {
      return false;
    }
    const roomRole = useRoomsStore().find(roomId.value)?.room.role;
    return roomRole !== 'owner' && roomRole !== 'moderator';
  });
  const onStageSelf = computed(() => onStage(format.value, role.value));
  const isHost = computed(() => role.value === 'host');
  const stage = computed(() =>
    participants.value.filter((participant) =>
      onStage(format.value, participant.role),
    ),
  );
  /** Counts the audience of a presentation, the user included; 0 in a meeting. */
  const audienceCount = computed(() => {
    if (format.value === 'meeting') {
      return 0;
    }
    const others = participants.value.length - stage.value.length;
    return others + (onStageSelf.value ? 0 : 1);
  });
  const raisedHands = computed(() =>
    participants.value.filter((participant) => participant.hand_raised),
  );
  /** The invited speakers, whom a host may move back to the audience. */
  const speakers = computed(() =>
    participants.value.filter((participant) => participant.role === 'speaker'),
  );

  const tiles = computed<CallTile[]>(() => {
    const others = stage.value.map<CallTile>((participant) => ({
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
    return onStageSelf.value ? [self, ...others] : others;
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

  /** The size of the shown tiles, which picks the simulcast layer they receive. */
  const shownTileSize = computed<TileSize>(() =>
    tileSize(layout.value, paged.value.items.length),
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
    mediaProblems.value = [];
    try {
      const listed = await callDevices();
      devices.value = listed;
      media.value = {
        camera: defaultChoice(listed.cameras),
        microphone: defaultChoice(listed.microphones),
        speaker: defaultOutput(listed.speakers),
      };
      if (!joinsAudience.value) {
        await startCallPreview(room, media.value);
      }
    } catch (failure) {
      fail(failure);
    }
    startPolling(false);
  }

  /** Switches the preview, or the call, to other devices. */
  async function chooseMedia(choice: MediaChoice): Promise<void> {
    error.value = null;
    try {
      if (phase.value === 'prejoin' && !joinsAudience.value && roomId.value) {
        await startCallPreview(roomId.value, choice);
        // The new devices replace the ones the preview lost.
        mediaProblems.value = [];
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
      const starting = ongoing.value === null;
      const joined = await joinCall(
        room,
        media.value,
        starting ? startFormat.value : null,
      );
      ownFeed.value = joined.feed_id;
      participants.value = joined.participants;
      format.value = joined.format;
      role.value = joined.role;
      handRaised.value = false;
      muted.value = joined.media.muted;
      cameraOff.value = joined.media.camera_off;
      mediaProblems.value = joined.media.problems;
      page.value = 0;
      phase.value = 'joined';
      startPolling(true);
      await syncVisible();
      return true;
    } catch (failure) {
      fail(failure);
      phase.value = 'prejoin';
      // Joining stopped the preview; the pre-join screen shows it again.
      if (!joinsAudience.value) {
        await startCallPreview(room, media.value).catch(() => {});
      }
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
    format.value = 'meeting';
    role.value = 'speaker';
    handRaised.value = false;
    mediaProblems.value = [];
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

  /** Raises or lowers the user's hand, in the audience of a presentation. */
  async function toggleHand(): Promise<void> {
    const next = !handRaised.value;
    try {
      await (next ? raiseCallHand() : lowerCallHand(null));
      handRaised.value = next;
    } catch (failure) {
      fail(failure);
    }
  }

  /** As a host, lets an audience member speak. */
  async function letSpeak(userId: Uuid): Promise<void> {
    try {
      await inviteToSpeak(userId);
    } catch (failure) {
      fail(failure);
    }
  }

  /** Moves a speaker back to the audience: as a host, or the user themselves. */
  async function sendToAudience(userId: Uuid): Promise<void> {
    try {
      await moveToAudience(userId);
    } catch (failure) {
      fail(failure);
    }
  }

  /** Leaves the stage as an invited speaker, back to the audience. */
  async function leaveStage(): Promise<void> {
    if (session.userId !== null) {
      await sendToAudience(session.userId);
    }
  }

  /** As a host, lowers someone's hand without letting them speak. */
  async function dismissHand(userId: Uuid): Promise<void> {
    try {
      await lowerCallHand(userId);
    } catch (failure) {
      fail(failure);
    }
  }

  async function syncVisible(): Promise<void> {
    if (phase.value === 'joined') {
      const feeds = visibleFeeds.value;
      const size = shownTileSize.value;
      await setVisibleTiles(
        size === 'large' ? feeds : [],
        size === 'medium' ? feeds : [],
        size === 'small' ? feeds : [],
      );
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

  /**
   * Takes the engine's participant list of this call and the user's own feed, which
   * a new join after a lost connection replaces.
   */
  function participantsChanged(event: CallParticipants): void {
    if (phase.value !== 'joined' || event.room_id !== roomId.value) {
      return;
    }
    // The stage shows hosts and speakers only, so a role change moves tiles too.
    const feeds = (list: CallParticipant[]) =>
      list
        .map((participant) => `${participant.feed_id}:${participant.role}`)
        .join(',');
    const moved =
      feeds(event.participants) !== feeds(participants.value) ||
      event.feed_id !== ownFeed.value;
    ownFeed.value = event.feed_id;
    participants.value = event.participants;
    page.value = paginate(tiles.value, page.value).page;
    if (moved) {
      void syncVisible().catch((failure: unknown) => console.error(failure));
    }
  }

  /**
   * Takes the state of the user's own media from the engine: the mute and camera
   * switches as the others see them, and the devices lost during the call or
   * during the pre-join preview.
   */
  function mediaChanged(event: CallMedia): void {
    if (event.room_id !== roomId.value) {
      return;
    }
    if (phase.value === 'prejoin') {
      // The preview's lost devices: the switches are the user's choice for the join.
      mediaProblems.value = event.media.problems;
      return;
    }
    if (phase.value !== 'joined') {
      return;
    }
    muted.value = event.media.muted;
    cameraOff.value = event.media.camera_off;
    mediaProblems.value = event.media.problems;
  }

  /** Follows a call event from the engine: the user's own role and hand, and the room list's calls. */
  function apply(eventRoom: Uuid, event: CallEvent): void {
    if (phase.value === 'joined' && eventRoom === roomId.value) {
      applyOwn(event);
    }
    if (
      ['started', 'ended', 'participant_joined', 'participant_left'].includes(
        event.event,
      )
    ) {
      void refreshCalls().catch((failure: unknown) => console.error(failure));
    }
  }

  /** Follows the events about the user: a role change and a hand a host lowered. */
  function applyOwn(event: CallEvent): void {
    if (event.event === 'role_changed' && event.feed_id === ownFeed.value) {
      role.value = event.role;
      handRaised.value = false;
    } else if (
      event.event === 'hand_lowered' &&
      event.user_id === session.userId
    ) {
      handRaised.value = false;
    }
  }

  return {
    phase,
    roomId,
    ownFeed,
    participants,
    muted,
    cameraOff,
    mediaProblems,
    devices,
    media,
    error,
    levels,
    activeSpeaker,
    layout,
    page,
    quality,
    calls,
    format,
    startFormat,
    role,
    handRaised,
    ongoing,
    joinsAudience,
    onStageSelf,
    isHost,
    audienceCount,
    raisedHands,
    speakers,
    tiles,
    paged,
    featured,
    visibleFeeds,
    shownTileSize,
    prepare,
    chooseMedia,
    cancel,
    join,
    leave,
    reset,
    ended,
    toggleMuted,
    toggleCamera,
    toggleHand,
    letSpeak,
    sendToAudience,
    leaveStage,
    dismissHand,
    setPage,
    setLayout,
    refreshCalls,
    apply,
    participantsChanged,
    mediaChanged,
    pollLevels,
    pollStats,
  };
});
