//! The event bus that carries committed events to every server replica.
//!
//! Handlers publish each [`Fanout`] after the store commits it; every replica's
//! [`Hub`](crate::hub::Hub) subscribes and hands the event to the WebSockets it holds
//! for the recipients. [`LocalBus`] serves a single server; [`RedisBus`] joins
//! replicas over Redis pub/sub.
//!
//! The bus may lose events (a lagging subscriber, a Redis outage): the store keeps
//! them, and a connection that sees a gap in its user's sequence numbers, or gets a
//! [`BusMessage::CatchUp`], reads what it missed from the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::Fanout;

/// Messages buffered for a slow subscriber before it lags. A lagging hub makes its
/// connections catch up from the store, so nothing is lost, only delayed.
const LOCAL_CAPACITY: usize = 8192;

/// The Redis channel that carries events between replicas.
const REDIS_CHANNEL: &str = "roomler:events";
const REDIS_BACKOFF_BASE: Duration = Duration::from_millis(200);
const REDIS_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How long a publish waits for Redis before it gives up; the event is stored either
/// way, so a slow Redis must not slow down requests.
const REDIS_PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub enum BusMessage {
    Event(Arc<Fanout>),
    /// An unnumbered frame, such as a call event, as JSON text for the connections
    /// of `recipients`. Not stored: a replica that misses it misses it.
    Frame {
        recipients: Arc<[Uuid]>,
        text: Arc<str>,
    },
    /// Events may have been missed (e.g. the bus was down): every connection must
    /// read its gap from the store.
    CatchUp,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, fanout: Arc<Fanout>) -> anyhow::Result<()>;
    /// Sends an unnumbered frame to the connections of `recipients` on every replica.
    async fn publish_frame(&self, recipients: Arc<[Uuid]>, text: Arc<str>);
    fn subscribe(&self) -> broadcast::Receiver<BusMessage>;
}

/// A bus within one process, on a tokio broadcast channel.
pub struct LocalBus {
    sender: broadcast::Sender<BusMessage>,
}

impl LocalBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(LOCAL_CAPACITY);
        LocalBus { sender }
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, fanout: Arc<Fanout>) -> anyhow::Result<()> {
        // With no subscriber nobody is connected, and the store keeps the event for replay.
        let _ = self.sender.send(BusMessage::Event(fanout));
        Ok(())
    }

    async fn publish_frame(&self, recipients: Arc<[Uuid]>, text: Arc<str>) {
        let _ = self.sender.send(BusMessage::Frame { recipients, text });
    }

    fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.sender.subscribe()
    }
}

/// A message between replicas over Redis: an event or a frame.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The publishing replica, which delivered the event locally already.
    origin: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fanout: Option<Fanout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frame: Option<FrameEnvelope>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FrameEnvelope {
    recipients: Vec<Uuid>,
    text: String,
}

impl Envelope {
    fn into_message(self) -> Option<BusMessage> {
        if let Some(fanout) = self.fanout {
            return Some(BusMessage::Event(Arc::new(fanout)));
        }
        let frame = self.frame?;
        Some(BusMessage::Frame {
            recipients: frame.recipients.into(),
            text: frame.text.into(),
        })
    }
}

/// Replicas joined over Redis pub/sub. Each replica delivers its own events locally
/// at once, so it keeps serving its connections while Redis is away.
pub struct RedisBus {
    replica: Uuid,
    client: redis::Client,
    local: broadcast::Sender<BusMessage>,
    publisher: Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// Set while Redis is unreachable for publishing, so the outage is logged once.
    publish_down: AtomicBool,
}

impl RedisBus {
    /// Starts the bus on `url` (`redis://host:port` or `host:port`) and its subscriber
    /// task, which runs until `shutdown`. Redis need not be up yet.
    pub fn start(url: &str, shutdown: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let client = redis_client(url)?;
        let (local, _) = broadcast::channel(LOCAL_CAPACITY);
        let bus = Arc::new(RedisBus {
            replica: Uuid::new_v4(),
            client,
            local,
            publisher: Mutex::new(None),
            publish_down: AtomicBool::new(false),
        });
        tokio::spawn(bus.clone().subscribe_loop(shutdown));
        Ok(bus)
    }

    async fn publish_remote(&self, payload: &str) -> redis::RedisResult<()> {
        let mut guard = self.publisher.lock().await;
        if guard.is_none() {
            *guard = Some(self.client.get_multiplexed_async_connection().await?);
        }
        let connection = guard.as_mut().expect("connected above");
        let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(REDIS_CHANNEL)
            .arg(payload)
            .query_async(connection)
            .await;
        if result.is_err() {
            *guard = None;
        }
        result.map(|_| ())
    }

