//! The engine: what the desktop app and the CLI call. Reads come from the cache,
//! writes go through the outbox, and [`Engine::run_live`] keeps both in step with the
//! server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::StatusCode;
use roomler_shared::api::PostMessageRequest;
use roomler_shared::call::{CallEvent, CallSummary};
use roomler_shared::model::{Message, Room, RoomKind};
use roomler_shared::ws::{Control, Event, ServerFrame};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::ApiClient;
use crate::cache::{Cache, CachedRoom, Change, LocalHit, NewOperation, OperationKind, OutboxItem};
use crate::error::{ClientError, Result};
use crate::profile::{Profile, ProfileSettings};

/// Messages fetched per history page.
pub const PAGE_SIZE: u32 = 50;

/// The part of a room's history that [`Engine::history_page`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryWindow {
    /// The newest messages with a sequence number below this one.
    Before(i64),
    /// The oldest messages with a sequence number above this one.
    After(i64),
}
/// A connection that receives nothing for this long is considered dead; the server
/// pings every 30 s by default.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(90);
const PING_INTERVAL: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Offline,
    Connecting,
    Online,
    /// Waiting `retry_in_ms` before attempt number `attempt`.
    Reconnecting {
        attempt: u32,
        retry_in_ms: u64,
    },
}

/// One typed change for the app: the cache, the connection or the outbox moved.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    Cache(Change),
    Connection(ConnectionState),
    /// Something happened in a room's call; [`Engine::calls`] has the result.
    Call {
        room_id: Uuid,
        event: CallEvent,
    },
}

/// What a flush of the outbox did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlushReport {
    pub sent: u32,
    pub failed: u32,
    /// Items still pending because the server could not be reached.
    pub pending: u32,
}

/// What a one-shot sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub events_applied: u32,
    pub resynced: bool,
    pub outbox: FlushReport,
    pub last_seq: i64,
}

pub struct Engine {
    profile: Profile,
    settings: ProfileSettings,
    api: ApiClient,
    cache: Arc<Cache>,
    events: broadcast::Sender<EngineEvent>,
    connection: watch::Sender<ConnectionState>,
    /// The calls going on, by room, as the room list shows them. Not cached: call
    /// state is only known while online.
    calls: Mutex<HashMap<Uuid, CallSummary>>,
}

impl Engine {
    /// Opens a profile that has a session.
    pub fn open(profile: Profile) -> Result<Self> {
        let settings = profile.settings()?.ok_or(ClientError::NotLoggedIn)?;
        let token = profile.token()?.ok_or(ClientError::NotLoggedIn)?;
        let api = ApiClient::new(&settings.server_url, Some(token))?;
        let (cache, moved) = Cache::open(&profile.cache_path())?;
        if moved.is_some() {
            // The new cache has no position: the next sync refetches everything.
            tracing::info!("the rebuilt cache will be filled from the server on the next sync");
        }
        let (events, _) = broadcast::channel(1024);
        let (connection, _) = watch::channel(ConnectionState::Offline);
        Ok(Engine {
            profile,
            settings,
            api,
            cache: Arc::new(cache),
            events,
            connection,
            calls: Mutex::new(HashMap::new()),
        })
    }

    /// Logs in and stores the session in the profile.
    pub async fn login(
        profile: Profile,
        server: &str,
        login: &str,
        password: &str,
    ) -> Result<Self> {
        let api = ApiClient::new(server, None)?;
        let auth = api.login(login, password).await?;
        Self::start_session(profile, api.base_url(), auth).await
    }

    pub async fn register(
        profile: Profile,
        server: &str,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<Self> {
        let api = ApiClient::new(server, None)?;
        let auth = api.register(username, email, password).await?;
        Self::start_session(profile, api.base_url(), auth).await
    }

    async fn start_session(
        profile: Profile,
        server: &str,
        auth: roomler_shared::api::AuthResponse,
    ) -> Result<Self> {
        let previous = profile.settings()?;
        let settings = ProfileSettings {
            server_url: server.to_string(),
            user_id: auth.user.id,
            username: auth.user.username.clone(),
        };
        // Another account or server must not see this profile's cache.
        let same_account = previous.is_some_and(|previous| {
            previous.user_id == settings.user_id && previous.server_url == settings.server_url
        });
        if !same_account {
            let cache = profile.cache_path();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", cache.display()));
            }
        }
        profile.save_settings(&settings)?;
        let store = profile.save_token(&auth.token)?;
        tracing::debug!(?store, "stored the session token");
        let engine = Self::open(profile)?;
        // The room list is there at once; the messages follow with the first sync.
        match engine.refresh_rooms().await {
            Ok(_) => {}
            Err(error) => tracing::info!(%error, "failed to fetch the rooms after logging in"),
        }
        Ok(engine)
    }

