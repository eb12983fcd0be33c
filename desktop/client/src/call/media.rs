//! The media of a call: the sources encoded for sending, and the decoding of what
//! arrives, each on a thread of its own so that no codec runs on an async worker.
//!
//! Sending: [`start_sources`] runs the camera or the `roomler-media` test pattern
//! through a three-layer VP8 simulcast encoder, and the microphone or a tone
//! through an Opus encoder. The encoded frames go to the async task that writes
//! them to the peer connection's tracks, each layer on its own RID.
//! [`start_preview`] runs the same sources unencoded, for the pre-join screen.
//! [`SendSwitches`] turn the camera and microphone off and on.
//!
//! Receiving: [`spawn_video_decoder`] and [`spawn_audio_decoder`] take the RTP
//! packets of one remote track. Video is reassembled into whole VP8 frames
//! ([`Vp8Assembler`]) and decoded, and the frame counter is read from each
//! picture. Audio goes through a jitter buffer and the Opus decoder at the 20 ms
//! playout rate, and the tone's frequency is measured on the decoded samples.
//!
//! A [`MediaOutput`] receives the pictures and audio levels of every [`Tile`]: the
//! self view and each remote feed. Video of a feed that [`RemoteOutput::layout`]
//! hides is not decoded at all.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use roomler_media::{
    AUDIO_FRAME_DURATION, AudioFrame, AudioLevel, AudioProcessor, AudioSource, CameraSource,
    CodecError, CpalMicrophone, DeviceKind, EncodedVideo, JitterConfig, Layer, OpusEncoder,
    RemoteAudio, SAMPLE_RATE, SimulcastConfig, SimulcastEncoder, SourceError, TestPattern, Tone,
    VideoFormat, VideoFrame, VideoSource, Vp8Decoder, detect_tone, read_frame_counter,
};
use roomler_media::{PreEncodedMedia, ProcessorConfig, RenderProcessor};
use tokio::sync::{mpsc, watch};

use super::layers::{TileLayout, TileSize};
use super::playback::PlaybackStream;

/// Size and rate of the synthetic video: large enough for the frame counter's
/// blocks to survive VP8, small enough for three encoders and six decoders on a
/// two-core machine.
pub const VIDEO_WIDTH: u32 = 320;
pub const VIDEO_HEIGHT: u32 = 240;
pub const VIDEO_FPS: u32 = 30;
/// The bitrate of the test pattern's three simulcast layers together, which gives
/// the full-size layer 270 kbit/s (see `Layer::bitrate_share_percent`).
const VIDEO_BITRATE_KBPS: u32 = 450;
/// Seconds between keyframes that no receiver requested.
const KEYFRAME_INTERVAL_SECONDS: u32 = 10;
/// The size asked of a camera; it may open with the nearest size it offers.
const CAMERA_WIDTH: u32 = 640;
const CAMERA_HEIGHT: u32 = 480;
/// Audio levels are reported every 100 ms (five 20 ms frames).
const LEVEL_EVERY_FRAMES: u64 = 5;
/// Opus at 32 kbit/s, mono: a voice default that keeps a sine tone clean.
const AUDIO_BITRATE: u32 = 32_000;
const AUDIO_CHANNELS: u16 = 1;
/// Encoded audio frames waiting for the sending task: 0.6 s at most.
const OUTGOING_QUEUE: usize = 30;
/// Encoded video frames waiting for the sending task: a second of three layers.
const OUTGOING_VIDEO_QUEUE: usize = 90;
/// Decoded audio kept for the tone measurement: the last 100 ms.
const TONE_WINDOW_SAMPLES: usize = SAMPLE_RATE as usize / 10;
/// The tone is measured once a second (50 frames of 20 ms), because one search from
/// 50 to 12,000 Hz costs about six million multiply-adds, which is slow in a debug
/// build.
const TONE_MEASURE_EVERY_FRAMES: u64 = 50;

/// One RTP packet of a remote track, as the decoder threads need it.
#[derive(Debug, Clone)]
pub struct RtpUnit {
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// One encoded Opus frame. `skipped` counts the 20 ms frames before it that DTX
/// suppressed, so the RTP timestamp can jump over them.
#[derive(Debug)]
pub struct EncodedAudio {
    pub data: Bytes,
    pub skipped: u16,
}

/// Failure to start the synthetic media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Device(#[from] SourceError),
    #[error("failed to start the microphone processing: {0}")]
    Processor(#[from] roomler_media::ProcessorError),
    #[error("failed to start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        source: io::Error,
    },
}

/// The source of the sent video.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VideoInput {
    /// The moving test pattern with its frame counter.
    #[default]
    TestPattern,
    /// The test pattern with the frame counter taken from the wall clock (see
    /// [`clock_counter`]), so that receivers on the same machine measure the
    /// glass-to-glass latency.
    ClockPattern,
    /// The camera of this name, or the first one.
    Camera { name: Option<String> },
    /// The test pattern for `after_frames` frames, then a lost camera. Tests use it
    /// for a camera unplugged during a call.
    LostTestPattern { after_frames: u32 },
}

/// The source of the sent audio.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioInput {
    /// A sine tone of this frequency.
    Tone { hz: f32 },
    /// The microphone of this name, or the default one.
    Microphone { name: Option<String> },
    /// A tone of `hz` for `after_frames` frames of 20 ms, then a lost microphone.
    /// Tests use it for a headset unplugged during a call.
    LostTone { hz: f32, after_frames: u32 },
}

/// The device that plays the remote audio.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpeakerChoice {
    /// No playback, e.g. for headless clients.
    #[default]
    Off,
    /// The speaker of this name, or the default one.
    Device { name: Option<String> },
}

/// A device that stopped during a call, as a source thread or the playback
/// thread reports it.
#[derive(Debug, Clone)]
pub struct DeviceFailure {
    /// The set of sources, or the playback, that the device belonged to. Failures
    /// of a set that was replaced since are stale.
    pub generation: u64,
    pub kind: DeviceKind,
    pub error: SourceError,
}

/// Reports the device failures of one set of sources or of one playback.
#[derive(Debug, Clone)]
pub struct FailureReporter {
    generation: u64,
    sender: mpsc::UnboundedSender<DeviceFailure>,
}

