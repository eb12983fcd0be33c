//! The engine against a real server started in-process: uploads and downloads with
//! progress, cancellation and resume, cached thumbnails, queued edits, deletes and
//! reactions across a server restart, the change stream and the connection state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomler_client::attachments::Progress;
use roomler_client::cache::{Change, NewOperation, OperationKind, OutboxState};
use roomler_client::shared::api::PostMessageRequest;
use roomler_client::shared::model::{Attachment, Message, RoomKind};
use roomler_client::{ClientError, ConnectionState, Engine, EngineEvent, HistoryWindow, Profile};
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";
/// How long a test waits for something that should happen.
const TIMEOUT: Duration = Duration::from_secs(10);
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

// --- The server ---

/// A server on a loopback port with its data in `data`, which outlives restarts.
struct TestServer {
    state: AppState,
    addr: SocketAddr,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts a server on an ephemeral port.
    async fn start(data: &Path) -> Self {
        Self::start_on(data, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts a server on `addr`, e.g. the port of a stopped server on the same data.
    async fn start_on(data: &Path, addr: SocketAddr) -> Self {
        let mut settings = Settings {
            addr,
            data_dir: data.to_path_buf(),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state.clone()).await.unwrap();
        let addr = server.local_addr();
        let task = tokio::spawn(server.run());
        TestServer { state, addr, task }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server the way SIGTERM does and waits until its port is free.
    async fn stop(self) -> SocketAddr {
        self.state.shutdown.cancel();
        let stopped = tokio::time::timeout(TIMEOUT, self.task).await;
        stopped
            .expect("the server did not stop in time")
            .unwrap()
            .unwrap();
        self.addr
    }

    /// Counts the uploads the server is still receiving, which it keeps under
    /// `files/tmp`.
    fn temporary_uploads(&self) -> usize {
        let tmp = self.state.settings.files_dir().join("tmp");
        std::fs::read_dir(tmp).unwrap().count()
    }
}

/// Registers `username` and returns an engine on a fresh profile folder.
async fn register(server: &TestServer, username: &str) -> (Engine, TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let engine = Engine::register(
        Profile::new(folder.path()),
        &server.base(),
        username,
        &format!("{username}@example.com"),
        PASSWORD,
    )
    .await
    .unwrap();
    (engine, folder)
}

/// Creates a public room and returns its id.
async fn create_room(engine: &Engine, name: &str) -> Uuid {
    engine
        .create_room(name, RoomKind::Public, None, None)
        .await
        .unwrap()
        .id
}

/// Fetches `path` from the server with the engine's token, bypassing its cache.
async fn get_json(server: &TestServer, engine: &Engine, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.base()))
        .bearer_auth(engine.api().token().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Sends a message now and returns its id.
async fn send(engine: &Engine, room_id: Uuid, body: &str, attachments: Vec<Uuid>) -> Uuid {
    let item = engine
        .queue_message(room_id, body, None, attachments)
        .unwrap();
    let report = engine.flush_outbox().await.unwrap();
    assert_eq!(report.sent, 1, "sending {body:?}");
    let client_id = item.client_id.unwrap();
    let history = engine.history(room_id, 50).await.unwrap();
    history
        .iter()
        .find(|message| message.client_id.as_deref() == Some(client_id.as_str()))
        .unwrap_or_else(|| panic!("{body:?} is not in the cached history"))
        .id
}

/// Sends a message with one attachment and returns the attachment as the message
/// carries it.
async fn attach(engine: &Engine, room_id: Uuid, file_id: Uuid) -> Attachment {
    let message_id = send(engine, room_id, "see attached", vec![file_id]).await;
    let message = engine.cache().message(message_id).unwrap().unwrap();
    assert_eq!(message.attachments.len(), 1, "attachments of the message");
    message.attachments[0].clone()
}

// --- Files and progress ---

/// Returns `size` bytes of a pattern that does not repeat every 256 bytes.
fn sample_bytes(size: usize) -> Vec<u8> {
    (0..size)
        .map(|index| ((index * 31) ^ (index >> 8)) as u8)
        .collect()
}

fn write_file(folder: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Collects every progress report of a transfer.
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

fn ignore_progress(_: Progress) {}

// --- A minimal PNG encoder without compression, which needs only CRC-32 and Adler-32 ---

/// Computes CRC-32 as PNG defines it, with the reflected polynomial 0xEDB88320.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// Wraps `data` in a zlib stream of one stored (uncompressed) deflate block.
/// `data` must fit in 65 535 bytes.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let length = u16::try_from(data.len()).unwrap();
    let mut stream = vec![0x78, 0x01, 0x01];
    stream.extend_from_slice(&length.to_le_bytes());
    stream.extend_from_slice(&(!length).to_le_bytes());
    stream.extend_from_slice(data);
    stream.extend_from_slice(&adler32(data).to_be_bytes());
    stream
}

fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    png.extend_from_slice(&checked);
    png.extend_from_slice(&crc32(&checked).to_be_bytes());
}

/// Encodes an 8-bit RGB PNG of `width` × `height` pixels in a colour gradient.
fn png_image(width: u32, height: u32) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), default compression, filter and no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut scanlines = Vec::new();
    for y in 0..height {
        // Each scanline starts with its filter type, 0 for none.
        scanlines.push(0);
        for x in 0..width {
            scanlines.extend_from_slice(&[(x * 60) as u8, (y * 60) as u8, 200]);
        }
    }

