//! The document of each collection, as the driver reads and writes it, and its
//! conversion to the store's records.
//!
//! Fields keep the SQLite backend's column names. Ids are UUIDs as text, because the
//! driver's serializer would write `uuid::Uuid` as binary. Times are BSON dates, and
//! counters are `i64`, because BSON has no unsigned integers. Join tables get an
//! `_id` built from their key, so that `roomler-server migrate` can skip documents it
//! copied before. JSON payloads (event data, mentions) go through [`json_to_bson`], so
//! their UUIDs stay strings.

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{self, Bson, DateTime, Document};
use roomler_shared::model::{Mention, Role, RoomKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{
    FileRecord, InviteRecord, Membership, RoomRecord, StoreError, StoreResult, UserRecord,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub username_key: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub avatar_file_id: Option<String>,
    pub disabled: bool,
    /// The newest sequence number of this user's event stream.
    pub event_seq: i64,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionDoc {
    /// The SHA-256 of the session token.
    #[serde(rename = "_id")]
    pub token_hash: String,
    pub user_id: String,
    pub created_at: DateTime,
    pub last_used_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RoomDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub path: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub topic: String,
    pub owner_id: Option<String>,
    pub password_hash: Option<String>,
    /// Sorted member ids of a two-person direct room, so that each pair has one.
    pub direct_key: Option<String>,
    pub last_seq: i64,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MembershipDoc {
    /// [`pair_id`] of the room and the user.
    #[serde(rename = "_id")]
    pub id: String,
    pub room_id: String,
    pub user_id: String,
    pub role: String,
    pub joined_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BanDoc {
    /// [`pair_id`] of the room and the user.
    #[serde(rename = "_id")]
    pub id: String,
    pub room_id: String,
    pub user_id: String,
    pub banned_by: String,
    pub banned_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InviteDoc {
    #[serde(rename = "_id")]
    pub code_hash: String,
    pub room_id: String,
    pub created_by: String,
    pub expires_at: DateTime,
    pub single_use: bool,
    pub uses: i64,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub sha256: String,
    /// In bytes.
    pub size: i64,
    pub mime: String,
    pub name: String,
    pub uploader_id: String,
    pub room_id: Option<String>,
    pub thumbnail_sha256: Option<String>,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MessageDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub author_id: String,
    pub body: String,
    pub html: String,
    /// The mentions as [`json_to_bson`] stores them.
    pub mentions: Bson,
    pub reply_to: Option<String>,
    pub client_id: Option<String>,
    pub pinned_by: Option<String>,
    pub pinned_at: Option<DateTime>,
    pub deleted: bool,
    pub created_at: DateTime,
    pub edited_at: Option<DateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReactionDoc {
    /// [`reaction_id`] of the message, user and emoji.
    #[serde(rename = "_id")]
    pub id: String,
    pub message_id: String,
    pub user_id: String,
    pub emoji: String,
    /// The message's room, so that deleting a room finds its reactions by index.
    pub room_id: String,
    pub created_at: DateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AttachmentDoc {
    /// [`pair_id`] of the message and the file.
    #[serde(rename = "_id")]
    pub id: String,
    pub message_id: String,
    pub file_id: String,
    pub position: i64,
    /// The message's room, so that deleting a room finds its attachments by index.
    pub room_id: String,
}

/// An event as stored once; `message_id` lets a delete scrub its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    /// The wire name, e.g. `message.created`.
    pub kind: String,
    pub room_id: Option<String>,
    pub message_id: Option<String>,
    pub data: Document,
    pub created_at: DateTime,
}

/// One delivery of an event: its number in one user's stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserEventDoc {
    /// [`pair_id`] of the user and the sequence number.
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: String,
    pub seq: i64,
    pub event_id: ObjectId,
    /// The event's room, so that deleting the room's events finds these by index.
    pub room_id: Option<String>,
    /// The event's time, so that pruning finds expired deliveries by index.
    pub created_at: DateTime,
}

/// Builds the `_id` of a document keyed by two values.
pub(crate) fn pair_id(first: impl std::fmt::Display, second: impl std::fmt::Display) -> String {
    format!("{first}:{second}")
}

/// Builds the `_id` of a reaction. UUIDs contain no `:`, so an emoji that does cannot
/// make two reactions share an id.
pub(crate) fn reaction_id(
    message_id: impl std::fmt::Display,
    user_id: impl std::fmt::Display,
    emoji: &str,
) -> String {
    format!("{message_id}:{user_id}:{emoji}")
}

/// Builds the `_id` of an event copied from SQLite: its creation second, as in a new
/// ObjectId, then its SQLite id, so that a copy run again makes the same id.
pub(crate) fn copied_event_id(sqlite_id: i64, created_at_millis: i64) -> ObjectId {
    let mut bytes = [0u8; 12];
    let seconds = created_at_millis
        .div_euclid(1000)
        .clamp(0, i64::from(u32::MAX)) as u32;
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    bytes[4..].copy_from_slice(&sqlite_id.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

pub(crate) fn to_time(date: DateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(date.timestamp_millis()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn to_date(time: OffsetDateTime) -> DateTime {
    DateTime::from_millis((time.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub(crate) fn parse_id(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text)
        .map_err(|error| anyhow::anyhow!("the database has an invalid id {text:?}: {error}").into())
}

pub(crate) fn parse_optional_id(text: Option<&str>) -> StoreResult<Option<Uuid>> {
    text.map(parse_id).transpose()
}

fn parse_role(text: &str) -> StoreResult<Role> {
    Role::parse(text)
        .ok_or_else(|| anyhow::anyhow!("the database has an unknown role {text:?}").into())
}

/// Converts JSON to BSON field by field, so that strings stay strings.
pub(crate) fn json_to_bson(value: &serde_json::Value) -> StoreResult<Bson> {
    Ok(bson::to_bson(value)?)
}

/// Converts a JSON object to a BSON document; event payloads are always objects.
pub(crate) fn json_to_document(value: &serde_json::Value) -> StoreResult<Document> {
    match json_to_bson(value)? {
        Bson::Document(document) => Ok(document),
        other => Err(StoreError::Other(anyhow::anyhow!(
            "an event payload must be a JSON object, not {:?}",
            other.element_type()
        ))),
    }
}

pub(crate) fn bson_to_json(value: Bson) -> StoreResult<serde_json::Value> {
    Ok(bson::from_bson(value)?)
}

pub(crate) fn mentions_to_bson(mentions: &[Mention]) -> StoreResult<Bson> {
    json_to_bson(&serde_json::to_value(mentions)?)
}

/// Reads the mentions of a message. Unreadable ones count as none, as in the SQLite
/// backend.
pub(crate) fn mentions_from_bson(mentions: &Bson) -> Vec<Mention> {
    bson_to_json(mentions.clone())
        .ok()
        .and_then(|json| serde_json::from_value(json).ok())
        .unwrap_or_default()
}

impl UserDoc {
    pub(crate) fn to_record(&self) -> StoreResult<UserRecord> {
        Ok(UserRecord {
            id: parse_id(&self.id)?,
            username: self.username.clone(),
            username_key: self.username_key.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            password_hash: self.password_hash.clone(),
            avatar_file_id: parse_optional_id(self.avatar_file_id.as_deref())?,
            disabled: self.disabled,
            created_at: to_time(self.created_at),
        })
    }
}

impl RoomDoc {
    /// Converts to the record, with the member count that the memberships collection
    /// gives.
    pub(crate) fn to_record(&self, member_count: u32) -> StoreResult<RoomRecord> {
        Ok(RoomRecord {
            id: parse_id(&self.id)?,
            name: self.name.clone(),
            path: self.path.clone(),
            kind: RoomKind::parse(&self.kind).unwrap_or(RoomKind::Private),
            parent_id: parse_optional_id(self.parent_id.as_deref())?,
            topic: self.topic.clone(),
            owner_id: parse_optional_id(self.owner_id.as_deref())?,
            password_hash: self.password_hash.clone(),
            member_count,
            last_seq: self.last_seq,
            created_at: to_time(self.created_at),
        })
    }
}

impl MembershipDoc {
    pub(crate) fn to_record(&self) -> StoreResult<Membership> {
        Ok(Membership {
            room_id: parse_id(&self.room_id)?,
            user_id: parse_id(&self.user_id)?,
            role: parse_role(&self.role)?,
            joined_at: to_time(self.joined_at),
        })
    }

    pub(crate) fn role(&self) -> StoreResult<Role> {
        parse_role(&self.role)
    }
}

impl InviteDoc {
    pub(crate) fn to_record(&self) -> StoreResult<InviteRecord> {
        Ok(InviteRecord {
            code_hash: self.code_hash.clone(),
            room_id: parse_id(&self.room_id)?,
            created_by: parse_id(&self.created_by)?,
            expires_at: to_time(self.expires_at),
            single_use: self.single_use,
        })
    }
}

impl FileDoc {
    pub(crate) fn from_record(file: &FileRecord) -> Self {
        FileDoc {
            id: file.id.to_string(),
            sha256: file.sha256.clone(),
            size: file.size as i64,
            mime: file.mime.clone(),
            name: file.name.clone(),
            uploader_id: file.uploader_id.to_string(),
            room_id: file.room_id.map(|id| id.to_string()),
            thumbnail_sha256: file.thumbnail_sha256.clone(),
            created_at: to_date(file.created_at),
        }
    }

    pub(crate) fn to_record(&self) -> StoreResult<FileRecord> {
        Ok(FileRecord {
            id: parse_id(&self.id)?,
            sha256: self.sha256.clone(),
            size: self.size as u64,
            mime: self.mime.clone(),
            name: self.name.clone(),
            uploader_id: parse_id(&self.uploader_id)?,
            room_id: parse_optional_id(self.room_id.as_deref())?,
            thumbnail_sha256: self.thumbnail_sha256.clone(),
            created_at: to_time(self.created_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use roomler_shared::model::{Message, UserRef};

    use super::*;

    fn sample_message() -> Message {
        let author = Uuid::now_v7();
        Message {
            id: Uuid::now_v7(),
            room_id: Uuid::now_v7(),
            seq: 9_007_199_254_740_993,
            author: UserRef {
                id: author,
                username: "ada".into(),
                display_name: "Ada".into(),
            },
            body: "hi @ada".into(),
            html: "<p>hi @ada</p>".into(),
            mentions: vec![
                Mention::User {
                    user_id: author,
                    username: "ada".into(),
                },
                Mention::Room,
            ],
            reply_to: None,
            reply_count: 3,
            reactions: Vec::new(),
            attachments: Vec::new(),
            client_id: Some("c-1".into()),
            pinned: None,
            deleted: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            edited_at: None,
        }
    }

    #[test]
    fn event_payload_survives_bson() {
        let json = serde_json::to_value(sample_message()).unwrap();
        let document = json_to_document(&json).unwrap();
        assert!(
            document
                .get_document("author")
                .unwrap()
                .get_str("id")
                .is_ok(),
            "a UUID must stay a string: {document:?}"
        );
        let back = bson_to_json(Bson::Document(document)).unwrap();
        assert_eq!(back, json);
    }

    #[test]
    fn mentions_survive_bson() {
        let mentions = sample_message().mentions;
        let stored = mentions_to_bson(&mentions).unwrap();
        assert_eq!(mentions_from_bson(&stored), mentions);
        assert!(mentions_from_bson(&Bson::Null).is_empty());
    }

    #[test]
    fn non_object_payload_is_rejected() {
        assert!(json_to_document(&serde_json::json!([1, 2])).is_err());
    }

    #[test]
    fn dates_keep_milliseconds() {
        let time = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
        assert_eq!(to_time(to_date(time)), time);
    }
}
