//! Desktop app benchmark: cold start, idle memory, memory after scrolling back through a
//! long room, and the sizes of the release binary and the .deb bundle.
//!
//! It starts `roomler-server` on a free loopback port, registers a user in `--rooms`
//! public rooms, posts `--messages` messages to the first one, and fills a profile's
//! offline cache with `roomler login` and `roomler sync`. Then, under Xvfb and
//! tauri-driver, it measures:
//!
//! 1. Cold start: from the WebDriver request that launches the app with that profile until
//!    every cached room is listed and a click on one opens its timeline, over `--starts`
//!    launches. The file system cache is warm after the first launch.
//! 2. Idle memory: `--idle-secs` after the start, the RSS and PSS of every process of the
//!    app (the app itself, WebKitWebProcess, WebKitNetworkProcess), read from `/proc`.
//! 3. Scrolling: the time and memory after scrolling the long room's timeline up to its
//!    first message, and how many messages the page then contains. The timeline keeps a
//!    window of messages, so that count stays bounded however long the room is.
//!
//! Run it with:
//!
//! ```text
//! npm --prefix ui ci && npm --prefix ui run build
//! cargo build --release -p roomler-server -p roomler-client
//! cargo build --release -p roomler-desktop --features custom-protocol
//! cargo run --release -p roomler-e2e --bin desktop_bench -- --json desktop-bench.json
//! ```

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use futures_util::{StreamExt, stream};
use roomler_e2e::desktop::{
    DesktopApp, LaunchOptions, Prerequisites, UI_TIMEOUT, Xvfb, descendants, process_name,
    process_pss_kib,
};
use roomler_e2e::{
    ApiClient, MachineInfo, ServerOptions, ServerProcess, load_average_1m, process_rss_kib,
};
use roomler_shared::api::{CreateRoomRequest, PostMessageRequest, RegisterRequest};
use roomler_shared::model::RoomKind;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";
/// Posts in flight while the long room is filled.
const POST_CONCURRENCY: usize = 8;
/// Time the scroll phase waits for an older page before it gives up on reaching the start.
const SCROLL_STALL: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(about = "Measures the desktop app's start, memory and size")]
struct Args {
    /// Rooms in the cache.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    rooms: u32,
    /// Messages in the long room.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    messages: u32,
    /// Launches measured for the cold start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    starts: u32,
    /// Seconds between the start and the idle memory reading.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    idle_secs: u64,
    /// Folder of the binaries (roomler-server, roomler, roomler-desktop); default: this
    /// bench's own target folder, e.g. target/release.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Writes the report as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: MachineInfo,
    load_average_1m_before: Option<f64>,
    rooms: u32,
    messages: u32,
    cold_start_ms: Vec<u128>,
    idle: Memory,
    scroll: ScrollResult,
    /// The same scroll again, after jumping back to the newest messages.
    second_scroll: ScrollResult,
    binary_bytes: u64,
    deb_bytes: Option<u64>,
}

#[derive(Debug, Serialize, Default)]
struct Memory {
    total_rss_kib: u64,
    total_pss_kib: u64,
    processes: Vec<ProcessMemory>,
}

#[derive(Debug, Serialize)]
struct ProcessMemory {
    name: String,
    rss_kib: u64,
    pss_kib: u64,
}

