import { describe, expect, it } from 'vitest';

import type { TileStats } from '@/api/bindings';
import {
  PAGE_SIZE,
  onStage,
  paginate,
  parseFrameHeader,
  pickActiveSpeaker,
  problemTitleKey,
  rateQuality,
  tileSize,
} from '@/lib/call';

function stats(audio: number, video: number): TileStats {
  return {
    feed_id: 1,
    video_packets_received: video * 3,
    video_frames_received: video,
    video_frames_decoded: video,
    audio_packets_received: audio,
    audio_frames_decoded: audio,
  };
}

describe('onStage', () => {
  it('puts everyone of a meeting and the non-audience of a presentation on stage', () => {
    expect(onStage('meeting', 'audience')).toBe(true);
    expect(onStage('presentation', 'host')).toBe(true);
    expect(onStage('presentation', 'speaker')).toBe(true);
    expect(onStage('presentation', 'audience')).toBe(false);
  });
});

describe('tileSize', () => {
  it('gives fuller grid pages lower layers', () => {
    expect(tileSize('grid', 1)).toBe('large');
    expect(tileSize('grid', 4)).toBe('large');
    expect(tileSize('grid', 5)).toBe('medium');
    expect(tileSize('grid', 9)).toBe('medium');
    expect(tileSize('grid', 10)).toBe('small');
    expect(tileSize('grid', PAGE_SIZE)).toBe('small');
  });

  it('keeps the speaker layout large', () => {
    expect(tileSize('speaker', PAGE_SIZE)).toBe('large');
  });
});

describe('paginate', () => {
  const items = Array.from({ length: 60 }, (_, index) => index);

  it('cuts pages of 25 and clamps the page number', () => {
    expect(PAGE_SIZE).toBe(25);
    const first = paginate(items, 0);
    expect(first.pages).toBe(3);
    expect(first.items).toEqual(items.slice(0, 25));
    expect(paginate(items, 2).items).toEqual(items.slice(50));
    expect(paginate(items, 7).page).toBe(2);
    expect(paginate(items, -1).page).toBe(0);
    expect(paginate([], 3)).toEqual({ items: [], page: 0, pages: 1 });
  });
});

describe('pickActiveSpeaker', () => {
  it('picks the loudest tile that speaks', () => {
    expect(pickActiveSpeaker({ '1': -30, '2': -20, '3': -80 }, null)).toBe('2');
    expect(pickActiveSpeaker({ '1': -70, '2': -90 }, '1')).toBeNull();
  });

  it('keeps the current speaker unless another is clearly louder', () => {
    expect(pickActiveSpeaker({ '1': -30, '2': -26 }, '1')).toBe('1');
    expect(pickActiveSpeaker({ '1': -30, '2': -20 }, '1')).toBe('2');
    // A current speaker who went quiet loses the highlight at once.
    expect(pickActiveSpeaker({ '1': -80, '2': -40 }, '1')).toBe('2');
  });
});

describe('rateQuality', () => {
  const both = { audio: true, video: true };

  it('rates full audio and video as good', () => {
    expect(rateQuality(stats(0, 0), stats(100, 50), 2, both)).toBe('good');
  });

  it('rates by the worse of the expected streams', () => {
    // 25 fps but only 70 % of the audio frames.
    expect(rateQuality(stats(0, 0), stats(70, 50), 2, both)).toBe('fair');
    // Full audio, 5 fps.
    expect(rateQuality(stats(0, 0), stats(100, 10), 2, both)).toBe('poor');
  });

  it('ignores streams that are not expected', () => {
    // Muted: no audio frames, and that is fine.
    expect(
      rateQuality(stats(0, 0), stats(0, 50), 2, { audio: false, video: true }),
    ).toBe('good');
    expect(
      rateQuality(stats(0, 0), stats(0, 0), 2, { audio: false, video: false }),
    ).toBe('unknown');
    expect(rateQuality(undefined, stats(100, 50), 2, both)).toBe('unknown');
  });
});

describe('parseFrameHeader', () => {
  it('reads size and sequence number, and rejects a wrong length', () => {
    const buffer = new ArrayBuffer(16 + 2 * 3 * 4);
    const view = new DataView(buffer);
    view.setUint32(0, 2, true);
    view.setUint32(4, 3, true);
    view.setBigUint64(8, 77n, true);
    expect(parseFrameHeader(buffer)).toEqual({ width: 2, height: 3, seq: 77 });
    expect(parseFrameHeader(buffer.slice(0, 20))).toBeNull();
    expect(parseFrameHeader(new ArrayBuffer(4))).toBeNull();
  });
});

describe('problemTitleKey', () => {
  it('names the lost device, else the failed publish', () => {
    expect(
      problemTitleKey({ kind: 'lost', device: 'camera', message: '' }),
    ).toBe('call.problem.lost.camera');
    // A failed publish names its device too, but it is no lost device.
    expect(
      problemTitleKey({
        kind: 'publish_failed',
        device: 'microphone',
        message: '',
      }),
    ).toBe('call.problem.publishFailed');
  });
});