    let mut png = PNG_SIGNATURE.to_vec();
    png_chunk(&mut png, b"IHDR", &header);
    png_chunk(&mut png, b"IDAT", &zlib_stored(&scanlines));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn crc32_matches_known_value() {
    // The check value of CRC-32/ISO-HDLC, which PNG uses.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

// --- Uploads ---

#[tokio::test]
async fn upload_progress_reaches_full_size() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(1024 * 1024 + 123);
    let path = write_file(profile.path(), "data.bin", &bytes);
    let reports = Reports::default();

    let info = engine
        .upload_file(room_id, &path, reports.recorder(), CancellationToken::new())
        .await
        .unwrap();

    let total = bytes.len() as u64;
    assert_eq!(info.size, total);
    assert_eq!(info.name, "data.bin");
    let reports = reports.all();
    assert!(reports.len() > 1, "{} progress reports", reports.len());
    assert_eq!(
        reports.last(),
        Some(&Progress {
            bytes: total,
            total
        })
    );
    assert!(
        reports.windows(2).all(|pair| pair[0].bytes < pair[1].bytes),
        "progress went backwards or stalled: {reports:?}"
    );
    assert!(reports.iter().all(|report| report.total == total));
}

#[tokio::test]
async fn uploaded_file_downloads_identical() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(300_000);
    let path = write_file(profile.path(), "report.pdf", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let reports = Reports::default();

    let downloaded = engine
        .download(&attachment, reports.recorder(), CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(attachment.id, info.id);
    assert_eq!(attachment.mime, "application/pdf");
    let files = profile.path().join("files");
    assert_eq!(downloaded, files.join(format!("{}-report.pdf", info.id)));
    assert!(
        std::fs::read(&downloaded).unwrap() == bytes,
        "the download differs from the upload"
    );
    assert!(
        !files.join(format!("{}-report.pdf.part", info.id)).exists(),
        "the .part file is left behind"
    );
    let total = bytes.len() as u64;
    assert_eq!(reports.all().first(), Some(&Progress { bytes: 0, total }));
    assert_eq!(
        reports.all().last(),
        Some(&Progress {
            bytes: total,
            total
        })
    );
    assert_eq!(
        engine.cache().local_file(info.id).unwrap(),
        Some(downloaded.clone())
    );
}

#[tokio::test]
async fn downloaded_file_reads_offline() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(10_000);
    let path = write_file(profile.path(), "notes.txt", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let first = engine
        .download(&attachment, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    server.stop().await;
    let reports = Reports::default();

    let second = engine
        .download(&attachment, reports.recorder(), CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(second, first);
    assert!(
        reports.all().is_empty(),
        "the cached file was downloaded again"
    );
    assert!(std::fs::read(&second).unwrap() == bytes);
}

#[tokio::test]
async fn removed_download_is_fetched_again() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(10_000);
    let path = write_file(profile.path(), "notes.txt", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let first = engine
        .download(&attachment, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    std::fs::remove_file(&first).unwrap();

    let second = engine
        .download(&attachment, ignore_progress, CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(second, first);
    assert!(std::fs::read(&second).unwrap() == bytes);
}

#[tokio::test]
async fn concurrent_downloads_share_one_file() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(2 * 1024 * 1024);
    let path = write_file(profile.path(), "data.bin", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let first = Reports::default();
    let second = Reports::default();

    let (first_path, second_path) = tokio::join!(
        engine.download(&attachment, first.recorder(), CancellationToken::new()),
        engine.download(&attachment, second.recorder(), CancellationToken::new()),
    );

    let first_path = first_path.unwrap();
    assert_eq!(second_path.unwrap(), first_path);
    assert!(std::fs::read(&first_path).unwrap() == bytes);
    // The download that waited found the finished file and received nothing.
    let received = [first.all().is_empty(), second.all().is_empty()];
    assert!(
        received.contains(&true),
        "both calls downloaded the file: {received:?}"
    );
}

#[tokio::test]
async fn cancelled_upload_attaches_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(8 * 1024 * 1024);
    let path = write_file(profile.path(), "big.bin", &bytes);
    let cancel = CancellationToken::new();
    let reports = Reports::default();
    let record = reports.recorder();
    let cancel_after_first_chunk = {
        let cancel = cancel.clone();
        move |progress: Progress| {
            record(progress);
            cancel.cancel();
        }
    };

    let result = engine
        .upload_file(room_id, &path, cancel_after_first_chunk, cancel)
        .await;

    assert!(
        matches!(result, Err(ClientError::Cancelled)),
        "the upload returned {result:?}"
    );
    let sent = reports.all().last().unwrap().bytes;
    assert!(sent < bytes.len() as u64, "all {sent} bytes were sent");
    let files = get_json(&server, &engine, &format!("/api/rooms/{room_id}/files")).await;
    assert_eq!(files["files"], serde_json::json!([]));
    let page = get_json(&server, &engine, &format!("/api/rooms/{room_id}/messages")).await;
    assert_eq!(page["messages"], serde_json::json!([]));
    // The server drops the aborted upload's temporary file once it notices.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while server.temporary_uploads() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.temporary_uploads(), 0, "temporary uploads left");
}

#[tokio::test]
async fn upload_after_cancel_succeeds() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let path = write_file(profile.path(), "small.bin", &sample_bytes(1000));
    let cancelled = CancellationToken::new();
    cancelled.cancel();

    let first = engine
        .upload_file(room_id, &path, ignore_progress, cancelled)
        .await;
    let second = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await;

    assert!(matches!(first, Err(ClientError::Cancelled)), "{first:?}");
    assert_eq!(second.unwrap().size, 1000);
}

#[tokio::test]
async fn upload_of_missing_file_is_usage_error() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;

    let missing = engine
        .upload_file(
            room_id,
            &profile.path().join("missing.bin"),
            ignore_progress,
            CancellationToken::new(),
        )
        .await;
    let folder = engine
        .upload_file(
            room_id,
            profile.path(),
            ignore_progress,
            CancellationToken::new(),
        )
        .await;

    assert!(matches!(missing, Err(ClientError::Usage(_))), "{missing:?}");
    assert!(matches!(folder, Err(ClientError::Usage(_))), "{folder:?}");
}

// --- Resumed downloads ---

#[tokio::test]
async fn download_resumes_from_part_file() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(512 * 1024 + 7);
    let path = write_file(profile.path(), "data.bin", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let files = profile.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let half = bytes.len() / 2;
    let part = files.join(format!("{}-data.bin.part", info.id));
    std::fs::write(&part, &bytes[..half]).unwrap();
    let reports = Reports::default();

    let downloaded = engine
        .download(&attachment, reports.recorder(), CancellationToken::new())
        .await
        .unwrap();

    assert!(
        std::fs::read(&downloaded).unwrap() == bytes,
        "the resumed download differs from the upload"
    );
    assert!(!part.exists(), "the .part file is left behind");
    let reports = reports.all();
    let first = reports.first().unwrap().bytes;
    let last = reports.last().unwrap().bytes;
    // Only the second half may come over the network.
    assert_eq!(
        first, half as u64,
        "the download did not start at the .part's end"
    );
    assert_eq!(last - first, (bytes.len() - half) as u64);
}

#[tokio::test]
async fn cancelled_download_resumes() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(4 * 1024 * 1024);
    let path = write_file(profile.path(), "data.bin", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let cancel = CancellationToken::new();
    let cancel_after_first_chunk = {
        let cancel = cancel.clone();
        move |progress: Progress| {
            if progress.bytes > 0 {
                cancel.cancel();
            }
        }
    };

    let cancelled = engine
        .download(&attachment, cancel_after_first_chunk, cancel)
        .await;
    let part = profile
        .path()
        .join("files")
        .join(format!("{}-data.bin.part", info.id));
    let kept_bytes = std::fs::metadata(&part).unwrap().len();
    let reports = Reports::default();
    let downloaded = engine
        .download(&attachment, reports.recorder(), CancellationToken::new())
        .await
        .unwrap();

    assert!(
        matches!(cancelled, Err(ClientError::Cancelled)),
        "{cancelled:?}"
    );
    assert!(kept_bytes > 0, "the cancelled download kept no bytes");
    assert!(
        kept_bytes < bytes.len() as u64,
        "the cancelled download completed"
    );
    assert_eq!(reports.all().first().unwrap().bytes, kept_bytes);
    assert!(std::fs::read(&downloaded).unwrap() == bytes);
}

#[tokio::test]
async fn oversized_part_file_is_replaced() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let bytes = sample_bytes(20_000);
    let path = write_file(profile.path(), "data.bin", &bytes);
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;
    let files = profile.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let part = files.join(format!("{}-data.bin.part", info.id));
    std::fs::write(&part, vec![0xAA; bytes.len() + 10]).unwrap();

    let downloaded = engine
        .download(&attachment, ignore_progress, CancellationToken::new())
        .await
        .unwrap();

    assert!(std::fs::read(&downloaded).unwrap() == bytes);
}

#[tokio::test]
async fn download_name_has_no_folders() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let path = write_file(profile.path(), "plain.txt", b"words");
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let mut attachment = attach(&engine, room_id, info.id).await;
    // A name as a hostile or broken server might send it.
    attachment.name = "../../escape.txt".to_string();

    let downloaded = engine
        .download(&attachment, ignore_progress, CancellationToken::new())
        .await
        .unwrap();

    let files = profile.path().join("files");
    assert_eq!(downloaded, files.join(format!("{}-escape.txt", info.id)));
    assert_eq!(std::fs::read(&downloaded).unwrap(), b"words");
}

// --- Thumbnails ---

#[tokio::test]
async fn thumbnail_reads_offline() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let path = write_file(profile.path(), "dot.png", &png_image(4, 3));
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;

