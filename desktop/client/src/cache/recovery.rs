//! Rebuilding a cache file that cannot be opened or fails its integrity check.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::outbox::{OutboxItem, item_row};
use super::{Cache, open_checked};
use crate::error::{ClientError, Result};

/// Moves the unreadable file aside, creates a new cache, and copies in whatever of
/// the old outbox can still be read. Returns the new connection and the moved path.
pub(super) fn rebuild(path: &Path, cause: &ClientError) -> Result<(Connection, PathBuf)> {
    let saved = read_outbox(path).unwrap_or_default();

    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let moved = path.with_extension(format!("db.corrupt-{stamp}"));
    std::fs::rename(path, &moved).map_err(anyhow::Error::from)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, PathBuf::from(format!("{}{suffix}", moved.display())));
        }
    }
    tracing::warn!(
        cache = %path.display(),
        moved_to = %moved.display(),
        error = %cause,
        kept_outbox_items = saved.len(),
        "the cache file was unreadable; moved it aside and rebuilt it from the server"
    );

    let connection = open_checked(path)?;
    let cache = Cache::from_connection(connection, path);
    cache.restore_outbox(&saved)?;
    let connection = cache.connection.into_inner().unwrap();
    Ok((connection, moved))
}

fn read_outbox(path: &Path) -> Result<Vec<OutboxItem>> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = connection.prepare(
        "SELECT id, kind, room_id, message_id, client_id, body, reply_to, attachments, emoji,
                state, error_code, error_message, attempts, created_at
         FROM outbox ORDER BY id",
    )?;
    let mut items = Vec::new();
    // A damaged table may yield some rows before an error; keep those.
    if let Ok(rows) = statement.query_map([], item_row) {
        for row in rows {
            match row {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
    }
    Ok(items)
}
