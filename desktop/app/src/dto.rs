//! Mirrors of the engine's types, for the TypeScript bindings.
//!
//! The types of `roomler_shared::model` and `roomler_client::cache` do not derive
//! `specta::Type`, and the orphan rule keeps this crate from implementing it for them. So
//! each type here repeats one of them with the same name and the same serde shape. Its
//! `From` conversion destructures the engine's type without `..`, so a field added there
//! fails to compile here until it is mirrored. Tests compare the JSON of both. Timestamps
//! are RFC 3339 strings, as the server sends them.

use roomler_client::cache;
use roomler_shared::{call, model};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

fn rfc3339(time: OffsetDateTime) -> String {
    // RFC 3339 has no years outside 0..=9999, so those fall back to the `Display` form.
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

/// The short form of a user carried inside messages and member lists.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct UserRef {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
}

impl From<model::UserRef> for UserRef {
    fn from(user: model::UserRef) -> Self {
        let model::UserRef {
            id,
            username,
            display_name,
        } = user;
        UserRef {
            id,
            username,
            display_name,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Public,
    Private,
    Direct,
}

impl From<model::RoomKind> for RoomKind {
    fn from(kind: model::RoomKind) -> Self {
        match kind {
            model::RoomKind::Public => RoomKind::Public,
            model::RoomKind::Private => RoomKind::Private,
            model::RoomKind::Direct => RoomKind::Direct,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Moderator,
    Owner,
}

impl From<Role> for model::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Member => model::Role::Member,
            Role::Moderator => model::Role::Moderator,
            Role::Owner => model::Role::Owner,
        }
    }
}

impl From<model::Role> for Role {
    fn from(role: model::Role) -> Self {
        match role {
            model::Role::Member => Role::Member,
            model::Role::Moderator => Role::Moderator,
            model::Role::Owner => Role::Owner,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Room {
    pub id: Uuid,
    /// The last segment of the path, e.g. `frontend`; empty for direct messages.
    pub name: String,
    /// The dotted path that people type to join, e.g. `team.frontend`.
    pub path: String,
    pub kind: RoomKind,
    pub parent_id: Option<Uuid>,
    pub topic: String,
    pub owner_id: Option<Uuid>,
    pub has_password: bool,
    pub member_count: u32,
    /// Sequence number of the newest message in the room, 0 when it has none.
    pub last_seq: i64,
    /// The user's role, absent when the user is not a member.
    pub role: Option<Role>,
    pub created_at: String,
    /// The call going on in the room, if any.
    pub call: Option<CallSummary>,
}

/// The format of a call: everyone speaks in a meeting, and in a presentation the
/// hosts speak while the audience watches and listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum CallFormat {
    Meeting,
    Presentation,
}

impl From<call::CallFormat> for CallFormat {
    fn from(format: call::CallFormat) -> Self {
        match format {
            call::CallFormat::Meeting => CallFormat::Meeting,
            call::CallFormat::Presentation => CallFormat::Presentation,
        }
    }
}

impl From<CallFormat> for call::CallFormat {
    fn from(format: CallFormat) -> Self {
        match format {
            CallFormat::Meeting => call::CallFormat::Meeting,
            CallFormat::Presentation => call::CallFormat::Presentation,
        }
    }
}

/// The role of a participant in a call: hosts and speakers publish, and the
/// audience of a presentation only receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum CallRole {
    Host,
    Speaker,
    Audience,
}

impl From<call::CallRole> for CallRole {
    fn from(role: call::CallRole) -> Self {
        match role {
            call::CallRole::Host => CallRole::Host,
            call::CallRole::Speaker => CallRole::Speaker,
            call::CallRole::Audience => CallRole::Audience,
        }
    }
}

/// A call going on in a room, as the room list shows it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct CallSummary {
    pub call_id: Uuid,
    pub format: CallFormat,
    pub participant_count: u32,
    pub started_at: String,
}

impl From<roomler_shared::call::CallSummary> for CallSummary {
    fn from(call: roomler_shared::call::CallSummary) -> Self {
        CallSummary {
            call_id: call.call_id,
            format: call.format.into(),
            participant_count: call.participant_count,
            started_at: rfc3339(call.started_at),
        }
    }
}

impl From<model::Room> for Room {
    fn from(room: model::Room) -> Self {
        let model::Room {
            id,
            name,
            path,
            kind,
            parent_id,
            topic,
            owner_id,
            has_password,
            member_count,
            last_seq,
            role,
            created_at,
            call,
        } = room;
        Room {
            id,
            name,
            path,
            kind: kind.into(),
            parent_id,
            topic,
            owner_id,
            has_password,
            member_count,
            last_seq,
            role: role.map(Role::from),
            created_at: rfc3339(created_at),
            call: call.map(CallSummary::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Member {
    pub user: UserRef,
    pub role: Role,
    pub joined_at: String,
}

impl From<model::Member> for Member {
    fn from(member: model::Member) -> Self {
        let model::Member {
            user,
            role,
            joined_at,
        } = member;
        Member {
            user: user.into(),
            role: role.into(),
            joined_at: rfc3339(joined_at),
        }
    }
}

/// A mention found in a message body and resolved against the room's members.
#[derive(Debug, Clone, Serialize, specta::Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mention {
    /// `@username` of a member of the room.
    User { user_id: Uuid, username: String },
    /// `@room`: every member.
    Room,
    /// `@here`: the members who are online.
    Here,
}

impl From<model::Mention> for Mention {
    fn from(mention: model::Mention) -> Self {
        match mention {
            model::Mention::User { user_id, username } => Mention::User { user_id, username },
            model::Mention::Room => Mention::Room,
            model::Mention::Here => Mention::Here,
        }
    }
}

/// The parent of a reply, as shown above the reply.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct ReplyPreview {
    pub id: Uuid,
    pub author: UserRef,
    /// The start of the parent's Markdown source, empty when the parent was deleted.
    pub excerpt: String,
    pub deleted: bool,
}

impl From<model::ReplyPreview> for ReplyPreview {
    fn from(preview: model::ReplyPreview) -> Self {
        let model::ReplyPreview {
            id,
            author,
            excerpt,
            deleted,
        } = preview;
        ReplyPreview {
            id,
            author: author.into(),
            excerpt,
            deleted,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Reaction {
    /// The emoji itself, never a shortcode.
    pub emoji: String,
    pub count: u32,
    pub user_ids: Vec<Uuid>,
}

impl From<model::Reaction> for Reaction {
    fn from(reaction: model::Reaction) -> Self {
        let model::Reaction {
            emoji,
            count,
            user_ids,
        } = reaction;
        Reaction {
            emoji,
            count,
            user_ids,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Attachment {
    pub id: Uuid,
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    pub mime: String,
    /// Path of the download, relative to the server's URL.
    pub url: String,
    /// Path of a thumbnail, for images the server could decode.
    pub thumbnail_url: Option<String>,
}

impl From<model::Attachment> for Attachment {
    fn from(attachment: model::Attachment) -> Self {
        let model::Attachment {
            id,
            name,
            size,
            mime,
            url,
            thumbnail_url,
        } = attachment;
        Attachment {
            id,
            name,
            size,
            mime,
            url,
            thumbnail_url,
        }
    }
}

/// A file the server stored for a room, which a message attaches by `id`.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct UploadedFile {
    pub id: Uuid,
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    pub mime: String,
}

impl From<roomler_shared::api::FileInfo> for UploadedFile {
    fn from(info: roomler_shared::api::FileInfo) -> Self {
        let roomler_shared::api::FileInfo {
            id,
            name,
            size,
            mime,
        } = info;
        UploadedFile {
            id,
            name,
            size,
            mime,
        }
    }
}

/// A file attached to a room's messages, with who uploaded it and when.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct RoomFile {
    pub id: Uuid,
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    pub mime: String,
    /// `None` when the uploader's account no longer exists.
    pub uploader: Option<UserRef>,
    pub uploaded_at: String,
}

impl From<roomler_shared::api::RoomFileInfo> for RoomFile {
    fn from(file: roomler_shared::api::RoomFileInfo) -> Self {
        let roomler_shared::api::RoomFileInfo {
            id,
            name,
            size,
            mime,
            uploader,
            uploaded_at,
        } = file;
        RoomFile {
            id,
            name,
            size,
            mime,
            uploader: uploader.map(UserRef::from),
            uploaded_at: rfc3339(uploaded_at),
        }
    }
}

/// A user banned from a room.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Ban {
    pub user: UserRef,
    /// The moderator or owner who banned the user.
    pub banned_by: Uuid,
    pub banned_at: String,
}

impl From<roomler_shared::api::Ban> for Ban {
    fn from(ban: roomler_shared::api::Ban) -> Self {
        Ban {
            user: ban.user.into(),
            banned_by: ban.banned_by,
            banned_at: rfc3339(ban.banned_at),
        }
    }
}

/// An invite to a room, with the link to share when the server has a public URL configured.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Invite {
    pub code: String,
    pub room_id: Uuid,
    pub expires_at: String,
    pub single_use: bool,
    pub url: Option<String>,
}

impl From<roomler_client::api::CreatedInvite> for Invite {
    fn from(created: roomler_client::api::CreatedInvite) -> Self {
        let roomler_client::api::CreatedInvite { invite, url } = created;
        let model::Invite {
            code,
            room_id,
            expires_at,
            single_use,
        } = invite;
        Invite {
            code,
            room_id,
            expires_at: rfc3339(expires_at),
            single_use,
            url,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Pin {
    pub by: Uuid,
    pub at: String,
}

impl From<model::Pin> for Pin {
    fn from(pin: model::Pin) -> Self {
        let model::Pin { by, at } = pin;
        Pin {
            by,
            at: rfc3339(at),
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Message {
    pub id: Uuid,
    pub room_id: Uuid,
    /// Position in the room, from 1, without gaps: the cursor for history.
    pub seq: i64,
    pub author: UserRef,
    /// The Markdown source; empty once deleted.
    pub body: String,
    /// The safe HTML rendering of `body`, sanitized by the server.
    pub html: String,
    pub mentions: Vec<Mention>,
    pub reply_to: Option<ReplyPreview>,
    pub reply_count: u32,
    pub reactions: Vec<Reaction>,
    pub attachments: Vec<Attachment>,
    pub client_id: Option<String>,
    pub pinned: Option<Pin>,
    /// A deleted message stays as a tombstone so that history keeps its shape.
    pub deleted: bool,
    pub created_at: String,
    pub edited_at: Option<String>,
}

impl From<model::Message> for Message {
    fn from(message: model::Message) -> Self {
        let model::Message {
            id,
            room_id,
            seq,
            author,
            body,
            html,
            mentions,
            reply_to,
            reply_count,
            reactions,
            attachments,
            client_id,
            pinned,
            deleted,
            created_at,
            edited_at,
        } = message;
        Message {
            id,
            room_id,
            seq,
            author: author.into(),
            body,
            html,
            mentions: mentions.into_iter().map(Mention::from).collect(),
            reply_to: reply_to.map(ReplyPreview::from),
            reply_count,
            reactions: reactions.into_iter().map(Reaction::from).collect(),
            attachments: attachments.into_iter().map(Attachment::from).collect(),
            client_id,
            pinned: pinned.map(Pin::from),
            deleted,
            created_at: rfc3339(created_at),
            edited_at: edited_at.map(rfc3339),
        }
    }
}

/// A room as the cache stores it, with the user's unread count.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct CachedRoom {
    pub room: Room,
    pub unread: u32,
}

impl From<cache::CachedRoom> for CachedRoom {
    fn from(cached: cache::CachedRoom) -> Self {
        let cache::CachedRoom { room, unread } = cached;
        CachedRoom {
            room: room.into(),
            unread,
        }
    }
}

/// A hit of a search in the local cache.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct LocalHit {
    pub room_id: Uuid,
    pub room_path: String,
    pub message: Message,
    /// The matching text, HTML-escaped, with matches in `<mark>`.
    pub snippet: String,
}

impl From<cache::LocalHit> for LocalHit {
    fn from(hit: cache::LocalHit) -> Self {
        let cache::LocalHit {
            room_id,
            room_path,
            message,
            snippet,
        } = hit;
        LocalHit {
            room_id,
            room_path,
            message: message.into(),
            snippet,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Send,
    Edit,
    Delete,
    React,
    Unreact,
}

impl From<cache::OperationKind> for OperationKind {
    fn from(kind: cache::OperationKind) -> Self {
        match kind {
            cache::OperationKind::Send => OperationKind::Send,
            cache::OperationKind::Edit => OperationKind::Edit,
            cache::OperationKind::Delete => OperationKind::Delete,
            cache::OperationKind::React => OperationKind::React,
            cache::OperationKind::Unreact => OperationKind::Unreact,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting to be sent, or being sent.
    Pending,
    /// Rejected by the server; stays until retried or discarded.
    Failed,
}

impl From<cache::OutboxState> for OutboxState {
    fn from(state: cache::OutboxState) -> Self {
        match state {
            cache::OutboxState::Pending => OutboxState::Pending,
            cache::OutboxState::Failed => OutboxState::Failed,
        }
    }
}

/// An operation the user made that the server has not confirmed yet.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: OperationKind,
    pub room_id: Uuid,
    pub message_id: Option<Uuid>,
    /// The id that makes a resent message idempotent; set for sends only.
    pub client_id: Option<String>,
    pub body: Option<String>,
    pub reply_to: Option<Uuid>,
    pub attachments: Vec<Uuid>,
    pub emoji: Option<String>,
    pub state: OutboxState,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: u32,
    pub created_at: String,
}

impl From<cache::OutboxItem> for OutboxItem {
    fn from(item: cache::OutboxItem) -> Self {
        let cache::OutboxItem {
            id,
            kind,
            room_id,
            message_id,
            client_id,
            body,
            reply_to,
            attachments,
            emoji,
            state,
            error_code,
            error_message,
            attempts,
            created_at,
        } = item;
        OutboxItem {
            id,
            kind: kind.into(),
            room_id,
            message_id,
            client_id,
            body,
            reply_to,
            attachments,
            emoji,
            state: state.into(),
            error_code,
            error_message,
            attempts,
            created_at,
        }
    }
}

/// A change in the cache, for the UI to reload what it shows.
#[derive(Debug, Clone, Serialize, specta::Type)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    RoomsChanged,
    MessagesChanged { room_id: Uuid },
    OutboxChanged,
}

impl From<cache::Change> for Change {
    fn from(change: cache::Change) -> Self {
        match change {
            cache::Change::RoomsChanged => Change::RoomsChanged,
            cache::Change::MessagesChanged { room_id } => Change::MessagesChanged { room_id },
            cache::Change::OutboxChanged => Change::OutboxChanged,
        }
    }
}

/// A stream that a call participant publishes.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct PublishedStream {
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    pub codec: Option<String>,
    pub simulcast: bool,
}

impl From<call::PublishedStream> for PublishedStream {
    fn from(stream: call::PublishedStream) -> Self {
        let call::PublishedStream {
            mid,
            kind,
            codec,
            simulcast,
        } = stream;
        PublishedStream {
            mid,
            kind: match kind {
                call::MediaKind::Audio => "audio".into(),
                call::MediaKind::Video => "video".into(),
            },
            codec,
            simulcast,
        }
    }
}

/// A participant of a call, as the other participants see it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct Participant {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub feed_id: u64,
    pub audio_muted: bool,
    pub camera_off: bool,
    pub streams: Vec<PublishedStream>,
    pub role: CallRole,
    pub hand_raised: bool,
}

impl From<call::Participant> for Participant {
    fn from(participant: call::Participant) -> Self {
        let call::Participant {
            user_id,
            username,
            display_name,
            feed_id,
            audio_muted,
            camera_off,
            streams,
            role,
            hand_raised,
        } = participant;
        Participant {
            user_id,
            username,
            display_name,
            feed_id,
            audio_muted,
            camera_off,
            streams: streams.into_iter().map(PublishedStream::from).collect(),
            role: role.into(),
            hand_raised,
        }
    }
}

/// Something that happened in a room's call.
#[derive(Debug, Clone, Serialize, specta::Type)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    Started {
        call_id: Uuid,
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
    Speaking {
        user_id: Uuid,
        speaking: bool,
    },
    HandRaised {
        user_id: Uuid,
    },
    HandLowered {
        user_id: Uuid,
    },
    /// A host let the participant speak or moved them back to the audience; the
    /// change lowers their hand.
    RoleChanged {
        user_id: Uuid,
        feed_id: u64,
        role: CallRole,
    },
}

impl From<call::CallEvent> for CallEvent {
    fn from(event: call::CallEvent) -> Self {
        use call::CallEvent as Engine;
        match event {
            Engine::Started { call_id, format } => CallEvent::Started {
                call_id,
                format: format.into(),
            },
            Engine::Ended { call_id } => CallEvent::Ended { call_id },
            Engine::ParticipantJoined { participant } => CallEvent::ParticipantJoined {
                participant: participant.into(),
            },
            Engine::ParticipantLeft { user_id, feed_id } => {
                CallEvent::ParticipantLeft { user_id, feed_id }
            }
            Engine::Published {
                user_id,
                feed_id,
                streams,
            } => CallEvent::Published {
                user_id,
                feed_id,
                streams: streams.into_iter().map(PublishedStream::from).collect(),
            },
            Engine::Muted { user_id } => CallEvent::Muted { user_id },
            Engine::Unmuted { user_id } => CallEvent::Unmuted { user_id },
            Engine::CameraOn { user_id } => CallEvent::CameraOn { user_id },
            Engine::CameraOff { user_id } => CallEvent::CameraOff { user_id },
            Engine::Speaking { user_id, speaking } => CallEvent::Speaking { user_id, speaking },
            Engine::HandRaised { user_id } => CallEvent::HandRaised { user_id },
            Engine::HandLowered { user_id } => CallEvent::HandLowered { user_id },
            Engine::RoleChanged {
                user_id,
                feed_id,
                role,
            } => CallEvent::RoleChanged {
                user_id,
                feed_id,
                role: role.into(),
            },
        }
    }
}

/// The state of the live connection to the server.
#[derive(Debug, Clone, Serialize, specta::Type)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Offline,
    Connecting,
    Online,
    /// Waiting `retry_in_ms` milliseconds before attempt number `attempt`.
    Reconnecting {
        attempt: u32,
        retry_in_ms: u64,
    },
}

impl From<roomler_client::ConnectionState> for ConnectionState {
    fn from(state: roomler_client::ConnectionState) -> Self {
        use roomler_client::ConnectionState as Engine;
        match state {
            Engine::Offline => ConnectionState::Offline,
            Engine::Connecting => ConnectionState::Connecting,
            Engine::Online => ConnectionState::Online,
            Engine::Reconnecting {
                attempt,
                retry_in_ms,
            } => ConnectionState::Reconnecting {
                attempt,
                retry_in_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn user(name: &str) -> model::UserRef {
        model::UserRef {
            id: Uuid::new_v4(),
            username: name.into(),
            display_name: name.to_uppercase(),
        }
    }

    /// Builds a message with every optional part filled in.
    fn full_message() -> model::Message {
        model::Message {
            id: Uuid::new_v4(),
            room_id: Uuid::new_v4(),
            seq: 42,
            author: user("alice"),
            body: "hi @bob".into(),
            html: "<p>hi @bob</p>".into(),
            mentions: vec![
                model::Mention::User {
                    user_id: Uuid::new_v4(),
                    username: "bob".into(),
                },
                model::Mention::Room,
                model::Mention::Here,
            ],
            reply_to: Some(model::ReplyPreview {
                id: Uuid::new_v4(),
                author: user("bob"),
                excerpt: "earlier".into(),
                deleted: false,
            }),
            reply_count: 2,
            reactions: vec![model::Reaction {
                emoji: "👍".into(),
                count: 1,
                user_ids: vec![Uuid::new_v4()],
            }],
            attachments: vec![model::Attachment {
                id: Uuid::new_v4(),
                name: "plan.pdf".into(),
                size: 1234,
                mime: "application/pdf".into(),
                url: "/api/files/1".into(),
                thumbnail_url: None,
            }],
            client_id: Some("client-1".into()),
            pinned: Some(model::Pin {
                by: Uuid::new_v4(),
                at: datetime!(2026-01-02 03:04:05.5 UTC),
            }),
            deleted: false,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            edited_at: Some(datetime!(2026-01-02 03:05:00 +01:00)),
        }
    }

    fn room(role: Option<model::Role>) -> model::Room {
        model::Room {
            id: Uuid::new_v4(),
            name: "frontend".into(),
            path: "team.frontend".into(),
            kind: model::RoomKind::Private,
            parent_id: Some(Uuid::new_v4()),
            topic: "UI".into(),
            owner_id: None,
            has_password: true,
            member_count: 3,
            last_seq: 9,
            role,
            created_at: datetime!(2025-12-31 23:59:59 UTC),
            call: Some(roomler_shared::call::CallSummary {
                call_id: Uuid::new_v4(),
                format: call::CallFormat::Presentation,
                participant_count: 2,
                started_at: datetime!(2026-01-02 03:04:05 UTC),
            }),
        }
    }

    #[test]
    fn message_json_matches_engine() {
        let message = full_message();
        let engine = serde_json::to_value(&message).unwrap();
        let mirror = serde_json::to_value(Message::from(message)).unwrap();
        assert_eq!(mirror, engine);
    }

    #[test]
    fn room_json_matches_engine() {
        for role in [None, Some(model::Role::Moderator)] {
            let room = room(role);
            let engine = serde_json::to_value(&room).unwrap();
            let mirror = serde_json::to_value(Room::from(room)).unwrap();
            assert_eq!(mirror, engine);
        }
    }

    #[test]
    fn member_json_matches_engine() {
        let member = model::Member {
            user: user("carol"),
            role: model::Role::Owner,
            joined_at: datetime!(2026-03-04 05:06:07 UTC),
        };
        let engine = serde_json::to_value(&member).unwrap();
        let mirror = serde_json::to_value(Member::from(member)).unwrap();
        assert_eq!(mirror, engine);
    }

    #[test]
    fn invite_json_matches_engine() {
        let created = roomler_client::api::CreatedInvite {
            invite: model::Invite {
                code: "abc-_123".into(),
                room_id: Uuid::new_v4(),
                expires_at: datetime!(2026-01-02 03:04:05 UTC),
                single_use: true,
            },
            url: Some("https://chat.example.com/invite/abc-_123".into()),
        };
        let engine = serde_json::to_value(&created).unwrap();
        let mirror = serde_json::to_value(Invite::from(created)).unwrap();
        assert_eq!(mirror, engine);
    }

    #[test]
    fn role_json_round_trips() {
        for role in [
            model::Role::Member,
            model::Role::Moderator,
            model::Role::Owner,
        ] {
            let json = serde_json::to_value(Role::from(role)).unwrap();
            let mirror: Role = serde_json::from_value(json).unwrap();
            assert_eq!(model::Role::from(mirror), role);
        }
    }

    #[test]
    fn outbox_item_json_matches_engine() {
        let item = cache::OutboxItem {
            id: 7,
            kind: cache::OperationKind::Unreact,
            room_id: Uuid::new_v4(),
            message_id: Some(Uuid::new_v4()),
            client_id: None,
            body: None,
            reply_to: None,
            attachments: vec![Uuid::new_v4()],
            emoji: Some("🎉".into()),
            state: cache::OutboxState::Failed,
            error_code: Some("forbidden".into()),
            error_message: Some("not a member".into()),
            attempts: 3,
            created_at: "2026-01-02T03:04:05Z".into(),
        };
        let engine = serde_json::to_value(&item).unwrap();
        let mirror = serde_json::to_value(OutboxItem::from(item)).unwrap();
        assert_eq!(mirror, engine);
    }

    #[test]
    fn change_and_connection_json_match_engine() {
        let room_id = Uuid::new_v4();
        let changes = [
            cache::Change::RoomsChanged,
            cache::Change::MessagesChanged { room_id },
            cache::Change::OutboxChanged,
        ];
        for change in changes {
            let engine = serde_json::to_value(&change).unwrap();
            let mirror = serde_json::to_value(Change::from(change)).unwrap();
            assert_eq!(mirror, engine);
        }

        let state = roomler_client::ConnectionState::Reconnecting {
            attempt: 2,
            retry_in_ms: 1500,
        };
        let engine = serde_json::to_value(&state).unwrap();
        let mirror = serde_json::to_value(ConnectionState::from(state)).unwrap();
        assert_eq!(mirror, engine);
        assert_eq!(
            mirror,
            json!({"state": "reconnecting", "attempt": 2, "retry_in_ms": 1500})
        );
    }

    #[test]
    fn call_event_json_matches_engine() {
        let stream = call::PublishedStream {
            mid: "1".into(),
            kind: call::MediaKind::Video,
            codec: Some("vp8".into()),
            simulcast: false,
        };
        let events = [
            call::CallEvent::ParticipantJoined {
                participant: call::Participant {
                    user_id: Uuid::new_v4(),
                    username: "alice".into(),
                    display_name: "Alice".into(),
                    feed_id: 7,
                    audio_muted: true,
                    camera_off: false,
                    streams: vec![stream.clone()],
                    role: call::CallRole::Audience,
                    hand_raised: true,
                },
            },
            call::CallEvent::Started {
                call_id: Uuid::new_v4(),
                format: call::CallFormat::Presentation,
            },
            call::CallEvent::HandRaised {
                user_id: Uuid::new_v4(),
            },
            call::CallEvent::RoleChanged {
                user_id: Uuid::new_v4(),
                feed_id: 7,
                role: call::CallRole::Speaker,
            },
            call::CallEvent::Published {
                user_id: Uuid::new_v4(),
                feed_id: 7,
                streams: vec![stream],
            },
            call::CallEvent::ParticipantLeft {
                user_id: Uuid::new_v4(),
                feed_id: 7,
            },
            call::CallEvent::CameraOff {
                user_id: Uuid::new_v4(),
            },
        ];
        for event in events {
            let engine = serde_json::to_value(&event).unwrap();
            let mirror = serde_json::to_value(CallEvent::from(event)).unwrap();
            assert_eq!(mirror, engine);
        }
    }
}
