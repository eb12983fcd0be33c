//! Domain objects as the HTTP API returns them and the WebSocket pushes them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A user account as other users see it. `email` is filled only for the account's owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Path of the avatar image, relative to the server's URL.
    pub avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The short form of a user carried inside messages and member lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserRef {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Listed in the directory; anyone who may see its parent joins by typing its path.
    Public,
    /// Not listed; joining needs the room's password or an invite.
    Private,
    /// A direct conversation between two to fifty users, with no name to join by.
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Public => "public",
            RoomKind::Private => "private",
            RoomKind::Direct => "direct",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(RoomKind::Public),
            "private" => Some(RoomKind::Private),
            "direct" => Some(RoomKind::Direct),
            _ => None,
        }
    }
}

/// A member's role in one room. The order matters: a higher role may do all a lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Moderator,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Role::Member),
            "moderator" => Some(Role::Moderator),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Whether this role may moderate: rename, set the topic, invite, kick, ban, pin.
    pub fn can_moderate(self) -> bool {
        self >= Role::Moderator
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
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
    /// The caller's role, absent when the caller is not a member.
    pub role: Option<Role>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The call going on in the room, filled in the caller's room list only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<crate::call::CallSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Member {
    pub user: UserRef,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// A mention found in a message body and resolved against the room's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mention {
    /// `@username` of a member of the room.
    User { user_id: Uuid, username: String },
    /// `@room`: every member.
    Room,
    /// `@here`: the members who are online.
    Here,
}

/// The parent of a reply, as shown above the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ReplyPreview {
    pub id: Uuid,
    pub author: UserRef,
    /// The start of the parent's Markdown source, empty when the parent was deleted.
    pub excerpt: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Reaction {
    /// The emoji itself, never a shortcode.
    pub emoji: String,
    pub count: u32,
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Attachment {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    pub mime: String,
    /// Path of the download, relative to the server's URL.
    pub url: String,
    /// Path of a thumbnail, for images the server could decode.
    pub thumbnail_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Pin {
    pub by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Message {
    pub id: Uuid,
    pub room_id: Uuid,
    /// Position in the room, from 1, without gaps: the cursor for history.
    pub seq: i64,
    pub author: UserRef,
    /// The Markdown source; empty once deleted.
    pub body: String,
    /// The safe HTML rendering of `body`.
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
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Invite {
    pub code: String,
    pub room_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub single_use: bool,
}
