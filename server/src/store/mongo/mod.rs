//! The MongoDB backend, on the official `mongodb` driver (3.x, tokio runtime).
//!
//! NOTE: not run against a MongoDB server in this repository's CI; the conformance
//! suite (`server/tests/store`) runs it when ROOMLER_TEST_MONGODB_URL is set.
//!
//! Each table of the SQLite backend is a collection here (see [`documents`]), with
//! UUIDs stored as text in `_id` and times as BSON dates. Every change that the SQLite
//! backend makes in one transaction runs here in one multi-document transaction, so
//! the server must be a replica set (a single-node one is enough) or a sharded
//! cluster; [`MongoStore::open`] rejects a standalone server. It checks with the
//! `hello` command, which MongoDB 5.0 and newer support (some earlier releases lack
//! it).
//!
//! A room's message sequence numbers come from `$inc` on the room document and a
//! user's event sequence numbers from `$inc` on the user document, both inside the
//! transaction. Two writers on different server replicas that touch the same document
//! conflict; MongoDB aborts one transaction, and [`MongoStore::transaction`] runs it
//! again, so no number is handed out twice and none is skipped.

mod accounts;
pub(crate) mod documents;
mod events;
mod files;
mod messages;
mod rooms;
mod snippet;

use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use mongodb::bson::{Document, doc};
use mongodb::error::{
    ErrorKind, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT, WriteFailure,
};
use mongodb::options::{ClientOptions, IndexOptions, ReadConcern, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel, SessionCursor};
use roomler_shared::model::{Member, Mention, Message, Role};
use roomler_shared::ws::Event;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

use self::documents::*;
use super::*;

/// The database used when the connection string names none.
const DEFAULT_DATABASE: &str = "roomler";

/// How long a transaction is retried after transient errors before it fails; the same
/// limit as the driver's own `StartTransaction::and_run`.
const TRANSACTION_RETRY_LIMIT: Duration = Duration::from_secs(120);

/// The MongoDB error code of a unique index violation.
const DUPLICATE_KEY: i32 = 11000;

pub struct MongoStore {
    client: Client,
    db: Db,
}

/// Typed handles of every collection of one database.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) database: Database,
    pub(crate) users: Collection<UserDoc>,
    pub(crate) sessions: Collection<SessionDoc>,
    pub(crate) rooms: Collection<RoomDoc>,
    pub(crate) memberships: Collection<MembershipDoc>,
    pub(crate) bans: Collection<BanDoc>,
    pub(crate) invites: Collection<InviteDoc>,
    pub(crate) files: Collection<FileDoc>,
    pub(crate) messages: Collection<MessageDoc>,
    pub(crate) reactions: Collection<ReactionDoc>,
    pub(crate) attachments: Collection<AttachmentDoc>,
    pub(crate) events: Collection<EventDoc>,
    pub(crate) user_events: Collection<UserEventDoc>,
}

impl Db {
    fn new(database: Database) -> Self {
        Db {
            users: database.collection(collections::USERS),
            sessions: database.collection(collections::SESSIONS),
            rooms: database.collection(collections::ROOMS),
            memberships: database.collection(collections::MEMBERSHIPS),
            bans: database.collection(collections::BANS),
            invites: database.collection(collections::INVITES),
            files: database.collection(collections::FILES),
            messages: database.collection(collections::MESSAGES),
            reactions: database.collection(collections::REACTIONS),
            attachments: database.collection(collections::ATTACHMENTS),
            events: database.collection(collections::EVENTS),
            user_events: database.collection(collections::USER_EVENTS),
            database,
        }
    }
}

