//! The WebSocket connections this process holds, by user, and the task that hands
//! them the events arriving on the bus.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::{Bus, BusMessage};
use crate::store::Fanout;

/// What the hub sends a connection.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<Fanout>),
    /// The hub lagged behind the bus and may have skipped events: the connection must
    /// read what it missed from the store.
    CatchUp,
    /// A frame that is not numbered, such as a call event, as JSON text.
    Frame(Arc<str>),
}

struct Connection {
    id: u64,
    sender: mpsc::Sender<Delivery>,
    /// Cancelled when the connection falls too far behind and must close.
    overflow: CancellationToken,
    /// The SHA-256 of the session token the connection authenticated with.
    token_hash: String,
    revoked: CancellationToken,
}

/// A registered connection's end: the events to send and the signal to give up.
pub struct Registration {
    pub id: u64,
    pub user_id: Uuid,
    pub receiver: mpsc::Receiver<Delivery>,
    pub overflow: CancellationToken,
    /// Cancelled when the session behind the connection ends (logout, password change).
    pub revoked: CancellationToken,
}

#[derive(Default)]
pub struct Hub {
    connections: RwLock<HashMap<Uuid, Vec<Connection>>>,
    next_id: AtomicU64,
}

impl Hub {
    pub fn register(&self, user_id: Uuid, token_hash: &str, queue: usize) -> Registration {
        let (sender, receiver) = mpsc::channel(queue);
        let overflow = CancellationToken::new();
        let revoked = CancellationToken::new();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Connection {
            id,
            sender,
            overflow: overflow.clone(),
            token_hash: token_hash.to_string(),
            revoked: revoked.clone(),
        };
        self.connections
            .write()
            .unwrap()
            .entry(user_id)
            .or_default()
            .push(connection);
        crate::metrics::METRICS.websocket_connections.inc();
        Registration {
            id,
            user_id,
            receiver,
            overflow,
            revoked,
        }
    }

    /// Closes the user's connections on this process that use `token_hash`, or all of
    /// the user's connections when it is `None`. Other replicas notice at their next
    /// heartbeat, when each connection checks its session again.
    pub fn end_sessions(&self, user_id: Uuid, token_hash: Option<&str>) {
        let connections = self.connections.read().unwrap();
        for connection in connections.get(&user_id).into_iter().flatten() {
            if token_hash.is_none_or(|hash| hash == connection.token_hash) {
                connection.revoked.cancel();
            }
        }
    }

    pub fn unregister(&self, user_id: Uuid, id: u64) {
        let mut connections = self.connections.write().unwrap();
        if let Some(list) = connections.get_mut(&user_id) {
            let before = list.len();
            list.retain(|connection| connection.id != id);
            if list.len() < before {
                crate::metrics::METRICS.websocket_connections.dec();
            }
            if list.is_empty() {
                connections.remove(&user_id);
            }
        }
    }

    /// Whether the user has a WebSocket open on this process.
    pub fn is_online(&self, user_id: Uuid) -> bool {
        self.connections.read().unwrap().contains_key(&user_id)
    }

    pub fn connection_count(&self) -> usize {
        self.connections
            .read()
            .unwrap()
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Hands the event to every local connection of its recipients. A connection whose
    /// queue is full is told to close rather than let the queue grow.
    pub fn deliver(&self, fanout: &Arc<Fanout>) {
        let connections = self.connections.read().unwrap();
        for (user_id, _) in &fanout.recipients {
            let Some(list) = connections.get(user_id) else {
                continue;
            };
            for connection in list {
                if connection
                    .sender
                    .try_send(Delivery::Event(fanout.clone()))
                    .is_err()
                {
                    connection.overflow.cancel();
                }
            }
        }
    }

    /// Hands an unnumbered frame to every local connection of `user_ids`. A full
    /// queue closes the connection, as for events.
    pub fn deliver_frame(&self, user_ids: &[Uuid], text: Arc<str>) {
        let connections = self.connections.read().unwrap();
        for user_id in user_ids {
            for connection in connections.get(user_id).into_iter().flatten() {
                if connection
                    .sender
                    .try_send(Delivery::Frame(text.clone()))
                    .is_err()
                {
                    connection.overflow.cancel();
                }
            }
        }
    }

    fn catch_up_all(&self) {
        for connection in self.connections.read().unwrap().values().flatten() {
            if connection.sender.try_send(Delivery::CatchUp).is_err() {
                connection.overflow.cancel();
            }
        }
    }

    /// Forwards events from the bus to local connections until `shutdown`.
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
        let mut events = bus.subscribe();
        loop {
            let received = tokio::select! {
                received = events.recv() => received,
                () = shutdown.cancelled() => return,
            };
            match received {
                Ok(BusMessage::Event(fanout)) => {
                    if let Some(lag) = crate::metrics::seconds_since(fanout.published_at_micros) {
                        crate::metrics::METRICS.bus_lag_seconds.observe(lag);
                    }
                    self.deliver(&fanout);
                }
                Ok(BusMessage::Frame { recipients, text }) => self.deliver_frame(&recipients, text),
                Ok(BusMessage::CatchUp) => self.catch_up_all(),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(
                        skipped,
                        "the hub lagged behind the bus; connections catch up"
                    );
                    self.catch_up_all();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
