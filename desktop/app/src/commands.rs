//! The Tauri commands the UI invokes. Each one is a thin call into the engine: reads come
//! from the offline cache, and writes are queued in the outbox and sent in the background.
//!
//! Tauri turns the UI's camelCase argument names (`roomId`) into these snake_case ones.

use std::sync::Arc;

use roomler_client::{ClientError, Engine, HistoryWindow};
use roomler_shared::model::RoomKind;
use serde::Serialize;
use tauri::{AppHandle, State};
use uuid::Uuid;

use crate::cli::parse_server_url;
use crate::dto::{
    CachedRoom, Change, ConnectionState, LocalHit, Member, Message, OutboxItem, Room,
};
use crate::error::CommandError;
use crate::events::{EngineEvent, emit};
use crate::state::AppState;

/// Maximum number of messages one `history` call returns.
pub const HISTORY_MAX_LIMIT: u32 = 1000;
/// Maximum number of hits one `search` call returns.
pub const SEARCH_LIMIT: u32 = 50;

type CommandResult<T> = Result<T, CommandError>;

/// The logged-in account, or the values that pre-fill the login form.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct SessionStatus {
    pub logged_in: bool,
    /// The session's server; when logged out, the profile's last server, else the one
    /// from `--server` or `ROOMLER_SERVER_URL`.
    pub server_url: Option<String>,
    /// The session's username; when logged out, the profile's last one.
    pub username: Option<String>,
    /// Set only while logged in.
    pub user_id: Option<Uuid>,
    /// The live connection; `offline` while logged out.
    pub connection: ConnectionState,
}

/// The account a login or registration opened a session for.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct LoginResult {
    pub user_id: Uuid,
    pub username: String,
}

/// Returns the logged-in account and the connection, or the values that pre-fill the
/// login form.
#[tauri::command]
#[specta::specta]
pub async fn session_status(state: State<'_, AppState>) -> CommandResult<SessionStatus> {
    if let Some(engine) = state.current_engine() {
        let settings = engine.settings();
        let connection = engine.connection_state().borrow().clone();
        return Ok(SessionStatus {
            logged_in: true,
            server_url: Some(settings.server_url.clone()),
            username: Some(settings.username.clone()),
            user_id: Some(settings.user_id),
            connection: connection.into(),
        });
    }
    let previous = state.profile().settings()?;
    let server_url = previous
        .as_ref()
        .map(|settings| settings.server_url.clone())
        .or_else(|| state.server_hint().map(str::to_string));
    Ok(SessionStatus {
        logged_in: false,
        server_url,
        username: previous.map(|settings| settings.username),
        user_id: None,
        connection: ConnectionState::Offline,
    })
}

#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(server = %server))]
pub async fn login(
    app: AppHandle,
    state: State<'_, AppState>,
    server: String,
    login: String,
    password: String,
) -> CommandResult<LoginResult> {
    let server = parse_server_url(&server).map_err(CommandError::invalid_input)?;
    // The running session goes first because a login to another account replaces the
    // profile's cache, which that session's engine has open.
    let had_session = state.end_session(&app).await.is_some();
    let profile = state.profile().clone();
    let opened = Engine::login(profile, &server, &login, &password).await;
    finish_login(&app, &state, opened, had_session)
}

#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(server = %server, username = %username))]
pub async fn register(
    app: AppHandle,
    state: State<'_, AppState>,
    server: String,
    username: String,
    email: String,
    password: String,
) -> CommandResult<LoginResult> {
    let server = parse_server_url(&server).map_err(CommandError::invalid_input)?;
    let had_session = state.end_session(&app).await.is_some();
    let profile = state.profile().clone();
    let opened = Engine::register(profile, &server, &username, &email, &password).await;
    finish_login(&app, &state, opened, had_session)
}

/// Starts the session a login or registration opened. When that failed, a session that
/// ran before is opened again from the profile, which a rejected login leaves as it was.
fn finish_login(
    app: &AppHandle,
    state: &AppState,
    opened: Result<Engine, ClientError>,
    had_session: bool,
) -> CommandResult<LoginResult> {
    let engine = match opened {
        Ok(engine) => engine,
        Err(error) => {
            if had_session {
                crate::state::resume_session(app);
            }
            return Err(error.into());
        }
    };
    let result = LoginResult {
        user_id: engine.user_id(),
        username: engine.settings().username.clone(),
    };
    state.start_session(app, engine);
    Ok(result)
}

