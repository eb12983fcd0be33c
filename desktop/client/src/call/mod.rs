//! The call engine: joins a room's call over the live WebSocket and runs the two
//! peer connections with the `webrtc` crate.
//!
//! - [`signaling`]: the call frames of the WebSocket, with replies matched to
//!   requests by `request_id`.
//! - [`peer`]: the publishing and the subscribing peer connection.
//!
//! The publishing connection offers one audio and one video track; Janus answers.
//! The subscribing connection takes Janus's offer of every stream the client
//! subscribed to (Janus multistream) and answers it. ICE is half-trickle: each side
//! gathers all its candidates before it sends its description, then trickles
//! `completed`, which is enough against Janus.
//!
//! TODO: the media is a probe, not audio and video. Each video sample is a VP8
//! keyframe header followed by a frame counter, each audio sample a short Opus-sized
//! payload, so the tests can check that Janus relays every participant's streams
//! and that the counter advances. Real capture, Opus and VP8 come from
//! `roomler-media`, which this crate does not use yet.

pub mod peer;
pub mod signaling;

pub use peer::{CallOptions, CallSession, RemoteStats};
pub use signaling::{CallSignaling, SignalingError};
