//! Read access to every table, in key order and in batches, for
//! `roomler-server migrate`.

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

/// A table as the migration reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ExportTable {
    Users,
    Sessions,
    Rooms,
    Memberships,
    Bans,
    Invites,
    Files,
    Messages,
    Reactions,
    Attachments,
    Events,
    UserEvents,
}

impl ExportTable {
    pub(crate) const ALL: [ExportTable; 12] = [
        ExportTable::Users,
        ExportTable::Sessions,
        ExportTable::Rooms,
        ExportTable::Memberships,
        ExportTable::Bans,
        ExportTable::Invites,
        ExportTable::Files,
        ExportTable::Messages,
        ExportTable::Reactions,
        ExportTable::Attachments,
        ExportTable::Events,
        ExportTable::UserEvents,
    ];

    /// Returns the table's name in the schema.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ExportTable::Users => "users",
            ExportTable::Sessions => "sessions",
            ExportTable::Rooms => "rooms",
            ExportTable::Memberships => "memberships",
            ExportTable::Bans => "bans",
            ExportTable::Invites => "invites",
            ExportTable::Files => "files",
            ExportTable::Messages => "messages",
            ExportTable::Reactions => "reactions",
            ExportTable::Attachments => "message_attachments",
            ExportTable::Events => "events",
            ExportTable::UserEvents => "user_events",
        }
    }

    /// Returns the columns to read, the `FROM` clause, and the key that orders the rows.
    /// Reactions and attachments carry their message's room, and deliveries their
    /// event's room and time, which the MongoDB documents keep alongside.
    fn query(self) -> (&'static str, &'static str, &'static [&'static str]) {
        match self {
            ExportTable::Users => (
                "id, username, username_key, display_name, email, password_hash, \
                 avatar_file_id, disabled, event_seq, created_at",
                "users",
                &["rowid"],
            ),
            ExportTable::Sessions => (
                "token_hash, user_id, created_at, last_used_at",
                "sessions",
                &["rowid"],
            ),
            ExportTable::Rooms => (
                "id, name, path, kind, parent_id, topic, owner_id, password_hash, direct_key, \
                 last_seq, created_at",
                "rooms",
                &["rowid"],
            ),
            ExportTable::Memberships => (
                "room_id, user_id, role, joined_at",
                "memberships",
                &["rowid"],
            ),
            ExportTable::Bans => ("room_id, user_id, banned_by, banned_at", "bans", &["rowid"]),
            ExportTable::Invites => (
                "code_hash, room_id, created_by, expires_at, single_use, uses, created_at",
                "invites",
                &["rowid"],
            ),
            ExportTable::Files => (
                "id, sha256, size, mime, name, uploader_id, room_id, thumbnail_sha256, \
                 created_at",
                "files",
                &["rowid"],
            ),
            ExportTable::Messages => (
                "id, room_id, seq, author_id, body, html, mentions, reply_to, client_id, \
                 pinned_by, pinned_at, deleted, created_at, edited_at",
                "messages",
                &["rowid"],
            ),
            ExportTable::Reactions => (
                "r.message_id AS message_id, r.user_id AS user_id, r.emoji AS emoji, \
                 r.created_at AS created_at, m.room_id AS room_id",
                "reactions r JOIN messages m ON m.id = r.message_id",
                &["r.rowid"],
            ),
            ExportTable::Attachments => (
                "a.message_id AS message_id, a.file_id AS file_id, a.position AS position, \
                 m.room_id AS room_id",
                "message_attachments a JOIN messages m ON m.id = a.message_id",
                &["a.rowid"],
            ),
            ExportTable::Events => (
                "id, kind, room_id, message_id, data, created_at",
                "events",
                &["rowid"],
            ),
            // WITHOUT ROWID: ordered by its primary key.
            ExportTable::UserEvents => (
                "ue.user_id AS user_id, ue.seq AS seq, ue.event_id AS event_id, \
                 e.room_id AS room_id, e.created_at AS created_at",
                "user_events ue JOIN events e ON e.id = ue.event_id",
                &["ue.user_id", "ue.seq"],
            ),
        }
    }

    /// Returns the position before the table's first row.
    pub(crate) fn start(self) -> Vec<Value> {
        self.query()
            .2
            .iter()
            .map(|column| match *column {
                "ue.user_id" => Value::Text(String::new()),
                _ => Value::Integer(i64::MIN),
            })
            .collect()
    }
}

