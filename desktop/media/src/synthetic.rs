//! Synthetic sources for tests, load bots and machines without devices: a moving
//! test pattern that carries a frame counter, and a sine tone, with readers that
//! recover both from decoded media.

use std::f64::consts::PI;
use std::time::{Duration, Instant};

use crate::error::{DeviceKind, SourceError};
use crate::frame::{
    AudioFormat, AudioFrame, SAMPLE_RATE, SAMPLES_PER_FRAME, VideoFormat, VideoFrame,
};
use crate::source::{AudioSource, VideoSource};

/// Columns of the counter grid. Each cell is 1/8 of the width, so in the 1/4
/// simulcast layer of 640x360 a cell still covers 20x11 pixels.
const CODE_COLUMNS: u32 = 8;
/// Rows of the counter grid: four of data (32 bits) and one check byte.
const CODE_ROWS: u32 = 5;
/// The grid's rows are each 1/8 of the height, so the grid fills the top 5/8 and
/// the moving part of the pattern the rest.
const ROW_DIVISOR: u32 = 8;
/// Mixed into the check byte so that a uniform black or white frame is no valid code.
const CHECK_SALT: u8 = 0xA5;
const LUMA_ONE: u8 = 235;
const LUMA_ZERO: u8 = 16;

/// A moving test pattern. The top contains the frame counter as a grid of black
/// and white blocks, large enough to survive VP8 at low bitrate. The bottom has a
/// bar that sweeps across a colored gradient, so the encoder has motion to code.
pub struct TestPattern {
    format: VideoFormat,
    counter: u32,
    /// When pacing started, and the counter then.
    pacing: Option<(Instant, u32)>,
    /// Frames left before the pattern reports its camera lost; `None` delivers
    /// for ever.
    frames_until_lost: Option<u32>,
}

impl TestPattern {
    /// Creates a pattern of `width` x `height` at `fps` frames per second. Width
    /// and height are rounded down to even numbers, as I420 requires. Frames are
    /// produced as fast as they are requested; see [`TestPattern::realtime`].
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self {
            format: VideoFormat {
                width: (width & !1).max(16),
                height: (height & !1).max(16),
                fps: fps.max(1),
            },
            counter: 0,
            pacing: None,
            frames_until_lost: None,
        }
    }

    /// Makes `next_frame` fail with [`SourceError::DeviceLost`] after `frames`
    /// frames, as an unplugged camera does, so that tests can check how a call
    /// handles a lost camera.
    pub fn lost_after(mut self, frames: u32) -> Self {
        self.frames_until_lost = Some(frames);
        self
    }

    /// Makes `next_frame` sleep until each frame is due, like a camera.
    pub fn realtime(mut self) -> Self {
        self.pacing = Some((Instant::now(), self.counter));
        self
    }

    /// Starts counting at `counter` instead of 0.
    pub fn starting_at(mut self, counter: u32) -> Self {
        self.counter = counter;
        if let Some((_, first)) = &mut self.pacing {
            *first = counter;
        }
        self
    }

    /// Draws the frame that carries `counter`, without advancing the source.
    pub fn draw(&self, counter: u32) -> VideoFrame {
        let VideoFormat { width, height, fps } = self.format;
        let timestamp = Duration::from_secs_f64(f64::from(counter) / f64::from(fps));
        let mut frame = VideoFrame::black(width, height, timestamp);
        draw_motion(&mut frame, counter);
        draw_counter(&mut frame, counter);
        frame
    }
}

impl VideoSource for TestPattern {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        take_frame(
            &mut self.frames_until_lost,
            DeviceKind::Camera,
            "test pattern",
        )?;
        let frame = self.draw(self.counter);
        if let Some((start, first)) = self.pacing {
            let frames = self.counter.wrapping_sub(first);
            let due = start + Duration::from_secs(1) * frames / self.format.fps;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        self.counter = self.counter.wrapping_add(1);
        Ok(frame)
    }

    fn format(&self) -> VideoFormat {
        self.format
    }
}

