//! The Tauri commands for a message's attachments: thumbnails and images shown inline,
//! downloads with progress and cancel, and opening a downloaded file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roomler_client::Engine;
use roomler_client::attachments::Progress;
use roomler_shared::model;
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{CommandError, ErrorCode};
use crate::state::AppState;

/// Maximum size in bytes of an image that the viewer shows. It crosses the IPC as a base64
/// data URL, a third larger than the file.
pub const IMAGE_VIEW_MAX_BYTES: u32 = 25 * 1024 * 1024;

type CommandResult<T> = Result<T, CommandError>;

/// The downloads in progress, by attachment id, so that `cancel_download` can stop one.
#[derive(Debug, Default, Clone)]
pub struct Downloads {
    running: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
}

impl Downloads {
    /// Registers a download and returns its token; a second download of the same
    /// attachment shares the first one's token.
    fn start(&self, attachment_id: Uuid) -> CancellationToken {
        let mut running = self.running.lock().unwrap();
        running.entry(attachment_id).or_default().clone()
    }

    fn finish(&self, attachment_id: Uuid) {
        self.running.lock().unwrap().remove(&attachment_id);
    }

    /// Cancels a running download; false when none was running.
    fn cancel(&self, attachment_id: Uuid) -> bool {
        match self.running.lock().unwrap().remove(&attachment_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// How far a download has come, sent to the UI while it runs.
#[derive(Debug, Clone, Copy, Serialize, specta::Type)]
pub struct DownloadProgress {
    /// Bytes on disk so far, counting those of an earlier, interrupted download.
    pub bytes: u64,
    /// Size of the whole file in bytes.
    pub total: u64,
}

impl From<Progress> for DownloadProgress {
    fn from(progress: Progress) -> Self {
        DownloadProgress {
            bytes: progress.bytes,
            total: progress.total,
        }
    }
}

/// Finds an attachment of a cached message.
fn find_attachment(
    engine: &Engine,
    message_id: Uuid,
    attachment_id: Uuid,
) -> CommandResult<model::Attachment> {
    let message = engine.cache().message(message_id)?.ok_or_else(|| {
        CommandError::not_found(format!(
            "message {message_id} not found in the cache; open its room first"
        ))
    })?;
    message
        .attachments
        .into_iter()
        .find(|attachment| attachment.id == attachment_id)
        .ok_or_else(|| {
            CommandError::not_found(format!(
                "attachment {attachment_id} not found on message {message_id}"
            ))
        })
}

/// Downloads an attachment, or finds it downloaded before, while `cancel_download` can
/// stop it, and returns the file's path.
async fn download_tracked(
    state: &AppState,
    engine: &Engine,
    attachment: &model::Attachment,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> CommandResult<PathBuf> {
    let cancel = state.downloads().start(attachment.id);
    let result = engine.download(attachment, progress, cancel).await;
    state.downloads().finish(attachment.id);
    Ok(result?)
}

/// Returns a `data:` URL of `bytes`, which the page's Content Security Policy allows for
/// images.
fn data_url(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", STANDARD.encode(bytes))
}

/// Returns an attachment's thumbnail as a PNG `data:` URL, or `null` when it has none. A
/// thumbnail fetched before comes from the cache, so it shows offline too.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%message_id, %attachment_id))]
pub async fn attachment_thumbnail(
    state: State<'_, AppState>,
    message_id: Uuid,
    attachment_id: Uuid,
) -> CommandResult<Option<String>> {
    let engine = state.engine()?;
    let attachment = find_attachment(&engine, message_id, attachment_id)?;
    let png = engine.thumbnail(&attachment).await?;
    Ok(png.map(|png| data_url("image/png", &png)))
}

/// Downloads an attachment into the profile and returns the file's path. `on_progress`
/// receives the bytes so far; a finished download is returned at once, and an interrupted
/// one resumes. Fails with `cancelled` after `cancel_download`.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%message_id, %attachment_id))]
pub async fn download_attachment(
    state: State<'_, AppState>,
    message_id: Uuid,
    attachment_id: Uuid,
    on_progress: Channel<DownloadProgress>,
) -> CommandResult<String> {
    let engine = state.engine()?;
    let attachment = find_attachment(&engine, message_id, attachment_id)?;
    let report = move |progress: Progress| {
        if let Err(error) = on_progress.send(progress.into()) {
            tracing::debug!(%error, "failed to send download progress to the UI");
        }
    };
    let path = download_tracked(&state, &engine, &attachment, report).await?;
    Ok(path.display().to_string())
}

/// Downloads a file of a room's file list into the profile and returns the file's path,
/// as `download_attachment` does for a message's attachment. `cancel_download` with the
/// file's id stops it.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %file_id))]
pub async fn download_room_file(
    state: State<'_, AppState>,
    room_id: Uuid,
    file_id: Uuid,
    on_progress: Channel<DownloadProgress>,
) -> CommandResult<String> {
    let engine = state.engine()?;
    let attachment = engine.room_file(room_id, file_id).await?;
    let report = move |progress: Progress| {
        if let Err(error) = on_progress.send(progress.into()) {
            tracing::debug!(%error, "failed to send download progress to the UI");
        }
    };
    let path = download_tracked(&state, &engine, &attachment, report).await?;
    Ok(path.display().to_string())
}

/// Opens a file of a room's file list with the system's default program for its type,
/// downloading it first unless it was downloaded before.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %file_id))]
pub async fn open_room_file(
    state: State<'_, AppState>,
    room_id: Uuid,
    file_id: Uuid,
) -> CommandResult<()> {
    let engine = state.engine()?;
    let attachment = engine.room_file(room_id, file_id).await?;
    let path = download_tracked(&state, &engine, &attachment, |_| {}).await?;
    open_with_system(&path)
}

/// Stops a running download; the bytes so far stay for a later resume. Returns false when
/// no download of that attachment was running.
#[tauri::command]
#[specta::specta]
pub fn cancel_download(state: State<'_, AppState>, attachment_id: Uuid) -> bool {
    state.downloads().cancel(attachment_id)
}

/// Returns an image attachment in full as a `data:` URL for the viewer, downloading it
/// first unless it was downloaded before.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%message_id, %attachment_id))]
pub async fn attachment_image(
    state: State<'_, AppState>,
    message_id: Uuid,
    attachment_id: Uuid,
) -> CommandResult<String> {
    let engine = state.engine()?;
    let attachment = find_attachment(&engine, message_id, attachment_id)?;
    if !attachment.mime.starts_with("image/") {
        return Err(CommandError::invalid_input(format!(
            "{} is {}, not an image; download it instead",
            attachment.name, attachment.mime
        )));
    }
    if attachment.size > u64::from(IMAGE_VIEW_MAX_BYTES) {
        return Err(CommandError::invalid_input(format!(
            "{} has {} bytes, more than the viewer's {IMAGE_VIEW_MAX_BYTES}; download it instead",
            attachment.name, attachment.size
        )));
    }
    let path = download_tracked(&state, &engine, &attachment, |_| {}).await?;
    let bytes = tokio::fs::read(&path).await.map_err(|error| {
        CommandError::new(
            ErrorCode::Internal,
            format!("failed to read the download {}: {error}", path.display()),
        )
    })?;
    Ok(data_url(&attachment.mime, &bytes))
}

/// Opens a downloaded attachment with the system's default program for its type,
/// downloading it first unless it was downloaded before.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%message_id, %attachment_id))]
pub async fn open_attachment(
    state: State<'_, AppState>,
    message_id: Uuid,
    attachment_id: Uuid,
) -> CommandResult<()> {
    let engine = state.engine()?;
    let attachment = find_attachment(&engine, message_id, attachment_id)?;
    let path = download_tracked(&state, &engine, &attachment, |_| {}).await?;
    open_with_system(&path)
}

/// Starts the platform's opener on `path`: `xdg-open`, `open` or Explorer.
fn open_with_system(path: &Path) -> CommandResult<()> {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(path)
        .spawn()
        .map(drop)
        .map_err(|error| {
            tracing::warn!(%error, path = %path.display(), program, "failed to open a download");
            CommandError::new(
                ErrorCode::Internal,
                format!(
                    "failed to open {} with {program}: {error}; the file is at that path",
                    path.display()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_url_encodes_base64() {
        assert_eq!(data_url("image/png", b"abc"), "data:image/png;base64,YWJj");
    }

    #[test]
    fn cancel_stops_running_download() {
        let downloads = Downloads::default();
        let id = Uuid::new_v4();
        let token = downloads.start(id);

        assert!(downloads.cancel(id));

        assert!(token.is_cancelled());
        assert!(!downloads.cancel(id), "a second cancel finds nothing");
    }

    #[test]
    fn same_attachment_shares_token() {
        let downloads = Downloads::default();
        let id = Uuid::new_v4();
        let first = downloads.start(id);
        let second = downloads.start(id);

        downloads.cancel(id);

        assert!(first.is_cancelled());
        assert!(second.is_cancelled());
    }
}
