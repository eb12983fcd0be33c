//! WebSocket benchmark: idle memory per connection and message delivery latency.
//!
//! Starts `roomler-server` on a free loopback port with a temporary data directory and
//! `ROOMLER_RATE_LIMIT=off` (or uses the server at `--url`), registers `--connections`
//! users, puts them into public rooms of `--room-size` members and opens one WebSocket per
//! user. It then measures:
//!
//! 1. Idle memory: the growth of the server's RSS from before the connections were opened
//!    until `--idle-secs` after the last one opened, divided by the number of connections.
//!    A started server is restarted on the same data directory after setup, so that the
//!    memory that password hashing left in its allocator does not hide the growth.
//! 2. Delivery latency: it posts messages at `--rate` per second in total for `--duration`
//!    seconds, round-robin over the rooms. Every member's connection records the time from
//!    just before the POST was sent until its `message.created` event arrived.
//! 3. Deliveries: the `message.created` events received against posts × room members, and
//!    the sustained posts and deliveries per second.
//!
//! The bench and the server share the machine's CPUs, so the report also gives the CPU
//! time each of them used during the load phase.
//!
//! Run it with:
//!
//! ```text
//! cargo build --release -p roomler-server
//! cargo run --release -p roomler-e2e --bin ws_bench -- --connections 1000 --json report.json
//! ```
//!
//! Exit status: 0 when every post succeeded and every delivery arrived, 2 when the run
//! finished with failed posts, missing or duplicate deliveries or dropped connections,
//! and 1 on any other error.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use roomler_e2e::{
    ApiClient, HTTP_TIMEOUT, MachineInfo, OpenFileLimit, ServerOptions, ServerProcess, WebSocket,
    connect_websocket, load_average_1m, process_cpu_secs, process_rss_kib, raise_open_file_limit,
    read_hello, send_frame,
};
use roomler_shared::api::{
    CreateRoomRequest, JoinRoomRequest, PostMessageRequest, RegisterRequest,
};
use roomler_shared::model::RoomKind;
use roomler_shared::ws::{ClientFrame, EventKind};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::{error, info, warn};
use uuid::Uuid;

/// File descriptors kept free beyond one per connection, for the HTTP pool, logs and
/// the runtime.
const FD_HEADROOM: u64 = 256;
/// Upper bound of `--rate` × `--duration`, which sizes the per-message delivery counters.
const MAX_PLANNED_POSTS: u64 = 1_000_000;
/// Pause before the first memory reading, so that the server finishes work queued by setup.
const SETTLE_TIME: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "bench-password";
/// Errors of one kind that are logged one by one before only the count goes on.
const LOGGED_ERRORS_MAX: u64 = 10;
/// Largest latency the histograms record, in microseconds. Larger values are recorded as it.
const LATENCY_MAX_US: u64 = 600_000_000;

#[derive(Debug, Parser)]
#[command(
    about = "Measures the Roomler server's idle memory per WebSocket connection and its \
             message delivery latency"
)]
struct Args {
    /// Number of users, each with one WebSocket connection.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: u32,

    /// Members per room. The last room gets the remainder when it does not divide evenly.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    room_size: u32,

    /// Messages posted per second, in total over all rooms.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rate: u32,

    /// Length of the posting phase, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,

    /// Keep the started server running after setup instead of restarting it before the
    /// connections open. Its RSS then includes what registration left in the allocator.
    #[arg(long, conflicts_with = "url")]
    no_restart: bool,

    /// Seconds that the open connections stay idle before the second memory reading.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    idle_secs: u64,

    /// Maximum seconds to wait after the last post for deliveries still on their way.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    drain_secs: u64,

    /// Server binary to start [default: roomler-server next to this executable].
    #[arg(long, conflicts_with = "url")]
    server_bin: Option<PathBuf>,

    /// File for the started server's stdout and stderr [default: server.log in its
    /// temporary data directory, deleted at exit].
    #[arg(long, conflicts_with = "url")]
    server_log: Option<PathBuf>,

    /// Base URL of an already running server, e.g. http://127.0.0.1:8080, instead of
    /// starting one. Its registration rate limits must be off.
    #[arg(long)]
    url: Option<String>,

    /// Process id of the server at --url, to read its memory and CPU time. Without it
    /// they are not measured.
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,

    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// HTTP requests in flight while registering users and joining rooms.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    http_concurrency: u32,

    /// WebSocket handshakes in flight while opening the connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    connect_concurrency: u32,

    /// Maximum posts awaiting their response. A post due while this many are in flight
    /// waits for a response, and the posts that fell behind are then sent at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_posts_in_flight: u32,
}

impl Args {
    fn planned_posts(&self) -> u64 {
        u64::from(self.rate) * self.duration
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();

    // Dropping `run` on a signal drops the server process, whose kill_on_drop stops it.
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        signal = stop_signal() => Err(anyhow!("interrupted by {signal}; the server was stopped")),
    };
    let report = match outcome {
        Ok(report) => report,
        Err(error) => {
            error!("benchmark failed: {error:#}");
            return ExitCode::from(1);
        }
    };

