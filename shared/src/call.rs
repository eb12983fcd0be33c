//! The call signaling protocol, carried over the live WebSocket (`GET /api/ws`).
//!
//! A client sends a [`CallRequest`] inside a `call` client frame with a `request_id`
//! of its choice; the server answers with a `call_reply` carrying a [`CallReply`], or
//! a `call_error` carrying a [`CallErrorCode`], both with the same `request_id`.
//! The server relays each step to the Janus VideoRoom plugin, so a client never
//! talks to Janus and never sees a Janus secret.
//!
//! A participant has two peer connections: a publishing one (the client offers,
//! Janus answers) and a subscribing one (Janus offers the streams the client asked
//! for, the client answers with `start`). Janus's multistream subscriptions put
//! every subscribed stream on that one subscribing connection.
//!
//! The call's state reaches every member of the room as `call_event` frames
//! ([`CallEvent`]). They describe the present and are not numbered or replayed:
//! after a reconnection a client reads the room list, whose rooms carry a
//! [`CallSummary`], or joins and gets the participant list in [`CallReply::Joined`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A session description, as WebRTC and Janus spell it: `{"type": "offer", "sdp": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jsep {
    #[serde(rename = "type")]
    pub kind: JsepKind,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsepKind {
    Offer,
    Answer,
}

/// One trickled ICE candidate, with the field names of `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
}

/// One of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    Publisher,
    Subscriber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// A stream that a participant publishes, as Janus reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedStream {
    /// The stream's `mid` in the publisher's session description.
    pub mid: String,
    pub kind: MediaKind,
    /// The codec, e.g. `opus` or `vp8`.
    pub codec: Option<String>,
    /// Whether the stream is sent in several simulcast layers.
    pub simulcast: bool,
}

/// A stream to subscribe to or to drop: one stream of a feed, or all of its streams
/// when `mid` is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRef {
    pub feed_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// A stream of the subscribing peer connection: which feed and publisher `mid` the
/// subscriber's own `mid` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedStream {
    /// The `mid` in the subscriber's session description.
    pub mid: String,
    pub feed_id: u64,
    /// The `mid` in the publisher's session description.
    pub feed_mid: String,
    pub kind: MediaKind,
    /// The publisher's user, so a client can label the tile.
    pub user_id: Option<Uuid>,
}

/// A simulcast layer request for one subscribed video stream: 0 is the lowest layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubstreamChoice {
    /// The subscriber's `mid` of the video stream.
    pub mid: String,
    pub substream: u8,
}

/// A participant of a call as the other participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    /// The participant's Janus publisher id, which subscriptions name.
    pub feed_id: u64,
    pub audio_muted: bool,
    pub camera_off: bool,
    /// Empty until the participant publishes.
    pub streams: Vec<PublishedStream>,
}

/// One ICE server for `RTCConfiguration.iceServers`, with credentials for TURN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs, e.g. `turn:turn.example.com:3478?transport=tcp`.
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// When time-limited credentials expire.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

/// A client's request in the call of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CallRequest {
    /// Joins the room's call, starting it when nobody is in it yet.
    Join,
    /// Offers the publishing peer connection; the reply carries Janus's answer.
    /// With `restart`, the offer restarts ICE on an existing connection.
    Publish {
        jsep: Jsep,
        #[serde(default)]
        restart: bool,
    },
    /// Adds and removes streams of the subscribing peer connection. The reply carries
    /// Janus's new offer, which the client answers with `start`.
    Subscribe {
        #[serde(default)]
        add: Vec<StreamRef>,
        #[serde(default)]
        remove: Vec<StreamRef>,
    },
    /// Answers the subscribing connection's offer.
    Start { jsep: Jsep },
    /// Asks Janus for a fresh subscriber offer with new ICE credentials, after a
    /// network change; the client answers it with `start`.
    RestartSubscriber,
    /// Changes what the participant sends or receives. Absent fields stay as they are.
    Configure {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audio_muted: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        camera_off: Option<bool>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        substreams: Vec<SubstreamChoice>,
    },
    /// Sends one local ICE candidate, or `None` when gathering is complete.
    Trickle {
        target: PeerRole,
        candidate: Option<IceCandidate>,
    },
    /// Leaves the call; the call ends when its last participant leaves.
    Leave,
}

impl CallRequest {
    /// Returns the wire name of the action, for logs and error messages.
    pub fn action(&self) -> &'static str {
        match self {
            CallRequest::Join => "join",
            CallRequest::Publish { .. } => "publish",
            CallRequest::Subscribe { .. } => "subscribe",
            CallRequest::Start { .. } => "start",
            CallRequest::RestartSubscriber => "restart_subscriber",
            CallRequest::Configure { .. } => "configure",
            CallRequest::Trickle { .. } => "trickle",
            CallRequest::Leave => "leave",
        }
    }
}

