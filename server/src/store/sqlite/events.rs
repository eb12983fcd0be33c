//! Event streams: recording an event with a sequence number per recipient, replay,
//! and pruning.

use roomler_shared::ws::{Event, EventKind};
use rusqlite::{Connection, Transaction, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{now_millis, parse_uuid, to_millis};
use crate::store::{Counts, EventRecord, Fanout, StoreResult, StreamBounds};

/// Who receives an event.
pub(crate) enum Audience<'a> {
    /// The room's members at the moment of the write.
    Room(Uuid),
    /// The room's members and some users who are not members any more.
    RoomAnd(Uuid, &'a [Uuid]),
    Users(&'a [Uuid]),
}

/// Records an event and numbers it in each recipient's stream. `message_id` ties the
/// event to a message, so that deleting the message can scrub its content.
pub(crate) fn emit(
    tx: &Transaction,
    kind: EventKind,
    room_id: Option<Uuid>,
    message_id: Option<Uuid>,
    data: serde_json::Value,
    audience: Audience,
) -> StoreResult<Fanout> {
    let mut recipients = match audience {
        Audience::Room(room) => room_member_ids(tx, room)?,
        Audience::RoomAnd(room, extra) => {
            let mut ids = room_member_ids(tx, room)?;
            ids.extend(extra.iter().copied());
            ids
        }
        Audience::Users(ids) => ids.to_vec(),
    };
    recipients.sort_unstable();
    recipients.dedup();

    tx.execute(
        "INSERT INTO events (kind, room_id, message_id, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            kind.as_str(),
            room_id.map(|id| id.to_string()),
            message_id.map(|id| id.to_string()),
            serde_json::to_string(&data)?,
            now_millis(),
        ],
    )?;
    let event_id = tx.last_insert_rowid();

    let mut numbered = Vec::with_capacity(recipients.len());
    let mut next_seq = tx.prepare_cached(
        "UPDATE users SET event_seq = event_seq + 1 WHERE id = ?1 RETURNING event_seq",
    )?;
    let mut deliver =
        tx.prepare_cached("INSERT INTO user_events (user_id, seq, event_id) VALUES (?1, ?2, ?3)")?;
    for user_id in recipients {
        let seq: i64 = next_seq.query_row([user_id.to_string()], |row| row.get(0))?;
        deliver.execute(params![user_id.to_string(), seq, event_id])?;
        numbered.push((user_id, seq));
    }

    Ok(Fanout {
        published_at_micros: 0,
        event: EventRecord {
            kind,
            room_id,
            data,
        },
        recipients: numbered,
    })
}

pub(crate) fn room_member_ids(conn: &Connection, room_id: Uuid) -> StoreResult<Vec<Uuid>> {
    let mut statement =
        conn.prepare_cached("SELECT user_id FROM memberships WHERE room_id = ?1")?;
    let ids = statement
        .query_map([room_id.to_string()], |row| {
            parse_uuid(&row.get::<_, String>(0)?)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

pub(crate) fn stream_bounds(conn: &Connection, user_id: Uuid) -> StoreResult<StreamBounds> {
    let (latest, oldest): (i64, Option<i64>) = conn.query_row(
        "SELECT u.event_seq, (SELECT MIN(seq) FROM user_events WHERE user_id = u.id)
         FROM users u WHERE u.id = ?1",
        [user_id.to_string()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    // With nothing retained, everything up to `latest` is gone.
    let floor = oldest.map_or(latest, |oldest| oldest - 1);
    Ok(StreamBounds { floor, latest })
}

pub(crate) fn events_since(
    conn: &Connection,
    user_id: Uuid,
    since: i64,
    limit: u32,
) -> StoreResult<Vec<Event>> {
    let mut statement = conn.prepare_cached(
        "SELECT ue.seq, e.kind, e.room_id, e.data
         FROM user_events ue JOIN events e ON e.id = ue.event_id
         WHERE ue.user_id = ?1 AND ue.seq > ?2
         ORDER BY ue.seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![user_id.to_string(), since, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (seq, kind, room_id, data) = row?;
        let Some(kind) = EventKind::parse(&kind) else {
            return Err(anyhow::anyhow!("the events table has an unknown kind {kind:?}").into());
        };
        events.push(Event {
            seq,
            kind,
            room_id: room_id.as_deref().map(parse_uuid).transpose()?,
            data: serde_json::from_str(&data)?,
        });
    }
    Ok(events)
}

pub(crate) fn prune(tx: &Transaction, cutoff: OffsetDateTime) -> StoreResult<u64> {
    let cutoff = to_millis(cutoff);
    let deliveries = tx.execute(
        "DELETE FROM user_events WHERE event_id IN (SELECT id FROM events WHERE created_at < ?1)",
        [cutoff],
    )?;
    tx.execute("DELETE FROM events WHERE created_at < ?1", [cutoff])?;
    Ok(deliveries as u64)
}

pub(crate) fn counts(conn: &Connection) -> StoreResult<Counts> {
    let count = |table: &str| -> StoreResult<u64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        Ok(conn.query_row(&sql, [], |row| row.get::<_, i64>(0))? as u64)
    };
    Ok(Counts {
        users: count("users")?,
        rooms: count("rooms")?,
        messages: count("messages WHERE deleted = 0")?,
        files: count("files")?,
        sessions: count("sessions")?,
        events: count("events")?,
    })
}