    let online = engine.thumbnail(&attachment).await.unwrap();
    server.stop().await;
    let offline = engine.thumbnail(&attachment).await.unwrap();

    assert_eq!(
        attachment.thumbnail_url,
        Some(format!("/api/files/{}/thumbnail", info.id))
    );
    let online = online.expect("the PNG has no thumbnail");
    assert!(
        online.starts_with(&PNG_SIGNATURE),
        "the thumbnail is no PNG"
    );
    assert_eq!(offline, Some(online.clone()));
    assert_eq!(engine.cache().thumbnail(info.id).unwrap(), Some(online));
}

#[tokio::test]
async fn text_file_has_no_thumbnail() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let path = write_file(profile.path(), "notes.txt", b"words");
    let info = engine
        .upload_file(room_id, &path, ignore_progress, CancellationToken::new())
        .await
        .unwrap();
    let attachment = attach(&engine, room_id, info.id).await;

    let thumbnail = engine.thumbnail(&attachment).await.unwrap();

    assert_eq!(attachment.thumbnail_url, None);
    assert_eq!(thumbnail, None);
}

// --- Queued edits, deletes and reactions ---

#[tokio::test]
async fn queued_changes_apply_once_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let edited = send(&engine, room_id, "first draft", Vec::new()).await;
    let deleted = send(&engine, room_id, "regrettable", Vec::new()).await;
    let reacted = send(&engine, room_id, "good news", Vec::new()).await;
    engine.sync_once().await.unwrap();
    let addr = server.stop().await;

    engine.queue_edit(edited, room_id, "final text").unwrap();
    engine.queue_delete(deleted, room_id).unwrap();
    engine.queue_reaction(reacted, room_id, "👍", true).unwrap();
    let offline = engine.flush_outbox().await.unwrap();
    let server = TestServer::start_on(data.path(), addr).await;
    let online = engine.flush_outbox().await.unwrap();
    let again = engine.flush_outbox().await.unwrap();
    let sync = engine.sync_once().await.unwrap();

    assert_eq!(offline.sent, 0, "sent while offline");
    assert_eq!(offline.pending, 3, "pending while offline");
    assert_eq!(online.sent, 3, "sent after the restart");
    assert_eq!(online.failed, 0, "failed after the restart");
    assert_eq!(online.pending, 0, "pending after the restart");
    assert_eq!(again.sent, 0, "a second flush sent something");
    assert!(engine.outbox().unwrap().is_empty());
    // One event for each change: the edit, the deletion and the reaction.
    assert_eq!(sync.events_applied, 3, "events after the flush");
    assert!(!sync.resynced, "the sync after the restart resynced");

    let message = get_json(&server, &engine, &format!("/api/messages/{edited}")).await;
    assert_eq!(message["body"], "final text");
    assert!(
        message["edited_at"].is_string(),
        "edited_at: {}",
        message["edited_at"]
    );
    let message = get_json(&server, &engine, &format!("/api/messages/{deleted}")).await;
    assert_eq!(message["deleted"], true);
    let message = get_json(&server, &engine, &format!("/api/messages/{reacted}")).await;
    let reactions = message["reactions"].as_array().unwrap();
    assert_eq!(reactions.len(), 1, "reactions: {reactions:?}");
    assert_eq!(reactions[0]["emoji"], "👍");
    assert_eq!(reactions[0]["count"], 1);
    assert_eq!(
        reactions[0]["user_ids"],
        serde_json::json!([engine.user_id()])
    );

    let cached = engine.cache().message(edited).unwrap().unwrap();
    assert_eq!(cached.body, "final text");
    let cached = engine.cache().message(deleted).unwrap().unwrap();
    assert!(cached.deleted, "the cache still shows the deleted message");
    let cached = engine.cache().message(reacted).unwrap().unwrap();
    assert_eq!(cached.reactions.len(), 1, "cached reactions");
}

