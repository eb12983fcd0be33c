//! VP8 round trips through the real libvpx: the test pattern's frame counter
//! must survive encoding at low bitrate in every simulcast layer.

use std::time::Duration;

use roomler_media::{
    Layer, SimulcastConfig, SimulcastEncoder, TestPattern, VideoSource, Vp8Config, Vp8Decoder,
    Vp8Encoder, read_frame_counter,
};

const FRAMES: u32 = 60;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Decodes `frames` and returns the counters read from them, in order.
fn counters_of(decoder: &mut Vp8Decoder, encoded: &[roomler_media::EncodedVideo]) -> Vec<u32> {
    encoded
        .iter()
        .map(|frame| {
            let picture = decoder
                .decode(&frame.data)
                .expect("the frame decodes")
                .expect("the frame produces a picture");
            assert_eq!(picture.width, frame.width, "decoded width");
            assert_eq!(picture.height, frame.height, "decoded height");
            read_frame_counter(&picture).expect("the counter is readable")
        })
        .collect()
}

#[test]
fn counter_survives_each_simulcast_layer() {
    // 300 kbit/s in all: the low layer (160x90) gets 36 kbit/s.
    let mut encoder = SimulcastEncoder::spawn(SimulcastConfig::new(640, 360, 30, 300)).unwrap();
    let mut pattern = TestPattern::new(640, 360, 30).starting_at(1_000);
    let mut by_layer: Vec<(Layer, Vec<roomler_media::EncodedVideo>)> = Layer::ALL
        .iter()
        .map(|layer| (*layer, Vec::new()))
        .collect();

    for index in 0..FRAMES {
        let frame = pattern.next_frame().unwrap();
        let dropped = encoder.encode(frame, index == 0).unwrap();
        assert!(dropped.is_empty(), "frame {index} dropped by {dropped:?}");
        for _ in 0..3 {
            let encoded = encoder.recv_timeout(TIMEOUT).unwrap();
            let entry = by_layer
                .iter_mut()
                .find(|(layer, _)| *layer == encoded.layer)
                .unwrap();
            entry.1.push(encoded);
        }
    }

    for (layer, encoded) in &by_layer {
        assert_eq!(
            encoded.len(),
            FRAMES as usize,
            "frames of layer {}",
            layer.rid()
        );
        assert!(
            encoded[0].keyframe,
            "layer {} starts with a keyframe",
            layer.rid()
        );
        let expected_width = 640 >> layer.halvings();
        assert_eq!(
            encoded[0].width,
            expected_width,
            "width of layer {}",
            layer.rid()
        );

        let mut decoder = Vp8Decoder::new().unwrap();
        let counters = counters_of(&mut decoder, encoded);
        let expected: Vec<u32> = (1_000..1_000 + FRAMES).collect();
        assert_eq!(counters, expected, "counters of layer {}", layer.rid());
    }
}

#[test]
fn low_layer_is_smaller_than_high() {
    let mut encoder = SimulcastEncoder::spawn(SimulcastConfig::new(640, 360, 30, 600)).unwrap();
    let mut pattern = TestPattern::new(640, 360, 30);
    let mut bytes = [0usize; 3];
    for index in 0..30 {
        encoder
            .encode(pattern.next_frame().unwrap(), index == 0)
            .unwrap();
        for _ in 0..3 {
            let encoded = encoder.recv_timeout(TIMEOUT).unwrap();
            let slot = Layer::ALL.iter().position(|l| *l == encoded.layer).unwrap();
            bytes[slot] += encoded.data.len();
        }
    }
    assert!(
        bytes[0] > bytes[1],
        "high {} vs medium {} bytes",
        bytes[0],
        bytes[1]
    );
    assert!(
        bytes[1] > bytes[2],
        "medium {} vs low {} bytes",
        bytes[1],
        bytes[2]
    );
}

/// Encodes one frame of `pattern` and returns the layers it came out in, and
/// whether each was a keyframe, in the order of [`Layer::ALL`].
fn encode_layers(encoder: &mut SimulcastEncoder, pattern: &mut TestPattern) -> Vec<(Layer, bool)> {
    let sent = encoder.allocation().sent_layers();
    let dropped = encoder
        .encode(pattern.next_frame().unwrap(), false)
        .unwrap();
    assert!(dropped.is_empty(), "dropped by {dropped:?}");
    let mut layers: Vec<(Layer, bool)> = sent
        .iter()
        .map(|_| {
            let encoded = encoder.recv_timeout(TIMEOUT).unwrap();
            (encoded.layer, encoded.keyframe)
        })
        .collect();
    layers.sort();
    layers
}

