//! The echo canceller of the real WebRTC audio processing module removes a
//! known echo: the energy of the microphone signal drops after processing.

use std::time::Duration;

use roomler_media::{AudioFrame, AudioProcessor, ProcessorConfig, SAMPLES_PER_FRAME};

/// Far-end "speech": noise with a slowly changing spectrum from a fixed-seed
/// generator, so every run is the same.
fn far_end(frames: usize) -> Vec<AudioFrame> {
    let mut state: u32 = 0x1234_5678;
    let mut smooth = 0.0f64;
    (0..frames)
        .map(|index| {
            let samples = (0..SAMPLES_PER_FRAME)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let white = f64::from((state >> 16) as i16);
                    smooth = 0.6 * smooth + 0.4 * white;
                    (smooth * 0.5) as i16
                })
                .collect();
            AudioFrame {
                samples,
                ..AudioFrame::silence(1, Duration::from_millis(20 * index as u64))
            }
        })
        .collect()
}

/// Returns what the microphone picks up: the speaker 40 ms later at half
/// amplitude.
fn echo_of(far: &[AudioFrame], delay_frames: usize) -> Vec<AudioFrame> {
    (0..far.len())
        .map(|index| {
            let mut frame = AudioFrame::silence(1, far[index].timestamp);
            if index >= delay_frames {
                for (out, &s) in frame
                    .samples
                    .iter_mut()
                    .zip(&far[index - delay_frames].samples)
                {
                    *out = s / 2;
                }
            }
            frame
        })
        .collect()
}

fn energy(frames: &[AudioFrame]) -> f64 {
    frames
        .iter()
        .flat_map(|f| f.samples.iter())
        .map(|&s| f64::from(s).powi(2))
        .sum()
}

#[test]
fn echo_canceller_reduces_known_echo() {
    let config = ProcessorConfig {
        echo_cancellation: true,
        noise_suppression: false,
        gain_control: false,
    };
    let mut processor = AudioProcessor::new(1, config).unwrap();
    let far = far_end(500); // 10 s
    let mut microphone = echo_of(&far, 2);
    let before = energy(&microphone[400..]);

    for (played, captured) in far.iter().zip(microphone.iter_mut()) {
        processor.process_render(played).unwrap();
        processor.process_capture(captured).unwrap();
    }
    // Measure the last 2 s, after the canceller has converged.
    let after = energy(&microphone[400..]);
    let reduction_db = 10.0 * (before / after.max(1.0)).log10();
    assert!(
        reduction_db > 10.0,
        "echo reduced by only {reduction_db:.1} dB"
    );
}

#[test]
fn processing_keeps_frame_shape() {
    let mut processor = AudioProcessor::new(1, ProcessorConfig::default()).unwrap();
    let mut frame = AudioFrame::silence(1, Duration::ZERO);
    processor.process_capture(&mut frame).unwrap();
    assert_eq!(frame.samples.len(), SAMPLES_PER_FRAME);

    let mut stereo = AudioFrame::silence(2, Duration::ZERO);
    let err = processor.process_capture(&mut stereo).unwrap_err();
    assert!(err.to_string().contains("2 channels"), "{err}");
}

/// Returns `frames` of white noise at about -35 dBov from a fixed seed.
fn noise(frames: usize) -> Vec<AudioFrame> {
    let mut state: u32 = 0x9e37_79b9;
    (0..frames)
        .map(|index| {
            let samples = (0..SAMPLES_PER_FRAME)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((state >> 16) as i16) / 32
                })
                .collect();
            AudioFrame {
                samples,
                ..AudioFrame::silence(1, Duration::from_millis(20 * index as u64))
            }
        })
        .collect()
}

#[test]
fn noise_suppressor_reduces_steady_noise() {
    let config = ProcessorConfig {
        echo_cancellation: false,
        noise_suppression: true,
        gain_control: false,
    };
    let mut processor = AudioProcessor::new(1, config).unwrap();
    let mut microphone = noise(250); // 5 s
    let before = energy(&microphone[150..]);
    for frame in microphone.iter_mut() {
        processor.process_capture(frame).unwrap();
    }
    let after = energy(&microphone[150..]);
    let reduction_db = 10.0 * (before / after.max(1.0)).log10();
    assert!(
        reduction_db > 6.0,
        "noise reduced by only {reduction_db:.1} dB"
    );
}

#[test]
fn gain_control_raises_quiet_speech_level() {
    let config = ProcessorConfig {
        echo_cancellation: false,
        noise_suppression: false,
        gain_control: true,
    };
    let mut processor = AudioProcessor::new(1, config).unwrap();
    // A quiet voice: the far-end signal at about -46 dBov.
    let mut microphone: Vec<AudioFrame> = far_end(250)
        .into_iter()
        .map(|mut frame| {
            frame.samples.iter_mut().for_each(|s| *s /= 30);
            frame
        })
        .collect();
    let before = energy(&microphone[150..]);
    for frame in microphone.iter_mut() {
        processor.process_capture(frame).unwrap();
    }
    let after = energy(&microphone[150..]);
    let gain_db = 10.0 * (after / before.max(1.0)).log10();
    assert!(gain_db > 3.0, "gain control added only {gain_db:.1} dB");
}
