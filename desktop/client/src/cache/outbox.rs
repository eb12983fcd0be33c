//! The outbox: operations the user made that the server has not confirmed yet.
//!
//! Items are sent in id order. A network failure leaves an item pending; a rejection
//! by the server marks it failed with the server's reason, for the user to retry or
//! discard. Sends carry a `client_id` chosen here, so a retry after a lost answer
//! never creates a second message.

use roomler_shared::model::Message;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Cache, upsert_message};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Send,
    Edit,
    Delete,
    React,
    Unreact,
}

impl OperationKind {
    fn as_str(self) -> &'static str {
        match self {
            OperationKind::Send => "send",
            OperationKind::Edit => "edit",
            OperationKind::Delete => "delete",
            OperationKind::React => "react",
            OperationKind::Unreact => "unreact",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "edit" => OperationKind::Edit,
            "delete" => OperationKind::Delete,
            "react" => OperationKind::React,
            "unreact" => OperationKind::Unreact,
            _ => OperationKind::Send,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Failed,
}

#[derive(Debug, Clone, Default)]
pub struct NewOperation {
    pub room_id: Uuid,
    pub message_id: Option<Uuid>,
    pub body: Option<String>,
    pub reply_to: Option<Uuid>,
    pub attachments: Vec<Uuid>,
    pub emoji: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: OperationKind,
    pub room_id: Uuid,
    pub message_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub body: Option<String>,
    pub reply_to: Option<Uuid>,
    pub attachments: Vec<Uuid>,
    pub emoji: Option<String>,
    pub state: OutboxState,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: u32,
    pub created_at: String,
}

const ITEM_COLUMNS: &str = "id, kind, room_id, message_id, client_id, body, reply_to, attachments, \
                            emoji, state, error_code, error_message, attempts, created_at";

impl Cache {
    /// Queues an operation; sends get a fresh `client_id`.
    pub fn enqueue(&self, kind: OperationKind, operation: NewOperation) -> Result<OutboxItem> {
        self.with(|connection| {
            let client_id = (kind == OperationKind::Send).then(|| Uuid::new_v4().to_string());
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            connection.execute(
                "INSERT INTO outbox (kind, room_id, message_id, client_id, body, reply_to,
                                     attachments, emoji, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    kind.as_str(),
                    operation.room_id.to_string(),
                    operation.message_id.map(|id| id.to_string()),
                    client_id,
                    operation.body,
                    operation.reply_to.map(|id| id.to_string()),
                    serde_json::to_string(&operation.attachments)?,
                    operation.emoji,
                    now,
                ],
            )?;
            let id = connection.last_insert_rowid();
            let sql = format!("SELECT {ITEM_COLUMNS} FROM outbox WHERE id = ?1");
            Ok(connection.query_row(&sql, [id], item_row)?)
        })
    }

    /// Every queued item, pending and failed, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>> {
        self.with(|connection| {
            let sql = format!("SELECT {ITEM_COLUMNS} FROM outbox ORDER BY id");
            let mut statement = connection.prepare(&sql)?;
            let items = statement
                .query_map([], item_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(items)
        })
    }

    /// The oldest pending item.
    pub fn next_pending(&self) -> Result<Option<OutboxItem>> {
        self.with(|connection| {
            let sql = format!(
                "SELECT {ITEM_COLUMNS} FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1"
            );
            Ok(connection.query_row(&sql, [], item_row).optional()?)
        })
    }

    /// Records that a send reached the server: the message joins the room's history
    /// and leaves the outbox, in one transaction.
    pub fn complete_with_message(&self, item_id: i64, message: &Message) -> Result<()> {
        self.with(|connection| {
            let transaction = super::write_transaction(connection)?;
            if super::room_exists(&transaction, message.room_id)? {
                upsert_message(&transaction, message)?;
            }
            transaction.execute("DELETE FROM outbox WHERE id = ?1", [item_id])?;
            transaction.commit()?;
            Ok(())
        })
    }

    pub fn complete(&self, item_id: i64) -> Result<()> {
        self.with(|connection| {
            connection.execute("DELETE FROM outbox WHERE id = ?1", [item_id])?;
            Ok(())
        })
    }

    pub fn record_attempt(&self, item_id: i64) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
                [item_id],
            )?;
            Ok(())
        })
    }

    /// Marks an item failed with the server's reason; it stays until retried or discarded.
    pub fn fail(&self, item_id: i64, code: &str, message: &str) -> Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE outbox SET state = 'failed', error_code = ?1, error_message = ?2 WHERE id = ?3",
                params![code, message, item_id],
            )?;
            Ok(())
        })
    }

    /// Puts a failed item back in the queue; `false` when no such item exists.
    pub fn retry(&self, item_id: i64) -> Result<bool> {
        self.with(|connection| {
            let changed = connection.execute(
                "UPDATE outbox SET state = 'pending', error_code = NULL, error_message = NULL
                 WHERE id = ?1",
                [item_id],
            )?;
            Ok(changed > 0)
        })
    }

    pub fn discard(&self, item_id: i64) -> Result<bool> {
        self.with(|connection| {
            Ok(connection.execute("DELETE FROM outbox WHERE id = ?1", [item_id])? > 0)
        })
    }

    /// Re-inserts items saved from a cache that had to be rebuilt, keeping their ids.
    pub(super) fn restore_outbox(&self, items: &[OutboxItem]) -> Result<()> {
        self.with(|connection| {
            let transaction = super::write_transaction(connection)?;
            for item in items {
                transaction.execute(
                    "INSERT INTO outbox (id, kind, room_id, message_id, client_id, body, reply_to,
                                         attachments, emoji, state, error_code, error_message,
                                         attempts, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        item.id,
                        item.kind.as_str(),
                        item.room_id.to_string(),
                        item.message_id.map(|id| id.to_string()),
                        item.client_id,
                        item.body,
                        item.reply_to.map(|id| id.to_string()),
                        serde_json::to_string(&item.attachments)?,
                        item.emoji,
                        if item.state == OutboxState::Failed {
                            "failed"
                        } else {
                            "pending"
                        },
                        item.error_code,
                        item.error_message,
                        item.attempts,
                        item.created_at,
                    ],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
    }
}

pub(super) fn item_row(row: &Row) -> rusqlite::Result<OutboxItem> {
    let parse = |text: Option<String>| text.and_then(|text| text.parse::<Uuid>().ok());
    let attachments: String = row.get(7)?;
    let state: String = row.get(9)?;
    Ok(OutboxItem {
        id: row.get(0)?,
        kind: OperationKind::parse(&row.get::<_, String>(1)?),
        room_id: parse(row.get(2)?).unwrap_or_default(),
        message_id: parse(row.get(3)?),
        client_id: row.get(4)?,
        body: row.get(5)?,
        reply_to: parse(row.get(6)?),
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        emoji: row.get(8)?,
        state: if state == "failed" {
            OutboxState::Failed
        } else {
            OutboxState::Pending
        },
        error_code: row.get(10)?,
        error_message: row.get(11)?,
        attempts: row.get(12)?,
        created_at: row.get(13)?,
    })
}
