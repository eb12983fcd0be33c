//! Opus round trips through the real libopus: the tone's frequency must come
//! back, through concealment and FEC too, and DTX must suppress silence.

use roomler_media::{
    AudioFrame, AudioLevel, OpusDecoder, OpusEncoder, SAMPLE_RATE, Tone, detect_tone,
};

const TONE_HZ: f32 = 440.0;

/// Checks a detected frequency to within 5 Hz.
fn assert_near(detected: Option<f32>, expected: f32, label: &str) {
    assert_within(detected, expected, 5.0, label);
}

fn assert_within(detected: Option<f32>, expected: f32, tolerance: f32, label: &str) {
    let detected = detected.unwrap_or_else(|| panic!("no tone detected in {label}"));
    assert!(
        (detected - expected).abs() < tolerance,
        "{label}: detected {detected} Hz, expected {expected} Hz"
    );
}

fn encode_tone(frames: usize, frequency: f32) -> Vec<bytes::Bytes> {
    let mut tone = Tone::new(frequency);
    let mut encoder = OpusEncoder::new(1, 32_000).unwrap();
    (0..frames)
        .map(|_| {
            encoder
                .encode(&tone.generate())
                .unwrap()
                .expect("a tone is never silent")
        })
        .collect()
}

fn concat(frames: &[AudioFrame]) -> Vec<i16> {
    frames
        .iter()
        .flat_map(|f| f.samples.iter().copied())
        .collect()
}

#[test]
fn tone_survives_round_trip() {
    let packets = encode_tone(50, TONE_HZ);
    let mut decoder = OpusDecoder::new(1).unwrap();
    let decoded: Vec<AudioFrame> = packets
        .iter()
        .map(|p| decoder.decode(Some(&p[..]), false).unwrap())
        .collect();
    assert!(
        decoded.iter().all(|f| f.samples.len() == 960),
        "20 ms frames"
    );
    assert_near(
        detect_tone(&concat(&decoded), SAMPLE_RATE),
        TONE_HZ,
        "decoded audio",
    );
}

#[test]
fn tone_survives_concealed_loss() {
    let packets = encode_tone(100, TONE_HZ);
    let mut decoder = OpusDecoder::new(1).unwrap();
    let mut decoded = Vec::new();
    let mut concealed = Vec::new();
    for (index, packet) in packets.iter().enumerate() {
        // Lose every tenth packet.
        if index % 10 == 5 {
            let frame = decoder.decode(None, false).unwrap();
            assert_eq!(frame.samples.len(), 960, "a concealed frame lasts 20 ms");
            concealed.push(frame.clone());
            decoded.push(frame);
        } else {
            decoded.push(decoder.decode(Some(&packet[..]), false).unwrap());
        }
    }
    assert_near(
        detect_tone(&concat(&decoded), SAMPLE_RATE),
        TONE_HZ,
        "audio with 10% loss",
    );
    assert_eq!(concealed.len(), 10);
    for (index, frame) in concealed.iter().enumerate() {
        // Concealment extends the pitch it estimated, which drifts up to about
        // 10% off, and fades a little, but it fills the gap with the tone rather
        // than with silence.
        let label = format!("concealed frame {index}");
        assert_within(
            detect_tone(&frame.samples, SAMPLE_RATE),
            TONE_HZ,
            50.0,
            &label,
        );
        let level = AudioLevel::measure(&frame.samples).dbov();
        assert!(
            level > -30.0,
            "{label} is at {level} dBov, the tone at -13.5"
        );
    }
}

/// The tone changes from 440 Hz to 1000 Hz at the lost packet. Concealment can
/// only extend the 440 Hz it heard; FEC data in the next packet carries the new
/// 1000 Hz.
#[test]
fn fec_recovers_lost_packet() {
    let mut encoder = OpusEncoder::new(1, 32_000).unwrap();
    encoder.set_packet_loss(20).unwrap();
    let mut low = Tone::new(440.0);
    let mut high = Tone::new(1_000.0);
    let packets: Vec<bytes::Bytes> = (0..80)
        .map(|index| {
            let frame = if index < 50 {
                low.generate()
            } else {
                high.generate()
            };
            encoder.encode(&frame).unwrap().unwrap()
        })
        .collect();
    let lost = 50;

    let mut with_fec = OpusDecoder::new(1).unwrap();
    let mut with_plc = OpusDecoder::new(1).unwrap();
    for packet in &packets[..lost] {
        with_fec.decode(Some(&packet[..]), false).unwrap();
        with_plc.decode(Some(&packet[..]), false).unwrap();
    }
    let recovered = with_fec.decode(Some(&packets[lost + 1][..]), true).unwrap();
    let concealed = with_plc.decode(None, false).unwrap();

    // Skip the first 400 samples, which still hold the decoder's delayed 440 Hz.
    assert_near(
        detect_tone(&recovered.samples[400..], SAMPLE_RATE),
        1_000.0,
        "FEC frame",
    );
    let plc = detect_tone(&concealed.samples[400..], SAMPLE_RATE);
    assert!(
        plc.is_none_or(|hz| (hz - 1_000.0).abs() > 50.0),
        "concealment alone found {plc:?} Hz, so the test would not tell FEC apart"
    );

    // The stream continues normally after the recovered frame.
    let next = with_fec
        .decode(Some(&packets[lost + 1][..]), false)
        .unwrap();
    assert_near(
        detect_tone(&next.samples, SAMPLE_RATE),
        1_000.0,
        "frame after recovery",
    );
}

#[test]
fn dtx_suppresses_silence() {
    let mut encoder = OpusEncoder::new(1, 32_000).unwrap();
    let mut tone = Tone::new(TONE_HZ);
    for _ in 0..10 {
        assert!(
            encoder.encode(&tone.generate()).unwrap().is_some(),
            "tone frames are sent"
        );
    }
    let mut silence = Tone::new(TONE_HZ).with_amplitude(0.0);
    let sent = (0..100)
        .filter(|_| encoder.encode(&silence.generate()).unwrap().is_some())
        .count();
    // libopus sends a comfort-noise update every 400 ms, plus a few frames while
    // it decides the input went silent.
    assert!(sent <= 15, "{sent} of 100 silent frames were sent");
}

#[test]
fn stereo_round_trip() {
    let mut tone = Tone::new(TONE_HZ).with_channels(2);
    let mut encoder = OpusEncoder::new(2, 64_000).unwrap();
    let mut decoder = OpusDecoder::new(2).unwrap();
    let mut left = Vec::new();
    for _ in 0..25 {
        let packet = encoder.encode(&tone.generate()).unwrap().unwrap();
        let frame = decoder.decode(Some(&packet[..]), false).unwrap();
        assert_eq!(frame.channels, 2);
        left.extend(frame.samples.iter().step_by(2));
    }
    assert_near(detect_tone(&left, SAMPLE_RATE), TONE_HZ, "left channel");
}

#[test]
fn invalid_settings_are_rejected() {
    let err = OpusEncoder::new(3, 32_000).err().unwrap();
    assert!(err.to_string().contains("not 3"), "{err}");
    let err = OpusEncoder::new(1, 1_000).err().unwrap();
    assert!(err.to_string().contains("1000"), "{err}");
    let mut encoder = OpusEncoder::new(1, 32_000).unwrap();
    let short = AudioFrame {
        samples: vec![0; 480],
        ..AudioFrame::silence(1, std::time::Duration::ZERO)
    };
    let err = encoder.encode(&short).err().unwrap();
    assert!(err.to_string().contains("480"), "{err}");
}
