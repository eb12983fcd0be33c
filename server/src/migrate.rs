//! `roomler-server migrate`: copies a SQLite database into MongoDB.
//!
//! Every table is copied in key order, in batches, into the collection that the
//! MongoDB store reads (see `store::mongo::documents`). The copy can stop at any point
//! and run again. Each table's position is kept in the target's `migrations`
//! collection, and a document whose `_id` is already in the target is skipped, so a
//! batch that was cut off half way is completed on the next run. At the end, every
//! table's row count is compared with its collection's document count.
//!
//! Stop the server before copying, so that the SQLite database does not change
//! during the copy; the count check reports rows written meanwhile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use mongodb::Collection;
use mongodb::bson::{self, Bson, DateTime, Document, doc};
use mongodb::error::ErrorKind;
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::store::mongo::documents::*;
use crate::store::mongo::{Db, MongoStore, collections, index_in_message, redact_url};
use crate::store::sqlite::export::{
    ExportRow, ExportTable, export_batch, export_count, open_export,
};

/// The collection that records how far each table was copied.
const PROGRESS_COLLECTION: &str = "migrations";

/// The MongoDB error code of a unique index violation.
const DUPLICATE_KEY: i32 = 11000;

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy: `sqlite:PATH` or a file path.
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// The MongoDB connection string to copy into, e.g.
    /// mongodb://HOST:27017/roomler?replicaSet=rs0 (also ROOMLER_MIGRATE_TO, which keeps
    /// a password out of the process list). The database is the one the URL names,
    /// `roomler` when it names none.
    #[arg(
        long,
        value_name = "URL",
        env = "ROOMLER_MIGRATE_TO",
        hide_env_values = true
    )]
    pub to: String,
    /// Rows read from SQLite and documents written to MongoDB per batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
}

/// Shows the target URL without its password.
impl std::fmt::Debug for MigrateArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateArgs")
            .field("from", &self.from)
            .field("to", &redact_url(&self.to))
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// Copies every table, then compares the counts; fails when any count differs.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let path = sqlite_path(&args.from)?;
    let connection = open_export(&path)?;
    let source = Arc::new(Mutex::new(connection));
    let source_name = std::fs::canonicalize(&path)
        .unwrap_or_else(|_| path.clone())
        .display()
        .to_string();

    let target = MongoStore::open(&args.to).await?;
    let db = target.db();
    println!(
        "copying {} into {} (database {:?})",
        path.display(),
        redact_url(&args.to),
        db.database.name()
    );

    for table in ExportTable::ALL {
        let copied = copy_table(&source, db, &source_name, table, args.batch_size)
            .await
            .with_context(|| format!("failed to copy the table {}", table.name()))?;
        println!(
            "{:<20} {:>10} rows read, {:>10} documents inserted",
            table.name(),
            copied.read,
            copied.inserted
        );
    }

    verify_counts(&source, db).await
}

/// Extracts the file path from a `--from` value.
fn sqlite_path(from: &str) -> anyhow::Result<PathBuf> {
    if from.starts_with("mongodb://") || from.starts_with("mongodb+srv://") {
        bail!("--from must be a SQLite database (sqlite:PATH), not a MongoDB URL");
    }
    let path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .unwrap_or(from);
    if path.is_empty() {
        bail!("--from {from:?} names no file; use sqlite:PATH");
    }
    Ok(PathBuf::from(path))
}

fn collection_name(table: ExportTable) -> &'static str {
    match table {
        ExportTable::Users => collections::USERS,
        ExportTable::Sessions => collections::SESSIONS,
        ExportTable::Rooms => collections::ROOMS,
        ExportTable::Memberships => collections::MEMBERSHIPS,
        ExportTable::Bans => collections::BANS,
        ExportTable::Invites => collections::INVITES,
        ExportTable::Files => collections::FILES,
        ExportTable::Messages => collections::MESSAGES,
        ExportTable::Reactions => collections::REACTIONS,
        ExportTable::Attachments => collections::ATTACHMENTS,
        ExportTable::Events => collections::EVENTS,
        ExportTable::UserEvents => collections::USER_EVENTS,
    }
}

#[derive(Debug, Default)]
struct Copied {
    read: u64,
    inserted: u64,
}

