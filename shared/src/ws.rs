//! The WebSocket protocol of `GET /api/ws`.
//!
//! The server sends [`ServerFrame`]s as JSON text frames and the client sends
//! [`ClientFrame`]s. Every event carries the receiving user's sequence number, which
//! grows by one with each event that user may see, so a client that reconnects with
//! `resume` gets exactly the events it missed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Replays every event after `since`, then streams live ones. The server holds
    /// live events back until the client's first frame (for at most 2 s), so that a
    /// `resume` sent right after `hello` is answered in order; a client that does
    /// not resume should send any frame, such as `ping`, to start the stream at once.
    /// Without a `resume` the connection streams the events after `hello`'s `seq`.
    Resume { since: i64 },
    /// Asks for a `pong`, for clients that cannot send WebSocket pings.
    Ping,
    /// A step of the call signaling of a room, answered by a `call_reply` or a
    /// `call_error` with the same `request_id`.
    Call {
        request_id: u64,
        room_id: Uuid,
        request: crate::call::CallRequest,
    },
}

/// The kinds of event, named `noun.verb` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum EventKind {
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "message.edited")]
    MessageEdited,
    #[serde(rename = "message.deleted")]
    MessageDeleted,
    #[serde(rename = "reaction.added")]
    ReactionAdded,
    #[serde(rename = "reaction.removed")]
    ReactionRemoved,
    #[serde(rename = "message.pinned")]
    MessagePinned,
    #[serde(rename = "message.unpinned")]
    MessageUnpinned,
    #[serde(rename = "member.joined")]
    MemberJoined,
    #[serde(rename = "member.left")]
    MemberLeft,
    #[serde(rename = "member.kicked")]
    MemberKicked,
    #[serde(rename = "member.banned")]
    MemberBanned,
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged,
    #[serde(rename = "room.created")]
    RoomCreated,
    #[serde(rename = "room.updated")]
    RoomUpdated,
    #[serde(rename = "room.deleted")]
    RoomDeleted,
    #[serde(rename = "user.updated")]
    UserUpdated,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::MessageCreated,
        EventKind::MessageEdited,
        EventKind::MessageDeleted,
        EventKind::ReactionAdded,
        EventKind::ReactionRemoved,
        EventKind::MessagePinned,
        EventKind::MessageUnpinned,
        EventKind::MemberJoined,
        EventKind::MemberLeft,
        EventKind::MemberKicked,
        EventKind::MemberBanned,
        EventKind::MemberRoleChanged,
        EventKind::RoomCreated,
        EventKind::RoomUpdated,
        EventKind::RoomDeleted,
        EventKind::UserUpdated,
    ];

    /// The wire name, e.g. `message.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageCreated => "message.created",
            EventKind::MessageEdited => "message.edited",
            EventKind::MessageDeleted => "message.deleted",
            EventKind::ReactionAdded => "reaction.added",
            EventKind::ReactionRemoved => "reaction.removed",
            EventKind::MessagePinned => "message.pinned",
            EventKind::MessageUnpinned => "message.unpinned",
            EventKind::MemberJoined => "member.joined",
            EventKind::MemberLeft => "member.left",
            EventKind::MemberKicked => "member.kicked",
            EventKind::MemberBanned => "member.banned",
            EventKind::MemberRoleChanged => "member.role_changed",
            EventKind::RoomCreated => "room.created",
            EventKind::RoomUpdated => "room.updated",
            EventKind::RoomDeleted => "room.deleted",
            EventKind::UserUpdated => "user.updated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One event as a user receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Event {
    /// The receiving user's sequence number of this event.
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub room_id: Option<Uuid>,
    /// The object the event is about: a message, a room, a member, or a small record.
    pub data: serde_json::Value,
}

/// What the server sends. Events are sent flat, as `{seq, type, room_id, data}`; the
/// other frames have a `type` of their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame {
    Event(Event),
    Control(Control),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// Sent first on every connection: the user's newest sequence number.
    Hello {
        seq: i64,
        heartbeat_secs: u64,
    },
    /// The replay asked for with `resume` is complete up to `seq`; live events follow.
    Resumed {
        seq: i64,
    },
    /// The `since` of a `resume` is older than the server keeps, or newer than the
    /// user's newest event: the client must refetch its rooms and history. Live
    /// events after `seq` follow.
    Resync {
        seq: i64,
        reason: String,
    },
    Pong,
    /// A frame the server could not parse; the connection stays open.
    Error {
        code: String,
        message: String,
    },
    /// The answer to the `call` frame with this `request_id`.
    CallReply {
        request_id: u64,
        room_id: Uuid,
        reply: crate::call::CallReply,
    },
    /// The `call` frame with this `request_id` failed; `message` explains why and what to do.
    CallError {
        request_id: u64,
        room_id: Uuid,
        code: crate::call::CallErrorCode,
        message: String,
    },
    /// A change of the call of a room the user is a member of. Not numbered, not
    /// replayed: the room list shows the calls going on after a reconnection.
    CallEvent {
        room_id: Uuid,
        event: crate::call::CallEvent,
    },
    /// News about this connection's own peer connections in a call.
    CallSignal {
        room_id: Uuid,
        signal: crate::call::CallSignal,
    },
}

/// Payload of `member.*` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberEvent {
    pub user_id: Uuid,
    pub member: Option<crate::model::Member>,
}

/// Payload of `reaction.*` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionEvent {
    pub message_id: Uuid,
    pub user_id: Uuid,
    pub emoji: String,
}

/// Payload of `message.deleted` and `room.deleted` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletedEvent {
    pub id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_serializes_flat() {
        let frame = ServerFrame::Event(Event {
            seq: 7,
            kind: EventKind::MessageCreated,
            room_id: None,
            data: serde_json::json!({"id": 1}),
        });
        let json = serde_json::to_value(&frame).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["type"], "message.created");
        assert_eq!(json["data"]["id"], 1);
    }

    #[test]
    fn control_and_event_parse_back() {
        let hello: ServerFrame =
            serde_json::from_str(r#"{"type":"hello","seq":3,"heartbeat_secs":30}"#).unwrap();
        assert_eq!(
            hello,
            ServerFrame::Control(Control::Hello {
                seq: 3,
                heartbeat_secs: 30
            })
        );

        let event: ServerFrame =
            serde_json::from_str(r#"{"seq":4,"type":"room.deleted","room_id":null,"data":{}}"#)
                .unwrap();
        assert!(matches!(event, ServerFrame::Event(Event { seq: 4, .. })));
    }

    #[test]
    fn event_kind_names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn call_frame_parses() {
        let frame: ClientFrame = serde_json::from_str(
            r#"{"type":"call","request_id":5,"room_id":"00000000-0000-0000-0000-000000000000","request":{"action":"join"}}"#,
        )
        .unwrap();
        assert_eq!(
            frame,
            ClientFrame::Call {
                request_id: 5,
                room_id: Uuid::nil(),
                request: crate::call::CallRequest::Join { format: None },
            }
        );
    }

    #[test]
    fn call_reply_parses_as_control() {
        let frame: ServerFrame = serde_json::from_str(
            r#"{"type":"call_reply","request_id":5,"room_id":"00000000-0000-0000-0000-000000000000","reply":{"result":"left"}}"#,
        )
        .unwrap();
        assert!(matches!(
            frame,
            ServerFrame::Control(Control::CallReply { request_id: 5, .. })
        ));
    }

    #[test]
    fn resume_frame_parses() {
        let frame: ClientFrame = serde_json::from_str(r#"{"type":"resume","since":12}"#).unwrap();
        assert_eq!(frame, ClientFrame::Resume { since: 12 });
    }
}
