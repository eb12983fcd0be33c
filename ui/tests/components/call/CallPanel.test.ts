import { flushPromises, mount } from '@vue/test-utils';
import {
  afterEach,
  beforeEach,
  describe,
  expect,
  it,
  onTestFinished,
  vi,
} from 'vitest';

vi.mock('@tauri-apps/api/core', () => ({
  invoke: vi.fn(),
  convertFileSrc: (path: string, protocol: string) =>
    `${protocol}://localhost/${path}`,
}));

import { invoke } from '@tauri-apps/api/core';

import CallPanel from '@/components/call/CallPanel.vue';
import CallTile from '@/components/call/CallTile.vue';
import PreJoinDialog from '@/components/call/PreJoinDialog.vue';
import { TILE_FPS } from '@/composables/tile-frames';
import { useCallStore } from '@/stores/call';

import {
  LOST_CAMERA_MEDIA,
  makeCallParticipant,
  makeJoinedCall,
} from '../../helpers/factories';
import { createTestPlugins } from '../../helpers/mount';

const invokeMock = vi.mocked(invoke);

/** The media state of a join whose devices all work. */

/** Builds a picture as the shell's frame scheme sends it: header, then RGBA. */
function framePayload(width: number, height: number, seq: number): ArrayBuffer {
  const buffer = new ArrayBuffer(16 + width * height * 4);
  const view = new DataView(buffer);
  view.setUint32(0, width, true);
  view.setUint32(4, height, true);
  view.setBigUint64(8, BigInt(seq), true);
  return buffer;
}

class FakeImageData {
  constructor(
    readonly data: Uint8ClampedArray,
    readonly width: number,
  ) {}
}

const fetchMock = vi.fn();
const putImageData = vi.fn();

beforeEach(() => {
  invokeMock.mockReset();
  invokeMock.mockImplementation(async (command: string) => {
    if (command === 'join_call') {
      return makeJoinedCall({
        participants: [
          makeCallParticipant(1, {
            username: 'alice',
            display_name: 'Alice Liddell',
            audio_muted: true,
          }),
        ],
      });
    }
    if (command === 'call_devices') {
      return { cameras: [], microphones: [], speakers: [], problems: [] };
    }
    if (
      command === 'call_levels' ||
      command === 'call_stats' ||
      command === 'room_calls'
    ) {
      return [];
    }
    return null;
  });
  fetchMock.mockReset();
  fetchMock.mockResolvedValue(new Response(null, { status: 204 }));
  vi.stubGlobal('fetch', fetchMock);
  vi.stubGlobal('ImageData', FakeImageData);
  putImageData.mockReset();
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue({
    putImageData,
  } as unknown as CanvasRenderingContext2D);
});

