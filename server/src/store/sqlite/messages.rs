//! Messages, replies, reactions, pins and full-text search.

use roomler_shared::model::{Attachment, Mention, Message, Pin, Reaction, ReplyPreview, UserRef};
use roomler_shared::ws::EventKind;
use roomler_shared::{rich_text, search};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use super::events::{Audience, emit};
use super::{from_millis, now_millis, optional_uuid_column, parse_uuid, uuid_column};
use crate::store::{
    Conflict, Fanout, HistoryPage, MessageMeta, NewMessage, Posted, SearchRow, StoreError,
    StoreResult,
};

/// Characters of the parent's body that a reply preview shows.
const EXCERPT_CHARS: usize = 120;

/// Kinds of event whose payload is a whole message, and so carries its content.
const CONTENT_EVENTS: &str =
    "('message.created', 'message.edited', 'message.pinned', 'message.unpinned')";

const MESSAGE_COLUMNS: &str = "m.id, m.room_id, m.seq, m.author_id, u.username, u.display_name, \
     m.body, m.html, m.mentions, m.reply_to, m.client_id, m.pinned_by, m.pinned_at, m.deleted, \
     m.created_at, m.edited_at, \
     (SELECT COUNT(*) FROM messages c WHERE c.reply_to = m.id AND c.deleted = 0)";

const MESSAGE_FROM: &str = "FROM messages m JOIN users u ON u.id = m.author_id";

/// A message row before its reactions, attachments and reply preview are attached.
struct MessageRow {
    message: Message,
    reply_to: Option<Uuid>,
}

pub(crate) fn post_message(tx: &Transaction, new: NewMessage) -> StoreResult<Posted> {
    let earlier: Option<(String, String, String, bool)> = tx
        .query_row(
            "SELECT id, room_id, body, deleted OR edited_at IS NOT NULL FROM messages
             WHERE author_id = ?1 AND client_id = ?2",
            params![new.author_id.to_string(), new.client_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    if let Some((id, room_id, body, changed)) = earlier {
        // A retry carries the first post's body. An edit or a delete can only follow the
        // confirmed post, so a changed message is not compared.
        if room_id != new.room_id.to_string() || (!changed && body != new.body) {
            return Err(StoreError::Conflict(Conflict::ClientIdReused));
        }
        return Ok(Posted::Existing(require_message(tx, parse_uuid(&id)?)?));
    }

    let seq: i64 = tx.query_row(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        [new.room_id.to_string()],
        |row| row.get(0),
    )?;
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO messages (id, room_id, seq, author_id, body, html, mentions, reply_to,
                               client_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            id.to_string(),
            new.room_id.to_string(),
            seq,
            new.author_id.to_string(),
            new.body,
            new.html,
            serde_json::to_string(&new.mentions)?,
            new.reply_to.map(|id| id.to_string()),
            new.client_id,
            now_millis(),
        ],
    )?;
    tx.execute(
        "INSERT INTO messages_fts (rowid, body) VALUES (last_insert_rowid(), ?1)",
        [&new.body],
    )?;
    for (position, file_id) in new.attachments.iter().enumerate() {
        tx.execute(
            "INSERT INTO message_attachments (message_id, file_id, position) VALUES (?1, ?2, ?3)",
            params![id.to_string(), file_id.to_string(), position as i64],
        )?;
    }

    let message = require_message(tx, id)?;
    let fanout = message_event(tx, EventKind::MessageCreated, &message)?;
    Ok(Posted::Created(message, fanout))
}

pub(crate) fn message_meta(conn: &Connection, id: Uuid) -> StoreResult<Option<MessageMeta>> {
    Ok(conn
        .query_row(
            "SELECT room_id, author_id, deleted FROM messages WHERE id = ?1",
            [id.to_string()],
            |row| {
                Ok(MessageMeta {
                    id,
                    room_id: uuid_column(row, 0)?,
                    author_id: uuid_column(row, 1)?,
                    deleted: row.get(2)?,
                })
            },
        )
        .optional()?)
}

pub(crate) fn message(conn: &Connection, id: Uuid) -> StoreResult<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} {MESSAGE_FROM} WHERE m.id = ?1");
    let row = conn
        .query_row(&sql, [id.to_string()], message_row)
        .optional()?;
    row.map(|row| complete(conn, row)).transpose()
}

