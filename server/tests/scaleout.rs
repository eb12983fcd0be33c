//! Two server replicas sharing one SQLite file and one real Redis: events cross
//! replicas over the Redis bus, and a Redis restart loses nothing.
//!
//! Needs Debian's `redis-server` on the PATH (installers/test.sh installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis { port, child: None };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs; install Debian's redis-server package");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn start_replica(data_dir: &std::path::Path, redis_url: &str) -> (AppState, String) {
    let mut settings = Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        ws_scaleout_enabled: true,
        ws_scaleout_host: Some(redis_url.to_string()),
        ..Settings::default()
    };
    settings.rate_limit.enabled = false;
    let state = AppState::open(settings).unwrap();
    let server = Server::bind(state.clone()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run());
    (state, base)
}

async fn post(base: &str, token: Option<&str>, path: &str, body: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn register(base: &str, username: &str) -> String {
    let body = json!({"username": username, "email": format!("{username}@example.com"),
                      "password": "a long password"});
    let answer = post(base, None, "/api/auth/register", body).await;
    answer["token"].as_str().unwrap().to_string()
}

async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/api/ws", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // The hello frame, then a ping so that live events flow without waiting for resume.
    socket.next().await.unwrap().unwrap();
    futures_util::SinkExt::send(&mut socket, WsMessage::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    socket
}

/// Collects the bodies of `message.created` events until `count` arrived or nothing
/// came for `idle`, and checks that the user's sequence numbers have no gap.
async fn collect_bodies(socket: &mut Socket, count: usize, idle: Duration) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut last_seq: Option<i64> = None;
    while bodies.len() < count {
        let Ok(Some(Ok(frame))) = tokio::time::timeout(idle, socket.next()).await else {
            break;
        };
        let WsMessage::Text(text) = frame else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        let Some(seq) = value["seq"].as_i64() else {
            continue;
        };
        if value["type"].as_str().is_none_or(|kind| kind.contains('.')) {
            if let Some(last) = last_seq {
                assert_eq!(seq, last + 1, "a gap or repeat in the event stream");
            }
            last_seq = Some(seq);
        }
        if value["type"] == "message.created" {
            bodies.push(value["data"]["body"].as_str().unwrap().to_string());
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_bus_joins_replicas_across_restart() {
    let mut redis = Redis::start();
    let data = tempfile::tempdir().unwrap();
    let (_state_a, replica_a) = start_replica(data.path(), &redis.url()).await;
    let (_state_b, replica_b) = start_replica(data.path(), &redis.url()).await;

    let alice = register(&replica_a, "alice").await;
    let bob = register(&replica_b, "bob").await;
    let carol = register(&replica_a, "carol").await;
    let room = post(
        &replica_a,
        Some(&alice),
        "/api/rooms",
        json!({"name": "general", "kind": "public"}),
    )
    .await;
    let room_id = room["id"].as_str().unwrap().to_string();
    post(
        &replica_b,
        Some(&bob),
        "/api/rooms/join",
        json!({"name": "general"}),
    )
    .await;
    post(
        &replica_a,
        Some(&carol),
        "/api/rooms/join",
        json!({"name": "general"}),
    )
    .await;

    let mut bob_socket = connect(&replica_b, &bob).await;
    let mut carol_socket = connect(&replica_a, &carol).await;
    // Give both subscriptions a moment to be in place.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let total = 60;
    let path = format!("/api/rooms/{room_id}/messages");
    for index in 0..total {
        if index == 20 {
            redis.stop();
        }
        if index == 40 {
            redis.restart();
        }
        let body = json!({"body": format!("message {index}"), "client_id": format!("m{index}")});
        post(&replica_a, Some(&alice), &path, body).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let expected: Vec<String> = (0..total).map(|index| format!("message {index}")).collect();
    let carol_bodies = collect_bodies(&mut carol_socket, total, Duration::from_secs(5)).await;
    assert_eq!(
        carol_bodies, expected,
        "carol, on the posting replica, missed events"
    );
    let bob_bodies = collect_bodies(&mut bob_socket, total, Duration::from_secs(30)).await;
    assert_eq!(
        bob_bodies, expected,
        "bob, on the other replica, missed or repeated events"
    );
}

#[tokio::test]
async fn scaleout_without_host_is_rejected() {
    let data = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: data.path().to_path_buf(),
        ws_scaleout_enabled: true,
        ..Settings::default()
    };
    let error = AppState::open(settings)
        .err()
        .expect("an error")
        .to_string();
    assert!(error.contains("WS_SCALEOUT_HOST"), "{error}");
}
