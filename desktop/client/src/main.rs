//! `roomler`: the command-line Roomler client, on the same engine as the desktop app.
//!
//! Exit codes: 0 success, 2 usage error (also: not logged in), 3 the server rejected
//! the request, 4 the server was unreachable, 1 anything else.

use std::io::{IsTerminal, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Parser, Subcommand};
use roomler_client::attachments::Progress;
use roomler_client::cache::{CachedRoom, LocalHit, OutboxItem, OutboxState};
use roomler_client::call::media::{VIDEO_HEIGHT, VIDEO_WIDTH, video_bitrate_kbps};
use roomler_client::call::{
    CallError, CallOptions, CallReport, CallRole, CallSession, MediaSetup, SignalingError,
    TileLayout, TileSize, VideoInput, check_tone_hz, default_tone_hz,
};
use roomler_client::{ClientError, Engine, Profile};
use roomler_media::{PreEncodedConfig, PreEncodedMedia};
use roomler_shared::call::CallFormat;
use roomler_shared::model::{Message, Room, RoomKind};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(version, about = "The Roomler command-line client")]
struct Cli {
    /// Profile folder with the session and the offline cache
    /// (default: $ROOMLER_PROFILE, else ~/.config/roomler/default).
    #[arg(long, global = true)]
    profile: Option<PathBuf>,
    /// Prints machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Logs in; the password is read from standard input.
    Login {
        /// Server URL, e.g. https://chat.example.com.
        #[arg(long)]
        server: String,
        /// Username or email address.
        #[arg(long)]
        user: String,
        /// Read the password from standard input (the only way to give it).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Creates an account and logs in; the password is read from standard input.
    Register {
        /// Server URL, e.g. https://chat.example.com.
        #[arg(long)]
        server: String,
        /// Username of the new account: letters, digits, `-` and `_`.
        #[arg(long)]
        user: String,
        /// Email address of the new account.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (the only way to give it).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Ends the session and forgets the token; the cache stays readable.
    Logout,
    /// Lists your rooms, from the cache, with unread counts.
    Rooms,
    /// Searches the public rooms on the server.
    Directory {
        /// Text to match in room paths; lists every public room when absent.
        query: Option<String>,
    },
    /// Joins a room by its dotted path.
    Join {
        /// The room's dotted path, e.g. `team.frontend`.
        name: String,
        /// Read the room's password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Creates a room.
    Create {
        /// Name of the new room, without dots.
        name: String,
        /// Makes the room private: only invited users, or users with its password, join.
        #[arg(long)]
        private: bool,
        /// Creates a sub-room of this room.
        #[arg(long)]
        parent: Option<String>,
        /// Read a password for the private room from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sends a message; offline, it waits in the outbox for `roomler sync`.
    Send {
        /// The room's dotted path or id.
        room: String,
        /// Message text in Markdown.
        text: String,
        /// Id of the message to reply to, as `roomler history --json` prints it.
        #[arg(long, value_name = "MESSAGE_ID", value_parser = parse_message_id)]
        reply_to: Option<uuid::Uuid>,
        /// Attaches a file (needs the server to be reachable).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Prints a room's history, newest last; works offline from the cache.
    History {
        /// The room's dotted path or id.
        room: String,
        /// Messages to print, 1 to 500.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Prints new messages of a room as they arrive, until interrupted.
    Tail {
        /// The room's dotted path or id.
        room: String,
    },
    /// Searches every cached message; works offline.
    Search {
        /// Words to find; the last one also matches words that start with it.
        query: String,
        /// Results to print at most.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Connects, catches up, sends the outbox, and exits.
    Sync,
    /// Lists pending and failed outbox items, or retries or discards one.
    Outbox {
        /// Puts the failed item with this number back in the queue.
        #[arg(long, value_name = "ITEM", conflicts_with = "discard")]
        retry: Option<i64>,
        /// Deletes the item with this number from the outbox.
        #[arg(long, value_name = "ITEM")]
        discard: Option<i64>,
    },
    /// Joins a room's call, stays, leaves, and prints what arrived from each other
    /// participant.
    Call {
        /// The room's dotted path or id.
        room: String,
        /// Sends a moving test pattern (VP8) and a tone (Opus) instead of a camera
        /// and a microphone. Required, because the CLI captures no devices.
        #[arg(long)]
        synthetic: bool,
        /// Seconds to stay in the call before leaving; Ctrl+C leaves earlier.
        #[arg(long = "for", value_name = "SECONDS", default_value_t = 10,
            value_parser = clap::value_parser!(u64).range(1..=86_400))]
        seconds: u64,
        /// Writes the statistics as JSON to this file on leaving.
        #[arg(long, value_name = "FILE")]
        stats: Option<PathBuf>,
        /// Local address for the ICE sockets; 0.0.0.0 binds every interface.
        #[arg(long, value_name = "ADDRESS", default_value = "0.0.0.0")]
        bind: IpAddr,
        /// Uses TURN relay candidates only.
        #[arg(long)]
        relay_only: bool,
        /// Frequency of the synthetic tone in Hz (default: 300 to 3,000 Hz, picked
        /// by the user id).
        #[arg(long, value_name = "HZ", value_parser = parse_tone_hz)]
        tone_hz: Option<f32>,
        /// Sends a loop encoded once at the start instead of encoding live, as load
        /// bots do.
        #[arg(long)]
        pre_encoded: bool,
        /// Size of the pre-encoded loop's full-size layer, e.g. 640x480 for a
        /// camera's (default: 320x240, the test pattern's). The lower layers are a
        /// half and a quarter of it.
        #[arg(long, value_name = "WIDTHxHEIGHT", requires = "pre_encoded",
            value_parser = parse_video_size)]
        video_size: Option<(u32, u32)>,
        /// Draws the frame counter from the wall clock, so that receivers on the same
        /// machine measure the latency.
        #[arg(long, conflicts_with = "pre_encoded")]
        clock_pattern: bool,
        /// Decodes the video of at most this many participants (the first to
        /// publish); 0 receives nothing at all. Default: everyone. Like the desktop
        /// app's grid, up to 3 receive the full-size layer, up to 8 the half-size
        /// one, and more the lowest.
        #[arg(long, value_name = "COUNT")]
        receive_video: Option<usize>,
        /// Also writes the statistics every this many seconds while in the call.
        #[arg(long, value_name = "SECONDS", requires = "stats",
            value_parser = clap::value_parser!(u64).range(1..=3_600))]
        stats_every: Option<u64>,
        /// The format of a call that this join starts: `meeting` (everyone sends)
        /// or `presentation` (hosts send, the audience receives). A call that is
        /// already going on keeps its format.
        #[arg(long, value_name = "FORMAT", value_parser = parse_call_format)]
        format: Option<CallFormat>,
    },
}

/// Parses `--format`, naming the accepted values when the text is neither.
fn parse_call_format(text: &str) -> Result<CallFormat, String> {
    match text.trim() {
        "meeting" => Ok(CallFormat::Meeting),
        "presentation" => Ok(CallFormat::Presentation),
        _ => Err(format!(
            "{text:?} is not a call format; give meeting or presentation"
        )),
    }
}

/// Parses `--video-size`: an even width and height from 16 to 1920, such as 640x480.
fn parse_video_size(text: &str) -> Result<(u32, u32), String> {
    let invalid = || {
        format!(
            "{text:?} is not a video size; give an even width and height from 16 to 1920, e.g. 640x480"
        )
    };
    let (width, height) = text.trim().split_once('x').ok_or_else(invalid)?;
    let width: u32 = width.parse().map_err(|_| invalid())?;
    let height: u32 = height.parse().map_err(|_| invalid())?;
    let valid = |side: u32| (16..=1920).contains(&side) && side.is_multiple_of(2);
    if valid(width) && valid(height) {
        Ok((width, height))
    } else {
        Err(invalid())
    }
}

/// Parses `--tone-hz`, naming the accepted range when the value is outside it.
fn parse_tone_hz(text: &str) -> Result<f32, String> {
    let tone_hz: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a frequency; give Hz as a number, e.g. 440"))?;
    check_tone_hz(tone_hz)
}

/// Parses `--reply-to`, naming the expected form when the text is not a message id.
fn parse_message_id(text: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| {
        format!(
            "{text:?} is not a message id; expected a UUID such as \
             0190f0a2-7c3e-7b6e-9d41-5b1f3c2a8e10 (see `roomler history ROOM --json`)"
        )
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let profile = Profile::new(cli.profile.clone().unwrap_or_else(Profile::default_dir));
    let output = Output { json: cli.json };
    match run(cli.command, profile, &output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (code, hint) = exit_code(&error);
            if output.json {
                let value = json!({"error": {"kind": kind(&error), "message": error.to_string()}});
                println!("{value}");
            } else {
                eprintln!("roomler: {error}");
                if let Some(hint) = hint {
                    eprintln!("{hint}");
                }
            }
            ExitCode::from(code)
        }
    }
}

fn exit_code(error: &ClientError) -> (u8, Option<&'static str>) {
    match error {
        ClientError::Usage(_) | ClientError::NotLoggedIn => (2, None),
        ClientError::Network(_) => (
            4,
            Some("Check the server URL and your connection; cached commands still work."),
        ),
        ClientError::Rejected { status, .. } if status.is_server_error() => (4, None),
        ClientError::Rejected { .. } => (3, None),
        _ => (1, None),
    }
}

fn kind(error: &ClientError) -> &'static str {
    if matches!(error, ClientError::Cancelled) {
        return "cancelled";
    }
    match exit_code(error).0 {
        2 => "usage",
        3 => "rejected",
        4 => "network",
        _ => "internal",
    }
}