pub(crate) fn history(
    conn: &Connection,
    room_id: Uuid,
    page: HistoryPage,
) -> StoreResult<Vec<Message>> {
    let room = room_id.to_string();
    let (condition, order, bound, limit) = match page {
        HistoryPage::Latest { limit } => ("1 = 1", "DESC", 0, limit),
        HistoryPage::Before { before, limit } => ("m.seq < ?2", "DESC", before, limit),
        HistoryPage::After { after, limit } => ("m.seq > ?2", "ASC", after, limit),
    };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} {MESSAGE_FROM}
         WHERE m.room_id = ?1 AND ({condition} OR ?2 IS NULL)
         ORDER BY m.seq {order} LIMIT ?3"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement
        .query_map(params![room, bound, limit], message_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|row| complete(conn, row)).collect()
}

pub(crate) fn thread(conn: &Connection, parent_id: Uuid, limit: u32) -> StoreResult<Vec<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} {MESSAGE_FROM} WHERE m.reply_to = ?1 ORDER BY m.seq LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement
        .query_map(params![parent_id.to_string(), limit], message_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|row| complete(conn, row)).collect()
}

pub(crate) fn pins(conn: &Connection, room_id: Uuid) -> StoreResult<Vec<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} {MESSAGE_FROM}
         WHERE m.room_id = ?1 AND m.pinned_at IS NOT NULL ORDER BY m.pinned_at DESC"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement
        .query_map([room_id.to_string()], message_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|row| complete(conn, row)).collect()
}

pub(crate) fn edit_message(
    tx: &Transaction,
    id: Uuid,
    body: &str,
    html: &str,
    mentions: &[Mention],
) -> StoreResult<(Message, Fanout)> {
    tx.execute(
        "UPDATE messages SET body = ?1, html = ?2, mentions = ?3, edited_at = ?4 WHERE id = ?5",
        params![
            body,
            html,
            serde_json::to_string(mentions)?,
            now_millis(),
            id.to_string()
        ],
    )?;
    let rowid = message_rowid(tx, id)?;
    tx.execute("DELETE FROM messages_fts WHERE rowid = ?1", [rowid])?;
    tx.execute(
        "INSERT INTO messages_fts (rowid, body) VALUES (?1, ?2)",
        params![rowid, body],
    )?;

    let message = require_message(tx, id)?;
    // Earlier events must not keep replaying the text that the edit replaced.
    scrub_events(tx, &message)?;
    scrub_replies(tx, id)?;
    let fanout = message_event(tx, EventKind::MessageEdited, &message)?;
    Ok((message, fanout))
}

pub(crate) fn delete_message(tx: &Transaction, id: Uuid) -> StoreResult<Fanout> {
    tx.execute(
        "UPDATE messages SET body = '', html = '', mentions = '[]', deleted = 1,
                             pinned_by = NULL, pinned_at = NULL
         WHERE id = ?1",
        [id.to_string()],
    )?;
    tx.execute(
        "DELETE FROM reactions WHERE message_id = ?1",
        [id.to_string()],
    )?;
    tx.execute(
        "DELETE FROM message_attachments WHERE message_id = ?1",
        [id.to_string()],
    )?;
    let rowid = message_rowid(tx, id)?;
    tx.execute("DELETE FROM messages_fts WHERE rowid = ?1", [rowid])?;

    let tombstone = require_message(tx, id)?;
    scrub_events(tx, &tombstone)?;

    scrub_replies(tx, id)?;

    message_event(tx, EventKind::MessageDeleted, &tombstone)
}

