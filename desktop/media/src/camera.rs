//! Cameras through nokhwa's Video4Linux backend.
//!
//! The nokhwa camera runs on a thread of its own, which converts each captured
//! frame (YUYV, NV12, MJPEG, grey or RGB) to I420 and hands it over a channel.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, CameraInfo, FrameFormat, RequestedFormat,
    RequestedFormatType,
};
use nokhwa::{Buffer, Camera};

use crate::error::{DeviceKind, SourceError};
use crate::frame::{VideoFormat, VideoFrame};
use crate::source::{DeviceInfo, VideoSource};

/// A camera that delivers nothing for this long counts as lost.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(3);

/// Frame formats the converter handles, in order of preference: raw YUV first,
/// because MJPEG costs a JPEG decode per frame.
const ACCEPTED_FORMATS: [FrameFormat; 6] = [
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::MJPEG,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

/// Lists the cameras. An empty list is no error.
pub fn list_cameras() -> Result<Vec<DeviceInfo>, SourceError> {
    Ok(query_cameras()?
        .into_iter()
        .enumerate()
        .map(|(position, info)| DeviceInfo {
            kind: DeviceKind::Camera,
            name: info.human_name(),
            description: info.description().to_owned(),
            is_default: position == 0,
        })
        .collect())
}

fn query_cameras() -> Result<Vec<CameraInfo>, SourceError> {
    nokhwa::query(ApiBackend::Video4Linux).map_err(|err| SourceError::Backend {
        kind: DeviceKind::Camera,
        reason: err.to_string(),
    })
}

/// A camera as a [`VideoSource`].
pub struct CameraSource {
    name: String,
    format: VideoFormat,
    frames: Receiver<Result<VideoFrame, SourceError>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CameraSource {
    /// Opens the camera called `name`, or the first one, asking for the format
    /// closest to `requested_format`. Returns [`SourceError::NoDevice`] when none exists.
    pub fn open(name: Option<&str>, requested_format: VideoFormat) -> Result<Self, SourceError> {
        let cameras = query_cameras()?;
        let info = match name {
            Some(name) => cameras.into_iter().find(|info| info.human_name() == name),
            None => cameras.into_iter().next(),
        }
        .ok_or_else(|| SourceError::NoDevice {
            kind: DeviceKind::Camera,
            requested: name.map(str::to_owned),
        })?;
        let name = info.human_name();
        let index = info.index().clone();

        let (frame_tx, frames) = mpsc::sync_channel(2);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let mut camera = match open_camera(&index, requested_format, &thread_name) {
                    Ok((camera, format)) => {
                        let _ = ready_tx.send(Ok(format));
                        camera
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let started = Instant::now();
                while stop_rx.try_recv() == Err(mpsc::TryRecvError::Empty) {
                    let frame = camera
                        .frame()
                        .map_err(|err| SourceError::DeviceLost {
                            kind: DeviceKind::Camera,
                            name: thread_name.clone(),
                            reason: err.to_string(),
                        })
                        .and_then(|buffer| to_i420(&buffer, started.elapsed(), &thread_name));
                    let failed = frame.is_err();
                    // A reader that falls behind misses frames rather than
                    // blocking capture, and a dropped source ends the loop.
                    match frame_tx.try_send(frame) {
                        Err(mpsc::TrySendError::Disconnected(_)) => break,
                        Ok(()) | Err(mpsc::TrySendError::Full(_)) if failed => break,
                        Ok(()) | Err(mpsc::TrySendError::Full(_)) => {}
                    }
                }
                let _ = camera.stop_stream();
            })
            .map_err(|err| SourceError::Backend {
                kind: DeviceKind::Camera,
                reason: err.to_string(),
            })?;
        let format = ready_rx.recv().map_err(|_| SourceError::Backend {
            kind: DeviceKind::Camera,
            reason: "the camera thread exited while opening".into(),
        })??;
        tracing::info!(device = %name, width = format.width, height = format.height, "camera opened");
        Ok(Self {
            name,
            format,
            frames,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn open_camera(
    index: &CameraIndex,
    requested_format: VideoFormat,
    name: &str,
) -> Result<(Camera, VideoFormat), SourceError> {
    let closest = CameraFormat::new_from(
        requested_format.width,
        requested_format.height,
        FrameFormat::YUYV,
        requested_format.fps,
    );
    let requested =
        RequestedFormat::with_formats(RequestedFormatType::Closest(closest), &ACCEPTED_FORMATS);
    let unsupported = |err: nokhwa::NokhwaError| SourceError::Unsupported {
        kind: DeviceKind::Camera,
        name: name.to_owned(),
        reason: err.to_string(),
    };
    let mut camera = Camera::with_backend(index.clone(), requested, ApiBackend::Video4Linux)
        .map_err(unsupported)?;
    camera.open_stream().map_err(unsupported)?;
    let format = camera.camera_format();
    Ok((
        camera,
        VideoFormat {
            width: format.width() & !1,
            height: format.height() & !1,
            fps: format.frame_rate(),
        },
    ))
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        match self.frames.recv_timeout(CAPTURE_TIMEOUT) {
            Ok(frame) => frame,
            Err(RecvTimeoutError::Timeout) => Err(SourceError::DeviceLost {
                kind: DeviceKind::Camera,
                name: self.name.clone(),
                reason: format!("no frame for {} s", CAPTURE_TIMEOUT.as_secs()),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(SourceError::Ended),
        }
    }

    fn format(&self) -> VideoFormat {
        self.format
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        // The thread exits once its current capture returns, because it never
        // blocks on sending.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Converts one captured buffer to an I420 frame of even size.
fn to_i420(buffer: &Buffer, timestamp: Duration, name: &str) -> Result<VideoFrame, SourceError> {
    let resolution = buffer.resolution();
    let (width, height) = (resolution.width() & !1, resolution.height() & !1);
    let data = buffer.buffer();
    let stride = resolution.width() as usize;
    let invalid = |reason: String| SourceError::Unsupported {
        kind: DeviceKind::Camera,
        name: name.to_owned(),
        reason,
    };
    let mut frame = VideoFrame::black(width, height, timestamp);
    match buffer.source_frame_format() {
        FrameFormat::YUYV => {
            check_len(data, stride * 2 * height as usize, "YUYV").map_err(invalid)?;
            yuyv_to_i420(data, stride, &mut frame);
        }
        FrameFormat::NV12 => {
            let luma = stride * resolution.height() as usize;
            check_len(data, luma + luma / 2, "NV12").map_err(invalid)?;
            nv12_to_i420(data, stride, resolution.height() as usize, &mut frame);
        }
        FrameFormat::GRAY => {
            check_len(data, stride * height as usize, "GRAY").map_err(invalid)?;
            for y in 0..height as usize {
                let row = &data[y * stride..y * stride + width as usize];
                frame.data[y * width as usize..(y + 1) * width as usize].copy_from_slice(row);
            }
        }
        FrameFormat::RAWRGB => {
            check_len(data, stride * 3 * height as usize, "RGB").map_err(invalid)?;
            rgb_to_i420(data, stride * 3, [0, 1, 2], &mut frame);
        }
        FrameFormat::RAWBGR => {
            check_len(data, stride * 3 * height as usize, "BGR").map_err(invalid)?;
            rgb_to_i420(data, stride * 3, [2, 1, 0], &mut frame);
        }
        FrameFormat::MJPEG => {
            let image = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                .map_err(|err| invalid(format!("MJPEG frame failed to decode: {err}")))?
                .into_rgb8();
            let (w, h) = (image.width() & !1, image.height() & !1);
            frame = VideoFrame::black(w, h, timestamp);
            rgb_to_i420(
                image.as_raw(),
                image.width() as usize * 3,
                [0, 1, 2],
                &mut frame,
            );
        }
    }
    Ok(frame)
}

fn check_len(data: &[u8], needed: usize, format: &str) -> Result<(), String> {
    if data.len() < needed {
        return Err(format!(
            "{format} frame of {} bytes, expected at least {needed}",
            data.len()
        ));
    }
    Ok(())
}

/// YUYV (4:2:2 packed, Y0 U Y1 V) to I420, averaging chroma over row pairs.
fn yuyv_to_i420(data: &[u8], width_pixels: usize, frame: &mut VideoFrame) {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let row_bytes = width_pixels * 2;
    let luma_len = width * height;
    let chroma_width = width / 2;
    for y in 0..height {
        let row = &data[y * row_bytes..];
        for x in 0..width {
            frame.data[y * width + x] = row[x * 2];
        }
    }
    for cy in 0..height / 2 {
        let top = &data[2 * cy * row_bytes..];
        let bottom = &data[(2 * cy + 1) * row_bytes..];
        for cx in 0..chroma_width {
            let u = (u16::from(top[cx * 4 + 1]) + u16::from(bottom[cx * 4 + 1])) / 2;
            let v = (u16::from(top[cx * 4 + 3]) + u16::from(bottom[cx * 4 + 3])) / 2;
            frame.data[luma_len + cy * chroma_width + cx] = u as u8;
            frame.data[luma_len + luma_len / 4 + cy * chroma_width + cx] = v as u8;
        }
    }
}

/// NV12 (Y plane, then interleaved U and V) to I420.
fn nv12_to_i420(data: &[u8], stride: usize, rows: usize, frame: &mut VideoFrame) {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let luma_len = width * height;
    for y in 0..height {
        frame.data[y * width..(y + 1) * width]
            .copy_from_slice(&data[y * stride..y * stride + width]);
    }
    let chroma = &data[stride * rows..];
    let chroma_width = width / 2;
    for cy in 0..height / 2 {
        for cx in 0..chroma_width {
            frame.data[luma_len + cy * chroma_width + cx] = chroma[cy * stride + cx * 2];
            frame.data[luma_len + luma_len / 4 + cy * chroma_width + cx] =
                chroma[cy * stride + cx * 2 + 1];
        }
    }
}

/// Packed RGB to I420 with the BT.601 limited-range matrix; `order` gives the
/// byte offsets of R, G and B within a pixel.
fn rgb_to_i420(data: &[u8], row_bytes: usize, order: [usize; 3], frame: &mut VideoFrame) {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let luma_len = width * height;
    let chroma_width = width / 2;
    let pixel = |x: usize, y: usize| {
        let base = y * row_bytes + x * 3;
        (
            i32::from(data[base + order[0]]),
            i32::from(data[base + order[1]]),
            i32::from(data[base + order[2]]),
        )
    };
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = pixel(x, y);
            frame.data[y * width + x] = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        }
    }
    for cy in 0..height / 2 {
        for cx in 0..chroma_width {
            let (r, g, b) = pixel(cx * 2, cy * 2);
            let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
            let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
            frame.data[luma_len + cy * chroma_width + cx] = u.clamp(0, 255) as u8;
            frame.data[luma_len + luma_len / 4 + cy * chroma_width + cx] = v.clamp(0, 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_converts_to_i420() {
        // 4x2 pixels: Y rises along each row, U 50 and V 200 on the top row,
        // U 70 and V 180 on the bottom row.
        let top = [10, 50, 20, 200, 30, 50, 40, 200];
        let bottom = [11, 70, 21, 180, 31, 70, 41, 180];
        let data: Vec<u8> = top.iter().chain(bottom.iter()).copied().collect();
        let mut frame = VideoFrame::black(4, 2, Duration::ZERO);
        yuyv_to_i420(&data, 4, &mut frame);
        assert_eq!(frame.y_plane(), [10, 20, 30, 40, 11, 21, 31, 41]);
        assert_eq!(frame.u_plane(), [60, 60], "U averaged over the row pair");
        assert_eq!(frame.v_plane(), [190, 190], "V averaged over the row pair");
    }

    #[test]
    fn nv12_converts_to_i420() {
        let mut data = vec![100u8; 4 * 2];
        data.extend([50, 200, 60, 210]);
        let mut frame = VideoFrame::black(4, 2, Duration::ZERO);
        nv12_to_i420(&data, 4, 2, &mut frame);
        assert!(frame.y_plane().iter().all(|&y| y == 100));
        assert_eq!(frame.u_plane(), [50, 60]);
        assert_eq!(frame.v_plane(), [200, 210]);
    }

    #[test]
    fn rgb_converts_with_bt601_limited_range() {
        let cases = [
            ([255u8, 255, 255], (235u8, 128u8, 128u8)),
            ([0, 0, 0], (16, 128, 128)),
            ([255, 0, 0], (82, 90, 240)),
        ];
        for (rgb, (y, u, v)) in cases {
            let data: Vec<u8> = rgb.iter().copied().cycle().take(2 * 2 * 3).collect();
            let mut frame = VideoFrame::black(2, 2, Duration::ZERO);
            rgb_to_i420(&data, 2 * 3, [0, 1, 2], &mut frame);
            assert_eq!(frame.y_plane(), [y; 4], "Y of {rgb:?}");
            assert_eq!(frame.u_plane(), [u], "U of {rgb:?}");
            assert_eq!(frame.v_plane(), [v], "V of {rgb:?}");
        }
    }
}
