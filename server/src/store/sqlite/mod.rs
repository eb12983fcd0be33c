//! The embedded SQLite backend: one database file in WAL mode.
//!
//! The SQL lives in synchronous functions, one file per area, that take a
//! connection or transaction; the [`Store`] implementation here runs them on
//! tokio's blocking pool. Writes go through one connection, serialised by a mutex,
//! inside `BEGIN IMMEDIATE` transactions; a busy timeout lets several server
//! processes share the file. Reads use a small pool of their own connections.

mod accounts;
mod events;
pub(crate) mod export;
mod files;
mod messages;
mod rooms;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use roomler_shared::model::{Member, Mention, Message, Role};
use roomler_shared::ws::Event;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;

/// Migrations in order; the database's `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

/// How long a write waits for another process's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read connections kept open; more are opened on demand and closed after use.
const IDLE_READERS: usize = 8;

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        let mut writer = open_connection(path, false)
            .with_context(|| format!("failed to open the database {}", path.display()))?;
        // SQLite gives the -wal and -shm files the database file's permissions.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("failed to make {} private", path.display()))?;
        }
        migrate(&mut writer)?;
        tracing::info!(database = %path.display(), "opened the SQLite store");
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on a read connection.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let _timer = crate::metrics::METRICS
            .store_seconds
            .with_label_values(&["read"])
            .start_timer();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap().pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&path, true).map_err(anyhow::Error::from)?,
            };
            let result = work(&connection);
            let mut idle = readers.lock().unwrap();
            if idle.len() < IDLE_READERS {
                idle.push(connection);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Other(error.into()))?
    }

    /// Runs `work` in an immediate write transaction, committed when it returns `Ok`.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        let _timer = crate::metrics::METRICS
            .store_seconds
            .with_label_values(&["write"])
            .start_timer();
        tokio::task::spawn_blocking(move || {
            let mut connection = writer.lock().unwrap();
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(anyhow::Error::from)?;
            let value = work(&transaction)?;
            transaction.commit().map_err(anyhow::Error::from)?;
            Ok(value)
        })
        .await
        .map_err(|error| StoreError::Other(error.into()))?
    }

    /// Copies the database into `target` while the server runs, with SQLite's online
    /// backup, for `roomler-server admin backup`.
    pub async fn backup(&self, target: PathBuf) -> anyhow::Result<()> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            // The copy goes to a file beside the target and is renamed over it at the end,
            // so a failed backup leaves no half-written file and an old target intact.
            let mut partial = target.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let _ = std::fs::remove_file(&partial);
            {
                let connection = writer.lock().unwrap();
                let mut destination = Connection::open(&partial)?;
                let backup = rusqlite::backup::Backup::new(&connection, &mut destination)?;
                backup.run_to_completion(256, Duration::from_millis(0), None)?;
            }
            std::fs::rename(&partial, &target)?;
            Ok(())
        })
        .await?
    }
}