pub(crate) fn set_reaction(
    tx: &Transaction,
    message_id: Uuid,
    user_id: Uuid,
    emoji: &str,
    present: bool,
) -> StoreResult<Option<Fanout>> {
    let changed = if present {
        tx.execute(
            "INSERT OR IGNORE INTO reactions (message_id, user_id, emoji, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                message_id.to_string(),
                user_id.to_string(),
                emoji,
                now_millis()
            ],
        )?
    } else {
        tx.execute(
            "DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
            params![message_id.to_string(), user_id.to_string(), emoji],
        )?
    };
    if changed == 0 {
        return Ok(None);
    }
    let added = present;

    let message = require_message(tx, message_id)?;
    let kind = if added {
        EventKind::ReactionAdded
    } else {
        EventKind::ReactionRemoved
    };
    let data = serde_json::json!({
        "message_id": message_id,
        "user_id": user_id,
        "emoji": emoji,
        "reactions": message.reactions,
    });
    let room = Audience::Room(message.room_id);
    let fanout = emit(
        tx,
        kind,
        Some(message.room_id),
        Some(message_id),
        data,
        room,
    )?;
    Ok(Some(fanout))
}

pub(crate) fn set_pin(
    tx: &Transaction,
    message_id: Uuid,
    by: Option<Uuid>,
) -> StoreResult<(Message, Fanout)> {
    let pinned_at = by.map(|_| now_millis());
    tx.execute(
        "UPDATE messages SET pinned_by = ?1, pinned_at = ?2 WHERE id = ?3",
        params![
            by.map(|id| id.to_string()),
            pinned_at,
            message_id.to_string()
        ],
    )?;
    let message = require_message(tx, message_id)?;
    let kind = if by.is_some() {
        EventKind::MessagePinned
    } else {
        EventKind::MessageUnpinned
    };
    let fanout = message_event(tx, kind, &message)?;
    Ok((message, fanout))
}

