//! The event bus that carries committed events to every server replica.
//!
//! Handlers publish each [`Fanout`] after the store commits it; every replica's
//! [`Hub`](crate::hub::Hub) subscribes and hands the event to the WebSockets it holds
//! for the recipients. The in-process bus here serves a single server; a Redis bus can
//! implement the same trait to join replicas.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::store::Fanout;

/// Events buffered for a slow subscriber before it lags. A lagging hub makes its
/// connections catch up from the store, so nothing is lost, only delayed.
const LOCAL_CAPACITY: usize = 8192;

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, fanout: Arc<Fanout>) -> anyhow::Result<()>;
    fn subscribe(&self) -> broadcast::Receiver<Arc<Fanout>>;
}

/// A bus within one process, on a tokio broadcast channel.
pub struct LocalBus {
    sender: broadcast::Sender<Arc<Fanout>>,
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
        let _ = self.sender.send(fanout);
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Fanout>> {
        self.sender.subscribe()
    }
}