    print_summary(&report);
    if let Some(path) = &args.json {
        if let Err(error) = write_json(&report, path) {
            error!("{error:#}");
            return ExitCode::from(1);
        }
        info!(path = %path.display(), "wrote the JSON report");
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and returns its name.
async fn stop_signal() -> &'static str {
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            warn!("failed to listen for SIGTERM, so only Ctrl-C stops the server: {error}");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn check_args(args: &Args) -> Result<()> {
    if args.planned_posts() > MAX_PLANNED_POSTS {
        bail!(
            "--rate {} × --duration {} is {} posts, more than the maximum {MAX_PLANNED_POSTS}; \
             lower one of them",
            args.rate,
            args.duration,
            args.planned_posts()
        );
    }
    Ok(())
}

/// Runs every phase and returns the report. The server is stopped on return, also on error.
async fn run(args: &Args) -> Result<Report> {
    check_args(args)?;
    let started_at_unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let open_file_limit = ensure_open_file_limit(args.connections)?;
    let load_average_at_start = load_average_1m();

    let mut target = Target::start(args).await?;
    let api = ApiClient::new(target.base_url())?;
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    info!(url = target.base_url(), tag, "server is ready");

    let Setup {
        users,
        rooms,
        register_secs,
        rooms_secs,
    } = set_up(&api, &tag, args).await?;
    target.ensure_running()?;
    let rss_after_setup_kib = target.rss_kib()?;

    let restarted = !args.no_restart && target.restart().await?;
    let api = ApiClient::new(target.base_url())?;
    tokio::time::sleep(SETTLE_TIME).await;
    let rss_before_kib = target.rss_kib()?;

    let clock = Instant::now();
    let deliveries = Arc::new(DeliveryTracker::new(clock, &tag, args.planned_posts()));
    let phase = Instant::now();
    let connections = open_connections(target.base_url(), &users, &deliveries, args).await?;
    let connect_secs = phase.elapsed().as_secs_f64();

    info!(seconds = args.idle_secs, "connections are open; idling");
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    target.ensure_running()?;
    let rss_after_kib = target.rss_kib()?;
    let memory = memory_report(
        MemoryReadings {
            after_setup: rss_after_setup_kib,
            before_connect: rss_before_kib,
            after_idle: rss_after_kib,
        },
        restarted,
        users.len(),
    );

    let cpu_before = CpuTimes::read(target.pid())?;
    let posts = Arc::new(PostTracker::new(&tag, args.planned_posts()));
    let load = post_messages(&api, &users, &rooms, &deliveries, &posts, args).await;
    wait_for_deliveries(&deliveries, &posts, Duration::from_secs(args.drain_secs)).await;
    let cpu = CpuTimes::read(target.pid())?.since(&cpu_before);

    let disconnects = deliveries.disconnects.load(Ordering::Relaxed);
    connections.close().await;
    target.ensure_running()?;
    target.shutdown().await?;

    let counts = count_deliveries(&deliveries, &posts, &rooms, load.sent);
    let throughput = throughput_report(&load, &deliveries);
    let mut report = Report {
        bench: "ws_bench",
        started_at_unix_secs,
        machine: MachineInfo::read(),
        load_average_1m: LoadAverages {
            at_start: load_average_at_start,
            at_end: load_average_1m(),
        },
        open_file_limit,
        config: ConfigReport::new(args, rooms.len(), &target_kind(args)),
        setup: SetupReport {
            register_secs,
            rooms_secs,
            connect_secs,
        },
        memory,
        load: throughput,
        deliveries: counts,
        delivery_latency_ms: LatencySummary::from_micros(&deliveries.latency_us.lock().unwrap()),
        post_latency_ms: LatencySummary::from_micros(&posts.latency_us.lock().unwrap()),
        cpu,
        disconnects,
        problems: Vec::new(),
    };
    report.problems = find_problems(&report);
    Ok(report)
}

fn target_kind(args: &Args) -> String {
    match &args.url {
        Some(url) => format!("external {url}"),
        None => "started".to_owned(),
    }
}

/// Raises the soft open-file limit to the hard one and checks that it fits the connections.
fn ensure_open_file_limit(connections: u32) -> Result<OpenFileLimit> {
    let limit = raise_open_file_limit()?;
    if limit.soft > limit.previous_soft {
        info!(
            from = limit.previous_soft,
            to = limit.soft,
            "raised the open-file limit (RLIMIT_NOFILE); a started server inherits it"
        );
    } else {
        info!(
            soft = limit.soft,
            hard = limit.hard,
            "open-file limit (RLIMIT_NOFILE)"
        );
    }
    let needed = u64::from(connections) + FD_HEADROOM;
    if limit.soft < needed {
        bail!(
            "the open-file limit is {} (hard limit {}), below the {needed} that {connections} \
             connections need; raise the hard limit (`ulimit -Hn` as root) or lower --connections",
            limit.soft,
            limit.hard
        );
    }
    Ok(limit)
}

/// The server under test: a child that the bench started, or one at `--url`.
enum Target {
    Started(ServerProcess),
    External { base_url: String, pid: Option<u32> },
}

impl Target {
    async fn start(args: &Args) -> Result<Self> {
        if let Some(url) = &args.url {
            let base_url = url.trim_end_matches('/').to_owned();
            wait_for_health(&ApiClient::new(&base_url)?, Duration::from_secs(30)).await?;
            return Ok(Target::External {
                base_url,
                pid: args.server_pid,
            });
        }

        let binary = match &args.server_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .context("failed to find the bench's own executable")?
                .with_file_name("roomler-server"),
        };
        let mut options = ServerOptions::new(&binary);
        options
            .env
            .push(("ROOMLER_RATE_LIMIT".into(), "off".into()));
        options.log_path.clone_from(&args.server_log);
        info!(binary = %binary.display(), "starting the server");
        let server = ServerProcess::start(&options).await?;
        info!(
            pid = server.pid(),
            log = %server.log_path().display(),
            "server started"
        );
        Ok(Target::Started(server))
    }

    fn base_url(&self) -> &str {
        match self {
            Target::Started(server) => server.base_url(),
            Target::External { base_url, .. } => base_url,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Target::Started(server) => server.pid(),
            Target::External { pid, .. } => *pid,
        }
    }

    fn ensure_running(&mut self) -> Result<()> {
        match self {
            Target::Started(server) => server.ensure_running(),
            Target::External { .. } => Ok(()),
        }
    }

    /// Restarts a started server on its data directory and returns whether it did.
    async fn restart(&mut self) -> Result<bool> {
        let Target::Started(server) = self else {
            return Ok(false);
        };
        server.restart().await?;
        info!(
            pid = server.pid(),
            url = server.base_url(),
            "restarted the server after setup, before measuring memory"
        );
        Ok(true)
    }

    fn rss_kib(&self) -> Result<Option<u64>> {
        self.pid().map(process_rss_kib).transpose()
    }

    async fn shutdown(self) -> Result<()> {
        match self {
            Target::Started(server) => server.shutdown().await,
            Target::External { .. } => Ok(()),
        }
    }
}

async fn wait_for_health(api: &ApiClient, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match api.health().await {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() >= deadline => {
                bail!("the server is not healthy after {timeout:?}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Users and rooms of this run, with the time each took to create.
struct Setup {
    users: Vec<BenchUser>,
    rooms: Vec<BenchRoom>,
    register_secs: f64,
    rooms_secs: f64,
}

async fn set_up(api: &ApiClient, tag: &str, args: &Args) -> Result<Setup> {
    let phase = Instant::now();
    let users = register_users(api, tag, args).await?;
    let register_secs = phase.elapsed().as_secs_f64();

    let phase = Instant::now();
    let rooms = create_rooms(api, tag, &users, args).await?;
    let rooms_secs = phase.elapsed().as_secs_f64();
    Ok(Setup {
        users,
        rooms,
        register_secs,
        rooms_secs,
    })
}

/// A registered user of this run.
struct BenchUser {
    username: String,
    token: String,
}

/// A room of this run with the indices of its members in the user list; the first created it.
struct BenchRoom {
    id: Uuid,
    path: String,
    members: Vec<usize>,
}

/// Progress log of a setup phase: one line at every tenth of its total. `label` is the log message.
struct Progress {
    label: &'static str,
    total: usize,
    step: usize,
}

impl Progress {
    fn new(label: &'static str, total: usize) -> Self {
        Self {
            label,
            total,
            step: total.div_ceil(10).max(1),
        }
    }

    fn update(&self, done: usize) {
        if done.is_multiple_of(self.step) || done == self.total {
            info!(done, total = self.total, "{}", self.label);
        }
    }
}

async fn register_users(api: &ApiClient, tag: &str, args: &Args) -> Result<Vec<BenchUser>> {
    let count = args.connections as usize;
    let progress = Progress::new("registered users", count);
    let mut registrations = stream::iter(0..count)
        .map(|index| register_user(api, tag, index))
        .buffered(args.http_concurrency as usize);

    let mut users = Vec::with_capacity(count);
    while let Some(user) = registrations.next().await {
        users.push(user?);
        progress.update(users.len());
    }
    Ok(users)
}

async fn register_user(api: &ApiClient, tag: &str, index: usize) -> Result<BenchUser> {
    let username = format!("b{tag}u{index}");
    let request = RegisterRequest {
        username: username.clone(),
        email: format!("{username}@example.com"),
        password: PASSWORD.to_owned(),
        display_name: None,
    };
    let response = api
        .register(&request)
        .await
        .with_context(|| format!("failed to register user {username}"))?;
    Ok(BenchUser {
        username,
        token: response.token,
    })
}

/// Splits user indices `0..count` into consecutive groups of `room_size`.
fn group_members(count: usize, room_size: usize) -> Vec<Vec<usize>> {
    let indices: Vec<usize> = (0..count).collect();
    indices.chunks(room_size).map(<[usize]>::to_vec).collect()
}

/// Creates one public room per group, by its first member, and joins the others to it.
async fn create_rooms(
    api: &ApiClient,
    tag: &str,
    users: &[BenchUser],
    args: &Args,
) -> Result<Vec<BenchRoom>> {
    let groups = group_members(users.len(), args.room_size as usize);
    let concurrency = args.http_concurrency as usize;

    let progress = Progress::new("created rooms", groups.len());
    let mut creations = stream::iter(groups.into_iter().enumerate())
        .map(|(index, members)| create_room(api, tag, users, index, members))
        .buffered(concurrency);
    let mut rooms = Vec::new();
    while let Some(room) = creations.next().await {
        rooms.push(room?);
        progress.update(rooms.len());
    }
    drop(creations);

    let joins: Vec<(usize, usize)> = rooms
        .iter()
        .enumerate()
        .flat_map(|(room, bench_room)| {
            bench_room.members[1..]
                .iter()
                .map(move |&user| (room, user))
        })
        .collect();
    let progress = Progress::new("joined rooms", joins.len());
    let mut results = stream::iter(joins)
        .map(|(room, user)| join_room(api, &rooms[room], &users[user]))
        .buffer_unordered(concurrency);
    let mut joined = 0;
    while let Some(result) = results.next().await {
        result?;
        joined += 1;
        progress.update(joined);
    }
    drop(results);
    Ok(rooms)
}

async fn create_room(
    api: &ApiClient,
    tag: &str,
    users: &[BenchUser],
    index: usize,
    members: Vec<usize>,
) -> Result<BenchRoom> {
    let name = format!("b{tag}-r{index}");
    let owner = &users[members[0]];
    let request = CreateRoomRequest {
        name: name.clone(),
        kind: RoomKind::Public,
        password: None,
        parent_id: None,
        topic: None,
    };
    let room = api
        .create_room(&owner.token, &request)
        .await
        .with_context(|| format!("user {} failed to create room {name}", owner.username))?;
    Ok(BenchRoom {
        id: room.id,
        path: room.path,
        members,
    })
}

async fn join_room(api: &ApiClient, room: &BenchRoom, user: &BenchUser) -> Result<()> {
    let request = JoinRoomRequest {
        name: room.path.clone(),
        password: None,
    };
    let joined = api
        .join_room(&user.token, &request)
        .await
        .with_context(|| format!("user {} failed to join room {}", user.username, room.path))?;
    if joined.id != room.id {
        bail!(
            "user {} joined room {} by name but got room id {}, expected {}",
            user.username,
            room.path,
            joined.id,
            room.id
        );
    }
    Ok(())
}

/// Server RSS readings in KiB; `None` when the server's process id is unknown.
struct MemoryReadings {
    after_setup: Option<u64>,
    before_connect: Option<u64>,
    after_idle: Option<u64>,
}

/// Server memory before and after the connections opened.
#[derive(Debug, Serialize)]
struct MemoryReport {
    /// RSS after registering users and joining rooms, before any restart.
    rss_after_setup_kib: u64,
    /// Whether the server was restarted between `rss_after_setup_kib` and `rss_before_kib`.
    restarted_before_connect: bool,
    rss_before_kib: u64,
    rss_after_kib: u64,
    /// (after - before) / connections; negative when the server released memory meanwhile.
    per_connection_kib: f64,
}

fn memory_report(
    readings: MemoryReadings,
    restarted: bool,
    connections: usize,
) -> Option<MemoryReport> {
    let before = readings.before_connect?;
    let after = readings.after_idle?;
    Some(MemoryReport {
        rss_after_setup_kib: readings.after_setup?,
        restarted_before_connect: restarted,
        rss_before_kib: before,
        rss_after_kib: after,
        per_connection_kib: (after as f64 - before as f64) / connections as f64,
    })
}

/// Receiving side: what the connections saw, shared by all their reader tasks.
struct DeliveryTracker {
    /// Epoch of the send timestamps in message bodies and of the receive timestamps.
    clock: Instant,
    /// `bench TAG `, the start of every body this run posts.
    body_prefix: String,
    latency_us: Mutex<Histogram<u64>>,
    /// `message.created` events received per post index.
    per_post: Vec<AtomicU32>,
    /// All `message.created` events received for this run's posts.
    delivered: AtomicU64,
    /// `message.created` events whose body this run did not post.
    foreign: AtomicU64,
    /// Text frames that are not valid JSON of the expected shape.
    invalid_frames: AtomicU64,
    /// Frames other than `message.created`, by their `type`.
    other_frames: Mutex<BTreeMap<String, u64>>,
    /// Nanoseconds since `clock` of the newest delivery.
    last_delivery_nanos: AtomicU64,
    /// Connections that closed or failed before the bench closed them.
    disconnects: AtomicU64,
}

/// The parts of a server frame the reader needs; everything else is skipped unparsed.
#[derive(Deserialize)]
struct FrameHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<FrameData<'a>>,
}

#[derive(Deserialize)]
struct FrameData<'a> {
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
}

impl DeliveryTracker {
    fn new(clock: Instant, tag: &str, planned_posts: u64) -> Self {
        Self {
            clock,
            body_prefix: format!("bench {tag} "),
            latency_us: Mutex::new(new_latency_histogram()),
            per_post: (0..planned_posts).map(|_| AtomicU32::new(0)).collect(),
            delivered: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            invalid_frames: AtomicU64::new(0),
            other_frames: Mutex::new(BTreeMap::new()),
            last_delivery_nanos: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
        }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records one text frame received at `received_nanos`.
    fn record_frame(&self, text: &str, received_nanos: u64) {
        let frame: FrameHead = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.record_invalid_frame(text, &error.to_string());
                return;
            }
        };
        if frame.kind != EventKind::MessageCreated.as_str() {
            let mut other_frames = self.other_frames.lock().unwrap();
            *other_frames.entry(frame.kind.into_owned()).or_default() += 1;
            return;
        }
        let Some(body) = frame.data.and_then(|data| data.body) else {
            self.record_invalid_frame(text, "message.created without data.body");
            return;
        };
        let Some((index, sent_nanos)) = parse_bench_body(&body, &self.body_prefix) else {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(counter) = usize::try_from(index)
            .ok()
            .and_then(|i| self.per_post.get(i))
        else {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };

        counter.fetch_add(1, Ordering::Relaxed);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_nanos
            .fetch_max(received_nanos, Ordering::Relaxed);
        let latency_us = received_nanos.saturating_sub(sent_nanos) / 1000;
        self.latency_us
            .lock()
            .unwrap()
            .saturating_record(latency_us);
    }

    fn record_invalid_frame(&self, text: &str, reason: &str) {
        let previous = self.invalid_frames.fetch_add(1, Ordering::Relaxed);
        if previous < LOGGED_ERRORS_MAX {
            let start: String = text.chars().take(200).collect();
            warn!(reason, frame = start, "invalid WebSocket frame");
        }
    }

    fn record_disconnect(&self, username: &str, reason: &str) {
        let previous = self.disconnects.fetch_add(1, Ordering::Relaxed);
        if previous < LOGGED_ERRORS_MAX {
            warn!(
                username,
                reason, "WebSocket connection ended before the bench closed it"
            );
        }
    }
}

fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("the histogram bounds are valid")
}

fn bench_body(tag: &str, index: u64, sent_nanos: u64) -> String {
    format!("bench {tag} {index} {sent_nanos}")
}

/// Returns the post index and send time of a body made by [`bench_body`] with this prefix.
fn parse_bench_body(body: &str, prefix: &str) -> Option<(u64, u64)> {
    let rest = body.trim().strip_prefix(prefix)?;
    let (index, sent_nanos) = rest.split_once(' ')?;
    Some((index.parse().ok()?, sent_nanos.parse().ok()?))
}

/// The open connections: one reader task each, stopped by [`Connections::close`].
struct Connections {
    readers: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Connections {
    /// Tells every reader to send a Close frame and waits up to [`CLOSE_TIMEOUT`] for them.
    async fn close(mut self) {
        let _ = self.stop.send(true);
        let all_closed = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while self.readers.join_next().await.is_some() {}
        })
        .await;
        if all_closed.is_err() {
            warn!(
                remaining = self.readers.len(),
                "timed out closing WebSocket connections; aborting the rest"
            );
            self.readers.shutdown().await;
        }
    }
}

async fn open_connections(
    base_url: &str,
    users: &[BenchUser],
    deliveries: &Arc<DeliveryTracker>,
    args: &Args,
) -> Result<Connections> {
    let (stop, stop_receiver) = watch::channel(false);
    let mut readers = JoinSet::new();
    let progress = Progress::new("opened WebSocket connections", users.len());
    let mut handshakes = stream::iter(users)
        .map(|user| open_connection(base_url, user))
        .buffer_unordered(args.connect_concurrency as usize);

    while let Some(result) = handshakes.next().await {
        let (socket, username) = result?;
        readers.spawn(read_events(
            socket,
            username,
            Arc::clone(deliveries),
            stop_receiver.clone(),
        ));
        progress.update(readers.len());
    }
    Ok(Connections { readers, stop })
}

async fn open_connection(base_url: &str, user: &BenchUser) -> Result<(WebSocket, String)> {
    let mut socket =
        tokio::time::timeout(CONNECT_TIMEOUT, connect_websocket(base_url, &user.token))
            .await
            .with_context(|| {
                format!(
                    "timed out after {CONNECT_TIMEOUT:?} opening the WebSocket of user {}",
                    user.username
                )
            })?
            .with_context(|| format!("failed to open the WebSocket of user {}", user.username))?;
    let seq = read_hello(&mut socket, HELLO_TIMEOUT)
        .await
        .with_context(|| format!("no hello on the WebSocket of user {}", user.username))?;
    // The server withholds live events for a short time after the hello, waiting for a
    // `resume`. Resuming from the hello's seq replays nothing and starts them at once.
    send_frame(&mut socket, &ClientFrame::Resume { since: seq })
        .await
        .with_context(|| format!("failed to send resume for user {}", user.username))?;
    Ok((socket, user.username.clone()))
}

/// Reads frames until `stop` changes. Reading also lets tungstenite reply to the server's
/// pings.
async fn read_events(
    mut socket: WebSocket,
    username: String,
    deliveries: Arc<DeliveryTracker>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => break,
            frame = socket.next() => frame,
        };
        let received_nanos = deliveries.now_nanos();
        match frame {
            Some(Ok(WsMessage::Text(text))) => {
                deliveries.record_frame(text.as_str(), received_nanos)
            }
            Some(Ok(WsMessage::Close(close))) => {
                let reason = format!("closed by the server: {close:?}");
                deliveries.record_disconnect(&username, &reason);
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                deliveries.record_disconnect(&username, &error.to_string());
                return;
            }
            None => {
                deliveries.record_disconnect(&username, "the stream ended");
                return;
            }
        }
    }
    // Best effort: the server is killed right after, so a failed close changes nothing.
    let _ = socket.close(None).await;
}

