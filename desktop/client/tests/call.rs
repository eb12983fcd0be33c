//! Calls between headless clients through a real Janus, which the in-process
//! server starts: every client decodes every other's video and audio (the test
//! pattern's frame counter advances, and each sender's own tone frequency is
//! detected), mute stops the audio others receive, and `roomler call` writes the
//! same statistics to a file.
//!
//! Janus's ICE gathers no candidates on a loopback interface, so each test re-runs
//! itself inside a fresh network namespace (`unshare -n`) with `lo` and a veth pair
//! whose end `v0` carries 127.0.0.2 (Janus) and 127.0.0.3 (the clients). The
//! namespace goes away with the last process in it. Without root or the `janus`
//! program the tests print why they are skipped and pass.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use roomler_client::call::{
    CallOptions, CallReport, CallSession, MediaOutput, MediaSetup, RemoteStats, Tile, VideoInput,
};
use roomler_client::{ConnectionState, Engine, EngineEvent, Profile};
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use roomler_shared::call::CallEvent;
use serde_json::{Value, json};
use uuid::Uuid;

/// Set in the re-run inside the namespace.
const INSIDE: &str = "ROOMLER_TEST_IN_NETNS";
const PASSWORD: &str = "correct horse battery";
/// How long every client may take to receive every other's media.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);
/// The tone of client `index`, far enough apart that a mix-up cannot pass.
const TONES_HZ: [f32; 3] = [440.0, 660.0, 990.0];
/// How far a detected tone may be from the one sent, in Hz. The detector resolves
/// 0.25 Hz, and Opus keeps the frequency of a clean tone.
const TONE_TOLERANCE_HZ: f32 = 3.0;
/// Frames the decoded counter must advance by: a third of a second of video.
const COUNTER_ADVANCE: u32 = 10;

/// Runs the test `name` inside a new network namespace, or returns `false` when
/// this is the run inside, so the caller does the work.
fn run_inside_namespace(name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        set_up_namespace();
        return false;
    }
    if let Some(reason) = missing_prerequisite() {
        println!("skipped {name}: {reason}");
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("failed to run unshare");
    assert!(
        status.success(),
        "{name} failed inside its network namespace"
    );
    true
}

fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("network namespaces need root".into());
    }
    for program in ["janus", "unshare", "ip"] {
        if roomler_server::calls::supervisor::find_binary(program).is_none() {
            return Some(format!("the {program} program is not installed"));
        }
    }
    None
}