/// Log levels without `ROOMLER_LOG`. The WebRTC crates (targets `rtc` and
/// `webrtc`) warn of passing states in every call, e.g. SRTP before DTLS is done,
/// so only their errors show.
const DEFAULT_LOG: &str = "warn,rtc=error,webrtc=error";

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROOMLER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal shows them, not in a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn read_password() -> Result<String, ClientError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|error| ClientError::Usage(format!("failed to read standard input: {error}")))?;
    let password = text.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        return Err(ClientError::Usage(
            "no password on standard input; pipe it in, e.g. `echo \"$PASSWORD\" | roomler ...`"
                .into(),
        ));
    }
    Ok(password)
}

struct Output {
    json: bool,
}

impl Output {
    fn value(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

async fn run(command: Command, profile: Profile, output: &Output) -> Result<(), ClientError> {
    match command {
        Command::Login { server, user, .. } => {
            let password = read_password()?;
            let engine = Engine::login(profile, &server, &user, &password).await?;
            let settings = engine.settings();
            output.value(
                json!({"user_id": settings.user_id, "username": settings.username}),
                || {
                    format!(
                        "logged in to {} as {}",
                        settings.server_url, settings.username
                    )
                },
            );
        }
        Command::Register {
            server,
            user,
            email,
            ..
        } => {
            let password = read_password()?;
            let engine = Engine::register(profile, &server, &user, &email, &password).await?;
            let settings = engine.settings();
            output.value(
                json!({"user_id": settings.user_id, "username": settings.username}),
                || {
                    format!(
                        "registered {} on {}",
                        settings.username, settings.server_url
                    )
                },
            );
        }
        Command::Logout => {
            Engine::open(profile)?.logout().await?;
            output.value(json!({"logged_out": true}), || "logged out".to_string());
        }
        Command::Rooms => {
            let engine = Engine::open(profile)?;
            let rooms = engine.rooms()?;
            output.value(serde_json::to_value(&rooms)?, || format_rooms(&rooms));
        }
        Command::Directory { query } => {
            let engine = Engine::open(profile)?;
            let rooms = engine
                .directory(query.as_deref().unwrap_or_default())
                .await?;
            output.value(serde_json::to_value(&rooms)?, || format_directory(&rooms));
        }
        Command::Join {
            name,
            password_stdin,
        } => {
            let engine = Engine::open(profile)?;
            let password = password_stdin.then(read_password).transpose()?;
            let room = engine.join(&name, password).await?;
            output.value(serde_json::to_value(&room)?, || {
                format!("joined {}", room.path)
            });
        }
        Command::Create {
            name,
            private,
            parent,
            password_stdin,
        } => {
            let engine = Engine::open(profile)?;
            let password = password_stdin.then(read_password).transpose()?;
            let kind = if private {
                RoomKind::Private
            } else {
                RoomKind::Public
            };
            let room = engine
                .create_room(&name, kind, password, parent.as_deref())
                .await?;
            output.value(serde_json::to_value(&room)?, || {
                format!("created {}", room.path)
            });
        }
        Command::Send {
            room,
            text,
            reply_to,
            file,
        } => {
            let engine = Engine::open(profile)?;
            let room = engine.resolve_room(&room).await?;
            let mut attachments = Vec::new();
            if let Some(path) = file {
                attachments.push(upload(&engine, room.id, &path).await?);
            }
            let item = engine.queue_message(room.id, &text, reply_to, attachments)?;
            engine.flush_outbox().await?;
            report_send(&engine, &item, output)?;
        }
        Command::History { room, limit } => {
            let engine = Engine::open(profile)?;
            let room = engine.resolve_room(&room).await?;
            let mut messages = engine.history(room.id, limit).await?;
            // Printing the newest message counts as reading the room.
            if let Some(newest) = messages.first() {
                engine.mark_read(room.id, newest.seq)?;
            }
            messages.reverse();
            let pending: Vec<OutboxItem> = engine
                .outbox()?
                .into_iter()
                .filter(|item| item.room_id == room.id)
                .collect();
            let value = json!({"messages": messages, "outbox": pending});
            output.value(value, || format_history(&messages, &pending));
        }
        Command::Tail { room } => {
            let engine = Engine::open(profile)?;
            let room = engine.resolve_room(&room).await?;
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                stop.cancel();
            });
            let json = output.json;
            // Say on stderr when the connection drops or returns, so a silent tail is
            // not mistaken for a quiet room.
            let mut states = engine.connection_state();
            tokio::spawn(async move {
                while states.changed().await.is_ok() {
                    let state = states.borrow().clone();
                    match state {
                        roomler_client::ConnectionState::Online => eprintln!("roomler: connected"),
                        roomler_client::ConnectionState::Reconnecting {
                            attempt,
                            retry_in_ms,
                        } => {
                            eprintln!(
                                "roomler: disconnected; retry {attempt} in {:.1} s",
                                retry_in_ms as f64 / 1000.0
                            );
                        }
                        _ => {}
                    }
                }
            });
            engine
                .run_live(shutdown, |event| {
                    if event.kind != roomler_shared::ws::EventKind::MessageCreated
                        || event.room_id != Some(room.id)
                    {
                        return;
                    }
                    let Ok(message) = serde_json::from_value::<Message>(event.data.clone()) else {
                        return;
                    };
                    if json {
                        println!("{}", serde_json::to_string(&message).unwrap_or_default());
                    } else {
                        println!("{}", format_message(&message));
                    }
                })
                .await;
        }
        Command::Search { query, limit } => {
            let engine = Engine::open(profile)?;
            let hits = engine.search(&query, limit)?;
            output.value(serde_json::to_value(&hits)?, || format_hits(&hits));
        }
        Command::Sync => {
            let engine = Engine::open(profile)?;
            let report = engine.sync_once().await?;
            if report.outbox.failed > 0 && !output.json {
                eprintln!(
                    "roomler: the server rejected {} queued item(s); `roomler outbox` shows why",
                    report.outbox.failed
                );
            }
            output.value(serde_json::to_value(&report)?, || {
                format!(
                    "synced: {} events applied{}, {} sent, {} failed, {} pending",
                    report.events_applied,
                    if report.resynced {
                        " (full refresh)"
                    } else {
                        ""
                    },
                    report.outbox.sent,
                    report.outbox.failed,
                    report.outbox.pending
                )
            });
        }
        Command::Outbox { retry, discard } => {
            let engine = Engine::open(profile)?;
            if let Some(id) = retry
                && !engine.retry(id)?
            {
                return Err(ClientError::Usage(format!(
                    "no outbox item has the id {id}"
                )));
            }
            if let Some(id) = discard
                && !engine.discard(id)?
            {
                return Err(ClientError::Usage(format!(
                    "no outbox item has the id {id}"
                )));
            }
            let items = engine.outbox()?;
            let rooms = engine.rooms()?;
            let room_path = |id: uuid::Uuid| {
                rooms
                    .iter()
                    .find(|cached| cached.room.id == id)
                    .map_or_else(|| id.to_string(), |cached| cached.room.path.clone())
            };
            output.value(serde_json::to_value(&items)?, || {
                format_outbox(&items, room_path)
            });
        }
        Command::Call {
            room,
            synthetic,
            seconds,
            stats,
            bind,
            relay_only,
            tone_hz,
            pre_encoded,
            video_size,
            clock_pattern,
            receive_video,
            stats_every,
            format,
        } => {
            if !synthetic {
                return Err(ClientError::Usage(
                    "roomler call captures no camera or microphone yet; add --synthetic to \
                     send a test pattern and a tone"
                        .into(),
                ));
            }
            // A statistics file that cannot be written would lose the whole stay.
            if let Some(path) = &stats {
                check_stats_folder(path)?;
            }
            let engine = Engine::open(profile)?;
            let room = engine.resolve_room(&room).await?;
            let options = CallOptions {
                bind,
                relay_only,
                tone_hz: tone_hz.unwrap_or_else(|| default_tone_hz(engine.user_id())),
                format,
            };
            let stay = Stay {
                seconds,
                pre_encoded,
                video_size,
                clock_pattern,
                receive_video,
                stats_every: stats.clone().zip(stats_every),
            };
            let report = stay_in_call(&engine, room.id, options, stay).await?;
            if let Some(path) = stats {
                write_stats(&path, &report)?;
            }
            if let Some(requested) = format
                && report.format.is_some_and(|format| format != requested)
            {
                eprintln!(
                    "note: the call was going on already, so --format {} did not apply; it \
                     sets the format of a call that this join starts",
                    label(&requested)
                );
            }
            output.value(serde_json::to_value(&report)?, || {
                format_call_report(&report)
            });
            let publishes = report.role.is_some_and(|role| role != CallRole::Audience);
            if publishes && !report.media_published {
                return Err(ClientError::Other(anyhow::anyhow!(
                    "your media never reached the media server: the publishing \
                     connection's ICE did not connect in {:.0} s. Check that this computer \
                     reaches the server's Janus directly or through its TURN server, and \
                     that --bind, if given, names an address that reaches them",
                    report.seconds
                )));
            }
        }
    }
    Ok(())
}

