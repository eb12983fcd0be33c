//! A remote stream with reordering and loss still plays the tone, with lost
//! packets rebuilt by FEC or concealed.

use roomler_media::{
    JitterConfig, OpusEncoder, PushOutcome, RemoteAudio, SAMPLE_RATE, Tone, detect_tone,
};

#[test]
fn lossy_reordered_stream_plays_tone() {
    let mut tone = Tone::new(440.0);
    let mut encoder = OpusEncoder::new(1, 32_000).unwrap();
    let packets: Vec<bytes::Bytes> = (0..150)
        .map(|_| encoder.encode(&tone.generate()).unwrap().unwrap())
        .collect();

    let mut remote = RemoteAudio::new(1, JitterConfig::default()).unwrap();
    let mut played = Vec::new();
    let mut lost = 0;
    // Packets arrive in swapped pairs (1, 0, 3, 2, ...), every 15th is lost, and
    // the playout clock ticks twice after each pair.
    let base: u16 = 65_500; // the sequence wraps during the run
    for pair in (0..packets.len()).step_by(2) {
        for index in [pair + 1, pair] {
            if index >= packets.len() {
                continue;
            }
            if index % 15 == 7 {
                lost += 1;
                continue;
            }
            let sequence = base.wrapping_add(index as u16);
            let timestamp = (index as u32) * 960;
            assert_eq!(
                remote.push(sequence, timestamp, packets[index].clone()),
                PushOutcome::Buffered
            );
        }
        for _ in 0..2 {
            if let Some(frame) = remote.next_frame().unwrap() {
                played.extend(frame.samples);
            }
        }
    }
    // Drain what is left.
    while let Some(frame) = remote.next_frame().unwrap() {
        played.extend(frame.samples);
    }

    let stats = remote.jitter_stats();
    assert_eq!(stats.concealed, lost, "every lost packet left one gap");
    assert_eq!(stats.late, 0);
    assert!(
        remote.recovered_by_fec() > 0,
        "the packet after a loss was buffered"
    );
    assert_eq!(played.len(), 150 * 960, "every slot was played");
    let detected = detect_tone(&played, SAMPLE_RATE).expect("the tone is detected");
    assert!((detected - 440.0).abs() < 5.0, "detected {detected} Hz");
}