impl FailureReporter {
    pub fn new(generation: u64, sender: mpsc::UnboundedSender<DeviceFailure>) -> Self {
        FailureReporter { generation, sender }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Sends the failure of the device of `kind`; a session that has ended
    /// receives nothing.
    pub fn report(&self, kind: DeviceKind, error: SourceError) {
        let _ = self.sender.send(DeviceFailure {
            generation: self.generation,
            kind,
            error,
        });
    }
}

/// The tile that a picture or an audio level belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tile {
    /// The user's own camera or microphone.
    Local,
    /// A remote participant, by Janus feed.
    Remote { feed_id: u64 },
}

/// Receives what a call shows: decoded pictures and audio levels. The media
/// threads call it, so it must return quickly.
pub trait MediaOutput: Send + Sync {
    fn picture(&self, tile: Tile, picture: Arc<VideoFrame>);
    fn level(&self, tile: Tile, level: AudioLevel);
}

/// What a call sends, and where its pictures and levels go.
#[derive(Clone)]
pub struct MediaSetup {
    pub video: VideoInput,
    pub audio: AudioInput,
    pub speaker: SpeakerChoice,
    pub output: Option<Arc<dyn MediaOutput>>,
    /// A loop encoded once that replaces both sources, so that load bots spend no
    /// time encoding. It sends all three of the loop's simulcast layers.
    pub pre_encoded: Option<PreEncodedMedia>,
    /// Whether to receive the other participants; a load bot only sends.
    pub subscribe: bool,
}

impl MediaSetup {
    /// Returns the test pattern and a tone of `tone_hz`, with nothing shown.
    pub fn synthetic(tone_hz: f32) -> Self {
        MediaSetup {
            video: VideoInput::TestPattern,
            audio: AudioInput::Tone { hz: tone_hz },
            speaker: SpeakerChoice::Off,
            output: None,
            pre_encoded: None,
            subscribe: true,
        }
    }
}

/// The camera and microphone switches of a running call, and what the receivers
/// ask of the video encoder: a keyframe, a lower or higher bitrate.
#[derive(Debug)]
pub struct SendSwitches {
    camera_on: AtomicBool,
    microphone_on: AtomicBool,
    keyframe_requested: AtomicBool,
    /// The bitrate the feedback allows, in kbit/s; 0 until the first report.
    video_kbps: AtomicU32,
    /// The bitrate the running encoder was opened with, in kbit/s.
    video_max_kbps: AtomicU32,
    /// The simulcast layers that the running encoder's bitrate carries, one bit
    /// per layer in [`Layer::ALL`] order, and 0 before an encoder starts.
    sent_layers: AtomicU8,
}

impl Default for SendSwitches {
    fn default() -> Self {
        SendSwitches {
            camera_on: AtomicBool::new(true),
            microphone_on: AtomicBool::new(true),
            keyframe_requested: AtomicBool::new(false),
            video_kbps: AtomicU32::new(0),
            video_max_kbps: AtomicU32::new(VIDEO_BITRATE_KBPS),
            sent_layers: AtomicU8::new(0),
        }
    }
}

impl SendSwitches {
    pub fn set_camera_on(&self, on: bool) {
        self.camera_on.store(on, Ordering::Relaxed);
    }

    pub fn set_microphone_on(&self, on: bool) {
        self.microphone_on.store(on, Ordering::Relaxed);
    }

    pub fn camera_on(&self) -> bool {
        self.camera_on.load(Ordering::Relaxed)
    }

    pub fn microphone_on(&self) -> bool {
        self.microphone_on.load(Ordering::Relaxed)
    }

    /// Asks the encoder for a keyframe with its next frame, for a receiver that
    /// lost a packet or just started showing the video.
    pub fn request_keyframe(&self) {
        self.keyframe_requested.store(true, Ordering::Relaxed);
    }

    fn take_keyframe_request(&self) -> bool {
        self.keyframe_requested.swap(false, Ordering::Relaxed)
    }

    /// Sets the video bitrate that the reported loss allows.
    pub fn set_video_kbps(&self, kbps: u32) {
        self.video_kbps.store(kbps, Ordering::Relaxed);
    }

    fn video_kbps(&self) -> Option<u32> {
        Some(self.video_kbps.load(Ordering::Relaxed)).filter(|kbps| *kbps > 0)
    }

    /// Returns the bitrate the running video encoder was opened with.
    pub fn video_max_kbps(&self) -> u32 {
        self.video_max_kbps.load(Ordering::Relaxed)
    }

    fn set_sent_layers(&self, layers: &[Layer]) {
        let bits = Layer::ALL
            .iter()
            .enumerate()
            .filter(|(_, layer)| layers.contains(layer))
            .fold(0u8, |bits, (index, _)| bits | 1 << index);
        self.sent_layers.store(bits, Ordering::Relaxed);
    }

    /// Returns the simulcast layers that the video bitrate carries, highest
    /// first, or none before the video encoder starts.
    pub fn sent_layers(&self) -> Vec<Layer> {
        let bits = self.sent_layers.load(Ordering::Relaxed);
        Layer::ALL
            .iter()
            .enumerate()
            .filter(|(index, _)| bits & 1 << index != 0)
            .map(|(_, layer)| *layer)
            .collect()
    }
}

/// The receivers of the encoded media. Dropping them stops the threads.
pub struct EncodedStreams {
    pub video: mpsc::Receiver<EncodedVideo>,
    pub audio: mpsc::Receiver<EncodedAudio>,
    /// The render side of the microphone's echo canceller, for the playback
    /// thread; `None` for the synthetic tone.
    pub render: Option<RenderProcessor>,
    stop: Arc<AtomicBool>,
}