/// The options of `roomler call` for its stay in the call.
struct Stay {
    seconds: u64,
    pre_encoded: bool,
    /// The pre-encoded loop's size; the test pattern's when `None`.
    video_size: Option<(u32, u32)>,
    clock_pattern: bool,
    receive_video: Option<usize>,
    /// The statistics file and how often to rewrite it.
    stats_every: Option<(PathBuf, u64)>,
}

/// Joins the call of `room_id`, stays `stay.seconds` or until Ctrl+C, and leaves.
async fn stay_in_call(
    engine: &Engine,
    room_id: uuid::Uuid,
    options: CallOptions,
    stay: Stay,
) -> Result<CallReport, ClientError> {
    let token = engine.api().token().ok_or(ClientError::NotLoggedIn)?;
    let tone_hz = options.tone_hz;
    let ws_url = engine.api().ws_url(None);
    let mut setup = MediaSetup::synthetic(tone_hz);
    if stay.clock_pattern {
        setup.video = VideoInput::ClockPattern;
    }
    if stay.pre_encoded {
        let (width, height) = stay.video_size.unwrap_or((VIDEO_WIDTH, VIDEO_HEIGHT));
        let config = PreEncodedConfig {
            seconds: 3,
            width,
            height,
            total_bitrate_kbps: video_bitrate_kbps(width, height),
            tone_hz,
            ..PreEncodedConfig::default()
        };
        let media = tokio::task::spawn_blocking(move || PreEncodedMedia::record(&config))
            .await
            .map_err(|error| ClientError::Other(error.into()))?
            .map_err(|error| ClientError::Other(error.into()))?;
        setup.pre_encoded = Some(media);
    }
    setup.subscribe = stay.receive_video != Some(0);
    let started = std::time::Instant::now();
    let session = CallSession::join_with(&ws_url, token, room_id, options, setup)
        .await
        .map_err(call_error)?;
    let joined = std::time::Instant::now();
    let join_ms = (joined - started).as_secs_f64() * 1000.0;
    let report = |session: &CallSession| CallReport {
        room_id,
        call_id: session.call_id(),
        user_id: engine.user_id(),
        feed_id: session.feed_id(),
        tone_hz,
        seconds: joined.elapsed().as_secs_f64(),
        join_ms,
        remotes: session.stats(),
        sent: session.sent_stats(),
        format: Some(session.format()),
        role: Some(session.role()),
        media_published: session.media_published(),
    };
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(stay.seconds));
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut written = std::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {}
        }
        if stay.receive_video != Some(0) {
            // A stable choice, so tiles do not change hands: the lowest feed ids.
            let mut feeds: Vec<u64> = session.stats().iter().map(|stats| stats.feed_id).collect();
            feeds.sort_unstable();
            feeds.truncate(stay.receive_video.unwrap_or(usize::MAX));
            // The tiles share a grid with the self view, as in the desktop app, so
            // that the simulcast layers received are the ones the app would ask for.
            let size = TileSize::in_grid(feeds.len() + 1);
            session.set_tile_layout(TileLayout::shown(
                feeds.into_iter().map(|feed| (feed, size)),
            ));
        }
        if let Some((path, every)) = &stay.stats_every
            && written.elapsed().as_secs() >= *every
        {
            write_stats(path, &report(&session))?;
            written = std::time::Instant::now();
        }
    }
    let report = report(&session);
    session.leave().await.map_err(call_error)?;
    Ok(report)
}

