//! Calls through the Janus settings that the compose deployment ships
//! (installers/janus). Janus starts through the image's entrypoint.sh with the
//! values that compose passes. The real server reaches it with ROOMLER_JANUS_URLS,
//! ROOMLER_JANUS_API_SECRET and ROOMLER_JANUS_ADMIN_KEY.
//!
//! Each test runs inside a network namespace of its own (see `roomler-netns`). A
//! bridge there, `br-janus` with 172.30.88.1/24, takes the place of the compose
//! network `janus` and its gateway, on which Janus listens. Only the folders differ from
//! the image: the entrypoint reads installers/janus and writes into a temporary
//! folder. The tests need root, `janus` and `hostname`; without them they print why
//! they are skipped and pass.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use support::{Client, publisher_offer, reply};

/// The defaults of JANUS_API_GATEWAY and JANUS_API_SUBNET in installers/compose.yaml.
const GATEWAY: &str = "172.30.88.1";
const SUBNET: &str = "172.30.88.0/24";
const API_SECRET: &str = "janus-config-test-api-secret";
const ADMIN_KEY: &str = "janus-config-test-admin-key";
const PASSWORD: &str = "correct horse battery";
/// How long Janus may take to open its WebSocket port.
const JANUS_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Janus started by installers/janus/entrypoint.sh, killed when dropped.
struct Janus {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Janus {
    /// Adds the stand-in for the compose network's bridge and starts Janus on it.
    fn start() -> Self {
        roomler_netns::ip(&["link", "add", "br-janus", "type", "bridge"]);
        roomler_netns::ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "br-janus"]);
        roomler_netns::ip(&["link", "set", "br-janus", "up"]);