const POST_PENDING: u8 = 0;
const POST_SUCCEEDED: u8 = 1;
const POST_FAILED: u8 = 2;

/// Sending side: the outcome of each post, shared by the post tasks.
struct PostTracker {
    tag: String,
    /// [`POST_PENDING`], [`POST_SUCCEEDED`] or [`POST_FAILED`] per post index.
    status: Vec<AtomicU8>,
    latency_us: Mutex<Histogram<u64>>,
    succeeded: AtomicU64,
    failed: AtomicU64,
    /// Deliveries that the succeeded posts should cause: the sum of their rooms' members.
    expected_deliveries: AtomicU64,
}

impl PostTracker {
    fn new(tag: &str, planned_posts: u64) -> Self {
        Self {
            tag: tag.to_owned(),
            status: (0..planned_posts)
                .map(|_| AtomicU8::new(POST_PENDING))
                .collect(),
            latency_us: Mutex::new(new_latency_histogram()),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            expected_deliveries: AtomicU64::new(0),
        }
    }

    fn status(&self, index: u64) -> u8 {
        self.status[index as usize].load(Ordering::Relaxed)
    }

    fn record_success(&self, index: u64, latency: Duration, members: usize) {
        self.status[index as usize].store(POST_SUCCEEDED, Ordering::Relaxed);
        self.succeeded.fetch_add(1, Ordering::Relaxed);
        self.expected_deliveries
            .fetch_add(members as u64, Ordering::Relaxed);
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .lock()
            .unwrap()
            .saturating_record(latency_us);
    }

