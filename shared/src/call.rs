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
//!
//! A call has a [`CallFormat`], which the `join` that starts it chooses. In a
//! meeting everyone may publish. In a presentation only the hosts and the speakers
//! they invite publish, and the audience only subscribes. The hosts are the
//! participant who started it and the room's owner and moderators. An audience member raises a hand with
//! `raise_hand`, and a host lets them speak with `invite_to_speak` and sends them
//! back with `move_to_audience`. The server enforces each of these steps.

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

/// The format of a call, chosen by the `join` that starts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallFormat {
    /// Every participant may publish.
    #[default]
    Meeting,
    /// The hosts and the speakers they invite publish; the audience only receives.
    Presentation,
}

impl CallFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            CallFormat::Meeting => "meeting",
            CallFormat::Presentation => "presentation",
        }
    }
}

/// The role of a participant in a call, which decides whether they may publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallRole {
    /// In a presentation: publishes, and lets raised hands speak or moves speakers
    /// back to the audience. The participant who started the presentation and the
    /// room's owner and moderators are its hosts.
    Host,
    /// Publishes: every participant of a meeting, and an audience member whom a
    /// host invited to speak in a presentation.
    #[default]
    Speaker,
    /// In a presentation: subscribes to the others and may not publish.
    Audience,
}

impl CallRole {
    /// Returns whether the server lets this role publish.
    pub fn may_publish(self) -> bool {
        self != CallRole::Audience
    }
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
    #[serde(default)]
    pub role: CallRole,
    /// Whether the participant, an audience member, has a hand raised to speak.
    #[serde(default)]
    pub hand_raised: bool,
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
    /// Joins the room's call, starting it when no one is in it yet. `format` applies
    /// only to a join that starts the call (a meeting when absent); a later join gets
    /// the call's format in the reply.
    Join {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<CallFormat>,
    },
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
    /// Raises the caller's hand, as an audience member of a presentation.
    RaiseHand,
    /// Lowers the caller's hand, or with `user_id` a host lowers someone else's.
    LowerHand {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<Uuid>,
    },
    /// A host lets an audience member of the presentation publish.
    InviteToSpeak { user_id: Uuid },
    /// A host moves a speaker back to the audience, or a speaker moves themselves,
    /// which is the default without `user_id`. The server stops their publishing.
    MoveToAudience {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<Uuid>,
    },
    /// Leaves the call; the call ends when its last participant leaves.
    Leave,
}

impl CallRequest {
    /// Returns the wire name of the action, for logs and error messages.
    pub fn action(&self) -> &'static str {
        match self {
            CallRequest::Join { .. } => "join",
            CallRequest::Publish { .. } => "publish",
            CallRequest::Subscribe { .. } => "subscribe",
            CallRequest::Start { .. } => "start",
            CallRequest::RestartSubscriber => "restart_subscriber",
            CallRequest::Configure { .. } => "configure",
            CallRequest::Trickle { .. } => "trickle",
            CallRequest::RaiseHand => "raise_hand",
            CallRequest::LowerHand { .. } => "lower_hand",
            CallRequest::InviteToSpeak { .. } => "invite_to_speak",
            CallRequest::MoveToAudience { .. } => "move_to_audience",
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
        #[serde(default)]
        format: CallFormat,
        /// The caller's role; an audience member must not publish.
        #[serde(default)]
        role: CallRole,
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
    /// The hand of `user_id` is now raised or lowered.
    HandChanged {
        user_id: Uuid,
        raised: bool,
    },
    /// The role of `user_id` is now `role`.
    RoleChanged {
        user_id: Uuid,
        role: CallRole,
    },
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
        #[serde(default)]
        format: CallFormat,
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
    /// An audience member raised their hand to speak.
    HandRaised {
        user_id: Uuid,
    },
    /// The hand went down: lowered by its owner or a host.
    HandLowered {
        user_id: Uuid,
    },
    /// A host invited the participant to speak, or moved them back to the audience.
    /// A change lowers the participant's hand, and a participant moved to the
    /// audience no longer publishes, so their streams are gone.
    RoleChanged {
        user_id: Uuid,
        feed_id: u64,
        role: CallRole,
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
    #[serde(default)]
    pub format: CallFormat,
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
    fn join_format_is_optional() {
        let plain: CallRequest = serde_json::from_str(r#"{"action":"join"}"#).unwrap();
        assert_eq!(plain, CallRequest::Join { format: None });
        let presentation: CallRequest =
            serde_json::from_str(r#"{"action":"join","format":"presentation"}"#).unwrap();
        assert_eq!(
            presentation,
            CallRequest::Join {
                format: Some(CallFormat::Presentation)
            }
        );
        let unknown =
            serde_json::from_str::<CallRequest>(r#"{"action":"join","format":"webinar"}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn stage_requests_use_snake_case() {
        let user_id = Uuid::nil();
        let json = serde_json::to_value(CallRequest::InviteToSpeak { user_id }).unwrap();
        assert_eq!(json["action"], "invite_to_speak");
        let lower: CallRequest = serde_json::from_str(r#"{"action":"lower_hand"}"#).unwrap();
        assert_eq!(lower, CallRequest::LowerHand { user_id: None });
        let event = serde_json::to_value(CallEvent::RoleChanged {
            user_id,
            feed_id: 3,
            role: CallRole::Audience,
        })
        .unwrap();
        assert_eq!(event["event"], "role_changed");
        assert_eq!(event["role"], "audience");
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