/// Ends the session on the server when it is reachable and deletes the stored token. The
/// cache stays, so the same account sees its history again after the next login.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all)]
pub async fn logout(app: AppHandle, state: State<'_, AppState>) -> CommandResult<()> {
    let Some(engine) = state.end_session(&app).await else {
        return Ok(());
    };
    match Arc::try_unwrap(engine) {
        Ok(engine) => engine.logout().await?,
        Err(shared) => {
            // A background flush still uses the engine, so `Engine::logout`, which takes it
            // by value, cannot run. These are its steps on the shared engine.
            tracing::debug!("the engine is still in use; logging out through its API client");
            let result = shared.api().logout().await;
            state.profile().forget_token()?;
            match result {
                Err(error) if error.is_network() => {}
                Err(ClientError::Rejected { status, .. }) if status == 401 => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Lists the user's rooms from the cache, by path, with unread counts.
#[tauri::command]
#[specta::specta]
pub async fn list_rooms(state: State<'_, AppState>) -> CommandResult<Vec<CachedRoom>> {
    let rooms = state.engine()?.rooms()?;
    Ok(rooms.into_iter().map(CachedRoom::from).collect())
}

/// Searches the server's public rooms for paths that match `query`.
#[tauri::command]
#[specta::specta]
pub async fn directory(state: State<'_, AppState>, query: String) -> CommandResult<Vec<Room>> {
    let rooms = state.engine()?.directory(&query).await?;
    Ok(rooms.into_iter().map(Room::from).collect())
}

#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn join_room(
    state: State<'_, AppState>,
    name: String,
    password: Option<String>,
) -> CommandResult<Room> {
    let room = state.engine()?.join(&name, password).await?;
    Ok(room.into())
}

/// Creates a public room, or a private one with `is_private`, under the room `parent` (a
/// path or id) when given.
///
/// The flag is not called `private` because that is a reserved word in strict-mode
/// JavaScript, so the generated binding could not take a parameter of that name.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(name = %name, is_private))]
pub async fn create_room(
    state: State<'_, AppState>,
    name: String,
    is_private: bool,
    parent: Option<String>,
    password: Option<String>,
) -> CommandResult<Room> {
    let kind = if is_private {
        RoomKind::Private
    } else {
        RoomKind::Public
    };
    let engine = state.engine()?;
    let room = engine
        .create_room(&name, kind, password, parent.as_deref())
        .await?;
    Ok(room.into())
}

/// Up to `limit` messages of a room, newest first, from the cache. Older pages are fetched
/// into the cache first when it has fewer and the server is reachable.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, limit))]
pub async fn history(
    state: State<'_, AppState>,
    room_id: Uuid,
    limit: u32,
) -> CommandResult<Vec<Message>> {
    check_history_limit(limit)?;
    let messages = state.engine()?.history(room_id, limit).await?;
    Ok(messages.into_iter().map(Message::from).collect())
}

/// Up to `limit` messages of a room before the message numbered `before` or after the one
/// numbered `after` (give exactly one), oldest first, for a timeline that shows a window
/// of a long history. Older pages are fetched into the cache first when it has too few.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, ?before, ?after, limit))]
pub async fn history_page(
    state: State<'_, AppState>,
    room_id: Uuid,
    before: Option<i64>,
    after: Option<i64>,
    limit: u32,
) -> CommandResult<Vec<Message>> {
    check_history_limit(limit)?;
    let window = match (before, after) {
        (Some(before), None) => HistoryWindow::Before(before),
        (None, Some(after)) => HistoryWindow::After(after),
        _ => {
            return Err(CommandError::invalid_input(format!(
                "invalid history window (before {before:?}, after {after:?}): give exactly \
                 one of before and after"
            )));
        }
    };
    let messages = state.engine()?.history_page(room_id, window, limit).await?;
    Ok(messages.into_iter().map(Message::from).collect())
}

/// Up to `limit` messages of a room around the message `message_id`, oldest first, so
/// that a reply's parent or a search hit opens in place.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %message_id, limit))]
pub async fn history_around(
    state: State<'_, AppState>,
    room_id: Uuid,
    message_id: Uuid,
    limit: u32,
) -> CommandResult<Vec<Message>> {
    check_history_limit(limit)?;
    let messages = state
        .engine()?
        .history_around(room_id, message_id, limit)
        .await?;
    Ok(messages.into_iter().map(Message::from).collect())
}

/// Rejects a history `limit` above [`HISTORY_MAX_LIMIT`].
fn check_history_limit(limit: u32) -> CommandResult<()> {
    if limit > HISTORY_MAX_LIMIT {
        return Err(CommandError::invalid_input(format!(
            "invalid history limit {limit}: at most {HISTORY_MAX_LIMIT} messages per call; \
             page with history_page"
        )));
    }
    Ok(())
}

/// Fetches the page before the oldest cached message of a room and returns how many
/// messages it added, 0 once the whole history is cached. Fails with `network` offline.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn load_older(
    app: AppHandle,
    state: State<'_, AppState>,
    room_id: Uuid,
) -> CommandResult<usize> {
    let engine = state.engine()?;
    let added = engine.fetch_older(room_id).await?;
    if added > 0 {
        emit(
            &app,
            &EngineEvent::Cache(Change::MessagesChanged { room_id }),
        );
    }
    Ok(added)
}

/// Lists every queued operation, pending and failed, oldest first.
#[tauri::command]
#[specta::specta]
pub async fn outbox(state: State<'_, AppState>) -> CommandResult<Vec<OutboxItem>> {
    let items = state.engine()?.outbox()?;
    Ok(items.into_iter().map(OutboxItem::from).collect())
}

/// Queues a message and starts sending the outbox in the background. The message shows
/// in the room's history once the server has it.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn send_message(
    state: State<'_, AppState>,
    room_id: Uuid,
    body: String,
    reply_to: Option<Uuid>,
    attachments: Option<Vec<Uuid>>,
) -> CommandResult<OutboxItem> {
    let engine = state.engine()?;
    let item = engine.queue_message(room_id, &body, reply_to, attachments.unwrap_or_default())?;
    state.flush_in_background(engine);
    Ok(item.into())
}

#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %message_id))]
pub async fn edit_message(
    state: State<'_, AppState>,
    room_id: Uuid,
    message_id: Uuid,
    body: String,
) -> CommandResult<OutboxItem> {
    let engine = state.engine()?;
    let item = engine.queue_edit(message_id, room_id, &body)?;
    state.flush_in_background(engine);
    Ok(item.into())
}

#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %message_id))]
pub async fn delete_message(
    state: State<'_, AppState>,
    room_id: Uuid,
    message_id: Uuid,
) -> CommandResult<OutboxItem> {
    let engine = state.engine()?;
    let item = engine.queue_delete(message_id, room_id)?;
    state.flush_in_background(engine);
    Ok(item.into())
}

/// Adds the user's reaction `emoji` to a message (`present`) or removes it.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %message_id, present))]
pub async fn set_reaction(
    state: State<'_, AppState>,
    room_id: Uuid,
    message_id: Uuid,
    emoji: String,
    present: bool,
) -> CommandResult<OutboxItem> {
    let engine = state.engine()?;
    let item = engine.queue_reaction(message_id, room_id, &emoji, present)?;
    state.flush_in_background(engine);
    Ok(item.into())
}

/// Puts a failed outbox item back in the queue and starts sending it.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(id))]
pub async fn retry_outbox(state: State<'_, AppState>, id: i64) -> CommandResult<()> {
    let engine = state.engine()?;
    if !engine.retry(id)? {
        return Err(missing_outbox_item(id));
    }
    state.flush_in_background(engine);
    Ok(())
}

#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(id))]
pub async fn discard_outbox(state: State<'_, AppState>, id: i64) -> CommandResult<()> {
    if !state.engine()?.discard(id)? {
        return Err(missing_outbox_item(id));
    }
    Ok(())
}

fn missing_outbox_item(id: i64) -> CommandError {
    CommandError::not_found(format!(
        "outbox item {id} not found; it may have been sent or discarded meanwhile"
    ))
}

/// Full-text search over every cached message, best matches first.
#[tauri::command]
#[specta::specta]
pub async fn search(state: State<'_, AppState>, query: String) -> CommandResult<Vec<LocalHit>> {
    let hits = state.engine()?.search(&query, SEARCH_LIMIT)?;
    Ok(hits.into_iter().map(LocalHit::from).collect())
}

/// Lists the members of a room, fetched from the server into the cache, or from the cache
/// alone when the server is unreachable.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn members(state: State<'_, AppState>, room_id: Uuid) -> CommandResult<Vec<Member>> {
    let engine = state.engine()?;
    let members = match engine.api().members(room_id).await {
        Ok(members) => {
            engine.cache().replace_members(room_id, &members)?;
            members
        }
        Err(error) if error.is_network() => {
            tracing::debug!(%error, "the server is unreachable; listing the cached members");
            engine.cache().members(room_id)?
        }
        Err(error) => return Err(error.into()),
    };
    Ok(members.into_iter().map(Member::from).collect())
}

/// Marks the messages of a room up to `seq` as read, which lowers its unread count.
///
/// NOTE: the read marker stays in this device's cache. The server has no read markers,
/// so other devices keep their own counts.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, seq))]
pub async fn mark_read(state: State<'_, AppState>, room_id: Uuid, seq: i64) -> CommandResult<()> {
    state.engine()?.mark_read(room_id, seq)?;
    Ok(())
}
