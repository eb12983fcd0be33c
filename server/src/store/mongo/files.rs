//! File metadata; the bytes live in the content-addressed blob folder.

use mongodb::ClientSession;
use mongodb::bson::doc;
use uuid::Uuid;

use super::documents::FileDoc;
use super::{Db, collect, limit_of};
use crate::store::{FileRecord, StoreResult};

pub(super) async fn create_file(
    s: &mut ClientSession,
    db: &Db,
    file: FileRecord,
) -> StoreResult<()> {
    db.files
        .insert_one(FileDoc::from_record(&file))
        .session(&mut *s)
        .await?;
    Ok(())
}

pub(super) async fn file(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<Option<FileRecord>> {
    let file = db
        .files
        .find_one(doc! { "_id": id.to_string() })
        .session(&mut *s)
        .await?;
    file.as_ref().map(FileDoc::to_record).transpose()
}

/// Lists the room's files that an undeleted message has attached, newest first.
pub(super) async fn room_files(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    limit: u32,
) -> StoreResult<Vec<FileRecord>> {
    let Some(limit) = limit_of(limit) else {
        return Ok(Vec::new());
    };
    let pipeline = [
        doc! { "$match": { "room_id": room_id.to_string() } },
        doc! { "$sort": { "created_at": -1, "_id": -1 } },
        doc! { "$lookup": {
            "from": super::collections::ATTACHMENTS,
            "localField": "_id",
            "foreignField": "file_id",
            "as": "uses",
        } },
        doc! { "$lookup": {
            "from": super::collections::MESSAGES,
            "localField": "uses.message_id",
            "foreignField": "_id",
            "as": "messages",
        } },
        doc! { "$match": { "messages": { "$elemMatch": { "deleted": false } } } },
        doc! { "$limit": limit },
        doc! { "$project": { "uses": 0, "messages": 0 } },
    ];
    let cursor = db
        .files
        .aggregate(pipeline)
        .with_type::<FileDoc>()
        .session(&mut *s)
        .await?;
    collect(cursor, s)
        .await?
        .iter()
        .map(FileDoc::to_record)
        .collect()
}