impl Drop for EncodedStreams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Running sources that only feed a [`MediaOutput`]: the camera preview and the
/// microphone meter before joining. Dropping it stops the threads.
pub struct Preview {
    stop: Arc<AtomicBool>,
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the sources of `setup` with a three-layer VP8 simulcast encoder and an
/// Opus encoder, paced in real time on threads of their own. The test pattern's
/// full-size layer is [`VIDEO_WIDTH`]x[`VIDEO_HEIGHT`]; a camera's is the size it
/// opened with. A device that stops delivering later goes to `failures`.
pub fn start_sources(
    setup: &MediaSetup,
    switches: Arc<SendSwitches>,
    failures: Option<FailureReporter>,
) -> Result<EncodedStreams, MediaError> {
    if let Some(media) = &setup.pre_encoded {
        return replay(media, switches);
    }
    let video_source = open_video(&setup.video)?;
    let audio_source = open_audio(&setup.audio)?;
    let format = video_source.format();
    // Keyframes come when a receiver requests one (PLI or FIR through Janus), and
    // every few seconds in case a request is lost.
    let bitrate_kbps = video_bitrate_kbps(format.width, format.height);
    let config = SimulcastConfig {
        keyframe_interval: Some(format.fps.max(1) * KEYFRAME_INTERVAL_SECONDS),
        ..SimulcastConfig::new(format.width, format.height, format.fps, bitrate_kbps)
    };
    let encoder = SimulcastEncoder::spawn(config)?;
    switches
        .video_max_kbps
        .store(bitrate_kbps, Ordering::Relaxed);
    switches.set_sent_layers(&encoder.allocation().sent_layers());
    let opus = OpusEncoder::new(AUDIO_CHANNELS, AUDIO_BITRATE)?;
    // A microphone in a call without headphones hears the speaker, so its frames go
    // through echo cancellation, noise suppression and gain control.
    let processor = match setup.audio {
        AudioInput::Microphone { .. } => Some(AudioProcessor::new(
            AUDIO_CHANNELS,
            ProcessorConfig::default(),
        )?),
        AudioInput::Tone { .. } | AudioInput::LostTone { .. } => None,
    };
    let render = processor.as_ref().map(AudioProcessor::render_side);
    let stop = Arc::new(AtomicBool::new(false));
    let (video_tx, video) = mpsc::channel(OUTGOING_VIDEO_QUEUE);
    let (audio_tx, audio) = mpsc::channel(OUTGOING_QUEUE);
    let shared = SourceLoop {
        output: setup.output.clone(),
        switches,
        failures,
        stop: stop.clone(),
    };
    spawn_sources(
        video_source,
        audio_source,
        Some((encoder, video_tx)),
        Some((opus, audio_tx, processor)),
        shared,
    )?;
    Ok(EncodedStreams {
        video,
        audio,
        render,
        stop,
    })
}

/// Replays a pre-encoded loop in real time on a thread of its own.
fn replay(
    media: &PreEncodedMedia,
    switches: Arc<SendSwitches>,
) -> Result<EncodedStreams, MediaError> {
    // The loop sends all three recorded layers, whatever the feedback allows.
    switches.set_sent_layers(&Layer::ALL);
    let stop = Arc::new(AtomicBool::new(false));
    let (video_tx, video) = mpsc::channel(OUTGOING_VIDEO_QUEUE);
    let (audio_tx, audio) = mpsc::channel(OUTGOING_QUEUE);
    let mut player = media.player();
    let stopped = stop.clone();
    spawn_named("roomler-replay", move || {
        let frame_interval = Duration::from_secs(1) / VIDEO_FPS;
        let started = Instant::now();
        let (mut next_video, mut next_audio) = (started, started);
        while !stopped.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next_video {
                next_video += frame_interval;
                let layers = player.next_video();
                if switches.camera_on() {
                    for frame in layers {
                        if video_tx.try_send(frame).is_err() && video_tx.is_closed() {
                            return;
                        }
                    }
                }
            }
            if now >= next_audio {
                next_audio += AUDIO_FRAME_DURATION;
                let data = player.next_audio();
                let frame = EncodedAudio { data, skipped: 0 };
                if switches.microphone_on()
                    && audio_tx.try_send(frame).is_err()
                    && audio_tx.is_closed()
                {
                    return;
                }
            }
            thread::sleep(
                next_video
                    .min(next_audio)
                    .saturating_duration_since(Instant::now()),
            );
        }
    })?;
    Ok(EncodedStreams {
        video,
        audio,
        render: None,
        stop,
    })
}

/// Starts the sources of `setup` without encoders, for a preview. A device that
/// stops delivering later goes to `failures`.
pub fn start_preview(
    setup: &MediaSetup,
    failures: Option<FailureReporter>,
) -> Result<Preview, MediaError> {
    let video_source = open_video(&setup.video)?;
    let audio_source = open_audio(&setup.audio)?;
    let stop = Arc::new(AtomicBool::new(false));
    let shared = SourceLoop {
        output: setup.output.clone(),
        switches: Arc::new(SendSwitches::default()),
        failures,
        stop: stop.clone(),
    };
    spawn_sources(video_source, audio_source, None, None, shared)?;
    Ok(Preview { stop })
}

fn spawn_sources(
    video_source: Box<dyn VideoSource>,
    audio_source: Box<dyn AudioSource>,
    video_encoder: Option<(SimulcastEncoder, mpsc::Sender<EncodedVideo>)>,
    audio_encoder: Option<AudioEncoder>,
    shared: SourceLoop,
) -> Result<(), MediaError> {
    let video = shared.clone();
    spawn_named("roomler-video-source", move || {
        video.run_video(video_source, video_encoder);
    })?;
    let audio = shared;
    spawn_named("roomler-audio-source", move || {
        audio.run_audio(audio_source, audio_encoder);
    })?;
    Ok(())
}

/// The Opus encoder, where it sends, and the microphone's processing.
type AudioEncoder = (
    OpusEncoder,
    mpsc::Sender<EncodedAudio>,
    Option<AudioProcessor>,
);

fn open_video(input: &VideoInput) -> Result<Box<dyn VideoSource>, MediaError> {
    Ok(match input {
        VideoInput::TestPattern => {
            Box::new(TestPattern::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS).realtime())
        }
        VideoInput::ClockPattern => Box::new(
            TestPattern::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS)
                .starting_at(clock_counter(SystemTime::now()))
                .realtime(),
        ),
        VideoInput::LostTestPattern { after_frames } => Box::new(
            TestPattern::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS)
                .lost_after(*after_frames)
                .realtime(),
        ),
        VideoInput::Camera { name } => Box::new(CameraSource::open(
            name.as_deref(),
            VideoFormat {
                width: CAMERA_WIDTH,
                height: CAMERA_HEIGHT,
                fps: VIDEO_FPS,
            },
        )?),
    })
}