/// Counts one frame off `frames_until_lost`, or returns the error of a lost
/// device of `kind` once none is left.
fn take_frame(
    frames_until_lost: &mut Option<u32>,
    kind: DeviceKind,
    name: &str,
) -> Result<(), SourceError> {
    match frames_until_lost {
        None => Ok(()),
        Some(0) => Err(SourceError::DeviceLost {
            kind,
            name: name.to_owned(),
            reason: "the synthetic source stopped delivering, as an unplugged device does".into(),
        }),
        Some(left) => {
            *left -= 1;
            Ok(())
        }
    }
}

/// Cell bounds of the counter grid: x range, y range.
fn cell_bounds(width: u32, height: u32, column: u32, row: u32) -> (u32, u32, u32, u32) {
    let x0 = column * width / CODE_COLUMNS;
    let x1 = (column + 1) * width / CODE_COLUMNS;
    let y0 = row * height / ROW_DIVISOR;
    let y1 = (row + 1) * height / ROW_DIVISOR;
    (x0, x1, y0, y1)
}

fn code_bytes(counter: u32) -> [u8; CODE_ROWS as usize] {
    let [a, b, c, d] = counter.to_be_bytes();
    [a, b, c, d, a ^ b ^ c ^ d ^ CHECK_SALT]
}

fn draw_counter(frame: &mut VideoFrame, counter: u32) {
    let (width, height) = (frame.width, frame.height);
    for (row, byte) in code_bytes(counter).into_iter().enumerate() {
        for column in 0..CODE_COLUMNS {
            let bit = (byte >> (7 - column)) & 1;
            let luma = if bit == 1 { LUMA_ONE } else { LUMA_ZERO };
            let (x0, x1, y0, y1) = cell_bounds(width, height, column, row as u32);
            for y in y0..y1 {
                let start = (y * width + x0) as usize;
                let end = (y * width + x1) as usize;
                frame.data[start..end].fill(luma);
            }
        }
    }
}

fn draw_motion(frame: &mut VideoFrame, counter: u32) {
    let (width, height) = (frame.width, frame.height);
    let top = CODE_ROWS * height / ROW_DIVISOR;
    let bar_width = (width / 16).max(2);
    let step = u64::from((width / 64).max(1));
    let bar_x = (u64::from(counter) * step % u64::from(width)) as u32;

    for y in top..height {
        for x in 0..width {
            let in_bar = (x + width - bar_x) % width < bar_width;
            let luma = if in_bar {
                235
            } else {
                (60 + 120 * x / width) as u8
            };
            frame.data[(y * width + x) as usize] = luma;
        }
    }

    // Chroma: hue bands that scroll the other way, below the counter grid only.
    let luma_len = (width * height) as usize;
    let (chroma_width, chroma_height) = (width / 2, height / 2);
    let chroma_len = (chroma_width * chroma_height) as usize;
    let shift = (u64::from(counter) * 2 % u64::from(chroma_width)) as u32;
    for y in top / 2..chroma_height {
        for x in 0..chroma_width {
            let phase = (x + chroma_width - shift) % chroma_width;
            let index = (y * chroma_width + x) as usize;
            frame.data[luma_len + index] = (64 + 128 * phase / chroma_width) as u8;
            frame.data[luma_len + chroma_len + index] = (192 - 128 * phase / chroma_width) as u8;
        }
    }
}

/// Reads the frame counter that [`TestPattern`] drew, from an original or a
/// decoded frame of any size. Returns `None` when the frame carries no valid
/// code: its check byte does not match.
pub fn read_frame_counter(frame: &VideoFrame) -> Option<u32> {
    if frame.width < CODE_COLUMNS * 2 || frame.height < ROW_DIVISOR * 2 {
        return None;
    }
    let luma = frame.y_plane();
    let mut bytes = [0u8; CODE_ROWS as usize];
    for (row, byte) in bytes.iter_mut().enumerate() {
        for column in 0..CODE_COLUMNS {
            let (x0, x1, y0, y1) = cell_bounds(frame.width, frame.height, column, row as u32);
            // Sample the middle half of the cell, away from edges the codec blurs.
            let (dx, dy) = ((x1 - x0) / 4, (y1 - y0) / 4);
            let mean = mean_luma(luma, frame.width, x0 + dx, x1 - dx, y0 + dy, y1 - dy);
            if mean >= 128 {
                *byte |= 1 << (7 - column);
            }
        }
    }
    let counter = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    (code_bytes(counter)[4] == bytes[4]).then_some(counter)
}

