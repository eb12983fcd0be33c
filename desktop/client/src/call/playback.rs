//! Playback of a call's remote audio. Each remote stream's decoder thread queues
//! its decoded 20 ms frames in a [`PlaybackMix`]. One playback thread mixes the
//! streams every 20 ms and plays the mix through an [`AudioSink`], a speaker or
//! the null sink. The mix also goes to the microphone's echo canceller, which must
//! hear what the speaker plays.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roomler_media::{
    AUDIO_FRAME_DURATION, AudioFrame, AudioSink, DeviceKind, Mixer, RenderProcessor, SinkError,
    SourceError,
};

use super::media::{FailureReporter, MediaError};

/// Frames kept per stream: 100 ms. A stream whose decoder runs ahead of the
/// playback clock loses its oldest frames, so the delay stays bounded.
const QUEUE_FRAMES: usize = 5;

/// The frames waiting to be played, per remote stream.
#[derive(Debug, Default)]
pub struct PlaybackMix {
    streams: Mutex<HashMap<u64, VecDeque<AudioFrame>>>,
    next_stream: AtomicU64,
}

/// One remote stream's place in a [`PlaybackMix`]; dropping it removes the stream.
#[derive(Debug)]
pub struct PlaybackStream {
    mix: Arc<PlaybackMix>,
    id: u64,
}

impl PlaybackMix {
    /// Adds a stream to the mix.
    pub fn add_stream(self: &Arc<Self>) -> PlaybackStream {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams.lock().unwrap().insert(id, VecDeque::new());
        PlaybackStream {
            mix: self.clone(),
            id,
        }
    }

    /// Returns the number of streams in the mix.
    pub fn stream_count(&self) -> usize {
        self.streams.lock().unwrap().len()
    }

    /// Takes the oldest frame of every stream and mixes them; `None` when no
    /// stream has a frame.
    fn take_mixed(&self, mixer: &Mixer, timestamp: Duration) -> Option<AudioFrame> {
        let frames: Vec<AudioFrame> = self
            .streams
            .lock()
            .unwrap()
            .values_mut()
            .filter_map(VecDeque::pop_front)
            .collect();
        if frames.is_empty() {
            return None;
        }
        let refs: Vec<&AudioFrame> = frames.iter().collect();
        match mixer.mix(&refs, timestamp) {
            Ok(mixed) => Some(mixed),
            Err(error) => {
                tracing::debug!(%error, "failed to mix the remote audio");
                None
            }
        }
    }
}

impl PlaybackStream {
    /// Queues one decoded frame of this stream.
    pub fn push(&self, frame: AudioFrame) {
        let mut streams = self.mix.streams.lock().unwrap();
        let Some(queue) = streams.get_mut(&self.id) else {
            return;
        };
        if queue.len() == QUEUE_FRAMES {
            queue.pop_front();
        }
        queue.push_back(frame);
    }
}

impl Drop for PlaybackStream {
    fn drop(&mut self) {
        self.mix.streams.lock().unwrap().remove(&self.id);
    }
}

/// The running playback thread; dropping it stops the thread.
pub struct Playback {
    stop: Arc<AtomicBool>,
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the thread that plays `mix` through `sink` every 20 ms, feeding each
/// mixed frame to `render`, the echo canceller's render side, first. A sink that
/// fails stops the thread, and its error goes to `failures`.
pub fn start_playback(
    mix: Arc<PlaybackMix>,
    mut sink: Box<dyn AudioSink>,
    mut render: Option<RenderProcessor>,
    failures: Option<FailureReporter>,
) -> Result<Playback, MediaError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let body = move || {
        let mixer = Mixer::new(1);
        let started = Instant::now();
        let mut next_tick = started + AUDIO_FRAME_DURATION;
        while !stopped.load(Ordering::Relaxed) {
            std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
            next_tick += AUDIO_FRAME_DURATION;
            let Some(frame) = mix.take_mixed(&mixer, started.elapsed()) else {
                continue;
            };
            if let Some(render) = &mut render
                && let Err(error) = render.process_render(&frame)
            {
                tracing::debug!(%error, "the echo canceller rejected a played frame");
            }
            if let Err(error) = sink.play(&frame) {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                tracing::warn!(%error, "the speaker stopped; the call goes on without sound");
                if let Some(failures) = &failures {
                    failures.report(DeviceKind::Speaker, speaker_error(error));
                }
                return;
            }
        }
    };
    std::thread::Builder::new()
        .name("roomler-playback".into())
        .spawn(body)
        .map_err(|source| MediaError::Thread {
            name: "roomler-playback",
            source,
        })?;
    Ok(Playback { stop })
}

