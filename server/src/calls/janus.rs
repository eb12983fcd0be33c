//! A client of the Janus Gateway API over its WebSocket transport.
//!
//! One [`JanusLink`] is one WebSocket to one Janus instance; many sessions share it.
//! Every request carries a transaction id, and the reader task hands each reply to
//! the request waiting for that transaction. Requests to a plugin that Janus answers
//! asynchronously get an `ack` first and the result later as an `event` with the same
//! transaction; [`Handle::message`] waits for that event. Events without a waiting
//! transaction (`webrtcup`, `hangup`, `slowlink`, plugin notifications) go to the
//! [`Handle`] they name.
//!
//! Janus closes a session after 60 s without a request, so every [`Session`] sends a
//! `keepalive` every [`KEEPALIVE_INTERVAL`] until it is destroyed or dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;

/// The WebSocket subprotocol of the Janus API.
const SUBPROTOCOL: &str = "janus-protocol";
/// Janus's default session timeout is 60 s; a keepalive every 25 s leaves room for
/// one lost keepalive.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);
/// How long a request waits for Janus's answer. Plugin requests that negotiate media
/// (publish, subscribe) answer within a second on a loaded machine; 15 s only
/// catches a Janus that hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub const VIDEOROOM: &str = "janus.plugin.videoroom";

#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error("failed to connect to Janus at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the connection to Janus closed")]
    Closed,
    #[error("Janus did not answer {request} within {secs} s", secs = REQUEST_TIMEOUT.as_secs())]
    Timeout { request: String },
    #[error("Janus rejected {request}: {reason} (code {code})")]
    Rejected {
        request: String,
        code: i64,
        reason: String,
    },
    #[error("unexpected answer from Janus to {request}: {answer}")]
    Protocol { request: String, answer: String },
}

pub type JanusResult<T> = Result<T, JanusError>;

/// A reply to a request: how far to wait.
struct Pending {
    /// Whether the request is finished only by an `event`, after the `ack`.
    wants_event: bool,
    reply: oneshot::Sender<Value>,
}

/// One WebSocket to a Janus instance.
pub struct JanusLink {
    url: String,
    api_secret: Option<String>,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Mutex<HashMap<String, Pending>>,
    handles: Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>,
    next_transaction: AtomicU64,
    /// Cancelled when the WebSocket closes.
    closed: CancellationToken,
}

impl JanusLink {
    /// Connects to `url` (`ws://host:port`) and starts the reader and writer tasks.
    pub async fn connect(url: &str, api_secret: Option<String>) -> JanusResult<Arc<Self>> {
        let connect_error = |reason: String| JanusError::Connect {
            url: url.to_string(),
            reason,
        };
        let mut request = url
            .into_client_request()
            .map_err(|error| connect_error(error.to_string()))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let (socket, _) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| connect_error("timed out".into()))?
                .map_err(|error| connect_error(error.to_string()))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<String>();
        let link = Arc::new(JanusLink {
            url: url.to_string(),
            api_secret,
            outgoing,
            pending: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_transaction: AtomicU64::new(1),
            closed: CancellationToken::new(),
        });