/// The server's answer to a [`CallRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CallReply {
    Joined {
        call_id: Uuid,
        /// The caller's own publisher id.
        feed_id: u64,
        /// The other participants.
        participants: Vec<Participant>,
        ice_servers: Vec<IceServer>,
    },
    Published {
        jsep: Jsep,
        streams: Vec<PublishedStream>,
    },
    Subscribed {
        /// Janus's offer for the subscribing connection; absent when nothing changed.
        jsep: Option<Jsep>,
        /// Every stream the subscribing connection now carries.
        streams: Vec<SubscribedStream>,
    },
    Started,
    Configured,
    Trickled,
    Left,
}

/// The reason a [`CallRequest`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallErrorCode {
    /// The room does not exist or the caller may not see it.
    RoomNotFound,
    /// The caller is not a member of the room.
    NotAMember,
    /// The caller's role does not allow the action.
    Forbidden,
    /// The action needs the caller to have joined the call first.
    NotInCall,
    /// The request is malformed or does not fit the call's state.
    InvalidRequest,
    /// The server has no media server configured or reachable.
    CallsUnavailable,
    /// Janus rejected the step or did not answer in time.
    MediaServerError,
}

impl CallErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            CallErrorCode::RoomNotFound => "room_not_found",
            CallErrorCode::NotAMember => "not_a_member",
            CallErrorCode::Forbidden => "forbidden",
            CallErrorCode::NotInCall => "not_in_call",
            CallErrorCode::InvalidRequest => "invalid_request",
            CallErrorCode::CallsUnavailable => "calls_unavailable",
            CallErrorCode::MediaServerError => "media_server_error",
        }
    }
}

/// Something that happened in a room's call, sent to every member of the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    Started {
        call_id: Uuid,
    },
    Ended {
        call_id: Uuid,
    },
    ParticipantJoined {
        participant: Participant,
    },
    ParticipantLeft {
        user_id: Uuid,
        feed_id: u64,
    },
    /// The participant's streams changed, so others can subscribe to them.
    Published {
        user_id: Uuid,
        feed_id: u64,
        streams: Vec<PublishedStream>,
    },
    Muted {
        user_id: Uuid,
    },
    Unmuted {
        user_id: Uuid,
    },
    CameraOn {
        user_id: Uuid,
    },
    CameraOff {
        user_id: Uuid,
    },
    /// Janus's audio level detection saw the participant start or stop speaking.
    Speaking {
        user_id: Uuid,
        speaking: bool,
    },
}

/// Something about the caller's own peer connections, sent to that connection only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum CallSignal {
    /// Janus renegotiates the subscribing connection (a feed left or changed its
    /// streams); answer with `start`.
    SubscriberOffer {
        jsep: Jsep,
        streams: Vec<SubscribedStream>,
    },
    /// Janus reports the peer connection as up (ICE and DTLS done).
    WebrtcUp { target: PeerRole },
    /// Janus closed the peer connection, e.g. after an ICE failure.
    Hangup { target: PeerRole, reason: String },
    /// Janus saw loss on the connection: `uplink` is Janus's receiving side.
    Slowlink {
        target: PeerRole,
        uplink: bool,
        lost: u64,
    },
    /// The server ended the caller's part in the call, e.g. because the caller left
    /// the room or the media server went away.
    Removed { reason: String },
}

/// A room's ongoing call, as the room list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CallSummary {
    pub call_id: Uuid,
    pub participant_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uses_action_tag() {
        let request: CallRequest = serde_json::from_str(
            r#"{"action":"subscribe","add":[{"feed_id":7}],"remove":[{"feed_id":8,"mid":"1"}]}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            CallRequest::Subscribe {
                add: vec![StreamRef {
                    feed_id: 7,
                    mid: None
                }],
                remove: vec![StreamRef {
                    feed_id: 8,
                    mid: Some("1".into())
                }],
            }
        );
        assert_eq!(request.action(), "subscribe");
    }

    #[test]
    fn candidate_uses_webrtc_field_names() {
        let candidate = IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.3 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        };
        let json = serde_json::to_value(&candidate).unwrap();
        assert_eq!(json["sdpMid"], "0");
        assert_eq!(json["sdpMLineIndex"], 0);
    }

    #[test]
    fn trickle_completed_has_null_candidate() {
        let request: CallRequest =
            serde_json::from_str(r#"{"action":"trickle","target":"publisher","candidate":null}"#)
                .unwrap();
        assert_eq!(
            request,
            CallRequest::Trickle {
                target: PeerRole::Publisher,
                candidate: None
            }
        );
    }

    #[test]
    fn jsep_round_trips() {
        let jsep: Jsep = serde_json::from_str(r#"{"type":"offer","sdp":"v=0\r\n"}"#).unwrap();
        assert_eq!(jsep.kind, JsepKind::Offer);
        assert_eq!(
            serde_json::to_string(&jsep).unwrap(),
            r#"{"type":"offer","sdp":"v=0\r\n"}"#
        );
    }

    #[test]
    fn event_uses_event_tag() {
        let user_id = Uuid::nil();
        let json = serde_json::to_value(CallEvent::Speaking {
            user_id,
            speaking: true,
        })
        .unwrap();
        assert_eq!(json["event"], "speaking");
        assert_eq!(json["speaking"], true);
    }
}