#[test]
fn low_bitrate_stops_top_layer_until_it_recovers() {
    // The test pattern's call configuration: the top layer needs 242 kbit/s in
    // all, and 254 to start again.
    let mut encoder = SimulcastEncoder::spawn(SimulcastConfig::new(320, 240, 30, 450)).unwrap();
    let mut pattern = TestPattern::new(320, 240, 30);
    let first = encode_layers(&mut encoder, &mut pattern);
    assert_eq!(
        first.iter().map(|(layer, _)| *layer).collect::<Vec<_>>(),
        Layer::ALL.to_vec()
    );
    for _ in 0..5 {
        encode_layers(&mut encoder, &mut pattern);
    }

    let allocation = encoder.set_bitrate(200).unwrap();
    assert!(!allocation.sends(Layer::High), "{allocation:?}");
    for _ in 0..5 {
        let layers = encode_layers(&mut encoder, &mut pattern);
        assert_eq!(
            layers,
            vec![(Layer::Medium, false), (Layer::Low, false)],
            "the top layer went on at 200 kbit/s"
        );
    }

    encoder.set_bitrate(250).unwrap();
    let still = encode_layers(&mut encoder, &mut pattern);
    assert_eq!(
        still.len(),
        2,
        "the top layer resumed at 250 kbit/s: {still:?}"
    );

    encoder.set_bitrate(300).unwrap();
    let resumed = encode_layers(&mut encoder, &mut pattern);
    assert_eq!(
        resumed,
        vec![
            (Layer::High, true),
            (Layer::Medium, false),
            (Layer::Low, false)
        ],
        "the top layer resumes with a keyframe, the others go on"
    );
    let next = encode_layers(&mut encoder, &mut pattern);
    assert_eq!(next[0], (Layer::High, false), "{next:?}");
}

#[test]
fn forced_keyframe_and_counter_increase() {
    let encoder = Vp8Encoder::spawn(Vp8Config::new(320, 180, 30, 100)).unwrap();
    let mut decoder = Vp8Decoder::new().unwrap();
    let mut pattern = TestPattern::new(320, 180, 30);
    let mut previous = None;
    for index in 0..45u32 {
        let force = index == 0 || index == 30;
        encoder
            .encode(pattern.next_frame().unwrap(), force)
            .unwrap();
        let encoded = encoder.recv_timeout(TIMEOUT).unwrap();
        if force {
            assert!(
                encoded.keyframe,
                "frame {index} was forced to be a keyframe"
            );
        } else {
            assert!(!encoded.keyframe, "frame {index} is a delta frame");
        }
        let picture = decoder.decode(&encoded.data).unwrap().unwrap();
        let counter = read_frame_counter(&picture).expect("the counter is readable");
        if let Some(previous) = previous {
            assert!(counter > previous, "counter {counter} after {previous}");
        }
        previous = Some(counter);
    }
    assert_eq!(previous, Some(44));
}

#[test]
fn lower_bitrate_gives_smaller_frames() {
    let encoder = Vp8Encoder::spawn(Vp8Config::new(320, 180, 30, 400)).unwrap();
    let mut pattern = TestPattern::new(320, 180, 30);
    let mut measure = |frames: u32| {
        let mut bytes = 0;
        for _ in 0..frames {
            encoder
                .encode(pattern.next_frame().unwrap(), false)
                .unwrap();
            bytes += encoder.recv_timeout(TIMEOUT).unwrap().data.len();
        }
        bytes
    };
    measure(30);
    let high = measure(60);
    encoder.set_bitrate(50).unwrap();
    measure(30);
    let low = measure(60);
    assert!(low * 2 < high, "{low} bytes at 50 kbit/s vs {high} at 400");
}

#[test]
fn decoder_rejects_garbage() {
    let mut decoder = Vp8Decoder::new().unwrap();
    let result = decoder.decode(&[0xff; 64]);
    assert!(result.is_err(), "garbage decoded to {result:?}");
}

#[test]
fn invalid_config_names_the_value() {
    let err = Vp8Encoder::spawn(Vp8Config::new(641, 360, 30, 300))
        .err()
        .unwrap();
    assert!(err.to_string().contains("641x360"), "{err}");
    let err = Vp8Encoder::spawn(Vp8Config::new(640, 360, 0, 300))
        .err()
        .unwrap();
    assert!(err.to_string().contains("frame rate 0"), "{err}");
}