    /// Ends the session on the server (when reachable) and forgets the token.
    pub async fn logout(self) -> Result<()> {
        let result = self.api.logout().await;
        self.profile.forget_token()?;
        match result {
            Err(error) if error.is_network() => Ok(()),
            Err(ClientError::Rejected { status, .. }) if status == 401 => Ok(()),
            other => other,
        }
    }

    pub fn user_id(&self) -> Uuid {
        self.settings.user_id
    }

    pub fn settings(&self) -> &ProfileSettings {
        &self.settings
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub fn connection_state(&self) -> watch::Receiver<ConnectionState> {
        self.connection.subscribe()
    }

    fn notify(&self, changes: impl IntoIterator<Item = Change>) {
        for change in changes {
            let _ = self.events.send(EngineEvent::Cache(change));
        }
    }

    fn set_connection(&self, state: ConnectionState) {
        if state != ConnectionState::Online {
            self.calls.lock().unwrap().clear();
        }
        if *self.connection.borrow() != state {
            self.connection.send_replace(state.clone());
            let _ = self.events.send(EngineEvent::Connection(state));
        }
    }

    // Rooms.

    pub fn rooms(&self) -> Result<Vec<CachedRoom>> {
        self.cache.rooms()
    }

    /// Returns the calls going on in the user's rooms, by room, while online.
    pub fn calls(&self) -> HashMap<Uuid, CallSummary> {
        self.calls.lock().unwrap().clone()
    }

    /// Follows one call event in [`Engine::calls`] and passes it on.
    fn apply_call_event(&self, room_id: Uuid, event: CallEvent) {
        {
            let mut calls = self.calls.lock().unwrap();
            match &event {
                CallEvent::Started { call_id, format } => {
                    calls.insert(
                        room_id,
                        CallSummary {
                            call_id: *call_id,
                            format: *format,
                            participant_count: 0,
                            started_at: time::OffsetDateTime::now_utc(),
                        },
                    );
                }
                CallEvent::Ended { .. } => {
                    calls.remove(&room_id);
                }
                CallEvent::ParticipantJoined { .. } => {
                    if let Some(call) = calls.get_mut(&room_id) {
                        call.participant_count += 1;
                    }
                }
                CallEvent::ParticipantLeft { .. } => {
                    if let Some(call) = calls.get_mut(&room_id) {
                        call.participant_count = call.participant_count.saturating_sub(1);
                    }
                }
                _ => {}
            }
        }
        let _ = self.events.send(EngineEvent::Call { room_id, event });
    }

    /// Refetches the room list from the server into the cache.
    pub async fn refresh_rooms(&self) -> Result<Vec<Room>> {
        let rooms = self.api.rooms().await?;
        *self.calls.lock().unwrap() = rooms
            .iter()
            .filter_map(|room| room.call.clone().map(|call| (room.id, call)))
            .collect();
        self.cache.replace_rooms(&rooms)?;
        self.notify([Change::RoomsChanged]);
        Ok(rooms)
    }

    pub async fn directory(&self, query: &str) -> Result<Vec<Room>> {
        self.api.directory(query).await
    }

    pub async fn join(&self, name: &str, password: Option<String>) -> Result<Room> {
        let room = self.api.join(name, password).await?;
        self.cache.upsert_room(&room)?;
        self.notify([Change::RoomsChanged]);
        Ok(room)
    }

    pub async fn create_room(
        &self,
        name: &str,
        kind: RoomKind,
        password: Option<String>,
        parent: Option<&str>,
    ) -> Result<Room> {
        let parent_id = match parent {
            Some(parent) => Some(self.resolve_room(parent).await?.id),
            None => None,
        };
        let room = self
            .api
            .create_room(name, kind, password, parent_id)
            .await?;
        self.cache.upsert_room(&room)?;
        self.notify([Change::RoomsChanged]);
        Ok(room)
    }

    /// Finds a room the user is in by path or id: in the cache, else on the server.
    pub async fn resolve_room(&self, name: &str) -> Result<Room> {
        if let Some(room) = self.cache.find_room(name)? {
            return Ok(room);
        }
        match self.refresh_rooms().await {
            Ok(_) => {}
            Err(error) if error.is_network() => {}
            Err(error) => return Err(error),
        }
        self.cache.find_room(name)?.ok_or_else(|| {
            // `roomler join` takes a room's path, so it is no help for an id.
            if Uuid::parse_str(name).is_ok() {
                return ClientError::Usage(format!(
                    "you are not in a room with the id {name}; `roomler rooms` lists yours, \
                     and `roomler join PATH` joins a public one by its path"
                ));
            }
            ClientError::Usage(format!(
                "you are not in a room named {name:?}; `roomler rooms` lists yours, and \
                 `roomler join {name}` joins a public one"
            ))
        })
    }

    // Messages.

    /// History newest first, from the cache; older pages are fetched and cached when
    /// the cache has fewer than `limit` and the server is reachable.
    pub async fn history(&self, room_id: Uuid, limit: u32) -> Result<Vec<Message>> {
        let mut messages = self.cache.history(room_id, None, limit)?;
        while (messages.len() as u32) < limit && !self.cache.history_complete(room_id)? {
            let before = messages.last().map(|message| message.seq);
            let page = match self.api.history(room_id, before, None, PAGE_SIZE).await {
                Ok(page) => page,
                Err(error) if error.is_network() => break,
                Err(error) => return Err(error),
            };
            let complete = (page.len() as u32) < PAGE_SIZE;
            self.cache.store_messages(room_id, &page, complete)?;
            messages = self.cache.history(room_id, None, limit)?;
            if page.is_empty() {
                break;
            }
        }
        Ok(messages)
    }

    /// Up to `limit` messages of one window of a room's history, oldest first, from the
    /// cache. Reading before a message fetches older pages into the cache first when it
    /// has too few and the server is reachable. Reading after one reads the cache only,
    /// because sync keeps its newest end up to date.
    ///
    /// Fails with a network error only when the window is empty and the server that
    /// could fill it is unreachable.
    pub async fn history_page(
        &self,
        room_id: Uuid,
        window: HistoryWindow,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let before = match window {
            HistoryWindow::After(after) => return self.cache.history_after(room_id, after, limit),
            HistoryWindow::Before(before) => before,
        };
        loop {
            let mut messages = self.cache.history(room_id, Some(before), limit)?;
            if messages.len() as u32 >= limit {
                messages.reverse();
                return Ok(messages);
            }
            let added = match self.fetch_older(room_id).await {
                Ok(added) => added,
                Err(error) if error.is_network() && !messages.is_empty() => 0,
                Err(error) => return Err(error),
            };
            if added == 0 {
                messages.reverse();
                return Ok(messages);
            }
        }
    }

    /// Up to `limit` messages of a room around the message `message_id`, oldest first,
    /// with that message among them. Older pages are fetched into the cache until the
    /// message is found, so a reply's parent or a search hit can be shown in place.
    pub async fn history_around(
        &self,
        room_id: Uuid,
        message_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let seq = loop {
            if let Some(message) = self.cache.message(message_id)?
                && message.room_id == room_id
            {
                break message.seq;
            }
            if self.fetch_older(room_id).await? == 0 {
                return Err(ClientError::Usage(format!(
                    "message {message_id} not found in the history of room {room_id}"
                )));
            }
        };
        let newer = limit / 2;
        let mut messages =
            self.cache
                .history(room_id, Some(seq + 1), limit.saturating_sub(newer).max(1))?;
        messages.reverse();
        messages.extend(self.cache.history_after(room_id, seq, newer)?);
        Ok(messages)
    }

    /// Fetches the page of history before the oldest cached message of a room into the
    /// cache, and returns how many messages it added: 0 once the room's whole history is
    /// cached.
    pub async fn fetch_older(&self, room_id: Uuid) -> Result<usize> {
        if self.cache.history_complete(room_id)? {
            return Ok(0);
        }
        let oldest = self.cache.oldest_seq(room_id)?;
        if oldest == Some(1) {
            // Sequence numbers start at 1, so nothing older exists.
            self.cache.store_messages(room_id, &[], true)?;
            return Ok(0);
        }
        let page = self.api.history(room_id, oldest, None, PAGE_SIZE).await?;
        let complete = (page.len() as u32) < PAGE_SIZE;
        self.cache.store_messages(room_id, &page, complete)?;
        Ok(page.len())
    }

    /// Records that the user has read the room up to `seq`, for unread counts.
    pub fn mark_read(&self, room_id: Uuid, seq: i64) -> Result<()> {
        self.cache.set_read(room_id, seq)?;
        self.notify([Change::RoomsChanged]);
        Ok(())
    }

    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<LocalHit>> {
        self.cache.search(query, limit)
    }

    pub fn outbox(&self) -> Result<Vec<OutboxItem>> {
        self.cache.outbox()
    }

    /// Queues a message; [`Engine::flush_outbox`] sends it.
    pub fn queue_message(
        &self,
        room_id: Uuid,
        body: &str,
        reply_to: Option<Uuid>,
        attachments: Vec<Uuid>,
    ) -> Result<OutboxItem> {
        roomler_shared::limits::body(body)
            .map_err(|invalid| ClientError::Usage(invalid.message))?;
        let operation = NewOperation {
            room_id,
            body: Some(body.to_string()),
            reply_to,
            attachments,
            ..NewOperation::default()
        };
        let item = self.cache.enqueue(OperationKind::Send, operation)?;
        self.notify([Change::OutboxChanged]);
        Ok(item)
    }

    /// Queues an edit, delete or reaction; each kind's fields must be set.
    pub fn queue_operation(
        &self,
        kind: OperationKind,
        operation: NewOperation,
    ) -> Result<OutboxItem> {
        let missing = match kind {
            OperationKind::Send if operation.body.is_none() => Some("body"),
            OperationKind::Edit
            | OperationKind::Delete
            | OperationKind::React
            | OperationKind::Unreact
                if operation.message_id.is_none() =>
            {
                Some("message_id")
            }
            OperationKind::Edit if operation.body.is_none() => Some("body"),
            OperationKind::React | OperationKind::Unreact if operation.emoji.is_none() => {
                Some("emoji")
            }
            _ => None,
        };
        if let Some(field) = missing {
            return Err(ClientError::Usage(format!(
                "a queued {kind:?} operation needs its {field}"
            )));
        }
        let item = self.cache.enqueue(kind, operation)?;
        self.notify([Change::OutboxChanged]);
        Ok(item)
    }

    /// Sends pending items in order until the queue is empty or the server is
    /// unreachable. Rejected items become failed ones with the server's reason.
    pub async fn flush_outbox(&self) -> Result<FlushReport> {
        let mut report = FlushReport::default();
        while let Some(item) = self.cache.next_pending()? {
            self.cache.record_attempt(item.id)?;
            match self.send_item(&item).await {
                Ok(()) => report.sent += 1,
                Err(error) if error.is_network() => {
                    tracing::debug!(item = item.id, %error, "the outbox waits for the server");
                    break;
                }
                // A revoked or expired session is no fault of the item: it stays pending
                // and goes out after the next login.
                Err(ClientError::Rejected { status, .. }) if status == StatusCode::UNAUTHORIZED => {
                    tracing::info!(
                        item = item.id,
                        "the session ended; the outbox waits for a login"
                    );
                    self.notify([Change::OutboxChanged]);
                    return Err(ClientError::NotLoggedIn);
                }
                Err(ClientError::Rejected { code, message, .. }) => {
                    tracing::info!(
                        item = item.id,
                        code,
                        "the server rejected a queued operation"
                    );
                    self.cache.fail(item.id, &code, &message)?;
                    report.failed += 1;
                }
                Err(error @ ClientError::Cache(_)) => return Err(error),
                // An item that cannot be sent at all must not block the ones after it.
                Err(error) => {
                    tracing::warn!(item = item.id, %error, "marked an unsendable outbox item failed");
                    self.cache
                        .fail(item.id, "invalid_operation", &error.to_string())?;
                    report.failed += 1;
                }
            }
            self.notify([
                Change::OutboxChanged,
                Change::MessagesChanged {
                    room_id: item.room_id,
                },
            ]);
        }
        report.pending = self
            .cache
            .outbox()?
            .iter()
            .filter(|item| item.state == crate::cache::OutboxState::Pending)
            .count() as u32;
        Ok(report)
    }

    async fn send_item(&self, item: &OutboxItem) -> Result<()> {
        let missing = |what: &str| {
            ClientError::Other(anyhow::anyhow!("outbox item {} has no {what}", item.id))
        };
        match item.kind {
            OperationKind::Send => {
                let request = PostMessageRequest {
                    body: item.body.clone().ok_or_else(|| missing("body"))?,
                    client_id: item.client_id.clone().ok_or_else(|| missing("client_id"))?,
                    reply_to: item.reply_to,
                    attachments: item.attachments.clone(),
                };
                let message = self.api.post_message(item.room_id, &request).await?;
                self.cache.complete_with_message(item.id, &message)
            }
            OperationKind::Edit => {
                let id = item.message_id.ok_or_else(|| missing("message_id"))?;
                let body = item.body.as_deref().ok_or_else(|| missing("body"))?;
                let message = self.api.edit_message(id, body).await?;
                self.cache.complete_with_message(item.id, &message)
            }
            OperationKind::Delete => {
                let id = item.message_id.ok_or_else(|| missing("message_id"))?;
                match self.api.delete_message(id).await {
                    // Deleting what is already gone is done.
                    Err(ClientError::Rejected { status, .. }) if status == 404 => {}
                    other => other?,
                }
                self.cache.complete(item.id)
            }
            OperationKind::React | OperationKind::Unreact => {
                let id = item.message_id.ok_or_else(|| missing("message_id"))?;
                let emoji = item.emoji.as_deref().ok_or_else(|| missing("emoji"))?;
                self.api
                    .set_reaction(id, emoji, item.kind == OperationKind::React)
                    .await?;
                self.cache.complete(item.id)
            }
        }
    }

    pub fn retry(&self, item_id: i64) -> Result<bool> {
        let found = self.cache.retry(item_id)?;
        self.notify([Change::OutboxChanged]);
        Ok(found)
    }

    pub fn discard(&self, item_id: i64) -> Result<bool> {
        let found = self.cache.discard(item_id)?;
        self.notify([Change::OutboxChanged]);
        Ok(found)
    }

    // Live sync.

    /// Connects, catches up on missed events (or resyncs), flushes the outbox, and
    /// returns.
    pub async fn sync_once(&self) -> Result<SyncReport> {
        let result = self.sync_session().await;
        // Offline on every way out, errors included.
        self.set_connection(ConnectionState::Offline);
        result
    }

    async fn sync_session(&self) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut socket = self.connect().await?;
        self.catch_up(&mut socket, &mut report, |_| {}).await?;
        report.outbox = self.flush_outbox().await?;
        report.last_seq = self.cache.last_seq()?;
        let _ = socket.close(None).await;
        Ok(report)
    }

