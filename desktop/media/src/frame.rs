//! Raw audio and video frames as they move between sources, codecs and sinks.

use std::time::Duration;

/// Sample rate of every audio frame in the engine, in Hz. Opus runs at 48 kHz in
/// WebRTC, so capture and playback convert to and from it at the device.
pub const SAMPLE_RATE: u32 = 48_000;

/// Length of one audio frame: 20 ms is the Opus packet duration that WebRTC uses.
pub const AUDIO_FRAME_DURATION: Duration = Duration::from_millis(20);

/// Samples per channel in one 20 ms frame at 48 kHz.
pub const SAMPLES_PER_FRAME: usize = (SAMPLE_RATE as usize) / 50;

/// Size and rate of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFormat {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// Channel count and rate of an audio stream; the rate is always [`SAMPLE_RATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub sample_rate: u32,
    pub channels: u16,
}

/// One picture in I420: the Y plane at full size, then U and V at half width and
/// half height, each stored without padding (stride equals width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    /// Y, U and V planes, one after the other.
    pub data: Vec<u8>,
    /// Capture time relative to the start of the stream.
    pub timestamp: Duration,
}

impl VideoFrame {
    /// Creates a black frame. Width and height must be even, as I420 requires.
    pub fn black(width: u32, height: u32, timestamp: Duration) -> Self {
        let luma = (width * height) as usize;
        let mut data = vec![16u8; luma + luma / 2];
        data[luma..].fill(128);
        Self {
            width,
            height,
            data,
            timestamp,
        }
    }

    /// Returns the buffer length of an I420 frame of this size.
    pub fn i420_len(width: u32, height: u32) -> usize {
        let luma = (width * height) as usize;
        luma + 2 * ((width / 2) * (height / 2)) as usize
    }

    pub fn y_plane(&self) -> &[u8] {
        &self.data[..(self.width * self.height) as usize]
    }

    pub fn u_plane(&self) -> &[u8] {
        let luma = (self.width * self.height) as usize;
        let chroma = ((self.width / 2) * (self.height / 2)) as usize;
        &self.data[luma..luma + chroma]
    }

    pub fn v_plane(&self) -> &[u8] {
        let luma = (self.width * self.height) as usize;
        let chroma = ((self.width / 2) * (self.height / 2)) as usize;
        &self.data[luma + chroma..luma + 2 * chroma]
    }

    /// Returns the frame at half width and half height, each output pixel the mean
    /// of a 2x2 block. Simulcast uses it for the lower layers.
    pub fn downscale_half(&self) -> VideoFrame {
        let width = (self.width / 2) & !1;
        let height = (self.height / 2) & !1;
        let mut data = Vec::with_capacity(Self::i420_len(width, height));
        halve_plane(self.y_plane(), self.width, width, height, &mut data);
        let (cw, ch) = (width / 2, height / 2);
        halve_plane(self.u_plane(), self.width / 2, cw, ch, &mut data);
        halve_plane(self.v_plane(), self.width / 2, cw, ch, &mut data);
        VideoFrame {
            width,
            height,
            data,
            timestamp: self.timestamp,
        }
    }
}

impl VideoFrame {
    /// Appends the picture as RGBA, four bytes per pixel, row by row, converting
    /// from limited-range BT.601 as cameras and VP8 deliver it. This is what a
    /// canvas's `ImageData` takes.
    pub fn write_rgba(&self, out: &mut Vec<u8>) {
        let width = self.width as usize;
        let (y_plane, u_plane, v_plane) = (self.y_plane(), self.u_plane(), self.v_plane());
        out.reserve(width * self.height as usize * 4);
        for row in 0..self.height as usize {
            let luma = &y_plane[row * width..(row + 1) * width];
            let chroma_row = (row / 2) * (width / 2);
            for (column, &y) in luma.iter().enumerate() {
                let chroma = chroma_row + column / 2;
                let c = (i32::from(y) - 16) * 298;
                let d = i32::from(u_plane[chroma]) - 128;
                let e = i32::from(v_plane[chroma]) - 128;
                let clamp = |value: i32| ((value + 128) >> 8).clamp(0, 255) as u8;
                out.extend_from_slice(&[
                    clamp(c + 409 * e),
                    clamp(c - 100 * d - 208 * e),
                    clamp(c + 516 * d),
                    255,
                ]);
            }
        }
    }
}

/// Appends a plane of `width` x `height` made from 2x2 means of `source`, whose
/// rows are `source_stride` bytes long.
fn halve_plane(source: &[u8], source_stride: u32, width: u32, height: u32, out: &mut Vec<u8>) {
    let stride = source_stride as usize;
    for y in 0..height as usize {
        let top = &source[2 * y * stride..];
        let bottom = &source[(2 * y + 1) * stride..];
        for x in 0..width as usize {
            let sum = top[2 * x] as u32
                + top[2 * x + 1] as u32
                + bottom[2 * x] as u32
                + bottom[2 * x + 1] as u32;
            out.push(((sum + 2) / 4) as u8);
        }
    }
}

/// 20 ms of interleaved 16-bit PCM at [`SAMPLE_RATE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    pub sample_rate: u32,
    pub channels: u16,
    /// Interleaved samples, `SAMPLES_PER_FRAME * channels` of them.
    pub samples: Vec<i16>,
    /// Capture time relative to the start of the stream.
    pub timestamp: Duration,
}

impl AudioFrame {
    /// Creates 20 ms of silence.
    pub fn silence(channels: u16, timestamp: Duration) -> Self {
        Self {
            sample_rate: SAMPLE_RATE,
            channels,
            samples: vec![0; SAMPLES_PER_FRAME * channels as usize],
            timestamp,
        }
    }

    /// Returns the number of samples per channel.
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(y: u8, u: u8, v: u8) -> VideoFrame {
        let mut frame = VideoFrame::black(4, 2, Duration::ZERO);
        let luma = 8;
        frame.data[..luma].fill(y);
        frame.data[luma..luma + 2].fill(u);
        frame.data[luma + 2..].fill(v);
        frame
    }

    fn rgba(frame: &VideoFrame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.write_rgba(&mut out);
        out
    }

    #[test]
    fn rgba_has_four_bytes_per_pixel() {
        let out = rgba(&VideoFrame::black(4, 2, Duration::ZERO));
        assert_eq!(out.len(), 4 * 2 * 4);
        assert!(out.chunks(4).all(|pixel| pixel == [0, 0, 0, 255]));
    }

    #[test]
    fn rgba_converts_limited_range_colors() {
        assert!(
            rgba(&filled(235, 128, 128))
                .chunks(4)
                .all(|p| p == [255, 255, 255, 255])
        );
        // BT.601 red, green and blue in limited range, within rounding.
        let close = |pixel: &[u8], expected: [u8; 3]| {
            pixel[..3]
                .iter()
                .zip(expected)
                .all(|(&got, want)| got.abs_diff(want) <= 3)
        };
        assert!(close(&rgba(&filled(81, 90, 240))[..4], [255, 0, 0]));
        assert!(close(&rgba(&filled(145, 54, 34))[..4], [0, 255, 0]));
        assert!(close(&rgba(&filled(41, 240, 110))[..4], [0, 0, 255]));
    }
}
