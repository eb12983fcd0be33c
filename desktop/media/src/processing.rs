//! Microphone processing through WebRTC's audio processing module (Debian's
//! libwebrtc-audio-processing 0.3): echo cancellation, noise suppression and
//! automatic gain.
//!
//! The echo canceller must see what the speaker plays: pass every mixed frame
//! to [`AudioProcessor::process_render`] (or to a [`RenderProcessor`] on the
//! playback thread) and every microphone frame to
//! [`AudioProcessor::process_capture`].

use webrtc_audio_processing as apm;

use crate::error::ProcessorError;
use crate::frame::{AudioFrame, SAMPLES_PER_FRAME};

/// Samples per channel in the 10 ms blocks the module works on.
const BLOCK: usize = apm::NUM_SAMPLES_PER_FRAME as usize;

/// Switches for the parts of the processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorConfig {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl Default for ProcessorConfig {
    /// Everything on, for calls without headphones.
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

/// Processes microphone frames in place.
pub struct AudioProcessor {
    processor: apm::Processor,
    channels: u16,
    buffer: Vec<f32>,
}

/// The render side of an [`AudioProcessor`], for the playback thread. It shares
/// the processor's state.
pub struct RenderProcessor {
    processor: apm::Processor,
    channels: u16,
    buffer: Vec<f32>,
}

impl AudioProcessor {
    /// Creates a processor for `channels` capture and render channels.
    pub fn new(channels: u16, config: ProcessorConfig) -> Result<Self, ProcessorError> {
        let init = apm::InitializationConfig {
            num_capture_channels: i32::from(channels),
            num_render_channels: i32::from(channels),
            ..Default::default()
        };
        let mut processor =
            apm::Processor::new(&init).map_err(|err| ProcessorError::Backend(err.to_string()))?;
        processor.set_config(module_config(config));
        Ok(Self {
            processor,
            channels,
            buffer: Vec::with_capacity(BLOCK * channels as usize),
        })
    }

    /// Returns a handle that feeds played audio to this processor's echo
    /// canceller from another thread.
    pub fn render_side(&self) -> RenderProcessor {
        RenderProcessor {
            processor: self.processor.clone(),
            channels: self.channels,
            buffer: Vec::with_capacity(BLOCK * self.channels as usize),
        }
    }

    /// Removes echo and noise from a microphone frame and adjusts its gain.
    pub fn process_capture(&mut self, frame: &mut AudioFrame) -> Result<(), ProcessorError> {
        check_frame(frame, self.channels)?;
        let block = BLOCK * self.channels as usize;
        for chunk in frame.samples.chunks_exact_mut(block) {
            to_float(chunk, &mut self.buffer);
            self.processor
                .process_capture_frame(&mut self.buffer)
                .map_err(|err| ProcessorError::Backend(err.to_string()))?;
            from_float(&self.buffer, chunk);
        }
        Ok(())
    }

    /// Feeds a frame that the speaker plays to the echo canceller.
    pub fn process_render(&mut self, frame: &AudioFrame) -> Result<(), ProcessorError> {
        render(&mut self.processor, &mut self.buffer, self.channels, frame)
    }

    /// Returns whether voice activity detection found speech in the last frame.
    pub fn has_voice(&self) -> Option<bool> {
        self.processor.get_stats().has_voice
    }

    /// Returns the echo return loss enhancement of the canceller, in dB, once it
    /// has converged.
    pub fn echo_return_loss_enhancement(&self) -> Option<f64> {
        self.processor.get_stats().echo_return_loss_enhancement
    }
}

impl RenderProcessor {
    /// Feeds a frame that the speaker plays to the echo canceller.
    pub fn process_render(&mut self, frame: &AudioFrame) -> Result<(), ProcessorError> {
        render(&mut self.processor, &mut self.buffer, self.channels, frame)
    }
}

fn render(
    processor: &mut apm::Processor,
    buffer: &mut Vec<f32>,
    channels: u16,
    frame: &AudioFrame,
) -> Result<(), ProcessorError> {
    check_frame(frame, channels)?;
    for chunk in frame.samples.chunks_exact(BLOCK * channels as usize) {
        to_float(chunk, buffer);
        processor
            .process_render_frame(buffer)
            .map_err(|err| ProcessorError::Backend(err.to_string()))?;
    }
    Ok(())
}

fn module_config(config: ProcessorConfig) -> apm::Config {
    apm::Config {
        echo_cancellation: config.echo_cancellation.then_some(apm::EchoCancellation {
            suppression_level: apm::EchoCancellationSuppressionLevel::High,
            // The extended filter covers longer echo paths, and the delay-agnostic
            // mode estimates the device delay, which cpal does not report.
            enable_extended_filter: true,
            enable_delay_agnostic: true,
            stream_delay_ms: None,
        }),
        gain_control: config.gain_control.then_some(apm::GainControl {
            mode: apm::GainControlMode::AdaptiveDigital,
            // The module's defaults: aim at -3 dBFS peaks, add at most 9 dB.
            target_level_dbfs: 3,
            compression_gain_db: 9,
            enable_limiter: true,
        }),
        noise_suppression: config.noise_suppression.then_some(apm::NoiseSuppression {
            suppression_level: apm::NoiseSuppressionLevel::High,
        }),
        voice_detection: Some(apm::VoiceDetection {
            detection_likelihood: apm::VoiceDetectionLikelihood::Moderate,
        }),
        enable_transient_suppressor: false,
        enable_high_pass_filter: true,
    }
}

fn check_frame(frame: &AudioFrame, channels: u16) -> Result<(), ProcessorError> {
    if frame.channels != channels {
        return Err(ProcessorError::Channels {
            expected: channels,
            got: frame.channels,
        });
    }
    let expected = SAMPLES_PER_FRAME * channels as usize;
    if frame.samples.len() != expected {
        return Err(ProcessorError::FrameLength {
            expected,
            got: frame.samples.len(),
        });
    }
    Ok(())
}

fn to_float(samples: &[i16], buffer: &mut Vec<f32>) {
    buffer.clear();
    buffer.extend(samples.iter().map(|&s| f32::from(s) / 32_768.0));
}

fn from_float(buffer: &[f32], samples: &mut [i16]) {
    for (sample, &value) in samples.iter_mut().zip(buffer) {
        *sample = (value * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
    }
}