    /// Stays connected until `shutdown`, reconnecting with jittered exponential
    /// backoff, and calls `on_event` for each event applied.
    pub async fn run_live(&self, shutdown: CancellationToken, mut on_event: impl FnMut(&Event)) {
        let mut attempt = 0u32;
        while !shutdown.is_cancelled() {
            self.set_connection(ConnectionState::Connecting);
            match self
                .live_session(&shutdown, &mut on_event, &mut attempt)
                .await
            {
                Ok(()) => break,
                Err(error) => tracing::info!(%error, "the live connection ended"),
            }
            attempt += 1;
            let delay = backoff(attempt);
            self.set_connection(ConnectionState::Reconnecting {
                attempt,
                retry_in_ms: delay.as_millis() as u64,
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.set_connection(ConnectionState::Offline);
    }

    async fn live_session(
        &self,
        shutdown: &CancellationToken,
        on_event: &mut impl FnMut(&Event),
        attempt: &mut u32,
    ) -> Result<()> {
        let mut socket = self.connect().await?;
        let mut report = SyncReport::default();
        self.catch_up(&mut socket, &mut report, |event| on_event(event))
            .await?;
        if !report.resynced {
            // Call state is not replayed, so a resumed connection fetches it.
            self.refresh_rooms().await?;
        }
        *attempt = 0;
        self.flush_outbox().await?;

        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            let frame = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = socket.close(None).await;
                    return Ok(());
                }
                _ = ping.tick() => {
                    socket.send(WsMessage::Text(r#"{"type":"ping"}"#.into())).await?;
                    continue;
                }
                frame = tokio::time::timeout(SILENCE_TIMEOUT, socket.next()) => frame,
            };
            let frame = match frame {
                Err(_) => return Err(ClientError::Network("the server went silent".into())),
                Ok(None) => {
                    return Err(ClientError::Network(
                        "the server closed the connection".into(),
                    ));
                }
                Ok(Some(frame)) => frame?,
            };
            let WsMessage::Text(text) = frame else {
                continue;
            };
            match serde_json::from_str::<ServerFrame>(&text)? {
                ServerFrame::Event(event) => {
                    self.apply(&event)?;
                    on_event(&event);
                    // A message of ours from another device, or a retry, may have
                    // made queued items sendable.
                    if self.cache.next_pending()?.is_some() {
                        self.flush_outbox().await?;
                    }
                }
                ServerFrame::Control(Control::Resync { seq, reason }) => {
                    tracing::info!(reason, "the server asked for a resync");
                    self.resync(seq).await?;
                }
                ServerFrame::Control(Control::CallEvent { room_id, event }) => {
                    self.apply_call_event(room_id, event);
                }
                ServerFrame::Control(_) => {}
            }
        }
    }

    async fn connect(&self) -> Result<Socket> {
        self.set_connection(ConnectionState::Connecting);
        let last_seq = self.cache.last_seq()?;
        let since = (last_seq > 0).then_some(last_seq);
        let mut request = self.api.ws_url(since).into_client_request()?;
        let token = self.api.token().ok_or(ClientError::NotLoggedIn)?;
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Usage("the stored token is not valid header text".into()))?;
        request.headers_mut().insert("authorization", header);
        let (socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(connected) => connected,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status();
                self.set_connection(ConnectionState::Offline);
                return Err(ClientError::Rejected {
                    status,
                    code: if status == 401 {
                        "invalid_token".into()
                    } else {
                        "websocket_rejected".into()
                    },
                    message: format!(
                        "the server refused the live connection ({status}); log in again"
                    ),
                });
            }
            Err(error) => {
                self.set_connection(ConnectionState::Offline);
                return Err(error.into());
            }
        };
        self.set_connection(ConnectionState::Online);
        Ok(socket)
    }