fn open_audio(input: &AudioInput) -> Result<Box<dyn AudioSource>, MediaError> {
    Ok(match input {
        AudioInput::Tone { hz } => {
            Box::new(Tone::new(*hz).with_channels(AUDIO_CHANNELS).realtime())
        }
        AudioInput::LostTone { hz, after_frames } => Box::new(
            Tone::new(*hz)
                .with_channels(AUDIO_CHANNELS)
                .lost_after(*after_frames)
                .realtime(),
        ),
        AudioInput::Microphone { name } => Box::new(CpalMicrophone::open(name.as_deref())?),
    })
}

/// Returns the frame counter that a [`VideoInput::ClockPattern`] frame captured
/// at `time` carries: the frames at [`VIDEO_FPS`] since the Unix epoch, modulo
/// 2^32.
pub fn clock_counter(time: SystemTime) -> u32 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    (since.as_millis() * u128::from(VIDEO_FPS) / 1000) as u32
}

/// Returns how long ago the frame with clock counter `counter` was captured, when
/// that is under ten seconds; other counters come from no clock pattern.
pub fn clock_latency(counter: u32, now: SystemTime) -> Option<Duration> {
    let frames = clock_counter(now).wrapping_sub(counter);
    let latency = Duration::from_secs(1) * frames / VIDEO_FPS;
    (latency < Duration::from_secs(10)).then_some(latency)
}

/// Returns the VP8 bitrate of the three simulcast layers together for a full-size
/// picture: 450 kbit/s for the test pattern's 320x240, in proportion to the pixel
/// count, from 150 kbit/s to 1.8 Mbit/s (a 640x480 camera). The server's room
/// bitrate cap is above the highest.
pub fn video_bitrate_kbps(width: u32, height: u32) -> u32 {
    let pixels = u64::from(width) * u64::from(height);
    let base = u64::from(VIDEO_WIDTH) * u64::from(VIDEO_HEIGHT);
    (u64::from(VIDEO_BITRATE_KBPS) * pixels / base).clamp(150, 1_800) as u32
}

fn spawn_named(name: &'static str, body: impl FnOnce() + Send + 'static) -> Result<(), MediaError> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .map(|_| ())
        .map_err(|source| MediaError::Thread { name, source })
}

/// The state the two source threads share: where pictures and levels go, the
/// switches, where a device failure goes, and the stop flag.
#[derive(Clone)]
struct SourceLoop {
    output: Option<Arc<dyn MediaOutput>>,
    switches: Arc<SendSwitches>,
    failures: Option<FailureReporter>,
    stop: Arc<AtomicBool>,
}

impl SourceLoop {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Reports that the device of `kind` stopped, unless the sources were stopped
    /// on purpose, which can end a blocked read with an error too.
    fn source_failed(&self, kind: DeviceKind, error: SourceError) {
        if self.stopped() {
            return;
        }
        tracing::warn!(%error, "the {kind} stopped delivering");
        if let Some(failures) = &self.failures {
            failures.report(kind, error);
        }
    }