#[tokio::test]
async fn queued_reaction_removal_applies() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let message_id = send(&engine, room_id, "good news", Vec::new()).await;

    engine
        .queue_reaction(message_id, room_id, "🎉", true)
        .unwrap();
    engine
        .queue_reaction(message_id, room_id, "🎉", false)
        .unwrap();
    let report = engine.flush_outbox().await.unwrap();

    assert_eq!(report.sent, 2);
    assert_eq!(report.failed, 0);
    let message = get_json(&server, &engine, &format!("/api/messages/{message_id}")).await;
    assert_eq!(message["reactions"], serde_json::json!([]));
}

#[tokio::test]
async fn invalid_queued_changes_are_rejected() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let message_id = send(&engine, room_id, "hello", Vec::new()).await;

    let edit = engine.queue_edit(message_id, room_id, "   ");
    let reaction = engine.queue_reaction(message_id, room_id, "", true);

    assert!(matches!(edit, Err(ClientError::Usage(_))), "{edit:?}");
    assert!(
        matches!(reaction, Err(ClientError::Usage(_))),
        "{reaction:?}"
    );
    assert!(engine.outbox().unwrap().is_empty());
}

// --- The change stream and the connection state ---

#[tokio::test]
async fn send_emits_outbox_and_message_changes() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let mut events = engine.subscribe();

    engine
        .queue_message(room_id, "hello", None, Vec::new())
        .unwrap();
    engine.flush_outbox().await.unwrap();

    let mut changes = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::Cache(change) = event {
            changes.push(change);
        }
    }
    assert_eq!(
        changes.first(),
        Some(&Change::OutboxChanged),
        "queueing: {changes:?}"
    );
    assert!(
        changes.contains(&Change::MessagesChanged { room_id }),
        "no MessagesChanged for the room: {changes:?}"
    );
    assert_eq!(
        changes
            .iter()
            .filter(|change| **change == Change::OutboxChanged)
            .count(),
        2,
        "OutboxChanged for the queueing and the send: {changes:?}"
    );
}

