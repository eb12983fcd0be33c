//! The mixer sums and clips; audio levels in dBov match known signals; the
//! speaker detector follows the loudest stream.

use std::f64::consts::PI;
use std::time::Duration;

use roomler_media::{AudioFrame, AudioLevel, MixError, Mixer, SAMPLES_PER_FRAME, SpeakerDetector};

fn constant(channels: u16, value: i16) -> AudioFrame {
    AudioFrame {
        samples: vec![value; SAMPLES_PER_FRAME * channels as usize],
        ..AudioFrame::silence(channels, Duration::ZERO)
    }
}

fn sine(amplitude: f64) -> Vec<i16> {
    (0..48_000)
        .map(|i| (amplitude * 32_767.0 * (2.0 * PI * 1_000.0 * i as f64 / 48_000.0).sin()) as i16)
        .collect()
}

#[test]
fn mixer_sums_streams() {
    let mixer = Mixer::new(1);
    let mixed = mixer
        .mix(
            &[&constant(1, 1_000), &constant(1, -300), &constant(1, 50)],
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(mixed.samples.len(), SAMPLES_PER_FRAME);
    assert!(
        mixed.samples.iter().all(|&s| s == 750),
        "first sample {}",
        mixed.samples[0]
    );
}

#[test]
fn mixer_clips_both_ways() {
    let mixer = Mixer::new(1);
    let loud = mixer
        .mix(
            &[&constant(1, 30_000), &constant(1, 10_000)],
            Duration::ZERO,
        )
        .unwrap();
    assert!(loud.samples.iter().all(|&s| s == i16::MAX));
    let quiet = mixer
        .mix(
            &[&constant(1, -30_000), &constant(1, -10_000)],
            Duration::ZERO,
        )
        .unwrap();
    assert!(quiet.samples.iter().all(|&s| s == i16::MIN));
}

#[test]
fn mixer_of_nothing_is_silence() {
    let mixed = Mixer::new(2).mix(&[], Duration::from_millis(40)).unwrap();
    assert_eq!(mixed.samples.len(), 2 * SAMPLES_PER_FRAME);
    assert!(mixed.samples.iter().all(|&s| s == 0));
    assert_eq!(mixed.timestamp, Duration::from_millis(40));
}

#[test]
fn mixer_converts_channels() {
    let stereo = Mixer::new(2)
        .mix(&[&constant(1, 100)], Duration::ZERO)
        .unwrap();
    assert_eq!(stereo.samples.len(), 2 * SAMPLES_PER_FRAME);
    assert!(stereo.samples.iter().all(|&s| s == 100));

    let mut left_right = constant(2, 0);
    for pair in left_right.samples.chunks_exact_mut(2) {
        pair[0] = 200;
        pair[1] = 400;
    }
    let mono = Mixer::new(1).mix(&[&left_right], Duration::ZERO).unwrap();
    assert!(mono.samples.iter().all(|&s| s == 300));
}

#[test]
fn mixer_rejects_wrong_length() {
    let mut short = constant(1, 0);
    short.samples.truncate(100);
    let err = Mixer::new(1)
        .mix(&[&constant(1, 0), &short], Duration::ZERO)
        .unwrap_err();
    assert!(
        matches!(
            err,
            MixError::Length {
                index: 1,
                expected: 960,
                got: 100
            }
        ),
        "{err:?}"
    );
}

#[test]
fn level_of_known_signals() {
    let square: Vec<i16> = (0..960)
        .map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX })
        .collect();
    assert!(
        AudioLevel::measure(&square).dbov().abs() < 0.01,
        "full-scale square is 0 dBov"
    );

    let full = AudioLevel::measure(&sine(1.0)).dbov();
    assert!((full + 3.01).abs() < 0.05, "full-scale sine: {full} dBov");

    let half = AudioLevel::measure(&sine(0.5)).dbov();
    assert!((half + 9.03).abs() < 0.05, "half-scale sine: {half} dBov");

    let tenth = AudioLevel::measure(&sine(0.1)).dbov();
    assert!((tenth + 23.01).abs() < 0.05, "sine at 0.1: {tenth} dBov");

    let silence = AudioLevel::measure(&[0; 960]);
    assert_eq!(silence.dbov(), -127.0);
    assert_eq!(silence.rfc6464(), 127);
    assert_eq!(AudioLevel::measure(&sine(0.5)).rfc6464(), 9);
}

#[test]
fn speaker_detector_follows_loudest() {
    let mut detector = SpeakerDetector::new();
    let speech = AudioLevel::from_dbov(-20.0);
    let murmur = AudioLevel::from_dbov(-45.0);
    let silence = AudioLevel::from_dbov(-90.0);
    for _ in 0..50 {
        detector.update("alice", speech);
        detector.update("bob", murmur);
    }
    assert_eq!(detector.active(), Some(&"alice"));

    for _ in 0..100 {
        detector.update("alice", silence);
        detector.update("bob", speech);
    }
    assert_eq!(detector.active(), Some(&"bob"));

    for _ in 0..100 {
        detector.update("alice", silence);
        detector.update("bob", silence);
    }
    assert_eq!(detector.active(), None);
}
