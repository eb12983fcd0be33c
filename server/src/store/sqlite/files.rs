//! File metadata; the bytes live in the content-addressed blob folder.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use super::{from_millis, optional_uuid_column, to_millis, uuid_column};
use crate::store::{FileRecord, StoreResult};

const FILE_COLUMNS: &str =
    "id, sha256, size, mime, name, uploader_id, room_id, thumbnail_sha256, created_at";

pub(crate) fn create_file(tx: &Transaction, file: &FileRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO files (id, sha256, size, mime, name, uploader_id, room_id,
                            thumbnail_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            file.id.to_string(),
            file.sha256,
            file.size as i64,
            file.mime,
            file.name,
            file.uploader_id.to_string(),
            file.room_id.map(|id| id.to_string()),
            file.thumbnail_sha256,
            to_millis(file.created_at),
        ],
    )?;
    Ok(())
}

pub(crate) fn file(conn: &Connection, id: Uuid) -> StoreResult<Option<FileRecord>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1");
    Ok(conn
        .query_row(&sql, [id.to_string()], file_row)
        .optional()?)
}

pub(crate) fn room_files(
    conn: &Connection,
    room_id: Uuid,
    limit: u32,
) -> StoreResult<Vec<FileRecord>> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE room_id = ?1
           AND EXISTS (SELECT 1 FROM message_attachments a JOIN messages m ON m.id = a.message_id
                       WHERE a.file_id = f.id AND m.deleted = 0)
         ORDER BY created_at DESC LIMIT ?2"
    );
    let mut statement = conn.prepare(&sql)?;
    let files = statement
        .query_map(params![room_id.to_string(), limit], file_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(files)
}

fn file_row(row: &Row) -> rusqlite::Result<FileRecord> {
    Ok(FileRecord {
        id: uuid_column(row, 0)?,
        sha256: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        mime: row.get(3)?,
        name: row.get(4)?,
        uploader_id: uuid_column(row, 5)?,
        room_id: optional_uuid_column(row, 6)?,
        thumbnail_sha256: row.get(7)?,
        created_at: from_millis(row.get(8)?),
    })
}
