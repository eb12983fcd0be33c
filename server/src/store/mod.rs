//! The `Store` trait: everything the server keeps, behind one interface with one
//! backend per database.
//!
//! Methods speak the domain, not SQL. Every method that changes what users see also
//! records the event that notifies them, in the same transaction, and returns it as a
//! [`Fanout`]: the event and each recipient's sequence number. So a crash can never
//! store a change without its event, and a reconnecting client replays exactly what
//! it missed.

pub mod mongo;
pub mod sqlite;

use async_trait::async_trait;
use roomler_shared::model::{Member, Mention, Message, Role, Room, RoomKind};
use roomler_shared::ws::{Event, EventKind};
use time::OffsetDateTime;
use uuid::Uuid;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", .0.message())]
    Conflict(Conflict),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A write that a uniqueness rule rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    UsernameTaken,
    EmailTaken,
    RoomPathTaken,
    AlreadyMember,
    ClientIdReused,
}

impl Conflict {
    pub fn code(self) -> &'static str {
        match self {
            Conflict::UsernameTaken => "username_taken",
            Conflict::EmailTaken => "email_taken",
            Conflict::RoomPathTaken => "room_name_taken",
            Conflict::AlreadyMember => "already_member",
            Conflict::ClientIdReused => "client_id_reused",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Conflict::UsernameTaken => "That username is taken; choose another.",
            Conflict::EmailTaken => "An account with that email address exists; log in instead.",
            Conflict::RoomPathTaken => "A room with that name exists here; choose another name.",
            Conflict::AlreadyMember => "You are already a member of that room.",
            Conflict::ClientIdReused => {
                "That client_id was already used for a different message; \
                 generate a new one for each message."
            }
        }
    }

    /// Returns the message with the taken `value` in it, such as the username. Conflicts
    /// that are not about a value the caller chose keep [`Conflict::message`].
    pub fn message_naming(self, value: &str) -> String {
        match self {
            Conflict::UsernameTaken => format!("The username {value:?} is taken; choose another."),
            Conflict::EmailTaken => {
                format!("An account with the email address {value:?} exists; log in instead.")
            }
            Conflict::RoomPathTaken => {
                format!("A room named {value:?} exists here; choose another name.")
            }
            Conflict::AlreadyMember | Conflict::ClientIdReused => self.message().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub username_key: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub avatar_file_id: Option<Uuid>,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub username_key: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: Uuid,
    pub name: String,
    pub path: String,
    pub kind: RoomKind,
    pub parent_id: Option<Uuid>,
    pub topic: String,
    pub owner_id: Option<Uuid>,
    pub password_hash: Option<String>,
    pub member_count: u32,
    pub last_seq: i64,
    pub created_at: OffsetDateTime,
}

impl RoomRecord {
    /// Converts the record to the API's room, with the caller's `role`: `None` for a
    /// non-member or for an event sent to many users.
    pub fn to_model(&self, role: Option<Role>) -> Room {
        Room {
            id: self.id,
            name: self.name.clone(),
            path: self.path.clone(),
            kind: self.kind,
            parent_id: self.parent_id,
            topic: self.topic.clone(),
            owner_id: self.owner_id,
            has_password: self.password_hash.is_some(),
            member_count: self.member_count,
            last_seq: self.last_seq,
            role,
            created_at: self.created_at,
            call: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: String,
    pub path: String,
    pub kind: RoomKind,
    pub parent_id: Option<Uuid>,
    pub topic: String,
    pub password_hash: Option<String>,
    pub creator_id: Uuid,
}

#[derive(Debug, Clone)]
pub struct NewDirect {
    pub creator_id: Uuid,
    /// Every participant, the creator included, without duplicates.
    pub member_ids: Vec<Uuid>,
}

/// Changes to a room. `password_hash: Some(None)` removes the password.
#[derive(Debug, Clone, Default)]
pub struct RoomChanges {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub password_hash: Option<Option<String>>,
}

/// A user banned from a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    pub user_id: Uuid,
    pub banned_by: Uuid,
    pub banned_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub joined_at: OffsetDateTime,
}

/// The reason a member leaves a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    Left,
    Kicked { by: Uuid },
    Banned { by: Uuid },
}

#[derive(Debug, Clone)]
pub struct InviteRecord {
    pub code_hash: String,
    pub room_id: Uuid,
    pub created_by: Uuid,
    pub expires_at: OffsetDateTime,
    pub single_use: bool,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub html: String,
    pub mentions: Vec<Mention>,
    pub reply_to: Option<Uuid>,
    pub client_id: String,
    pub attachments: Vec<Uuid>,
}

/// The outcome of posting: a new message, or the one an earlier try with the same
/// `client_id` stored.
#[derive(Debug, Clone)]
pub enum Posted {
    Created(Message, Fanout),
    Existing(Message),
}

/// The facts about a message that authorization needs.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    pub id: Uuid,
    pub room_id: Uuid,
    pub author_id: Uuid,
    pub deleted: bool,
}

