//! The media of a call: synthetic sources encoded for sending, and the decoding of
//! what arrives, each on a thread of its own so that no codec runs on an async
//! worker.
//!
//! Sending: [`start_sources`] runs the `roomler-media` test pattern through a VP8
//! encoder and a tone through an Opus encoder, and hands the encoded frames to the
//! async task that writes them to the peer connection's tracks.
//!
//! Receiving: [`spawn_video_decoder`] and [`spawn_audio_decoder`] take the RTP
//! packets of one remote track. Video is reassembled into whole VP8 frames
//! ([`Vp8Assembler`]) and decoded, and the frame counter is read from each
//! picture. Audio goes through a jitter buffer and the Opus decoder at the 20 ms
//! playout rate, and the tone's frequency is measured on the decoded samples.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use roomler_media::{
    AUDIO_FRAME_DURATION, AudioSource, CodecError, EncodedVideo, JitterConfig, OpusEncoder,
    RemoteAudio, SAMPLE_RATE, TestPattern, Tone, VideoSource, Vp8Config, Vp8Decoder, Vp8Encoder,
    detect_tone, read_frame_counter,
};
use tokio::sync::mpsc;

/// Size and rate of the synthetic video: large enough for the frame counter's
/// blocks to survive VP8, small enough for three encoders and six decoders on a
/// two-core machine.
pub const VIDEO_WIDTH: u32 = 320;
pub const VIDEO_HEIGHT: u32 = 240;
pub const VIDEO_FPS: u32 = 30;
const VIDEO_BITRATE_KBPS: u32 = 300;
/// A keyframe every second. The default interceptors of `webrtc` 0.21 do not pass
/// Janus's PLI on to the application, so a subscriber that starts late, or loses
/// a packet, waits at most this long for a picture it can decode.
const KEYFRAME_INTERVAL_FRAMES: u32 = VIDEO_FPS;
/// Opus at 32 kbit/s, mono: a voice default that keeps a sine tone clean.
const AUDIO_BITRATE: u32 = 32_000;
const AUDIO_CHANNELS: u16 = 1;
/// Encoded frames waiting for the sending task; a second of video at most.
const OUTGOING_QUEUE: usize = 30;
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
    #[error("failed to start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        source: io::Error,
    },
}

/// The receivers of the encoded synthetic media. Dropping them stops the threads.
pub struct EncodedStreams {
    pub video: mpsc::Receiver<EncodedVideo>,
    pub audio: mpsc::Receiver<EncodedAudio>,
    stop: Arc<AtomicBool>,
}

impl Drop for EncodedStreams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the synthetic sources: the moving test pattern as VP8 at
/// [`VIDEO_WIDTH`]x[`VIDEO_HEIGHT`] and a sine tone of `tone_hz` as Opus, both
/// paced in real time on threads of their own.
pub fn start_sources(tone_hz: f32) -> Result<EncodedStreams, MediaError> {
    let config = Vp8Config {
        keyframe_interval: Some(KEYFRAME_INTERVAL_FRAMES),
        ..Vp8Config::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS, VIDEO_BITRATE_KBPS)
    };
    let encoder = Vp8Encoder::spawn(config)?;
    let opus = OpusEncoder::new(AUDIO_CHANNELS, AUDIO_BITRATE)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (video_tx, video) = mpsc::channel(OUTGOING_QUEUE);
    let (audio_tx, audio) = mpsc::channel(OUTGOING_QUEUE);

    let pattern = TestPattern::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS).realtime();
    let video_stop = stop.clone();
    spawn_named("roomler-video-source", move || {
        run_video_source(pattern, encoder, video_tx, &video_stop);
    })?;
    let tone = Tone::new(tone_hz).with_channels(AUDIO_CHANNELS).realtime();
    let audio_stop = stop.clone();
    spawn_named("roomler-audio-source", move || {
        run_audio_source(tone, opus, audio_tx, &audio_stop);
    })?;
    Ok(EncodedStreams { video, audio, stop })
}

fn spawn_named(name: &'static str, body: impl FnOnce() + Send + 'static) -> Result<(), MediaError> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .map(|_| ())
        .map_err(|source| MediaError::Thread { name, source })
}

