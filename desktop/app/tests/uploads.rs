//! The path of the upload commands below Tauri, against a real server started in-process:
//! only chosen paths upload, progress reaches the file's size, cancel stops the request,
//! and staged bytes upload under their own name and are removed afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomler_client::attachments::Progress;
use roomler_client::shared::model::RoomKind;
use roomler_client::{Engine, Profile};
use roomler_desktop::error::ErrorCode;
use roomler_desktop::uploads::{STAGED_UPLOAD_MAX_BYTES, STAGING_FOLDER, Uploads};
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// A server on an ephemeral loopback port with its data in a temporary folder.
struct TestServer {
    addr: SocketAddr,
    files_dir: PathBuf,
    _task: JoinHandle<anyhow::Result<()>>,
    _data: TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        let files_dir = settings.files_dir();
        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state).await.unwrap();
        let addr = server.local_addr();
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            files_dir,
            _task: task,
            _data: data,
        }
    }

    /// Counts the files the server stored, and the uploads it still receives into `tmp/`.
    fn stored_files(&self) -> usize {
        let mut count = 0;
        for entry in std::fs::read_dir(&self.files_dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                count += std::fs::read_dir(entry.path()).unwrap().count();
            }
        }
        count
    }
}

/// A logged-in engine with a fresh room of its own.
struct Session {
    engine: Engine,
    room_id: Uuid,
    profile: TempDir,
    server: TestServer,
}

async fn session() -> Session {
    let server = TestServer::start().await;
    let profile = tempfile::tempdir().unwrap();
    let engine = Engine::register(
        Profile::new(profile.path()),
        &format!("http://{}", server.addr),
        "alice",
        "alice@example.com",
        PASSWORD,
    )
    .await
    .unwrap();
    let room = engine
        .create_room("general", RoomKind::Public, None, None)
        .await
        .unwrap();
    Session {
        engine,
        room_id: room.id,
        profile,
        server,
    }
}

fn write_file(folder: &Path, name: &str, size: usize) -> PathBuf {
    let path = folder.join(name);
    let bytes: Vec<u8> = (0..size).map(|index| (index % 251) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Records every progress report.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<Progress>>>);

impl Reports {
    fn recorder(&self) -> impl Fn(Progress) + Send + Sync + 'static {
        let reports = self.0.clone();
        move |progress| reports.lock().unwrap().push(progress)
    }

    fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn chosen_file_uploads_with_progress() {
    let session = session().await;
    let path = write_file(session.profile.path(), "report.pdf", 300 * 1024);
    let uploads = Uploads::default();
    uploads.allow([path.clone()]);
    let reports = Reports::default();

    let info = uploads
        .upload(
            &session.engine,
            session.room_id,
            &path,
            Uuid::new_v4(),
            reports.recorder(),
        )
        .await
        .unwrap();

    assert_eq!(info.name, "report.pdf");
    assert_eq!(info.size, 300 * 1024);
    let reports = reports.all();
    assert!(reports.len() > 1, "only {} progress reports", reports.len());
    let last = reports.last().unwrap();
    assert_eq!((last.bytes, last.total), (300 * 1024, 300 * 1024));
    assert_eq!(session.server.stored_files(), 1);
}

#[tokio::test]
async fn unchosen_path_is_rejected() {
    let session = session().await;
    let path = write_file(session.profile.path(), "id_ed25519", 64);
    let uploads = Uploads::default();
    uploads.allow([session.profile.path().join("other.txt")]);

    let error = uploads
        .upload(
            &session.engine,
            session.room_id,
            &path,
            Uuid::new_v4(),
            |_| {},
        )
        .await
        .unwrap_err();

    assert_eq!(error.code, ErrorCode::InvalidInput);
    assert!(error.message.contains("id_ed25519"), "{}", error.message);
    assert_eq!(session.server.stored_files(), 0);
}

#[tokio::test]
async fn cancel_stops_running_upload() {
    let session = session().await;
    let size = 8 * 1024 * 1024;
    let path = write_file(session.profile.path(), "big.bin", size);
    let uploads = Uploads::default();
    uploads.allow([path.clone()]);
    let upload_id = Uuid::new_v4();
    let reports = Reports::default();
    let record = reports.recorder();
    let cancel_after_first_chunk = {
        let uploads = uploads.clone();
        move |progress: Progress| {
            record(progress);
            uploads.cancel(upload_id);
        }
    };

    let result = uploads
        .upload(
            &session.engine,
            session.room_id,
            &path,
            upload_id,
            cancel_after_first_chunk,
        )
        .await;

    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::Cancelled, "{}", error.message);
    let sent = reports.all().last().unwrap().bytes;
    assert!(sent < size as u64, "all {sent} bytes were sent");
    assert!(!uploads.cancel(upload_id), "the upload is still registered");
    // The server drops the aborted upload's temporary file once it notices.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while session.server.stored_files() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(session.server.stored_files(), 0, "the server kept bytes");
}

#[test]
fn cancel_of_unknown_upload_is_false() {
    let uploads = Uploads::default();
    assert!(!uploads.cancel(Uuid::new_v4()));
}

#[tokio::test]
async fn staged_bytes_upload_then_vanish() {
    let session = session().await;
    let uploads = Uploads::default();

    let path = uploads
        .stage(&session.engine, "../screenshot 1.png", b"not really a png")
        .unwrap();

    let staging = session.profile.path().join(STAGING_FOLDER);
    assert!(path.starts_with(&staging), "{} is outside", path.display());
    assert_eq!(path.file_name().unwrap(), "screenshot 1.png");
    assert_eq!(std::fs::read(&path).unwrap(), b"not really a png");

    let info = uploads
        .upload(
            &session.engine,
            session.room_id,
            &path,
            Uuid::new_v4(),
            |_| {},
        )
        .await
        .unwrap();

    assert_eq!(info.name, "screenshot 1.png");
    assert_eq!(info.size, 16);
    assert!(!path.exists(), "the staged file is still there");
    assert!(
        !path.parent().unwrap().exists(),
        "the staged file's folder is still there"
    );
    assert!(
        !uploads.is_allowed(&path),
        "the staged path may upload again"
    );
}

#[tokio::test]
async fn oversized_stage_is_rejected() {
    let session = session().await;
    let uploads = Uploads::default();
    let bytes = vec![0u8; STAGED_UPLOAD_MAX_BYTES as usize + 1];

    let error = uploads
        .stage(&session.engine, "huge.png", &bytes)
        .unwrap_err();

    assert_eq!(error.code, ErrorCode::InvalidInput);
    assert!(error.message.contains("huge.png"), "{}", error.message);
    let staging = session.profile.path().join(STAGING_FOLDER);
    assert!(!staging.exists(), "something was staged");
}
