//! Pre-encoded media replays decodable video and audio in a loop.

use roomler_media::{
    Layer, OpusDecoder, PreEncodedConfig, PreEncodedMedia, SAMPLE_RATE, Vp8Decoder, detect_tone,
    read_frame_counter,
};

#[test]
fn replay_decodes_and_loops() {
    let config = PreEncodedConfig {
        seconds: 1,
        width: 320,
        height: 180,
        fps: 10,
        total_bitrate_kbps: 300,
        tone_hz: 600.0,
        audio_bitrate: 24_000,
    };
    let media = PreEncodedMedia::record(&config).unwrap();
    assert_eq!(media.video_frames(), 10);
    assert_eq!(media.audio_packets(), 50);

    let mut player = media.player();
    let mut decoders: Vec<Vp8Decoder> = Layer::ALL
        .iter()
        .map(|_| Vp8Decoder::new().unwrap())
        .collect();
    let mut last_timestamp = None;
    for index in 0..25u32 {
        let layers = player.next_video();
        for (slot, encoded) in layers.iter().enumerate() {
            assert_eq!(encoded.layer, Layer::ALL[slot]);
            let picture = decoders[slot].decode(&encoded.data).unwrap().unwrap();
            // The counter restarts with each loop of 10 frames.
            assert_eq!(
                read_frame_counter(&picture),
                Some(index % 10),
                "frame {index}"
            );
        }
        if index % 10 == 0 {
            assert!(layers[0].keyframe, "loop restart {index} is a keyframe");
        }
        let timestamp = layers[0].timestamp;
        if let Some(last) = last_timestamp {
            assert!(timestamp > last, "timestamp {timestamp:?} after {last:?}");
        }
        last_timestamp = Some(timestamp);
    }

    let mut decoder = OpusDecoder::new(1).unwrap();
    let samples: Vec<i16> = (0..60)
        .flat_map(|_| {
            decoder
                .decode(Some(&player.next_audio()[..]), false)
                .unwrap()
                .samples
        })
        .collect();
    let detected = detect_tone(&samples, SAMPLE_RATE).expect("the tone is detected");
    assert!((detected - 600.0).abs() < 5.0, "detected {detected} Hz");
}