fn mean_luma(luma: &[u8], stride: u32, x0: u32, x1: u32, y0: u32, y1: u32) -> u32 {
    let mut sum = 0u64;
    let mut count = 0u64;
    for y in y0..y1.max(y0 + 1) {
        for x in x0..x1.max(x0 + 1) {
            sum += u64::from(luma[(y * stride + x) as usize]);
            count += 1;
        }
    }
    (sum / count) as u32
}

/// A sine tone in 20 ms frames at 48 kHz.
pub struct Tone {
    frequency_hz: f64,
    amplitude: f64,
    channels: u16,
    /// Samples per channel produced so far; the phase derives from it.
    position: u64,
    pacing: Option<Instant>,
    /// Frames left before the tone reports its microphone lost; `None` delivers
    /// for ever.
    frames_until_lost: Option<u32>,
}

impl Tone {
    /// Default peak amplitude, 0.3 of full scale: about -13.5 dBov RMS, loud
    /// enough for speech-like levels and far from clipping in a mix of several.
    pub const DEFAULT_AMPLITUDE: f64 = 0.3;

    /// Creates a mono tone at `frequency_hz`.
    pub fn new(frequency_hz: f32) -> Self {
        Self {
            frequency_hz: f64::from(frequency_hz),
            amplitude: Self::DEFAULT_AMPLITUDE,
            channels: 1,
            position: 0,
            pacing: None,
            frames_until_lost: None,
        }
    }

    /// Makes `next_frame` fail with [`SourceError::DeviceLost`] after `frames`
    /// frames of 20 ms, as an unplugged microphone does, so that tests can check
    /// how a call handles a lost microphone.
    pub fn lost_after(mut self, frames: u32) -> Self {
        self.frames_until_lost = Some(frames);
        self
    }

    /// Sets the peak amplitude as a fraction of full scale (0.0 to 1.0); 0.0 is
    /// digital silence, as DTX tests need.
    pub fn with_amplitude(mut self, amplitude: f64) -> Self {
        self.amplitude = amplitude.clamp(0.0, 1.0);
        self
    }

    /// Repeats the tone on `channels` interleaved channels.
    pub fn with_channels(mut self, channels: u16) -> Self {
        self.channels = channels.max(1);
        self
    }

    /// Makes `next_frame` sleep until each frame is due, like a microphone.
    pub fn realtime(mut self) -> Self {
        self.pacing = Some(Instant::now());
        self
    }

    /// Generates the next frame without pacing.
    pub fn generate(&mut self) -> AudioFrame {
        let timestamp = Duration::from_secs_f64(self.position as f64 / f64::from(SAMPLE_RATE));
        let channels = self.channels as usize;
        let mut samples = Vec::with_capacity(SAMPLES_PER_FRAME * channels);
        let step = 2.0 * PI * self.frequency_hz / f64::from(SAMPLE_RATE);
        for i in 0..SAMPLES_PER_FRAME as u64 {
            let phase = step * (self.position + i) as f64;
            let value = (phase.sin() * self.amplitude * f64::from(i16::MAX)).round() as i16;
            samples.extend(std::iter::repeat_n(value, channels));
        }
        self.position += SAMPLES_PER_FRAME as u64;
        AudioFrame {
            sample_rate: SAMPLE_RATE,
            channels: self.channels,
            samples,
            timestamp,
        }
    }
}

impl AudioSource for Tone {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        take_frame(
            &mut self.frames_until_lost,
            DeviceKind::Microphone,
            "test tone",
        )?;
        let frame = self.generate();
        if let Some(start) = self.pacing {
            let due = start + frame.timestamp;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        Ok(frame)
    }

    fn format(&self) -> AudioFormat {
        AudioFormat {
            sample_rate: SAMPLE_RATE,
            channels: self.channels,
        }
    }
}

