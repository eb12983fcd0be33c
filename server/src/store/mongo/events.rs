//! Event streams: recording an event with a sequence number per recipient, replay,
//! and pruning.

use std::collections::HashMap;

use mongodb::ClientSession;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, DateTime, Document, doc};
use roomler_shared::ws::{Event, EventKind};
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{EventDoc, UserEventDoc, bson_to_json, json_to_document, pair_id, to_date};
use super::{Db, collect, limit_of};
use crate::store::{Counts, EventRecord, Fanout, StoreError, StoreResult, StreamBounds};

/// The recipients of an event.
pub(super) enum Audience<'a> {
    /// The room's members at the moment of the write.
    Room(Uuid),
    /// The room's members and some users who are not members any more.
    RoomAnd(Uuid, &'a [Uuid]),
    Users(&'a [Uuid]),
}

/// Records an event and numbers it in each recipient's stream; must run inside a
/// transaction. `message_id` ties the event to a message, so that deleting the
/// message can scrub its content.
pub(super) async fn emit(
    s: &mut ClientSession,
    db: &Db,
    kind: EventKind,
    room_id: Option<Uuid>,
    message_id: Option<Uuid>,
    data: serde_json::Value,
    audience: Audience<'_>,
) -> StoreResult<Fanout> {
    let mut recipients = match audience {
        Audience::Room(room) => room_member_ids(s, db, room).await?,
        Audience::RoomAnd(room, extra) => {
            let mut ids = room_member_ids(s, db, room).await?;
            ids.extend(extra.iter().copied());
            ids
        }
        Audience::Users(ids) => ids.to_vec(),
    };
    recipients.sort_unstable();
    recipients.dedup();

    let now = DateTime::now();
    let event_id = ObjectId::new();
    db.events
        .insert_one(EventDoc {
            id: event_id,
            kind: kind.as_str().to_string(),
            room_id: room_id.map(|id| id.to_string()),
            message_id: message_id.map(|id| id.to_string()),
            data: json_to_document(&data)?,
            created_at: now,
        })
        .session(&mut *s)
        .await?;

    let seqs = next_event_seqs(s, db, &recipients).await?;
    let mut numbered = Vec::with_capacity(recipients.len());
    let mut deliveries = Vec::with_capacity(recipients.len());
    for user_id in recipients {
        let seq = seqs[&user_id];
        deliveries.push(UserEventDoc {
            id: pair_id(user_id, seq),
            user_id: user_id.to_string(),
            seq,
            event_id,
            room_id: room_id.map(|id| id.to_string()),
            created_at: now,
        });
        numbered.push((user_id, seq));
    }
    if !deliveries.is_empty() {
        db.user_events
            .insert_many(&deliveries)
            .session(&mut *s)
            .await?;
    }

    Ok(Fanout {
        event: EventRecord {
            kind,
            room_id,
            data,
        },
        recipients: numbered,
        published_at_micros: 0,
    })
}

/// Increments the event counter of each user and returns the new values.
///
/// The update and the read-back are two commands. Inside the transaction, the users'
/// documents stay written by this transaction until it commits, so a concurrent
/// transaction that increments one of them conflicts and runs again. The values read
/// back are therefore this transaction's own.
async fn next_event_seqs(
    s: &mut ClientSession,
    db: &Db,
    users: &[Uuid],
) -> StoreResult<HashMap<Uuid, i64>> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = users.iter().map(Uuid::to_string).collect();
    db.users
        .update_many(
            doc! { "_id": { "$in": &ids } },
            doc! { "$inc": { "event_seq": 1_i64 } },
        )
        .session(&mut *s)
        .await?;
    let cursor = db
        .users
        .clone_with_type::<Document>()
        .find(doc! { "_id": { "$in": &ids } })
        .projection(doc! { "event_seq": 1 })
        .session(&mut *s)
        .await?;
    let mut seqs = HashMap::with_capacity(users.len());
    for document in collect(cursor, s).await? {
        let id = super::documents::parse_id(document.get_str("_id").unwrap_or_default())?;
        seqs.insert(id, integer(&document, "event_seq")?);
    }
    if let Some(missing) = users.iter().find(|id| !seqs.contains_key(id)) {
        return Err(anyhow::anyhow!("user {missing} not found").into());
    }
    Ok(seqs)
}

