//! The Tauri commands for uploads. Files chosen in the file dialog or dropped on the window
//! stream from disk. Bytes that only the page has, such as a pasted image, arrive as a raw
//! IPC body and are written to the profile's `uploads/` folder first. Progress reaches the
//! UI over a [`Channel`], and `cancel_upload` stops an upload by dropping its request.
//!
//! `upload_file` takes only paths that the user chose: those the dialog returned, those
//! dropped on the window and those staged from the page's bytes. A page that is made to
//! name another path, such as `~/.ssh/id_ed25519`, gets `invalid_input`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use percent_encoding::percent_decode_str;
use roomler_client::Engine;
use roomler_client::attachments::Progress;
use roomler_shared::api::FileInfo;
use serde::Serialize;
use tauri::ipc::{Channel, CommandArg, CommandItem, InvokeBody, InvokeError, Request};
use tauri::{AppHandle, Manager, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::dto::UploadedFile;
use crate::error::{CommandError, ErrorCode};
use crate::state::AppState;

/// Maximum size in bytes of a file whose bytes the page sends to `stage_upload`. The shell
/// keeps such a file in memory, twice while it copies it out of the IPC message, before it
/// writes it to disk. Files from the dialog or a drop stream from disk, so only the
/// server's limit applies to them.
pub const STAGED_UPLOAD_MAX_BYTES: u32 = 25 * 1024 * 1024;
/// Name of the folder inside the profile that contains staged files until their upload
/// ends.
pub const STAGING_FOLDER: &str = "uploads";
/// Header of a `stage_upload` request with the file's name, percent-encoded because
/// header values are ASCII.
pub const FILE_NAME_HEADER: &str = "x-roomler-file-name";

type CommandResult<T> = Result<T, CommandError>;

/// The uploads in progress and the paths the user chose to upload.
#[derive(Debug, Default, Clone)]
pub struct Uploads {
    inner: Arc<Mutex<UploadsInner>>,
}

#[derive(Debug, Default)]
struct UploadsInner {
    /// Cancellation tokens of the running uploads, by the id the UI gave each one.
    running: HashMap<Uuid, CancellationToken>,
    /// Paths from the dialog, from drops and from staging.
    chosen: HashSet<PathBuf>,
}

impl Uploads {
    /// Records paths that the user chose, so that [`Uploads::upload`] takes them.
    pub fn allow(&self, paths: impl IntoIterator<Item = PathBuf>) {
        self.inner.lock().unwrap().chosen.extend(paths);
    }

    pub fn is_allowed(&self, path: &Path) -> bool {
        self.inner.lock().unwrap().chosen.contains(path)
    }

    /// Cancels a running upload and returns false when none with that id was running.
    pub fn cancel(&self, upload_id: Uuid) -> bool {
        match self.inner.lock().unwrap().running.remove(&upload_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Uploads the file at `path` to a room while [`Uploads::cancel`] with `upload_id` can
    /// stop it. `path` must be one that [`Uploads::allow`] recorded. A staged file is
    /// removed once its upload ends, whatever the outcome.
    pub async fn upload(
        &self,
        engine: &Engine,
        room_id: Uuid,
        path: &Path,
        upload_id: Uuid,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> CommandResult<FileInfo> {
        if !self.is_allowed(path) {
            tracing::warn!(path = %path.display(), "rejected an upload of a path the user did not choose");
            return Err(CommandError::invalid_input(format!(
                "{} was not chosen for upload; choose it in the file dialog or drop it on \
                 the window",
                path.display()
            )));
        }
        let cancel = CancellationToken::new();
        {
            let mut inner = self.inner.lock().unwrap();
            if inner.running.contains_key(&upload_id) {
                return Err(CommandError::invalid_input(format!(
                    "upload {upload_id} is already running; give each upload a new id"
                )));
            }
            inner.running.insert(upload_id, cancel.clone());
        }

        let result = engine.upload_file(room_id, path, progress, cancel).await;

        self.inner.lock().unwrap().running.remove(&upload_id);
        let staging = staging_folder(engine);
        if let Some(folder) = path
            .parent()
            .filter(|folder| folder.parent() == Some(&staging))
        {
            self.inner.lock().unwrap().chosen.remove(path);
            if let Err(error) = std::fs::remove_dir_all(folder) {
                tracing::warn!(%error, folder = %folder.display(), "failed to remove a staged upload");
            }
        }
        Ok(result?)
    }

    /// Writes bytes from the page to `uploads/ID/NAME` in the profile, records that path
    /// as chosen and returns it. NAME is `name` without folders.
    ///
    /// NOTE: a staged file whose upload never ends, because the app quit first, stays in
    /// `uploads/` until someone deletes it.
    pub fn stage(&self, engine: &Engine, name: &str, bytes: &[u8]) -> CommandResult<PathBuf> {
        if bytes.len() > STAGED_UPLOAD_MAX_BYTES as usize {
            return Err(CommandError::invalid_input(format!(
                "{name} has {} bytes, more than the {STAGED_UPLOAD_MAX_BYTES} bytes that a \
                 pasted file may have; save it and attach it from the file dialog",
                bytes.len()
            )));
        }
        let folder = staging_folder(engine).join(Uuid::new_v4().to_string());
        let path = folder.join(roomler_shared::limits::file_name(name));
        let write = std::fs::create_dir_all(&folder).and_then(|()| std::fs::write(&path, bytes));
        if let Err(error) = write {
            return Err(CommandError::new(
                ErrorCode::Internal,
                format!(
                    "failed to write the staged upload {}: {error}",
                    path.display()
                ),
            ));
        }
        self.allow([path.clone()]);
        Ok(path)
    }
}

fn staging_folder(engine: &Engine) -> PathBuf {
    engine.profile().dir().join(STAGING_FOLDER)
}

/// How far an upload has come, sent to the UI while it runs.
#[derive(Debug, Clone, Copy, Serialize, specta::Type)]
pub struct UploadProgress {
    /// Bytes sent so far.
    pub bytes: u64,
    /// Size of the whole file in bytes.
    pub total: u64,
}

impl From<Progress> for UploadProgress {
    fn from(progress: Progress) -> Self {
        UploadProgress {
            bytes: progress.bytes,
            total: progress.total,
        }
    }
}

/// Opens the system's file dialog and returns the paths of the files the user chose, none
/// when the dialog was closed. `upload_file` then takes those paths. `title` is the
/// dialog's title, in the UI's language.
#[tauri::command]
#[specta::specta]
pub async fn choose_files(
    app: AppHandle,
    state: State<'_, AppState>,
    title: String,
) -> CommandResult<Vec<String>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut dialog = app.dialog().file().set_title(title);
    if let Some(window) = app.get_webview_window(crate::MAIN_WINDOW) {
        dialog = dialog.set_parent(&window);
    }
    dialog.pick_files(move |picked| {
        // The receiver is gone only when the command was dropped, so no caller waits.
        let _ = sender.send(picked);
    });
    let picked = receiver.await.map_err(|_| {
        CommandError::new(
            ErrorCode::Internal,
            "the file dialog closed without an answer",
        )
    })?;

    let mut paths = Vec::new();
    for file in picked.unwrap_or_default() {
        match file.into_path() {
            Ok(path) => paths.push(path),
            Err(error) => {
                tracing::warn!(%error, "the file dialog returned a path that is not local")
            }
        }
    }
    state.uploads().allow(paths.iter().cloned());
    Ok(paths
        .iter()
        .map(|path| path.display().to_string())
        .collect())
}

/// Uploads a file that the user chose to a room and returns what the server stored. A
/// message then attaches it by its id. `path` comes from `choose_files`, a drop on the
/// window or `stage_upload`. `on_progress` receives the bytes sent so far, and
/// `cancel_upload` with the same `upload_id` stops it with `cancelled`. Uploads need the
/// server, so offline this fails with a retryable `network` error.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %upload_id))]
pub async fn upload_file(
    state: State<'_, AppState>,
    room_id: Uuid,
    path: String,
    upload_id: Uuid,
    on_progress: Channel<UploadProgress>,
) -> CommandResult<UploadedFile> {
    let engine = state.engine()?;
    let report = move |progress: Progress| {
        if let Err(error) = on_progress.send(progress.into()) {
            tracing::debug!(%error, "failed to send upload progress to the UI");
        }
    };
    let info = state
        .uploads()
        .upload(&engine, room_id, Path::new(&path), upload_id, report)
        .await?;
    Ok(info.into())
}

/// Stops a running upload, which drops its request. Returns false when no upload with that
/// id was running.
#[tauri::command]
#[specta::specta]
pub fn cancel_upload(state: State<'_, AppState>, upload_id: Uuid) -> bool {
    state.uploads().cancel(upload_id)
}

/// Writes a file's bytes that the page sent as a raw IPC body to the profile and returns
/// its path for `upload_file`. The name is in the `x-roomler-file-name` header.
///
/// The generated binding cannot send a raw body, so `ui/src/api/bindings.ts` invokes this
/// command itself.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(size = body.bytes.len()))]
pub async fn stage_upload(state: State<'_, AppState>, body: RawFile) -> CommandResult<String> {
    let engine = state.engine()?;
    let path = state.uploads().stage(&engine, &body.name, &body.bytes)?;
    Ok(path.display().to_string())
}

/// A file sent as a raw IPC body, with its name in the [`FILE_NAME_HEADER`] header.
pub struct RawFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl<'a, R: Runtime> CommandArg<'a, R> for RawFile {
    fn from_command(command: CommandItem<'a, R>) -> Result<Self, InvokeError> {
        let request = Request::from_command(command)?;
        let InvokeBody::Raw(bytes) = request.body() else {
            return Err(InvokeError::from(
                "invalid stage_upload request: expected the file's bytes as a raw body, not JSON",
            ));
        };
        let name = request
            .headers()
            .get(FILE_NAME_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|value| percent_decode_str(value).decode_utf8_lossy().into_owned())
            .ok_or_else(|| {
                InvokeError::from(format!(
                    "invalid stage_upload request: the {FILE_NAME_HEADER} header is missing"
                ))
            })?;
        Ok(RawFile {
            name,
            bytes: bytes.clone(),
        })
    }
}

/// The body is not a JSON argument, so the generated binding has no parameter for it.
impl specta::function::FunctionArg for RawFile {
    fn to_datatype(_: &mut specta::Types) -> Option<specta::datatype::DataType> {
        None
    }
}