pub(crate) fn search(
    conn: &Connection,
    user_id: Uuid,
    query: &str,
    room_id: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<SearchRow>> {
    let Some(match_expression) = search::fts5_query(query) else {
        return Ok(Vec::new());
    };
    // Control characters mark the matches, so the snippet can be escaped before the
    // `<mark>` tags go in.
    let mut statement = conn.prepare_cached(
        "SELECT m.id, snippet(messages_fts, 0, char(1), char(2), '…', 16)
         FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid
         WHERE messages_fts MATCH ?1 AND m.deleted = 0
           AND m.room_id IN (SELECT room_id FROM memberships WHERE user_id = ?2)
           AND (?3 IS NULL OR m.room_id = ?3)
         ORDER BY rank LIMIT ?4",
    )?;
    let rows = statement
        .query_map(
            params![
                match_expression,
                user_id.to_string(),
                room_id.map(|id| id.to_string()),
                limit
            ],
            |row| Ok((uuid_column(row, 0)?, row.get::<_, String>(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;

    let mut hits = Vec::with_capacity(rows.len());
    for (id, raw_snippet) in rows {
        let snippet = search::snippet_html(&raw_snippet);
        hits.push(SearchRow {
            message: require_message(conn, id)?,
            snippet,
        });
    }
    Ok(hits)
}

/// Rewrites the payload of the message's earlier content events to its current state.
fn scrub_events(tx: &Transaction, message: &Message) -> StoreResult<()> {
    let sql =
        format!("UPDATE events SET data = ?1 WHERE message_id = ?2 AND kind IN {CONTENT_EVENTS}");
    tx.execute(
        &sql,
        params![serde_json::to_string(message)?, message.id.to_string()],
    )?;
    Ok(())
}

/// Rewrites the events of the replies to a message, which quote the start of it.
fn scrub_replies(tx: &Transaction, id: Uuid) -> StoreResult<()> {
    let mut statement = tx.prepare("SELECT id FROM messages WHERE reply_to = ?1")?;
    let replies = statement
        .query_map([id.to_string()], |row| uuid_column(row, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    drop(statement);
    for reply in replies {
        scrub_events(tx, &require_message(tx, reply)?)?;
    }
    Ok(())
}

fn message_event(tx: &Transaction, kind: EventKind, message: &Message) -> StoreResult<Fanout> {
    let data = serde_json::to_value(message)?;
    let room = Audience::Room(message.room_id);
    emit(
        tx,
        kind,
        Some(message.room_id),
        Some(message.id),
        data,
        room,
    )
}

fn message_rowid(conn: &Connection, id: Uuid) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT rowid FROM messages WHERE id = ?1",
        [id.to_string()],
        |row| row.get(0),
    )?)
}

fn require_message(conn: &Connection, id: Uuid) -> StoreResult<Message> {
    message(conn, id)?.ok_or_else(|| StoreError::Other(anyhow::anyhow!("message {id} not found")))
}

fn message_row(row: &Row) -> rusqlite::Result<MessageRow> {
    let mentions: String = row.get(8)?;
    let pinned_by = optional_uuid_column(row, 11)?;
    let pinned_at: Option<i64> = row.get(12)?;
    let message = Message {
        id: uuid_column(row, 0)?,
        room_id: uuid_column(row, 1)?,
        seq: row.get(2)?,
        author: UserRef {
            id: uuid_column(row, 3)?,
            username: row.get(4)?,
            display_name: row.get(5)?,
        },
        body: row.get(6)?,
        html: row.get(7)?,
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
        reply_to: None,
        reply_count: row.get::<_, i64>(16)? as u32,
        reactions: Vec::new(),
        attachments: Vec::new(),
        client_id: row.get(10)?,
        pinned: pinned_by.zip(pinned_at).map(|(by, at)| Pin {
            by,
            at: from_millis(at),
        }),
        deleted: row.get(13)?,
        created_at: from_millis(row.get(14)?),
        edited_at: row.get::<_, Option<i64>>(15)?.map(from_millis),
    };
    Ok(MessageRow {
        message,
        reply_to: optional_uuid_column(row, 9)?,
    })
}

/// Attaches reactions, attachments and the reply preview to a message row.
fn complete(conn: &Connection, row: MessageRow) -> StoreResult<Message> {
    let MessageRow {
        mut message,
        reply_to,
    } = row;
    let id = message.id.to_string();

    let mut statement = conn.prepare_cached(
        "SELECT emoji, user_id FROM reactions WHERE message_id = ?1 ORDER BY created_at, user_id",
    )?;
    let pairs = statement
        .query_map([&id], |row| {
            Ok((row.get::<_, String>(0)?, uuid_column(row, 1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (emoji, user_id) in pairs {
        match message
            .reactions
            .iter_mut()
            .find(|reaction| reaction.emoji == emoji)
        {
            Some(reaction) => {
                reaction.count += 1;
                reaction.user_ids.push(user_id);
            }
            None => message.reactions.push(Reaction {
                emoji,
                count: 1,
                user_ids: vec![user_id],
            }),
        }
    }

    let mut statement = conn.prepare_cached(
        "SELECT f.id, f.name, f.size, f.mime, f.thumbnail_sha256
         FROM message_attachments a JOIN files f ON f.id = a.file_id
         WHERE a.message_id = ?1 ORDER BY a.position",
    )?;
    message.attachments = statement
        .query_map([&id], |row| {
            let file_id = uuid_column(row, 0)?;
            let thumbnail: Option<String> = row.get(4)?;
            Ok(Attachment {
                id: file_id,
                name: row.get(1)?,
                size: row.get::<_, i64>(2)? as u64,
                mime: row.get(3)?,
                url: format!("/api/files/{file_id}"),
                thumbnail_url: thumbnail.map(|_| format!("/api/files/{file_id}/thumbnail")),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    if let Some(parent_id) = reply_to {
        message.reply_to = reply_preview(conn, parent_id)?;
    }
    Ok(message)
}

fn reply_preview(conn: &Connection, parent_id: Uuid) -> StoreResult<Option<ReplyPreview>> {
    let preview = conn
        .query_row(
            "SELECT u.id, u.username, u.display_name, m.body, m.deleted
             FROM messages m JOIN users u ON u.id = m.author_id WHERE m.id = ?1",
            [parent_id.to_string()],
            |row| {
                let body: String = row.get(3)?;
                Ok(ReplyPreview {
                    id: parent_id,
                    author: UserRef {
                        id: uuid_column(row, 0)?,
                        username: row.get(1)?,
                        display_name: row.get(2)?,
                    },
                    excerpt: rich_text::excerpt(&body, EXCERPT_CHARS),
                    deleted: row.get(4)?,
                })
            },
        )
        .optional()?;
    Ok(preview)
}