    fn run_video(
        &self,
        mut source: Box<dyn VideoSource>,
        mut encoder: Option<(SimulcastEncoder, mpsc::Sender<EncodedVideo>)>,
    ) {
        let mut was_off = false;
        // The bitrate the encoder runs at, when the feedback changed it.
        let mut applied_kbps: Option<u32> = None;
        while !self.stopped() {
            let frame = match source.next_frame() {
                Ok(frame) => frame,
                Err(error) => {
                    self.source_failed(DeviceKind::Camera, error);
                    return;
                }
            };
            // With the camera off, frames are still read, so that the source keeps
            // its pace, but neither shown nor sent.
            if !self.switches.camera_on() {
                was_off = true;
                continue;
            }
            // The first frame after the camera comes back is a keyframe, so that
            // receivers need no picture from before; so is the frame after a
            // receiver asked for one.
            let keyframe = std::mem::take(&mut was_off) | self.switches.take_keyframe_request();
            if let Some(output) = &self.output {
                output.picture(Tile::Local, Arc::new(frame.clone()));
            }
            let Some((encoder, sender)) = &mut encoder else {
                continue;
            };
            if let Some(kbps) = self.switches.video_kbps()
                && applied_kbps != Some(kbps)
            {
                match encoder.set_bitrate(kbps) {
                    Ok(allocation) => {
                        applied_kbps = Some(kbps);
                        self.switches.set_sent_layers(&allocation.sent_layers());
                    }
                    Err(error) => tracing::debug!(%error, kbps, "the VP8 encoder kept its bitrate"),
                }
            }
            match encoder.encode(frame, keyframe) {
                // A layer whose encoder is behind skips this frame, like a camera's,
                // and a keyframe it was to be becomes the next frame's.
                Ok(dropped) => {
                    if keyframe && !dropped.is_empty() {
                        self.switches.request_keyframe();
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the VP8 encoder stopped");
                    return;
                }
            }
            while let Ok(encoded) = encoder.output().try_recv() {
                let encoded = match encoded {
                    Ok(encoded) => encoded,
                    Err(error) => {
                        tracing::warn!(%error, "the VP8 encoder failed");
                        return;
                    }
                };
                if sender.blocking_send(encoded).is_err() {
                    return;
                }
            }
        }
    }

    fn run_audio(&self, mut source: Box<dyn AudioSource>, mut encoder: Option<AudioEncoder>) {
        let mut skipped: u16 = 0;
        let mut frames: u64 = 0;
        while !self.stopped() {
            let mut frame = match source.next_frame() {
                Ok(frame) => frame,
                Err(error) => {
                    self.source_failed(DeviceKind::Microphone, error);
                    return;
                }
            };
            frames += 1;
            if let Some((_, _, Some(processor))) = &mut encoder
                && let Err(error) = processor.process_capture(&mut frame)
            {
                tracing::debug!(%error, "the microphone processing rejected a frame");
            }
            if let Some(output) = &self.output
                && frames.is_multiple_of(LEVEL_EVERY_FRAMES)
            {
                output.level(Tile::Local, AudioLevel::measure(&frame.samples));
            }
            let Some((encoder, sender, _)) = &mut encoder else {
                continue;
            };
            // A muted microphone is encoded as silence, which DTX turns into a
            // comfort-noise frame every 400 ms, so nothing the microphone hears leaves
            // the machine and the RTP timing stays continuous.
            let frame = if self.switches.microphone_on() {
                frame
            } else {
                AudioFrame::silence(frame.channels, frame.timestamp)
            };
            match encoder.encode(&frame) {
                Ok(Some(data)) => {
                    if sender
                        .blocking_send(EncodedAudio { data, skipped })
                        .is_err()
                    {
                        return;
                    }
                    skipped = 0;
                }
                Ok(None) => skipped = skipped.saturating_add(1),
                Err(error) => {
                    tracing::warn!(%error, "the Opus encoder stopped");
                    return;
                }
            }
        }
    }
}

/// Measurements of the decoder thread of one remote track.
#[derive(Debug, Clone, Default)]
pub struct DecodedStats {
    pub packets: u64,
    /// Whole frames reassembled from RTP: VP8 frames, or Opus frames played out.
    pub frames_received: u64,
    /// Frames the decoder turned into a picture or into samples.
    pub frames_decoded: u64,
    pub decode_errors: u64,
    pub frame_counter_min: Option<u32>,
    pub frame_counter_max: Option<u32>,
    /// Size of the last decoded picture, from which the simulcast layer received
    /// follows.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The dominant frequency of the last measured 100 ms of decoded audio.
    pub tone_hz: Option<f32>,
    /// RTP packets missing from the sequence numbers seen so far. For video, the
    /// packets still missing after the reorder wait, in which NACK retransmissions
    /// arrive.
    pub packets_lost: u64,
    /// Video packets that arrived after a later one, in time to be used: mostly
    /// NACK retransmissions.
    pub packets_recovered: u64,
    /// Keyframe requests (PLI) sent for a video stream.
    pub keyframe_requests: u64,
    /// Capture-to-decode delay of the frames from a clock pattern: the sum, count
    /// and highest, in milliseconds.
    pub latency_ms_sum: f64,
    pub latency_frames: u64,
    pub latency_ms_max: f64,
}

/// Counts the RTP packets missing from a stream, from its sequence numbers.
#[derive(Debug, Default)]
pub struct LossCounter {
    highest: Option<u64>,
    received: u64,
    first: u64,
}

impl LossCounter {
    /// Records one packet and returns the packets lost so far. Sequence numbers
    /// are extended past their 16-bit wrap; late and repeated packets count as
    /// received.
    pub fn record(&mut self, sequence: u16) -> u64 {
        self.received += 1;
        let extended = match self.highest {
            None => {
                self.first = u64::from(sequence);
                u64::from(sequence)
            }
            Some(highest) => {
                let cycle = highest & !0xffff;
                let candidates = [
                    cycle.wrapping_sub(0x1_0000) | u64::from(sequence),
                    cycle | u64::from(sequence),
                    (cycle + 0x1_0000) | u64::from(sequence),
                ];
                candidates
                    .into_iter()
                    .filter(|candidate| *candidate >= self.first)
                    .min_by_key(|candidate| candidate.abs_diff(highest))
                    .unwrap_or(highest)
            }
        };
        let highest = self
            .highest
            .map_or(extended, |highest| highest.max(extended));
        self.highest = Some(highest);
        (highest - self.first + 1).saturating_sub(self.received)
    }
}

/// The shared statistics of one remote track, written by its decoder thread.
pub type SharedStats = Arc<Mutex<DecodedStats>>;

/// The tile size of every remote feed, as the call view last set it.
pub type TileLayouts = watch::Receiver<TileLayout>;

/// The destinations of what the decoder thread of one remote track decodes.
#[derive(Clone)]
pub struct RemoteOutput {
    /// Receives the pictures and levels; `None` for headless clients, which only
    /// count what arrives.
    pub output: Option<Arc<dyn MediaOutput>>,
    /// Finds the feed that the track carries; `None` until the subscriber's offer
    /// named it.
    pub feed: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
    /// The tile size of every feed. Video of a hidden feed is not decoded.
    pub layout: TileLayouts,
}

impl RemoteOutput {
    fn tile(&self) -> Option<Tile> {
        (self.feed)().map(|feed_id| Tile::Remote { feed_id })
    }