async fn copy_table(
    source: &Arc<Mutex<Connection>>,
    db: &Db,
    source_name: &str,
    table: ExportTable,
    batch_size: u32,
) -> anyhow::Result<Copied> {
    let collection = db.database.collection::<Document>(collection_name(table));
    let progress = db.database.collection::<Document>(PROGRESS_COLLECTION);
    let mut after = resume_position(&progress, source_name, table).await?;
    let mut copied = Copied::default();
    loop {
        let batch = {
            let source = source.clone();
            let after = after.clone();
            tokio::task::spawn_blocking(move || {
                export_batch(&source.lock().unwrap(), table, &after, batch_size)
            })
            .await??
        };
        let Some(last) = batch.last() else {
            return Ok(copied);
        };
        after = last.key.clone();

        let documents = batch
            .iter()
            .map(|row| to_document(table, row))
            .collect::<anyhow::Result<Vec<_>>>()?;
        copied.read += documents.len() as u64;
        copied.inserted += insert_new(&collection, documents).await?;
        save_position(&progress, source_name, table, &after).await?;
    }
}

/// Reads where the copy of `table` from `source_name` stopped, or returns the table's
/// start.
async fn resume_position(
    progress: &Collection<Document>,
    source_name: &str,
    table: ExportTable,
) -> anyhow::Result<Vec<Value>> {
    let saved = progress.find_one(doc! { "_id": table.name() }).await?;
    let Some(saved) = saved else {
        return Ok(table.start());
    };
    // A position in another database's table means nothing here.
    if saved.get_str("source") != Ok(source_name) {
        return Ok(table.start());
    }
    let Ok(after) = saved.get_array("after") else {
        return Ok(table.start());
    };
    after
        .iter()
        .map(|value| match value {
            Bson::Int64(number) => Ok(Value::Integer(*number)),
            Bson::Int32(number) => Ok(Value::Integer(i64::from(*number))),
            Bson::String(text) => Ok(Value::Text(text.clone())),
            other => bail!(
                "the {PROGRESS_COLLECTION} collection has an invalid position {other:?} for \
                 {}; delete its document {:?} to copy that table from the start",
                table.name(),
                table.name()
            ),
        })
        .collect()
}

async fn save_position(
    progress: &Collection<Document>,
    source_name: &str,
    table: ExportTable,
    after: &[Value],
) -> anyhow::Result<()> {
    let after: Vec<Bson> = after
        .iter()
        .map(|value| match value {
            Value::Integer(number) => Bson::Int64(*number),
            Value::Text(text) => Bson::String(text.clone()),
            other => Bson::String(format!("{other:?}")),
        })
        .collect();
    progress
        .update_one(
            doc! { "_id": table.name() },
            doc! { "$set": {
                "source": source_name,
                "after": after,
                "updated_at": DateTime::now(),
            } },
        )
        .upsert(true)
        .await?;
    Ok(())
}

/// Inserts the documents that are not in the collection yet and returns how many
/// were new.
///
/// A duplicate `_id` is a document copied before. A duplicate on another unique index
/// is one too when a document with the same `_id` exists. Otherwise the target contains
/// different data with the same key, and the copy stops.
async fn insert_new(
    collection: &Collection<Document>,
    documents: Vec<Document>,
) -> anyhow::Result<u64> {
    let total = documents.len() as u64;
    let error = match collection.insert_many(&documents).ordered(false).await {
        Ok(_) => return Ok(total),
        Err(error) => error,
    };
    let ErrorKind::InsertMany(failure) = &*error.kind else {
        return Err(error.into());
    };
    if failure.write_concern_error.is_some() {
        return Err(error.into());
    }
    let mut skipped = 0;
    for write_error in failure.write_errors.iter().flatten() {
        if write_error.code != DUPLICATE_KEY {
            return Err(error.clone().into());
        }
        let index = index_in_message(&write_error.message).unwrap_or_default();
        if index != "_id_" {
            let id = documents
                .get(write_error.index)
                .and_then(|document| document.get("_id"))
                .cloned()
                .unwrap_or(Bson::Null);
            if collection.find_one(doc! { "_id": id }).await?.is_none() {
                bail!(
                    "the target collection {} already has other data with the same key \
                     ({}); copy into an empty database",
                    collection.name(),
                    write_error.message
                );
            }
        }
        skipped += 1;
    }
    Ok(total - skipped)
}