/// Returns the device error behind a sink's failure.
fn speaker_error(error: SinkError) -> SourceError {
    match error {
        SinkError::Device(error) => error,
        other => SourceError::Backend {
            kind: DeviceKind::Speaker,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use roomler_media::{NullSink, Tone, detect_tone};
    use tokio::sync::mpsc;

    use super::*;

    /// A null sink that the test can read while the playback thread owns it.
    #[derive(Clone)]
    struct SharedSink(Arc<Mutex<NullSink>>);

    impl AudioSink for SharedSink {
        fn play(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
            self.0.lock().unwrap().play(frame)
        }
    }

    fn tone_frames(hz: f32, count: usize) -> Vec<AudioFrame> {
        let mut tone = Tone::new(hz).with_channels(1);
        (0..count).map(|_| tone.generate()).collect()
    }

    #[test]
    fn queue_keeps_newest_frames() {
        let mix = Arc::new(PlaybackMix::default());
        let stream = mix.add_stream();
        for frame in tone_frames(440.0, QUEUE_FRAMES + 3) {
            stream.push(frame);
        }
        let streams = mix.streams.lock().unwrap();
        assert_eq!(streams.values().next().unwrap().len(), QUEUE_FRAMES);
    }

    #[test]
    fn dropped_stream_leaves_mix() {
        let mix = Arc::new(PlaybackMix::default());
        let first = mix.add_stream();
        let second = mix.add_stream();
        assert_eq!(mix.stream_count(), 2);
        drop(first);
        assert_eq!(mix.stream_count(), 1);
        second.push(tone_frames(440.0, 1).remove(0));
        let mixed = mix.take_mixed(&Mixer::new(1), Duration::ZERO);
        assert!(mixed.is_some());
        assert!(mix.take_mixed(&Mixer::new(1), Duration::ZERO).is_none());
    }

    #[test]
    fn playback_plays_the_mixed_streams() {
        let mix = Arc::new(PlaybackMix::default());
        let sink = SharedSink(Arc::new(Mutex::new(NullSink::recording(0.1))));
        let playback = start_playback(mix.clone(), Box::new(sink.clone()), None, None).unwrap();
        let stream = mix.add_stream();
        let silent = mix.add_stream();
        let frames = tone_frames(660.0, 20);
        for frame in frames {
            stream.push(frame);
            silent.push(AudioFrame::silence(1, Duration::ZERO));
            std::thread::sleep(AUDIO_FRAME_DURATION);
        }
        drop(playback);
        let sink = sink.0.lock().unwrap();
        assert!(sink.frames_played() >= 5, "{} played", sink.frames_played());
        let detected = detect_tone(&sink.recent_mono(), roomler_media::SAMPLE_RATE);
        assert!(
            detected.is_some_and(|hz| (hz - 660.0).abs() < 3.0),
            "detected {detected:?}"
        );
    }

    /// A speaker that plays `frames` frames and then reports itself unplugged.
    struct UnpluggedSpeaker {
        frames: u32,
    }

    impl AudioSink for UnpluggedSpeaker {
        fn play(&mut self, _frame: &AudioFrame) -> Result<(), SinkError> {
            if self.frames == 0 {
                return Err(SinkError::Device(SourceError::DeviceLost {
                    kind: DeviceKind::Speaker,
                    name: "Headset".into(),
                    reason: "the device was unplugged".into(),
                }));
            }
            self.frames -= 1;
            Ok(())
        }
    }

    #[test]
    fn lost_speaker_is_reported() {
        let mix = Arc::new(PlaybackMix::default());
        let (failures, mut reports) = mpsc::unbounded_channel();
        let sink = Box::new(UnpluggedSpeaker { frames: 3 });
        let reporter = FailureReporter::new(7, failures);
        let _playback = start_playback(mix.clone(), sink, None, Some(reporter)).unwrap();
        let stream = mix.add_stream();
        let mut report = None;
        for frame in tone_frames(440.0, 50) {
            stream.push(frame);
            std::thread::sleep(AUDIO_FRAME_DURATION);
            if let Ok(failure) = reports.try_recv() {
                report = Some(failure);
                break;
            }
        }
        let failure = report.expect("the lost speaker was not reported");
        assert_eq!(failure.generation, 7);
        assert_eq!(failure.kind, DeviceKind::Speaker);
        assert!(
            matches!(&failure.error, SourceError::DeviceLost { name, .. } if name == "Headset"),
            "{:?}",
            failure.error
        );
    }
}