/// Maps a call failure to the CLI's error kinds, and so to its exit codes.
fn call_error(error: CallError) -> ClientError {
    match error {
        CallError::Signaling(SignalingError::Rejected {
            action,
            code,
            message,
        }) => ClientError::Rejected {
            // Call requests travel over the WebSocket and carry no HTTP status; 400
            // stands for every rejection, so the exit code is the rejection's 3.
            status: reqwest::StatusCode::BAD_REQUEST,
            code: serde_json::to_value(code)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{code:?}")),
            message: format!("{action}: {message}"),
        },
        CallError::Signaling(
            error @ (SignalingError::Connect(_)
            | SignalingError::Closed
            | SignalingError::Timeout { .. }),
        ) => ClientError::Network(error.to_string()),
        error => ClientError::Other(error.into()),
    }
}

fn write_stats(path: &Path, report: &CallReport) -> Result<(), ClientError> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text).map_err(|error| {
        ClientError::Usage(format!(
            "failed to write the call statistics to {}: {error}; check that its folder \
             exists and is writable",
            path.display()
        ))
    })
}

/// Checks that the folder of the statistics file `path` exists, before the call.
fn check_stats_folder(path: &Path) -> Result<(), ClientError> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if folder.is_dir() {
        return Ok(());
    }
    Err(ClientError::Usage(format!(
        "the folder {} of the statistics file {} does not exist; create it or pass \
         another --stats path",
        folder.display(),
        path.display()
    )))
}