    fn record_failure(&self, index: u64, error: &anyhow::Error) {
        self.status[index as usize].store(POST_FAILED, Ordering::Relaxed);
        let previous = self.failed.fetch_add(1, Ordering::Relaxed);
        if previous < LOGGED_ERRORS_MAX {
            warn!(index, "post failed: {error:#}");
        }
    }
}

/// What the posting loop did.
struct LoadOutcome {
    planned: u64,
    sent: u64,
    /// From the first post to the last one sent.
    window: Duration,
    /// Nanoseconds since the delivery clock of the first post.
    first_post_nanos: u64,
    succeeded: u64,
    failed: u64,
}

/// Posts at `--rate` for `--duration`, round-robin over the rooms and their members, then
/// waits for the posts still in flight.
async fn post_messages(
    api: &ApiClient,
    users: &[BenchUser],
    rooms: &[BenchRoom],
    deliveries: &Arc<DeliveryTracker>,
    posts: &Arc<PostTracker>,
    args: &Args,
) -> LoadOutcome {
    let planned = args.planned_posts();
    info!(
        rate = args.rate,
        seconds = args.duration,
        planned,
        rooms = rooms.len(),
        "posting messages"
    );
    let in_flight = Arc::new(Semaphore::new(args.max_posts_in_flight as usize));
    let mut tasks = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    // Ticks missed because the loop was late fire at once, so a short stall of the bench
    // does not lower the count. A server that stays behind shows as `sent` < `planned`.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);

    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let first_post_nanos = deliveries.now_nanos();
    let mut sent = 0;
    while sent < planned {
        if tokio::time::timeout_at(deadline, ticker.tick())
            .await
            .is_err()
        {
            break;
        }
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline, Arc::clone(&in_flight).acquire_owned()).await
        else {
            break;
        };
        while tasks.try_join_next().is_some() {}

        let index = sent;
        sent += 1;
        let room = &rooms[index as usize % rooms.len()];
        let author = room.members[(index as usize / rooms.len()) % room.members.len()];
        let post = post_one(
            api.clone(),
            users[author].token.clone(),
            room.id,
            room.members.len(),
            index,
            Arc::clone(deliveries),
            Arc::clone(posts),
        );
        tasks.spawn(async move {
            post.await;
            drop(permit);
        });
    }
    let window = started.elapsed();

    let wait = HTTP_TIMEOUT + Duration::from_secs(5);
    if tokio::time::timeout(wait, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!(
            remaining = tasks.len(),
            "timed out waiting for posts in flight; counting them as failed"
        );
        tasks.shutdown().await;
    }
    LoadOutcome {
        planned,
        sent,
        window,
        first_post_nanos,
        succeeded: posts.succeeded.load(Ordering::Relaxed),
        failed: sent - posts.succeeded.load(Ordering::Relaxed),
    }
}

