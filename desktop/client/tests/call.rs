//! Calls between headless clients through a real Janus, which the in-process
//! server starts: every client decodes every other's video and audio (the test
//! pattern's frame counter advances, and each sender's own tone frequency is
//! detected), also when relayed through coturn only. Mute stops the audio others
//! receive, a participant who leaves disappears from the others' participant lists
//! and media, and media comes back after the clients' address is cut off for a few
//! seconds or after a client's WebSocket closes. In a presentation the audience
//! receives the host without opening any device, and a participant whom the host
//! lets speak is received until moved back to the audience. Each client sends three
//! simulcast layers, and a subscriber receives the lowest or the full-size one, by
//! the size of its tile. Under packet loss, NACK fills most gaps on the way to
//! Janus and back, a shown tile's PLI reaches the publisher, and the bitrate
//! falls until the top layer stops, while its subscriber receives a lower one.
//! A camera and microphone lost during the call turn into the camera-off and muted
//! marks until a switch to working devices, and an invited speaker whose camera
//! fails to open goes back to the audience. `roomler call` writes the same
//! statistics to a file.
//!
//! Janus's ICE gathers no candidates on a loopback interface, so each test re-runs
//! itself inside a fresh network namespace (see `roomler-netns`) where `v0` carries
//! 127.0.0.2 (Janus and coturn) and 127.0.0.3 (the clients). Without root, the
//! `janus` program, or for the relay tests coturn's `turnserver`, the tests print
//! why they are skipped and pass.

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use roomler_client::call::media::{VIDEO_FPS, VIDEO_HEIGHT, VIDEO_WIDTH};
use roomler_client::call::{
    AudioInput, CallFormat, CallOptions, CallParticipant, CallReport, CallRole, CallSession,
    MediaOutput, MediaProblem, MediaSetup, RemoteStats, Tile, TileLayout, TileSize, VideoInput,
};
use roomler_client::{ConnectionState, Engine, EngineEvent, Profile};
use roomler_media::{DeviceKind, Layer, SimulcastConfig, SourceError, allocate};
use roomler_netns::ip;
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use roomler_shared::call::CallEvent;
use serde_json::{Value, json};
use uuid::Uuid;

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

/// Where coturn listens inside the namespace, and the range of its relay ports.
const TURN_ADDR: &str = "127.0.0.2:3478";
const TURN_MIN_PORT: &str = "49160";
const TURN_MAX_PORT: &str = "49200";
/// How long coturn may take to respond to its first STUN request after its start.
const TURN_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Drops every packet from and to the clients' address 127.0.0.3 until
/// [`restore_client_address`], as if their network went away. The sockets stay
/// bound, and the WebSockets on 127.0.0.1 stay up. Local delivery follows the
/// `local` routing table, whose rule comes first, so it moves behind two
/// blackhole rules.
fn cut_client_address() {
    ip(&["rule", "add", "pref", "100", "lookup", "local"]);
    ip(&["rule", "del", "pref", "0"]);
    ip(&[
        "rule",
        "add",
        "pref",
        "10",
        "from",
        "127.0.0.3",
        "blackhole",
    ]);
    ip(&["rule", "add", "pref", "11", "to", "127.0.0.3", "blackhole"]);
}

fn restore_client_address() {
    ip(&["rule", "del", "pref", "10"]);
    ip(&["rule", "del", "pref", "11"]);
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
        Self::start_with(|_| {}).await
    }

    /// Starts the server with the settings that `configure` changes.
    async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
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
        configure(&mut settings);
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
        format: None,
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

/// Joins every user to the call of `room_id`, each with its own tone.
async fn join_everyone(
    fixture: &Fixture,
    room_id: Uuid,
    users: &[(Uuid, String)],
    relay_only: bool,
) -> Vec<CallSession> {
    let mut sessions = Vec::new();
    for (index, (_, token)) in users.iter().enumerate() {
        let options = CallOptions {
            relay_only,
            ..options(index)
        };
        let session = CallSession::join(&fixture.ws_url(), token, room_id, options)
            .await
            .unwrap();
        sessions.push(session);
    }
    sessions
}