    /// Returns whether the video of `tile` is decoded. A track whose feed is not
    /// known yet counts as one of the layout's unlisted feeds.
    fn shows(&self, tile: Option<Tile>) -> bool {
        let layout = self.layout.borrow();
        match tile {
            Some(Tile::Remote { feed_id }) => layout.shows(feed_id),
            _ => layout.others() != TileSize::Hidden,
        }
    }
}

/// Starts a thread that puts the VP8 packets sent to the returned sender back in
/// order, reassembles and decodes them, and hands the pictures to `remote`. While
/// the decoder waits for a keyframe it sets `wants_keyframe`, which the track's
/// reader turns into a PLI. The thread ends when the sender is dropped.
pub fn spawn_video_decoder(
    stats: SharedStats,
    remote: Option<RemoteOutput>,
    wants_keyframe: Arc<AtomicBool>,
) -> std_mpsc::Sender<RtpUnit> {
    let (sender, packets) = std_mpsc::channel::<RtpUnit>();
    let body = move || {
        let decoder = match Vp8Decoder::new() {
            Ok(decoder) => decoder,
            Err(error) => {
                tracing::warn!(%error, "failed to create a VP8 decoder");
                return;
            }
        };
        let mut video = VideoDecoding {
            decoder,
            assembler: Vp8Assembler::default(),
            stats,
            remote,
            wants_keyframe,
        };
        let mut reorder = Reorder::default();
        loop {
            // While a gap holds packets back, wake up to release them in time.
            let wait = if reorder.holding() {
                REORDER_TICK
            } else {
                Duration::from_secs(3600)
            };
            match packets.recv_timeout(wait) {
                Ok(unit) => {
                    video.stats.lock().unwrap().packets += 1;
                    reorder.push(unit, Instant::now());
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            while let Some(unit) = reorder.pop(now) {
                video.take(&unit);
            }
            let mut stats = video.stats.lock().unwrap();
            stats.packets_lost = reorder.lost;
            stats.packets_recovered = reorder.recovered;
        }
    };
    if let Err(error) = thread::Builder::new()
        .name("roomler-video-decoder".into())
        .spawn(body)
    {
        tracing::warn!(%error, "failed to start a VP8 decoder thread");
    }
    sender
}

/// The decoding state of one remote video track, on its decoder thread.
struct VideoDecoding {
    decoder: Vp8Decoder,
    assembler: Vp8Assembler,
    stats: SharedStats,
    remote: Option<RemoteOutput>,
    wants_keyframe: Arc<AtomicBool>,
}

impl VideoDecoding {
    /// Takes the next packet in sequence order.
    fn take(&mut self, unit: &RtpUnit) {
        let remote = self.remote.as_ref();
        let tile = remote.and_then(RemoteOutput::tile);
        // A hidden tile's packets are skipped; the gap they leave makes the
        // assembler wait for a keyframe once the tile shows again.
        if remote.is_some_and(|remote| !remote.shows(tile)) {
            self.wants_keyframe.store(false, Ordering::Relaxed);
            return;
        }
        let frame = self.assembler.push(unit);
        self.wants_keyframe
            .store(self.assembler.waiting_for_keyframe(), Ordering::Relaxed);
        let Some(frame) = frame else {
            return;
        };
        let decoded = self.decoder.decode(&frame);
        let mut stats = self.stats.lock().unwrap();
        stats.frames_received += 1;
        match decoded {
            Ok(Some(picture)) => {
                stats.frames_decoded += 1;
                stats.width = Some(picture.width);
                stats.height = Some(picture.height);
                if let Some(counter) = read_frame_counter(&picture) {
                    if let Some(latency) = clock_latency(counter, SystemTime::now()) {
                        let millis = latency.as_secs_f64() * 1000.0;
                        stats.latency_ms_sum += millis;
                        stats.latency_frames += 1;
                        stats.latency_ms_max = stats.latency_ms_max.max(millis);
                    }
                    stats.frame_counter_min = Some(
                        stats
                            .frame_counter_min
                            .map_or(counter, |min| min.min(counter)),
                    );
                    stats.frame_counter_max = stats.frame_counter_max.max(Some(counter));
                }
                drop(stats);
                if let (
                    Some(RemoteOutput {
                        output: Some(output),
                        ..
                    }),
                    Some(tile),
                ) = (remote, tile)
                {
                    output.picture(tile, Arc::new(picture));
                }
            }
            Ok(None) => {}
            Err(error) => {
                stats.decode_errors += 1;
                tracing::debug!(%error, "failed to decode a VP8 frame");
                self.assembler.wait_for_keyframe();
                self.wants_keyframe.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// How long packets after a gap wait for the missing one, which the NACK
/// generator requests from Janus again. A round trip to the SFU plus Janus's own
/// wait fits; a longer wait delays every picture after a loss.
pub const REORDER_WAIT: Duration = Duration::from_millis(300);
/// How often a decoder thread holding packets back checks the wait.
const REORDER_TICK: Duration = Duration::from_millis(10);
/// Packets held back at most, whatever the wait: about a second of video.
const REORDER_MAX_PACKETS: usize = 512;

/// Puts a video stream's RTP packets back in sequence order. A packet after a gap
/// is held until the missing one arrives (reordered, or retransmitted after a
/// NACK) or [`REORDER_WAIT`] passes. Then the gap counts as lost and reaches the
/// assembler.
#[derive(Debug, Default)]
pub struct Reorder {
    /// The extended sequence number expected next.
    next: Option<u64>,
    highest: Option<u64>,
    held: std::collections::BTreeMap<u64, (RtpUnit, Instant)>,
    /// Packets given up on.
    pub lost: u64,
    /// Packets that arrived after a later one and were still in time.
    pub recovered: u64,
}

impl Reorder {
    /// Extended sequence numbers start here, so that ones before the first
    /// packet stay positive.
    const ORIGIN: u64 = 1 << 32;

    pub fn push(&mut self, unit: RtpUnit, now: Instant) {
        let extended = match self.highest {
            None => Self::ORIGIN + u64::from(unit.sequence),
            Some(highest) => {
                let step = i64::from(unit.sequence.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(step)
            }
        };
        let next = *self.next.get_or_insert(extended);
        // Late after its gap was given up, or a second copy.
        if extended < next || self.held.contains_key(&extended) {
            return;
        }
        match self.highest {
            Some(highest) if extended < highest => self.recovered += 1,
            _ => self.highest = Some(extended),
        }
        self.held.insert(extended, (unit, now));
    }

    /// Returns whether packets wait behind a gap.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Returns the next packet in order, if it is there or its wait is over.
    pub fn pop(&mut self, now: Instant) -> Option<RtpUnit> {
        let next = self.next?;
        let (&first, (_, arrived)) = self.held.first_key_value()?;
        if first != next {
            let waited = now.saturating_duration_since(*arrived);
            if waited < REORDER_WAIT && self.held.len() < REORDER_MAX_PACKETS {
                return None;
            }
            self.lost += first - next;
        }
        let (_, (unit, _)) = self.held.pop_first()?;
        self.next = Some(first + 1);
        Some(unit)
    }
}

/// Starts a thread that plays the Opus packets sent to the returned sender out of
/// a jitter buffer every 20 ms, decodes them and measures the tone. The thread
/// ends when the sender is dropped. `remote` receives the stream's audio level.
pub fn spawn_audio_decoder(
    stats: SharedStats,
    remote: Option<RemoteOutput>,
    playback: Option<PlaybackStream>,
) -> std_mpsc::Sender<RtpUnit> {
    let (sender, packets) = std_mpsc::channel::<RtpUnit>();
    let body = move || {
        let output = remote;
        let mut decoder = match RemoteAudio::new(AUDIO_CHANNELS, JitterConfig::default()) {
            Ok(decoder) => decoder,
            Err(error) => {
                tracing::warn!(%error, "failed to create an Opus decoder");
                return;
            }
        };
        let mut recent: VecDeque<i16> = VecDeque::with_capacity(TONE_WINDOW_SAMPLES);
        let mut loss = LossCounter::default();
        let mut next_tick = Instant::now() + AUDIO_FRAME_DURATION;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match packets.recv_timeout(wait) {
                Ok(unit) => {
                    {
                        let mut stats = stats.lock().unwrap();
                        stats.packets += 1;
                        stats.packets_lost = loss.record(unit.sequence);
                    }
                    decoder.push(unit.sequence, unit.timestamp, unit.payload);
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
            next_tick += AUDIO_FRAME_DURATION;
            play_out(
                &mut decoder,
                &mut recent,
                &stats,
                output.as_ref(),
                playback.as_ref(),
            );
        }
    };
    if let Err(error) = thread::Builder::new()
        .name("roomler-audio-decoder".into())
        .spawn(body)
    {
        tracing::warn!(%error, "failed to start an Opus decoder thread");
    }
    sender
}

/// Runs one 20 ms playout tick of a remote audio stream.
fn play_out(
    remote: &mut RemoteAudio,
    recent: &mut VecDeque<i16>,
    stats: &SharedStats,
    output: Option<&RemoteOutput>,
    playback: Option<&PlaybackStream>,
) {
    let frame = match remote.next_frame() {
        Ok(Some(frame)) => frame,
        Ok(None) => return,
        Err(error) => {
            stats.lock().unwrap().decode_errors += 1;
            tracing::debug!(%error, "failed to decode an Opus frame");
            return;
        }
    };
    let channels = usize::from(frame.channels.max(1));
    if let Some(playback) = playback {
        playback.push(frame.clone());
    }
    for sample in frame.samples.iter().step_by(channels) {
        if recent.len() == TONE_WINDOW_SAMPLES {
            recent.pop_front();
        }
        recent.push_back(*sample);
    }
    let decoded = {
        let mut stats = stats.lock().unwrap();
        stats.frames_received += 1;
        stats.frames_decoded += 1;
        stats.frames_decoded
    };
    if let Some(remote) = output
        && let Some(sink) = &remote.output
        && decoded.is_multiple_of(LEVEL_EVERY_FRAMES)
        && let Some(tile) = remote.tile()
    {
        sink.level(tile, AudioLevel::measure(&frame.samples));
    }
    if decoded.is_multiple_of(TONE_MEASURE_EVERY_FRAMES) {
        let window: Vec<i16> = recent.iter().copied().collect();
        let tone = detect_tone(&window, SAMPLE_RATE);
        stats.lock().unwrap().tone_hz = tone;
    }
}

/// Reassembles whole VP8 frames from RTP packets (RFC 7741): a frame starts with
/// the packet whose descriptor has S set and partition index 0, and ends with the
/// packet that carries the RTP marker.
///
/// Packets come in sequence order from a [`Reorder`]. A frame with a missing
/// packet is dropped, and so is every frame after it up to the next keyframe,
/// because they refer to a picture the decoder does not have.
#[derive(Debug, Default)]
pub struct Vp8Assembler {
    frame: Vec<u8>,
    /// RTP timestamp of the frame being assembled; `None` between frames.
    timestamp: Option<u32>,
    next_sequence: Option<u16>,
    /// Set after a loss until a keyframe arrives.
    needs_keyframe: bool,
}

impl Vp8Assembler {
    /// Adds one packet; returns the whole frame that it completes, if any.
    pub fn push(&mut self, unit: &RtpUnit) -> Option<Bytes> {
        let in_order = self.next_sequence.is_none_or(|next| next == unit.sequence);
        self.next_sequence = Some(unit.sequence.wrapping_add(1));
        let Some((starts_frame, data)) = vp8_descriptor(&unit.payload) else {
            self.drop_frame();
            return None;
        };

        if starts_frame {
            // A gap before a frame's first packet lost the end of the frame before
            // it, or whole frames, which this one may refer to.
            if !in_order {
                self.needs_keyframe = true;
            }
            self.frame.clear();
            self.timestamp = Some(unit.timestamp);
        } else if !in_order || self.timestamp != Some(unit.timestamp) {
            self.drop_frame();
            return None;
        }
        self.frame.extend_from_slice(data);
        if !unit.marker {
            return None;
        }

        self.timestamp = None;
        let frame = Bytes::from(std::mem::take(&mut self.frame));
        // Bit 0 of a VP8 frame tag is 0 for a keyframe (RFC 6386, section 9.1).
        let keyframe = frame.first().is_some_and(|tag| tag & 1 == 0);
        if self.needs_keyframe && !keyframe {
            return None;
        }
        self.needs_keyframe = false;
        Some(frame)
    }

    /// Drops frames until the next keyframe, e.g. after the decoder rejected one.
    pub fn wait_for_keyframe(&mut self) {
        self.needs_keyframe = true;
    }

    /// Returns whether frames are dropped until the next keyframe.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.needs_keyframe
    }

    fn drop_frame(&mut self) {
        self.frame.clear();
        self.timestamp = None;
        self.needs_keyframe = true;
    }
}

/// Splits a VP8 RTP payload into its descriptor (RFC 7741, section 4.2) and the
/// frame data after it. Returns whether the packet starts a frame (S set and
/// partition index 0), or `None` when the payload is shorter than its descriptor.
fn vp8_descriptor(payload: &[u8]) -> Option<(bool, &[u8])> {
    let first = *payload.first()?;
    let starts_frame = first & 0x10 != 0 && first & 0x07 == 0;
    let mut offset = 1;
    if first & 0x80 != 0 {
        let extension = *payload.get(offset)?;
        offset += 1;
        if extension & 0x80 != 0 {
            // The picture id takes 15 bits when its first bit (M) is set, else 7.
            let picture_id = *payload.get(offset)?;
            offset += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if extension & 0x40 != 0 {
            offset += 1;
        }
        if extension & 0x30 != 0 {
            offset += 1;
        }
    }
    let data = payload.get(offset..).filter(|data| !data.is_empty())?;
    Some((starts_frame, data))
}

/// Returns the RTP duration of a video frame: the time since the previous one, or
/// one frame interval for the first.
pub fn video_frame_duration(previous: Option<Duration>, current: Duration) -> Duration {
    let interval = Duration::from_secs(1) / VIDEO_FPS;
    match previous {
        Some(previous) if current > previous => current - previous,
        _ => interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> RtpUnit {
        RtpUnit {
            sequence,
            timestamp,
            marker,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn assembler_joins_frame_packets() {
        let mut assembler = Vp8Assembler::default();
        // Descriptor 0x10: S set, partition 0; frame tag 0x00 marks a keyframe.
        assert_eq!(
            assembler.push(&unit(7, 90, false, &[0x10, 0x00, 1, 2])),
            None
        );
        let frame = assembler.push(&unit(8, 90, true, &[0x00, 3, 4]));
        assert_eq!(frame.as_deref(), Some(&[0x00, 1, 2, 3, 4][..]));
    }

    #[test]
    fn assembler_drops_frame_with_gap() {
        let mut assembler = Vp8Assembler::default();
        assert_eq!(assembler.push(&unit(1, 90, false, &[0x10, 0x00, 1])), None);
        assert_eq!(assembler.push(&unit(3, 90, true, &[0x00, 2])), None);
    }

    #[test]
    fn assembler_waits_for_keyframe_after_loss() {
        let mut assembler = Vp8Assembler::default();
        assert_eq!(assembler.push(&unit(1, 90, false, &[0x10, 0x00, 1])), None);
        assert_eq!(assembler.push(&unit(3, 90, true, &[0x00, 2])), None);
        // A whole interframe (tag bit 0 set) still waits for a keyframe.
        assert_eq!(assembler.push(&unit(4, 180, true, &[0x10, 0x01, 5])), None);
        let keyframe = assembler.push(&unit(5, 270, true, &[0x10, 0x00, 6]));
        assert_eq!(keyframe.as_deref(), Some(&[0x00, 6][..]));
    }

    #[test]
    fn preview_reports_lost_devices() {
        let (sender, mut received) = mpsc::unbounded_channel();
        let setup = MediaSetup {
            video: VideoInput::LostTestPattern { after_frames: 3 },
            audio: AudioInput::LostTone {
                hz: 440.0,
                after_frames: 3,
            },
            ..MediaSetup::synthetic(440.0)
        };
        let _preview = start_preview(&setup, Some(FailureReporter::new(7, sender))).unwrap();

        let mut kinds = Vec::new();
        for _ in 0..2 {
            let failure = received
                .blocking_recv()
                .expect("the preview reports each lost device");
            assert_eq!(failure.generation, 7);
            kinds.push(failure.kind);
        }
        kinds.sort_by_key(|kind| kind.to_string());
        assert_eq!(kinds, [DeviceKind::Camera, DeviceKind::Microphone]);
    }

    #[test]
    fn descriptor_skips_extensions() {
        // X set; I set with a 15-bit picture id; L and T/K present.
        let payload = [0x90, 0xe0, 0x81, 0x02, 0x05, 0x20, 0xaa, 0xbb];
        assert_eq!(vp8_descriptor(&payload), Some((true, &[0xaa, 0xbb][..])));
        assert_eq!(vp8_descriptor(&[0x90, 0x80]), None);
        assert_eq!(vp8_descriptor(&[0x11, 0x00]), Some((false, &[0x00][..])));
    }

    #[test]
    fn assembler_waits_for_keyframe_after_a_lost_whole_frame() {
        let mut assembler = Vp8Assembler::default();
        assert!(
            assembler
                .push(&unit(1, 0, true, &[0x10, 0x00, 1]))
                .is_some()
        );
        // Frame 2 (sequence 2) is lost whole; frame 3 refers to it.
        assert_eq!(assembler.push(&unit(3, 180, true, &[0x10, 0x01, 3])), None);
        assert!(assembler.waiting_for_keyframe());
        let keyframe = assembler.push(&unit(4, 270, true, &[0x10, 0x00, 4]));
        assert_eq!(keyframe.as_deref(), Some(&[0x00, 4][..]));
    }

    fn sequences(reorder: &mut Reorder, now: Instant) -> Vec<u16> {
        std::iter::from_fn(|| reorder.pop(now))
            .map(|unit| unit.sequence)
            .collect()
    }

    #[test]
    fn reorder_waits_for_a_retransmission() {
        let mut reorder = Reorder::default();
        let start = Instant::now();
        for sequence in [65_534, 65_535, 1, 2] {
            reorder.push(unit(sequence, 0, false, &[]), start);
        }
        // 0 is missing: 1 and 2 wait behind it.
        assert_eq!(sequences(&mut reorder, start), [65_534, 65_535]);
        assert!(reorder.holding());
        reorder.push(unit(0, 0, false, &[]), start + Duration::from_millis(40));
        assert_eq!(
            sequences(&mut reorder, start + Duration::from_millis(40)),
            [0, 1, 2]
        );
        assert_eq!((reorder.recovered, reorder.lost), (1, 0));
    }

    #[test]
    fn reorder_gives_up_on_a_gap_after_the_wait() {
        let mut reorder = Reorder::default();
        let start = Instant::now();
        for sequence in [10, 13, 14] {
            reorder.push(unit(sequence, 0, false, &[]), start);
        }
        assert_eq!(sequences(&mut reorder, start), [10]);
        assert_eq!(sequences(&mut reorder, start + REORDER_WAIT), [13, 14]);
        assert_eq!(reorder.lost, 2);
        // A retransmission after the wait is too late, and so is a second copy.
        reorder.push(unit(11, 0, false, &[]), start + REORDER_WAIT);
        reorder.push(unit(14, 0, false, &[]), start + REORDER_WAIT);
        assert!(!reorder.holding());
        assert_eq!(reorder.recovered, 0);
    }

    #[test]
    fn loss_counter_counts_gaps_across_the_wrap() {
        let mut loss = LossCounter::default();
        assert_eq!(loss.record(65_533), 0);
        assert_eq!(loss.record(65_534), 0);
        // 65,535 and 0 are missing.
        assert_eq!(loss.record(1), 2);
        // A late packet fills its gap.
        assert_eq!(loss.record(0), 1);
        assert_eq!(loss.record(2), 1);
    }

    #[test]
    fn clock_latency_reads_the_clock_counter() {
        let captured = SystemTime::now();
        let counter = clock_counter(captured);
        let latency = clock_latency(counter, captured + Duration::from_millis(200)).unwrap();
        // One frame of resolution at 30 fps.
        assert!(latency >= Duration::from_millis(166), "{latency:?}");
        assert!(latency <= Duration::from_millis(234), "{latency:?}");
        // A counter that started at 0 is years old: no clock pattern.
        assert_eq!(clock_latency(12, captured), None);
    }

    #[test]
    fn frame_duration_follows_timestamps() {
        let first = video_frame_duration(None, Duration::ZERO);
        assert_eq!(first, Duration::from_secs(1) / VIDEO_FPS);
        let later =
            video_frame_duration(Some(Duration::from_millis(100)), Duration::from_millis(166));
        assert_eq!(later, Duration::from_millis(66));
    }
}