        let installers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers/janus");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("janus.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new("bash")
            .arg(installers.join("entrypoint.sh"))
            .env("JANUS_CONFIG_SOURCE", &installers)
            .env("JANUS_CONFIG_DIR", dir.path().join("run"))
            .env("JANUS_API_SECRET", API_SECRET)
            .env("JANUS_ADMIN_KEY", ADMIN_KEY)
            .env("JANUS_WS_IP", GATEWAY)
            .env("JANUS_WS_SUBNET", SUBNET)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("failed to run bash");
        let janus = Janus {
            child,
            log,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + JANUS_START_TIMEOUT;
        while std::net::TcpStream::connect((GATEWAY, 8188)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "Janus did not listen on {GATEWAY}:8188 within {JANUS_START_TIMEOUT:?}:\n{}",
                janus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        janus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's log lines, kept for checks on the errors it logs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Sends the server's warnings here and to standard error, for this process.
    fn install() -> Self {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("roomler_server=warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        buffer
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        std::io::stderr().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A server whose calls go to the Janus on the gateway address.
struct Roomler {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

impl Drop for Roomler {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

impl Roomler {
    async fn start(api_secret: &str, admin_key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            janus_urls: vec![format!("ws://{GATEWAY}:8188")],
            janus_api_secret: Some(api_secret.into()),
            janus_admin_key: Some(admin_key.into()),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state.clone()).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        tokio::spawn(server.run());
        Roomler {
            base,
            state,
            _dir: dir,
        }
    }

    async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Registers two users, the first creating a public room that the second
    /// joins, and connects both to the live WebSocket.
    async fn room_with_two_members(&self) -> (String, [Client; 2]) {
        let mut tokens = Vec::new();
        for username in ["alice", "bob"] {
            let body = json!({"username": username, "email": format!("{username}@example.com"),
                "password": PASSWORD});
            let registered = self.post(None, "/api/auth/register", body).await;
            tokens.push(registered["token"].as_str().unwrap().to_string());
        }
        let room = json!({"name": "standup", "kind": "public"});
        let room = self.post(Some(&tokens[0]), "/api/rooms", room).await;
        let joined = json!({"name": "standup"});
        self.post(Some(&tokens[1]), "/api/rooms/join", joined).await;
        let alice = Client::connect(&self.base, &tokens[0]).await;
        let bob = Client::connect(&self.base, &tokens[1]).await;
        (room["id"].as_str().unwrap().to_string(), [alice, bob])
    }
}

/// Opens a Janus API WebSocket to the gateway from the local address `source`,
/// sends `info`, and returns Janus's reply, or `None` when Janus closed the
/// connection or never replied within 5 s.
async fn janus_info_from(source: &str) -> Option<Value> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = socket
        .connect(format!("{GATEWAY}:8188").parse().unwrap())
        .await
        .unwrap();
    let mut request = format!("ws://{GATEWAY}:8188")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("janus-protocol"),
    );
    let Ok((mut websocket, _)) = tokio_tungstenite::client_async(request, stream).await else {
        return None;
    };
    let info = json!({"janus": "info", "transaction": "acl"}).to_string();
    websocket.send(WsMessage::Text(info.into())).await.ok()?;
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = websocket.next().await {
            if let WsMessage::Text(text) = message {
                return serde_json::from_str(text.as_str()).ok();
            }
        }
        None
    });
    reply.await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_janus_places_calls() {
    if roomler_netns::run_inside_namespace("shipped_janus_places_calls", &["janus", "hostname"]) {
        return;
    }
    let _log = LogBuffer::install();
    let janus = Janus::start();
    let roomler = Roomler::start(API_SECRET, ADMIN_KEY).await;
    let (room_id, [mut alice, mut bob]) = roomler.room_with_two_members().await;

    // Alice starts the call, which creates a VideoRoom room with a numeric id.
    let joined = alice.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(reply(&joined)["result"], "joined", "{}", janus.log());
    let alice_feed = reply(&joined)["feed_id"].as_u64().unwrap();

    // Janus answers her offer, with its own candidates in the SDP (half-trickle).
    let published = alice
        .call(
            &room_id,
            json!({"action": "publish", "jsep": publisher_offer()}),
        )
        .await;
    let answer = &reply(&published)["jsep"];
    assert_eq!(answer["type"], "answer");
    let sdp = answer["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=candidate:"), "no candidate in {sdp}");
    assert!(sdp.contains("opus/48000"), "no Opus in {sdp}");
    assert!(sdp.contains("VP8/90000"), "no VP8 in {sdp}");

    // Bob joins the same call and gets Alice in its participant list.
    let joined = bob.call(&room_id, json!({"action": "join"})).await;
    let participants = reply(&joined)["participants"].clone();
    assert_eq!(participants.as_array().unwrap().len(), 1, "{participants}");
    assert_eq!(participants[0]["feed_id"], alice_feed);

    let left = bob.call(&room_id, json!({"action": "leave"})).await;
    assert_eq!(reply(&left)["result"], "left");
    let left = alice.call(&room_id, json!({"action": "leave"})).await;
    assert_eq!(reply(&left)["result"], "left");

    // The WebSocket API replies to clients in the janus subnet, such as the
    // gateway itself, and rejects others (here 127.0.0.2, outside the subnet).
    let inside = janus_info_from(GATEWAY).await;
    assert_eq!(
        inside.as_ref().map(|reply| reply["janus"].clone()),
        Some(json!("server_info")),
        "{inside:?}"
    );
    let outside = janus_info_from(roomler_netns::JANUS_IP).await;
    assert!(
        outside.is_none(),
        "Janus replied outside its ws_acl: {outside:?}"
    );
    let log = janus.log();
    assert!(
        log.contains("127.0.0.2 is unauthorized"),
        "Janus did not log the refusal:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_janus_secrets_fail_joins() {
    if roomler_netns::run_inside_namespace("wrong_janus_secrets_fail_joins", &["janus", "hostname"])
    {
        return;
    }
    let log = LogBuffer::install();
    let _janus = Janus::start();

    // A wrong admin key: Janus rejects the creation of the call's room.
    let roomler = Roomler::start(API_SECRET, "not-the-admin-key").await;
    let (room_id, [mut alice, _]) = roomler.room_with_two_members().await;
    let refused = alice.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(refused["type"], "call_error", "{refused}");
    assert_eq!(refused["code"], "media_server_error", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("create the call"), "{message}");
    let logged = log.text();
    assert!(
        logged.contains(
            r#"Janus rejected the videoroom request "create": Unauthorized (wrong admin_key)"#
        ),
        "{logged}"
    );
    drop(roomler);

    // A wrong API secret: Janus rejects the session before any room.
    let roomler = Roomler::start("not-the-api-secret", ADMIN_KEY).await;
    let (room_id, [mut alice, _]) = roomler.room_with_two_members().await;
    let refused = alice.call(&room_id, json!({"action": "join"})).await;
    assert_eq!(refused["type"], "call_error", "{refused}");
    assert_eq!(refused["code"], "media_server_error", "{refused}");
    let logged = log.text();
    assert!(
        logged.contains(
            r#"Janus rejected "create": Unauthorized request (wrong or missing secret/token)"#
        ),
        "{logged}"
    );
}