/// A page of a room's history, chosen by the room's sequence numbers.
#[derive(Debug, Clone, Copy)]
pub enum HistoryPage {
    /// The newest messages, newest first.
    Latest { limit: u32 },
    /// Messages with `seq < before`, newest first.
    Before { before: i64, limit: u32 },
    /// Messages with `seq > after`, oldest first.
    After { after: i64, limit: u32 },
}

#[derive(Debug, Clone)]
pub struct FileRecord {
    pub id: Uuid,
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    pub name: String,
    pub uploader_id: Uuid,
    pub room_id: Option<Uuid>,
    pub thumbnail_sha256: Option<String>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct SearchRow {
    pub message: Message,
    pub snippet: String,
}

/// An event as stored once, before it is numbered per recipient.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EventRecord {
    pub kind: EventKind,
    pub room_id: Option<Uuid>,
    pub data: serde_json::Value,
}

/// An event and, for each user who may see it, that user's sequence number.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fanout {
    pub event: EventRecord,
    pub recipients: Vec<(Uuid, i64)>,
    /// When the event was published, in Unix microseconds, for latency metrics;
    /// 0 until then.
    #[serde(default)]
    pub published_at_micros: i64,
}

impl Fanout {
    /// The event as `user_id` receives it, if that user is a recipient.
    pub fn event_for(&self, user_id: Uuid) -> Option<Event> {
        let (_, seq) = self.recipients.iter().find(|(id, _)| *id == user_id)?;
        Some(Event {
            seq: *seq,
            kind: self.event.kind,
            room_id: self.event.room_id,
            data: self.event.data.clone(),
        })
    }
}

