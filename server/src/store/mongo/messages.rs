//! Messages, replies, reactions, pins and full-text search.

use std::collections::{HashMap, HashSet};

use mongodb::ClientSession;
use mongodb::bson::{Bson, DateTime, Document, doc};
use roomler_shared::model::{Attachment, Mention, Message, Pin, Reaction, ReplyPreview, UserRef};
use roomler_shared::rich_text;
use roomler_shared::ws::EventKind;
use uuid::Uuid;

use super::documents::{
    AttachmentDoc, FileDoc, MessageDoc, ReactionDoc, UserDoc, json_to_document, mentions_from_bson,
    mentions_to_bson, pair_id, parse_id, reaction_id, to_time,
};
use super::events::{Audience, emit, integer};
use super::snippet::snippet;
use super::{Db, collect, limit_of};
use crate::store::{
    Conflict, Fanout, HistoryPage, MessageMeta, NewMessage, Posted, SearchRow, StoreError,
    StoreResult,
};

/// Characters of the parent's body that a reply preview shows.
const EXCERPT_CHARS: usize = 120;

/// Kinds of event whose payload is a whole message, and so carries its content.
const CONTENT_EVENTS: [EventKind; 4] = [
    EventKind::MessageCreated,
    EventKind::MessageEdited,
    EventKind::MessagePinned,
    EventKind::MessageUnpinned,
];

pub(super) async fn post_message(
    s: &mut ClientSession,
    db: &Db,
    new: NewMessage,
) -> StoreResult<Posted> {
    if let Some(earlier) = earlier_post(s, db, &new).await? {
        return Ok(earlier);
    }

    // The room document's counter gives the number; a concurrent post to the same
    // room conflicts on this document and its transaction runs again.
    let room = db
        .rooms
        .clone_with_type::<Document>()
        .find_one_and_update(
            doc! { "_id": new.room_id.to_string() },
            doc! { "$inc": { "last_seq": 1_i64 } },
        )
        .return_document(mongodb::options::ReturnDocument::After)
        .projection(doc! { "last_seq": 1 })
        .session(&mut *s)
        .await?
        .ok_or_else(|| anyhow::anyhow!("room {} not found", new.room_id))?;
    let seq = integer(&room, "last_seq")?;

    let id = Uuid::now_v7();
    db.messages
        .insert_one(MessageDoc {
            id: id.to_string(),
            room_id: new.room_id.to_string(),
            seq,
            author_id: new.author_id.to_string(),
            body: new.body,
            html: new.html,
            mentions: mentions_to_bson(&new.mentions)?,
            reply_to: new.reply_to.map(|id| id.to_string()),
            client_id: Some(new.client_id),
            pinned_by: None,
            pinned_at: None,
            deleted: false,
            created_at: DateTime::now(),
            edited_at: None,
        })
        .session(&mut *s)
        .await?;
    let attachments: Vec<AttachmentDoc> = new
        .attachments
        .iter()
        .enumerate()
        .map(|(position, file_id)| AttachmentDoc {
            id: pair_id(id, file_id),
            message_id: id.to_string(),
            file_id: file_id.to_string(),
            position: position as i64,
            room_id: new.room_id.to_string(),
        })
        .collect();
    if !attachments.is_empty() {
        db.attachments
            .insert_many(&attachments)
            .session(&mut *s)
            .await?;
    }

    let message = require_message(s, db, id).await?;
    let fanout = message_event(s, db, EventKind::MessageCreated, &message).await?;
    Ok(Posted::Created(message, fanout))
}

/// Finds the message that an earlier post with the same author and `client_id` stored,
/// or fails with [`Conflict::ClientIdReused`] when that message is in another room or,
/// unless it was edited or deleted since, has another body.
pub(super) async fn earlier_post(
    s: &mut ClientSession,
    db: &Db,
    new: &NewMessage,
) -> StoreResult<Option<Posted>> {
    let NewMessage {
        author_id,
        client_id,
        room_id,
        ..
    } = new;
    let earlier = db
        .messages
        .find_one(doc! { "author_id": author_id.to_string(), "client_id": client_id.as_str() })
        .session(&mut *s)
        .await?;
    let Some(earlier) = earlier else {
        return Ok(None);
    };
    let changed = earlier.deleted || earlier.edited_at.is_some();
    if earlier.room_id != room_id.to_string() || (!changed && earlier.body != new.body) {
        return Err(StoreError::Conflict(Conflict::ClientIdReused));
    }
    let message = complete_one(s, db, earlier).await?;
    Ok(message.map(Posted::Existing))
}