#[tokio::test]
async fn sync_once_goes_online_then_offline() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let mut events = engine.subscribe();

    engine.sync_once().await.unwrap();

    let mut states = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::Connection(state) = event {
            states.push(state);
        }
    }
    assert_eq!(
        states,
        [
            ConnectionState::Connecting,
            ConnectionState::Online,
            ConnectionState::Offline
        ]
    );
    assert_eq!(
        *engine.connection_state().borrow(),
        ConnectionState::Offline
    );
}

#[tokio::test]
async fn live_connection_reconnects_after_stop() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let mut state = engine.connection_state();
    let shutdown = CancellationToken::new();

    let observe = async {
        let online = tokio::time::timeout(
            TIMEOUT,
            state.wait_for(|state| *state == ConnectionState::Online),
        )
        .await
        .is_ok();
        assert!(online, "never online: {:?}", *state.borrow());
        server.stop().await;
        let reconnecting = tokio::time::timeout(
            TIMEOUT,
            state.wait_for(|state| matches!(state, ConnectionState::Reconnecting { .. })),
        )
        .await
        .is_ok();
        assert!(
            reconnecting,
            "never reconnecting after the stop: {:?}",
            *state.borrow()
        );
        shutdown.cancel();
    };
    let stopped = tokio::time::timeout(TIMEOUT * 3, async {
        tokio::join!(engine.run_live(shutdown.clone(), |_| {}), observe)
    })
    .await;

    assert!(
        stopped.is_ok(),
        "run_live did not return after the shutdown"
    );
    assert_eq!(
        *engine.connection_state().borrow(),
        ConnectionState::Offline
    );
}

