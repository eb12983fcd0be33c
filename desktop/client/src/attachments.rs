//! Attachments: streamed uploads with progress and cancellation, resumable downloads
//! into the profile's `files/` folder, thumbnails kept in the cache for offline use,
//! and the queued edits, deletes and reactions of the outbox.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use roomler_shared::api::FileInfo;
use roomler_shared::model::Attachment;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cache::{NewOperation, OperationKind, OutboxItem};
use crate::engine::Engine;
use crate::error::{ClientError, Result};

/// Name of the folder inside the profile that contains downloaded files.
pub const FILES_FOLDER: &str = "files";
/// Suffix of a download in progress. The file is renamed once it is complete.
const PART_SUFFIX: &str = ".part";
/// Bytes read from disk per upload chunk, and so per progress report.
const UPLOAD_CHUNK_BYTES: usize = 64 * 1024;
/// Maximum length in bytes of the cleaned name in a local file name. Common file
/// systems allow 255 bytes, so the id prefix and the `.part` suffix still fit.
const LOCAL_NAME_MAX_BYTES: usize = 200;
/// Maximum size of a thumbnail kept in the cache. The server renders PNGs of at most
/// 320 px a side, far smaller than this.
const THUMBNAIL_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The progress of an upload or a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Bytes of the file transferred so far. A resumed download counts the bytes
    /// that were already on disk.
    pub bytes: u64,
    /// Size of the whole file in bytes.
    pub total: u64,
}

impl Engine {
    /// Uploads a file to a room as a stream, so it is never held whole in memory.
    /// Returns what the server stored, and a message attaches the file by its id.
    ///
    /// `progress` is called for each chunk read into the request body, with the bytes
    /// read so far. When `cancel` is cancelled the request is dropped and
    /// [`ClientError::Cancelled`] is returned.
    pub async fn upload_file(
        &self,
        room_id: Uuid,
        path: &Path,
        progress: impl Fn(Progress) + Send + Sync + 'static,
        cancel: CancellationToken,
    ) -> Result<FileInfo> {
        let unreadable = |error: std::io::Error| {
            ClientError::Usage(format!("failed to read {}: {error}", path.display()))
        };
        let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let metadata = file.metadata().await.map_err(unreadable)?;
        if !metadata.is_file() {
            return Err(ClientError::Usage(format!(
                "{} is not a regular file; attach a file, not a folder",
                path.display()
            )));
        }
        let total = metadata.len();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_string());
        if cancel.is_cancelled() {
            return Err(ClientError::Cancelled);
        }

