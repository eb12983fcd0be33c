//! The offline cache: one SQLite file per profile, in WAL mode.
//!
//! It keeps the rooms, members and messages the user has seen, the outbox of
//! operations waiting for the server, and the sequence number of the last event
//! applied. Each event is applied in one transaction together with that number, so
//! a crash between two events never loses or doubles one.

mod outbox;
mod recovery;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use roomler_shared::model::{Member, Message, Role, Room, RoomKind};
use roomler_shared::search;
use roomler_shared::ws::{DeletedEvent, Event, EventKind, MemberEvent};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use uuid::Uuid;

pub use outbox::{NewOperation, OperationKind, OutboxItem, OutboxState};

use crate::error::{ClientError, Result};

const MIGRATIONS: &[&str] = &[include_str!("schema.sql"), include_str!("unread_index.sql")];

/// A change in the cache, for the app to refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    RoomsChanged,
    MessagesChanged { room_id: Uuid },
    OutboxChanged,
}

/// A room as the cache holds it, with the user's unread count.
#[derive(Debug, Clone, Serialize)]
pub struct CachedRoom {
    pub room: Room,
    pub unread: u32,
}

/// A hit of a local search.
#[derive(Debug, Clone, Serialize)]
pub struct LocalHit {
    pub room_id: Uuid,
    pub room_path: String,
    pub message: Message,
    /// The matching text, HTML-escaped, with matches in `<mark>`.
    pub snippet: String,
}

pub struct Cache {
    connection: Mutex<Connection>,
    path: PathBuf,
}