/// Collection names, one per table of the SQLite backend.
pub(crate) mod collections {
    pub(crate) const USERS: &str = "users";
    pub(crate) const SESSIONS: &str = "sessions";
    pub(crate) const ROOMS: &str = "rooms";
    pub(crate) const MEMBERSHIPS: &str = "memberships";
    pub(crate) const BANS: &str = "bans";
    pub(crate) const INVITES: &str = "invites";
    pub(crate) const FILES: &str = "files";
    pub(crate) const MESSAGES: &str = "messages";
    pub(crate) const REACTIONS: &str = "reactions";
    pub(crate) const ATTACHMENTS: &str = "attachments";
    pub(crate) const EVENTS: &str = "events";
    pub(crate) const USER_EVENTS: &str = "user_events";
}

/// Index names, which duplicate-key errors report and [`conflict`] matches.
mod index {
    pub(super) const USERNAME_KEY: &str = "username_key";
    pub(super) const EMAIL: &str = "email";
    pub(super) const PATH: &str = "path";
    pub(super) const DIRECT_KEY: &str = "direct_key";
    pub(super) const ROOM_SEQ: &str = "room_seq";
    pub(super) const AUTHOR_CLIENT_ID: &str = "author_client_id";
    /// MongoDB's own name for the index of `_id`.
    pub(super) const ID: &str = "_id_";
}