/// Returns the name that the call protocol gives `value`, e.g. `presentation`.
fn label(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn format_call_report(report: &CallReport) -> String {
    let sending = if report.role == Some(CallRole::Audience) {
        "in the audience, sending nothing".to_string()
    } else {
        format!("sending a {} Hz tone", report.tone_hz)
    };
    let mut first = format!("left the call after {:.1} s, {sending}", report.seconds);
    if let (Some(format), Some(role)) = (report.format, report.role) {
        first.push_str(&format!(" ({} as {})", label(&format), label(&role)));
    }
    let mut lines = vec![first];
    for remote in &report.remotes {
        let participant = remote
            .user_id
            .map_or_else(|| format!("feed {}", remote.feed_id), |id| id.to_string());
        let counters = match (remote.frame_counter_min, remote.frame_counter_max) {
            (Some(min), Some(max)) => format!("frame counter {min}..{max}"),
            _ => "no frame counter".to_string(),
        };
        let tone = remote
            .tone_hz
            .map_or_else(|| "no tone".to_string(), |hz| format!("tone {hz:.1} Hz"));
        lines.push(format!(
            "{participant}: {} of {} video frames decoded, {counters}; {} audio packets, {tone}",
            remote.video_frames_decoded,
            remote.video_frames_received,
            remote.audio_packets_received,
        ));
    }
    if report.remotes.is_empty() {
        lines.push("no other participant's media arrived".to_string());
    }
    lines.join("\n")
}

/// Uploads a file, redrawing a percentage line on standard error when it is a terminal.
async fn upload(
    engine: &Engine,
    room_id: uuid::Uuid,
    path: &std::path::Path,
) -> Result<uuid::Uuid, ClientError> {
    let terminal = std::io::stderr().is_terminal();
    let name = path.display().to_string();
    let drawn_percent = Arc::new(AtomicU64::new(NOTHING_DRAWN));
    let drawn_in_callback = drawn_percent.clone();
    let progress = move |progress: Progress| {
        if !terminal {
            return;
        }
        let percent = (progress.bytes * 100)
            .checked_div(progress.total)
            .unwrap_or(100);
        // One line, redrawn only when the percentage changes.
        if drawn_in_callback.swap(percent, Ordering::Relaxed) != percent {
            eprint!("\ruploading {name}: {percent}%");
        }
    };
    let result = engine
        .upload_file(room_id, path, progress, CancellationToken::new())
        .await;
    if drawn_percent.load(Ordering::Relaxed) != NOTHING_DRAWN {
        eprintln!();
    }
    Ok(result?.id)
}

/// Marks that the upload progress line has not been drawn yet.
const NOTHING_DRAWN: u64 = u64::MAX;

/// Prints where a queued message ended up; a rejection becomes the command's error.
fn report_send(engine: &Engine, item: &OutboxItem, output: &Output) -> Result<(), ClientError> {
    let current = engine
        .outbox()?
        .into_iter()
        .find(|queued| queued.id == item.id);
    match current {
        None => {
            output.value(
                json!({"state": "sent", "client_id": item.client_id}),
                || "sent".into(),
            );
            Ok(())
        }
        Some(queued) if queued.state == OutboxState::Failed => Err(ClientError::Rejected {
            status: reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            code: queued.error_code.unwrap_or_default(),
            message: format!(
                "{} (kept as failed outbox item {}; `roomler outbox --retry {}` or --discard)",
                queued.error_message.unwrap_or_default(),
                queued.id,
                queued.id
            ),
        }),
        Some(queued) => {
            output.value(json!({"state": "pending", "outbox_id": queued.id, "client_id": queued.client_id}), || {
                format!("queued as outbox item {}: the server is unreachable; `roomler sync` sends it", queued.id)
            });
            Ok(())
        }
    }
}

fn format_rooms(rooms: &[CachedRoom]) -> String {
    if rooms.is_empty() {
        return "no rooms yet; `roomler directory` lists public ones".to_string();
    }
    rooms
        .iter()
        .map(|cached| {
            let unread = if cached.unread > 0 {
                format!("  ({} unread)", cached.unread)
            } else {
                String::new()
            };
            format!(
                "{:<8} {}{unread}",
                cached.room.kind.as_str(),
                cached.room.path
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_directory(rooms: &[Room]) -> String {
    if rooms.is_empty() {
        return "no public rooms match".to_string();
    }
    rooms
        .iter()
        .map(|room| {
            format!(
                "{:<32} {:>4} members  {}",
                room.path, room.member_count, room.topic
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_message(message: &Message) -> String {
    let body = if message.deleted {
        "(deleted)"
    } else {
        message.body.as_str()
    };
    let time = message
        .created_at
        .format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]"
        ))
        .unwrap_or_default();
    format!("[{time}] {}: {body}", message.author.username)
}

fn format_history(messages: &[Message], pending: &[OutboxItem]) -> String {
    let mut lines: Vec<String> = messages.iter().map(format_message).collect();
    for item in pending {
        let state = match item.state {
            OutboxState::Pending => "pending".to_string(),
            OutboxState::Failed => {
                format!("failed: {}", item.error_message.clone().unwrap_or_default())
            }
        };
        lines.push(format!(
            "[{state}] {}",
            item.body.clone().unwrap_or_default()
        ));
    }
    if lines.is_empty() {
        "no messages".to_string()
    } else {
        lines.join("\n")
    }
}

fn format_hits(hits: &[LocalHit]) -> String {
    if hits.is_empty() {
        return "no cached message matches".to_string();
    }
    hits.iter()
        .map(|hit| {
            let snippet = hit.snippet.replace("<mark>", "*").replace("</mark>", "*");
            format!(
                "{} {}: {snippet}",
                hit.room_path, hit.message.author.username
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_outbox(items: &[OutboxItem], room_path: impl Fn(uuid::Uuid) -> String) -> String {
    if items.is_empty() {
        return "the outbox is empty".to_string();
    }
    items
        .iter()
        .map(|item| {
            let state = match item.state {
                OutboxState::Pending => "pending".to_string(),
                OutboxState::Failed => format!(
                    "failed ({}): {}",
                    item.error_code.clone().unwrap_or_default(),
                    item.error_message.clone().unwrap_or_default()
                ),
            };
            let text = item
                .body
                .as_deref()
                .or(item.emoji.as_deref())
                .unwrap_or_default();
            let preview: String = text.chars().take(60).collect();
            let room = room_path(item.room_id);
            format!(
                "{:>4} {:?} in {room}: {state}  {preview:?}",
                item.id, item.kind
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_folder_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_stats_folder(&dir.path().join("stats.json")).is_ok());
        assert!(check_stats_folder(Path::new("stats.json")).is_ok());

        let missing = dir.path().join("missing").join("stats.json");
        let Err(ClientError::Usage(message)) = check_stats_folder(&missing) else {
            panic!("a missing folder passed the check");
        };
        assert!(message.contains("missing"), "{message}");
    }

    #[test]
    fn call_report_names_audience_role() {
        let report = CallReport {
            room_id: uuid::Uuid::nil(),
            call_id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::nil(),
            feed_id: 1,
            tone_hz: 440.0,
            seconds: 3.0,
            join_ms: 50.0,
            remotes: Vec::new(),
            sent: Default::default(),
            format: Some(roomler_client::call::CallFormat::Presentation),
            role: Some(CallRole::Audience),
            media_published: false,
        };
        let text = format_call_report(&report);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "left the call after 3.0 s, in the audience, sending nothing (presentation as audience)"
        );
    }

    #[test]
    fn video_size_parses_even_sizes() {
        assert_eq!(parse_video_size("640x480"), Ok((640, 480)));
        assert_eq!(parse_video_size(" 16x1920 "), Ok((16, 1920)));
    }

    #[test]
    fn video_size_rejects_invalid_text() {
        for text in ["640", "641x480", "640x0", "4000x480", "640x480x2", "wide"] {
            let error = parse_video_size(text).unwrap_err();
            assert!(error.contains("e.g. 640x480"), "{text}: {error}");
        }
    }
}
