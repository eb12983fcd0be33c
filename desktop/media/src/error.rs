//! Error types, one per layer: sources, codecs, playback, processing.

/// Why a capture source returned no frame. The UI shows `NoDevice` and
/// `DeviceLost` as states ("no camera", "microphone disconnected") rather than
/// as failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// No device exists, or none matches the requested name.
    #[error("no {kind} found{}", requested_suffix(.requested))]
    NoDevice {
        kind: DeviceKind,
        requested: Option<String>,
    },
    /// The device was open and stopped delivering, for example because it was
    /// unplugged.
    #[error("{kind} {name:?} was lost: {reason}")]
    DeviceLost {
        kind: DeviceKind,
        name: String,
        reason: String,
    },
    /// The device exists but offers no format the engine can use.
    #[error("{kind} {name:?} has no usable format: {reason}")]
    Unsupported {
        kind: DeviceKind,
        name: String,
        reason: String,
    },
    /// The source was stopped and yields no more frames.
    #[error("the source has ended")]
    Ended,
    /// Any other failure of the capture backend.
    #[error("{kind} backend failed: {reason}")]
    Backend { kind: DeviceKind, reason: String },
}

fn requested_suffix(requested: &Option<String>) -> String {
    match requested {
        Some(name) => format!(" named {name:?}; pick one from the device list"),
        None => String::new(),
    }
}

/// The kind of device an error or list entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Camera,
    Microphone,
    Speaker,
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceKind::Camera => "camera",
            DeviceKind::Microphone => "microphone",
            DeviceKind::Speaker => "speaker",
        })
    }
}

/// Failure of an encoder or decoder.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("invalid codec setting: {0}")]
    InvalidConfig(String),
    #[error("opus failed: {0}")]
    Opus(#[from] ::opus::Error),
    #[error("libvpx: {0}")]
    Vpx(#[from] roomler_vpx::VpxError),
    #[error(
        "frame of {got_width}x{got_height} does not match the encoder's \
         {width}x{height}; create an encoder for the new size"
    )]
    FrameSize {
        width: u32,
        height: u32,
        got_width: u32,
        got_height: u32,
    },
    #[error("audio frame has {got} samples, expected {expected} (20 ms at 48 kHz)")]
    AudioFrameLength { expected: usize, got: usize },
    /// The encoder thread still works on earlier frames, so this one was dropped.
    #[error("the encoder queue is full, so the frame was dropped")]
    QueueFull,
    /// No encoded frame arrived within the wait.
    #[error("no encoded frame within {0:?}")]
    TimedOut(std::time::Duration),
    /// The encoder thread has exited, after an error or because it was stopped.
    #[error("the encoder thread has stopped")]
    Stopped,
}

/// Failure of an audio output.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Device(#[from] SourceError),
    #[error("audio frame has {got} channels, the sink plays {expected}")]
    Channels { expected: u16, got: u16 },
}

/// Failure of the microphone processor (echo cancellation, noise suppression, gain).
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("audio processing failed: {0}")]
    Backend(String),
    #[error("audio frame has {got} channels, the processor was created for {expected}")]
    Channels { expected: u16, got: u16 },
    #[error("audio frame has {got} samples, expected {expected} (20 ms at 48 kHz)")]
    FrameLength { expected: usize, got: usize },
}

/// Failure to mix frames of different shapes.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    #[error("audio frame {index} has {got} samples, the mix has {expected}")]
    Length {
        index: usize,
        expected: usize,
        got: usize,
    },
    #[error("audio frame {index} has {got} channels, the mix has {expected}")]
    Channels {
        index: usize,
        expected: u16,
        got: u16,
    },
}