/// The range of a user's retained event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBounds {
    /// Events with `seq <= floor` are no longer kept.
    pub floor: i64,
    /// The user's newest sequence number.
    pub latest: i64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub users: u64,
    pub rooms: u64,
    pub messages: u64,
    pub files: u64,
    pub sessions: u64,
    pub events: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts and sessions.
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord>;
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// Finds an account by its username key or its (lowercased) email.
    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>>;
    async fn users_by_keys(&self, keys: &[String]) -> StoreResult<Vec<UserRecord>>;
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    async fn update_profile(
        &self,
        id: Uuid,
        display_name: Option<String>,
        avatar_file_id: Option<Uuid>,
    ) -> StoreResult<(UserRecord, Fanout)>;
    /// Sets a new password hash and ends every session of the account.
    async fn set_password(&self, id: Uuid, password_hash: String) -> StoreResult<()>;
    /// Disables or enables an account; disabling ends every session.
    async fn set_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<()>;
    async fn create_session(&self, token_hash: &str, user_id: Uuid) -> StoreResult<()>;
    /// The enabled account behind a session token's hash.
    async fn session_user(&self, token_hash: &str) -> StoreResult<Option<UserRecord>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    // Rooms and membership.
    async fn create_room(&self, new: NewRoom) -> StoreResult<(RoomRecord, Fanout)>;
    /// Returns the existing two-person room when there is one.
    async fn create_direct(&self, new: NewDirect) -> StoreResult<(RoomRecord, Option<Fanout>)>;
    async fn room_by_id(&self, id: Uuid) -> StoreResult<Option<RoomRecord>>;
    async fn room_by_path(&self, path: &str) -> StoreResult<Option<RoomRecord>>;
    async fn rooms_of_user(&self, user_id: Uuid) -> StoreResult<Vec<(RoomRecord, Role)>>;
    async fn all_rooms(&self) -> StoreResult<Vec<RoomRecord>>;
    /// Public rooms whose ancestors are all public, matching `query` in their path.
    async fn directory(&self, query: &str, limit: u32) -> StoreResult<Vec<RoomRecord>>;
    async fn child_rooms(&self, room_id: Uuid) -> StoreResult<Vec<RoomRecord>>;
    async fn membership(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<Option<Membership>>;
    async fn members(&self, room_id: Uuid) -> StoreResult<Vec<Member>>;
    async fn is_banned(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<bool>;
    async fn unban(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<bool>;
    /// Lists the room's bans, newest first.
    async fn bans(&self, room_id: Uuid) -> StoreResult<Vec<BanRecord>>;
    async fn add_member(&self, room_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<Fanout>;
    /// Removes a member from the room and from every sub-room below it.
    async fn remove_member(
        &self,
        room_id: Uuid,
        user_id: Uuid,
        departure: Departure,
    ) -> StoreResult<Vec<Fanout>>;
    async fn set_role(&self, room_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<Fanout>;
    /// Makes `to` the owner and the previous owner a moderator.
    async fn transfer_ownership(
        &self,
        room_id: Uuid,
        from: Uuid,
        to: Uuid,
    ) -> StoreResult<Vec<Fanout>>;
    /// Applies changes; a new name also renames the paths of every sub-room.
    async fn update_room(
        &self,
        room_id: Uuid,
        changes: RoomChanges,
    ) -> StoreResult<(RoomRecord, Vec<Fanout>)>;
    /// Deletes the room, its sub-rooms and all their messages and files.
    async fn delete_room(&self, room_id: Uuid) -> StoreResult<Vec<Fanout>>;
    async fn create_invite(&self, invite: InviteRecord) -> StoreResult<()>;
    /// The invite when it exists, has not expired and, if single-use, is unused.
    async fn find_invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>>;
    /// Uses up an invite: returns it when it exists, has not expired and, if single-use,
    /// was not used before.
    async fn redeem_invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>>;

    // Messages.
    async fn post_message(&self, new: NewMessage) -> StoreResult<Posted>;
    async fn message_meta(&self, id: Uuid) -> StoreResult<Option<MessageMeta>>;
    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>>;
    async fn history(&self, room_id: Uuid, page: HistoryPage) -> StoreResult<Vec<Message>>;
    async fn thread(&self, parent_id: Uuid, limit: u32) -> StoreResult<Vec<Message>>;
    async fn pins(&self, room_id: Uuid) -> StoreResult<Vec<Message>>;
    async fn edit_message(
        &self,
        id: Uuid,
        body: String,
        html: String,
        mentions: Vec<Mention>,
    ) -> StoreResult<(Message, Fanout)>;
    /// Replaces the message with a tombstone and removes its content everywhere,
    /// from earlier events and from the search index too.
    async fn delete_message(&self, id: Uuid) -> StoreResult<Fanout>;
    /// Adds (`present`) or removes the user's reaction; `None` when it already was so.
    async fn set_reaction(
        &self,
        message_id: Uuid,
        user_id: Uuid,
        emoji: &str,
        present: bool,
    ) -> StoreResult<Option<Fanout>>;
    async fn set_pin(&self, message_id: Uuid, by: Option<Uuid>) -> StoreResult<(Message, Fanout)>;
    /// Full-text search over the rooms `user_id` is a member of.
    async fn search(
        &self,
        user_id: Uuid,
        query: &str,
        room_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<SearchRow>>;

    // Files.
    async fn create_file(&self, file: FileRecord) -> StoreResult<()>;
    async fn file(&self, id: Uuid) -> StoreResult<Option<FileRecord>>;
    async fn room_files(&self, room_id: Uuid, limit: u32) -> StoreResult<Vec<FileRecord>>;

    // Event streams.
    async fn stream_bounds(&self, user_id: Uuid) -> StoreResult<StreamBounds>;
    /// Events of `user_id` with `seq > since`, oldest first.
    async fn events_since(&self, user_id: Uuid, since: i64, limit: u32) -> StoreResult<Vec<Event>>;
    /// Forgets events older than `cutoff`; returns how many deliveries were dropped.
    async fn prune_events(&self, cutoff: OffsetDateTime) -> StoreResult<u64>;

    async fn counts(&self) -> StoreResult<Counts>;
}
