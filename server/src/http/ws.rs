//! `GET /api/ws`: the live event stream of one user.
//!
//! Each connection remembers the last sequence number it sent. An event numbered
//! right after it is sent; one numbered further on means events were skipped (the
//! hub lagged, or the bus dropped some), so the connection reads the gap from the
//! store first. Older numbers are duplicates and are dropped. That one rule gives
//! in-order delivery with nothing lost or repeated, whatever the bus does.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::StreamExt;
use roomler_shared::call::{CallErrorCode, CallRequest};
use roomler_shared::ws::{ClientFrame, Control, Event, ServerFrame};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Query;
use crate::AppState;
use crate::auth::AuthUser;
use crate::calls::{CallContext, ConnectionKey, Routed};
use crate::error::ApiResult;
use crate::hub::Delivery;

/// Events read from the store per query while replaying.
const REPLAY_BATCH: u32 = 500;
/// How long live events wait for the client's `resume` before they flow anyway.
const RESUME_WAIT: Duration = Duration::from_secs(2);
/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients send `resume`, `ping` and call signaling, whose largest frames are SDP
/// offers of a few kilobytes. Small buffers keep an idle connection's memory low.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Call requests queued per connection while earlier ones wait for Janus.
const CALL_QUEUE: usize = 64;
/// How long a closing connection waits for its call requests in flight.
const CALL_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 4 * 1024;

/// Close codes: 1001 going away, 1008 policy violation, 1011 internal error, 1012
/// service restart.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_ERROR: u16 = 1011;
const CLOSE_RESTART: u16 = 1012;

const SESSION_ENDED: &str =
    "your session ended (logout, password change or disabled account); log in again";
const CALL_MOVED: &str =
    "the server replica that ran your call stopped; reconnect and join the call again";

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct WsQuery {
    /// Replays events after this sequence number, like a first `resume` frame.
    since: Option<i64>,
}

#[utoipa::path(get, path = "/api/ws", tag = "events", params(WsQuery),
    responses((status = 101, description = "WebSocket of `{seq, type, room_id, data}` events"),
        (status = 401)),
    security(("bearer" = [])))]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let user_id = auth.id();
    let token_hash = auth.token_hash.clone();
    let open = state.websockets.clone().read_owned().await;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let connection = Connection::new(state, user_id, token_hash, socket);
            connection.run(query.since).await;
            drop(open);
        }))
}

/// The receiving ends of a connection's call requests: the replies and signals,
/// and the signal to close when the replica that hosted its call stopped.
struct CallFrames {
    frames: mpsc::UnboundedReceiver<Control>,
    moved: CancellationToken,
}

/// The reason a connection ends.
enum Close {
    /// The client closed, or the socket broke.
    Gone,
    /// Close with a code and a reason for the client.
    Send(u16, &'static str),
}

struct Connection {
    state: AppState,
    user_id: Uuid,
    token_hash: String,
    socket: WebSocket,
    /// The sequence number of the last event sent.
    last_sent: i64,
    /// Call requests for this connection's call worker; `None` until `run` starts it.
    call_requests: Option<mpsc::Sender<(u64, Uuid, CallRequest)>>,
}

impl Connection {
    fn new(state: AppState, user_id: Uuid, token_hash: String, socket: WebSocket) -> Self {
        Connection {
            state,
            user_id,
            token_hash,
            socket,
            last_sent: 0,
            call_requests: None,
        }
    }

    #[tracing::instrument(name = "ws", skip_all, fields(user_id = %self.user_id))]
    async fn run(mut self, since: Option<i64>) {
        let queue = self.state.settings.ws_send_queue;
        let mut registration = self
            .state
            .hub
            .register(self.user_id, &self.token_hash, queue);
        tracing::debug!("WebSocket opened");

        // Call requests run one after another on their own task, so a slow Janus
        // never holds up this connection's events.
        let (frames, call_frames) = mpsc::unbounded_channel();
        let context = CallContext {
            user_id: self.user_id,
            connection: ConnectionKey {
                replica: self.state.calls.replica(),
                id: registration.id,
            },
            frames,
        };
        let call_moved = CancellationToken::new();
        self.state.calls.connected(&context, call_moved.clone());
        let (requests, worker) = spawn_call_worker(self.state.clone(), context);
        self.call_requests = Some(requests);

        let mut calls = CallFrames {
            frames: call_frames,
            moved: call_moved,
        };
        let close = self.serve(&mut registration, &mut calls, since).await;
        self.state.hub.unregister(self.user_id, registration.id);
        self.call_requests = None;
        let _ = tokio::time::timeout(CALL_DRAIN_TIMEOUT, worker).await;
        self.state
            .calls
            .connection_closed(&self.state, self.user_id, registration.id)
            .await;

        if let Close::Send(code, reason) = close {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = tokio::time::timeout(
                SEND_TIMEOUT,
                self.socket.send(WsMessage::Close(Some(frame))),
            )
            .await;
            tracing::debug!(code, reason, "WebSocket closed by the server");
        } else {
            tracing::debug!("WebSocket closed by the client");
        }
    }