/// Waits until every client decodes every other's media, or [`MEDIA_TIMEOUT`].
async fn wait_until_flowing(sessions: &[CallSession], users: &[(Uuid, String)]) {
    // ICE and DTLS take a moment per connection on a loaded machine.
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline && !all_flowing(sessions, users) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts that every client decoded every other's video and audio.
fn check_everyone(sessions: &[CallSession], users: &[(Uuid, String)]) {
    for (index, session) in sessions.iter().enumerate() {
        let stats = session.stats();
        assert_eq!(stats.len(), sessions.len() - 1, "client {index}: {stats:?}");
        for (other, (user_id, _)) in users.iter().enumerate() {
            if other != index {
                check_remote(index, other, &stats_of(&stats, *user_id));
            }
        }
    }
}

/// Joins `count` clients to one call and checks that each decodes every other's
/// video and audio: the frame counter advances and the sender's tone is detected.
async fn everyone_receives_everyone(count: usize) {
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(count).await;
    let sessions = join_everyone(&fixture, room_id, &users, false).await;
    wait_until_flowing(&sessions, &users).await;
    check_everyone(&sessions, &users);
    for session in sessions {
        session.leave().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_receive_each_other() {
    if roomler_netns::run_inside_namespace("two_clients_receive_each_other", &["janus"]) {
        return;
    }
    everyone_receives_everyone(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_receive_each_other() {
    if roomler_netns::run_inside_namespace("three_clients_receive_each_other", &["janus"]) {
        return;
    }
    everyone_receives_everyone(3).await;
}

/// coturn from the `turnserver` program, inside the test's namespace, checking
/// TURN REST credentials against a shared secret. It writes its log to a file.
struct Coturn {
    child: Child,
    log: PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Coturn {
    /// Starts coturn with `secret` as its `static-auth-secret`, and waits until it
    /// responds to a STUN binding request.
    fn start(dir: &Path, secret: &str) -> Self {
        let log = dir.join("coturn.log");
        // An empty configuration file, because Debian's /etc/turnserver.conf sends
        // the log to syslog.
        let config = dir.join("turnserver.conf");
        std::fs::write(&config, "").unwrap();
        let relay_ip = TURN_ADDR.split(':').next().unwrap();
        let port = TURN_ADDR.split(':').nth(1).unwrap();
        let child = Command::new("turnserver")
            .arg("-c")
            .arg(&config)
            .args(["--listening-ip", relay_ip, "--relay-ip", relay_ip])
            .args(["--listening-port", port])
            .args(["--min-port", TURN_MIN_PORT, "--max-port", TURN_MAX_PORT])
            .arg("--use-auth-secret")
            .arg(format!("--static-auth-secret={secret}"))
            .args(["--realm", "roomler"])
            .args(["--no-tls", "--no-dtls", "--no-cli", "--fingerprint"])
            // Janus's candidates are on 127.0.0.2, which coturn rejects as a peer
            // address unless loopback peers are allowed.
            .arg("--allow-loopback-peers")
            // Verbose, because coturn logs each request's result only then.
            .args(["--verbose", "--log-file=stdout"])
            .arg("--userdb")
            .arg(dir.join("turndb"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start turnserver");
        let coturn = Coturn { child, log };
        coturn.wait_until_listening();
        coturn
    }

    fn wait_until_listening(&self) {
        let socket = UdpSocket::bind("127.0.0.3:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // A STUN binding request (RFC 5389): type 0x0001, length 0, the magic
        // cookie and a 12-byte transaction id.
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        request.extend_from_slice(b"roomlertest1");
        let deadline = std::time::Instant::now() + TURN_START_TIMEOUT;
        let mut response = [0u8; 512];
        while std::time::Instant::now() < deadline {
            let _ = socket.send_to(&request, TURN_ADDR);
            if socket.recv_from(&mut response).is_ok() {
                return;
            }
        }
        panic!(
            "coturn did not respond on {TURN_ADDR} within {TURN_START_TIMEOUT:?}: {}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns the log lines that name the TURN user `user_id`. TURN REST
    /// usernames are `EXPIRY:USER_ID`.
    fn lines_of(&self, user_id: Uuid) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|line| line.contains(&format!(":{user_id}>")))
            .map(str::to_string)
            .collect()
    }
}

fn random_secret() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Starts the server with coturn's URL for `transport` (udp or tcp) and `secret`,
/// so that joins hand out TURN REST credentials signed with it.
async fn fixture_with_turn(secret: &str, transport: &str) -> Fixture {
    let secret = secret.to_string();
    let url = format!("turn:{TURN_ADDR}?transport={transport}");
    Fixture::start_with(move |settings| {
        settings.turn_url = Some(url);
        settings.turn_secret = Some(secret);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_clients_receive_each_other() {
    if roomler_netns::run_inside_namespace(
        "relay_only_clients_receive_each_other",
        &["janus", "turnserver"],
    ) {
        return;
    }
    relayed_clients_receive_each_other("udp").await;
}

/// Joins two relay-only clients through coturn, whose URL for `transport` the server
/// hands out, and checks that each receives the other through an allocation.
async fn relayed_clients_receive_each_other(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let secret = random_secret();
    let coturn = Coturn::start(dir.path(), &secret);
    if transport == "tcp" {
        block_udp_to_turn();
    }
    let fixture = fixture_with_turn(&secret, transport).await;
    let (room_id, users) = fixture.room(2).await;
    let sessions = join_everyone(&fixture, room_id, &users, true).await;
    wait_until_flowing(&sessions, &users).await;

    check_everyone(&sessions, &users);
    // Relay-only clients gather no other candidates, so the media above went
    // through allocations that coturn granted to each user.
    for (user_id, _) in &users {
        let lines = coturn.lines_of(*user_id);
        assert!(
            lines
                .iter()
                .any(|line| line.contains("ALLOCATE processed, success")),
            "coturn granted no allocation to {user_id}: {}",
            coturn.log_text()
        );
    }
    for session in sessions {
        session.leave().await.unwrap();
    }
}

/// With UDP to coturn blocked and only a `transport=tcp` URL handed out, relay-only
/// clients still receive each other: their TURN traffic goes over TCP through the
/// client's bridge, and coturn relays to Janus over UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_clients_receive_each_other_over_tcp() {
    let name = "relay_only_clients_receive_each_other_over_tcp";
    if roomler_netns::run_inside_namespace(name, &["janus", "turnserver", "nft"]) {
        return;
    }
    relayed_clients_receive_each_other("tcp").await;
}

/// Drops every UDP packet to coturn's listening port, so that a client reaches
/// it over TCP only. The relayed media uses other ports and still flows.
fn block_udp_to_turn() {
    let (address, port) = TURN_ADDR.split_once(':').unwrap();
    load_nft_rules(&format!(
        "table inet roomler_turn {{\n  chain input {{\n    type filter hook input priority 0;\n    \
         ip daddr {address} udp dport {port} drop\n  }}\n}}\n"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_turn_secret_gives_no_media() {
    if roomler_netns::run_inside_namespace(
        "wrong_turn_secret_gives_no_media",
        &["janus", "turnserver"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let coturn = Coturn::start(dir.path(), &random_secret());
    let fixture = fixture_with_turn(&random_secret(), "udp").await;
    let (room_id, users) = fixture.room(2).await;
    let sessions = join_everyone(&fixture, room_id, &users, true).await;

    // Each join gathered its relay candidates before it returned, so coturn has
    // already rejected every user's credentials.
    for (user_id, _) in &users {
        let lines = coturn.lines_of(*user_id);
        assert!(
            lines.iter().any(|line| line.contains("401")),
            "coturn did not reject the credentials of {user_id}: {}",
            coturn.log_text()
        );
        assert!(
            !lines.iter().any(|line| line.contains("success")),
            "coturn accepted a request of {user_id}: {lines:?}"
        );
    }
    // Without a relay candidate, ICE has no pair to check, so nothing can arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (index, session) in sessions.iter().enumerate() {
        let stats = session.stats();
        let received: u64 = stats
            .iter()
            .map(|remote| remote.audio_packets_received + remote.video_packets_received)
            .sum();
        assert_eq!(received, 0, "client {index} received media: {stats:?}");
    }
    for session in sessions {
        session.leave().await.unwrap();
    }
}

fn participant_ids(list: &[CallParticipant]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = list.iter().map(|participant| participant.user_id).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_removes_participant() {
    if roomler_netns::run_inside_namespace("leaving_removes_participant", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(3).await;
    let mut sessions = join_everyone(&fixture, room_id, &users, false).await;
    wait_until_flowing(&sessions, &users).await;
    check_everyone(&sessions, &users);

    // Each client lists the two others, with the feeds their media comes from.
    for (index, session) in sessions.iter().enumerate() {
        let list = session.participants();
        let mut expected: Vec<Uuid> = users
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, (user_id, _))| *user_id)
            .collect();
        expected.sort();
        assert_eq!(participant_ids(&list), expected, "client {index}: {list:?}");
        for participant in &list {
            let feed = stats_of(&session.stats(), participant.user_id).feed_id;
            assert_eq!(participant.feed_id, feed, "client {index}: {participant:?}");
            assert!(participant.publishing, "client {index}: {participant:?}");
            assert!(!participant.muted, "client {index}: {participant:?}");
        }
    }

    let carol = sessions.pop().unwrap();
    let carol_id = users[2].0;
    carol.leave().await.unwrap();
    for (index, session) in sessions.iter().enumerate() {
        let mut list = session.watch_participants();
        let waited = tokio::time::timeout(
            MEDIA_TIMEOUT,
            list.wait_for(|list| !list.iter().any(|entry| entry.user_id == carol_id)),
        )
        .await
        .is_ok_and(|result| result.is_ok());
        assert!(
            waited,
            "client {index} still lists the participant who left: {:?}",
            session.participants()
        );
        assert_eq!(
            participant_ids(&session.participants()),
            vec![users[1 - index].0],
            "client {index}"
        );
    }

    // Packets already in flight when Janus drops the feed still arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_leave: Vec<Vec<RemoteStats>> =
        sessions.iter().map(|session| session.stats()).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (index, session) in sessions.iter().enumerate() {
        let stats = session.stats();
        let carol_before = stats_of(&after_leave[index], carol_id);
        let carol_later = stats_of(&stats, carol_id);
        assert_eq!(
            carol_later.audio_packets_received, carol_before.audio_packets_received,
            "client {index} kept receiving audio of the participant who left"
        );
        assert_eq!(
            carol_later.video_packets_received, carol_before.video_packets_received,
            "client {index} kept receiving video of the participant who left"
        );
        let other = 1 - index;
        let before = stats_of(&after_leave[index], users[other].0);
        let after = stats_of(&stats, users[other].0);
        assert!(
            after.video_frames_decoded > before.video_frames_decoded,
            "client {index} stopped decoding the video of {other}: {after:?}"
        );
        assert!(
            after.audio_frames_decoded > before.audio_frames_decoded,
            "client {index} stopped decoding the audio of {other}: {after:?}"
        );
    }
    for session in sessions {
        session.leave().await.unwrap();
    }
}

/// Waits until `session` lists `user_id` with the microphone state `muted`.
async fn wait_for_muted(session: &CallSession, user_id: Uuid, muted: bool) {
    let mut list = session.watch_participants();
    let waited = tokio::time::timeout(
        MEDIA_TIMEOUT,
        list.wait_for(|list| {
            list.iter()
                .any(|entry| entry.user_id == user_id && entry.muted == muted)
        }),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    assert!(
        waited,
        "the participant list never showed {user_id} with muted = {muted}: {:?}",
        session.participants()
    );
}

/// How long the clients' address stays cut off: longer than the 4 s of silence
/// after which the `webrtc` crate fails an ICE connection with the engine's
/// timeouts, so that only an ICE restart brings the media back.
const NETWORK_OUTAGE: Duration = Duration::from_secs(6);

/// Checks whether `now` shows video and audio that arrived after `before`: the
/// frame counter moved on past `before`'s, new audio packets came in, and the
/// sender's tone is detected.
fn flowing_since(before: &RemoteStats, now: &RemoteStats, tone_hz: f32) -> bool {
    let counter_before = before.frame_counter_max.unwrap_or(0);
    now.frame_counter_max
        .is_some_and(|max| max > counter_before + COUNTER_ADVANCE)
        && now.audio_packets_received > before.audio_packets_received
        && tone_matches(now, tone_hz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_returns_after_network_drop() {
    if roomler_netns::run_inside_namespace("media_returns_after_network_drop", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let sessions = join_everyone(&fixture, room_id, &users, false).await;
    wait_until_flowing(&sessions, &users).await;
    check_everyone(&sessions, &users);

    cut_client_address();
    // Packets already in flight when the rules apply still arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cut: Vec<Vec<RemoteStats>> = sessions.iter().map(|session| session.stats()).collect();
    tokio::time::sleep(NETWORK_OUTAGE - Duration::from_millis(500)).await;
    let during: Vec<Vec<RemoteStats>> = sessions.iter().map(|session| session.stats()).collect();
    restore_client_address();

    // The cut was real: nothing arrived while the address was gone.
    for (index, (at_cut, at_end)) in cut.iter().zip(&during).enumerate() {
        let other = 1 - index;
        let at_cut = stats_of(at_cut, users[other].0);
        let at_end = stats_of(at_end, users[other].0);
        assert_eq!(
            at_end.video_packets_received, at_cut.video_packets_received,
            "client {index} received video of {other} during the outage"
        );
        assert_eq!(
            at_end.audio_packets_received, at_cut.audio_packets_received,
            "client {index} received audio of {other} during the outage"
        );
    }

    let recovered = |index: usize| {
        let other = 1 - index;
        let before = stats_of(&during[index], users[other].0);
        let now = stats_of(&sessions[index].stats(), users[other].0);
        flowing_since(&before, &now, TONES_HZ[other])
    };
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline && !(recovered(0) && recovered(1)) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (index, session) in sessions.iter().enumerate() {
        let other = 1 - index;
        let before = stats_of(&during[index], users[other].0);
        let now = stats_of(&session.stats(), users[other].0);
        assert!(
            now.frame_counter_max
                .is_some_and(|max| max > before.frame_counter_max.unwrap_or(0) + COUNTER_ADVANCE),
            "client {index}: the video of {other} did not come back: before {before:?}, \
             now {now:?}"
        );
        assert!(
            now.audio_packets_received > before.audio_packets_received,
            "client {index}: the audio of {other} did not come back: {now:?}"
        );
        assert!(
            tone_matches(&now, TONES_HZ[other]),
            "client {index}: expected the {} Hz tone of {other} after the outage, detected {:?}",
            TONES_HZ[other],
            now.tone_hz
        );
    }
    for session in sessions {
        session.leave().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rejoins_after_websocket_closes() {
    if roomler_netns::run_inside_namespace("client_rejoins_after_websocket_closes", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let sessions = join_everyone(&fixture, room_id, &users, false).await;
    wait_until_flowing(&sessions, &users).await;
    check_everyone(&sessions, &users);
    let (alice_id, bob_id) = (users[0].0, users[1].0);
    let old_feed = sessions[0].feed_id();

    // The server closes Alice's WebSocket, as on a lost connection, and takes her
    // out of the call.
    fixture.state.hub.end_sessions(alice_id, None);
    let mut list = sessions[1].watch_participants();
    let rejoined = tokio::time::timeout(
        MEDIA_TIMEOUT,
        list.wait_for(|list| {
            list.iter()
                .any(|entry| entry.user_id == alice_id && entry.feed_id != old_feed)
        }),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    assert!(
        rejoined,
        "Bob never saw Alice join again: {:?}",
        sessions[1].participants()
    );
    // Bob's list names Alice's new feed before her join finishes publishing.
    let new_feed = sessions[1]
        .participants()
        .iter()
        .find(|entry| entry.user_id == alice_id)
        .map(|entry| entry.feed_id)
        .unwrap();

    let alice_receives = || {
        let stats = sessions[0].stats();
        stats
            .iter()
            .find(|remote| remote.user_id == Some(bob_id))
            .cloned()
    };
    let bob_receives = || {
        let stats = sessions[1].stats();
        stats
            .iter()
            .find(|remote| remote.feed_id == new_feed)
            .cloned()
    };
    let flowing = |remote: Option<RemoteStats>, tone_hz: f32| {
        remote.is_some_and(|remote| counter_advanced(&remote) && tone_matches(&remote, tone_hz))
    };
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    while tokio::time::Instant::now() < deadline
        && !(flowing(alice_receives(), TONES_HZ[1]) && flowing(bob_receives(), TONES_HZ[0]))
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sessions[0].feed_id(),
        new_feed,
        "Alice's session has another feed"
    );
    let alice_stats =
        alice_receives().expect("Alice receives nothing from Bob after joining again");
    check_remote(0, 1, &alice_stats);
    let bob_stats = bob_receives().unwrap_or_else(|| {
        panic!(
            "Bob has no statistics of Alice's new feed {new_feed}: {:?}",
            sessions[1].stats()
        )
    });
    check_remote(1, 0, &bob_stats);
    for session in sessions {
        session.leave().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_stops_audio_others_receive() {
    if roomler_netns::run_inside_namespace("mute_stops_audio_others_receive", &["janus"]) {
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
    wait_for_muted(&bob, users[0].0, true).await;
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
    wait_for_muted(&bob, users[0].0, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unmuted = stats_of(&bob.stats(), users[0].0);
    assert!(
        unmuted.audio_packets_received > later.audio_packets_received,
        "audio did not come back after unmute"
    );
    alice.leave().await.unwrap();
    bob.leave().await.unwrap();
}

/// Returns the picture size of a simulcast layer of the test pattern.
fn layer_size(layer: Layer) -> (u32, u32) {
    SimulcastConfig::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS, 450)
        .layer_config(layer)
        .encoded_size()
}

fn decoded_size(remote: &RemoteStats) -> Option<(u32, u32)> {
    remote.video_width.zip(remote.video_height)
}

/// Waits until `session` decodes pictures of `size` from `user_id`, and the frame
/// counter advances by [`COUNTER_ADVANCE`] at that size. Returns the statistics
/// then.
async fn wait_for_layer(session: &CallSession, user_id: Uuid, size: (u32, u32)) -> RemoteStats {
    let mut first: Option<RemoteStats> = None;
    let deadline = tokio::time::Instant::now() + MEDIA_TIMEOUT;
    loop {
        let stats = session.stats();
        let now = stats
            .iter()
            .find(|stats| stats.user_id == Some(user_id))
            .cloned()
            .unwrap_or_default();
        if decoded_size(&now) == Some(size) {
            let start = first.get_or_insert_with(|| now.clone());
            if now.frame_counter_max > start.frame_counter_max.map(|max| max + COUNTER_ADVANCE) {
                return now;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {size:?} pictures with an advancing counter: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tile_size_picks_simulcast_layer() {
    if roomler_netns::run_inside_namespace("tile_size_picks_simulcast_layer", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let mut sessions = join_everyone(&fixture, room_id, &users, false).await;
    let bob = sessions.pop().unwrap();
    let alice = sessions.pop().unwrap();
    let alice_id = users[0].0;
    let full = layer_size(Layer::High);
    let medium_size = layer_size(Layer::Medium);
    let low = layer_size(Layer::Low);
    assert_eq!(full, (VIDEO_WIDTH, VIDEO_HEIGHT));
    assert_ne!(medium_size, full);
    assert_ne!(low, medium_size);

    // Janus starts a subscription at the full-size layer.
    let first = wait_for_layer(&bob, alice_id, full).await;

    bob.set_tile_layout(TileLayout::shown([(alice.feed_id(), TileSize::Small)]));
    let small = wait_for_layer(&bob, alice_id, low).await;
    assert!(
        small.frame_counter_max > first.frame_counter_max,
        "the counter went back after the switch to the lowest layer: {first:?} then {small:?}"
    );

    bob.set_tile_layout(TileLayout::shown([(alice.feed_id(), TileSize::Medium)]));
    let medium = wait_for_layer(&bob, alice_id, medium_size).await;
    assert!(
        medium.frame_counter_max > small.frame_counter_max,
        "the counter went back after the switch to the half-size layer: {small:?} then {medium:?}"
    );

    bob.set_tile_layout(TileLayout::shown([(alice.feed_id(), TileSize::Large)]));
    let large = wait_for_layer(&bob, alice_id, full).await;
    assert!(
        large.frame_counter_max > medium.frame_counter_max,
        "the counter went back after the switch to the full size: {medium:?} then {large:?}"
    );
    assert!(
        large.video_frames_decoded > medium.video_frames_decoded,
        "no frames decoded after the switch: {large:?}"
    );

    // The other direction is untouched: Alice still receives Bob at full size.
    wait_for_layer(&alice, users[1].0, full).await;
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
    if roomler_netns::run_inside_namespace("load_bot_sends_without_receiving", &["janus"]) {
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

/// A `roomler call` whose media never reaches Janus fails with the reason, and
/// still writes its statistics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_command_fails_without_media_path() {
    if roomler_netns::run_inside_namespace("call_command_fails_without_media_path", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    fixture.room(1).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile0");
    log_in_cli(&fixture, &profile, 0).await;
    let stats = dir.path().join("stats0.json");

    // Janus never hears the client's STUN checks, so ICE cannot connect.
    drop_udp(TO_JANUS, 100);
    let child = roomler(
        &profile,
        &[
            "call",
            "call",
            "--synthetic",
            "--for",
            "5",
            "--bind",
            "127.0.0.3",
        ],
    )
    .arg("--stats")
    .arg(&stats)
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    restore_udp();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("your media never reached the media server"),
        "{stderr}"
    );
    // The log shows the reason, not the WebRTC crates' passing warnings, and has no
    // colour codes when it goes to a file or pipe.
    let crate_warnings = stderr
        .lines()
        .filter(|line| line.contains(" WARN rtc") || line.contains(" WARN webrtc"))
        .count();
    assert_eq!(crate_warnings, 0, "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let report: CallReport =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(!report.media_published, "{report:?}");
    assert_eq!(report.role, Some(CallRole::Speaker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_command_writes_stats() {
    if roomler_netns::run_inside_namespace("call_command_writes_stats", &["janus"]) {
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
        // A headless client receives the full-size layer, and the report names
        // the size of the last picture it decoded.
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json["remotes"][0]["video_width"],
            json!(VIDEO_WIDTH),
            "{text}"
        );
        assert_eq!(
            json["remotes"][0]["video_height"],
            json!(VIDEO_HEIGHT),
            "{text}"
        );
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
    if roomler_netns::run_inside_namespace("call_view_gets_pictures_levels_and_events", &["janus"])
    {
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
        feed_id: bob.feed_id(),
    };
    assert_eq!(bob.participants().len(), 1);
    assert_eq!(bob.participants()[0].user_id, users[0].0);

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
    alice.set_visible(Some([bob.feed_id()].into()));
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
    if roomler_netns::run_inside_namespace("banned_participant_is_removed_from_call", &["janus"]) {
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

/// Waits until `session`'s participant list shows `user_id` as `done` accepts it.
async fn wait_for_entry(
    session: &CallSession,
    user_id: Uuid,
    what: &str,
    done: impl Fn(&CallParticipant) -> bool,
) {
    let mut list = session.watch_participants();
    let waited = tokio::time::timeout(
        MEDIA_TIMEOUT,
        list.wait_for(|list| {
            list.iter()
                .any(|entry| entry.user_id == user_id && done(entry))
        }),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    assert!(
        waited,
        "the participant list never showed {user_id} {what}: {:?}",
        session.participants()
    );
}

/// Returns the statistics of `user_id` in `session`, if any arrived.
fn find_stats(session: &CallSession, user_id: Uuid) -> Option<RemoteStats> {
    session
        .stats()
        .into_iter()
        .find(|stats| stats.user_id == Some(user_id))
}

/// A presentation: the audience receives the host's video and audio without any
/// camera or microphone. One audience member raises a hand and is let speak, so the
/// others receive them. Once moved back to the audience, they send no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_receives_presentation_without_devices() {
    if roomler_netns::run_inside_namespace(
        "audience_receives_presentation_without_devices",
        &["janus"],
    ) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(3).await;
    let url = fixture.ws_url();

    // The room's owner starts a presentation with the synthetic sources.
    let host_options = CallOptions {
        format: Some(CallFormat::Presentation),
        ..options(0)
    };
    let host = CallSession::join(&url, &users[0].1, room_id, host_options)
        .await
        .unwrap();
    assert_eq!(host.format(), CallFormat::Presentation);
    assert_eq!(host.role(), CallRole::Host);

    // This listener names a camera and a microphone that do not exist, so its join
    // fails if the engine opens either of them.
    let no_devices = MediaSetup {
        video: VideoInput::Camera {
            name: Some("No Such Camera".into()),
        },
        audio: AudioInput::Microphone {
            name: Some("No Such Microphone".into()),
        },
        ..MediaSetup::synthetic(TONES_HZ[1])
    };
    let listener = CallSession::join_with(&url, &users[1].1, room_id, options(1), no_devices)
        .await
        .unwrap();
    assert_eq!(listener.format(), CallFormat::Presentation);
    assert_eq!(listener.role(), CallRole::Audience);
    // The second audience member could send the synthetic sources once allowed.
    let guest = CallSession::join(&url, &users[2].1, room_id, options(2))
        .await
        .unwrap();
    assert_eq!(guest.role(), CallRole::Audience);

    // Both audience members decode the host, and the host receives neither.
    wait_until("the audience decodes the host", || {
        [&listener, &guest].iter().all(|session| {
            find_stats(session, users[0].0)
                .is_some_and(|stats| counter_advanced(&stats) && tone_matches(&stats, TONES_HZ[0]))
        })
    })
    .await;
    check_remote(1, 0, &stats_of(&listener.stats(), users[0].0));
    check_remote(2, 0, &stats_of(&guest.stats(), users[0].0));
    assert!(host.stats().is_empty(), "{:?}", host.stats());

    // The guest raises a hand, and the host's participant list shows it.
    let guest_id = users[2].0;
    guest.raise_hand().await.unwrap();
    wait_for_entry(&host, guest_id, "with a raised hand", |entry| {
        entry.hand_raised
    })
    .await;

    // The host lets the guest speak: the guest's session publishes by itself, and
    // the host and the listener decode it.
    host.invite_to_speak(guest_id).await.unwrap();
    wait_for_entry(&host, guest_id, "as a speaker", |entry| {
        entry.role == CallRole::Speaker && !entry.hand_raised
    })
    .await;
    wait_until("the host and the listener decode the guest", || {
        [&host, &listener].iter().all(|session| {
            find_stats(session, guest_id)
                .is_some_and(|stats| counter_advanced(&stats) && tone_matches(&stats, TONES_HZ[2]))
        })
    })
    .await;
    assert_eq!(guest.role(), CallRole::Speaker);
    check_remote(0, 2, &stats_of(&host.stats(), guest_id));
    check_remote(1, 2, &stats_of(&listener.stats(), guest_id));

    // Moved back to the audience, the guest stops sending: after a second for the
    // packets in flight, the host receives no more of its audio.
    host.move_to_audience(guest_id).await.unwrap();
    wait_for_entry(&host, guest_id, "in the audience", |entry| {
        entry.role == CallRole::Audience && !entry.publishing
    })
    .await;
    wait_until("the guest's session follows its role", || {
        guest.role() == CallRole::Audience
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = stats_of(&host.stats(), guest_id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = stats_of(&host.stats(), guest_id);
    assert_eq!(
        after.audio_packets_received, before.audio_packets_received,
        "the host still receives the guest's audio after moving it to the audience"
    );
    // The listener still receives the host.
    let before = stats_of(&listener.stats(), users[0].0);
    wait_until("the listener still decodes the host", || {
        find_stats(&listener, users[0].0)
            .is_some_and(|now| flowing_since(&before, &now, TONES_HZ[0]))
    })
    .await;

    for session in [guest, listener, host] {
        session.leave().await.unwrap();
    }
}

/// Frames that the losing camera and microphone deliver before they stop: five
/// seconds of each, so that the other participant decodes them first.
const FRAMES_BEFORE_LOSS: u32 = 150;
const AUDIO_FRAMES_BEFORE_LOSS: u32 = 250;

/// Checks whether the packets of `user_id` stop reaching `session` for a second and
/// a half, after half a second for those in flight: `video` or else audio.
async fn packets_stop(session: &CallSession, user_id: Uuid, video: bool) -> bool {
    let packets = |stats: RemoteStats| {
        if video {
            stats.video_packets_received
        } else {
            stats.audio_packets_received
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = packets(stats_of(&session.stats(), user_id));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    packets(stats_of(&session.stats(), user_id)) == before
}

/// A camera and a microphone that stop delivering during the call, as when they
/// are unplugged: the session turns the camera off and mutes towards the server,
/// so the other participant sees both marks instead of a frozen picture, and it
/// reports both devices as lost. Switching to working devices brings the picture
/// back with the camera on, and the microphone as the user left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_devices_turn_media_off() {
    if roomler_netns::run_inside_namespace("lost_devices_turn_media_off", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let (alice_id, url) = (users[0].0, fixture.ws_url());
    let losing = MediaSetup {
        video: VideoInput::LostTestPattern {
            after_frames: FRAMES_BEFORE_LOSS,
        },
        audio: AudioInput::LostTone {
            hz: TONES_HZ[0],
            after_frames: AUDIO_FRAMES_BEFORE_LOSS,
        },
        ..MediaSetup::synthetic(TONES_HZ[0])
    };
    let alice = CallSession::join_with(&url, &users[0].1, room_id, options(0), losing)
        .await
        .unwrap();
    let bob = CallSession::join(&url, &users[1].1, room_id, options(1))
        .await
        .unwrap();
    wait_until("Bob decodes Alice's video and audio", || {
        find_stats(&bob, alice_id)
            .is_some_and(|stats| counter_advanced(&stats) && tone_matches(&stats, TONES_HZ[0]))
    })
    .await;

    // Both devices stop: Bob sees Alice's camera off and her microphone muted,
    // and Janus relays nothing more of either.
    wait_for_entry(&bob, alice_id, "with the camera off", |entry| {
        entry.camera_off
    })
    .await;
    wait_for_muted(&bob, alice_id, true).await;
    assert!(
        packets_stop(&bob, alice_id, true).await,
        "Alice's video kept arriving after her camera was lost"
    );
    assert!(
        packets_stop(&bob, alice_id, false).await,
        "Alice's audio kept arriving after her microphone was lost"
    );

    // Alice's session reports both losses, and refuses to turn the lost camera on.
    let mut media = alice.watch_media();
    let reported = tokio::time::timeout(
        MEDIA_TIMEOUT,
        media.wait_for(|state| {
            state.lost(DeviceKind::Camera).is_some() && state.lost(DeviceKind::Microphone).is_some()
        }),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    assert!(
        reported,
        "Alice's session did not report both devices: {:?}",
        alice.media_state()
    );
    let state = alice.media_state();
    assert!(state.camera_off, "{state:?}");
    assert!(state.muted, "{state:?}");
    assert!(
        matches!(
            state.lost(DeviceKind::Camera),
            Some(SourceError::DeviceLost {
                kind: DeviceKind::Camera,
                ..
            })
        ),
        "{state:?}"
    );
    assert!(
        alice.set_camera_off(false).await.is_err(),
        "the lost camera was turned on"
    );
    // While the microphone is lost, Alice decides to stay muted.
    alice.set_muted(true).await.unwrap();

    // Working devices: the clock pattern, whose counter differs from the lost
    // pattern's, and the tone.
    let before = stats_of(&bob.stats(), alice_id);
    let working = MediaSetup {
        video: VideoInput::ClockPattern,
        ..MediaSetup::synthetic(TONES_HZ[0])
    };
    alice.switch_media(&working).await.unwrap();
    wait_for_entry(&bob, alice_id, "with the camera on", |entry| {
        !entry.camera_off
    })
    .await;
    wait_until("Bob decodes Alice's new camera", || {
        find_stats(&bob, alice_id).is_some_and(|now| {
            now.video_frames_decoded > before.video_frames_decoded && now.latency_ms_mean.is_some()
        })
    })
    .await;
    let back = stats_of(&bob.stats(), alice_id);
    wait_until("the counter of Alice's new camera advances", || {
        find_stats(&bob, alice_id).is_some_and(|now| {
            now.frame_counter_max.unwrap_or(0)
                > back.frame_counter_max.unwrap_or(0) + COUNTER_ADVANCE
        })
    })
    .await;
    let state = alice.media_state();
    assert!(state.problems.is_empty(), "{state:?}");
    assert!(!state.camera_off, "{state:?}");
    assert!(
        state.muted,
        "Alice's own mute was lost in the switch: {state:?}"
    );
    assert!(
        bob.participants()
            .iter()
            .any(|entry| entry.user_id == alice_id && entry.muted),
        "{:?}",
        bob.participants()
    );

    // Unmuting the working microphone brings the audio back.
    let muted = stats_of(&bob.stats(), alice_id);
    alice.set_muted(false).await.unwrap();
    wait_for_muted(&bob, alice_id, false).await;
    wait_until("Alice's audio comes back", || {
        find_stats(&bob, alice_id)
            .is_some_and(|now| now.audio_packets_received > muted.audio_packets_received + 50)
    })
    .await;
    alice.leave().await.unwrap();
    bob.leave().await.unwrap();
}

/// An audience member whom a host invites to speak, and whose camera fails to
/// open, moves back to the audience by itself: the host sees the role change,
/// and the session reports why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_invitation_returns_to_audience() {
    if roomler_netns::run_inside_namespace("failed_invitation_returns_to_audience", &["janus"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (room_id, users) = fixture.room(2).await;
    let url = fixture.ws_url();
    let host_options = CallOptions {
        format: Some(CallFormat::Presentation),
        ..options(0)
    };
    let host = CallSession::join(&url, &users[0].1, room_id, host_options)
        .await
        .unwrap();
    let no_camera = MediaSetup {
        video: VideoInput::Camera {
            name: Some("No Such Camera".into()),
        },
        ..MediaSetup::synthetic(TONES_HZ[1])
    };
    let guest = CallSession::join_with(&url, &users[1].1, room_id, options(1), no_camera)
        .await
        .unwrap();
    assert_eq!(guest.role(), CallRole::Audience);
    let guest_id = users[1].0;
    wait_for_entry(&host, guest_id, "in the audience", |entry| {
        entry.role == CallRole::Audience
    })
    .await;

    // The invitation makes the guest a speaker on the server; its session fails to
    // open the camera and moves itself back.
    let mut role = guest.watch_role();
    host.invite_to_speak(guest_id).await.unwrap();
    let invited = tokio::time::timeout(
        MEDIA_TIMEOUT,
        role.wait_for(|role| *role == CallRole::Speaker),
    )
    .await
    .is_ok_and(|result| result.is_ok());
    assert!(invited, "the guest's session never became a speaker");
    wait_until("the guest's session returns to the audience", || {
        guest.role() == CallRole::Audience
    })
    .await;
    wait_for_entry(&host, guest_id, "back in the audience", |entry| {
        entry.role == CallRole::Audience && !entry.publishing
    })
    .await;

    let state = guest.media_state();
    let failed = state.problems.iter().find_map(|problem| match problem {
        MediaProblem::PublishFailed { error } => Some(error.clone()),
        MediaProblem::DeviceLost { .. } => None,
    });
    let error = failed.unwrap_or_else(|| panic!("no failed publish reported: {state:?}"));
    assert!(
        error.to_string().contains("\"No Such Camera\""),
        "the report does not name the camera: {error}"
    );

    // The guest receives the host, as any audience member does.
    wait_until("the guest decodes the host", || {
        find_stats(&guest, users[0].0)
            .is_some_and(|stats| counter_advanced(&stats) && tone_matches(&stats, TONES_HZ[0]))
    })
    .await;
    guest.leave().await.unwrap();
    host.leave().await.unwrap();
}

/// Drops `percent` of the UDP packets that arrive inside the namespace and match
/// `selector` (an nftables match such as `ip saddr 127.0.0.3`), at random, until
/// [`restore_udp`]. Media, RTCP, STUN and DTLS are all UDP; the WebSockets are not.
/// The drop happens on arrival, as on a real network: a drop on the way out would
/// fail the sender's `sendto`, which Janus notices and handles differently.
fn drop_udp(selector: &str, percent: u32) {
    // nftables takes `numgen random mod 100 < N` for N up to 99 only.
    let share = if percent >= 100 {
        String::new()
    } else {
        format!("numgen random mod 100 < {percent} ")
    };
    load_nft_rules(&format!(
        "table inet roomler_loss {{\n  chain input {{\n    type filter hook input priority 0;\n    \
         meta l4proto udp {selector} {share}drop\n  }}\n}}\n"
    ));
}

/// Loads nftables `rules` inside the test's namespace.
fn load_nft_rules(rules: &str) {
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("failed to run nft");
    nft.stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success(), "nft refused:\n{rules}");
}

fn restore_udp() {
    let status = Command::new("nft")
        .args(["delete", "table", "inet", "roomler_loss"])
        .status()
        .expect("failed to run nft");
    assert!(status.success(), "nft could not delete the loss table");
}

/// Joins two clients to one call and waits until each receives the other.
async fn two_in_call(fixture: &Fixture) -> (Vec<(Uuid, String)>, Vec<CallSession>) {
    let (room_id, users) = fixture.room(2).await;
    let sessions = join_everyone(fixture, room_id, &users, false).await;
    wait_until_flowing(&sessions, &users).await;
    check_everyone(&sessions, &users);
    (users, sessions)
}

/// How long the loss tests keep their loss on.
const LOSS_PERIOD: Duration = Duration::from_secs(8);
/// How long the NACK tests wait for Janus's first sender report and the receiver
/// report that refers to it, which each side sends once a second. Janus keeps no
/// packets for a subscriber's NACKs before that report.
const FIRST_REPORTS_WAIT: Duration = Duration::from_secs(2);

/// The nftables match of the packets that the clients (127.0.0.3) send to Janus
/// (127.0.0.2).
const TO_JANUS: &str = "ip saddr 127.0.0.3 ip daddr 127.0.0.2";
/// The nftables match of the packets that Janus sends to the clients.
const FROM_JANUS: &str = "ip saddr 127.0.0.2 ip daddr 127.0.0.3";

/// Drops 5 % of the UDP packets that match `selector` for [`LOSS_PERIOD`] in a
/// call of two, and checks client 1's video at client 0. NACK retransmissions
/// fill at least two thirds of the gaps, and with the PLIs after the rest the
/// picture goes on.
async fn check_nack_recovery(selector: &str) {
    let fixture = Fixture::start().await;
    let (users, sessions) = two_in_call(&fixture).await;
    tokio::time::sleep(FIRST_REPORTS_WAIT).await;

    let before = stats_of(&sessions[0].stats(), users[1].0);
    drop_udp(selector, 5);
    tokio::time::sleep(LOSS_PERIOD).await;
    let after = stats_of(&sessions[0].stats(), users[1].0);
    restore_udp();

    let received = after.video_packets_received - before.video_packets_received;
    let recovered = after.video_packets_recovered - before.video_packets_recovered;
    let lost = after.video_packets_lost - before.video_packets_lost;
    let frames = after.frame_counter_max.unwrap_or(0) - before.frame_counter_max.unwrap_or(0);
    println!("{received} packets, {recovered} recovered, {lost} lost, counter +{frames}");
    assert!(received > 100, "too little video arrived: {after:?}");
    assert!(
        recovered > 0,
        "no lost packet was retransmitted: before {before:?}, after {after:?}"
    );
    assert!(
        recovered >= 2 * lost,
        "NACK filled {recovered} gaps and left {lost} open: before {before:?}, after {after:?}"
    );
    // Half of the frames of the period, at 30 frames a second.
    let expected = LOSS_PERIOD.as_secs() as u32 * 15;
    assert!(
        frames > expected,
        "the frame counter moved on by {frames}, expected more than {expected}: {after:?}"
    );
    for session in sessions {
        session.leave().await.unwrap();
    }
}

/// With 5 % of the packets lost on the way to Janus and on the way back, NACK
/// retransmissions fill most gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_recovers_lost_video_packets() {
    if roomler_netns::run_inside_namespace("nack_recovers_lost_video_packets", &["janus", "nft"]) {
        return;
    }
    check_nack_recovery("").await;
}

/// With loss on the way to Janus only, Janus NACKs each simulcast layer of the
/// publisher, and the publisher resends on the layer's RTX stream. Janus accepts
/// those packets only with the `mid` and repaired RTP stream id that the
/// publisher adds, from which it learns the RTX stream's SSRC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_recovers_loss_to_janus() {
    if roomler_netns::run_inside_namespace("nack_recovers_loss_to_janus", &["janus", "nft"]) {
        return;
    }
    check_nack_recovery(TO_JANUS).await;
}

/// With loss on the way from Janus only, Janus resends from the packets it keeps
/// for the subscriber. It keeps them only once it computes a round trip of at
/// least 1 ms, which the subscriber's shortened DLSR gives it on this veth link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_recovers_loss_from_janus() {
    if roomler_netns::run_inside_namespace("nack_recovers_loss_from_janus", &["janus", "nft"]) {
        return;
    }
    check_nack_recovery(FROM_JANUS).await;
}

/// Under heavy loss on the way to Janus the loss controller lowers the bitrate
/// until it no longer carries the top simulcast layer, which then stops. Janus
/// falls back to a lower layer for a subscriber that requests the top one, so
/// its picture goes on. Once the loss ends, the top layer resumes with a keyframe
/// and reaches the subscriber again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_layer_stops_under_uplink_loss() {
    if roomler_netns::run_inside_namespace("top_layer_stops_under_uplink_loss", &["janus", "nft"]) {
        return;
    }
    let fixture = Fixture::start().await;
    let (users, sessions) = two_in_call(&fixture).await;
    let (subscriber, publisher) = (&sessions[0], &sessions[1]);
    let publisher_id = users[1].0;
    // A new subscription requests the full size, the default large tile's layer.
    wait_for_layer(subscriber, publisher_id, layer_size(Layer::High)).await;
    let before = publisher.sent_stats();
    assert_eq!(before.video_layers, ["h", "m", "l"], "{before:?}");

    drop_udp(TO_JANUS, 25);
    wait_until("the publisher stops its top layer", || {
        !publisher
            .sent_stats()
            .video_layers
            .contains(&"h".to_string())
    })
    .await;
    let stopped = publisher.sent_stats();
    println!("the top layer stopped: {stopped:?}");
    let full = layer_size(Layer::High);
    wait_until("the subscriber decodes a lower layer", || {
        decoded_size(&stats_of(&subscriber.stats(), publisher_id)).is_some_and(|size| size != full)
    })
    .await;
    let fallback = stats_of(&subscriber.stats(), publisher_id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = stats_of(&subscriber.stats(), publisher_id);
    restore_udp();

    println!("fallback {fallback:?}, two seconds later {later:?}");
    assert!(
        later.frame_counter_max > fallback.frame_counter_max.map(|max| max + COUNTER_ADVANCE),
        "the picture stalled on the lower layer: {fallback:?} then {later:?}"
    );
    let config = SimulcastConfig::new(VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_FPS, 450);
    let lowered = stopped.video_kbps.expect("the loss reports set no bitrate");
    assert!(
        !allocate(&config, lowered, None).sends(Layer::High),
        "the top layer stopped at {lowered} kbit/s, which carries it: {stopped:?}"
    );

    let resumed = wait_for_layer(subscriber, publisher_id, full).await;
    assert!(
        resumed.frame_counter_max > later.frame_counter_max,
        "the counter went back after the top layer resumed: {later:?} then {resumed:?}"
    );
    assert_eq!(publisher.sent_stats().video_layers, ["h", "m", "l"]);
    for session in sessions {
        session.leave().await.unwrap();
    }
}

/// A subscriber that starts showing a hidden feed asks for a keyframe (PLI),
/// Janus passes it on, and the publisher's encoder sends one, so the picture comes
/// back long before the next unrequested keyframe.
///
/// The feed is small before and after, so it stays on the lowest layer, which a
/// hidden feed receives too. A change of layer would make Janus ask for the
/// keyframe itself, and the subscriber would then need no PLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shown_feed_asks_the_publisher_for_a_keyframe() {
    if roomler_netns::run_inside_namespace(
        "shown_feed_asks_the_publisher_for_a_keyframe",
        &["janus"],
    ) {
        return;
    }
    let fixture = Fixture::start().await;
    let (users, sessions) = two_in_call(&fixture).await;
    let small = TileLayout::shown([(sessions[1].feed_id(), TileSize::Small)]);
    sessions[0].set_tile_layout(small.clone());
    wait_for_layer(&sessions[0], users[1].0, layer_size(Layer::Low)).await;

    sessions[0].set_tile_layout(TileLayout::shown([]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hidden = stats_of(&sessions[0].stats(), users[1].0);
    let requests_before = sessions[1].sent_stats().keyframe_requests;
    sessions[0].set_tile_layout(small);

    let resumed = || {
        let now = stats_of(&sessions[0].stats(), users[1].0);
        now.video_frames_decoded > hidden.video_frames_decoded + 5
    };
    wait_until("the hidden feed to show again", resumed).await;
    let shown = stats_of(&sessions[0].stats(), users[1].0);
    assert!(
        shown.video_keyframe_requests > hidden.video_keyframe_requests,
        "the subscriber sent no PLI: {shown:?}"
    );
    let sent = sessions[1].sent_stats();
    assert!(
        sent.keyframe_requests > requests_before,
        "no keyframe request reached the publisher: {sent:?}"
    );
    for session in sessions {
        session.leave().await.unwrap();
    }
}

/// When a quarter of what the publisher sends is lost, Janus's reception reports
/// carry the loss and the loss controller lowers the video bitrate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_loss_lowers_the_video_bitrate() {
    if roomler_netns::run_inside_namespace("heavy_loss_lowers_the_video_bitrate", &["janus", "nft"])
    {
        return;
    }
    let fixture = Fixture::start().await;
    let (_, sessions) = two_in_call(&fixture).await;
    let before = sessions[0].sent_stats();

    drop_udp(TO_JANUS, 25);
    tokio::time::sleep(LOSS_PERIOD).await;
    let during = sessions[0].sent_stats();
    restore_udp();

    println!("before {before:?}, during {during:?}");
    assert!(
        during.loss_reports > before.loss_reports,
        "Janus sent no reception report: {during:?}"
    );
    let start = before.video_kbps.unwrap_or(300);
    assert!(
        during
            .lowest_video_kbps
            .is_some_and(|lowest| lowest < start),
        "the bitrate stayed at {start} kbit/s: {during:?}"
    );
    for session in sessions {
        session.leave().await.unwrap();
    }
}

/// Two clients whose WebSockets reach different server replicas decode each other:
/// the replica that did not start the call passes their signaling to the one that
/// hosts it, and Janus's renegotiation offers come back the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_replicas_receive_each_other() {
    let name = "clients_on_two_replicas_receive_each_other";
    if roomler_netns::run_inside_namespace(name, &["janus", "redis-server"]) {
        return;
    }
    let redis = roomler_netns::Redis::start();
    let shared = tempfile::tempdir().unwrap();
    let database = shared.path().join("roomler.db").display().to_string();
    let replica = |settings: &mut Settings| {
        settings.db_conn = Some(database.clone());
        settings.ws_scaleout_enabled = true;
        settings.ws_scaleout_host = Some(redis.url());
    };
    let first = Fixture::start_with(&replica).await;
    let second = Fixture::start_with(&replica).await;
    let (room_id, users) = first.room(2).await;

    let mut sessions = Vec::new();
    for (index, fixture) in [&first, &second].into_iter().enumerate() {
        let token = &users[index].1;
        let session = CallSession::join(&fixture.ws_url(), token, room_id, options(index))
            .await
            .unwrap();
        sessions.push(session);
    }
    wait_until_flowing(&sessions, &users).await;
    check_everyone(&sessions, &users);
    for session in sessions {
        session.leave().await.unwrap();
    }
}