/// Prints each table's row count next to its collection's document count, and fails
/// when any differ.
async fn verify_counts(source: &Arc<Mutex<Connection>>, db: &Db) -> anyhow::Result<()> {
    println!();
    println!(
        "{:<20} {:<12} {:>10} {:>10}",
        "table", "collection", "source", "target"
    );
    let mut mismatches = Vec::new();
    for table in ExportTable::ALL {
        let expected = {
            let source = source.clone();
            tokio::task::spawn_blocking(move || export_count(&source.lock().unwrap(), table))
                .await??
        };
        let name = collection_name(table);
        let actual = db
            .database
            .collection::<Document>(name)
            .count_documents(doc! {})
            .await?;
        let status = if expected == actual { "" } else { "  MISMATCH" };
        println!(
            "{:<20} {:<12} {expected:>10} {actual:>10}{status}",
            table.name(),
            name
        );
        if expected != actual {
            mismatches.push(table.name());
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "the counts differ for {}; if the server wrote to the SQLite database during \
             the copy, stop it and run the migration again, which resumes; if the target \
             database was not empty, copy into an empty one",
            mismatches.join(", ")
        );
    }
    println!("all counts match");
    Ok(())
}

/// Converts one row of `table` to the document that the MongoDB store reads.
fn to_document(table: ExportTable, row: &ExportRow) -> anyhow::Result<Document> {
    let document = match table {
        ExportTable::Users => bson::to_document(&UserDoc {
            id: row.text("id")?,
            username: row.text("username")?,
            username_key: row.text("username_key")?,
            display_name: row.text("display_name")?,
            email: row.text("email")?,
            password_hash: row.text("password_hash")?,
            avatar_file_id: row.optional_text("avatar_file_id")?,
            disabled: row.boolean("disabled")?,
            event_seq: row.integer("event_seq")?,
            created_at: date(row, "created_at")?,
        })?,
        ExportTable::Sessions => bson::to_document(&SessionDoc {
            token_hash: row.text("token_hash")?,
            user_id: row.text("user_id")?,
            created_at: date(row, "created_at")?,
            last_used_at: date(row, "last_used_at")?,
        })?,
        ExportTable::Rooms => bson::to_document(&RoomDoc {
            id: row.text("id")?,
            name: row.text("name")?,
            path: row.text("path")?,
            kind: row.text("kind")?,
            parent_id: row.optional_text("parent_id")?,
            topic: row.text("topic")?,
            owner_id: row.optional_text("owner_id")?,
            password_hash: row.optional_text("password_hash")?,
            direct_key: row.optional_text("direct_key")?,
            last_seq: row.integer("last_seq")?,
            created_at: date(row, "created_at")?,
        })?,
        ExportTable::Memberships => bson::to_document(&MembershipDoc {
            id: pair_id(row.text("room_id")?, row.text("user_id")?),
            room_id: row.text("room_id")?,
            user_id: row.text("user_id")?,
            role: row.text("role")?,
            joined_at: date(row, "joined_at")?,
        })?,
        ExportTable::Bans => bson::to_document(&BanDoc {
            id: pair_id(row.text("room_id")?, row.text("user_id")?),
            room_id: row.text("room_id")?,
            user_id: row.text("user_id")?,
            banned_by: row.text("banned_by")?,
            banned_at: date(row, "banned_at")?,
        })?,
        ExportTable::Invites => bson::to_document(&InviteDoc {
            code_hash: row.text("code_hash")?,
            room_id: row.text("room_id")?,
            created_by: row.text("created_by")?,
            expires_at: date(row, "expires_at")?,
            single_use: row.boolean("single_use")?,
            uses: row.integer("uses")?,
            created_at: date(row, "created_at")?,
        })?,
        ExportTable::Files => bson::to_document(&FileDoc {
            id: row.text("id")?,
            sha256: row.text("sha256")?,
            size: row.integer("size")?,
            mime: row.text("mime")?,
            name: row.text("name")?,
            uploader_id: row.text("uploader_id")?,
            room_id: row.optional_text("room_id")?,
            thumbnail_sha256: row.optional_text("thumbnail_sha256")?,
            created_at: date(row, "created_at")?,
        })?,
        ExportTable::Messages => bson::to_document(&MessageDoc {
            id: row.text("id")?,
            room_id: row.text("room_id")?,
            seq: row.integer("seq")?,
            author_id: row.text("author_id")?,
            body: row.text("body")?,
            html: row.text("html")?,
            mentions: json_to_bson(&json(row, "mentions")?)?,
            reply_to: row.optional_text("reply_to")?,
            client_id: row.optional_text("client_id")?,
            pinned_by: row.optional_text("pinned_by")?,
            pinned_at: optional_date(row, "pinned_at")?,
            deleted: row.boolean("deleted")?,
            created_at: date(row, "created_at")?,
            edited_at: optional_date(row, "edited_at")?,
        })?,
        ExportTable::Reactions => bson::to_document(&ReactionDoc {
            id: reaction_id(
                row.text("message_id")?,
                row.text("user_id")?,
                &row.text("emoji")?,
            ),
            message_id: row.text("message_id")?,
            user_id: row.text("user_id")?,
            emoji: row.text("emoji")?,
            room_id: row.text("room_id")?,
            created_at: date(row, "created_at")?,
        })?,
        ExportTable::Attachments => bson::to_document(&AttachmentDoc {
            id: pair_id(row.text("message_id")?, row.text("file_id")?),
            message_id: row.text("message_id")?,
            file_id: row.text("file_id")?,
            position: row.integer("position")?,
            room_id: row.text("room_id")?,
        })?,
        ExportTable::Events => bson::to_document(&EventDoc {
            id: copied_event_id(row.integer("id")?, row.integer("created_at")?),
            kind: row.text("kind")?,
            room_id: row.optional_text("room_id")?,
            message_id: row.optional_text("message_id")?,
            data: json_to_document(&json(row, "data")?)?,
            created_at: date(row, "created_at")?,
        })?,
        ExportTable::UserEvents => bson::to_document(&UserEventDoc {
            id: pair_id(row.text("user_id")?, row.integer("seq")?),
            user_id: row.text("user_id")?,
            seq: row.integer("seq")?,
            event_id: copied_event_id(row.integer("event_id")?, row.integer("created_at")?),
            room_id: row.optional_text("room_id")?,
            created_at: date(row, "created_at")?,
        })?,
    };
    Ok(document)
}

