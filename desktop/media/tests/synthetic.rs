//! The synthetic sources and their readers, without codecs in between.

use roomler_media::{
    AudioSource, SAMPLE_RATE, TestPattern, Tone, VideoFrame, VideoSource, detect_tone,
    read_frame_counter,
};

#[test]
fn counter_reads_back_from_every_size() {
    for (width, height) in [(640, 360), (320, 180), (160, 90), (1280, 720)] {
        let pattern = TestPattern::new(width, height, 30);
        for counter in [0, 1, 255, 65_536, 0xdead_beef, u32::MAX] {
            let frame = pattern.draw(counter);
            assert_eq!(
                read_frame_counter(&frame),
                Some(counter),
                "counter {counter} at {width}x{height}"
            );
        }
    }
}

#[test]
fn counter_survives_half_scaling() {
    let frame = TestPattern::new(640, 360, 30).draw(12_345);
    let quarter = frame.downscale_half().downscale_half();
    assert_eq!((quarter.width, quarter.height), (160, 90));
    assert_eq!(read_frame_counter(&quarter), Some(12_345));
}

#[test]
fn plain_frames_have_no_counter() {
    assert_eq!(
        read_frame_counter(&VideoFrame::black(640, 360, Default::default())),
        None
    );
    let mut white = VideoFrame::black(640, 360, Default::default());
    white.data.fill(235);
    assert_eq!(read_frame_counter(&white), None);
}

#[test]
fn pattern_moves_and_counts() {
    let mut pattern = TestPattern::new(320, 180, 30);
    let first = pattern.next_frame().unwrap();
    let second = pattern.next_frame().unwrap();
    assert_eq!(read_frame_counter(&first), Some(0));
    assert_eq!(read_frame_counter(&second), Some(1));
    let luma = (320 * 180) as usize;
    let bottom = 320 * 150..luma;
    assert_ne!(
        first.data[bottom.clone()],
        second.data[bottom],
        "the bar moves"
    );
    assert_eq!(second.timestamp.as_micros(), 33_333);
}

#[test]
fn tone_is_detected() {
    for frequency in [200.0, 440.0, 1_000.0, 3_150.0] {
        let mut tone = Tone::new(frequency);
        let samples: Vec<i16> = (0..10)
            .flat_map(|_| tone.next_frame().unwrap().samples)
            .collect();
        let detected = detect_tone(&samples, SAMPLE_RATE).expect("a tone is detected");
        assert!(
            (detected - frequency).abs() < 1.0,
            "{detected} Hz for {frequency} Hz"
        );
    }
}

#[test]
fn noise_and_silence_have_no_tone() {
    let mut state: u32 = 1;
    let noise: Vec<i16> = (0..9_600)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as i16
        })
        .collect();
    assert_eq!(detect_tone(&noise, SAMPLE_RATE), None);
    assert_eq!(detect_tone(&[0; 9_600], SAMPLE_RATE), None);
}
