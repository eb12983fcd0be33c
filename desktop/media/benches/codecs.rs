//! Encode and decode cost per frame of the engine's codecs: VP8 at 640x360 and
//! its simulcast layers, and Opus 20 ms frames. Also the shell's part of the
//! picture transport to the page: a decoded I420 picture turned into the RGBA body
//! that the desktop app's `roomler-frame` scheme serves.
//!
//! ```sh
//! cargo bench -p roomler-media --bench codecs
//! cargo bench -p roomler-media --bench codecs -- --frames 100   # quick run
//! ```
//!
//! It prints one line per measurement: the mean, median and 95th percentile of
//! the wall time per frame, and for VP8 the mean encoded size. The encoders run
//! on their own threads, so a VP8 encode is timed from queueing the frame to
//! receiving its output.

use std::time::{Duration, Instant};

use roomler_media::{
    Layer, OpusDecoder, OpusEncoder, SimulcastConfig, SimulcastEncoder, TestPattern, Tone,
    VideoSource, Vp8Config, Vp8Decoder, Vp8Encoder,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Bitrates of a typical 640x360 call stream: 800 kbit/s over the three layers.
const TOTAL_KBPS: u32 = 800;

struct Samples {
    name: String,
    times: Vec<Duration>,
    bytes: usize,
}

impl Samples {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            times: Vec::new(),
            bytes: 0,
        }
    }

    fn print(&mut self) {
        self.times.sort();
        let count = self.times.len().max(1);
        let mean = self.times.iter().sum::<Duration>() / count as u32;
        let median = self.times[count / 2];
        let p95 = self.times[(count * 95 / 100).min(count - 1)];
        let size = if self.bytes > 0 {
            format!("{:>7} B/frame", self.bytes / count)
        } else {
            String::new()
        };
        println!(
            "{:<44} mean {:>8.3} ms  p50 {:>8.3} ms  p95 {:>8.3} ms  {size}",
            self.name,
            ms(mean),
            ms(median),
            ms(p95)
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn main() {
    let frames = parse_frames();
    println!(
        "{frames} video frames and {} audio frames per measurement",
        frames * 5
    );
    for layer in Layer::ALL {
        bench_vp8_layer(layer, frames);
    }
    bench_simulcast(frames);
    bench_opus(frames * 5);
    for (width, height) in [(80, 60), (160, 120), (320, 240), (640, 480)] {
        bench_frame_body(width, height, frames);
    }
}

/// The header the desktop app's frame scheme puts before the RGBA pixels: width,
/// height and sequence number.
const FRAME_HEADER_BYTES: usize = 16;

/// Times building one `roomler-frame` response body from a decoded picture, as the
/// desktop app's `PictureBoard::encoded_after` does: a buffer for the header and
/// the pixels, the header, then I420 converted to RGBA.
fn bench_frame_body(width: u32, height: u32, frames: u32) {
    let mut pattern = TestPattern::new(width, height, 30);
    let mut samples = Samples::new(format!("frame scheme body {width}x{height} (RGBA)"));
    for index in 0..frames {
        let picture = pattern.next_frame().expect("the pattern never fails");
        let start = Instant::now();
        let pixels = width as usize * height as usize;
        let mut body = Vec::with_capacity(FRAME_HEADER_BYTES + pixels * 4);
        body.extend_from_slice(&width.to_le_bytes());
        body.extend_from_slice(&height.to_le_bytes());
        body.extend_from_slice(&u64::from(index).to_le_bytes());
        picture.write_rgba(&mut body);
        samples.times.push(start.elapsed());
        samples.bytes += std::hint::black_box(body).len();
    }
    samples.print();
}

fn parse_frames() -> u32 {
    let mut args = std::env::args().skip(1);
    let mut frames = 300;
    while let Some(arg) = args.next() {
        if arg == "--frames" {
            let value = args.next().unwrap_or_default();
            frames = value.parse().unwrap_or_else(|_| {
                eprintln!("--frames takes a positive number, not {value:?}");
                std::process::exit(2);
            });
        }
        // cargo bench passes --bench; other flags are ignored.
    }
    frames.max(10)
}

fn bench_vp8_layer(layer: Layer, frames: u32) {
    let mut config = Vp8Config::new(
        640,
        360,
        30,
        TOTAL_KBPS * layer.bitrate_share_percent() / 100,
    );
    config.layer = layer;
    let (width, height) = config.encoded_size();
    let encoder = Vp8Encoder::spawn(config).expect("the encoder starts");
    let mut decoder = Vp8Decoder::new().expect("the decoder starts");
    let mut pattern = TestPattern::new(640, 360, 30);
    let label = format!("{width}x{height} layer {}", layer.rid());
    let mut encode = Samples::new(format!("VP8 encode {label} (from 640x360)"));
    let mut decode = Samples::new(format!("VP8 decode {label}"));

    for index in 0..frames {
        let frame = pattern.next_frame().expect("the pattern never fails");
        let start = Instant::now();
        encoder
            .encode(frame, index == 0)
            .expect("the frame is queued");
        let encoded = encoder.recv_timeout(TIMEOUT).expect("the frame is encoded");
        encode.times.push(start.elapsed());
        encode.bytes += encoded.data.len();

        let start = Instant::now();
        decoder.decode(&encoded.data).expect("the frame decodes");
        decode.times.push(start.elapsed());
    }
    encode.print();
    decode.print();
}

fn bench_simulcast(frames: u32) {
    let mut encoder =
        SimulcastEncoder::spawn(SimulcastConfig::new(640, 360, 30, TOTAL_KBPS)).expect("starts");
    let mut pattern = TestPattern::new(640, 360, 30);
    let mut wall = Samples::new("VP8 simulcast encode, 3 layers, wall time");
    let cpu_start = process_cpu();
    let run_start = Instant::now();
    for index in 0..frames {
        let frame = pattern.next_frame().expect("the pattern never fails");
        let start = Instant::now();
        encoder
            .encode(frame, index == 0)
            .expect("the frame is queued");
        for _ in 0..3 {
            let encoded = encoder.recv_timeout(TIMEOUT).expect("the frame is encoded");
            wall.bytes += encoded.data.len();
        }
        wall.times.push(start.elapsed());
    }
    let elapsed = run_start.elapsed();
    wall.print();
    if let (Some(before), Some(after)) = (cpu_start, process_cpu()) {
        let per_frame = (after - before) / frames;
        println!(
            "{:<44} {:>8.3} ms CPU per frame ({:.0}% of one core at 30 fps; {:.1} s wall)",
            "VP8 simulcast encode, 3 layers, CPU",
            ms(per_frame),
            ms(per_frame) * 30.0 / 10.0,
            elapsed.as_secs_f64()
        );
    }
}

fn bench_opus(frames: u32) {
    let mut tone = Tone::new(440.0);
    let mut encoder = OpusEncoder::new(1, 32_000).expect("the encoder starts");
    let mut decoder = OpusDecoder::new(1).expect("the decoder starts");
    let mut encode = Samples::new("Opus encode 20 ms mono 32 kbit/s");
    let mut decode = Samples::new("Opus decode 20 ms mono");
    let mut conceal = Samples::new("Opus concealment of a lost 20 ms frame");
    for index in 0..frames {
        let frame = tone.generate();
        let start = Instant::now();
        let packet = encoder
            .encode(&frame)
            .expect("encodes")
            .expect("a tone is sent");
        encode.times.push(start.elapsed());
        encode.bytes += packet.len();

        let start = Instant::now();
        if index % 10 == 9 {
            decoder.decode(None, false).expect("conceals");
            conceal.times.push(start.elapsed());
        } else {
            decoder.decode(Some(&packet[..]), false).expect("decodes");
            decode.times.push(start.elapsed());
        }
    }
    encode.print();
    decode.print();
    conceal.print();
}

/// Returns the CPU time of this process (user and system, all threads) from
/// /proc/self/stat, whose unit is the clock tick: 100 Hz on Linux x86-64.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}