        // `take` keeps the body at the declared length even if the file grows meanwhile.
        let reader = file.take(total);
        let chunks = tokio_util::io::ReaderStream::with_capacity(reader, UPLOAD_CHUNK_BYTES);
        let body = reqwest::Body::wrap_stream(counted(chunks, total, progress, cancel.clone()));
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ClientError::Cancelled),
            result = self.api().upload(room_id, &name, body, total) => match result {
                // The body stream fails on cancellation, which surfaces as a network error.
                Err(_) if cancel.is_cancelled() => Err(ClientError::Cancelled),
                other => other,
            },
        }
    }

    /// Downloads an attachment to `files/ID-NAME` in the profile folder and returns
    /// that path, where NAME is the attachment's name without folders.
    ///
    /// A file downloaded before that is still there in full is returned without
    /// contacting the server. The bytes go to `ID-NAME.part` first, so a download that
    /// was cancelled or broke off resumes from where it stopped. `progress` is called
    /// once with the bytes already on disk and then for each chunk received.
    pub async fn download(
        &self,
        attachment: &Attachment,
        progress: impl Fn(Progress) + Send + Sync + 'static,
        cancel: CancellationToken,
    ) -> Result<PathBuf> {
        if let Some(path) = self.cached_download(attachment)? {
            return Ok(path);
        }
        let folder = self.profile().dir().join(FILES_FOLDER);
        std::fs::create_dir_all(&folder).map_err(|error| {
            ClientError::Other(anyhow::anyhow!(
                "failed to create the downloads folder {}: {error}",
                folder.display()
            ))
        })?;
        let name = local_name(attachment.id, &attachment.name);
        let target = folder.join(&name);
        let part = folder.join(format!("{name}{PART_SUFFIX}"));
        let lock = download_lock(&part);
        let _serialized = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ClientError::Cancelled),
            guard = lock.lock() => guard,
        };
        // A download of the same attachment may have finished while this one waited.
        if let Some(path) = self.cached_download(attachment)? {
            return Ok(path);
        }

        let mut offset = file_len(&part)?.unwrap_or(0);
        if offset > attachment.size {
            // A `.part` longer than the file cannot be a prefix of it, so start over.
            remove_file(&part)?;
            offset = 0;
        }
        // A `.part` of the full size is a download that stopped just before its rename.
        if offset < attachment.size || !part.exists() {
            self.fetch_into(&part, attachment, offset, &progress, &cancel)
                .await?;
        }

        let received = file_len(&part)?.unwrap_or(0);
        if received != attachment.size {
            remove_file(&part)?;
            return Err(ClientError::Other(anyhow::anyhow!(
                "the download of {} has {received} bytes but the server listed {} bytes; \
                 download it again",
                attachment.name,
                attachment.size
            )));
        }
        std::fs::rename(&part, &target).map_err(|error| {
            ClientError::Other(anyhow::anyhow!(
                "failed to move the download to {}: {error}",
                target.display()
            ))
        })?;
        self.cache().record_file(
            attachment.id,
            &attachment.name,
            attachment.size,
            &attachment.mime,
            &target,
        )?;
        tracing::debug!(
            file_id = %attachment.id,
            path = %target.display(),
            "downloaded an attachment"
        );
        Ok(target)
    }

    /// Returns the recorded download of an attachment if it is still there in full.
    fn cached_download(&self, attachment: &Attachment) -> Result<Option<PathBuf>> {
        match self.cache().local_file(attachment.id)? {
            Some(path) if file_len(&path)? == Some(attachment.size) => Ok(Some(path)),
            _ => Ok(None),
        }
    }

    /// Receives the attachment's bytes from `offset` on and writes them to `part`,
    /// appending when the server honours the range and rewriting it otherwise.
    async fn fetch_into(
        &self,
        part: &Path,
        attachment: &Attachment,
        offset: u64,
        progress: &(impl Fn(Progress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<()> {
        if cancel.is_cancelled() {
            return Err(ClientError::Cancelled);
        }
        // Resuming without `If-Range` is safe because the server stores uploads by
        // content and never changes the bytes behind a file id.
        let request = async {
            match self.api().download(&attachment.url, offset).await {
                // The server rejects a range that starts at or past the end of its copy,
                // so the download starts over.
                Err(ClientError::Rejected { status, .. })
                    if offset > 0 && status == StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    self.api().download(&attachment.url, 0).await
                }
                other => other,
            }
        };
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ClientError::Cancelled),
            response = request => response?,
        };
        let append = offset > 0 && response.status() == StatusCode::PARTIAL_CONTENT;
        if append {
            check_content_range(&response, offset)?;
        }
        let mut written = if append { offset } else { 0 };
        let mut file = open_part(part, append).await?;
        progress(Progress {
            bytes: written,
            total: attachment.size,
        });

        let mut body = response.bytes_stream();
        loop {
            let chunk = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    // The bytes so far stay in `.part` for the next attempt.
                    file.flush().await.map_err(write_failed(part))?;
                    return Err(ClientError::Cancelled);
                }
                chunk = body.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > attachment.size {
                drop(file);
                remove_file(part)?;
                return Err(ClientError::Other(anyhow::anyhow!(
                    "the server sent more than the {} bytes listed for {}",
                    attachment.size,
                    attachment.name
                )));
            }
            file.write_all(&chunk).await.map_err(write_failed(part))?;
            progress(Progress {
                bytes: written,
                total: attachment.size,
            });
        }
        file.flush().await.map_err(write_failed(part))?;
        file.sync_all().await.map_err(write_failed(part))?;
        if written < attachment.size {
            // The `.part` stays, so the next attempt resumes.
            return Err(ClientError::Network(format!(
                "the download of {} ended after {written} of {} bytes",
                attachment.name, attachment.size
            )));
        }
        Ok(())
    }

    /// Returns the PNG thumbnail of an attachment, from the cache when it was fetched
    /// before, else from the server, storing it so it stays readable offline.
    /// `None` when the attachment has no thumbnail.
    pub async fn thumbnail(&self, attachment: &Attachment) -> Result<Option<Vec<u8>>> {
        if let Some(png) = self.cache().thumbnail(attachment.id)? {
            return Ok(Some(png));
        }
        let Some(url) = &attachment.thumbnail_url else {
            return Ok(None);
        };
        let response = match self.api().download(url, 0).await {
            Err(ClientError::Rejected { status, .. }) if status == StatusCode::NOT_FOUND => {
                return Ok(None);
            }
            other => other?,
        };
        let png = read_limited(response, THUMBNAIL_MAX_BYTES).await?;
        self.cache().record_thumbnail(
            attachment.id,
            &attachment.name,
            attachment.size,
            &attachment.mime,
            &png,
        )?;
        Ok(Some(png))
    }
}

