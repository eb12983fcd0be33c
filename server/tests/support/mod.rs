//! What the call tests share: a WebSocket client that sends call requests and
//! keeps every frame it received, and a publisher's SDP offer.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a call reply or event may take; a first join also starts Janus.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket, with every frame it received kept for later checks.
pub struct Client {
    socket: Socket,
    next_request: u64,
    /// Every text frame received, in order.
    pub seen: Vec<String>,
}

impl Client {
    /// Opens the live WebSocket of the server at `base` (`http://...`) with `token`,
    /// and starts its live events at once.
    pub async fn connect(base: &str, token: &str) -> Self {
        let url = format!(
            "{}/api/ws?access_token={token}",
            base.replacen("http", "ws", 1)
        );
        let request = url.into_client_request().unwrap();
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
            .send(WsMessage::Text(r#"{"type":"ping"}"#.into()))
            .await
            .unwrap();
        Client {
            socket,
            next_request: 1,
            seen: Vec::new(),
        }
    }

    /// Returns the next message, or `None` once the WebSocket closed.
    pub async fn next_message(&mut self) -> Option<WsMessage> {
        tokio::time::timeout(REPLY_TIMEOUT, self.socket.next())
            .await
            .expect("timed out waiting for a frame")
            .and_then(Result::ok)
    }

    pub async fn next_frame(&mut self) -> Value {
        loop {
            let message = self.next_message().await.expect("the WebSocket closed");
            if let WsMessage::Text(text) = message {
                self.seen.push(text.to_string());
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// Sends a call request and returns its `call_reply` or `call_error` frame.
    pub async fn call(&mut self, room_id: &str, request: Value) -> Value {
        let request_id = self.next_request;
        self.next_request += 1;
        let frame = json!({"type": "call", "request_id": request_id, "room_id": room_id,
            "request": request});
        self.socket
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .unwrap();
        loop {
            let frame = self.next_frame().await;
            let kind = frame["type"].as_str().unwrap_or_default();
            if (kind == "call_reply" || kind == "call_error") && frame["request_id"] == request_id {
                return frame;
            }
        }
    }

    /// Waits for a `call_event` whose `event.event` is `name`.
    pub async fn event(&mut self, name: &str) -> Value {
        loop {
            let frame = self.next_frame().await;
            if frame["type"] == "call_event" && frame["event"]["event"] == name {
                return frame["event"].clone();
            }
        }
    }

    /// Waits for the `participant_joined` event about `user_id`, skipping others,
    /// such as the client's own join, which may arrive after its reply.
    pub async fn joined_event(&mut self, user_id: &str) -> Value {
        loop {
            let event = self.event("participant_joined").await;
            if event["participant"]["user_id"] == user_id {
                return event;
            }
        }
    }

    /// Waits for the `call_signal` of type `removed` and returns its reason.
    pub async fn removed_reason(&mut self) -> String {
        loop {
            let frame = self.next_frame().await;
            if frame["type"] == "call_signal" && frame["signal"]["signal"] == "removed" {
                return frame["signal"]["reason"].as_str().unwrap().to_string();
            }
        }
    }
}

/// Sends the server's logs to the test output, at the levels of `RUST_LOG` or
/// warnings by default.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "roomler_server=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Sends an authenticated GET to the server at `base` and returns the JSON body.
pub async fn get_json(base: &str, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Returns the reply of a `call_reply` frame, failing on anything else.
pub fn reply(frame: &Value) -> &Value {
    assert_eq!(frame["type"], "call_reply", "expected a reply: {frame}");
    &frame["reply"]
}

/// A publisher's SDP offer with Opus and VP8, as a browser or the `webrtc` crate
/// writes one. Janus answers it; no media flows, since nobody holds its ICE ends.
pub fn publisher_offer() -> Value {
    let fingerprint = (0..32)
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let sdp = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        &format!("a=fingerprint:sha-256 {fingerprint}"),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendonly",
        "a=msid:stream audio",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:1111 cname:test",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        &format!("a=fingerprint:sha-256 {fingerprint}"),
        "a=setup:actpass",
        "a=mid:1",
        "a=sendonly",
        "a=msid:stream video",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
        "a=ssrc:2222 cname:test",
        "",
    ]
    .join("\r\n");
    json!({"type": "offer", "sdp": sdp})
}