pub(super) async fn message_meta(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<Option<MessageMeta>> {
    let message = db
        .messages
        .find_one(doc! { "_id": id.to_string() })
        .session(&mut *s)
        .await?;
    message
        .map(|message| {
            Ok(MessageMeta {
                id,
                room_id: parse_id(&message.room_id)?,
                author_id: parse_id(&message.author_id)?,
                deleted: message.deleted,
            })
        })
        .transpose()
}

pub(super) async fn message(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<Option<Message>> {
    let message = db
        .messages
        .find_one(doc! { "_id": id.to_string() })
        .session(&mut *s)
        .await?;
    match message {
        Some(message) => complete_one(s, db, message).await,
        None => Ok(None),
    }
}

async fn require_message(s: &mut ClientSession, db: &Db, id: Uuid) -> StoreResult<Message> {
    message(s, db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("message {id} not found").into())
}

pub(super) async fn history(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    page: HistoryPage,
) -> StoreResult<Vec<Message>> {
    let room = room_id.to_string();
    let (filter, order, limit) = match page {
        HistoryPage::Latest { limit } => (doc! { "room_id": room }, -1, limit),
        HistoryPage::Before { before, limit } => (
            doc! { "room_id": room, "seq": { "$lt": before } },
            -1,
            limit,
        ),
        HistoryPage::After { after, limit } => {
            (doc! { "room_id": room, "seq": { "$gt": after } }, 1, limit)
        }
    };
    let Some(limit) = limit_of(limit) else {
        return Ok(Vec::new());
    };
    find_messages(s, db, filter, doc! { "seq": order }, Some(limit)).await
}

pub(super) async fn thread(
    s: &mut ClientSession,
    db: &Db,
    parent_id: Uuid,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    let Some(limit) = limit_of(limit) else {
        return Ok(Vec::new());
    };
    let filter = doc! { "reply_to": parent_id.to_string() };
    find_messages(s, db, filter, doc! { "seq": 1 }, Some(limit)).await
}

pub(super) async fn pins(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<Vec<Message>> {
    let filter = doc! { "room_id": room_id.to_string(), "pinned_at": { "$type": "date" } };
    find_messages(s, db, filter, doc! { "pinned_at": -1 }, None).await
}

pub(super) async fn edit_message(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
    body: String,
    html: String,
    mentions: Vec<Mention>,
) -> StoreResult<(Message, Fanout)> {
    let fields = doc! {
        "body": body,
        "html": html,
        "mentions": mentions_to_bson(&mentions)?,
        "edited_at": DateTime::now(),
    };
    db.messages
        .update_one(doc! { "_id": id.to_string() }, doc! { "$set": fields })
        .session(&mut *s)
        .await?;

    let message = require_message(s, db, id).await?;
    // Earlier events must not keep replaying the text that the edit replaced.
    scrub_events(s, db, &message).await?;
    scrub_replies(s, db, id).await?;
    let fanout = message_event(s, db, EventKind::MessageEdited, &message).await?;
    Ok((message, fanout))
}

pub(super) async fn delete_message(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<Fanout> {
    let tombstone = doc! {
        "body": "",
        "html": "",
        "mentions": Bson::Array(Vec::new()),
        "deleted": true,
        "pinned_by": Bson::Null,
        "pinned_at": Bson::Null,
    };
    db.messages
        .update_one(doc! { "_id": id.to_string() }, doc! { "$set": tombstone })
        .session(&mut *s)
        .await?;
    let this_message = doc! { "message_id": id.to_string() };
    db.reactions
        .delete_many(this_message.clone())
        .session(&mut *s)
        .await?;
    db.attachments
        .delete_many(this_message)
        .session(&mut *s)
        .await?;

    let tombstone = require_message(s, db, id).await?;
    scrub_events(s, db, &tombstone).await?;
    scrub_replies(s, db, id).await?;
    message_event(s, db, EventKind::MessageDeleted, &tombstone).await
}

pub(super) async fn set_reaction(
    s: &mut ClientSession,
    db: &Db,
    message_id: Uuid,
    user_id: Uuid,
    emoji: String,
    present: bool,
) -> StoreResult<Option<Fanout>> {
    let meta = message_meta(s, db, message_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("message {message_id} not found"))?;
    let id = reaction_id(message_id, user_id, &emoji);
    let changed = if present {
        // An upsert, not an insert: a duplicate-key error would abort the transaction.
        let reaction = doc! {
            "message_id": message_id.to_string(),
            "user_id": user_id.to_string(),
            "emoji": &emoji,
            "room_id": meta.room_id.to_string(),
            "created_at": DateTime::now(),
        };
        let result = db
            .reactions
            .update_one(doc! { "_id": &id }, doc! { "$setOnInsert": reaction })
            .upsert(true)
            .session(&mut *s)
            .await?;
        result.upserted_id.is_some()
    } else {
        let result = db
            .reactions
            .delete_one(doc! { "_id": &id })
            .session(&mut *s)
            .await?;
        result.deleted_count > 0
    };
    if !changed {
        return Ok(None);
    }

    let message = require_message(s, db, message_id).await?;
    let kind = if present {
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
    let fanout = emit(
        s,
        db,
        kind,
        Some(message.room_id),
        Some(message_id),
        data,
        Audience::Room(message.room_id),
    )
    .await?;
    Ok(Some(fanout))
}

pub(super) async fn set_pin(
    s: &mut ClientSession,
    db: &Db,
    message_id: Uuid,
    by: Option<Uuid>,
) -> StoreResult<(Message, Fanout)> {
    let fields = match by {
        Some(by) => doc! { "pinned_by": by.to_string(), "pinned_at": DateTime::now() },
        None => doc! { "pinned_by": Bson::Null, "pinned_at": Bson::Null },
    };
    db.messages
        .update_one(
            doc! { "_id": message_id.to_string() },
            doc! { "$set": fields },
        )
        .session(&mut *s)
        .await?;
    let message = require_message(s, db, message_id).await?;
    let kind = if by.is_some() {
        EventKind::MessagePinned
    } else {
        EventKind::MessageUnpinned
    };
    let fanout = message_event(s, db, kind, &message).await?;
    Ok((message, fanout))
}

/// Full-text search over the rooms `user_id` is a member of, best matches first.
///
/// Every word of the query must occur in the body: each is sent to `$text` as a quoted
/// phrase, because MongoDB requires every phrase to match (it ORs bare terms), and
/// quoting also takes `$text` operators such as `-` literally.
///
/// NOTE: MongoDB's text index matches whole words only, while the SQLite backend also
/// matches the last word as a prefix (`depl` finds "deploy" there, not here).
pub(super) async fn search(
    s: &mut ClientSession,
    db: &Db,
    user_id: Uuid,
    query: &str,
    room_id: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<SearchRow>> {
    // Punctuation around a word is dropped, as SQLite's tokenizer drops it; a word of
    // punctuation alone would otherwise be a phrase that no body contains.
    let words: Vec<String> = query
        .split_whitespace()
        .map(|word| {
            word.replace('"', "")
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_string()
        })
        .filter(|word| !word.is_empty())
        .collect();
    let Some(limit) = limit_of(limit) else {
        return Ok(Vec::new());
    };
    if words.is_empty() {
        return Ok(Vec::new());
    }

    let cursor = db
        .memberships
        .find(doc! { "user_id": user_id.to_string() })
        .session(&mut *s)
        .await?;
    let mut rooms: Vec<String> = collect(cursor, s)
        .await?
        .into_iter()
        .map(|membership| membership.room_id)
        .collect();
    if let Some(only) = room_id {
        rooms.retain(|room| *room == only.to_string());
    }
    if rooms.is_empty() {
        return Ok(Vec::new());
    }

    let phrases: Vec<String> = words.iter().map(|word| format!("\"{word}\"")).collect();
    let filter = doc! {
        "$text": { "$search": phrases.join(" ") },
        "deleted": false,
        "room_id": { "$in": rooms },
    };
    let score = doc! { "score": { "$meta": "textScore" } };
    let cursor = db
        .messages
        .find(filter)
        .projection(score.clone())
        .sort(score)
        .limit(limit)
        .session(&mut *s)
        .await?;
    let found = collect(cursor, s).await?;
    let snippets: Vec<String> = found
        .iter()
        .map(|message| snippet(&message.body, &words))
        .collect();
    let messages = complete_all(s, db, found).await?;
    Ok(messages
        .into_iter()
        .zip(snippets)
        .map(|(message, snippet)| SearchRow { message, snippet })
        .collect())
}

/// Rewrites the payload of the message's earlier content events to its current state.
async fn scrub_events(s: &mut ClientSession, db: &Db, message: &Message) -> StoreResult<()> {
    let kinds: Vec<&str> = CONTENT_EVENTS.iter().map(|kind| kind.as_str()).collect();
    let data = json_to_document(&serde_json::to_value(message)?)?;
    db.events
        .update_many(
            doc! { "message_id": message.id.to_string(), "kind": { "$in": kinds } },
            doc! { "$set": { "data": data } },
        )
        .session(&mut *s)
        .await?;
    Ok(())
}

/// Rewrites the events of the replies to a message, which quote the start of it.
async fn scrub_replies(s: &mut ClientSession, db: &Db, id: Uuid) -> StoreResult<()> {
    let filter = doc! { "reply_to": id.to_string() };
    let replies = find_messages(s, db, filter, doc! { "seq": 1 }, None).await?;
    for reply in &replies {
        scrub_events(s, db, reply).await?;
    }
    Ok(())
}

async fn message_event(
    s: &mut ClientSession,
    db: &Db,
    kind: EventKind,
    message: &Message,
) -> StoreResult<Fanout> {
    let data = serde_json::to_value(message)?;
    emit(
        s,
        db,
        kind,
        Some(message.room_id),
        Some(message.id),
        data,
        Audience::Room(message.room_id),
    )
    .await
}

async fn find_messages(
    s: &mut ClientSession,
    db: &Db,
    filter: Document,
    sort: Document,
    limit: Option<i64>,
) -> StoreResult<Vec<Message>> {
    let mut find = db.messages.find(filter).sort(sort);
    if let Some(limit) = limit {
        find = find.limit(limit);
    }
    let cursor = find.session(&mut *s).await?;
    let found = collect(cursor, s).await?;
    complete_all(s, db, found).await
}

async fn complete_one(
    s: &mut ClientSession,
    db: &Db,
    message: MessageDoc,
) -> StoreResult<Option<Message>> {
    Ok(complete_all(s, db, vec![message]).await?.pop())
}

/// Turns message documents into messages, in the same order, with their authors,
/// reply counts, reactions, attachments and reply previews, in one query per kind.
/// A message whose author is unknown is skipped, as the SQLite join does.
async fn complete_all(
    s: &mut ClientSession,
    db: &Db,
    found: Vec<MessageDoc>,
) -> StoreResult<Vec<Message>> {
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&String> = found.iter().map(|message| &message.id).collect();

    let parent_ids: HashSet<&String> = found.iter().filter_map(|m| m.reply_to.as_ref()).collect();
    let cursor = db
        .messages
        .find(doc! { "_id": { "$in": parent_ids.into_iter().collect::<Vec<_>>() } })
        .session(&mut *s)
        .await?;
    let parents: HashMap<String, MessageDoc> = collect(cursor, s)
        .await?
        .into_iter()
        .map(|parent| (parent.id.clone(), parent))
        .collect();

    let author_ids: HashSet<&String> = found
        .iter()
        .chain(parents.values())
        .map(|message| &message.author_id)
        .collect();
    let authors = user_refs(s, db, author_ids.into_iter().collect()).await?;
    let reply_counts = reply_counts(s, db, &ids).await?;
    let mut reactions = reactions(s, db, &ids).await?;
    let mut attachments = attachments(s, db, &ids).await?;

    let mut messages = Vec::with_capacity(found.len());
    for message in &found {
        let Some(author) = authors.get(&message.author_id) else {
            continue;
        };
        let reply_to = match message.reply_to.as_ref().and_then(|id| parents.get(id)) {
            Some(parent) => reply_preview(parent, &authors)?,
            None => None,
        };
        messages.push(Message {
            id: parse_id(&message.id)?,
            room_id: parse_id(&message.room_id)?,
            seq: message.seq,
            author: author.clone(),
            body: message.body.clone(),
            html: message.html.clone(),
            mentions: mentions_from_bson(&message.mentions),
            reply_to,
            reply_count: reply_counts.get(&message.id).copied().unwrap_or(0),
            reactions: reactions.remove(&message.id).unwrap_or_default(),
            attachments: attachments.remove(&message.id).unwrap_or_default(),
            client_id: message.client_id.clone(),
            pinned: match (&message.pinned_by, message.pinned_at) {
                (Some(by), Some(at)) => Some(Pin {
                    by: parse_id(by)?,
                    at: to_time(at),
                }),
                _ => None,
            },
            deleted: message.deleted,
            created_at: to_time(message.created_at),
            edited_at: message.edited_at.map(to_time),
        });
    }
    Ok(messages)
}

fn reply_preview(
    parent: &MessageDoc,
    authors: &HashMap<String, UserRef>,
) -> StoreResult<Option<ReplyPreview>> {
    let Some(author) = authors.get(&parent.author_id) else {
        return Ok(None);
    };
    Ok(Some(ReplyPreview {
        id: parse_id(&parent.id)?,
        author: author.clone(),
        excerpt: rich_text::excerpt(&parent.body, EXCERPT_CHARS),
        deleted: parent.deleted,
    }))
}

async fn user_refs(
    s: &mut ClientSession,
    db: &Db,
    ids: Vec<&String>,
) -> StoreResult<HashMap<String, UserRef>> {
    let cursor = db
        .users
        .find(doc! { "_id": { "$in": ids } })
        .session(&mut *s)
        .await?;
    let mut refs = HashMap::new();
    for user in collect::<UserDoc>(cursor, s).await? {
        let user_ref = UserRef {
            id: parse_id(&user.id)?,
            username: user.username,
            display_name: user.display_name,
        };
        refs.insert(user.id, user_ref);
    }
    Ok(refs)
}

/// Counts the undeleted replies to each message.
async fn reply_counts(
    s: &mut ClientSession,
    db: &Db,
    ids: &[&String],
) -> StoreResult<HashMap<String, u32>> {
    let pipeline = [
        doc! { "$match": { "reply_to": { "$in": ids }, "deleted": false } },
        doc! { "$group": { "_id": "$reply_to", "count": { "$sum": 1 } } },
    ];
    let cursor = db.messages.aggregate(pipeline).session(&mut *s).await?;
    let mut counts = HashMap::new();
    for group in collect(cursor, s).await? {
        let id = group.get_str("_id").unwrap_or_default().to_string();
        counts.insert(id, integer(&group, "count")? as u32);
    }
    Ok(counts)
}

/// Loads the reactions of each message, one entry per emoji in the order of its first
/// use.
async fn reactions(
    s: &mut ClientSession,
    db: &Db,
    ids: &[&String],
) -> StoreResult<HashMap<String, Vec<Reaction>>> {
    let cursor = db
        .reactions
        .find(doc! { "message_id": { "$in": ids } })
        .sort(doc! { "created_at": 1, "user_id": 1 })
        .session(&mut *s)
        .await?;
    let mut by_message: HashMap<String, Vec<Reaction>> = HashMap::new();
    for reaction in collect::<ReactionDoc>(cursor, s).await? {
        let user_id = parse_id(&reaction.user_id)?;
        let list = by_message.entry(reaction.message_id).or_default();
        match list.iter_mut().find(|entry| entry.emoji == reaction.emoji) {
            Some(entry) => {
                entry.count += 1;
                entry.user_ids.push(user_id);
            }
            None => list.push(Reaction {
                emoji: reaction.emoji,
                count: 1,
                user_ids: vec![user_id],
            }),
        }
    }
    Ok(by_message)
}

/// Loads the attachments of each message in their order, skipping missing files.
async fn attachments(
    s: &mut ClientSession,
    db: &Db,
    ids: &[&String],
) -> StoreResult<HashMap<String, Vec<Attachment>>> {
    let cursor = db
        .attachments
        .find(doc! { "message_id": { "$in": ids } })
        .sort(doc! { "message_id": 1, "position": 1 })
        .session(&mut *s)
        .await?;
    let links = collect::<AttachmentDoc>(cursor, s).await?;
    let file_ids: Vec<&String> = links.iter().map(|link| &link.file_id).collect();
    let cursor = db
        .files
        .find(doc! { "_id": { "$in": file_ids } })
        .session(&mut *s)
        .await?;
    let files: HashMap<String, FileDoc> = collect(cursor, s)
        .await?
        .into_iter()
        .map(|file| (file.id.clone(), file))
        .collect();

    let mut by_message: HashMap<String, Vec<Attachment>> = HashMap::new();
    for link in &links {
        let Some(file) = files.get(&link.file_id) else {
            continue;
        };
        let file_id = parse_id(&file.id)?;
        by_message
            .entry(link.message_id.clone())
            .or_default()
            .push(Attachment {
                id: file_id,
                name: file.name.clone(),
                size: file.size as u64,
                mime: file.mime.clone(),
                url: format!("/api/files/{file_id}"),
                thumbnail_url: file
                    .thumbnail_sha256
                    .as_ref()
                    .map(|_| format!("/api/files/{file_id}/thumbnail")),
            });
    }
    Ok(by_message)
}