fn run_video_source(
    mut pattern: TestPattern,
    encoder: Vp8Encoder,
    output: mpsc::Sender<EncodedVideo>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let frame = match pattern.next_frame() {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%error, "the test pattern stopped");
                return;
            }
        };
        match encoder.encode(frame, false) {
            // The encoder is behind; this frame is skipped, like a camera's.
            Ok(()) | Err(CodecError::QueueFull) => {}
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
            if output.blocking_send(encoded).is_err() {
                return;
            }
        }
    }
}

fn run_audio_source(
    mut tone: Tone,
    mut encoder: OpusEncoder,
    output: mpsc::Sender<EncodedAudio>,
    stop: &AtomicBool,
) {
    let mut skipped: u16 = 0;
    while !stop.load(Ordering::Relaxed) {
        let frame = match tone.next_frame() {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%error, "the tone source stopped");
                return;
            }
        };
        match encoder.encode(&frame) {
            Ok(Some(data)) => {
                if output
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
    /// The dominant frequency of the last measured 100 ms of decoded audio.
    pub tone_hz: Option<f32>,
}

/// The shared statistics of one remote track, written by its decoder thread.
pub type SharedStats = Arc<Mutex<DecodedStats>>;

/// Starts a thread that reassembles and decodes the VP8 packets sent to the
/// returned sender. The thread ends when the sender is dropped.
pub fn spawn_video_decoder(stats: SharedStats) -> std_mpsc::Sender<RtpUnit> {
    let (sender, packets) = std_mpsc::channel::<RtpUnit>();
    let body = move || {
        let mut decoder = match Vp8Decoder::new() {
            Ok(decoder) => decoder,
            Err(error) => {
                tracing::warn!(%error, "failed to create a VP8 decoder");
                return;
            }
        };
        let mut assembler = Vp8Assembler::default();
        while let Ok(unit) = packets.recv() {
            stats.lock().unwrap().packets += 1;
            let Some(frame) = assembler.push(&unit) else {
                continue;
            };
            let decoded = decoder.decode(&frame);
            let mut stats = stats.lock().unwrap();
            stats.frames_received += 1;
            match decoded {
                Ok(Some(picture)) => {
                    stats.frames_decoded += 1;
                    if let Some(counter) = read_frame_counter(&picture) {
                        stats.frame_counter_min = Some(
                            stats
                                .frame_counter_min
                                .map_or(counter, |min| min.min(counter)),
                        );
                        stats.frame_counter_max = stats.frame_counter_max.max(Some(counter));
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    stats.decode_errors += 1;
                    tracing::debug!(%error, "failed to decode a VP8 frame");
                    assembler.wait_for_keyframe();
                }
            }
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

/// Starts a thread that plays the Opus packets sent to the returned sender out of
/// a jitter buffer every 20 ms, decodes them and measures the tone. The thread
/// ends when the sender is dropped.
pub fn spawn_audio_decoder(stats: SharedStats) -> std_mpsc::Sender<RtpUnit> {
    let (sender, packets) = std_mpsc::channel::<RtpUnit>();
    let body = move || {
        let mut remote = match RemoteAudio::new(AUDIO_CHANNELS, JitterConfig::default()) {
            Ok(remote) => remote,
            Err(error) => {
                tracing::warn!(%error, "failed to create an Opus decoder");
                return;
            }
        };
        let mut recent: VecDeque<i16> = VecDeque::with_capacity(TONE_WINDOW_SAMPLES);
        let mut next_tick = Instant::now() + AUDIO_FRAME_DURATION;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match packets.recv_timeout(wait) {
                Ok(unit) => {
                    stats.lock().unwrap().packets += 1;
                    remote.push(unit.sequence, unit.timestamp, unit.payload);
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
            next_tick += AUDIO_FRAME_DURATION;
            play_out(&mut remote, &mut recent, &stats);
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
fn play_out(remote: &mut RemoteAudio, recent: &mut VecDeque<i16>, stats: &SharedStats) {
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
/// NOTE: packets are taken in arrival order. A frame with a missing or reordered
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
    fn descriptor_skips_extensions() {
        // X set; I set with a 15-bit picture id; L and T/K present.
        let payload = [0x90, 0xe0, 0x81, 0x02, 0x05, 0x20, 0xaa, 0xbb];
        assert_eq!(vp8_descriptor(&payload), Some((true, &[0xaa, 0xbb][..])));
        assert_eq!(vp8_descriptor(&[0x90, 0x80]), None);
        assert_eq!(vp8_descriptor(&[0x11, 0x00]), Some((false, &[0x00][..])));
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