    /// Receives other replicas' events until `shutdown`, reconnecting with backoff.
    /// After every reconnection the local connections catch up from the store.
    async fn subscribe_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let outage = "the Redis bus is unreachable; serving local connections only";
        keep_subscribed(&shutdown, outage, |after_outage| {
            self.subscribe_session(after_outage)
        })
        .await;
    }

    /// Runs one subscription until it fails.
    async fn subscribe_session(&self, after_outage: bool) -> SessionEnd {
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => return SessionEnd::failed(error),
        };
        if let Err(error) = pubsub.subscribe(REDIS_CHANNEL).await {
            return SessionEnd::failed(error);
        }
        if after_outage {
            tracing::info!("the Redis bus is back; connections catch up from the store");
        }
        // Whatever other replicas published while this one was not subscribed.
        let _ = self.local.send(BusMessage::CatchUp);

        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = match message.get_payload() {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::warn!(%error, "ignored a Redis bus message that is not text");
                    continue;
                }
            };
            match serde_json::from_str::<Envelope>(&payload) {
                Ok(envelope) if envelope.origin == self.replica => {}
                Ok(envelope) => {
                    if let Some(message) = envelope.into_message() {
                        let _ = self.local.send(message);
                    }
                }
                Err(error) => tracing::warn!(%error, "ignored an invalid Redis bus message"),
            }
        }
        SessionEnd {
            subscribed: true,
            error: anyhow::anyhow!("the Redis subscription ended"),
        }
    }
}

/// Opens a client of the Redis at `url` (`redis://host:port` or `host:port`, the
/// value of WS_SCALEOUT_HOST) without connecting.
pub(crate) fn redis_client(url: &str) -> anyhow::Result<redis::Client> {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("redis://{url}")
    };
    redis::Client::open(url.as_str())
        .map_err(|error| anyhow::anyhow!("WS_SCALEOUT_HOST {url:?} is invalid: {error}"))
}

/// The end of one subscription to Redis.
pub(crate) struct SessionEnd {
    /// Whether the subscription worked before it ended.
    pub subscribed: bool,
    pub error: anyhow::Error,
}

impl SessionEnd {
    /// Builds the end of a subscription that never worked.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        SessionEnd {
            subscribed: false,
            error: error.into(),
        }
    }
}

/// Runs Redis subscriptions with `session` until `shutdown`, starting each anew
/// after it ends, with exponential backoff between failed attempts. `session`
/// learns whether the previous attempt failed, and the first failure of an outage
/// is logged with `outage`.
pub(crate) async fn keep_subscribed<F, Session>(
    shutdown: &CancellationToken,
    outage: &str,
    mut session: F,
) where
    F: FnMut(bool) -> Session,
    Session: Future<Output = SessionEnd>,
{
    // Failed attempts since the last working subscription.
    let mut failures = 0u32;
    loop {
        let end = tokio::select! {
            end = session(failures > 0) => end,
            () = shutdown.cancelled() => return,
        };
        if end.subscribed {
            failures = 0;
        }
        if failures == 0 {
            tracing::warn!(error = %end.error, "{outage}");
        }
        failures += 1;
        let delay = REDIS_BACKOFF_BASE
            .saturating_mul(1 << failures.min(10))
            .min(REDIS_BACKOFF_MAX);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, fanout: Arc<Fanout>) -> anyhow::Result<()> {
        let payload = serde_json::to_string(&Envelope {
            origin: self.replica,
            fanout: Some((*fanout).clone()),
            frame: None,
        })?;
        let _ = self.local.send(BusMessage::Event(fanout));
        self.send_remote(&payload).await;
        Ok(())
    }

    async fn publish_frame(&self, recipients: Arc<[Uuid]>, text: Arc<str>) {
        let envelope = Envelope {
            origin: self.replica,
            fanout: None,
            frame: Some(FrameEnvelope {
                recipients: recipients.to_vec(),
                text: text.to_string(),
            }),
        };
        let payload = serde_json::to_string(&envelope).expect("a frame envelope serializes");
        let _ = self.local.send(BusMessage::Frame { recipients, text });
        self.send_remote(&payload).await;
    }

    fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.local.subscribe()
    }
}

impl RedisBus {
    /// Publishes to the other replicas, waiting at most [`REDIS_PUBLISH_TIMEOUT`].
    async fn send_remote(&self, payload: &str) {
        let result =
            tokio::time::timeout(REDIS_PUBLISH_TIMEOUT, self.publish_remote(payload)).await;
        match result {
            Ok(Ok(())) => {
                if self.publish_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("publishing to the Redis bus works again");
                }
            }
            Ok(Err(error)) => self.publish_failed(&error.to_string()),
            Err(_) => self.publish_failed("timed out"),
        }
    }

    fn publish_failed(&self, error: &str) {
        if !self.publish_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "failed to publish to the Redis bus; other replicas' clients catch up later"
            );
        }
    }
}
