//! The Roomler server: accounts, rooms and rich-text messages over HTTP and WebSocket.
//!
//! Layout:
//!
//! - [`config`]: settings from defaults, a TOML file, the environment and flags.
//! - [`store`]: the `Store` trait and its SQLite and MongoDB backends; every change
//!   and its event are written in one transaction.
//! - [`bus`] and [`hub`]: committed events travel over the bus to the hub of each
//!   replica, which hands them to the user's WebSockets.
//! - [`http`]: the axum router, one module per route group, and the WebSocket.
//! - [`auth`], [`rate_limit`], [`blobs`]: tokens and passwords, brute-force limits,
//!   uploaded files on disk.
//! - [`calls`]: call control through Janus, TURN credentials, the local Janus.
//! - [`admin`]: the `roomler-server admin` commands.
//! - [`migrate`]: `roomler-server migrate`, which copies a SQLite database into MongoDB.
//! - [`error`]: the one error type of the HTTP layer.

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod bus;
pub mod calls;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod migrate;
pub mod rate_limit;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::blobs::BlobStore;
use crate::bus::{Bus, LocalBus, RedisBus};
use crate::calls::Calls;
use crate::config::{Database, Settings};
use crate::hub::Hub;
use crate::rate_limit::RateLimiter;
use crate::store::mongo::MongoStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Fanout, Store};

/// How often expired events are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// How long shutdown waits for open WebSockets to send their close frames.
const WEBSOCKET_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub hub: Arc<Hub>,
    pub blobs: Arc<BlobStore>,
    pub limiter: Arc<RateLimiter>,
    pub calls: Arc<Calls>,
    /// Cancelled when the server shuts down; WebSockets close with "going away".
    pub shutdown: CancellationToken,
    /// Read-locked by each WebSocket for as long as it is open, so that shutdown can wait
    /// for their close frames by taking the write lock.
    pub websockets: Arc<tokio::sync::RwLock<()>>,
}

impl AppState {
    /// Opens the store and files folder that the settings name.
    ///
    /// A MongoDB store is opened with [`MongoStore::open_blocking`], which needs
    /// tokio's multi-thread runtime.
    pub fn open(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        create_private_dir(&settings.data_dir)?;
        let store: Arc<dyn Store> = match settings.database()? {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(&path)?),
            Database::Mongo(url) => Arc::new(MongoStore::open_blocking(&url)?),
        };
        let blobs = BlobStore::open(&settings.files_dir())?;
        let shutdown = CancellationToken::new();
        let bus: Arc<dyn Bus> = match (&settings.ws_scaleout_enabled, &settings.ws_scaleout_host) {
            (true, Some(host)) => RedisBus::start(host, shutdown.clone())?,
            (true, None) => anyhow::bail!(
                "WS_SCALEOUT_ENABLED=true needs WS_SCALEOUT_HOST, the Redis address, e.g. \
                 redis://127.0.0.1:6379"
            ),
            (false, _) => Arc::new(LocalBus::new()),
        };
        let calls = Arc::new(Calls::from_settings(&settings, &shutdown)?);
        Ok(AppState {
            calls,
            settings: Arc::new(settings),
            store,
            bus,
            hub: Arc::new(Hub::default()),
            blobs: Arc::new(blobs),
            limiter: Arc::new(RateLimiter::default()),
            shutdown,
            websockets: Arc::default(),
        })
    }

    /// Sends committed events to their recipients. A bus failure is logged and not
    /// returned: the events are stored, and clients get them on their next resume.
    pub async fn publish(&self, fanouts: impl IntoIterator<Item = Fanout>) {
        for mut fanout in fanouts {
            fanout.published_at_micros = metrics::now_micros();
            metrics::METRICS.events_published.inc();
            if let Err(error) = self.bus.publish(Arc::new(fanout)).await {
                tracing::warn!(%error, "failed to publish an event on the bus");
            }
        }
    }
}

/// Creates the data folder readable by its owner only, since it holds every private
/// room's messages and files.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create the data folder {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(dir, private)
            .with_context(|| format!("failed to make {} private", dir.display()))?;
    }
    Ok(())
}

/// A server bound to its address, ready to run.
pub struct Server {
    pub state: AppState,
    listener: TcpListener,
}

impl Server {
    pub async fn bind(state: AppState) -> anyhow::Result<Self> {
        let addr = state.settings.addr;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("failed to listen on {addr}"))?;
        Ok(Server { state, listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `state.shutdown` is cancelled, then stops accepting, closes the
    /// WebSockets and waits for requests in flight.
    pub async fn run(self) -> anyhow::Result<()> {
        let Server { state, listener } = self;
        let shutdown = state.shutdown.clone();
        let websockets = state.websockets.clone();
        tokio::spawn(state.hub.clone().run(state.bus.clone(), shutdown.clone()));
        state.calls.start_cluster(&state);
        tokio::spawn(prune_events(state.clone()));

        let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("the HTTP server failed")?;

        // An upgraded connection is no longer a request, so serve does not wait for it.
        // Without this wait the process could exit before a WebSocket sent its close frame.
        if tokio::time::timeout(WEBSOCKET_CLOSE_TIMEOUT, websockets.write())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?WEBSOCKET_CLOSE_TIMEOUT,
                "WebSockets were still open at shutdown; stopping without their close frames"
            );
        }
        Ok(())
    }
}

async fn prune_events(state: AppState) {
    let retention = Duration::from_secs(state.settings.event_retention_days * 86_400);
    loop {
        let cutoff = time::OffsetDateTime::now_utc() - retention;
        match state.store.prune_events(cutoff).await {
            Ok(0) => {}
            Ok(deliveries) => tracing::info!(deliveries, "pruned expired events"),
            Err(error) => tracing::warn!(%error, "failed to prune expired events"),
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            () = state.shutdown.cancelled() => return,
        }
    }
}