    async fn serve(
        &mut self,
        registration: &mut crate::hub::Registration,
        calls: &mut CallFrames,
        since: Option<i64>,
    ) -> Close {
        // Registered before reading the bounds, so no event falls between the two.
        let bounds = match self.state.store.stream_bounds(self.user_id).await {
            Ok(bounds) => bounds,
            Err(error) => {
                tracing::error!(%error, "failed to read the event stream's bounds");
                return Close::Send(CLOSE_ERROR, "the server failed to read your events");
            }
        };
        self.last_sent = bounds.latest;
        let heartbeat_secs = self.state.settings.heartbeat_secs;
        if let Err(close) = self
            .send_control(Control::Hello {
                seq: bounds.latest,
                heartbeat_secs,
            })
            .await
        {
            return close;
        }
        let mut awaiting_resume = since.is_none();
        if let Some(since) = since
            && let Err(close) = self.resume(since).await
        {
            return close;
        }

        let heartbeat = Duration::from_secs(heartbeat_secs);
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let resume_deadline = tokio::time::sleep(RESUME_WAIT);
        tokio::pin!(resume_deadline);
        // Live events that arrive before the client's `resume`, held back so that they
        // follow the replay; the send queue's size bounds them.
        let mut held: Vec<Delivery> = Vec::new();
        let queue = self.state.settings.ws_send_queue;

        loop {
            tokio::select! {
                () = self.state.shutdown.cancelled() => {
                    return Close::Send(CLOSE_GOING_AWAY, "the server is shutting down");
                }
                () = registration.overflow.cancelled() => {
                    tracing::info!("closing a WebSocket whose client does not keep up");
                    crate::metrics::METRICS.slow_clients_closed.inc();
                    return Close::Send(
                        CLOSE_POLICY,
                        "send queue full: your client read events too slowly; reconnect and resume",
                    );
                }
                () = &mut resume_deadline, if awaiting_resume => {
                    awaiting_resume = false;
                    if let Err(close) = self.deliver_held(&mut held).await {
                        return close;
                    }
                }
                delivery = registration.receiver.recv() => {
                    let Some(delivery) = delivery else { return Close::Gone };
                    if awaiting_resume && held.len() < queue {
                        held.push(delivery);
                        continue;
                    }
                    // More held events than the queue holds: stop waiting for `resume`.
                    awaiting_resume = false;
                    if let Err(close) = self.deliver_held(&mut held).await {
                        return close;
                    }
                    if let Err(close) = self.deliver(delivery).await {
                        return close;
                    }
                }
                () = registration.revoked.cancelled() => {
                    return Close::Send(CLOSE_POLICY, SESSION_ENDED);
                }
                frame = calls.frames.recv() => {
                    let Some(frame) = frame else { continue };
                    if let Err(close) = self.send_control(frame).await {
                        return close;
                    }
                }
                () = calls.moved.cancelled() => {
                    return Close::Send(CLOSE_RESTART, CALL_MOVED);
                }
                _ = ping.tick() => {
                    // A session ended on another replica, or an account disabled by
                    // an admin command, is noticed here.
                    match self.state.store.session_user(&self.token_hash).await {
                        Ok(Some(_)) => {}
                        Ok(None) => return Close::Send(CLOSE_POLICY, SESSION_ENDED),
                        Err(error) => tracing::warn!(%error, "failed to check a WebSocket's session"),
                    }
                    if last_heard.elapsed() > heartbeat * 3 {
                        tracing::debug!("dropping a WebSocket that stopped responding to pings");
                        return Close::Gone;
                    }
                    if self.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return Close::Gone;
                    }
                }
                received = self.socket.next() => {
                    let Some(Ok(message)) = received else { return Close::Gone };
                    last_heard = Instant::now();
                    let text = match message {
                        WsMessage::Text(text) => text,
                        WsMessage::Close(_) => return Close::Gone,
                        WsMessage::Binary(_) => {
                            return Close::Send(CLOSE_POLICY, "send JSON text frames, not binary");
                        }
                        WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                    };
                    awaiting_resume = false;
                    if let Err(close) = self.handle_frame(text.as_str()).await {
                        return close;
                    }
                    if let Err(close) = self.deliver_held(&mut held).await {
                        return close;
                    }
                }
            }
        }
    }