    /// Reads frames until the server's replay is complete.
    async fn catch_up(
        &self,
        socket: &mut Socket,
        report: &mut SyncReport,
        mut on_event: impl FnMut(&Event),
    ) -> Result<()> {
        let resuming = self.cache.last_seq()? > 0;
        loop {
            let frame = tokio::time::timeout(SILENCE_TIMEOUT, socket.next())
                .await
                .map_err(|_| ClientError::Network("the server went silent during catch-up".into()))?
                .ok_or_else(|| ClientError::Network("the server closed the connection".into()))??;
            let WsMessage::Text(text) = frame else {
                continue;
            };
            match serde_json::from_str::<ServerFrame>(&text)? {
                ServerFrame::Control(Control::Hello { seq, .. }) if !resuming => {
                    // A fresh cache: fetch the current state, then follow from `seq`.
                    self.resync(seq).await?;
                    report.resynced = true;
                    return Ok(());
                }
                ServerFrame::Control(Control::Hello { .. }) => {}
                ServerFrame::Control(Control::Resumed { .. }) => return Ok(()),
                ServerFrame::Control(Control::Resync { seq, reason }) => {
                    tracing::info!(reason, "the server asked for a resync");
                    self.resync(seq).await?;
                    report.resynced = true;
                    return Ok(());
                }
                ServerFrame::Control(_) => {}
                ServerFrame::Event(event) => {
                    self.apply(&event)?;
                    report.events_applied += 1;
                    on_event(&event);
                }
            }
        }
    }

