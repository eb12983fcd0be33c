//! A server on an ephemeral port with its own data folder, and clients for it.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use roomler_server::config::Settings;
use roomler_server::{AppState, Server};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";

/// How long a test waits for an event that should arrive.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    pub dir: TempDir,
    http: reqwest::Client,
}

impl TestServer {
    /// Starts a server with rate limits off, so tests can register freely.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, configure).await
    }

    /// Starts a server on an existing data folder, e.g. to restart on the same data.
    pub async fn start_in(dir: TempDir, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.rate_limit.enabled = false;
        configure(&mut settings);

        let state = AppState::open(settings).unwrap();
        let server = Server::bind(state.clone()).await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run());
        TestServer {
            base: format!("http://{addr}"),
            addr,
            state,
            dir,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the server the way SIGTERM does and returns its data folder.
    pub async fn stop(self) -> TempDir {
        self.state.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request without a token.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn register(&self, username: &str) -> TestUser {
        let body = json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        let response = self
            .http
            .post(self.url("/api/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {username}"
        );
        let value: Value = response.json().await.unwrap();
        TestUser {
            id: value["user"]["id"].as_str().unwrap().parse().unwrap(),
            username: username.to_string(),
            token: value["token"].as_str().unwrap().to_string(),
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub token: String,
    pub base: String,
    http: reqwest::Client,
}

/// A response's status and JSON body (`Value::Null` when it has none).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The `error.message` of an error answer.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

impl TestUser {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Answer {
        answer(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        answer(
            self.request(reqwest::Method::DELETE, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        answer(
            self.request(reqwest::Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        answer(
            self.request(reqwest::Method::PUT, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        answer(
            self.request(reqwest::Method::PATCH, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Creates a room and returns its id.
    pub async fn create_room(&self, body: Value) -> Uuid {
        let answer = self.post("/api/rooms", body).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "create room: {}",
            answer.body
        );
        answer.body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn create_public_room(&self, name: &str) -> Uuid {
        self.create_room(json!({"name": name, "kind": "public"}))
            .await
    }

    pub async fn join(&self, name: &str) -> Answer {
        self.post("/api/rooms/join", json!({"name": name})).await
    }

    /// Posts a message with a fresh client id and returns it.
    pub async fn send(&self, room_id: Uuid, body: &str) -> Value {
        let request = json!({"body": body, "client_id": Uuid::new_v4().to_string()});
        let answer = self
            .post(&format!("/api/rooms/{room_id}/messages"), request)
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "send: {}", answer.body);
        answer.body
    }

    pub async fn connect(&self) -> WsClient {
        self.connect_path("/api/ws").await
    }

    pub async fn connect_path(&self, path: &str) -> WsClient {
        let url = format!("{}{path}", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        let header = format!("Bearer {}", self.token).parse().unwrap();
        request.headers_mut().insert("authorization", header);
        let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut client = WsClient { stream };
        let hello = client.next_frame().await.expect("a hello frame");
        assert_eq!(hello["type"], "hello", "first frame: {hello}");
        client
    }
}

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// The next JSON frame, or `None` when the connection closed or nothing came in time.
    pub async fn next_frame(&mut self) -> Option<Value> {
        self.next_frame_within(EVENT_TIMEOUT).await
    }

    pub async fn next_frame_within(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match message {
                WsMessage::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
                WsMessage::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next event of `kind`, skipping other frames.
    pub async fn next_event(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next_frame()
                .await
                .unwrap_or_else(|| panic!("no {kind} event"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.stream
            .send(WsMessage::Text(value.to_string().into()))
            .await
            .unwrap();
    }
}