/// Queued changes to existing messages. [`Engine::flush_outbox`] sends them in order.
impl Engine {
    /// Queues an edit of one of the user's messages.
    pub fn queue_edit(&self, message_id: Uuid, room_id: Uuid, body: &str) -> Result<OutboxItem> {
        roomler_shared::limits::body(body)
            .map_err(|invalid| ClientError::Usage(invalid.message))?;
        let operation = NewOperation {
            room_id,
            message_id: Some(message_id),
            body: Some(body.to_string()),
            ..NewOperation::default()
        };
        self.queue_operation(OperationKind::Edit, operation)
    }

    /// Queues the deletion of a message.
    pub fn queue_delete(&self, message_id: Uuid, room_id: Uuid) -> Result<OutboxItem> {
        let operation = NewOperation {
            room_id,
            message_id: Some(message_id),
            ..NewOperation::default()
        };
        self.queue_operation(OperationKind::Delete, operation)
    }

    /// Queues adding (`present`) or removing the user's reaction with `emoji`.
    pub fn queue_reaction(
        &self,
        message_id: Uuid,
        room_id: Uuid,
        emoji: &str,
        present: bool,
    ) -> Result<OutboxItem> {
        if emoji.trim().is_empty() {
            return Err(ClientError::Usage(
                "the reaction is empty; give an emoji such as 👍".into(),
            ));
        }
        let kind = if present {
            OperationKind::React
        } else {
            OperationKind::Unreact
        };
        let operation = NewOperation {
            room_id,
            message_id: Some(message_id),
            emoji: Some(emoji.to_string()),
            ..NewOperation::default()
        };
        self.queue_operation(kind, operation)
    }
}

/// Downloads in progress in this process by `.part` path. Two downloads of one
/// attachment take turns, so they never write the same `.part` at once.
///
/// NOTE: another process on the same profile, e.g. the CLI beside the app, is not
/// kept out.
static DOWNLOADS: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Returns the lock of the download into `part`, creating it when no download holds it.
fn download_lock(part: &Path) -> Arc<tokio::sync::Mutex<()>> {
    let mut downloads = DOWNLOADS.lock().unwrap();
    if let Some(lock) = downloads.get(part).and_then(Weak::upgrade) {
        return lock;
    }
    // Entries of finished downloads go here, so the map stays as small as the
    // number of downloads running at once.
    downloads.retain(|_, lock| lock.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    downloads.insert(part.to_path_buf(), Arc::downgrade(&lock));
    lock
}

/// Wraps upload chunks so that each one is counted and reported, and the stream fails
/// once `cancel` is cancelled, which aborts the request body.
fn counted<S>(
    chunks: S,
    total: u64,
    progress: impl Fn(Progress) + Send + Sync + 'static,
    cancel: CancellationToken,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let progress = Arc::new(progress);
    let mut sent = 0u64;
    chunks.map(move |chunk| {
        if cancel.is_cancelled() {
            return Err(std::io::Error::other("the upload was cancelled"));
        }
        let chunk = chunk?;
        sent += chunk.len() as u64;
        progress(Progress { bytes: sent, total });
        Ok(chunk)
    })
}

/// Builds the local name of a download: the attachment id, a dash and the cleaned
/// name. The id keeps two files of the same name apart.
fn local_name(id: Uuid, name: &str) -> String {
    let cleaned: String = roomler_shared::limits::file_name(name)
        .chars()
        // Characters that Windows forbids in names. `/` and `\` are gone already.
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    // Windows drops trailing dots and spaces, which would change the name.
    let cleaned = cleaned.trim_end_matches(['.', ' ']);
    let cleaned = truncate_keeping_extension(cleaned, LOCAL_NAME_MAX_BYTES);
    format!("{id}-{cleaned}")
}

/// Shortens `name` to at most `max_bytes` bytes, cutting the stem on a character
/// boundary and keeping a short extension.
fn truncate_keeping_extension(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_string();
    }
    let extension = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => &name[dot..],
        _ => "",
    };
    let mut end = max_bytes - extension.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &name[..end])
}

