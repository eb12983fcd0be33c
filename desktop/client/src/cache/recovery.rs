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
    let _ = std::fs::remove_file(super::check_failed_marker(path));

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

#[cfg(test)]
mod tests {
    use super::super::{Cache, NewOperation, OperationKind, check_failed_marker};

    #[test]
    fn failed_background_check_rebuilds_at_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let (cache, moved) = Cache::open(&path).unwrap();
        assert!(moved.is_none());
        let operation = NewOperation {
            body: Some("kept".into()),
            ..NewOperation::default()
        };
        cache.enqueue(OperationKind::Send, operation).unwrap();
        drop(cache);

        std::fs::write(check_failed_marker(&path), "integrity check failed").unwrap();
        let (cache, moved) = Cache::open(&path).unwrap();

        let moved = moved.expect("the cache was rebuilt");
        assert!(
            moved.exists(),
            "the damaged file was moved to {}",
            moved.display()
        );
        assert!(
            !check_failed_marker(&path).exists(),
            "the marker was removed"
        );
        let outbox = cache.outbox().unwrap();
        assert_eq!(outbox.len(), 1, "the outbox survived the rebuild");
        assert_eq!(outbox[0].body.as_deref(), Some("kept"));
    }
}