/// Lowest and highest frequency that [`detect_tone`] searches, in Hz.
const TONE_SEARCH_MIN_HZ: f64 = 50.0;
const TONE_SEARCH_MAX_HZ: f64 = 12_000.0;
/// Coarse search step, in Hz; the peak is then refined to 0.25 Hz.
const TONE_COARSE_STEP_HZ: f64 = 10.0;
/// Share of the signal's energy that must lie at the peak for it to count as a
/// tone: about 1.0 for a clean sine, near 0 for noise or speech.
const TONE_MIN_PURITY: f64 = 0.3;
/// Signals quieter than this RMS, in 16-bit units (about -60 dBov), hold no tone.
const TONE_MIN_RMS: f64 = 32.0;
/// At most this many samples are analysed, the last ones of the input (0.25 s).
const TONE_MAX_SAMPLES: usize = 12_000;

/// Returns the dominant frequency of mono `samples`, in Hz, or `None` when the
/// signal is silent or not tonal. For interleaved input pass one channel.
pub fn detect_tone(samples: &[i16], sample_rate: u32) -> Option<f32> {
    let samples = &samples[samples.len().saturating_sub(TONE_MAX_SAMPLES)..];
    if samples.len() < 256 {
        return None;
    }
    let rate = f64::from(sample_rate);
    let n = samples.len();
    let window: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos())
        .collect();
    let windowed: Vec<f64> = samples
        .iter()
        .zip(&window)
        .map(|(&s, &w)| f64::from(s) * w)
        .collect();

    let energy: f64 = windowed.iter().map(|x| x * x).sum();
    let raw_rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / n as f64).sqrt();
    if raw_rms < TONE_MIN_RMS {
        return None;
    }

    let max_hz = TONE_SEARCH_MAX_HZ.min(rate / 2.0 - TONE_COARSE_STEP_HZ);
    let mut best = (0.0, 0.0);
    let mut frequency = TONE_SEARCH_MIN_HZ;
    while frequency <= max_hz {
        let power = goertzel_power(&windowed, frequency, rate);
        if power > best.1 {
            best = (frequency, power);
        }
        frequency += TONE_COARSE_STEP_HZ;
    }

    let mut fine = best;
    let mut frequency = best.0 - TONE_COARSE_STEP_HZ;
    while frequency <= best.0 + TONE_COARSE_STEP_HZ {
        let power = goertzel_power(&windowed, frequency, rate);
        if power > fine.1 {
            fine = (frequency, power);
        }
        frequency += 0.25;
    }

    // A pure sine of amplitude A gives |X|^2 = (A sum(w) / 2)^2 and an energy of
    // A^2 sum(w^2) / 2, so this ratio is 1 for a clean tone.
    let sum_w: f64 = window.iter().sum();
    let sum_w2: f64 = window.iter().map(|w| w * w).sum();
    let purity = 2.0 * fine.1 * sum_w2 / (sum_w * sum_w * energy);
    (purity >= TONE_MIN_PURITY).then_some(fine.0 as f32)
}

/// Returns |X(f)|^2 of the DFT of `samples` at `frequency`, by the Goertzel
/// recurrence.
fn goertzel_power(samples: &[f64], frequency: f64, rate: f64) -> f64 {
    let omega = 2.0 * PI * frequency / rate;
    let coefficient = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_pattern_paces_from_its_first_counter() {
        // A counter far from 0, as a clock pattern starts: pacing counts from it,
        // so the first frames are due at once rather than in years.
        let first = 4_000_000_000;
        let mut pattern = TestPattern::new(64, 48, 30).starting_at(first).realtime();
        let started = Instant::now();
        for expected in first..first + 3 {
            let frame = pattern.next_frame().unwrap();
            assert_eq!(read_frame_counter(&frame), Some(expected));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn lost_pattern_fails_after_its_frames() {
        let mut pattern = TestPattern::new(64, 48, 30).lost_after(2);
        assert!(pattern.next_frame().is_ok());
        assert!(pattern.next_frame().is_ok());
        for _ in 0..2 {
            let error = pattern.next_frame().unwrap_err();
            assert!(
                matches!(
                    error,
                    SourceError::DeviceLost {
                        kind: DeviceKind::Camera,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
    }

    #[test]
    fn lost_tone_fails_after_its_frames() {
        let mut tone = Tone::new(440.0).lost_after(1);
        assert!(tone.next_frame().is_ok());
        let error = tone.next_frame().unwrap_err();
        assert!(
            matches!(
                error,
                SourceError::DeviceLost {
                    kind: DeviceKind::Microphone,
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