#[derive(Debug, Serialize)]
struct ScrollResult {
    /// Sequence number of the oldest message reached: 1 is the room's first.
    oldest_seq: u64,
    /// Messages in the page once scrolled to the start.
    messages_in_page: u64,
    seconds: f64,
    memory: Memory,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("desktop_bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench has no folder")?
            .to_path_buf(),
    };
    let app_binary = bin_dir.join("roomler-desktop");
    let Some(prerequisites) = Prerequisites::find(&app_binary)? else {
        bail!("the desktop app cannot run here; see the reason above");
    };
    let load_before = load_average_1m();
    let xvfb = Xvfb::start(&prerequisites.xvfb).await?;
    let mut options = ServerOptions::new(bin_dir.join("roomler-server"));
    options
        .env
        .push(("ROOMLER_RATE_LIMIT".into(), "off".into()));
    let server = ServerProcess::start(&options).await?;

    let long_room = fill_server(&server, args.rooms, args.messages).await?;
    eprintln!(
        "filled {} rooms, {} messages in {long_room}",
        args.rooms, args.messages
    );
    let profile = tempfile::Builder::new()
        .prefix("roomler-bench-")
        .tempdir()?;
    let profile_dir = profile.path().join("profile");
    fill_cache(&bin_dir.join("roomler"), &profile_dir, server.base_url()).await?;

    let launch = LaunchOptions {
        args: vec!["--profile".into(), profile_dir.display().to_string()],
        env: vec![
            ("ROOMLER_TOKEN_STORE".into(), "file".into()),
            (
                "DBUS_SESSION_BUS_ADDRESS".into(),
                format!("unix:path={}", profile.path().join("no-bus").display()),
            ),
        ],
        log_path: Some(profile.path().join("app.log")),
    };

    let mut cold_start_ms = Vec::new();
    let mut last = None;
    for run in 0..args.starts {
        if let Some(app) = last.take() {
            close(app).await?;
        }
        let started = Instant::now();
        let app = DesktopApp::launch(&prerequisites, xvfb.display(), &launch).await?;
        wait_for_room_list(&app, args.rooms).await?;
        let elapsed = started.elapsed().as_millis();
        eprintln!("start {}: {elapsed} ms", run + 1);
        cold_start_ms.push(elapsed);
        last = Some(app);
    }
    let app = last.context("no launch")?;

    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle = app_memory(&app)?;
    eprintln!("idle: {} KiB PSS", idle.total_pss_kib);

    let scroll = scroll_back(&app, &long_room_label(), args.idle_secs).await?;
    eprintln!(
        "scrolled back to message {} in {:.1} s, {} messages in the page",
        scroll.oldest_seq, scroll.seconds, scroll.messages_in_page
    );
    ensure!(
        scroll.oldest_seq == 1,
        "scrolling stalled at message {} of {}",
        scroll.oldest_seq,
        args.messages
    );
    // A second pass after jumping back to the newest messages separates a plateau
    // (the web process keeps memory it freed) from growth with every scroll (a leak).
    let jump = "const button = document.querySelector('[data-test=jump-newest]'); button?.click(); return !!button;";
    ensure!(
        app.client().execute(jump, Vec::new()).await? == serde_json::Value::Bool(true),
        "no Jump to newest button after scrolling back"
    );
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let second_scroll = scroll_back(&app, &long_room_label(), args.idle_secs).await?;
    eprintln!(
        "second pass: message {}, {} KiB RSS",
        second_scroll.oldest_seq, second_scroll.memory.total_rss_kib
    );
    close(app).await?;

    let binary_bytes = std::fs::metadata(&app_binary)?.len();
    let report = Report {
        machine: MachineInfo::read(),
        load_average_1m_before: load_before,
        rooms: args.rooms,
        messages: args.messages,
        cold_start_ms,
        idle,
        scroll,
        second_scroll,
        binary_bytes,
        deb_bytes: deb_size(&bin_dir),
    };
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = &args.json {
        std::fs::write(path, &json)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

fn long_room_label() -> String {
    "room-00".to_string()
}

/// Registers alice, creates the rooms and posts the messages to the first; returns its id.
async fn fill_server(server: &ServerProcess, rooms: u32, messages: u32) -> Result<Uuid> {
    let api = ApiClient::new(server.base_url())?;
    let auth = api
        .register(&RegisterRequest {
            username: "alice".into(),
            email: "alice@example.com".into(),
            password: PASSWORD.into(),
            display_name: Some("Alice".into()),
        })
        .await?;
    let token = auth.token;
    let mut long_room = None;
    for index in 0..rooms {
        let room = api
            .create_room(
                &token,
                &CreateRoomRequest {
                    name: format!("room-{index:02}"),
                    kind: RoomKind::Public,
                    password: None,
                    parent_id: None,
                    topic: None,
                },
            )
            .await?;
        long_room.get_or_insert(room.id);
    }
    let long_room = long_room.context("no room")?;

    let api = &api;
    let token = &token;
    let mut posts = stream::iter(0..messages)
        .map(|index| async move {
            api.post_message(
                token,
                long_room,
                &PostMessageRequest {
                    body: format!(
                        "message {index}: **status** of the build, see `ci/{index}` :tada:"
                    ),
                    client_id: Uuid::new_v4().to_string(),
                    reply_to: None,
                    attachments: Vec::new(),
                },
            )
            .await
        })
        .buffer_unordered(POST_CONCURRENCY);
    while let Some(result) = posts.next().await {
        result?;
    }
    Ok(long_room)
}

/// Logs alice in with the CLI on `profile` and syncs, which caches every room.
async fn fill_cache(cli: &Path, profile: &Path, server_url: &str) -> Result<()> {
    let mut login = Command::new(cli)
        .args(["--profile"])
        .arg(profile)
        .args([
            "login",
            "--server",
            server_url,
            "--user",
            "alice",
            "--password-stdin",
        ])
        .env("ROOMLER_TOKEN_STORE", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to run {}", cli.display()))?;
    let mut stdin = login.stdin.take().context("no stdin")?;
    stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await?;
    drop(stdin);
    ensure!(login.wait().await?.success(), "roomler login failed");
    let sync = Command::new(cli)
        .arg("--profile")
        .arg(profile)
        .arg("sync")
        .env("ROOMLER_TOKEN_STORE", "file")
        .stdout(Stdio::null())
        .status()
        .await?;
    ensure!(sync.success(), "roomler sync failed");
    Ok(())
}

/// Waits until `rooms` rooms are listed and a click on the first opens its timeline.
async fn wait_for_room_list(app: &DesktopApp, rooms: u32) -> Result<()> {
    app.wait_until(
        &format!("{rooms} rooms are listed"),
        &format!("return document.querySelectorAll('[data-test=room-item]').length >= {rooms};"),
        UI_TIMEOUT,
    )
    .await?;
    app.wait_for("[data-test=room-item]", UI_TIMEOUT)
        .await?
        .click()
        .await?;
    app.wait_for("[data-test=timeline]", UI_TIMEOUT).await?;
    Ok(())
}

/// Reads the memory of every process of the app: the descendants of tauri-driver
/// except WebKitWebDriver.
fn app_memory(app: &DesktopApp) -> Result<Memory> {
    let root = app.driver_pid().context("tauri-driver has exited")?;
    let mut memory = Memory::default();
    for pid in descendants(root) {
        let Some(name) = process_name(pid) else {
            continue;
        };
        if name == "WebKitWebDriver" {
            continue;
        }
        let (Ok(rss_kib), Ok(pss_kib)) = (process_rss_kib(pid), process_pss_kib(pid)) else {
            continue;
        };
        memory.total_rss_kib += rss_kib;
        memory.total_pss_kib += pss_kib;
        memory.processes.push(ProcessMemory {
            name,
            rss_kib,
            pss_kib,
        });
    }
    ensure!(
        !memory.processes.is_empty(),
        "found no process of the app under tauri-driver"
    );
    Ok(memory)
}

/// Opens `room` and scrolls its timeline to the top until its first message is shown, or
/// until no older message arrives for [`SCROLL_STALL`].
async fn scroll_back(app: &DesktopApp, room: &str, settle_secs: u64) -> Result<ScrollResult> {
    let open = format!(
        "const item = [...document.querySelectorAll('[data-test=room-item]')].find(e => e.textContent.includes({room:?})); item?.click(); return !!item;"
    );
    ensure!(
        app.client().execute(&open, Vec::new()).await? == serde_json::Value::Bool(true),
        "the room {room} is not listed"
    );
    app.wait_for("[data-test=message]", UI_TIMEOUT).await?;
    let scroll = "const t = document.querySelector('[data-test=timeline]'); \
                  if (t) { t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); } \
                  const seqs = [...document.querySelectorAll('[data-seq]')].map(e => Number(e.dataset.seq)); \
                  return [seqs.length ? Math.min(...seqs) : 0, seqs.length];";
    let started = Instant::now();
    let mut oldest = u64::MAX;
    let mut in_page = 0;
    let mut last_progress = Instant::now();
    while oldest > 1 && last_progress.elapsed() < SCROLL_STALL {
        let value = app.client().execute(scroll, Vec::new()).await?;
        let reading = value.as_array().map(|pair| {
            let number = |index: usize| pair.get(index).and_then(serde_json::Value::as_u64);
            (number(0).unwrap_or(0), number(1).unwrap_or(0))
        });
        let (seq, count) = reading.context("the scroll script returned no pair")?;
        in_page = count;
        if seq > 0 && seq < oldest {
            oldest = seq;
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    Ok(ScrollResult {
        oldest_seq: oldest,
        messages_in_page: in_page,
        seconds,
        memory: app_memory(app)?,
    })
}

async fn close(app: DesktopApp) -> Result<()> {
    app.close().await?;
    // Lets WebKit's processes exit before the next launch.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// Returns the size of the newest .deb in `BIN_DIR/bundle/deb`, if one was built.
fn deb_size(bin_dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(bin_dir.join("bundle/deb")).ok()?;
    entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "deb"))
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            Some((metadata.modified().ok()?, metadata.len()))
        })
        .max()
        .map(|(_, size)| size)
}
