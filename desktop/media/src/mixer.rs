//! Mixing of several decoded streams into one frame for playback.

use std::time::Duration;

use crate::error::MixError;
use crate::frame::{AudioFrame, SAMPLE_RATE, SAMPLES_PER_FRAME};

/// Sums 20 ms frames of several remote streams into one, clipping to 16 bits.
#[derive(Debug, Clone, Copy)]
pub struct Mixer {
    channels: u16,
}

impl Mixer {
    /// Creates a mixer whose output has `channels` channels (1 or 2). Mono inputs
    /// are copied to both channels of a stereo mix; stereo inputs are averaged
    /// into a mono mix.
    pub fn new(channels: u16) -> Self {
        Self {
            channels: channels.clamp(1, 2),
        }
    }

    /// Mixes `frames`; no frames give silence. Every frame must hold 20 ms.
    pub fn mix(&self, frames: &[&AudioFrame], timestamp: Duration) -> Result<AudioFrame, MixError> {
        let out_channels = self.channels as usize;
        let mut sum = vec![0i32; SAMPLES_PER_FRAME * out_channels];
        for (index, frame) in frames.iter().enumerate() {
            if frame.channels == 0 || frame.channels > 2 {
                return Err(MixError::Channels {
                    index,
                    expected: self.channels,
                    got: frame.channels,
                });
            }
            let expected = SAMPLES_PER_FRAME * frame.channels as usize;
            if frame.samples.len() != expected {
                return Err(MixError::Length {
                    index,
                    expected,
                    got: frame.samples.len(),
                });
            }
            add_frame(&mut sum, frame, out_channels);
        }
        let samples = sum
            .into_iter()
            .map(|value| value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .collect();
        Ok(AudioFrame {
            sample_rate: SAMPLE_RATE,
            channels: self.channels,
            samples,
            timestamp,
        })
    }
}

fn add_frame(sum: &mut [i32], frame: &AudioFrame, out_channels: usize) {
    match (frame.channels as usize, out_channels) {
        (1, 2) => {
            for (pair, &sample) in sum.chunks_exact_mut(2).zip(&frame.samples) {
                pair[0] += i32::from(sample);
                pair[1] += i32::from(sample);
            }
        }
        (2, 1) => {
            for (slot, pair) in sum.iter_mut().zip(frame.samples.chunks_exact(2)) {
                *slot += (i32::from(pair[0]) + i32::from(pair[1])) / 2;
            }
        }
        _ => {
            for (slot, &sample) in sum.iter_mut().zip(&frame.samples) {
                *slot += i32::from(sample);
            }
        }
    }
}