fn set_up_namespace() {
    let commands: [&[&str]; 6] = [
        &["link", "set", "lo", "up"],
        &["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        &["addr", "add", "127.0.0.2/32", "dev", "v0"],
        &["addr", "add", "127.0.0.3/32", "dev", "v0"],
        &["link", "set", "v0", "up"],
        &["link", "set", "v1", "up"],
    ];
    for args in commands {
        let status = Command::new("ip").args(args).status().unwrap();
        assert!(status.success(), "ip {} failed", args.join(" "));
    }
}

struct Fixture {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

impl Fixture {
    async fn start() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "roomler_server=warn,roomler_client=warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            janus_ice_enforce_list: Some("127.0.0.2".into()),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state.clone()).await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run());
        Fixture {
            base: format!("http://{addr}"),
            state,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Value {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Registers `count` users in one public room; returns the room and the
    /// users' ids and tokens.
    async fn room(&self, count: usize) -> (Uuid, Vec<(Uuid, String)>) {
        let mut users = Vec::new();
        for index in 0..count {
            let body = json!({"username": format!("caller{index}"),
                "email": format!("caller{index}@example.com"), "password": PASSWORD});
            let value = self.post(None, "/api/auth/register", body).await;
            let id = value["user"]["id"].as_str().unwrap().parse().unwrap();
            users.push((id, value["token"].as_str().unwrap().to_string()));
        }
        let room = self
            .post(
                Some(&users[0].1),
                "/api/rooms",
                json!({"name": "call", "kind": "public"}),
            )
            .await;
        for (_, token) in &users[1..] {
            self.post(Some(token), "/api/rooms/join", json!({"name": "call"}))
                .await;
        }
        (room["id"].as_str().unwrap().parse().unwrap(), users)
    }

    fn ws_url(&self) -> String {
        format!("{}/api/ws", self.base.replace("http://", "ws://"))
    }
}

fn options(index: usize) -> CallOptions {
    CallOptions {
        bind: "127.0.0.3".parse().unwrap(),
        relay_only: false,
        tone_hz: TONES_HZ[index],
    }
}

fn tone_matches(remote: &RemoteStats, expected: f32) -> bool {
    remote
        .tone_hz
        .is_some_and(|tone| (tone - expected).abs() <= TONE_TOLERANCE_HZ)
}

fn counter_advanced(remote: &RemoteStats) -> bool {
    match (remote.frame_counter_min, remote.frame_counter_max) {
        (Some(min), Some(max)) => max > min + COUNTER_ADVANCE,
        _ => false,
    }
}

fn stats_of(stats: &[RemoteStats], user_id: Uuid) -> RemoteStats {
    stats
        .iter()
        .find(|stats| stats.user_id == Some(user_id))
        .cloned()
        .unwrap_or_else(|| panic!("no statistics for {user_id} in {stats:?}"))
}

/// Checks whether every client decodes an advancing counter and the right tone
/// from every other.
fn all_flowing(sessions: &[CallSession], users: &[(Uuid, String)]) -> bool {
    sessions.iter().enumerate().all(|(index, session)| {
        let stats = session.stats();
        stats.len() == sessions.len() - 1
            && users.iter().enumerate().all(|(other, (user_id, _))| {
                other == index
                    || stats.iter().any(|remote| {
                        remote.user_id == Some(*user_id)
                            && counter_advanced(remote)
                            && tone_matches(remote, TONES_HZ[other])
                    })
            })
    })
}

/// Asserts what client `index` received from client `other`, one cause per check.
fn check_remote(index: usize, other: usize, remote: &RemoteStats) {
    assert!(
        remote.audio_packets_received > 0,
        "client {index} got no audio from {other}: {remote:?}"
    );
    assert!(
        remote.video_frames_decoded > 0,
        "client {index} decoded no video of {other}: {remote:?}"
    );
    assert!(
        counter_advanced(remote),
        "client {index}: the frame counter of {other} did not advance by {COUNTER_ADVANCE}: \
         {remote:?}"
    );
    assert!(
        tone_matches(remote, TONES_HZ[other]),
        "client {index}: expected the {} Hz tone of {other}, detected {:?}",
        TONES_HZ[other],
        remote.tone_hz
    );
}

/// Joins `count` clients to one call and checks that each decodes every other's
/// video and audio: the frame counter advances and the sender's tone is detected.
async fn everyone_receives_everyone(count: usize) {
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(count).await;
    let mut sessions = Vec::new();
    for (index, (_, token)) in users.iter().enumerate() {
        let session = CallSession::join(&fixture.ws_url(), token, room_id, options(index))
            .await
            .unwrap();
        sessions.push(session);
    }
    // ICE and DTLS take a moment per connection on a loaded machine.
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline && !all_flowing(&sessions, &users) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (index, session) in sessions.iter().enumerate() {
        let stats = session.stats();
        assert_eq!(stats.len(), count - 1, "client {index}: {stats:?}");
        for (other, (user_id, _)) in users.iter().enumerate() {
            if other != index {
                check_remote(index, other, &stats_of(&stats, *user_id));
            }
        }
    }
    for session in sessions {
        session.leave().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_receive_each_other() {
    if run_inside_namespace("two_clients_receive_each_other") {
        return;
    }
    everyone_receives_everyone(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_receive_each_other() {
    if run_inside_namespace("three_clients_receive_each_other") {
        return;
    }
    everyone_receives_everyone(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_stops_audio_others_receive() {
    if run_inside_namespace("mute_stops_audio_others_receive") {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let alice = CallSession::join(&fixture.ws_url(), &users[0].1, room_id, options(0))
        .await
        .unwrap();
    let bob = CallSession::join(&fixture.ws_url(), &users[1].1, room_id, options(1))
        .await
        .unwrap();
    let sessions = [alice, bob];
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline && !all_flowing(&sessions, &users) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let [alice, bob] = sessions;
    let before = stats_of(&bob.stats(), users[0].0);
    assert!(before.audio_packets_received > 0, "{before:?}");

    alice.set_muted(true).await.unwrap();
    // Packets already in flight when Janus stops relaying still arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let muted = stats_of(&bob.stats(), users[0].0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = stats_of(&bob.stats(), users[0].0);
    assert_eq!(
        later.audio_packets_received, muted.audio_packets_received,
        "audio kept arriving while muted"
    );
    assert!(
        later.video_frames_decoded > muted.video_frames_decoded,
        "video stopped too: {later:?}"
    );

    alice.set_muted(false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unmuted = stats_of(&bob.stats(), users[0].0);
    assert!(
        unmuted.audio_packets_received > later.audio_packets_received,
        "audio did not come back after unmute"
    );
    alice.leave().await.unwrap();
    bob.leave().await.unwrap();
}

/// Runs the `roomler` binary with `args` in the profile folder `profile`.
fn roomler(profile: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roomler"));
    command.arg("--profile").arg(profile).args(args);
    command.env("ROOMLER_TOKEN_STORE", "file");
    command
}

/// Logs the CLI in as `caller{index}` in the profile folder `profile`.
async fn log_in_cli(fixture: &Fixture, profile: &std::path::Path, index: usize) {
    let mut login = roomler(
        profile,
        &[
            "login",
            "--server",
            &fixture.base,
            "--user",
            &format!("caller{index}"),
        ],
    )
    .arg("--password-stdin")
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    writeln!(login.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let status = tokio::task::spawn_blocking(move || login.wait())
        .await
        .unwrap();
    assert!(status.unwrap().success(), "login of caller{index} failed");
}

/// Waits for `child` and reads the statistics it wrote to `stats`.
async fn call_report(mut child: std::process::Child, stats: &std::path::Path) -> CallReport {
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap();
    assert!(status.unwrap().success(), "roomler call failed");
    let text = std::fs::read_to_string(stats).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A load bot sends its pre-encoded loop and receives nothing; the other
/// participant decodes the loop's pictures and tone and rewrites its statistics
/// while in the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_bot_sends_without_receiving() {
    if run_inside_namespace("load_bot_sends_without_receiving") {
        return;
    }
    let fixture = Fixture::start().await;
    let (_, users) = fixture.room(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let roles: [&[&str]; 2] = [
        &["--pre-encoded", "--receive-video", "0"],
        &["--receive-video", "1", "--stats-every", "1"],
    ];
    for (index, flags) in roles.iter().enumerate() {
        let profile = dir.path().join(format!("profile{index}"));
        log_in_cli(&fixture, &profile, index).await;
        let stats = dir.path().join(format!("stats{index}.json"));
        let child = roomler(
            &profile,
            &[
                "call",
                "call",
                "--synthetic",
                "--for",
                "8",
                "--bind",
                "127.0.0.3",
            ],
        )
        .args(["--tone-hz", &TONES_HZ[index].to_string()])
        .arg("--stats")
        .arg(&stats)
        .args(*flags)
        .spawn()
        .unwrap();
        children.push((child, stats));
    }
    // The receiver's statistics exist before it leaves.
    let receiver_stats = children[1].1.clone();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        receiver_stats.exists(),
        "--stats-every wrote nothing while in the call"
    );

    let mut reports = Vec::new();
    for (child, stats) in children {
        reports.push(call_report(child, &stats).await);
    }
    assert_eq!(reports[0].remotes, Vec::new(), "the bot received media");
    assert_eq!(reports[1].remotes.len(), 1, "{:?}", reports[1]);
    check_remote(1, 0, &stats_of(&reports[1].remotes, users[0].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_command_writes_stats() {
    if run_inside_namespace("call_command_writes_stats") {
        return;
    }
    let fixture = Fixture::start().await;
    let (_, users) = fixture.room(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for (index, tone) in TONES_HZ[..users.len()].iter().enumerate() {
        let profile = dir.path().join(format!("profile{index}"));
        log_in_cli(&fixture, &profile, index).await;

        let stats = dir.path().join(format!("stats{index}.json"));
        let child = roomler(
            &profile,
            &[
                "call",
                "call",
                "--synthetic",
                "--for",
                "8",
                "--bind",
                "127.0.0.3",
            ],
        )
        .args(["--tone-hz", &tone.to_string()])
        .arg("--stats")
        .arg(&stats)
        .spawn()
        .unwrap();
        children.push((child, stats));
    }

    let mut reports = Vec::new();
    for (mut child, stats) in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap();
        assert!(status.unwrap().success(), "roomler call failed");
        let text = std::fs::read_to_string(&stats).unwrap();
        let report: CallReport = serde_json::from_str(&text).unwrap();
        reports.push(report);
    }
    for (index, report) in reports.iter().enumerate() {
        assert_eq!(report.user_id, users[index].0);
        assert!(report.join_ms > 0.0, "client {index}: {report:?}");
        assert_eq!(report.tone_hz, TONES_HZ[index]);
        assert_eq!(report.remotes.len(), 1, "client {index}: {report:?}");
        let other = 1 - index;
        check_remote(index, other, &stats_of(&report.remotes, users[other].0));
    }
}

/// Counts what a [`MediaOutput`] received per tile, as the desktop app's picture
/// board would show it.
#[derive(Default)]
struct Recorder {
    pictures: std::sync::Mutex<std::collections::HashMap<Tile, u64>>,
    levels: std::sync::Mutex<std::collections::HashMap<Tile, f32>>,
}

impl MediaOutput for Recorder {
    fn picture(&self, tile: Tile, picture: std::sync::Arc<roomler_media::VideoFrame>) {
        assert!(picture.width > 0);
        assert!(picture.height > 0);
        *self.pictures.lock().unwrap().entry(tile).or_default() += 1;
    }

    fn level(&self, tile: Tile, level: roomler_media::AudioLevel) {
        self.levels.lock().unwrap().insert(tile, level.dbov());
    }
}

impl Recorder {
    fn pictures(&self, tile: Tile) -> u64 {
        self.pictures
            .lock()
            .unwrap()
            .get(&tile)
            .copied()
            .unwrap_or(0)
    }

    fn level(&self, tile: Tile) -> Option<f32> {
        self.levels.lock().unwrap().get(&tile).copied()
    }
}

/// Waits up to [`MEDIA_TIMEOUT`] for `done`.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks whether the pictures of `tile` stop for a second and a half, after half a
/// second for those in flight.
async fn pictures_stop(recorder: &Recorder, tile: Tile) -> bool {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = recorder.pictures(tile);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    recorder.pictures(tile) == before
}

/// What the desktop call view builds on: pictures and levels of the self view and
/// of each remote feed, no decoding of hidden feeds, camera off and on, and the
/// engine's room call list following the call events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_view_gets_pictures_levels_and_events() {
    if run_inside_namespace("call_view_gets_pictures_levels_and_events") {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let profile = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(
        Engine::login(
            Profile::new(profile.path()),
            &fixture.base,
            "caller0",
            PASSWORD,
        )
        .await
        .unwrap(),
    );
    let mut events = engine.subscribe();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let live = tokio::spawn({
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        async move { engine.run_live(shutdown, |_| {}).await }
    });
    let mut online = engine.connection_state();
    tokio::time::timeout(
        MEDIA_TIMEOUT,
        online.wait_for(|state| *state == ConnectionState::Online),
    )
    .await
    .unwrap()
    .unwrap();

    let recorder = std::sync::Arc::new(Recorder::default());
    let setup = MediaSetup {
        output: Some(recorder.clone() as std::sync::Arc<dyn MediaOutput>),
        ..MediaSetup::synthetic(TONES_HZ[0])
    };
    let alice = CallSession::join_with(&fixture.ws_url(), &users[0].1, room_id, options(0), setup)
        .await
        .unwrap();
    let bob = CallSession::join(&fixture.ws_url(), &users[1].1, room_id, options(1))
        .await
        .unwrap();
    let bob_tile = Tile::Remote {
        feed_id: bob.feed_id,
    };
    assert_eq!(
        alice.joined_with,
        Vec::new(),
        "nobody was in the call before"
    );
    assert_eq!(bob.joined_with.len(), 1);
    assert_eq!(bob.joined_with[0].user_id, users[0].0);

    wait_until(
        "the self view and Bob's tile have pictures and levels",
        || {
            recorder.pictures(Tile::Local) > 10
                && recorder.pictures(bob_tile) > 10
                && recorder.level(Tile::Local).is_some()
                && recorder.level(bob_tile).is_some()
        },
    )
    .await;
    // The tone plays at a fixed amplitude, far above silence.
    let level = recorder.level(bob_tile).unwrap();
    assert!(level > -40.0, "Bob's tone measured {level} dBov");

    // The engine saw the call start and both join, and counts them.
    let mut joined = 0;
    wait_until("the engine counts two participants", || {
        while let Ok(event) = events.try_recv() {
            if let EngineEvent::Call {
                room_id: event_room,
                event: CallEvent::ParticipantJoined { .. },
            } = event
            {
                assert_eq!(event_room, room_id);
                joined += 1;
            }
        }
        joined == 2
            && engine
                .calls()
                .get(&room_id)
                .is_some_and(|call| call.participant_count == 2)
    })
    .await;

    // A hidden tile is not decoded: packets go on arriving, pictures stop.
    alice.set_visible(Some(std::collections::HashSet::new()));
    assert!(
        pictures_stop(&recorder, bob_tile).await,
        "Bob's hidden tile was still decoded"
    );
    let hidden = stats_of(&alice.stats(), users[1].0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still_hidden = stats_of(&alice.stats(), users[1].0);
    assert!(still_hidden.video_packets_received > hidden.video_packets_received);
    assert_eq!(
        still_hidden.video_frames_decoded,
        hidden.video_frames_decoded
    );
    let shown_again = recorder.pictures(bob_tile);
    alice.set_visible(Some([bob.feed_id].into()));
    wait_until("Bob's tile shows again", || {
        recorder.pictures(bob_tile) > shown_again + 5
    })
    .await;

    // Bob's camera off stops his pictures at Alice's; on brings them back.
    bob.set_camera_off(true).await.unwrap();
    assert!(
        pictures_stop(&recorder, bob_tile).await,
        "pictures kept coming with the camera off"
    );
    let off = recorder.pictures(bob_tile);
    bob.set_camera_off(false).await.unwrap();
    wait_until("Bob's camera is back", || {
        recorder.pictures(bob_tile) > off + 5
    })
    .await;

    // Alice's own camera off stops her self view too.
    alice.set_camera_off(true).await.unwrap();
    assert!(pictures_stop(&recorder, Tile::Local).await);
    alice.set_camera_off(false).await.unwrap();

    // Switching devices in the call: Bob receives the new source (the clock
    // pattern, which gives him a latency), and the self view shows it.
    let switched = MediaSetup {
        video: VideoInput::ClockPattern,
        output: Some(recorder.clone() as std::sync::Arc<dyn MediaOutput>),
        ..MediaSetup::synthetic(TONES_HZ[0])
    };
    alice.switch_media(&switched).await.unwrap();
    let local = recorder.pictures(Tile::Local);
    wait_until("Bob receives Alice's new source", || {
        stats_of(&bob.stats(), users[0].0).latency_ms_mean.is_some()
    })
    .await;
    wait_until("the self view shows the new source", || {
        recorder.pictures(Tile::Local) > local + 5
    })
    .await;

    bob.leave().await.unwrap();
    wait_until("the engine counts one participant", || {
        engine
            .calls()
            .get(&room_id)
            .is_some_and(|call| call.participant_count == 1)
    })
    .await;
    alice.leave().await.unwrap();
    wait_until("the call is over", || engine.calls().is_empty()).await;
    shutdown.cancel();
    live.await.unwrap();
}

/// A participant whom a moderator bans from the room hears why and stops sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banned_participant_is_removed_from_call() {
    if run_inside_namespace("banned_participant_is_removed_from_call") {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let alice = CallSession::join(&fixture.ws_url(), &users[0].1, room_id, options(0))
        .await
        .unwrap();
    let bob = CallSession::join(&fixture.ws_url(), &users[1].1, room_id, options(1))
        .await
        .unwrap();
    let mut removed = bob.removed();
    assert_eq!(*removed.borrow(), None);

    let status = fixture
        .http
        .put(format!(
            "{}/api/rooms/{room_id}/bans/{}",
            fixture.base, users[1].0
        ))
        .bearer_auth(&users[0].1)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let reason = tokio::time::timeout(MEDIA_TIMEOUT, removed.wait_for(Option::is_some))
        .await
        .expect("Bob was not told that he was removed")
        .unwrap()
        .clone();
    assert_eq!(
        reason.as_deref(),
        Some("a moderator banned you from the room")
    );
    alice.leave().await.unwrap();
}