impl Cache {
    /// Opens the cache at `path`; an unreadable file is moved aside and rebuilt, with
    /// the outbox kept when it can be read. The second value names the moved file.
    pub fn open(path: &Path) -> Result<(Self, Option<PathBuf>)> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(anyhow::Error::from)?;
        }
        match open_checked(path) {
            Ok(connection) => Ok((Self::from_connection(connection, path), None)),
            Err(error) => {
                let (connection, moved) = recovery::rebuild(path, &error)?;
                Ok((Self::from_connection(connection, path), Some(moved)))
            }
        }
    }

    fn from_connection(connection: Connection, path: &Path) -> Self {
        Cache {
            connection: Mutex::new(connection),
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut connection = self.connection.lock().unwrap();
        work(&mut connection)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with(|connection| {
            let value = connection
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(value)
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.with(|connection| {
            set_meta(connection, key, value)?;
            Ok(())
        })
    }

    /// The sequence number of the last event applied, 0 before the first.
    pub fn last_seq(&self) -> Result<i64> {
        Ok(self
            .meta("last_seq")?
            .and_then(|value| value.parse().ok())
            .unwrap_or(0))
    }

    /// Applies one live event and records its number, in one transaction. An event
    /// at or below the recorded number was applied before and is skipped.
    pub fn apply_event(&self, event: &Event, me: Uuid) -> Result<Vec<Change>> {
        self.with(|connection| {
            let transaction = write_transaction(connection)?;
            let last: i64 = get_meta(&transaction, "last_seq")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if event.seq <= last {
                return Ok(Vec::new());
            }
            let changes = apply(&transaction, event, me)?;
            set_meta(&transaction, "last_seq", &event.seq.to_string())?;
            transaction.commit()?;
            Ok(changes)
        })
    }

    /// Records a new event position without applying events, after a resync.
    pub fn set_last_seq(&self, seq: i64) -> Result<()> {
        self.set_meta("last_seq", &seq.to_string())
    }

    /// Replaces the room list with the server's, dropping rooms the user left.
    pub fn replace_rooms(&self, rooms: &[Room]) -> Result<()> {
        self.with(|connection| {
            let transaction = write_transaction(connection)?;
            let keep: Vec<String> = rooms.iter().map(|room| room.id.to_string()).collect();
            let mut statement = transaction.prepare("SELECT id FROM rooms")?;
            let existing: Vec<String> = statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            drop(statement);
            for id in existing.iter().filter(|id| !keep.contains(id)) {
                delete_room(&transaction, id)?;
            }
            for room in rooms {
                upsert_room(&transaction, room)?;
            }
            transaction.commit()?;
            Ok(())
        })
    }

    pub fn upsert_room(&self, room: &Room) -> Result<()> {
        self.with(|connection| {
            upsert_room(connection, room)?;
            Ok(())
        })
    }

    pub fn replace_members(&self, room_id: Uuid, members: &[Member]) -> Result<()> {
        self.with(|connection| {
            let transaction = write_transaction(connection)?;
            transaction.execute(
                "DELETE FROM members WHERE room_id = ?1",
                [room_id.to_string()],
            )?;
            for member in members {
                upsert_member(&transaction, room_id, member)?;
            }
            transaction.commit()?;
            Ok(())
        })
    }

    pub fn members(&self, room_id: Uuid) -> Result<Vec<Member>> {
        self.with(|connection| {
            let mut statement =
                connection.prepare("SELECT data FROM members WHERE room_id = ?1")?;
            let rows = statement.query_map([room_id.to_string()], |row| row.get::<_, String>(0))?;
            let mut members = Vec::new();
            for row in rows {
                members.push(serde_json::from_str(&row?)?);
            }
            Ok(members)
        })
    }

    /// Stores a page of history; `complete` marks that nothing older exists.
    pub fn store_messages(
        &self,
        room_id: Uuid,
        messages: &[Message],
        complete: bool,
    ) -> Result<()> {
        self.with(|connection| {
            let transaction = write_transaction(connection)?;
            for message in messages {
                upsert_message(&transaction, message)?;
            }
            if complete {
                transaction.execute(
                    "UPDATE rooms SET history_complete = 1 WHERE id = ?1",
                    [room_id.to_string()],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
    }

    /// Replaces every cached message of a room with `messages`, the newest page after
    /// a resync. Older cached messages are dropped because the server no longer
    /// keeps the events that may have edited or deleted them, and keeping them would
    /// leave a gap that [`Cache::history_complete`] hides. `complete` marks that nothing older exists.
    pub fn replace_messages(
        &self,
        room_id: Uuid,
        messages: &[Message],
        complete: bool,
    ) -> Result<()> {
        self.with(|connection| {
            let transaction = write_transaction(connection)?;
            let room = room_id.to_string();
            transaction.execute(
                "DELETE FROM messages_fts
                 WHERE rowid IN (SELECT rowid FROM messages WHERE room_id = ?1)",
                [&room],
            )?;
            transaction.execute("DELETE FROM messages WHERE room_id = ?1", [&room])?;
            for message in messages {
                upsert_message(&transaction, message)?;
            }
            transaction.execute(
                "UPDATE rooms SET history_complete = ?1 WHERE id = ?2",
                params![complete, room],
            )?;
            transaction.commit()?;
            Ok(())
        })
    }

    pub fn history_complete(&self, room_id: Uuid) -> Result<bool> {
        self.with(|connection| {
            let complete = connection
                .query_row(
                    "SELECT history_complete FROM rooms WHERE id = ?1",
                    [room_id.to_string()],
                    |row| row.get::<_, bool>(0),
                )
                .optional()?;
            Ok(complete.unwrap_or(false))
        })
    }

    /// Cached messages of a room with `seq < before`, newest first.
    pub fn history(&self, room_id: Uuid, before: Option<i64>, limit: u32) -> Result<Vec<Message>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT data FROM messages WHERE room_id = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(
                params![room_id.to_string(), before.unwrap_or(i64::MAX), limit],
                |row| row.get::<_, String>(0),
            )?;
            let mut messages = Vec::new();
            for row in rows {
                messages.push(serde_json::from_str(&row?)?);
            }
            Ok(messages)
        })
    }

    /// Cached messages of a room with `seq > after`, oldest first.
    pub fn history_after(&self, room_id: Uuid, after: i64, limit: u32) -> Result<Vec<Message>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT data FROM messages WHERE room_id = ?1 AND seq > ?2
                 ORDER BY seq ASC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![room_id.to_string(), after, limit], |row| {
                row.get::<_, String>(0)
            })?;
            let mut messages = Vec::new();
            for row in rows {
                messages.push(serde_json::from_str(&row?)?);
            }
            Ok(messages)
        })
    }

    /// Sequence number of the oldest cached message of a room, `None` when none is cached.
    pub fn oldest_seq(&self, room_id: Uuid) -> Result<Option<i64>> {
        self.with(|connection| {
            let seq = connection.query_row(
                "SELECT MIN(seq) FROM messages WHERE room_id = ?1",
                [room_id.to_string()],
                |row| row.get::<_, Option<i64>>(0),
            )?;
            Ok(seq)
        })
    }

    pub fn message(&self, id: Uuid) -> Result<Option<Message>> {
        self.with(|connection| {
            let data: Option<String> = connection
                .query_row(
                    "SELECT data FROM messages WHERE id = ?1",
                    [id.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(data.map(|data| serde_json::from_str(&data)).transpose()?)
        })
    }

    /// Rooms the user is a member of, by path, with unread counts.
    pub fn rooms(&self) -> Result<Vec<CachedRoom>> {
        self.with(|connection| {
            let mut statement = connection.prepare(
                "SELECT r.data, (SELECT COUNT(*) FROM messages m
                                 WHERE m.room_id = r.id AND m.seq > r.read_seq AND m.deleted = 0)
                 FROM rooms r ORDER BY r.path",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut rooms = Vec::new();
            for row in rows {
                let (data, unread) = row?;
                let room: Room = serde_json::from_str(&data)?;
                if room.role.is_some() {
                    rooms.push(CachedRoom {
                        room,
                        unread: unread as u32,
                    });
                }
            }
            Ok(rooms)
        })
    }

    /// Finds a cached room by id, dotted path or, for direct rooms, the id's text.
    pub fn find_room(&self, name: &str) -> Result<Option<Room>> {
        let key = name.trim().to_lowercase();
        let rooms = self.rooms()?;
        Ok(rooms
            .into_iter()
            .map(|cached| cached.room)
            .find(|room| room.path == key || room.id.to_string() == key))
    }

    pub fn set_read(&self, room_id: Uuid, seq: i64) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE rooms SET read_seq = MAX(read_seq, ?1) WHERE id = ?2",
                params![seq, room_id.to_string()],
            )?;
            Ok(())
        })
    }

    /// Full-text search over every cached message.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<LocalHit>> {
        let Some(expression) = search::fts5_query(query) else {
            return Ok(Vec::new());
        };
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT m.room_id, r.path, m.data,
                        snippet(messages_fts, 0, char(1), char(2), '…', 16)
                 FROM messages_fts
                 JOIN messages m ON m.rowid = messages_fts.rowid
                 JOIN rooms r ON r.id = m.room_id
                 WHERE messages_fts MATCH ?1 AND m.deleted = 0
                 ORDER BY rank LIMIT ?2",
            )?;
            let rows = statement.query_map(params![expression, limit], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?;
            let mut hits = Vec::new();
            for row in rows {
                let (room_id, room_path, data, snippet) = row?;
                hits.push(LocalHit {
                    room_id: room_id.parse().map_err(anyhow::Error::from)?,
                    room_path,
                    message: serde_json::from_str(&data)?,
                    snippet: search::snippet_html(&snippet),
                });
            }
            Ok(hits)
        })
    }

    pub fn message_count(&self) -> Result<u64> {
        self.with(|connection| {
            Ok(
                connection.query_row("SELECT COUNT(*) FROM messages", [], |row| {
                    row.get::<_, i64>(0)
                })? as u64,
            )
        })
    }

    // Files.

    /// Records where the complete download of a file is, keeping its thumbnail.
    pub fn record_file(
        &self,
        id: Uuid,
        name: &str,
        size: u64,
        mime: &str,
        local_path: &Path,
    ) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO files (id, name, size, mime, local_path) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, size = excluded.size,
                                               mime = excluded.mime,
                                               local_path = excluded.local_path",
                params![
                    id.to_string(),
                    name,
                    size as i64,
                    mime,
                    local_path.to_string_lossy()
                ],
            )?;
            Ok(())
        })
    }

    /// Returns the recorded path of a file's download. The file itself may be gone since.
    pub fn local_file(&self, id: Uuid) -> Result<Option<PathBuf>> {
        self.with(|connection| {
            let path: Option<Option<String>> = connection
                .query_row(
                    "SELECT local_path FROM files WHERE id = ?1",
                    [id.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(path.flatten().map(PathBuf::from))
        })
    }

    /// Stores a file's thumbnail (PNG bytes), keeping its download path.
    pub fn record_thumbnail(
        &self,
        id: Uuid,
        name: &str,
        size: u64,
        mime: &str,
        thumbnail: &[u8],
    ) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO files (id, name, size, mime, thumbnail) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, size = excluded.size,
                                               mime = excluded.mime,
                                               thumbnail = excluded.thumbnail",
                params![id.to_string(), name, size as i64, mime, thumbnail],
            )?;
            Ok(())
        })
    }

    /// Returns the stored thumbnail of a file (PNG bytes).
    pub fn thumbnail(&self, id: Uuid) -> Result<Option<Vec<u8>>> {
        self.with(|connection| {
            let thumbnail: Option<Option<Vec<u8>>> = connection
                .query_row(
                    "SELECT thumbnail FROM files WHERE id = ?1",
                    [id.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(thumbnail.flatten())
        })
    }
}

/// Caches up to this size get SQLite's integrity check before they open, which
/// reads the whole file: milliseconds here, but seconds for a cache of a million
/// messages (docs/benchmarks.md). Larger ones are checked in the background.
const CHECK_AT_OPEN_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The file whose presence says that a background check found the cache damaged,
/// so the next open rebuilds it.
pub(crate) fn check_failed_marker(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.check-failed", path.display()))
}

fn open_checked(path: &Path) -> Result<Connection> {
    let marker = check_failed_marker(path);
    if marker.exists() {
        return Err(ClientError::Other(anyhow::anyhow!(
            "an integrity check of the previous run found the cache damaged"
        )));
    }
    let size = std::fs::metadata(path).map_or(0, |metadata| metadata.len());
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    if size <= CHECK_AT_OPEN_MAX_BYTES {
        integrity_check(&connection)?;
    } else {
        // Reading the schema still catches a file that is not a database at all.
        connection.query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| {
            row.get::<_, i64>(0)
        })?;
        spawn_background_check(path.to_path_buf(), marker);
    }
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut connection)?;
    Ok(connection)
}