#[tokio::test]
async fn live_connection_returns_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;
    let mut state = engine.connection_state();
    let shutdown = CancellationToken::new();

    let observe = async {
        tokio::time::timeout(
            TIMEOUT,
            state.wait_for(|state| *state == ConnectionState::Online),
        )
        .await
        .expect("never online")
        .unwrap();
        let addr = server.stop().await;
        tokio::time::timeout(
            TIMEOUT,
            state.wait_for(|state| matches!(state, ConnectionState::Reconnecting { .. })),
        )
        .await
        .expect("never reconnecting")
        .unwrap();
        // Queued while the server is away, sent by the live loop once it is back.
        engine
            .queue_message(room_id, "while away", None, Vec::new())
            .unwrap();
        let server = TestServer::start_on(data.path(), addr).await;
        tokio::time::timeout(
            TIMEOUT * 3,
            state.wait_for(|state| *state == ConnectionState::Online),
        )
        .await
        .expect("never online again")
        .unwrap();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !engine.outbox().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        server
    };
    let (_, server) = tokio::time::timeout(TIMEOUT * 6, async {
        tokio::join!(engine.run_live(shutdown.clone(), |_| {}), observe)
    })
    .await
    .expect("run_live did not return after the shutdown");

    assert!(
        engine.outbox().unwrap().is_empty(),
        "the outbox was not sent"
    );
    let page = get_json(&server, &engine, &format!("/api/rooms/{room_id}/messages")).await;
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["while away"]);
}

#[tokio::test]
async fn incomplete_operation_is_rejected_at_queue() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;

    let operation = NewOperation {
        room_id,
        body: Some("x".into()),
        ..Default::default()
    };
    let error = engine
        .queue_operation(OperationKind::Edit, operation)
        .unwrap_err();
    assert!(matches!(error, ClientError::Usage(_)), "{error:?}");
    assert!(error.to_string().contains("message_id"), "{error}");
    assert!(engine.outbox().unwrap().is_empty());
}

#[tokio::test]
async fn unsendable_item_does_not_block_outbox() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;

    // Written to the cache directly, as an older client or a damaged file could.
    let broken = NewOperation {
        room_id,
        body: Some("x".into()),
        ..Default::default()
    };
    let broken = engine.cache().enqueue(OperationKind::Edit, broken).unwrap();
    engine
        .queue_message(room_id, "after the broken one", None, Vec::new())
        .unwrap();
    let report = engine.flush_outbox().await.unwrap();

    assert_eq!(report.sent, 1, "the message behind the broken item");
    assert_eq!(report.failed, 1, "the broken item");
    let outbox = engine.outbox().unwrap();
    assert_eq!(outbox.len(), 1, "outbox: {outbox:?}");
    assert_eq!(outbox[0].id, broken.id);
    assert_eq!(outbox[0].state, OutboxState::Failed);
    assert_eq!(outbox[0].error_code.as_deref(), Some("invalid_operation"));
}

#[tokio::test]
async fn first_sync_caches_members() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (alice, _alice_profile) = register(&server, "alice").await;
    let room_id = create_room(&alice, "general").await;
    let (bob, _bob_profile) = register(&server, "bob").await;
    bob.join("general", None).await.unwrap();

    let report = bob.sync_once().await.unwrap();

    assert!(report.resynced, "a first sync fetches everything");
    let mut names: Vec<String> = bob
        .cache()
        .members(room_id)
        .unwrap()
        .into_iter()
        .map(|member| member.user.username)
        .collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
}

