//! The output end of the playback chain: a trait for sinks, and a null sink for
//! headless runs. The cpal speaker is `audio_device::CpalSpeaker`.

use std::collections::VecDeque;

use crate::error::SinkError;
use crate::frame::{AudioFrame, SAMPLE_RATE};

/// A consumer of mixed 20 ms frames: a speaker or the null sink. `play` does not
/// block for long; a device sink queues the frame for its callback.
pub trait AudioSink: Send {
    fn play(&mut self, frame: &AudioFrame) -> Result<(), SinkError>;
}

/// A sink that plays nothing. It counts frames and can keep the most recent
/// samples, so headless clients and tests can check what would have been heard.
#[derive(Debug, Default)]
pub struct NullSink {
    frames: u64,
    /// Samples kept, interleaved; at most `keep_samples` of them.
    recent: VecDeque<i16>,
    keep_samples: usize,
    channels: u16,
}

impl NullSink {
    /// Creates a sink that discards everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a sink that keeps the last `seconds` of audio.
    pub fn recording(seconds: f32) -> Self {
        Self {
            keep_samples: (seconds.max(0.0) * SAMPLE_RATE as f32) as usize,
            ..Self::default()
        }
    }

    /// Returns the number of frames played so far.
    pub fn frames_played(&self) -> u64 {
        self.frames
    }

    /// Returns the kept samples of the first channel, oldest first.
    pub fn recent_mono(&self) -> Vec<i16> {
        let channels = self.channels.max(1) as usize;
        self.recent.iter().step_by(channels).copied().collect()
    }
}

impl AudioSink for NullSink {
    fn play(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        if self.frames > 0 && frame.channels != self.channels {
            return Err(SinkError::Channels {
                expected: self.channels,
                got: frame.channels,
            });
        }
        self.channels = frame.channels;
        self.frames += 1;
        if self.keep_samples > 0 {
            let limit = self.keep_samples * frame.channels.max(1) as usize;
            self.recent.extend(&frame.samples);
            while self.recent.len() > limit {
                self.recent.pop_front();
            }
        }
        Ok(())
    }
}