    async fn handle_frame(&mut self, text: &str) -> Result<(), Close> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Resume { since }) => self.resume(since).await,
            Ok(ClientFrame::Ping) => self.send_control(Control::Pong).await,
            Ok(ClientFrame::Call {
                request_id,
                room_id,
                request,
            }) => {
                let queued = self
                    .call_requests
                    .as_ref()
                    .is_some_and(|queue| queue.try_send((request_id, room_id, request)).is_ok());
                if queued {
                    return Ok(());
                }
                self.send_control(Control::CallError {
                    request_id,
                    room_id,
                    code: CallErrorCode::InvalidRequest,
                    message: format!(
                        "More than {CALL_QUEUE} call requests are waiting on this connection; \
                         wait for their replies before sending more."
                    ),
                })
                .await
            }
            Err(error) => {
                let message = format!(
                    "The frame is not a valid client frame ({error}); send \
                     {{\"type\":\"resume\",\"since\":N}}, {{\"type\":\"ping\"}} or \
                     {{\"type\":\"call\",\"request_id\":N,\"room_id\":ID,\"request\":{{...}}}}."
                );
                self.send_control(Control::Error {
                    code: "invalid_frame".into(),
                    message,
                })
                .await
            }
        }
    }

    /// Replays the events after `since`, or tells the client to resync when they are
    /// no longer kept.
    async fn resume(&mut self, since: i64) -> Result<(), Close> {
        let bounds = self
            .state
            .store
            .stream_bounds(self.user_id)
            .await
            .map_err(|error| {
                tracing::error!(%error, "failed to read the event stream's bounds");
                Close::Send(CLOSE_ERROR, "the server failed to read your events")
            })?;
        if since < bounds.floor || since > bounds.latest {
            let reason = if since > bounds.latest {
                format!(
                    "since={since} is newer than your newest event {}",
                    bounds.latest
                )
            } else {
                format!("events up to {} are no longer kept", bounds.floor)
            };
            tracing::info!(
                since,
                floor = bounds.floor,
                latest = bounds.latest,
                "sent a resync"
            );
            self.last_sent = self.last_sent.max(bounds.latest);
            return self
                .send_control(Control::Resync {
                    seq: self.last_sent,
                    reason,
                })
                .await;
        }
        self.last_sent = since;
        self.replay_until(bounds.latest).await?;
        self.send_control(Control::Resumed {
            seq: self.last_sent,
        })
        .await
    }

    async fn deliver_held(&mut self, held: &mut Vec<Delivery>) -> Result<(), Close> {
        for delivery in std::mem::take(held) {
            self.deliver(delivery).await?;
        }
        Ok(())
    }

    async fn deliver(&mut self, delivery: Delivery) -> Result<(), Close> {
        let fanout = match delivery {
            Delivery::CatchUp => return self.replay_until(i64::MAX).await,
            Delivery::Frame(text) => return self.send(WsMessage::Text(text.as_ref().into())).await,
            Delivery::Event(fanout) => fanout,
        };
        let Some(event) = fanout.event_for(self.user_id) else {
            return Ok(());
        };
        if event.seq <= self.last_sent {
            return Ok(());
        }
        if event.seq > self.last_sent + 1 {
            self.replay_until(event.seq - 1).await?;
            if event.seq <= self.last_sent {
                return Ok(());
            }
        }
        self.send_event(&event).await?;
        if let Some(latency) = crate::metrics::seconds_since(fanout.published_at_micros) {
            crate::metrics::METRICS.delivery_seconds.observe(latency);
        }
        Ok(())
    }

    /// Sends stored events after `last_sent` up to `until`, in order.
    async fn replay_until(&mut self, until: i64) -> Result<(), Close> {
        while self.last_sent < until {
            let batch = self
                .state
                .store
                .events_since(self.user_id, self.last_sent, REPLAY_BATCH)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "failed to read events for a replay");
                    Close::Send(CLOSE_ERROR, "the server failed to read your events")
                })?;
            let complete = batch.len() < REPLAY_BATCH as usize;
            for event in batch.iter().filter(|event| event.seq <= until) {
                self.send_event(event).await?;
            }
            if complete || batch.last().is_none_or(|event| event.seq >= until) {
                break;
            }
        }
        Ok(())
    }

    async fn send_event(&mut self, event: &Event) -> Result<(), Close> {
        let text = serde_json::to_string(&ServerFrame::Event(event.clone())).map_err(|error| {
            tracing::error!(%error, "failed to encode an event");
            Close::Send(CLOSE_ERROR, "the server failed to encode an event")
        })?;
        self.send(WsMessage::Text(text.into())).await?;
        self.last_sent = event.seq;
        crate::metrics::METRICS.events_delivered.inc();
        Ok(())
    }

    async fn send_control(&mut self, control: Control) -> Result<(), Close> {
        let text = serde_json::to_string(&ServerFrame::Control(control)).map_err(|error| {
            tracing::error!(%error, "failed to encode a control frame");
            Close::Send(CLOSE_ERROR, "the server failed to encode a frame")
        })?;
        self.send(WsMessage::Text(text.into())).await
    }

    async fn send(&mut self, message: WsMessage) -> Result<(), Close> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Close::Gone),
            Err(_) => {
                tracing::info!("closing a WebSocket whose client stopped reading");
                Err(Close::Gone)
            }
        }
    }
}

/// Starts the task that runs a connection's call requests in order and sends each
/// reply on the context's frames.
fn spawn_call_worker(
    state: AppState,
    context: CallContext,
) -> (
    mpsc::Sender<(u64, Uuid, CallRequest)>,
    tokio::task::JoinHandle<()>,
) {
    let (requests, mut queue) = mpsc::channel::<(u64, Uuid, CallRequest)>(CALL_QUEUE);
    let worker = tokio::spawn(async move {
        while let Some((request_id, room_id, request)) = queue.recv().await {
            let routed = Routed {
                request_id,
                room_id,
                request,
                hops: 0,
            };
            state.calls.dispatch(&state, &context, routed).await;
        }
    });
    (requests, worker)
}