impl MongoStore {
    /// Connects to `url`, checks that the server supports transactions, and creates the
    /// collections and indexes. The database is the one the URL names, `roomler` when
    /// it names none.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_database(url, None).await
    }

    /// Opens the store like [`MongoStore::open`], but in `database` when it is given.
    pub async fn open_database(url: &str, database: Option<&str>) -> anyhow::Result<Self> {
        let redacted = redact_url(url);
        let mut options = ClientOptions::parse(url).await.with_context(|| {
            format!(
                "invalid MongoDB connection string {redacted}; expected \
                 mongodb://HOST:PORT/DATABASE?replicaSet=NAME"
            )
        })?;
        if options.app_name.is_none() {
            options.app_name = Some("roomler-server".to_string());
        }
        let database = database
            .map(str::to_string)
            .or_else(|| options.default_database.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
        let client = Client::with_options(options)
            .with_context(|| format!("failed to set up the MongoDB client for {redacted}"))?;

        check_transactions(&client)
            .await
            .with_context(|| format!("failed to open the MongoDB store at {redacted}"))?;
        let db = Db::new(client.database(&database));
        create_indexes(&db).await.with_context(|| {
            format!(
                "failed to create the indexes of the MongoDB database {database:?} at {redacted}"
            )
        })?;
        tracing::info!(url = %redacted, database, "opened the MongoDB store");
        Ok(MongoStore { client, db })
    }

    /// Opens the store like [`MongoStore::open`], for synchronous callers such as
    /// `AppState::open`.
    ///
    /// The driver's background tasks live on the calling tokio runtime, so this blocks
    /// the current worker thread with `block_in_place`, which needs tokio's
    /// multi-thread runtime (the default of `#[tokio::main]`).
    pub fn open_blocking(url: &str) -> anyhow::Result<Self> {
        let handle = tokio::runtime::Handle::try_current().context(
            "the MongoDB store must be opened inside a tokio runtime; open it with \
             MongoStore::open from async code",
        )?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            anyhow::bail!(
                "the MongoDB store cannot be opened synchronously on tokio's current-thread \
                 runtime; use the multi-thread runtime or MongoStore::open"
            );
        }
        tokio::task::block_in_place(|| handle.block_on(Self::open(url)))
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Starts a session for reads outside a transaction.
    async fn session(&self) -> StoreResult<ClientSession> {
        Ok(self.client.start_session().await?)
    }

    /// Runs `work` in a transaction and commits it.
    ///
    /// A transaction that fails with an error MongoDB labels transient, such as a write
    /// conflict with a concurrent transaction, runs again from the start after a short
    /// random backoff, for up to [`TRANSACTION_RETRY_LIMIT`]. So `work` must not keep
    /// state between runs. A commit whose outcome is unknown is retried alone.
    async fn transaction<T, F>(&self, mut work: F) -> StoreResult<T>
    where
        T: Send,
        F: for<'s> FnMut(&'s mut ClientSession, &'s Db) -> BoxFuture<'s, StoreResult<T>> + Send,
    {
        let mut session = self.session().await?;
        let started = Instant::now();
        let mut attempt = 0u32;
        'transaction: loop {
            if attempt > 0 {
                let backoff = retry_backoff(attempt);
                if started.elapsed() + backoff >= TRANSACTION_RETRY_LIMIT {
                    tracing::warn!(attempts = attempt, "gave up retrying a MongoDB transaction");
                    return Err(anyhow::anyhow!(
                        "a MongoDB transaction kept conflicting with other writes for {} \
                         seconds; try again",
                        TRANSACTION_RETRY_LIMIT.as_secs()
                    )
                    .into());
                }
                tokio::time::sleep(backoff).await;
            }
            attempt += 1;

            session
                .start_transaction()
                .read_concern(ReadConcern::snapshot())
                .write_concern(WriteConcern::majority())
                .await?;
            let value = match work(&mut session, &self.db).await {
                Ok(value) => value,
                Err(error) => {
                    // The server may have aborted already; the driver ignores that reply.
                    if let Err(abort_error) = session.abort_transaction().await {
                        tracing::debug!(%abort_error, "failed to abort a MongoDB transaction");
                    }
                    if has_label(&error, TRANSIENT_TRANSACTION_ERROR) {
                        tracing::debug!(attempt, %error, "retrying a MongoDB transaction");
                        continue 'transaction;
                    }
                    return Err(error);
                }
            };

            loop {
                match session.commit_transaction().await {
                    Ok(()) => return Ok(value),
                    Err(error)
                        if error.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                            && started.elapsed() < TRANSACTION_RETRY_LIMIT =>
                    {
                        tracing::debug!(%error, "retrying the commit of a MongoDB transaction");
                    }
                    Err(error) if error.contains_label(TRANSIENT_TRANSACTION_ERROR) => {
                        tracing::debug!(attempt, %error, "retrying a MongoDB transaction");
                        continue 'transaction;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
}

/// A random wait that grows 1.5 times per attempt from 5 ms up to 500 ms, as the
/// driver's own transaction helper does, so that conflicting writers spread out.
fn retry_backoff(attempt: u32) -> Duration {
    let jitter: f64 = rand::random_range(0.0..1.0);
    let millis = (jitter * 5.0 * 1.5f64.powi(attempt as i32)).min(jitter * 500.0);
    Duration::from_secs_f64(millis / 1000.0)
}

/// Fails unless the server is a replica set member or a `mongos`, the deployments on
/// which MongoDB runs multi-document transactions.
async fn check_transactions(client: &Client) -> anyhow::Result<()> {
    let hello = client
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .context(
            "the server did not answer; check that it runs and that the connection string \
             (DB_CONN, or --to of migrate) names it",
        )?;
    let replica_set = hello.get_str("setName").is_ok();
    let mongos = hello.get_str("msg") == Ok("isdbgrid");
    if !replica_set && !mongos {
        anyhow::bail!(
            "the server is a standalone mongod, which cannot run transactions; Roomler \
             needs a replica set: start mongod with --replSet rs0, run rs.initiate() once, \
             and add ?replicaSet=rs0 to the connection string"
        );
    }
    Ok(())
}

async fn create_indexes(db: &Db) -> mongodb::error::Result<()> {
    let string = doc! { "$type": "string" };
    db.users
        .create_indexes([
            unique(doc! { "username_key": 1 }, index::USERNAME_KEY),
            unique(doc! { "email": 1 }, index::EMAIL),
        ])
        .await?;

    db.sessions
        .create_index(plain(doc! { "user_id": 1 }, "user_id"))
        .await?;

    db.rooms
        .create_indexes([
            unique(doc! { "path": 1 }, index::PATH),
            // Only two-person direct rooms have a key; the others store null.
            partial_unique(
                doc! { "direct_key": 1 },
                index::DIRECT_KEY,
                doc! { "direct_key": string.clone() },
            ),
            plain(doc! { "parent_id": 1 }, "parent_id"),
            plain(doc! { "kind": 1 }, "kind"),
        ])
        .await?;

    db.memberships
        .create_indexes([
            plain(doc! { "room_id": 1 }, "room_id"),
            plain(doc! { "user_id": 1 }, "user_id"),
        ])
        .await?;

    db.bans
        .create_index(plain(doc! { "room_id": 1 }, "room_id"))
        .await?;

    db.invites
        .create_index(plain(doc! { "room_id": 1 }, "room_id"))
        .await?;

    db.files
        .create_index(plain(
            doc! { "room_id": 1, "created_at": -1 },
            "room_created",
        ))
        .await?;

    db.messages
        .create_indexes([
            unique(doc! { "room_id": 1, "seq": 1 }, index::ROOM_SEQ),
            // Messages copied from SQLite may have no client_id; those are not unique.
            partial_unique(
                doc! { "author_id": 1, "client_id": 1 },
                index::AUTHOR_CLIENT_ID,
                doc! { "client_id": string.clone() },
            ),
            // The language "none" matches whole words without stemming or stop words,
            // like the SQLite backend's unicode61 tokenizer.
            IndexModel::builder()
                .keys(doc! { "body": "text" })
                .options(
                    IndexOptions::builder()
                        .name("body_text".to_string())
                        .default_language("none".to_string())
                        .build(),
                )
                .build(),
            partial(
                doc! { "reply_to": 1 },
                "reply_to",
                doc! { "reply_to": string.clone() },
            ),
            partial(
                doc! { "room_id": 1, "pinned_at": -1 },
                "room_pins",
                doc! { "pinned_at": { "$type": "date" } },
            ),
        ])
        .await?;

    db.reactions
        .create_indexes([
            plain(doc! { "message_id": 1, "created_at": 1 }, "message_id"),
            plain(doc! { "room_id": 1 }, "room_id"),
        ])
        .await?;

    db.attachments
        .create_indexes([
            plain(doc! { "message_id": 1, "position": 1 }, "message_id"),
            plain(doc! { "file_id": 1 }, "file_id"),
            plain(doc! { "room_id": 1 }, "room_id"),
        ])
        .await?;

    db.events
        .create_indexes([
            partial(
                doc! { "message_id": 1 },
                "message_id",
                doc! { "message_id": string.clone() },
            ),
            plain(doc! { "room_id": 1 }, "room_id"),
            plain(doc! { "created_at": 1 }, "created_at"),
        ])
        .await?;

    db.user_events
        .create_indexes([
            unique(doc! { "user_id": 1, "seq": 1 }, "user_seq"),
            plain(doc! { "room_id": 1 }, "room_id"),
            plain(doc! { "created_at": 1 }, "created_at"),
        ])
        .await?;
    Ok(())
}

fn plain(keys: Document, name: &str) -> IndexModel {
    let options = IndexOptions::builder().name(name.to_string()).build();
    IndexModel::builder().keys(keys).options(options).build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    let options = IndexOptions::builder()
        .name(name.to_string())
        .unique(true)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

fn partial(keys: Document, name: &str, filter: Document) -> IndexModel {
    let options = IndexOptions::builder()
        .name(name.to_string())
        .partial_filter_expression(filter)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

fn partial_unique(keys: Document, name: &str, filter: Document) -> IndexModel {
    let options = IndexOptions::builder()
        .name(name.to_string())
        .unique(true)
        .partial_filter_expression(filter)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

/// Returns the connection string with its password replaced by `***`, for messages
/// and logs.
///
/// Everything between the user name and the last `@` is masked, so a password with an
/// unescaped `@`, `/` or `?` in it is hidden too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a connection string without a scheme)".to_string();
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let (userinfo, hosts) = rest.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{hosts}"),
        None => url.to_string(),
    }
}

// Errors.

impl From<mongodb::error::Error> for StoreError {
    fn from(error: mongodb::error::Error) -> Self {
        StoreError::Other(error.into())
    }
}

impl From<mongodb::bson::ser::Error> for StoreError {
    fn from(error: mongodb::bson::ser::Error) -> Self {
        StoreError::Other(error.into())
    }
}

impl From<mongodb::bson::de::Error> for StoreError {
    fn from(error: mongodb::bson::de::Error) -> Self {
        StoreError::Other(error.into())
    }
}

/// Checks whether a store error is a MongoDB error with `label`.
fn has_label(error: &StoreError, label: &str) -> bool {
    match error {
        StoreError::Other(error) => error
            .downcast_ref::<mongodb::error::Error>()
            .is_some_and(|error| error.contains_label(label)),
        StoreError::Conflict(_) => false,
    }
}

/// Returns the name of the unique index that `error` violated, if it is a
/// duplicate-key error.
pub(crate) fn duplicate_key_index(error: &mongodb::error::Error) -> Option<String> {
    let message = match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(write)) if write.code == DUPLICATE_KEY => {
            &write.message
        }
        ErrorKind::Command(command) if command.code == DUPLICATE_KEY => &command.message,
        ErrorKind::InsertMany(insert) => {
            let errors = insert.write_errors.as_deref().unwrap_or_default();
            &errors.iter().find(|e| e.code == DUPLICATE_KEY)?.message
        }
        _ => return None,
    };
    index_in_message(message)
}

/// Extracts the index name from a server message such as
/// `E11000 duplicate key error collection: roomler.users index: email dup key: { … }`.
pub(crate) fn index_in_message(message: &str) -> Option<String> {
    let (_, rest) = message.split_once(" index: ")?;
    let name = rest.split_whitespace().next()?;
    Some(name.to_string())
}

/// Maps a violation of one of the `checks` indexes to its conflict, and any other error
/// to an internal one.
fn conflict(error: mongodb::error::Error, checks: &[(&str, Conflict)]) -> StoreError {
    if let Some(index) = duplicate_key_index(&error) {
        for (name, conflict) in checks {
            if index == *name {
                return StoreError::Conflict(*conflict);
            }
        }
    }
    error.into()
}

/// Checks whether `error` is a duplicate-key error on `index_name`.
fn is_duplicate(error: &StoreError, index_name: &str) -> bool {
    match error {
        StoreError::Other(error) => error
            .downcast_ref::<mongodb::error::Error>()
            .and_then(duplicate_key_index)
            .is_some_and(|index| index == index_name),
        StoreError::Conflict(_) => false,
    }
}

// Helpers shared by the areas.

/// Reads every document of a cursor opened in `session`.
async fn collect<T>(
    mut cursor: SessionCursor<T>,
    session: &mut ClientSession,
) -> StoreResult<Vec<T>>
where
    T: DeserializeOwned + Send + Sync + Unpin,
{
    let mut items = Vec::new();
    while let Some(item) = cursor.next(session).await {
        items.push(item?);
    }
    Ok(items)
}

/// `limit` as MongoDB takes it, or `None` for 0: MongoDB reads 0 as "no limit", but
/// the store's callers mean "nothing".
fn limit_of(limit: u32) -> Option<i64> {
    (limit > 0).then_some(i64::from(limit))
}

#[async_trait]
impl Store for MongoStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord> {
        let mut session = self.session().await?;
        accounts::create_user(&mut session, &self.db, new).await
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        let mut session = self.session().await?;
        accounts::user_by_id(&mut session, &self.db, id).await
    }

    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>> {
        let mut session = self.session().await?;
        accounts::user_by_login(&mut session, &self.db, login).await
    }

    async fn users_by_keys(&self, keys: &[String]) -> StoreResult<Vec<UserRecord>> {
        let mut session = self.session().await?;
        accounts::users_by_keys(&mut session, &self.db, keys).await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let mut session = self.session().await?;
        accounts::list_users(&mut session, &self.db).await
    }

    async fn update_profile(
        &self,
        id: Uuid,
        display_name: Option<String>,
        avatar_file_id: Option<Uuid>,
    ) -> StoreResult<(UserRecord, Fanout)> {
        self.transaction(move |s, db| {
            accounts::update_profile(s, db, id, display_name.clone(), avatar_file_id).boxed()
        })
        .await
    }

    async fn set_password(&self, id: Uuid, password_hash: String) -> StoreResult<()> {
        self.transaction(move |s, db| {
            accounts::set_password(s, db, id, password_hash.clone()).boxed()
        })
        .await
    }

    async fn set_disabled(&self, id: Uuid, disabled: bool) -> StoreResult<()> {
        self.transaction(move |s, db| accounts::set_disabled(s, db, id, disabled).boxed())
            .await
    }

    async fn create_session(&self, token_hash: &str, user_id: Uuid) -> StoreResult<()> {
        let mut session = self.session().await?;
        accounts::create_session(&mut session, &self.db, token_hash, user_id).await
    }

    async fn session_user(&self, token_hash: &str) -> StoreResult<Option<UserRecord>> {
        let mut session = self.session().await?;
        accounts::session_user(&mut session, &self.db, token_hash).await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let mut session = self.session().await?;
        accounts::delete_session(&mut session, &self.db, token_hash).await
    }

    async fn create_room(&self, new: NewRoom) -> StoreResult<(RoomRecord, Fanout)> {
        self.transaction(move |s, db| rooms::create_room(s, db, new.clone()).boxed())
            .await
    }

    async fn create_direct(&self, new: NewDirect) -> StoreResult<(RoomRecord, Option<Fanout>)> {
        let key = rooms::direct_key(&new.member_ids);
        let created = self
            .transaction(|s, db| rooms::create_direct(s, db, new.clone()).boxed())
            .await;
        match (created, key) {
            // A concurrent request created the same pair's room first.
            (Err(error), Some(key)) if is_duplicate(&error, index::DIRECT_KEY) => {
                let mut session = self.session().await?;
                let room = rooms::room_by_direct_key(&mut session, &self.db, &key).await?;
                Ok((room.ok_or(error)?, None))
            }
            (created, _) => created,
        }
    }

    async fn room_by_id(&self, id: Uuid) -> StoreResult<Option<RoomRecord>> {
        let mut session = self.session().await?;
        rooms::room_by_id(&mut session, &self.db, id).await
    }

    async fn room_by_path(&self, path: &str) -> StoreResult<Option<RoomRecord>> {
        let mut session = self.session().await?;
        rooms::room_by_path(&mut session, &self.db, path).await
    }

    async fn rooms_of_user(&self, user_id: Uuid) -> StoreResult<Vec<(RoomRecord, Role)>> {
        let mut session = self.session().await?;
        rooms::rooms_of_user(&mut session, &self.db, user_id).await
    }

    async fn all_rooms(&self) -> StoreResult<Vec<RoomRecord>> {
        let mut session = self.session().await?;
        rooms::all_rooms(&mut session, &self.db).await
    }

    async fn directory(&self, query: &str, limit: u32) -> StoreResult<Vec<RoomRecord>> {
        let mut session = self.session().await?;
        rooms::directory(&mut session, &self.db, query, limit).await
    }

    async fn child_rooms(&self, room_id: Uuid) -> StoreResult<Vec<RoomRecord>> {
        let mut session = self.session().await?;
        rooms::child_rooms(&mut session, &self.db, room_id).await
    }

    async fn membership(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<Option<Membership>> {
        let mut session = self.session().await?;
        rooms::membership(&mut session, &self.db, room_id, user_id).await
    }

    async fn members(&self, room_id: Uuid) -> StoreResult<Vec<Member>> {
        let mut session = self.session().await?;
        rooms::members(&mut session, &self.db, room_id).await
    }

    async fn is_banned(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        let mut session = self.session().await?;
        rooms::is_banned(&mut session, &self.db, room_id, user_id).await
    }

    async fn unban(&self, room_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        let mut session = self.session().await?;
        rooms::unban(&mut session, &self.db, room_id, user_id).await
    }

    async fn bans(&self, room_id: Uuid) -> StoreResult<Vec<BanRecord>> {
        let mut session = self.session().await?;
        rooms::bans(&mut session, &self.db, room_id).await
    }

    async fn add_member(&self, room_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<Fanout> {
        self.transaction(move |s, db| rooms::add_member(s, db, room_id, user_id, role).boxed())
            .await
    }

    async fn remove_member(
        &self,
        room_id: Uuid,
        user_id: Uuid,
        departure: Departure,
    ) -> StoreResult<Vec<Fanout>> {
        self.transaction(move |s, db| {
            rooms::remove_member(s, db, room_id, user_id, departure).boxed()
        })
        .await
    }

    async fn set_role(&self, room_id: Uuid, user_id: Uuid, role: Role) -> StoreResult<Fanout> {
        self.transaction(move |s, db| rooms::set_role(s, db, room_id, user_id, role).boxed())
            .await
    }

    async fn transfer_ownership(
        &self,
        room_id: Uuid,
        from: Uuid,
        to: Uuid,
    ) -> StoreResult<Vec<Fanout>> {
        self.transaction(move |s, db| rooms::transfer_ownership(s, db, room_id, from, to).boxed())
            .await
    }

    async fn update_room(
        &self,
        room_id: Uuid,
        changes: RoomChanges,
    ) -> StoreResult<(RoomRecord, Vec<Fanout>)> {
        self.transaction(move |s, db| rooms::update_room(s, db, room_id, changes.clone()).boxed())
            .await
    }

    async fn delete_room(&self, room_id: Uuid) -> StoreResult<Vec<Fanout>> {
        self.transaction(move |s, db| rooms::delete_room(s, db, room_id).boxed())
            .await
    }

    async fn create_invite(&self, invite: InviteRecord) -> StoreResult<()> {
        let mut session = self.session().await?;
        rooms::create_invite(&mut session, &self.db, invite).await
    }

    async fn find_invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>> {
        let mut session = self.session().await?;
        rooms::find_invite(&mut session, &self.db, code_hash).await
    }

    async fn redeem_invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>> {
        let mut session = self.session().await?;
        rooms::redeem_invite(&mut session, &self.db, code_hash).await
    }

    async fn post_message(&self, new: NewMessage) -> StoreResult<Posted> {
        let posted = {
            let new = new.clone();
            self.transaction(move |s, db| messages::post_message(s, db, new.clone()).boxed())
                .await
        };
        match posted {
            // A concurrent retry with the same client_id stored its message first.
            Err(error) if is_duplicate(&error, index::AUTHOR_CLIENT_ID) => {
                let mut session = self.session().await?;
                let earlier = messages::earlier_post(&mut session, &self.db, &new).await?;
                earlier.ok_or(error)
            }
            posted => posted,
        }
    }

    async fn message_meta(&self, id: Uuid) -> StoreResult<Option<MessageMeta>> {
        let mut session = self.session().await?;
        messages::message_meta(&mut session, &self.db, id).await
    }

    async fn message(&self, id: Uuid) -> StoreResult<Option<Message>> {
        let mut session = self.session().await?;
        messages::message(&mut session, &self.db, id).await
    }

    async fn history(&self, room_id: Uuid, page: HistoryPage) -> StoreResult<Vec<Message>> {
        let mut session = self.session().await?;
        messages::history(&mut session, &self.db, room_id, page).await
    }

    async fn thread(&self, parent_id: Uuid, limit: u32) -> StoreResult<Vec<Message>> {
        let mut session = self.session().await?;
        messages::thread(&mut session, &self.db, parent_id, limit).await
    }

    async fn pins(&self, room_id: Uuid) -> StoreResult<Vec<Message>> {
        let mut session = self.session().await?;
        messages::pins(&mut session, &self.db, room_id).await
    }

    async fn edit_message(
        &self,
        id: Uuid,
        body: String,
        html: String,
        mentions: Vec<Mention>,
    ) -> StoreResult<(Message, Fanout)> {
        self.transaction(move |s, db| {
            messages::edit_message(s, db, id, body.clone(), html.clone(), mentions.clone()).boxed()
        })
        .await
    }

    async fn delete_message(&self, id: Uuid) -> StoreResult<Fanout> {
        self.transaction(move |s, db| messages::delete_message(s, db, id).boxed())
            .await
    }

    async fn set_reaction(
        &self,
        message_id: Uuid,
        user_id: Uuid,
        emoji: &str,
        present: bool,
    ) -> StoreResult<Option<Fanout>> {
        let emoji = emoji.to_string();
        self.transaction(move |s, db| {
            messages::set_reaction(s, db, message_id, user_id, emoji.clone(), present).boxed()
        })
        .await
    }

    async fn set_pin(&self, message_id: Uuid, by: Option<Uuid>) -> StoreResult<(Message, Fanout)> {
        self.transaction(move |s, db| messages::set_pin(s, db, message_id, by).boxed())
            .await
    }

    async fn search(
        &self,
        user_id: Uuid,
        query: &str,
        room_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<SearchRow>> {
        let mut session = self.session().await?;
        messages::search(&mut session, &self.db, user_id, query, room_id, limit).await
    }

    async fn create_file(&self, file: FileRecord) -> StoreResult<()> {
        let mut session = self.session().await?;
        files::create_file(&mut session, &self.db, file).await
    }

    async fn file(&self, id: Uuid) -> StoreResult<Option<FileRecord>> {
        let mut session = self.session().await?;
        files::file(&mut session, &self.db, id).await
    }

    async fn room_files(&self, room_id: Uuid, limit: u32) -> StoreResult<Vec<FileRecord>> {
        let mut session = self.session().await?;
        files::room_files(&mut session, &self.db, room_id, limit).await
    }

    async fn stream_bounds(&self, user_id: Uuid) -> StoreResult<StreamBounds> {
        let mut session = self.session().await?;
        events::stream_bounds(&mut session, &self.db, user_id).await
    }

    async fn events_since(&self, user_id: Uuid, since: i64, limit: u32) -> StoreResult<Vec<Event>> {
        let mut session = self.session().await?;
        events::events_since(&mut session, &self.db, user_id, since, limit).await
    }

    async fn prune_events(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        let mut session = self.session().await?;
        events::prune(&mut session, &self.db, cutoff).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        let mut session = self.session().await?;
        events::counts(&mut session, &self.db).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_password() {
        assert_eq!(
            redact_url("mongodb://roomler:s3cret@db:27017/roomler?replicaSet=rs0"),
            "mongodb://roomler:***@db:27017/roomler?replicaSet=rs0"
        );
        assert_eq!(
            redact_url("mongodb+srv://u:p@ss@cluster.example/x"),
            "mongodb+srv://u:***@cluster.example/x"
        );
    }

    #[test]
    fn redact_url_keeps_url_without_password() {
        let url = "mongodb://127.0.0.1:27017/?replicaSet=rs0";
        assert_eq!(redact_url(url), url);
        assert_eq!(redact_url("mongodb://user@db/x"), "mongodb://user@db/x");
    }

    #[test]
    fn index_name_is_read_from_duplicate_key_message() {
        let message = "E11000 duplicate key error collection: roomler.users index: email \
                       dup key: { email: \"a@example.com\" }";
        assert_eq!(index_in_message(message).as_deref(), Some("email"));
        assert_eq!(index_in_message("E11000 something else"), None);
    }

    #[test]
    fn limit_zero_means_nothing() {
        assert_eq!(limit_of(0), None);
        assert_eq!(limit_of(7), Some(7));
    }
}