/// Checks that a 206 response starts where the `.part` ends.
fn check_content_range(response: &reqwest::Response, offset: u64) -> Result<()> {
    let range = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let start = range
        .strip_prefix("bytes ")
        .and_then(|rest| rest.split('-').next())
        .and_then(|start| start.parse::<u64>().ok());
    if start == Some(offset) {
        return Ok(());
    }
    Err(ClientError::Other(anyhow::anyhow!(
        "the server resumed the download with Content-Range {range:?}, not from byte {offset}"
    )))
}

async fn open_part(part: &Path, append: bool) -> Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true).create(true).truncate(true);
    }
    options.open(part).await.map_err(write_failed(part))
}

/// Reads a response body of at most `max_bytes` bytes.
async fn read_limited(response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>> {
    let mut body = response.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() > max_bytes {
            return Err(ClientError::Other(anyhow::anyhow!(
                "the thumbnail is larger than {max_bytes} bytes"
            )));
        }
    }
    Ok(bytes)
}

/// Returns the length of a file, or `None` when it does not exist.
fn file_len(path: &Path) -> Result<Option<u64>> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(Some(metadata.len())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ClientError::Other(anyhow::anyhow!(
            "failed to read {}: {error}",
            path.display()
        ))),
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ClientError::Other(anyhow::anyhow!(
            "failed to remove {}: {error}",
            path.display()
        ))),
    }
}

fn write_failed(path: &Path) -> impl Fn(std::io::Error) -> ClientError + '_ {
    move |error| {
        ClientError::Other(anyhow::anyhow!(
            "failed to write {}: {error}",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_name_drops_folders() {
        let id = Uuid::nil();
        let name = local_name(id, "../../etc/passwd");
        assert_eq!(name, format!("{id}-passwd"));
    }

    #[test]
    fn local_name_replaces_windows_characters() {
        let id = Uuid::nil();
        let name = local_name(id, "a<b>c:d|e?f*g.txt. ");
        assert_eq!(name, format!("{id}-a_b_c_d_e_f_g.txt"));
    }

    #[test]
    fn local_name_of_empty_name_is_file() {
        let id = Uuid::nil();
        // The shared cleaner turns an empty name into "file".
        assert_eq!(local_name(id, ""), format!("{id}-file"));
        assert_eq!(local_name(id, "..."), format!("{id}-file"));
    }

    #[test]
    fn long_name_keeps_extension() {
        let id = Uuid::nil();
        let name = local_name(id, &format!("{}.pdf", "ä".repeat(200)));
        let cleaned = name.strip_prefix(&format!("{id}-")).unwrap();
        assert!(
            cleaned.len() <= LOCAL_NAME_MAX_BYTES,
            "{} bytes",
            cleaned.len()
        );
        assert!(cleaned.ends_with(".pdf"), "{cleaned}");
        assert!(cleaned.starts_with('ä'), "{cleaned}");
    }
}
