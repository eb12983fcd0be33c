//! Calls between headless clients through a real Janus, which the in-process
//! server starts: every client receives every other's audio and video, and mute
//! stops the audio others receive.
//!
//! Janus's ICE gathers no candidates on a loopback interface, so each test re-runs
//! itself inside a fresh network namespace (`unshare -n`) with `lo` and a veth pair
//! whose end `v0` carries 127.0.0.2 (Janus) and 127.0.0.3 (the clients). The
//! namespace goes away with the last process in it. Without root or the `janus`
//! program the tests print why they are skipped and pass.

use std::process::Command;
use std::time::Duration;

use roomler_client::call::{CallOptions, CallSession, RemoteStats};
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use serde_json::{Value, json};
use uuid::Uuid;

/// Set in the re-run inside the namespace.
const INSIDE: &str = "ROOMLER_TEST_IN_NETNS";
const PASSWORD: &str = "correct horse battery";
/// How long every client may take to receive every other's media.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

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

fn options() -> CallOptions {
    CallOptions {
        bind: "127.0.0.3".parse().unwrap(),
        relay_only: false,
    }
}

fn stats_of(stats: &[RemoteStats], user_id: Uuid) -> RemoteStats {
    stats
        .iter()
        .find(|stats| stats.user_id == Some(user_id))
        .cloned()
        .unwrap_or_else(|| panic!("no statistics for {user_id} in {stats:?}"))
}

/// Checks whether every client has a counter range from every other.
fn all_flowing(sessions: &[CallSession], count: usize) -> bool {
    sessions.iter().all(|session| {
        let stats = session.stats();
        stats.len() == count - 1
            && stats.iter().all(|remote| {
                remote.audio_packets_received > 0
                    && remote.frame_counter_max.unwrap_or(0)
                        > remote.frame_counter_min.unwrap_or(0) + 10
            })
    })
}

/// Joins `count` clients to one call and checks that each receives every other's
/// audio and video, with the probe frame counter advancing.
async fn everyone_receives_everyone(count: usize) {
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(count).await;
    let mut sessions = Vec::new();
    for (_, token) in &users {
        let session = CallSession::join(&fixture.ws_url(), token, room_id, options())
            .await
            .unwrap();
        sessions.push(session);
    }
    // ICE and DTLS take a moment per connection on a loaded machine.
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline && !all_flowing(&sessions, count) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (index, session) in sessions.iter().enumerate() {
        let stats = session.stats();
        assert_eq!(stats.len(), count - 1, "client {index}: {stats:?}");
        for (other, (user_id, _)) in users.iter().enumerate() {
            if other == index {
                continue;
            }
            let remote = stats_of(&stats, *user_id);
            assert!(
                remote.audio_packets_received > 0,
                "client {index}: {remote:?}"
            );
            assert!(
                remote.video_frames_received > 0,
                "client {index}: {remote:?}"
            );
            let (min, max) = (
                remote.frame_counter_min.unwrap(),
                remote.frame_counter_max.unwrap(),
            );
            assert!(max > min + 10, "client {index}: counter {min}..{max}");
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
    let alice = CallSession::join(&fixture.ws_url(), &users[0].1, room_id, options())
        .await
        .unwrap();
    let bob = CallSession::join(&fixture.ws_url(), &users[1].1, room_id, options())
        .await
        .unwrap();
    let sessions = [alice, bob];
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline && !all_flowing(&sessions, 2) {
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
        later.video_frames_received > muted.video_frames_received,
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
