import { onUnmounted, watch, type Ref } from 'vue';

import { frameUrl } from '@/api/bindings';
import { parseFrameHeader } from '@/lib/call';

/** Pictures fetched per second and tile at most; the shell keeps only the newest. */
export const TILE_FPS = 15;

/**
 * A recorder of the picture transport's timings. The call view benchmark
 * (tests/src/bin/call_view_bench.rs) installs one as `window.roomlerFrameProbe`
 * through WebDriver. Without it, each fetch only reads that unset property.
 */
export interface FrameProbe {
  /**
   * Receives one fetch of `tile`: the HTTP status, the milliseconds from the
   * fetch's start to the ArrayBuffer, the milliseconds from there to the end of
   * the draw (0 when nothing was drawn), and the bytes of the body.
   */
  record(
    tile: string,
    status: number,
    fetchMs: number,
    drawMs: number,
    bytes: number,
  ): void;
}

/**
 * Draws the newest pictures of `tile` into `canvas` while `enabled` is true, fetching
 * them from the shell's picture scheme at most {@link TILE_FPS} times a second. A
 * fetch that finds no newer picture draws nothing. `onPicture` hears of each drawn
 * picture, e.g. to hide the tile's placeholder.
 */
export function useTileFrames(
  canvas: Ref<HTMLCanvasElement | null>,
  tile: Ref<string>,
  enabled: Ref<boolean>,
  onPicture?: () => void,
): void {
  let seq = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  let stopped = false;

  const draw = (buffer: ArrayBuffer) => {
    const header = parseFrameHeader(buffer);
    const target = canvas.value;
    if (!header || !target) {
      return;
    }
    seq = header.seq;
    if (target.width !== header.width || target.height !== header.height) {
      target.width = header.width;
      target.height = header.height;
    }
    const pixels = new Uint8ClampedArray(buffer, 16);
    target
      .getContext('2d')
      ?.putImageData(new ImageData(pixels, header.width), 0, 0);
    onPicture?.();
  };

  const tick = async () => {
    timer = null;
    if (stopped || !enabled.value) {
      running = false;
      return;
    }
    const started = performance.now();
    try {
      const probe = (window as { roomlerFrameProbe?: FrameProbe })
        .roomlerFrameProbe;
      const response = await fetch(frameUrl(tile.value, seq));
      if (response.status === 200) {
        const buffer = await response.arrayBuffer();
        const fetched = probe ? performance.now() : 0;
        draw(buffer);
        probe?.record(
          tile.value,
          200,
          fetched - started,
          performance.now() - fetched,
          buffer.byteLength,
        );
      } else {
        probe?.record(
          tile.value,
          response.status,
          performance.now() - started,
          0,
          0,
        );
      }
    } catch (error) {
      console.error(`Fetching a picture of tile ${tile.value} failed:`, error);
    }
    if (!stopped && enabled.value) {
      // The period runs from the fetch's start, so the time a fetch takes
      // shortens the wait instead of lowering the rate.
      const elapsed = performance.now() - started;
      timer = setTimeout(
        () => void tick(),
        Math.max(0, 1000 / TILE_FPS - elapsed),
      );
    } else {
      running = false;
    }
  };

  watch(
    [tile, enabled],
    () => {
      seq = 0;
      if (!running && enabled.value) {
        running = true;
        void tick();
      }
    },
    { immediate: true },
  );

  onUnmounted(() => {
    stopped = true;
    if (timer !== null) {
      clearTimeout(timer);
    }
  });
}
