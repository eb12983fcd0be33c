//! Roomler's client media engine, below WebRTC: capture, synthetic sources,
//! codecs, the playback chain and microphone processing. The call engine in
//! `roomler-client` packetizes the encoded media into RTP and back.
//!
//! No async runtime runs inside this crate. Everything that blocks (a device
//! waiting for its next frame, a VP8 encode) runs on threads of its own or
//! behind blocking calls the caller puts on such threads.
//!
//! Layout:
//! - [`frame`]: `VideoFrame` (I420) and `AudioFrame` (20 ms of 48 kHz PCM).
//! - [`source`]: the `VideoSource` and `AudioSource` traits and `DeviceInfo`.
//! - [`synthetic`]: `TestPattern` with a machine-readable frame counter, `Tone`,
//!   and their readers `read_frame_counter` and `detect_tone`.
//! - [`opus`]: `OpusEncoder` (FEC, DTX) and `OpusDecoder` (concealment, FEC).
//! - [`vp8`]: `Vp8Encoder` on its own thread, `SimulcastEncoder` with the
//!   layers "h", "m" and "l", and `Vp8Decoder`.
//! - [`allocation`]: the split of a total bitrate over the simulcast layers,
//!   which stops the top layers when the total is too low for them.
//! - [`jitter`]: `JitterBuffer`, one per remote audio stream.
//! - [`remote_audio`]: `RemoteAudio`, the jitter buffer and Opus decoder of one
//!   remote stream.
//! - [`mixer`]: `Mixer`, which sums the remote streams.
//! - [`level`]: `AudioLevel` in dBov and `SpeakerDetector`.
//! - [`playback`]: the `AudioSink` trait and `NullSink` for headless runs.
//! - [`audio_device`]: microphones and speakers through cpal, and their lists.
//! - [`camera`]: cameras through nokhwa (Video4Linux), and their list.
//! - [`processing`]: `AudioProcessor`, echo cancellation, noise suppression and
//!   automatic gain on the microphone.
//! - [`preencoded`]: `PreEncodedMedia`, a loop encoded once for load bots.
//! - [`error`]: one error enum per layer.

pub mod allocation;
pub mod audio_device;
pub mod camera;
pub mod error;
pub mod frame;
pub mod jitter;
pub mod level;
pub mod mixer;
pub mod opus;
pub mod playback;
pub mod preencoded;
pub mod processing;
pub mod remote_audio;
pub mod source;
pub mod synthetic;
pub mod vp8;

pub use crate::opus::{OpusDecoder, OpusEncoder};
pub use allocation::{LayerAllocation, allocate, min_bitrate_kbps};
pub use audio_device::{CpalMicrophone, CpalSpeaker, list_microphones, list_speakers};
pub use camera::{CameraSource, list_cameras};
pub use error::{CodecError, DeviceKind, MixError, ProcessorError, SinkError, SourceError};
pub use frame::{
    AUDIO_FRAME_DURATION, AudioFormat, AudioFrame, SAMPLE_RATE, SAMPLES_PER_FRAME, VideoFormat,
    VideoFrame,
};
pub use jitter::{BufferedPacket, JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome};
pub use level::{AudioLevel, SpeakerDetector};
pub use mixer::Mixer;
pub use playback::{AudioSink, NullSink};
pub use preencoded::{PreEncodedConfig, PreEncodedMedia, PreEncodedPlayer};
pub use processing::{AudioProcessor, ProcessorConfig, RenderProcessor};
pub use remote_audio::RemoteAudio;
pub use source::{AudioSource, DeviceInfo, VideoSource};
pub use synthetic::{TestPattern, Tone, detect_tone, read_frame_counter};
pub use vp8::{
    EncodedVideo, EncoderOutput, Layer, SimulcastConfig, SimulcastEncoder, Vp8Config, Vp8Decoder,
    Vp8Encoder,
};
