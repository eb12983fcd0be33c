//! The call engine: joins a room's call over the live WebSocket and runs the two
//! peer connections with the `webrtc` crate.
//!
//! - [`signaling`]: the call frames of the WebSocket, with replies matched to
//!   requests by `request_id`.
//! - [`peer`]: the publishing and the subscribing peer connection.
//! - [`participants`]: the other participants, kept current from the call events.
//! - [`layers`]: the simulcast layer of each remote feed, from its tile size.
//! - [`recovery`]: ICE restarts of a connection that a network drop broke.
//! - [`feedback`]: Janus's keyframe requests and loss reports on the sent video,
//!   which ask the encoder for keyframes and set its bitrate.
//! - [`interop`]: interceptors that adapt the crate's RTP and RTCP to Janus, so
//!   that lost packets are resent in both directions.
//! - [`media`]: the camera, microphone or synthetic sources with their VP8 and
//!   Opus encoders, and the decoding of each remote track, on threads of their
//!   own, with pictures and audio levels handed to a [`MediaOutput`].
//! - [`own_media`]: the microphone and camera state that the others see, with the
//!   devices lost during the call, which mute or turn the camera off.
//! - [`playback`]: the remote audio, mixed every 20 ms and played through a
//!   speaker, with the mix fed to the microphone's echo canceller.
//! - [`report`]: the statistics of a headless participant, as `roomler call`
//!   writes them.
//! - [`turn_tcp`]: TURN over TCP, which the `webrtc` crate lacks, through a local
//!   bridge per TURN server.
//!
//! The publishing connection offers one audio track and one video track in three
//! simulcast layers (RIDs "h", "m" and "l"), and Janus answers. It opens only while
//! the server lets the participant publish: in the audience of a presentation the
//! session opens no camera or microphone and only subscribes, until a host invites
//! it to speak.
//! The subscribing connection takes Janus's offer of every stream the client
//! subscribed to (Janus multistream) and answers it. ICE trickles: each side sends
//! its description at once and its candidates as they are gathered, then
//! `completed`, so that a slow or unreachable TURN server does not hold up the
//! join. An ICE restart sends its candidates in its description instead.

pub mod feedback;
mod interop;
pub mod layers;
pub mod media;
pub mod own_media;
pub mod participants;
pub mod peer;
pub mod playback;
mod recovery;
pub mod report;
pub mod signaling;
pub mod turn_tcp;

pub use feedback::SentStats;
pub use layers::{TileLayout, TileSize};
pub use media::{
    AudioInput, DeviceFailure, FailureReporter, MediaOutput, MediaSetup, Preview, SpeakerChoice,
    Tile, VideoInput, start_preview,
};
pub use own_media::{MediaProblem, MediaState};
pub use participants::CallParticipant;
pub use peer::{CallError, CallOptions, CallSession, RemoteStats};
pub use report::{CallReport, check_tone_hz, default_tone_hz};
pub use roomler_shared::call::{CallFormat, CallRole};
pub use signaling::{CallSignaling, SignalingError};