pub(super) async fn room_member_ids(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<Vec<Uuid>> {
    let cursor = db
        .memberships
        .find(doc! { "room_id": room_id.to_string() })
        .session(&mut *s)
        .await?;
    collect(cursor, s)
        .await?
        .iter()
        .map(|membership| super::documents::parse_id(&membership.user_id))
        .collect()
}

/// Deletes the events about a room and their deliveries; a deleted room's events would
/// replay content that no longer exists.
pub(super) async fn delete_room_events(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<()> {
    let filter = doc! { "room_id": room_id.to_string() };
    db.user_events
        .delete_many(filter.clone())
        .session(&mut *s)
        .await?;
    db.events.delete_many(filter).session(&mut *s).await?;
    Ok(())
}

pub(super) async fn stream_bounds(
    s: &mut ClientSession,
    db: &Db,
    user_id: Uuid,
) -> StoreResult<StreamBounds> {
    let user = db
        .users
        .find_one(doc! { "_id": user_id.to_string() })
        .session(&mut *s)
        .await?
        .ok_or_else(|| anyhow::anyhow!("user {user_id} not found"))?;
    let oldest = db
        .user_events
        .find_one(doc! { "user_id": user_id.to_string() })
        .sort(doc! { "seq": 1 })
        .session(&mut *s)
        .await?;
    let latest = user.event_seq;
    // With nothing retained, everything up to `latest` is gone.
    let floor = oldest.map_or(latest, |oldest| oldest.seq - 1);
    Ok(StreamBounds { floor, latest })
}

pub(super) async fn events_since(
    s: &mut ClientSession,
    db: &Db,
    user_id: Uuid,
    since: i64,
    limit: u32,
) -> StoreResult<Vec<Event>> {
    let Some(limit) = limit_of(limit) else {
        return Ok(Vec::new());
    };
    let cursor = db
        .user_events
        .find(doc! { "user_id": user_id.to_string(), "seq": { "$gt": since } })
        .sort(doc! { "seq": 1 })
        .limit(limit)
        .session(&mut *s)
        .await?;
    let deliveries = collect(cursor, s).await?;

    let event_ids: Vec<ObjectId> = deliveries.iter().map(|d| d.event_id).collect();
    let cursor = db
        .events
        .find(doc! { "_id": { "$in": event_ids } })
        .session(&mut *s)
        .await?;
    let stored: HashMap<ObjectId, EventDoc> = collect(cursor, s)
        .await?
        .into_iter()
        .map(|event| (event.id, event))
        .collect();

    let mut events = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        // An event deleted between the two reads is gone, as a join would have it.
        let Some(event) = stored.get(&delivery.event_id) else {
            continue;
        };
        let Some(kind) = EventKind::parse(&event.kind) else {
            return Err(anyhow::anyhow!(
                "the events collection has an unknown kind {:?}",
                event.kind
            )
            .into());
        };
        events.push(Event {
            seq: delivery.seq,
            kind,
            room_id: super::documents::parse_optional_id(event.room_id.as_deref())?,
            data: bson_to_json(Bson::Document(event.data.clone()))?,
        });
    }
    Ok(events)
}

/// Forgets events older than `cutoff` and returns how many deliveries were dropped.
///
/// Unlike the SQLite backend, this runs as two deletes without a transaction, so that
/// a large backlog does not hit MongoDB's transaction limits. Deliveries go first, so a
/// stop between the two leaves events without deliveries, which the next run removes.
pub(super) async fn prune(
    s: &mut ClientSession,
    db: &Db,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let filter = doc! { "created_at": { "$lt": to_date(cutoff) } };
    let deliveries = db
        .user_events
        .delete_many(filter.clone())
        .session(&mut *s)
        .await?;
    db.events.delete_many(filter).session(&mut *s).await?;
    Ok(deliveries.deleted_count)
}

pub(super) async fn counts(s: &mut ClientSession, db: &Db) -> StoreResult<Counts> {
    Ok(Counts {
        users: db.users.count_documents(doc! {}).session(&mut *s).await?,
        rooms: db.rooms.count_documents(doc! {}).session(&mut *s).await?,
        messages: db
            .messages
            .count_documents(doc! { "deleted": false })
            .session(&mut *s)
            .await?,
        files: db.files.count_documents(doc! {}).session(&mut *s).await?,
        sessions: db
            .sessions
            .count_documents(doc! {})
            .session(&mut *s)
            .await?,
        events: db.events.count_documents(doc! {}).session(&mut *s).await?,
    })
}

/// Reads an integer field, whichever BSON integer type the server chose for it.
pub(super) fn integer(document: &Document, key: &str) -> StoreResult<i64> {
    match document.get(key) {
        Some(Bson::Int32(value)) => Ok(i64::from(*value)),
        Some(Bson::Int64(value)) => Ok(*value),
        Some(Bson::Double(value)) => Ok(*value as i64),
        other => Err(StoreError::Other(anyhow::anyhow!(
            "expected an integer in field {key:?}, found {other:?}"
        ))),
    }
}