afterEach(() => {
  // A joined store polls levels and statistics on timers; each test's store stops
  // them, so that no poll reaches the next test's mock.
  useCallStore().reset();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

async function joinedPanel() {
  const { plugins } = createTestPlugins();
  const call = useCallStore();
  await call.prepare('room-1');
  await call.join();
  const wrapper = mount(CallPanel, { global: { plugins } });
  await flushPromises();
  return { wrapper, call };
}

describe('CallPanel', () => {
  it('shows the self view and each participant with their state', async () => {
    const { wrapper } = await joinedPanel();
    const tiles = wrapper.findAll('[data-test="call-tile"]');
    expect(tiles.map((tile) => tile.attributes('data-tile'))).toEqual([
      'local',
      '1',
    ]);
    expect(tiles[1]!.text()).toContain('Alice Liddell');
    expect(tiles[1]!.find('[data-test="tile-muted"]').exists()).toBe(true);
    expect(tiles[1]!.attributes('aria-label')).toContain('microphone muted');
    expect(tiles[0]!.text()).toContain('You');
    wrapper.unmount();
  });

  it('mutes, turns the camera off and leaves through the shell', async () => {
    const { wrapper, call } = await joinedPanel();
    await wrapper.get('[data-test="call-mute"]').trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('set_call_muted', { muted: true });
    expect(
      wrapper.get('[data-test="call-mute"]').attributes('aria-label'),
    ).toBe('Unmute the microphone');

    await wrapper.get('[data-test="call-camera"]').trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('set_call_camera_off', {
      off: true,
    });
    const self = wrapper.findAll('[data-test="call-tile"]')[0]!;
    expect(self.find('[data-test="tile-camera-off"]').exists()).toBe(true);

    await wrapper.get('[data-test="call-leave"]').trigger('click');
    await flushPromises();
    expect(invokeMock.mock.calls.at(-1)?.[0]).toBe('leave_call');
    expect(call.phase).toBe('idle');
    wrapper.unmount();
  });
});

describe('PreJoinDialog', () => {
  it('shows a device lost during the preview with its advice', async () => {
    const { plugins } = createTestPlugins();
    const call = useCallStore();
    await call.prepare('room-1');
    const wrapper = mount(PreJoinDialog, {
      props: { roomName: 'standup' },
      global: { plugins },
      attachTo: document.body,
    });
    // The dialog renders into the body, so an unmounted one leaves nothing there.
    onTestFinished(() => wrapper.unmount());
    await flushPromises();
    const problem = () =>
      document.body.querySelector('[data-test="prejoin-media-problem"]');
    expect(problem()).toBeNull();

    call.mediaChanged({ room_id: 'room-1', media: LOST_CAMERA_MEDIA });
    await flushPromises();
    expect(problem()?.textContent).toContain('Your camera stopped');
    expect(problem()?.textContent).toContain('pick another camera');
  });
});

describe('CallPanel with a media problem', () => {
  it('shows a lost device with its advice and opens the device pickers', async () => {
    const { wrapper, call } = await joinedPanel();
    expect(wrapper.find('[data-test="call-media-problem"]').exists()).toBe(
      false,
    );
    call.mediaChanged({
      room_id: 'room-1',
      media: {
        muted: true,
        camera_off: false,
        problems: [
          {
            kind: 'lost',
            device: 'microphone',
            message:
              'microphone "Headset" was lost: no samples for 2 s; pick another microphone, or the test tone',
          },
        ],
      },
    });
    await flushPromises();

    const problem = wrapper.get('[data-test="call-media-problem"]');
    expect(problem.text()).toContain('Your microphone stopped');
    expect(
      problem.get('[data-test="call-media-problem-effect"]').text(),
    ).toContain('The others see you as muted');
    expect(
      problem.get('[data-test="call-media-problem-message"]').text(),
    ).toContain('microphone "Headset" was lost: no samples for 2 s');
    const mute = wrapper.get('[data-test="call-mute"]');
    expect(mute.attributes('aria-pressed')).toBe('true');
    expect(mute.attributes('aria-label')).toBe('Unmute the microphone');

    await problem
      .get('[data-test="call-media-problem-devices"]')
      .trigger('click');
    await flushPromises();
    expect(
      document.querySelector('[data-test="call-devices-dialog"]'),
    ).not.toBe(null);
    wrapper.unmount();
  });

  it('tells an invited speaker why they are back in the audience', async () => {
    const { wrapper, call } = await joinedPanel();
    call.mediaChanged({
      room_id: 'room-1',
      media: {
        muted: false,
        camera_off: false,
        problems: [
          {
            kind: 'publish_failed',
            device: 'camera',
            message:
              'no camera found named "Front"; pick one from the device list; pick another camera, or the test pattern',
          },
        ],
      },
    });
    await flushPromises();
    const problem = wrapper.get('[data-test="call-media-problem"]');
    expect(problem.text()).toContain('You are back in the audience');
    expect(problem.text()).toContain('raise your hand again');
    expect(problem.text()).toContain('no camera found named "Front"');
    wrapper.unmount();
  });
});

describe('CallPanel in a presentation', () => {
  /** Mounts the panel of a presentation joined as `role`, with Bob's hand raised. */
  async function presentationPanel(role: 'host' | 'speaker' | 'audience') {
    const base = invokeMock.getMockImplementation()!;
    invokeMock.mockImplementation(async (command, args) => {
      if (command !== 'join_call') {
        return base(command, args);
      }
      return makeJoinedCall({
        participants: [
          makeCallParticipant(1, {
            username: 'alice',
            display_name: 'Alice Liddell',
            role: 'host',
          }),
          makeCallParticipant(2, {
            username: 'bob',
            display_name: 'Bob',
            role: 'audience',
            hand_raised: true,
          }),
        ],
        format: 'presentation',
        role,
      });
    });
    return joinedPanel();
  }

  it('gives the audience a raise-hand button and the audience count', async () => {
    const { wrapper } = await presentationPanel('audience');
    const tiles = wrapper.findAll('[data-test="call-tile"]');
    expect(tiles.map((tile) => tile.attributes('data-tile'))).toEqual(['1']);
    expect(wrapper.get('[data-test="call-audience-count"]').text()).toContain(
      '2 in the audience',
    );
    expect(wrapper.find('[data-test="call-mute"]').exists()).toBe(false);
    expect(wrapper.find('[data-test="call-raised-hands"]').exists()).toBe(
      false,
    );

    const hand = wrapper.get('[data-test="call-raise-hand"]');
    expect(hand.text()).toBe('Raise hand');
    await hand.trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('raise_call_hand');
    expect(wrapper.get('[data-test="call-raise-hand"]').text()).toBe(
      'Lower hand',
    );
    wrapper.unmount();
  });

  it('puts an invited speaker on the stage with a way back', async () => {
    const { wrapper } = await presentationPanel('speaker');
    const tiles = wrapper.findAll('[data-test="call-tile"]');
    expect(tiles.map((tile) => tile.attributes('data-tile'))).toEqual([
      'local',
      '1',
    ]);
    expect(wrapper.find('[data-test="call-mute"]').exists()).toBe(true);
    expect(wrapper.find('[data-test="call-raise-hand"]').exists()).toBe(false);
    expect(wrapper.find('[data-test="call-raised-hands"]').exists()).toBe(
      false,
    );
    expect(wrapper.get('[data-test="call-leave-stage"]').text()).toBe(
      'Back to the audience',
    );
    wrapper.unmount();
  });

  it('lists raised hands for a host, with Let speak', async () => {
    const { wrapper, call } = await presentationPanel('host');
    expect(wrapper.find('[data-test="call-raise-hand"]').exists()).toBe(false);
    const hands = wrapper.findAll('[data-test="call-raised-hand"]');
    expect(hands).toHaveLength(1);
    expect(hands[0]!.text()).toContain('Bob');

    await hands[0]!.get('[data-test="call-let-speak"]').trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('invite_to_speak', {
      userId: 'user-2',
    });

    call.participantsChanged({
      room_id: 'room-1',
      feed_id: 100,
      participants: call.participants.map((each) =>
        each.user_id === 'user-2'
          ? { ...each, role: 'speaker', hand_raised: false }
          : each,
      ),
    });
    await flushPromises();
    expect(wrapper.find('[data-test="call-raised-hands"]').exists()).toBe(
      false,
    );
    const speaker = wrapper.get('[data-test="call-speaker"]');
    await speaker.get('[data-test="call-move-to-audience"]').trigger('click');
    await flushPromises();
    expect(invokeMock).toHaveBeenCalledWith('move_to_audience', {
      userId: 'user-2',
    });
    wrapper.unmount();
  });
});

describe('CallTile', () => {
  it('draws the pictures it fetches and asks for newer ones', async () => {
    const { plugins } = createTestPlugins();
    fetchMock.mockResolvedValueOnce(new Response(framePayload(4, 2, 7)));
    const wrapper = mount(CallTile, {
      props: {
        tile: {
          key: '1',
          feedId: 1,
          userId: 'user-1',
          name: 'Alice',
          audioMuted: false,
          cameraOff: false,
          self: false,
        },
        speaking: true,
        quality: 'good',
        selfName: 'You',
      },
      global: { plugins },
    });
    await vi.waitFor(() => expect(putImageData).toHaveBeenCalledTimes(1));
    const [image] = putImageData.mock.calls[0]! as [FakeImageData];
    expect(image.width).toBe(4);
    expect(image.data.length).toBe(4 * 2 * 4);
    expect(fetchMock.mock.calls[0]![0]).toBe(
      'roomler-frame://localhost/1?after=0',
    );
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(2));
    expect(fetchMock.mock.calls[1]![0]).toBe(
      'roomler-frame://localhost/1?after=7',
    );
    expect(wrapper.get('canvas').attributes('width')).toBe('4');
    expect(wrapper.classes()).toContain('call-tile--speaking');
    expect(wrapper.find('.v-avatar').exists()).toBe(false);
    wrapper.unmount();
  });

  it('fetches at the full rate when each fetch takes a while', async () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'performance'],
    });
    fetchMock.mockImplementation(
      () =>
        new Promise((resolve) =>
          setTimeout(() => resolve(new Response(null, { status: 204 })), 40),
        ),
    );
    const { plugins } = createTestPlugins();
    const wrapper = mount(CallTile, {
      props: {
        tile: {
          key: '1',
          feedId: 1,
          userId: 'user-1',
          name: 'Alice',
          audioMuted: false,
          cameraOff: false,
          self: false,
        },
        speaking: false,
        quality: 'unknown',
        selfName: 'You',
      },
      global: { plugins },
    });
    await vi.advanceTimersByTimeAsync(950);
    // A fetch every 1000 / TILE_FPS ms from the previous one's start makes 15 by
    // then. Waiting a whole period after each 40 ms fetch would make 9.
    expect(fetchMock).toHaveBeenCalledTimes(TILE_FPS);
    wrapper.unmount();
    vi.useRealTimers();
  });

  it('fetches nothing while the camera is off', async () => {
    const { plugins } = createTestPlugins();
    const wrapper = mount(CallTile, {
      props: {
        tile: {
          key: '1',
          feedId: 1,
          userId: 'user-1',
          name: 'Alice Liddell',
          audioMuted: false,
          cameraOff: true,
          self: false,
        },
        speaking: false,
        quality: 'unknown',
        selfName: 'You',
      },
      global: { plugins },
    });
    await flushPromises();
    expect(fetchMock).not.toHaveBeenCalled();
    expect(wrapper.get('.v-avatar').text()).toBe('AL');
    wrapper.unmount();
  });
});