    fn apply(&self, event: &Event) -> Result<()> {
        let changes = self.cache.apply_event(event, self.user_id())?;
        self.notify(changes);
        Ok(())
    }

    /// Refetches rooms and the newest page of each room, which replaces the room's
    /// cached messages, then records `seq` as the position to resume from.
    async fn resync(&self, seq: i64) -> Result<()> {
        let rooms = self.refresh_rooms().await?;
        for room in &rooms {
            let page = self.api.history(room.id, None, None, PAGE_SIZE).await?;
            let complete = (page.len() as u32) < PAGE_SIZE;
            self.cache.replace_messages(room.id, &page, complete)?;
            let members = self.api.members(room.id).await?;
            self.cache.replace_members(room.id, &members)?;
            self.notify([Change::MessagesChanged { room_id: room.id }]);
        }
        self.cache.set_last_seq(seq)
    }
}

impl Engine {
    /// Returns the profile the engine was opened on, e.g. for folders beside its cache.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Full-jitter exponential backoff: a random delay up to `base * 2^attempt`, capped.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_MAX);
    let millis =
        rand::rng().random_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert!(backoff(1) <= Duration::from_secs(1));
        assert!(backoff(1) >= Duration::from_millis(500));
        for _ in 0..20 {
            assert!(backoff(30) <= BACKOFF_MAX);
            assert!(backoff(30) >= BACKOFF_MAX / 2);
        }
    }
}
