//! The capture interfaces that real devices and synthetic sources share.

use crate::error::{DeviceKind, SourceError};
use crate::frame::{AudioFormat, AudioFrame, VideoFormat, VideoFrame};

/// A producer of video frames: a camera or a test pattern. `next_frame` blocks
/// until the next frame is due, so run it on a thread of its own, never on an
/// async runtime's worker.
pub trait VideoSource: Send {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError>;
    fn format(&self) -> VideoFormat;
}

/// A producer of 20 ms audio frames at 48 kHz: a microphone or a tone. Like
/// [`VideoSource`], `next_frame` blocks.
pub trait AudioSource: Send {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError>;
    fn format(&self) -> AudioFormat;
}

impl<S: VideoSource + ?Sized> VideoSource for Box<S> {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        (**self).next_frame()
    }

    fn format(&self) -> VideoFormat {
        (**self).format()
    }
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        (**self).next_frame()
    }

    fn format(&self) -> AudioFormat {
        (**self).format()
    }
}

/// One entry of a device list, as the device pickers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub kind: DeviceKind,
    /// The name to pass back when opening the device.
    pub name: String,
    /// Longer text from the backend (driver, bus), possibly empty.
    pub description: String,
    /// Whether the system marks it as its default device.
    pub is_default: bool,
}