fn integrity_check(connection: &Connection) -> Result<()> {
    let check: String = connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(ClientError::Other(anyhow::anyhow!(
            "integrity check failed: {check}"
        )));
    }
    Ok(())
}

/// Checks a large cache on a thread of its own; a failure leaves the marker that
/// makes the next open rebuild the cache.
fn spawn_background_check(path: PathBuf, marker: PathBuf) {
    std::thread::spawn(move || {
        let result = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(ClientError::from)
            .and_then(|connection| integrity_check(&connection));
        if let Err(error) = result {
            tracing::warn!(
                cache = %path.display(),
                %error,
                "the cache failed its integrity check; it is rebuilt at the next start"
            );
            let _ = std::fs::write(&marker, error.to_string());
        }
    });
}

fn migrate(connection: &mut Connection) -> Result<()> {
    let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if applied > MIGRATIONS.len() {
        return Err(ClientError::Other(anyhow::anyhow!(
            "the cache has schema version {applied}, newer than this client's {}",
            MIGRATIONS.len()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = write_transaction(connection)?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index + 1)?;
        transaction.commit()?;
    }
    Ok(())
}

/// Starts a write transaction that takes the write lock at once. A deferred one
/// that reads first fails with "database is locked", whatever the busy timeout,
/// when another process on the same profile (such as `roomler tail`) wrote between
/// its read and its first write.
fn write_transaction(connection: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

fn get_meta(connection: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    connection
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()
}

fn set_meta(connection: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Applies one event inside the caller's transaction.
fn apply(transaction: &Transaction, event: &Event, me: Uuid) -> Result<Vec<Change>> {
    let room_id = event.room_id;
    let messages_changed = || room_id.map(|room_id| vec![Change::MessagesChanged { room_id }]);
    match event.kind {
        EventKind::MessageCreated
        | EventKind::MessageEdited
        | EventKind::MessageDeleted
        | EventKind::MessagePinned
        | EventKind::MessageUnpinned => {
            let message: Message = serde_json::from_value(event.data.clone())?;
            if room_exists(transaction, message.room_id)? {
                upsert_message(transaction, &message)?;
                bump_last_seq(transaction, message.room_id, message.seq)?;
            }
            Ok(messages_changed().unwrap_or_default())
        }
        EventKind::ReactionAdded | EventKind::ReactionRemoved => {
            let Some(message_id) = event.data["message_id"].as_str() else {
                return Ok(Vec::new());
            };
            let data: Option<String> = transaction
                .query_row(
                    "SELECT data FROM messages WHERE id = ?1",
                    [message_id],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(data) = data {
                let mut message: Message = serde_json::from_str(&data)?;
                message.reactions = serde_json::from_value(event.data["reactions"].clone())?;
                upsert_message(transaction, &message)?;
            }
            Ok(messages_changed().unwrap_or_default())
        }
        EventKind::MemberJoined | EventKind::MemberRoleChanged => {
            let member: MemberEvent = serde_json::from_value(event.data.clone())?;
            let (Some(room_id), Some(member)) = (room_id, member.member) else {
                return Ok(Vec::new());
            };
            if member.user.id == me {
                set_role(transaction, room_id, Some(member.role))?;
            }
            if room_exists(transaction, room_id)? {
                upsert_member(transaction, room_id, &member)?;
            }
            Ok(vec![Change::RoomsChanged])
        }
        EventKind::MemberLeft | EventKind::MemberKicked | EventKind::MemberBanned => {
            let member: MemberEvent = serde_json::from_value(event.data.clone())?;
            let Some(room_id) = room_id else {
                return Ok(Vec::new());
            };
            if member.user_id == me {
                delete_room(transaction, &room_id.to_string())?;
            } else {
                transaction.execute(
                    "DELETE FROM members WHERE room_id = ?1 AND user_id = ?2",
                    params![room_id.to_string(), member.user_id.to_string()],
                )?;
            }
            Ok(vec![Change::RoomsChanged])
        }
        EventKind::RoomCreated | EventKind::RoomUpdated => {
            let mut room: Room = serde_json::from_value(event.data.clone())?;
            // Events carry no role; keep the one known, or infer it for new rooms.
            room.role = match cached_room(transaction, room.id)? {
                Some(cached) => cached.role,
                None if room.owner_id == Some(me) => Some(Role::Owner),
                None if room.kind == RoomKind::Direct => Some(Role::Member),
                None => None,
            };
            upsert_room(transaction, &room)?;
            Ok(vec![Change::RoomsChanged])
        }
        EventKind::RoomDeleted => {
            let deleted: DeletedEvent = serde_json::from_value(event.data.clone())?;
            delete_room(transaction, &deleted.id.to_string())?;
            Ok(vec![Change::RoomsChanged])
        }
        EventKind::UserUpdated => {
            if event.data["id"].as_str() == Some(me.to_string().as_str()) {
                set_meta(transaction, "profile", &event.data.to_string())?;
            }
            Ok(Vec::new())
        }
    }
}

fn room_exists(connection: &Connection, room_id: Uuid) -> rusqlite::Result<bool> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM rooms WHERE id = ?1",
            [room_id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn cached_room(connection: &Connection, room_id: Uuid) -> Result<Option<Room>> {
    let data: Option<String> = connection
        .query_row(
            "SELECT data FROM rooms WHERE id = ?1",
            [room_id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(data.map(|data| serde_json::from_str(&data)).transpose()?)
}

fn set_role(connection: &Connection, room_id: Uuid, role: Option<Role>) -> Result<()> {
    if let Some(mut room) = cached_room(connection, room_id)? {
        room.role = role;
        upsert_room(connection, &room)?;
    }
    Ok(())
}

fn bump_last_seq(connection: &Connection, room_id: Uuid, seq: i64) -> Result<()> {
    if let Some(mut room) = cached_room(connection, room_id)?
        && seq > room.last_seq
    {
        room.last_seq = seq;
        upsert_room(connection, &room)?;
    }
    Ok(())
}

fn upsert_room(connection: &Connection, room: &Room) -> Result<()> {
    connection.execute(
        "INSERT INTO rooms (id, path, parent_id, data) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET path = excluded.path, parent_id = excluded.parent_id,
                                       data = excluded.data",
        params![
            room.id.to_string(),
            room.path,
            room.parent_id.map(|id| id.to_string()),
            serde_json::to_string(room)?,
        ],
    )?;
    Ok(())
}

fn delete_room(connection: &Connection, room_id: &str) -> Result<()> {
    connection.execute(
        "DELETE FROM messages_fts WHERE rowid IN (SELECT rowid FROM messages WHERE room_id = ?1)",
        [room_id],
    )?;
    connection.execute("DELETE FROM rooms WHERE id = ?1", [room_id])?;
    Ok(())
}

fn upsert_member(connection: &Connection, room_id: Uuid, member: &Member) -> Result<()> {
    connection.execute(
        "INSERT INTO members (room_id, user_id, data) VALUES (?1, ?2, ?3)
         ON CONFLICT(room_id, user_id) DO UPDATE SET data = excluded.data",
        params![
            room_id.to_string(),
            member.user.id.to_string(),
            serde_json::to_string(member)?
        ],
    )?;
    Ok(())
}

/// Inserts or replaces a message and keeps its full-text row in step.
fn upsert_message(connection: &Connection, message: &Message) -> Result<()> {
    let existing: Option<i64> = connection
        .prepare_cached("SELECT rowid FROM messages WHERE id = ?1")?
        .query_row([message.id.to_string()], |row| row.get(0))
        .optional()?;
    let data = serde_json::to_string(message)?;
    let created_at = message.created_at.unix_timestamp().to_string();
    let rowid = match existing {
        Some(rowid) => {
            connection
                .prepare_cached(
                    "UPDATE messages SET body = ?1, deleted = ?2, data = ?3 WHERE rowid = ?4",
                )?
                .execute(params![message.body, message.deleted, data, rowid])?;
            connection
                .prepare_cached("DELETE FROM messages_fts WHERE rowid = ?1")?
                .execute([rowid])?;
            rowid
        }
        None => {
            connection
                .prepare_cached(
                    "INSERT INTO messages (id, room_id, seq, author, body, deleted, created_at, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    message.id.to_string(),
                    message.room_id.to_string(),
                    message.seq,
                    message.author.username,
                    message.body,
                    message.deleted,
                    created_at,
                    data,
                ])?;
            connection.last_insert_rowid()
        }
    };
    if !message.deleted {
        connection
            .prepare_cached("INSERT INTO messages_fts (rowid, body) VALUES (?1, ?2)")?
            .execute(params![rowid, message.body])?;
    }
    Ok(())
}