#[tokio::test]
async fn revoked_session_keeps_outbox_pending() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, profile) = register(&server, "alice").await;
    let room_id = create_room(&engine, "general").await;

    // Another device, or an admin, ends this session on the server.
    let revoked = reqwest::Client::new()
        .post(format!("{}/api/auth/logout", server.base()))
        .bearer_auth(engine.api().token().unwrap())
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());

    engine
        .queue_message(room_id, "written after the logout", None, Vec::new())
        .unwrap();
    let flushed = engine.flush_outbox().await;
    assert!(
        matches!(flushed, Err(ClientError::NotLoggedIn)),
        "{flushed:?}"
    );
    let outbox = engine.outbox().unwrap();
    assert_eq!(outbox.len(), 1, "outbox: {outbox:?}");
    assert_eq!(outbox[0].state, OutboxState::Pending);
    drop(engine);

    let engine = Engine::login(
        Profile::new(profile.path()),
        &server.base(),
        "alice",
        PASSWORD,
    )
    .await
    .unwrap();
    let report = engine.flush_outbox().await.unwrap();
    assert_eq!(report.sent, 1);
    let history = engine.history(room_id, 50).await.unwrap();
    let copies = history
        .iter()
        .filter(|message| message.body == "written after the logout")
        .count();
    assert_eq!(copies, 1, "history: {history:?}");
}

// --- History windows ---

/// Posts `count` messages straight to the server, past the engine's cache, and returns
/// their ids in order.
async fn post_many(engine: &Engine, room_id: Uuid, count: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for number in 1..=count {
        let request = PostMessageRequest {
            body: format!("message {number}"),
            client_id: Uuid::new_v4().to_string(),
            reply_to: None,
            attachments: Vec::new(),
        };
        ids.push(
            engine
                .api()
                .post_message(room_id, &request)
                .await
                .unwrap()
                .id,
        );
    }
    ids
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|message| message.seq).collect()
}

#[tokio::test]
async fn history_page_fetches_older_pages() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _folder) = register(&server, "alice").await;
    let room_id = create_room(&engine, "long").await;
    post_many(&engine, room_id, 120).await;

    let newest = engine
        .history_page(room_id, HistoryWindow::Before(i64::MAX), 30)
        .await
        .unwrap();
    assert_eq!(seqs(&newest), (91..=120).collect::<Vec<_>>());

    // Two more pages of 50 reach back to the first message.
    let oldest = engine
        .history_page(room_id, HistoryWindow::Before(20), 50)
        .await
        .unwrap();
    assert_eq!(seqs(&oldest), (1..=19).collect::<Vec<_>>());

    let after = engine
        .history_page(room_id, HistoryWindow::After(100), 50)
        .await
        .unwrap();
    assert_eq!(seqs(&after), (101..=120).collect::<Vec<_>>());
}

#[tokio::test]
async fn history_page_offline_returns_cached() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _folder) = register(&server, "alice").await;
    let room_id = create_room(&engine, "long").await;
    post_many(&engine, room_id, 120).await;
    // One page: messages 71 to 120.
    engine.history(room_id, 50).await.unwrap();
    server.stop().await;

    let partial = engine
        .history_page(room_id, HistoryWindow::Before(100), 50)
        .await
        .unwrap();
    assert_eq!(seqs(&partial), (71..=99).collect::<Vec<_>>());

    let error = engine
        .history_page(room_id, HistoryWindow::Before(50), 50)
        .await
        .unwrap_err();
    assert!(error.is_network(), "{error:?}");
}

#[tokio::test]
async fn history_around_finds_old_message() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(data.path()).await;
    let (engine, _folder) = register(&server, "alice").await;
    let room_id = create_room(&engine, "long").await;
    let ids = post_many(&engine, room_id, 120).await;

    // A second device, whose cache contains nothing of the room yet.
    let folder = tempfile::tempdir().unwrap();
    let other = Engine::login(
        Profile::new(folder.path()),
        &server.base(),
        "alice",
        PASSWORD,
    )
    .await
    .unwrap();
    let around = other.history_around(room_id, ids[9], 10).await.unwrap();
    assert_eq!(seqs(&around), (6..=15).collect::<Vec<_>>());
    assert_eq!(around[4].id, ids[9]);

    let unknown = Uuid::new_v4();
    let error = other
        .history_around(room_id, unknown, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Usage(text) if text.contains(&unknown.to_string())),
        "{error:?}"
    );
}