/// One row: its key, for resuming after it, and its columns by name.
#[derive(Debug, Clone)]
pub(crate) struct ExportRow {
    pub(crate) key: Vec<Value>,
    table: ExportTable,
    columns: Vec<(String, Value)>,
}

impl ExportRow {
    fn value(&self, column: &str) -> anyhow::Result<&Value> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, value)| value)
            .with_context(|| format!("{} has no column {column}", self.table.name()))
    }

    pub(crate) fn text(&self, column: &str) -> anyhow::Result<String> {
        match self.value(column)? {
            Value::Text(text) => Ok(text.clone()),
            other => bail!("{}.{column} is {other:?}, expected text", self.table.name()),
        }
    }

    pub(crate) fn optional_text(&self, column: &str) -> anyhow::Result<Option<String>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            _ => self.text(column).map(Some),
        }
    }

    pub(crate) fn integer(&self, column: &str) -> anyhow::Result<i64> {
        match self.value(column)? {
            Value::Integer(value) => Ok(*value),
            other => bail!(
                "{}.{column} is {other:?}, expected an integer",
                self.table.name()
            ),
        }
    }

    pub(crate) fn optional_integer(&self, column: &str) -> anyhow::Result<Option<i64>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            _ => self.integer(column).map(Some),
        }
    }

    pub(crate) fn boolean(&self, column: &str) -> anyhow::Result<bool> {
        Ok(self.integer(column)? != 0)
    }
}

/// Opens the database at `path` read-only, checking that its schema is the one this
/// build writes.
pub(crate) fn open_export(path: &Path) -> anyhow::Result<Connection> {
    if !path.exists() {
        bail!("the SQLite database {} does not exist", path.display());
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("failed to open the SQLite database {}", path.display()))?;
    connection.busy_timeout(super::BUSY_TIMEOUT)?;
    let version: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version != super::MIGRATIONS.len() {
        bail!(
            "the SQLite database {} has schema version {version}, but this roomler-server \
             reads version {}; start this version's server on it once, which migrates it, \
             then run the migration again",
            path.display(),
            super::MIGRATIONS.len()
        );
    }
    Ok(connection)
}

/// Reads up to `limit` rows of `table` whose key comes after `after`, in key order.
pub(crate) fn export_batch(
    connection: &Connection,
    table: ExportTable,
    after: &[Value],
    limit: u32,
) -> anyhow::Result<Vec<ExportRow>> {
    let (columns, from, key) = table.query();
    let key_list = key.join(", ");
    let placeholders = (1..=key.len())
        .map(|index| format!("?{index}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {key_list}, {columns} FROM {from} WHERE ({key_list}) > ({placeholders}) \
         ORDER BY {key_list} LIMIT {limit}"
    );
    let mut statement = connection
        .prepare(&sql)
        .with_context(|| format!("failed to read the table {}", table.name()))?;
    let names: Vec<String> = statement
        .column_names()
        .iter()
        .skip(key.len())
        .map(|name| name.to_string())
        .collect();
    let mut rows = statement.query(rusqlite::params_from_iter(after.iter()))?;
    let mut batch = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(key.len() + names.len());
        for index in 0..key.len() + names.len() {
            values.push(row.get::<_, Value>(index)?);
        }
        let columns = names
            .iter()
            .cloned()
            .zip(values.split_off(key.len()))
            .collect();
        batch.push(ExportRow {
            key: values,
            table,
            columns,
        });
    }
    Ok(batch)
}

/// Counts the rows in `table`.
pub(crate) fn export_count(connection: &Connection, table: ExportTable) -> anyhow::Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name());
    let count: i64 = connection.query_row(&sql, [], |row| row.get(0))?;
    Ok(count as u64)
}