fn date(row: &ExportRow, column: &str) -> anyhow::Result<DateTime> {
    Ok(DateTime::from_millis(row.integer(column)?))
}

fn optional_date(row: &ExportRow, column: &str) -> anyhow::Result<Option<DateTime>> {
    Ok(row.optional_integer(column)?.map(DateTime::from_millis))
}

fn json(row: &ExportRow, column: &str) -> anyhow::Result<serde_json::Value> {
    let text = row.text(column)?;
    serde_json::from_str(&text).with_context(|| format!("{column} is not valid JSON: {text:?}"))
}

#[cfg(test)]
mod tests {
    use roomler_shared::model::{Mention, Role, RoomKind};
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        Departure, FileRecord, InviteRecord, NewMessage, NewRoom, NewUser, Posted, Store,
    };

    #[test]
    fn sqlite_path_accepts_prefixes() {
        assert_eq!(
            sqlite_path("sqlite:/a/b.db").unwrap(),
            PathBuf::from("/a/b.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///a.db").unwrap(),
            PathBuf::from("/a.db")
        );
        assert_eq!(
            sqlite_path("data/x.db").unwrap(),
            PathBuf::from("data/x.db")
        );
    }

    #[test]
    fn sqlite_path_rejects_mongodb_and_empty() {
        assert!(sqlite_path("mongodb://db/roomler").is_err());
        assert!(sqlite_path("sqlite:").is_err());
    }

    #[test]
    fn migrate_args_debug_hides_password() {
        let args = MigrateArgs {
            from: "sqlite:x.db".into(),
            to: "mongodb://u:s3cret@db/roomler".into(),
            batch_size: 10,
        };
        let debug = format!("{args:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    fn new_user(name: &str) -> NewUser {
        NewUser {
            username: name.into(),
            username_key: name.into(),
            display_name: name.into(),
            email: format!("{name}@example.com"),
            password_hash: "hash".into(),
        }
    }

    /// Fills a SQLite store with at least one row in every table.
    async fn populated_store(path: &std::path::Path) {
        let store = SqliteStore::open(path).unwrap();
        let ada = store.create_user(new_user("ada")).await.unwrap();
        let bob = store.create_user(new_user("bob")).await.unwrap();
        store.create_session("token-hash", ada.id).await.unwrap();
        let (room, _) = store
            .create_room(NewRoom {
                name: "team".into(),
                path: "team".into(),
                kind: RoomKind::Public,
                parent_id: None,
                topic: String::new(),
                password_hash: None,
                creator_id: ada.id,
            })
            .await
            .unwrap();

        store
            .add_member(room.id, bob.id, Role::Member)
            .await
            .unwrap();

        store
            .create_invite(InviteRecord {
                code_hash: "code".into(),
                room_id: room.id,
                created_by: ada.id,
                expires_at: OffsetDateTime::now_utc() + time::Duration::days(1),
                single_use: true,
            })
            .await
            .unwrap();

        let file_id = Uuid::now_v7();
        store
            .create_file(FileRecord {
                id: file_id,
                sha256: "00".repeat(32),
                size: 3,
                mime: "text/plain".into(),
                name: "a.txt".into(),
                uploader_id: ada.id,
                room_id: Some(room.id),
                thumbnail_sha256: None,
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();

        let posted = store
            .post_message(NewMessage {
                room_id: room.id,
                author_id: ada.id,
                body: "hi @bob".into(),
                html: "<p>hi @bob</p>".into(),
                mentions: vec![Mention::User {
                    user_id: bob.id,
                    username: "bob".into(),
                }],
                reply_to: None,
                client_id: "c1".into(),
                attachments: vec![file_id],
            })
            .await
            .unwrap();

        let Posted::Created(message, _) = posted else {
            panic!("the first post must create a message");
        };
        store
            .set_reaction(message.id, bob.id, "👍", true)
            .await
            .unwrap();

        store
            .remove_member(room.id, bob.id, Departure::Banned { by: ada.id })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn every_table_converts_to_documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roomler.db");
        populated_store(&path).await;
        let connection = open_export(&path).unwrap();

        let mut by_table = std::collections::HashMap::new();
        for table in ExportTable::ALL {
            let mut after = table.start();
            let mut documents = Vec::new();
            // Batches of two exercise the resume position.
            loop {
                let batch = export_batch(&connection, table, &after, 2).unwrap();
                let Some(last) = batch.last() else { break };
                after = last.key.clone();
                for row in &batch {
                    documents.push(to_document(table, row).unwrap());
                }
            }
            let count = export_count(&connection, table).unwrap();
            assert!(count > 0, "{} has no rows to test", table.name());
            assert_eq!(documents.len() as u64, count, "{}", table.name());
            by_table.insert(table, documents);
        }

        let user = &by_table[&ExportTable::Users][0];
        assert!(user.get_str("_id").is_ok());
        assert!(user.get_datetime("created_at").is_ok());

        let message = &by_table[&ExportTable::Messages][0];
        let mentions = message.get_array("mentions").unwrap();
        let mention = mentions[0].as_document().unwrap();
        assert!(mention.get_str("user_id").is_ok(), "{mention:?}");
        assert_eq!(message.get_str("client_id"), Ok("c1"));

        let reaction = &by_table[&ExportTable::Reactions][0];
        assert_eq!(
            reaction.get_str("room_id"),
            message.get_str("room_id"),
            "a reaction keeps its message's room"
        );

        let events = &by_table[&ExportTable::Events];
        let event_ids: Vec<_> = events
            .iter()
            .map(|event| event.get_object_id("_id").unwrap())
            .collect();
        for delivery in &by_table[&ExportTable::UserEvents] {
            let event_id = delivery.get_object_id("event_id").unwrap();
            assert!(event_ids.contains(&event_id), "{delivery:?}");
        }
    }

    #[tokio::test]
    async fn export_rejects_missing_database() {
        let dir = tempfile::tempdir().unwrap();
        let error = open_export(&dir.path().join("none.db")).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
    }

    #[test]
    fn copied_event_ids_are_stable_and_distinct() {
        assert_eq!(
            copied_event_id(7, 1_700_000_000_000),
            copied_event_id(7, 1_700_000_000_000)
        );
        assert_ne!(
            copied_event_id(7, 1_700_000_000_000),
            copied_event_id(8, 1_700_000_000_000)
        );
    }
}
