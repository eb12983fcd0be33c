//! The Tauri commands for room moderation and for joining others: room settings, invites,
//! kicks, bans and roles, pins, a room's files, and direct messages.
//!
//! Unlike the message writes in `commands`, these go straight to the server and are not
//! queued, so offline they fail with a retryable `network` error. The server checks the
//! user's role and its rejection reaches the UI as a `rejected` error with the server's
//! message.

use roomler_shared::api::UpdateRoomRequest;
use tauri::{AppHandle, State};
use uuid::Uuid;

use crate::dto::{Ban, Change, Invite, Member, Message, Role, Room, RoomFile};
use crate::error::CommandError;
use crate::events::{EngineEvent, emit};
use crate::state::AppState;

type CommandResult<T> = Result<T, CommandError>;

/// Changes a room's name, topic or password. Absent values stay as they are. A password
/// of `""` removes the password. Needs the moderator role.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn update_room(
    state: State<'_, AppState>,
    room_id: Uuid,
    name: Option<String>,
    topic: Option<String>,
    password: Option<String>,
) -> CommandResult<Room> {
    if name.is_none() && topic.is_none() && password.is_none() {
        return Err(CommandError::invalid_input(
            "nothing to change: give a new name, topic or password",
        ));
    }
    let changes = UpdateRoomRequest {
        name,
        topic,
        password,
    };
    let room = state.engine()?.update_room(room_id, changes).await?;
    Ok(room.into())
}

/// Creates an invite to a room. It lasts `expires_in_secs` seconds, one day when absent,
/// and with `single_use` admits one person. Needs the moderator role.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, expires_in_secs, single_use))]
pub async fn create_invite(
    state: State<'_, AppState>,
    room_id: Uuid,
    expires_in_secs: Option<u32>,
    single_use: bool,
) -> CommandResult<Invite> {
    let engine = state.engine()?;
    let invite = engine
        .create_invite(room_id, expires_in_secs.map(u64::from), single_use)
        .await?;
    Ok(invite.into())
}

/// Joins the room of an invite, given as its code or as the whole link.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all)]
pub async fn accept_invite(state: State<'_, AppState>, code: String) -> CommandResult<Room> {
    let room = state.engine()?.accept_invite(&code).await?;
    Ok(room.into())
}

/// Opens the direct room with the user `username`, creating it when there is none.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(username = %username))]
pub async fn open_direct(state: State<'_, AppState>, username: String) -> CommandResult<Room> {
    let room = state.engine()?.open_direct(&username).await?;
    Ok(room.into())
}

/// Lists the users banned from a room, newest first. Needs the moderator role.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn bans(state: State<'_, AppState>, room_id: Uuid) -> CommandResult<Vec<Ban>> {
    let bans = state.engine()?.bans(room_id).await?;
    Ok(bans.into_iter().map(Ban::from).collect())
}

/// Lifts a user's ban from a room, so they may join again, and returns the bans left.
/// Needs the moderator role.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %user_id))]
pub async fn unban_member(
    state: State<'_, AppState>,
    room_id: Uuid,
    user_id: Uuid,
) -> CommandResult<Vec<Ban>> {
    let bans = state.engine()?.unban(room_id, user_id).await?;
    Ok(bans.into_iter().map(Ban::from).collect())
}

/// Makes the member `user_id` the room's owner and returns the members. The user, the
/// owner until now, becomes a moderator. Needs the owner role.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %user_id))]
pub async fn transfer_ownership(
    state: State<'_, AppState>,
    room_id: Uuid,
    user_id: Uuid,
) -> CommandResult<Vec<Member>> {
    let members = state.engine()?.transfer_ownership(room_id, user_id).await?;
    Ok(members.into_iter().map(Member::from).collect())
}

/// Removes a member from a room and returns the members left. Needs a role above the
/// member's.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %user_id))]
pub async fn kick_member(
    state: State<'_, AppState>,
    room_id: Uuid,
    user_id: Uuid,
) -> CommandResult<Vec<Member>> {
    let members = state.engine()?.kick(room_id, user_id).await?;
    Ok(members.into_iter().map(Member::from).collect())
}

/// Bans a user from a room and returns the members left. Needs a role above the user's.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %user_id))]
pub async fn ban_member(
    state: State<'_, AppState>,
    room_id: Uuid,
    user_id: Uuid,
) -> CommandResult<Vec<Member>> {
    let members = state.engine()?.ban(room_id, user_id).await?;
    Ok(members.into_iter().map(Member::from).collect())
}

/// Makes a member a moderator or a plain member again and returns the members. Only a
/// role below the user's own may be given, so in practice only the owner does this.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id, %user_id, ?role))]
pub async fn set_member_role(
    state: State<'_, AppState>,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> CommandResult<Vec<Member>> {
    if matches!(role, Role::Owner) {
        return Err(CommandError::invalid_input(
            "invalid role owner: a room has exactly one owner, so give member or moderator",
        ));
    }
    let engine = state.engine()?;
    let members = engine.set_role(room_id, user_id, role.into()).await?;
    Ok(members.into_iter().map(Member::from).collect())
}

/// Pins a message (`pinned`) or unpins it and returns the message. Needs the moderator
/// role.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%message_id, pinned))]
pub async fn set_pin(
    app: AppHandle,
    state: State<'_, AppState>,
    message_id: Uuid,
    pinned: bool,
) -> CommandResult<Message> {
    let message = state.engine()?.set_pin(message_id, pinned).await?;
    let room_id = message.room_id;
    emit(
        &app,
        &EngineEvent::Cache(Change::MessagesChanged { room_id }),
    );
    Ok(message.into())
}

/// Lists the pinned messages of a room from the server.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn pins(state: State<'_, AppState>, room_id: Uuid) -> CommandResult<Vec<Message>> {
    let messages = state.engine()?.pins(room_id).await?;
    Ok(messages.into_iter().map(Message::from).collect())
}

/// Lists the files of a room from the server, newest first.
#[tauri::command]
#[specta::specta]
#[tracing::instrument(skip_all, fields(%room_id))]
pub async fn room_files(state: State<'_, AppState>, room_id: Uuid) -> CommandResult<Vec<RoomFile>> {
    let files = state.engine()?.room_files(room_id).await?;
    Ok(files.into_iter().map(RoomFile::from).collect())
}
