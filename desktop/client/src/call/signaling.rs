//! Call signaling over its own connection to `GET /api/ws`.
//!
//! Each request gets a fresh `request_id`. The reader task hands the matching
//! `call_reply` or `call_error` to the waiting request, and sends every
//! `call_event` and `call_signal` of the room to the notices receiver that
//! [`CallSignaling::connect`] returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomler_shared::call::{CallErrorCode, CallEvent, CallReply, CallRequest, CallSignal};
use roomler_shared::ws::{ClientFrame, Control, ServerFrame};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a call request waits for its reply; a join may start the server's Janus.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    #[error("failed to open the WebSocket for the call: {0}")]
    Connect(String),
    #[error("the call's WebSocket closed")]
    Closed,
    #[error("the server did not answer the call request {action} within {secs} s",
        secs = REPLY_TIMEOUT.as_secs())]
    Timeout { action: &'static str },
    #[error("the server rejected the call request {action} ({code:?}): {message}")]
    Rejected {
        action: &'static str,
        code: CallErrorCode,
        message: String,
    },
}

/// A `call_event` or `call_signal` from the server.
#[derive(Debug, Clone)]
pub enum Notice {
    Event(CallEvent),
    Signal(CallSignal),
}

type Waiting =
    Arc<Mutex<HashMap<u64, oneshot::Sender<Result<CallReply, (CallErrorCode, String)>>>>>;

/// One room's call signaling.
pub struct CallSignaling {
    room_id: Uuid,
    outgoing: mpsc::UnboundedSender<String>,
    waiting: Waiting,
    next_request: AtomicU64,
    /// Cancelled when the WebSocket closes.
    closed: CancellationToken,
}

impl CallSignaling {
    /// Opens a WebSocket to `ws_url` with `token` and returns the signaling and the
    /// receiver of the room's notices.
    pub async fn connect(
        ws_url: &str,
        token: &str,
        room_id: Uuid,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Notice>), SignalingError> {
        let mut request = ws_url
            .into_client_request()
            .map_err(|error| SignalingError::Connect(error.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|error| SignalingError::Connect(error.to_string()))?;
        request.headers_mut().insert("authorization", bearer);
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|error| SignalingError::Connect(error.to_string()))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<String>();
        let (notices, notices_rx) = mpsc::unbounded_channel();
        let waiting: Waiting = Arc::default();

        tokio::spawn(async move {
            while let Some(text) = outgoing_rx.recv().await {
                if sink.send(WsMessage::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });
        let replies = waiting.clone();
        let closed = CancellationToken::new();
        let reader_closed = closed.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let WsMessage::Text(text) = message else {
                    continue;
                };
                let Ok(ServerFrame::Control(control)) = serde_json::from_str(text.as_str()) else {
                    continue;
                };
                dispatch(control, room_id, &replies, &notices);
            }
            replies.lock().unwrap().clear();
            reader_closed.cancel();
        });

        // Any first frame starts the live stream without a replay.
        let ping = serde_json::to_string(&ClientFrame::Ping).expect("a ping serializes");
        let _ = outgoing.send(ping);
        let signaling = CallSignaling {
            room_id,
            outgoing,
            waiting,
            next_request: AtomicU64::new(1),
            closed,
        };
        Ok((signaling, notices_rx))
    }

    /// Waits until the WebSocket closes, whichever side closed it.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// Sends `request` and waits for its reply.
    pub async fn request(&self, request: CallRequest) -> Result<CallReply, SignalingError> {
        let action = request.action();
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.waiting.lock().unwrap().insert(request_id, reply);
        let frame = ClientFrame::Call {
            request_id,
            room_id: self.room_id,
            request,
        };
        let text = serde_json::to_string(&frame).expect("a call frame serializes");
        if self.outgoing.send(text).is_err() {
            return Err(SignalingError::Closed);
        }
        match tokio::time::timeout(REPLY_TIMEOUT, answer).await {
            Err(_) => {
                self.waiting.lock().unwrap().remove(&request_id);
                Err(SignalingError::Timeout { action })
            }
            Ok(Err(_)) => Err(SignalingError::Closed),
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err((code, message)))) => Err(SignalingError::Rejected {
                action,
                code,
                message,
            }),
        }
    }
}

fn dispatch(
    control: Control,
    room_id: Uuid,
    waiting: &Waiting,
    notices: &mpsc::UnboundedSender<Notice>,
) {
    match control {
        Control::CallReply {
            request_id, reply, ..
        } => {
            if let Some(sender) = waiting.lock().unwrap().remove(&request_id) {
                let _ = sender.send(Ok(reply));
            }
        }
        Control::CallError {
            request_id,
            code,
            message,
            ..
        } => {
            if let Some(sender) = waiting.lock().unwrap().remove(&request_id) {
                let _ = sender.send(Err((code, message)));
            }
        }
        Control::CallEvent {
            room_id: event_room,
            event,
        } if event_room == room_id => {
            let _ = notices.send(Notice::Event(event));
        }
        Control::CallSignal {
            room_id: signal_room,
            signal,
        } if signal_room == room_id => {
            let _ = notices.send(Notice::Signal(signal));
        }
        _ => {}
    }
}