fn open_connection(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    if !read_only {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable in WAL mode except for the last transactions on power loss.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
    }
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> anyhow::Result<()> {
    let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if applied > MIGRATIONS.len() {
        anyhow::bail!(
            "the database has schema version {applied}, newer than this server's {}; \
             run the newer server or restore a backup",
            MIGRATIONS.len()
        );
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = index + 1;
        let transaction = connection.transaction()?;
        transaction
            .execute_batch(migration)
            .with_context(|| format!("failed to apply schema migration {version}"))?;
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

// Conversions between SQLite values and domain values.

pub(crate) fn now_millis() -> i64 {
    to_millis(OffsetDateTime::now_utc())
}

pub(crate) fn to_millis(time: OffsetDateTime) -> i64 {
    (time.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_millis(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn parse_uuid(text: &str) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error))
    })
}

pub(crate) fn uuid_column(row: &rusqlite::Row, index: usize) -> rusqlite::Result<Uuid> {
    parse_uuid(&row.get::<_, String>(index)?)
}

pub(crate) fn optional_uuid_column(
    row: &rusqlite::Row,
    index: usize,
) -> rusqlite::Result<Option<Uuid>> {
    row.get::<_, Option<String>>(index)?
        .as_deref()
        .map(parse_uuid)
        .transpose()
}

/// Maps a UNIQUE constraint failure on `column` to `conflict`, and any other error to
/// an internal one.
pub(crate) fn unique_violation(error: rusqlite::Error, checks: &[(&str, Conflict)]) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error
        && failure.code == rusqlite::ErrorCode::ConstraintViolation
    {
        for (column, conflict) in checks {
            if message.contains(column) {
                return StoreError::Conflict(*conflict);
            }
        }
    }
    StoreError::Other(error.into())
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Other(error.into())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Other(error.into())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord> {
        self.write(move |tx| accounts::create_user(tx, &new)).await
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.read(move |conn| accounts::user_by_id(conn, id)).await
    }

    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>> {
        let login = login.to_string();
        self.read(move |conn| accounts::user_by_login(conn, &login))
            .await
    }

    async fn users_by_keys(&self, keys: &[String]) -> StoreResult<Vec<UserRecord>> {
        let keys = keys.to_vec();
        self.read(move |conn| accounts::users_by_keys(conn, &keys))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.read(accounts::list_users).await
    }

    async fn update_profile(
        &self,
        id: Uuid,
        display_name: Option<String>,
        avatar_file_id: Option<Uuid>,
    ) -> StoreResult<(UserRecord, Fanout)> {
        self.write(move |tx| accounts::update_profile(tx, id, display_name, avatar_file_id))
            .await
    }

    async fn set_password(&self, id: Uuid, password_hash: String) -> StoreResult<()> {
        self.write(move |tx| accounts::set_password(tx, id, &password_hash))
            .await
    }

    async fn set_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<()> {
        self.write(move |tx| accounts::set_disabled(tx, id, disabled))
            .await
    }

    async fn create_session(&self, token_hash: &str, user_id: Uuid) -> StoreResult<()> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| accounts::create_session(tx, &token_hash, user_id))
            .await
    }

    async fn session_user(&self, token_hash: &str) -> StoreResult<Option<UserRecord>> {
        let token_hash = token_hash.to_string();
        self.read(move |conn| accounts::session_user(conn, &token_hash))
            .await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| accounts::delete_session(tx, &token_hash))
            .await
    }

    async fn create_room(&self, new: NewRoom) -> StoreResult<(RoomRecord, Fanout)> {
        self.write(move |tx| rooms::create_room(tx, &new)).await
    }

    async fn create_direct(&self, new: NewDirect) -> StoreResult<(RoomRecord, Option<Fanout>)> {
        self.write(move |tx| rooms::create_direct(tx, &new)).await
    }

    async fn room_by_id(&self, id: Uuid) -> StoreResult<Option<RoomRecord>> {
        self.read(move |conn| rooms::room_by_id(conn, id)).await
    }

    async fn room_by_path(&self, path: &str) -> StoreResult<Option<RoomRecord>> {
        let path = path.to_string();
        self.read(move |conn| rooms::room_by_path(conn, &path))
            .await
    }

    async fn rooms_of_user(&self, user_id: Uuid) -> StoreResult<Vec<(RoomRecord, Role)>> {
        self.read(move |conn| rooms::rooms_of_user(conn, user_id))
            .await
    }

    async fn all_rooms(&self) -> StoreResult<Vec<RoomRecord>> {
        self.read(rooms::all_rooms).await
    }

    async fn directory(&self, query: &str, limit: u32) -> StoreResult<Vec<RoomRecord>> {
        let query = query.to_string();
        self.read(move |conn| rooms::directory(conn, &query, limit))
            .await
    }

    async fn child_rooms(&self, room_id: Uuid) -> StoreResult<Vec<RoomRecord>> {
        self.read(move |conn| rooms::child_rooms(conn, room_id))
            .await
    }

    async fn membership(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<Option<Membership>> {
        self.read(move |conn| rooms::membership(conn, room_id, user_id))
            .await
    }

    async fn members(&self, room_id: Uuid) -> StoreResult<Vec<Member>> {
        self.read(move |conn| rooms::members(conn, room_id)).await
    }

    async fn is_banned(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        self.read(move |conn| rooms::is_banned(conn, room_id, user_id))
            .await
    }

    async fn unban(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        self.write(move |tx| rooms::unban(tx, room_id, user_id))
            .await
    }

    async fn bans(&self, room_id: Uuid) -> StoreResult<Vec<BanRecord>> {
        self.read(move |conn| rooms::bans(conn, room_id)).await
    }

    async fn add_member(&self, room_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<Fanout> {
        self.write(move |tx| rooms::add_member(tx, room_id, user_id, role))
            .await
    }

    async fn remove_member(
        &self,
        room_id: Uuid,
        user_id: Uuid,
        departure: Departure,
    ) -> StoreResult<Vec<Fanout>> {
        self.write(move |tx| rooms::remove_member(tx, room_id, user_id, departure))
            .await
    }

    async fn set_role(&self, room_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<Fanout> {
        self.write(move |tx| rooms::set_role(tx, room_id, user_id, role))
            .await
    }

    async fn transfer_ownership(
        &self,
        room_id: Uuid,
        from: Uuid,
        to: Uuid,
    ) -> StoreResult<Vec<Fanout>> {
        self.write(move |tx| rooms::transfer_ownership(tx, room_id, from, to))
            .await
    }

    async fn update_room(
        &self,
        room_id: Uuid,
        changes: RoomChanges,
    ) -> StoreResult<(RoomRecord, Vec<Fanout>)> {
        self.write(move |tx| rooms::update_room(tx, room_id, changes))
            .await
    }

    async fn delete_room(&self, room_id: Uuid) -> StoreResult<Vec<Fanout>> {
        self.write(move |tx| rooms::delete_room(tx, room_id)).await
    }

    async fn create_invite(&self, invite: InviteRecord) -> StoreResult<()> {
        self.write(move |tx| rooms::create_invite(tx, &invite))
            .await
    }

    async fn find_invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>> {
        let code_hash = code_hash.to_string();
        self.read(move |conn| rooms::find_invite(conn, &code_hash))
            .await
    }

    async fn redeem_invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>> {
        let code_hash = code_hash.to_string();
        self.write(move |tx| rooms::redeem_invite(tx, &code_hash))
            .await
    }

    async fn post_message(&self, new: NewMessage) -> StoreResult<Posted> {
        self.write(move |tx| messages::post_message(tx, new)).await
    }

    async fn message_meta(&self, id: Uuid) -> StoreResult<Option<MessageMeta>> {
        self.read(move |conn| messages::message_meta(conn, id))
            .await
    }

    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        self.read(move |conn| messages::message(conn, id)).await
    }

    async fn history(&self, room_id: Uuid, page: HistoryPage) -> StoreResult<Vec<Message>> {
        self.read(move |conn| messages::history(conn, room_id, page))
            .await
    }

    async fn thread(&self, parent_id: Uuid, limit: u32) -> StoreResult<Vec<Message>> {
        self.read(move |conn| messages::thread(conn, parent_id, limit))
            .await
    }

    async fn pins(&self, room_id: Uuid) -> StoreResult<Vec<Message>> {
        self.read(move |conn| messages::pins(conn, room_id)).await
    }

    async fn edit_message(
        &self,
        id: Uuid,
        body: String,
        html: String,
        mentions: Vec<Mention>,
    ) -> StoreResult<(Message, Fanout)> {
        self.write(move |tx| messages::edit_message(tx, id, &body, &html, &mentions))
            .await
    }

    async fn delete_message(&self, id: Uuid) -> StoreResult<Fanout> {
        self.write(move |tx| messages::delete_message(tx, id)).await
    }

    async fn set_reaction(
        &self,
        message_id: Uuid,
        user_id: Uuid,
        emoji: &str,
        present: bool,
    ) -> StoreResult<Option<Fanout>> {
        let emoji = emoji.to_string();
        self.write(move |tx| messages::set_reaction(tx, message_id, user_id, &emoji, present))
            .await
    }

    async fn set_pin(&self, message_id: Uuid, by: Option<Uuid>) -> StoreResult<(Message, Fanout)> {
        self.write(move |tx| messages::set_pin(tx, message_id, by))
            .await
    }

    async fn search(
        &self,
        user_id: Uuid,
        query: &str,
        room_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<SearchRow>> {
        let query = query.to_string();
        self.read(move |conn| messages::search(conn, user_id, &query, room_id, limit))
            .await
    }

    async fn create_file(&self, file: FileRecord) -> StoreResult<()> {
        self.write(move |tx| files::create_file(tx, &file)).await
    }

    async fn file(&self, id: Uuid) -> StoreResult<Option<FileRecord>> {
        self.read(move |conn| files::file(conn, id)).await
    }

    async fn room_files(&self, room_id: Uuid, limit: u32) -> StoreResult<Vec<FileRecord>> {
        self.read(move |conn| files::room_files(conn, room_id, limit))
            .await
    }

    async fn stream_bounds(&self, user_id: Uuid) -> StoreResult<StreamBounds> {
        self.read(move |conn| events::stream_bounds(conn, user_id))
            .await
    }

    async fn events_since(&self, user_id: Uuid, since: i64, limit: u32) -> StoreResult<Vec<Event>> {
        self.read(move |conn| events::events_since(conn, user_id, since, limit))
            .await
    }

    async fn prune_events(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| events::prune(tx, cutoff)).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        self.read(events::counts).await
    }
}