        let closed = link.closed.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    text = outgoing_rx.recv() => {
                        let Some(text) = text else { break };
                        if sink.send(WsMessage::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    () = closed.cancelled() => break,
                }
            }
            let _ = sink.close().await;
            closed.cancel();
        });

        let reader = Arc::downgrade(&link);
        let closed = link.closed.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let WsMessage::Text(text) = message else {
                    continue;
                };
                let Some(link) = reader.upgrade() else { break };
                match serde_json::from_str::<Value>(text.as_str()) {
                    Ok(value) => link.dispatch(value),
                    Err(error) => tracing::warn!(%error, "Janus sent a frame that is not JSON"),
                }
            }
            closed.cancel();
            if let Some(link) = reader.upgrade() {
                tracing::warn!(url = %link.url, "the WebSocket to Janus closed");
                link.pending.lock().unwrap().clear();
                link.handles.lock().unwrap().clear();
            }
        });
        Ok(link)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Closes the WebSocket; requests in flight fail with [`JanusError::Closed`].
    pub fn close(&self) {
        self.closed.cancel();
    }

    fn dispatch(&self, value: Value) {
        let kind = value["janus"].as_str().unwrap_or_default();
        if let Some(transaction) = value["transaction"].as_str() {
            let mut pending = self.pending.lock().unwrap();
            if let Some(waiting) = pending.get(transaction) {
                let finished = !(kind == "ack" && waiting.wants_event);
                if finished {
                    let waiting = pending.remove(transaction).unwrap();
                    let _ = waiting.reply.send(value);
                }
                return;
            }
        }
        let Some(sender) = value["sender"].as_u64() else {
            tracing::debug!(kind, "Janus event for no handle");
            return;
        };
        let handles = self.handles.lock().unwrap();
        if let Some(events) = handles.get(&sender) {
            let _ = events.send(value);
        }
    }

    /// Sends `body` (with a fresh transaction and the API secret) and waits for the
    /// reply, or for the `event` after the `ack` when `wants_event`.
    async fn request(&self, mut body: Value, wants_event: bool) -> JanusResult<Value> {
        let name = describe(&body);
        let transaction = self
            .next_transaction
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        body["transaction"] = json!(transaction);
        if let Some(secret) = &self.api_secret {
            body["apisecret"] = json!(secret);
        }
        let (reply, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap()
            .insert(transaction.clone(), Pending { wants_event, reply });
        if self.is_closed() || self.outgoing.send(body.to_string()).is_err() {
            self.pending.lock().unwrap().remove(&transaction);
            return Err(JanusError::Closed);
        }
        let answer = tokio::select! {
            answer = tokio::time::timeout(REQUEST_TIMEOUT, answer) => answer,
            () = self.closed.cancelled() => return Err(JanusError::Closed),
        };
        let value = match answer {
            Ok(Ok(value)) => value,
            Ok(Err(_)) => return Err(JanusError::Closed),
            Err(_) => {
                self.pending.lock().unwrap().remove(&transaction);
                return Err(JanusError::Timeout { request: name });
            }
        };
        if value["janus"] == "error" {
            return Err(JanusError::Rejected {
                request: name,
                code: value["error"]["code"].as_i64().unwrap_or_default(),
                reason: value["error"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        Ok(value)
    }

    /// Creates a session, with its keepalive task.
    pub async fn create_session(self: &Arc<Self>) -> JanusResult<Session> {
        let reply = self.request(json!({"janus": "create"}), false).await?;
        let id = reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| protocol("create", &reply))?;
        let keepalive = CancellationToken::new();
        tokio::spawn(keep_alive(Arc::downgrade(self), id, keepalive.clone()));
        Ok(Session {
            link: self.clone(),
            id,
            keepalive,
        })
    }
}

async fn keep_alive(link: std::sync::Weak<JanusLink>, session_id: u64, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(KEEPALIVE_INTERVAL) => {}
            () = stop.cancelled() => return,
        }
        let Some(link) = link.upgrade() else { return };
        let keepalive = json!({"janus": "keepalive", "session_id": session_id});
        match link.request(keepalive, false).await {
            Ok(_) => {}
            Err(JanusError::Closed) => return,
            Err(error) => tracing::warn!(%error, session_id, "a Janus keepalive failed"),
        }
    }
}

fn describe(body: &Value) -> String {
    match body["body"]["request"].as_str() {
        Some(request) => format!("the videoroom request {request:?}"),
        None => format!("{:?}", body["janus"].as_str().unwrap_or("a request")),
    }
}

fn protocol(request: &str, answer: &Value) -> JanusError {
    JanusError::Protocol {
        request: request.to_string(),
        answer: truncate(answer.to_string()),
    }
}

fn truncate(mut text: String) -> String {
    const MAX: usize = 300;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A Janus session. Dropping it stops the keepalive, so Janus ends it within 60 s;
/// [`Session::destroy`] ends it at once.
pub struct Session {
    link: Arc<JanusLink>,
    pub id: u64,
    keepalive: CancellationToken,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keepalive.cancel();
    }
}

impl Session {
    pub fn link(&self) -> &Arc<JanusLink> {
        &self.link
    }

    /// Attaches a handle to `plugin`; the receiver gets the handle's events.
    pub async fn attach(&self, plugin: &str) -> JanusResult<(Handle, HandleEvents)> {
        let body = json!({"janus": "attach", "session_id": self.id, "plugin": plugin});
        let reply = self.link.request(body, false).await?;
        let id = reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| protocol("attach", &reply))?;
        let (sender, receiver) = mpsc::unbounded_channel();
        self.link.handles.lock().unwrap().insert(id, sender);
        let handle = Handle {
            link: self.link.clone(),
            session_id: self.id,
            id,
        };
        Ok((handle, receiver))
    }

    /// Destroys the session and its handles in Janus.
    pub async fn destroy(&self) -> JanusResult<()> {
        self.keepalive.cancel();
        let body = json!({"janus": "destroy", "session_id": self.id});
        self.link.request(body, false).await.map(|_| ())
    }
}