async fn post_one(
    api: ApiClient,
    token: String,
    room_id: Uuid,
    members: usize,
    index: u64,
    deliveries: Arc<DeliveryTracker>,
    posts: Arc<PostTracker>,
) {
    let sent_nanos = deliveries.now_nanos();
    let request = PostMessageRequest {
        body: bench_body(&posts.tag, index, sent_nanos),
        client_id: format!("bench-{}-{index}", posts.tag),
        reply_to: None,
        attachments: Vec::new(),
    };
    let started = Instant::now();
    match api.post_message(&token, room_id, &request).await {
        Ok(message) if message.room_id == room_id => {
            posts.record_success(index, started.elapsed(), members);
        }
        Ok(message) => {
            let error = anyhow!(
                "POST /api/rooms/{room_id}/messages returned a message of room {}",
                message.room_id
            );
            posts.record_failure(index, &error);
        }
        Err(error) => posts.record_failure(index, &anyhow!(error)),
    }
}

/// Waits until the deliveries reach the expected count or `timeout` passes.
async fn wait_for_deliveries(deliveries: &DeliveryTracker, posts: &PostTracker, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let delivered = deliveries.delivered.load(Ordering::Relaxed);
        let expected = posts.expected_deliveries.load(Ordering::Relaxed);
        if delivered >= expected {
            return;
        }
        if Instant::now() >= deadline {
            warn!(
                delivered,
                expected, "timed out after {timeout:?} waiting for the remaining deliveries"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CPU time of the server and of the bench itself, in seconds, and the wall-clock time
/// they were measured over.
#[derive(Debug, Serialize)]
struct CpuTimes {
    /// `None` when the server's process id is unknown.
    server_secs: Option<f64>,
    bench_secs: f64,
    wall_secs: f64,
    #[serde(skip)]
    read_at: Instant,
}

impl CpuTimes {
    fn read(server_pid: Option<u32>) -> Result<Self> {
        Ok(Self {
            server_secs: server_pid.map(process_cpu_secs).transpose()?,
            bench_secs: process_cpu_secs(std::process::id())?,
            wall_secs: 0.0,
            read_at: Instant::now(),
        })
    }

    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server_secs: self
                .server_secs
                .zip(earlier.server_secs)
                .map(|(now, then)| now - then),
            bench_secs: self.bench_secs - earlier.bench_secs,
            wall_secs: self.read_at.duration_since(earlier.read_at).as_secs_f64(),
            read_at: self.read_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    started_at_unix_secs: u64,
    machine: MachineInfo,
    /// Other work on the machine skews the numbers. Registration runs many password hashes
    /// at once and raises the value at the end too, so the value at the start is the one
    /// that shows how busy the machine was before the run.
    load_average_1m: LoadAverages,
    open_file_limit: OpenFileLimit,
    config: ConfigReport,
    setup: SetupReport,
    /// `None` when the server's process id is unknown.
    memory: Option<MemoryReport>,
    load: ThroughputReport,
    deliveries: DeliveryCounts,
    delivery_latency_ms: LatencySummary,
    /// Time until `POST /api/rooms/{id}/messages` returned 201.
    post_latency_ms: LatencySummary,
    /// CPU time used from the first post until the deliveries were complete or timed out.
    cpu: CpuTimes,
    /// Connections that closed or failed before the bench closed them.
    disconnects: u64,
    /// Empty when the run passed. Each entry is a sentence.
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct LoadAverages {
    at_start: Option<f64>,
    at_end: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ConfigReport {
    connections: u32,
    room_size: u32,
    rooms: usize,
    rate: u32,
    duration_secs: u64,
    idle_secs: u64,
    server: String,
}

impl ConfigReport {
    fn new(args: &Args, rooms: usize, server: &str) -> Self {
        Self {
            connections: args.connections,
            room_size: args.room_size,
            rooms,
            rate: args.rate,
            duration_secs: args.duration,
            idle_secs: args.idle_secs,
            server: server.to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
struct SetupReport {
    register_secs: f64,
    rooms_secs: f64,
    connect_secs: f64,
}

#[derive(Debug, Serialize)]
struct ThroughputReport {
    posts_planned: u64,
    posts_sent: u64,
    posts_succeeded: u64,
    posts_failed: u64,
    /// Seconds from the first post to the last one sent.
    posting_secs: f64,
    /// Succeeded posts per second of `posting_secs`.
    posts_per_sec: f64,
    /// Seconds from the first post to the last delivery.
    delivery_secs: f64,
    /// Deliveries per second of `delivery_secs`.
    deliveries_per_sec: f64,
}

fn throughput_report(load: &LoadOutcome, deliveries: &DeliveryTracker) -> ThroughputReport {
    let posting_secs = load.window.as_secs_f64();
    let last_delivery = deliveries.last_delivery_nanos.load(Ordering::Relaxed);
    let delivery_secs = last_delivery.saturating_sub(load.first_post_nanos) as f64 / 1e9;
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    ThroughputReport {
        posts_planned: load.planned,
        posts_sent: load.sent,
        posts_succeeded: load.succeeded,
        posts_failed: load.failed,
        posting_secs,
        posts_per_sec: ratio(load.succeeded as f64, posting_secs),
        delivery_secs,
        deliveries_per_sec: ratio(delivered as f64, delivery_secs),
    }
}

/// Returns `amount / total`, or 0 when `total` is not positive.
fn ratio(amount: f64, total: f64) -> f64 {
    if total > 0.0 { amount / total } else { 0.0 }
}

#[derive(Debug, Serialize)]
struct DeliveryCounts {
    /// Sum over the succeeded posts of their rooms' members.
    expected: u64,
    /// `message.created` events received for this run's posts, duplicates included.
    delivered: u64,
    /// Expected deliveries of succeeded posts that never arrived.
    missing: u64,
    /// Deliveries beyond a post's room members.
    duplicate: u64,
    /// Succeeded posts that some member never received.
    posts_with_missing: u64,
    /// Up to 10 post indices with missing deliveries, with their room ids.
    missing_examples: Vec<MissingExample>,
    /// Deliveries of posts whose request failed.
    of_failed_posts: u64,
    /// `message.created` events whose body this run did not post.
    foreign: u64,
    invalid_frames: u64,
    /// Frames other than `message.created` received from the first connection on, by `type`.
    other_frames: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
struct MissingExample {
    post: u64,
    room_id: Uuid,
    received: u32,
    expected: usize,
}

fn count_deliveries(
    deliveries: &DeliveryTracker,
    posts: &PostTracker,
    rooms: &[BenchRoom],
    sent: u64,
) -> DeliveryCounts {
    let mut counts = DeliveryCounts {
        expected: posts.expected_deliveries.load(Ordering::Relaxed),
        delivered: deliveries.delivered.load(Ordering::Relaxed),
        missing: 0,
        duplicate: 0,
        posts_with_missing: 0,
        missing_examples: Vec::new(),
        of_failed_posts: 0,
        foreign: deliveries.foreign.load(Ordering::Relaxed),
        invalid_frames: deliveries.invalid_frames.load(Ordering::Relaxed),
        other_frames: deliveries.other_frames.lock().unwrap().clone(),
    };
    for index in 0..sent {
        let received = deliveries.per_post[index as usize].load(Ordering::Relaxed);
        if posts.status(index) != POST_SUCCEEDED {
            counts.of_failed_posts += u64::from(received);
            continue;
        }
        let room = &rooms[index as usize % rooms.len()];
        let expected = room.members.len() as u64;
        let received_count = u64::from(received);
        if received_count < expected {
            counts.missing += expected - received_count;
            counts.posts_with_missing += 1;
            if counts.missing_examples.len() < 10 {
                counts.missing_examples.push(MissingExample {
                    post: index,
                    room_id: room.id,
                    received,
                    expected: room.members.len(),
                });
            }
        } else {
            counts.duplicate += received_count - expected;
        }
    }
    counts
}

/// Latency percentiles in milliseconds, from a histogram of microseconds.
#[derive(Debug, Serialize)]
struct LatencySummary {
    samples: u64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

impl LatencySummary {
    fn from_micros(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            samples: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

fn find_problems(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    let load = &report.load;
    let counts = &report.deliveries;
    if load.posts_failed > 0 {
        problems.push(format!(
            "{} of {} posts failed; the log shows the first errors",
            load.posts_failed, load.posts_sent
        ));
    }
    if counts.missing > 0 {
        problems.push(format!(
            "{} of {} expected deliveries are missing, in {} posts; first: {:?}",
            counts.missing,
            counts.expected,
            counts.posts_with_missing,
            counts.missing_examples.first()
        ));
    }
    if counts.duplicate > 0 {
        problems.push(format!(
            "{} deliveries arrived more than once",
            counts.duplicate
        ));
    }
    if report.disconnects > 0 {
        problems.push(format!(
            "{} WebSocket connections ended before the bench closed them",
            report.disconnects
        ));
    }
    if counts.invalid_frames > 0 {
        problems.push(format!(
            "{} WebSocket frames were invalid; the log shows the first",
            counts.invalid_frames
        ));
    }
    if load.posts_sent < load.posts_planned {
        problems.push(format!(
            "only {} of {} planned posts were sent in time; the server or the bench could not \
             keep up with --rate",
            load.posts_sent, load.posts_planned
        ));
    }
    problems
}

fn print_summary(report: &Report) {
    println!("Roomler WebSocket benchmark (ws_bench)");
    print_setup(report);
    print_load(report);
    if report.problems.is_empty() {
        println!("result      PASSED: every post succeeded and every delivery arrived");
    } else {
        for problem in &report.problems {
            println!("result      FAILED: {problem}");
        }
    }
}

/// Prints the machine, the setup and the memory lines.
fn print_setup(report: &Report) {
    let machine = &report.machine;
    let config = &report.config;

    println!(
        "machine     {}, {} logical CPUs, {:.1} GiB memory, Linux {}",
        machine.cpu_model,
        machine.logical_cpus,
        machine.memory_total_kib as f64 / (1024.0 * 1024.0),
        machine.kernel
    );
    let format_load = |load: Option<f64>| {
        load.map_or_else(|| "unknown".to_owned(), |value| format!("{value:.2}"))
    };
    println!(
        "load        1-minute load average {} at the start, {} at the end",
        format_load(report.load_average_1m.at_start),
        format_load(report.load_average_1m.at_end)
    );
    println!(
        "setup       {} users in {} rooms of up to {} members, server {}; registering took \
         {:.2} s, rooms {:.2} s, connecting {:.2} s",
        config.connections,
        config.rooms,
        config.room_size,
        config.server,
        report.setup.register_secs,
        report.setup.rooms_secs,
        report.setup.connect_secs
    );
    match &report.memory {
        Some(memory) => println!(
            "memory      server RSS {:.1} MiB after setup{}, {:.1} MiB before connecting, \
             {:.1} MiB with {} connections idle for {} s: {:.1} KiB per connection",
            memory.rss_after_setup_kib as f64 / 1024.0,
            if memory.restarted_before_connect {
                " (then restarted)"
            } else {
                ""
            },
            memory.rss_before_kib as f64 / 1024.0,
            memory.rss_after_kib as f64 / 1024.0,
            config.connections,
            config.idle_secs,
            memory.per_connection_kib
        ),
        None => println!("memory      not measured: the server's process id is unknown"),
    }
}

/// Prints the posts, deliveries, latency and CPU lines.
fn print_load(report: &Report) {
    let config = &report.config;
    let load = &report.load;
    let counts = &report.deliveries;

    println!(
        "posts       {}/s for {} s: {} of {} planned sent, {} succeeded, {} failed; {:.1} posts/s",
        config.rate,
        config.duration_secs,
        load.posts_sent,
        load.posts_planned,
        load.posts_succeeded,
        load.posts_failed,
        load.posts_per_sec
    );
    println!(
        "deliveries  {} of {} expected, {} missing, {} duplicate; {:.1} deliveries/s",
        counts.delivered,
        counts.expected,
        counts.missing,
        counts.duplicate,
        load.deliveries_per_sec
    );
    println!("other       frames by type: {:?}", counts.other_frames);

    print_latency("latency     delivery", &report.delivery_latency_ms);
    print_latency("            post (201)", &report.post_latency_ms);

    let cpu = &report.cpu;
    let cpu_share = |secs: f64| {
        format!(
            "{secs:.1} s ({:.0}% of one CPU)",
            100.0 * ratio(secs, cpu.wall_secs)
        )
    };
    let server_cpu = cpu
        .server_secs
        .map_or_else(|| "unknown".to_owned(), cpu_share);
    println!(
        "cpu         server {server_cpu}, bench {} over the {:.1} s of load",
        cpu_share(cpu.bench_secs),
        cpu.wall_secs
    );
}

fn print_latency(label: &str, summary: &LatencySummary) {
    println!(
        "{label} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms \
         ({} samples)",
        summary.p50, summary.p90, summary.p99, summary.p999, summary.max, summary.samples
    );
}

fn write_json(report: &Report, path: &std::path::Path) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("failed to create the JSON report {}", path.display()))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), report)
        .with_context(|| format!("failed to write the JSON report {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_body_round_trips() {
        let body = bench_body("ab12cd34", 17, 123_456_789);
        assert_eq!(
            parse_bench_body(&body, "bench ab12cd34 "),
            Some((17, 123_456_789))
        );
        assert_eq!(parse_bench_body(&body, "bench other "), None);
        assert_eq!(parse_bench_body("hello", "bench ab12cd34 "), None);
    }

    #[test]
    fn groups_keep_remainder() {
        let groups = group_members(7, 3);
        assert_eq!(groups, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    }

    #[test]
    fn frame_records_delivery() {
        let tracker = DeliveryTracker::new(Instant::now(), "t1", 4);
        let frame = r#"{"seq":3,"type":"message.created","room_id":"x","data":{"id":"m","body":"bench t1 2 1000","html":"<p>x</p>"}}"#;
        tracker.record_frame(frame, 5_001_000);
        assert_eq!(tracker.per_post[2].load(Ordering::Relaxed), 1);
        assert_eq!(tracker.delivered.load(Ordering::Relaxed), 1);
        assert_eq!(tracker.latency_us.lock().unwrap().count_at(5000), 1);
    }

    #[test]
    fn frame_ignores_other_events() {
        let tracker = DeliveryTracker::new(Instant::now(), "t1", 4);
        tracker.record_frame(r#"{"type":"hello","seq":1,"heartbeat_secs":30}"#, 1);
        tracker.record_frame(r#"{"type":"pong"}"#, 1);
        tracker.record_frame(
            r#"{"seq":2,"type":"member.joined","room_id":"x","data":{"user_id":"u","member":null}}"#,
            1,
        );
        tracker.record_frame(
            r#"{"seq":3,"type":"message.created","room_id":"x","data":{"body":"hi"}}"#,
            1,
        );
        assert_eq!(tracker.delivered.load(Ordering::Relaxed), 0);
        assert_eq!(tracker.foreign.load(Ordering::Relaxed), 1);
        assert_eq!(tracker.invalid_frames.load(Ordering::Relaxed), 0);
        let other_frames = tracker.other_frames.lock().unwrap();
        assert_eq!(other_frames.get("hello"), Some(&1));
        assert_eq!(other_frames.get("member.joined"), Some(&1));
    }

    #[test]
    fn frame_counts_invalid_json() {
        let tracker = DeliveryTracker::new(Instant::now(), "t1", 4);
        tracker.record_frame("not json", 1);
        assert_eq!(tracker.invalid_frames.load(Ordering::Relaxed), 1);
    }
}
