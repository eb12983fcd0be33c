//! The app's state: the profile and, while someone is logged in, the session with the
//! open engine and the tasks that keep it live.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomler_client::{ClientError, Engine, Profile};
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Manager};
use tokio_util::sync::CancellationToken;

use crate::attachments::Downloads;
use crate::calls::Calls;
use crate::error::CommandError;
use crate::notification_level::NotificationSettings;
use crate::uploads::Uploads;
use crate::{events, notifications, tray};

/// How long ending a session waits for its tasks to stop before it aborts them.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Tauri-managed state of the app.
pub struct AppState {
    profile: Profile,
    /// The server URL from `--server` or `ROOMLER_SERVER_URL`.
    server_hint: Option<String>,
    session: Mutex<Option<Session>>,
    /// Held by each outbox flush that a command starts, so they run one at a time.
    flush_lock: Arc<tokio::sync::Mutex<()>>,
    downloads: Downloads,
    calls: Calls,
    uploads: Uploads,
    notification_settings: NotificationSettings,
}

/// A logged-in user's engine and the tasks that run for it.
struct Session {
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl AppState {
    pub fn new(profile: Profile, server_hint: Option<String>) -> Self {
        let notification_settings = NotificationSettings::load(profile.dir());
        AppState {
            profile,
            server_hint,
            session: Mutex::new(None),
            flush_lock: Arc::default(),
            downloads: Downloads::default(),
            calls: Calls::default(),
            uploads: Uploads::default(),
            notification_settings,
        }
    }

    /// Returns the preview and the call the user is in.
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Returns the attachment downloads in progress.
    pub fn downloads(&self) -> &Downloads {
        &self.downloads
    }

    /// Returns the uploads in progress and the paths the user chose to upload.
    pub fn uploads(&self) -> &Uploads {
        &self.uploads
    }

    /// Returns the notification level chosen in Settings.
    pub fn notification_settings(&self) -> &NotificationSettings {
        &self.notification_settings
    }

    pub fn server_hint(&self) -> Option<&str> {
        self.server_hint.as_deref()
    }

    /// Returns the engine of the current session, if someone is logged in.
    pub fn current_engine(&self) -> Option<Arc<Engine>> {
        let session = self.session.lock().unwrap();
        session.as_ref().map(|session| session.engine.clone())
    }

    /// Returns the engine of the current session, or a `not_logged_in` error.
    pub fn engine(&self) -> Result<Arc<Engine>, CommandError> {
        self.current_engine()
            .ok_or_else(|| CommandError::from(ClientError::NotLoggedIn))
    }

    /// Starts a session on `engine`: live sync, the change forwarder, notifications and
    /// the tray's unread count. A session that is still running is cancelled.
    pub fn start_session(&self, app: &AppHandle, engine: Engine) {
        let user_id = engine.user_id();
        let engine = Arc::new(engine);
        let shutdown = CancellationToken::new();
        // Subscribed before the live sync starts, so no change is missed.
        let changes = engine.subscribe();
        let unread = tray::UnreadSignal::default();

        let updater = tray::spawn_unread_updater(
            app.clone(),
            engine.clone(),
            unread.clone(),
            shutdown.clone(),
        );
        let forwarder = events::spawn_forwarder(
            app.clone(),
            engine.clone(),
            changes,
            unread,
            shutdown.clone(),
        );
        let (notifier, notifications) = notifications::spawn(
            app.clone(),
            engine.clone(),
            self.notification_settings.clone(),
            shutdown.clone(),
        );
        let live = {
            let engine = engine.clone();
            let shutdown = shutdown.clone();
            tauri::async_runtime::spawn(async move {
                engine
                    .run_live(shutdown, move |event| notifier.offer(event))
                    .await;
            })
        };

        let session = Session {
            engine,
            shutdown,
            tasks: vec![live, forwarder, notifications, updater],
        };
        let previous = self.session.lock().unwrap().replace(session);
        if let Some(previous) = previous {
            tracing::warn!("a new session replaced one that was still running");
            previous.shutdown.cancel();
        }
        tracing::info!(%user_id, "the session started");
    }

    /// Stops the current session's tasks and returns its engine, or `None` while logged
    /// out. Tasks that do not stop within [`STOP_TIMEOUT`] are aborted.
    pub async fn end_session(&self, app: &AppHandle) -> Option<Arc<Engine>> {
        let session = self.session.lock().unwrap().take()?;
        // The call's connection uses the session's token, so it ends first.
        self.calls.leave().await;
        session.shutdown.cancel();
        for task in session.tasks {
            let abort = task.inner().abort_handle();
            if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
                tracing::warn!("a session task did not stop in time; aborting it");
                abort.abort();
            }
        }
        tray::show_unread(app, None);
        tracing::info!(user_id = %session.engine.user_id(), "the session ended");
        Some(session.engine)
    }

    /// Cancels the live tasks without waiting, as the app exits.
    pub fn cancel_live(&self) {
        if let Some(session) = self.session.lock().unwrap().as_ref() {
            session.shutdown.cancel();
        }
    }

    /// Sends the outbox in the background, one flush at a time. Items the server cannot
    /// take now stay queued, and the live sync sends them once it reconnects.
    pub fn flush_in_background(&self, engine: Arc<Engine>) {
        let lock = self.flush_lock.clone();
        tauri::async_runtime::spawn(async move {
            let _flushing = lock.lock().await;
            match engine.flush_outbox().await {
                Ok(report) => tracing::debug!(
                    sent = report.sent,
                    failed = report.failed,
                    pending = report.pending,
                    "flushed the outbox"
                ),
                Err(error) => tracing::warn!(%error, "failed to flush the outbox"),
            }
        });
    }
}

/// Opens the profile's session at startup, if it has one, and starts it.
pub fn resume_session(app: &AppHandle) {
    let state = app.state::<AppState>();
    match Engine::open(state.profile().clone()) {
        Ok(engine) => state.start_session(app, engine),
        Err(ClientError::NotLoggedIn) => {
            tracing::info!("the profile has no session; the UI shows the login form");
        }
        Err(error) => {
            tracing::error!(%error, profile = %state.profile().dir().display(), "failed to open the profile's session");
        }
    }
}
