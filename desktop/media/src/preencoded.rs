//! Pre-encoded media for load bots: the test pattern and tone are encoded once,
//! then replayed in a loop at no encoding cost, so that many bots on one machine
//! measure the SFU and the receivers rather than their own encoders.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::CodecError;
use crate::error::SourceError;
use crate::opus::OpusEncoder;
use crate::source::VideoSource;
use crate::synthetic::{TestPattern, Tone};
use crate::vp8::{EncodedVideo, Layer, SimulcastConfig, SimulcastEncoder};

/// Maximum wait for one encoder output while recording.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct PreEncodedConfig {
    /// Length of the loop, in seconds.
    pub seconds: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub total_bitrate_kbps: u32,
    pub tone_hz: f32,
    /// Opus bitrate, in bits per second.
    pub audio_bitrate: u32,
}

impl Default for PreEncodedConfig {
    /// Ten seconds of 640x360 at 30 fps, 800 kbit/s over three layers, and a
    /// 440 Hz tone at 32 kbit/s.
    fn default() -> Self {
        Self {
            seconds: 10,
            width: 640,
            height: 360,
            fps: 30,
            total_bitrate_kbps: 800,
            tone_hz: 440.0,
            audio_bitrate: 32_000,
        }
    }
}

/// Encoded frames of every layer and the Opus packets of one loop.
#[derive(Debug)]
struct Recording {
    fps: u32,
    /// One entry per video frame: the encoded frame of each layer, in
    /// [`Layer::ALL`] order.
    video: Vec<[EncodedVideo; 3]>,
    /// One Opus packet per 20 ms.
    audio: Vec<Bytes>,
}

/// A recorded loop of media. Cloning is cheap: clones share the recording.
#[derive(Debug, Clone)]
pub struct PreEncodedMedia {
    recording: Arc<Recording>,
}

impl PreEncodedMedia {
    /// Encodes the loop. It takes about as long as encoding that much video live.
    /// Every layer starts each second with a keyframe, so a subscriber that joins
    /// the loop decodes within a second without asking for one.
    pub fn record(config: &PreEncodedConfig) -> Result<Self, CodecError> {
        let frames = config.seconds.max(1) * config.fps;
        let mut simulcast = SimulcastConfig::new(
            config.width,
            config.height,
            config.fps,
            config.total_bitrate_kbps,
        );
        simulcast.keyframe_interval = Some(config.fps);
        let mut encoder = SimulcastEncoder::spawn(simulcast)?;
        // The loop replays all three layers, so a total too low for one fails here
        // instead of waiting for a layer that never comes.
        let sent = encoder.allocation().sent_layers();
        if sent.len() != Layer::ALL.len() {
            return Err(CodecError::InvalidConfig(format!(
                "the pre-encoded loop needs all three simulcast layers, but {} kbit/s \
                 carry only {sent:?} at {}x{}, so raise total_bitrate_kbps",
                config.total_bitrate_kbps, config.width, config.height
            )));
        }
        let mut pattern = TestPattern::new(config.width, config.height, config.fps);

        let mut video = Vec::with_capacity(frames as usize);
        for index in 0..frames {
            let frame = pattern.next_frame().map_err(source_failed)?;
            encoder.encode(frame, index == 0)?;
            video.push(collect_layers(&encoder)?);
        }

        let packets = config.seconds.max(1) * 50;
        let mut tone = Tone::new(config.tone_hz);
        let mut opus = OpusEncoder::new(1, config.audio_bitrate)?;
        let mut audio = Vec::with_capacity(packets as usize);
        for _ in 0..packets {
            // A tone is never silent, so DTX never drops one of its frames.
            if let Some(packet) = opus.encode(&tone.generate())? {
                audio.push(packet);
            }
        }

        Ok(Self {
            recording: Arc::new(Recording {
                fps: config.fps,
                video,
                audio,
            }),
        })
    }

    /// Returns a player positioned at the start of the loop.
    pub fn player(&self) -> PreEncodedPlayer {
        PreEncodedPlayer {
            recording: Arc::clone(&self.recording),
            video_index: 0,
            audio_index: 0,
            loops: 0,
        }
    }

    pub fn video_frames(&self) -> usize {
        self.recording.video.len()
    }

    pub fn audio_packets(&self) -> usize {
        self.recording.audio.len()
    }
}

fn source_failed(err: SourceError) -> CodecError {
    CodecError::InvalidConfig(format!("the test pattern failed: {err}"))
}

/// Waits for the three layers of one frame and orders them by [`Layer::ALL`].
fn collect_layers(encoder: &SimulcastEncoder) -> Result<[EncodedVideo; 3], CodecError> {
    let mut layers: [Option<EncodedVideo>; 3] = [None, None, None];
    for _ in 0..3 {
        let encoded = encoder.recv_timeout(ENCODE_TIMEOUT)?;
        let slot = Layer::ALL
            .iter()
            .position(|layer| *layer == encoded.layer)
            .expect("every layer is in Layer::ALL");
        layers[slot] = Some(encoded);
    }
    let [high, medium, low] = layers;
    match (high, medium, low) {
        (Some(high), Some(medium), Some(low)) => Ok([high, medium, low]),
        _ => Err(CodecError::InvalidConfig(
            "a layer produced two frames for one input frame".into(),
        )),
    }
}

/// Replays a [`PreEncodedMedia`] loop. Timestamps keep increasing across loops,
/// but the frame counter drawn in the pictures restarts at 0 with each loop.
#[derive(Debug, Clone)]
pub struct PreEncodedPlayer {
    recording: Arc<Recording>,
    video_index: usize,
    audio_index: usize,
    loops: u64,
}

impl PreEncodedPlayer {
    /// Returns the next video frame of every layer, in [`Layer::ALL`] order, with
    /// timestamps continuing across loops.
    pub fn next_video(&mut self) -> [EncodedVideo; 3] {
        let recording = &self.recording;
        let loop_length = recording.video.len() as u32;
        let mut frames = recording.video[self.video_index].clone();
        let offset = Duration::from_secs_f64(
            (self.loops * u64::from(loop_length)) as f64 / f64::from(recording.fps),
        );
        for frame in &mut frames {
            frame.timestamp += offset;
        }
        self.video_index += 1;
        if self.video_index == recording.video.len() {
            self.video_index = 0;
            self.loops += 1;
        }
        frames
    }

    /// Returns the next 20 ms Opus packet.
    pub fn next_audio(&mut self) -> Bytes {
        let packet = self.recording.audio[self.audio_index].clone();
        self.audio_index = (self.audio_index + 1) % self.recording.audio.len();
        packet
    }
}