/// The events Janus sends about one handle, each the whole JSON message.
pub type HandleEvents = mpsc::UnboundedReceiver<Value>;

/// A plugin handle inside a session.
#[derive(Clone)]
pub struct Handle {
    link: Arc<JanusLink>,
    session_id: u64,
    pub id: u64,
}

/// A plugin's answer: its `plugindata.data` and the session description, if any.
#[derive(Debug, Clone)]
pub struct PluginReply {
    pub data: Value,
    pub jsep: Option<Value>,
}

impl Handle {
    fn envelope(&self, kind: &str) -> Value {
        json!({"janus": kind, "session_id": self.session_id, "handle_id": self.id})
    }

    /// Sends a plugin request that Janus answers at once (`create`, `destroy`,
    /// `listparticipants`, ...).
    pub async fn request(&self, body: Value) -> JanusResult<Value> {
        let reply = self.send(body, None, false).await?;
        Ok(reply.data)
    }

    /// Sends a plugin request that Janus answers with an event (`join`, `publish`,
    /// `configure`, `start`, `update`), with an optional session description.
    pub async fn message(&self, body: Value, jsep: Option<Value>) -> JanusResult<PluginReply> {
        self.send(body, jsep, true).await
    }

    async fn send(
        &self,
        body: Value,
        jsep: Option<Value>,
        wants_event: bool,
    ) -> JanusResult<PluginReply> {
        let request = body["request"].as_str().unwrap_or("?").to_string();
        let mut message = self.envelope("message");
        message["body"] = body;
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        let reply = self.link.request(message, wants_event).await?;
        let data = reply["plugindata"]["data"].clone();
        if data.is_null() {
            return Err(protocol(&request, &reply));
        }
        if let Some(error) = data["error"].as_str() {
            return Err(JanusError::Rejected {
                request: format!("the videoroom request {request:?}"),
                code: data["error_code"].as_i64().unwrap_or_default(),
                reason: error.to_string(),
            });
        }
        let jsep = reply.get("jsep").filter(|jsep| !jsep.is_null()).cloned();
        Ok(PluginReply { data, jsep })
    }

    /// Trickles one candidate (`{candidate, sdpMid, sdpMLineIndex}`), or
    /// `{"completed": true}`.
    pub async fn trickle(&self, candidate: Value) -> JanusResult<()> {
        let mut message = self.envelope("trickle");
        message["candidate"] = candidate;
        self.link.request(message, false).await.map(|_| ())
    }

    /// Hangs up the handle's peer connection, if it has one; the handle stays
    /// attached and may negotiate a new one.
    pub async fn hangup(&self) -> JanusResult<()> {
        let message = self.envelope("hangup");
        self.link.request(message, false).await.map(|_| ())
    }

    /// Detaches the handle, which hangs up its peer connection.
    pub async fn detach(&self) -> JanusResult<()> {
        let message = self.envelope("detach");
        let result = self.link.request(message, false).await.map(|_| ());
        self.link.handles.lock().unwrap().remove(&self.id);
        result
    }

    /// Stops routing this handle's events, e.g. after its session was destroyed.
    pub fn forget(&self) {
        self.link.handles.lock().unwrap().remove(&self.id);
    }
}
