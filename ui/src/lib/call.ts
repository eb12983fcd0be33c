// The logic of the call view that does not touch the page: paging the tiles,
// picking the active speaker and rating each participant's connection.

import type {
  CallFormat,
  CallMediaProblem,
  CallRole,
  TileStats,
} from '@/api/bindings';

/** Tiles on one page of the grid. */
export const PAGE_SIZE = 25;
/**
 * Grid pages of at most this many tiles, the self view included, receive the
 * full-size simulcast layer. The grid shares the panel's width among the tiles,
 * so on a fuller page each tile is smaller and receives a lower layer. The
 * engine's `TileSize::in_grid` uses the same numbers for `roomler call`.
 */
export const GRID_LARGE_TILES = 4;
/**
 * Grid pages of more than {@link GRID_LARGE_TILES} and at most this many tiles
 * receive the half-size layer. Fuller pages receive the lowest layer.
 */
export const GRID_MEDIUM_TILES = 9;

/** How the call view arranges the tiles: a grid, or the active speaker large. */
export type CallLayout = 'grid' | 'speaker';

/** The simulcast layer a tile receives, by how much of the view it takes. */
export type TileSize = 'large' | 'medium' | 'small';

/**
 * Returns the size of each tile on a page of `tiles` tiles, the self view
 * included, in the grid or in the speaker layout, whose one tile is large.
 */
export function tileSize(layout: CallLayout, tiles: number): TileSize {
  if (layout === 'speaker' || tiles <= GRID_LARGE_TILES) {
    return 'large';
  }
  return tiles <= GRID_MEDIUM_TILES ? 'medium' : 'small';
}
/** A tile louder than this, in dBov, counts as speaking. */
export const SPEAKING_DBOV = -45;
/** The active speaker keeps the highlight until another is this many dB louder. */
export const SPEAKER_HYSTERESIS_DB = 6;
/** Opus frames per second of a stream that is not muted. */
const AUDIO_FRAMES_PER_SECOND = 50;

/** The name of the self view's tile, as the shell's picture URLs spell it. */
export const LOCAL_TILE = 'local';

/** One tile of the grid: the self view or a remote participant. */
export interface CallTile {
  /** `local`, or the participant's feed id as text. */
  key: string;
  feedId: number | null;
  userId: string;
  name: string;
  audioMuted: boolean;
  cameraOff: boolean;
  self: boolean;
}

/** Returns whether a participant with `role` is on the stage in a call of `format`. */
export function onStage(format: CallFormat, role: CallRole): boolean {
  return format === 'meeting' || role !== 'audience';
}

/** Splits `items` into pages of `size` and returns page `page` (from 0), clamped. */
export function paginate<T>(
  items: T[],
  page: number,
  size = PAGE_SIZE,
): { items: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const clamped = Math.min(Math.max(0, page), pages - 1);
  return {
    items: items.slice(clamped * size, (clamped + 1) * size),
    page: clamped,
    pages,
  };
}

/**
 * Picks the tile that speaks loudest above {@link SPEAKING_DBOV}. The current speaker
 * keeps the highlight while it still speaks and no one is
 * {@link SPEAKER_HYSTERESIS_DB} louder, so that the highlight does not flicker between
 * two people talking at once. Returns `null` when no one speaks.
 */
export function pickActiveSpeaker(
  levels: Record<string, number>,
  current: string | null,
): string | null {
  let loudest: string | null = null;
  for (const [tile, dbov] of Object.entries(levels)) {
    if (
      dbov >= SPEAKING_DBOV &&
      (loudest === null || dbov > levels[loudest]!)
    ) {
      loudest = tile;
    }
  }
  if (loudest === null) {
    return null;
  }
  const currentLevel = current === null ? undefined : levels[current];
  if (
    current !== null &&
    currentLevel !== undefined &&
    currentLevel >= SPEAKING_DBOV &&
    levels[loudest]! - currentLevel < SPEAKER_HYSTERESIS_DB
  ) {
    return current;
  }
  return loudest;
}

export type Quality = 'good' | 'fair' | 'poor' | 'unknown';

/**
 * Rates what a participant's streams delivered between two statistics samples taken
 * `seconds` apart: the share of audio frames played and the decoded video frame rate.
 * Each counts only where the participant sends it (not muted, camera on) and the tile
 * shows it. Returns `unknown` when nothing is expected.
 */
export function rateQuality(
  previous: TileStats | undefined,
  next: TileStats,
  seconds: number,
  expect: { audio: boolean; video: boolean },
): Quality {
  if (!previous || seconds <= 0 || (!expect.audio && !expect.video)) {
    return 'unknown';
  }
  let score = 2;
  if (expect.audio) {
    const played =
      (next.audio_frames_decoded - previous.audio_frames_decoded) /
      (AUDIO_FRAMES_PER_SECOND * seconds);
    score = Math.min(score, grade(played, 0.9, 0.6));
  }
  if (expect.video) {
    const fps =
      (next.video_frames_decoded - previous.video_frames_decoded) / seconds;
    score = Math.min(score, grade(fps, 20, 8));
  }
  const ratings: Quality[] = ['poor', 'fair', 'good'];
  return ratings[score]!;
}

/** Returns 2 for a value at or above `good`, 1 at or above `fair`, else 0. */
function grade(value: number, good: number, fair: number): number {
  if (value >= good) {
    return 2;
  }
  if (value >= fair) {
    return 1;
  }
  return 0;
}

/** Reads the header of a picture from the shell: size and sequence number. */
export function parseFrameHeader(
  buffer: ArrayBuffer,
): { width: number; height: number; seq: number } | null {
  if (buffer.byteLength < 16) {
    return null;
  }
  const view = new DataView(buffer);
  const width = view.getUint32(0, true);
  const height = view.getUint32(4, true);
  // Sequence numbers stay far below 2^53.
  const seq = Number(view.getBigUint64(8, true));
  if (buffer.byteLength !== 16 + width * height * 4) {
    return null;
  }
  return { width, height, seq };
}

/** Returns the translation key of a media problem's headline: what stopped. */
export function problemTitleKey(problem: CallMediaProblem): string {
  if (problem.kind === 'lost' && problem.device !== null) {
    return `call.problem.lost.${problem.device}`;
  }
  return 'call.problem.publishFailed';
}
