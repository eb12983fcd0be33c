//! Rooms, sub-rooms and direct rooms; joining, roles, moderation and invites.
//!
//! Visibility rule: a member sees a room; a non-member sees a public room whose
//! ancestors they may all see. Everything else answers 404, exactly as for a room
//! that does not exist.

use std::collections::HashSet;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use roomler_shared::api::{
    Ban, BanList, CreateDirectRequest, CreateInviteRequest, CreateRoomRequest, JoinRoomRequest,
    MemberList, RoomList, SetRoleRequest, TransferOwnershipRequest, UpdateRoomRequest,
};
use roomler_shared::limits;
use roomler_shared::model::{Invite, Role, Room, RoomKind, UserRef};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Json, Path, Query};
use crate::AppState;
use crate::auth::{AuthUser, hash_password, token_hash, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    Conflict, Departure, InviteRecord, Membership, NewDirect, NewRoom, RoomChanges, RoomRecord,
};

/// Invite lifetime when the request names none: one day.
const DEFAULT_INVITE_SECS: u64 = 86_400;
/// The maximum invite lifetime: thirty days.
const MAX_INVITE_SECS: u64 = 30 * 86_400;
const DIRECTORY_LIMIT: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms", post(create_room).get(my_rooms))
        .route("/rooms/directory", get(directory))
        .route("/rooms/join", post(join))
        .route(
            "/rooms/{id}",
            get(room).patch(update_room).delete(delete_room),
        )
        .route("/rooms/{id}/children", get(children))
        .route("/rooms/{id}/members", get(members).post(add_member))
        .route("/rooms/{id}/leave", post(leave))
        .route("/rooms/{id}/members/{user_id}", delete(kick))
        .route("/rooms/{id}/members/{user_id}/role", put(set_role))
        .route("/rooms/{id}/bans", get(bans))
        .route("/rooms/{id}/bans/{user_id}", put(ban).delete(unban))
        .route("/rooms/{id}/owner", put(transfer_ownership))
        .route("/rooms/{id}/invites", post(create_invite))
        .route("/invites/{code}", post(accept_invite))
        .route("/direct", post(create_direct))
}

/// The room and the caller's membership, or 404 when the caller may not see it, or
/// 403 `not_a_member` for a visible room the caller has not joined.
pub async fn require_member(
    state: &AppState,
    user_id: Uuid,
    room_id: Uuid,
) -> ApiResult<(RoomRecord, Membership)> {
    let room = state
        .store
        .room_by_id(room_id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    if let Some(membership) = state.store.membership(room_id, user_id).await? {
        return Ok((room, membership));
    }
    if can_see(state, user_id, &room).await? {
        return Err(ApiError::forbidden(
            "not_a_member",
            format!("You are not a member of {:?}; join it first.", room.path),
        ));
    }
    Err(ApiError::room_not_found())
}

/// Like [`require_member`], and the caller must have at least `role`.
pub async fn require_role(
    state: &AppState,
    user_id: Uuid,
    room_id: Uuid,
    role: Role,
) -> ApiResult<(RoomRecord, Membership)> {
    let (room, membership) = require_member(state, user_id, room_id).await?;
    if membership.role < role {
        return Err(ApiError::forbidden(
            "insufficient_role",
            format!(
                "Only a room {} or above may do this; you are a {}.",
                role.as_str(),
                membership.role.as_str()
            ),
        ));
    }
    Ok((room, membership))
}

/// Whether a user may see that a room exists: as a member, or because it is public
/// and the user may see its parent.
pub(crate) async fn can_see(state: &AppState, user_id: Uuid, room: &RoomRecord) -> ApiResult<bool> {
    let mut current = room.clone();
    loop {
        if state.store.membership(current.id, user_id).await?.is_some() {
            return Ok(true);
        }
        if current.kind != RoomKind::Public {
            return Ok(false);
        }
        let Some(parent_id) = current.parent_id else {
            return Ok(true);
        };
        match state.store.room_by_id(parent_id).await? {
            Some(parent) => current = parent,
            None => return Ok(false),
        }
    }
}

#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = CreateRoomRequest,
    responses((status = 201, body = Room), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn create_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<CreateRoomRequest>,
) -> ApiResult<Response> {
    let name = limits::room_name(&request.name)?;
    let topic = limits::topic(request.topic.as_deref().unwrap_or_default())?;
    let password_hash = match (request.kind, request.password) {
        (RoomKind::Direct, _) => {
            return Err(ApiError::invalid(
                "invalid_kind",
                "Create direct rooms with POST /api/direct; rooms here are public or private.",
            ));
        }
        (RoomKind::Public, Some(_)) => {
            return Err(ApiError::invalid(
                "invalid_password",
                "A public room cannot have a password; make it private or leave the password out.",
            ));
        }
        (RoomKind::Private, Some(password)) => {
            limits::room_password(&password)?;
            Some(hash_password(password).await.map_err(ApiError::internal)?)
        }
        (_, None) => None,
    };

    let path = match request.parent_id {
        Some(parent_id) => {
            let (parent, _) = require_member(&state, auth.id(), parent_id).await?;
            if parent.kind == RoomKind::Direct {
                return Err(ApiError::invalid(
                    "invalid_parent",
                    "Direct rooms cannot have sub-rooms.",
                ));
            }
            let depth = parent.path.split('.').count() + 1;
            if depth > limits::ROOM_MAX_DEPTH {
                return Err(ApiError::invalid(
                    "invalid_parent",
                    format!(
                        "Sub-rooms nest at most {} levels deep.",
                        limits::ROOM_MAX_DEPTH
                    ),
                ));
            }
            format!("{}.{name}", parent.path)
        }
        None => name.clone(),
    };

    let new = NewRoom {
        name,
        path,
        kind: request.kind,
        parent_id: request.parent_id,
        topic,
        password_hash,
        creator_id: auth.id(),
    };
    let path = new.path.clone();
    let (room, fanout) =
        state.store.create_room(new).await.map_err(|error| {
            ApiError::from_store_naming(error, &[(Conflict::RoomPathTaken, &path)])
        })?;
    state.publish([fanout]).await;
    tracing::info!(room_id = %room.id, user_id = %auth.id(), "created a room");
    Ok((StatusCode::CREATED, Json(room.to_model(Some(Role::Owner)))).into_response())
}

#[utoipa::path(get, path = "/api/rooms", tag = "rooms",
    responses((status = 200, body = RoomList)), security(("bearer" = [])))]
pub(crate) async fn my_rooms(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<RoomList>> {
    let rooms = state.store.rooms_of_user(auth.id()).await?;
    let ids: Vec<Uuid> = rooms.iter().map(|(room, _)| room.id).collect();
    let mut calls = state.calls.summaries(&ids).await;
    let rooms = rooms
        .into_iter()
        .map(|(room, role)| {
            let mut model = room.to_model(Some(role));
            model.call = calls.remove(&room.id);
            model
        })
        .collect();
    Ok(Json(RoomList { rooms }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct DirectoryQuery {
    /// Part of a room path; empty lists every public room.
    #[serde(default)]
    q: String,
}

#[utoipa::path(get, path = "/api/rooms/directory", tag = "rooms", params(DirectoryQuery),
    responses((status = 200, body = RoomList)), security(("bearer" = [])))]
pub(crate) async fn directory(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<DirectoryQuery>,
) -> ApiResult<Json<RoomList>> {
    let mine: HashSet<Uuid> = state
        .store
        .rooms_of_user(auth.id())
        .await?
        .into_iter()
        .map(|(room, _)| room.id)
        .collect();
    let rooms = state
        .store
        .directory(query.q.trim(), DIRECTORY_LIMIT)
        .await?;
    let mut listed = Vec::with_capacity(rooms.len());
    for room in rooms {
        let role = if mine.contains(&room.id) {
            state
                .store
                .membership(room.id, auth.id())
                .await?
                .map(|m| m.role)
        } else {
            None
        };
        listed.push(room.to_model(role));
    }
    Ok(Json(RoomList { rooms: listed }))
}

#[utoipa::path(post, path = "/api/rooms/join", tag = "rooms", request_body = JoinRoomRequest,
    responses((status = 200, body = Room), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn join(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<JoinRoomRequest>,
) -> ApiResult<Json<Room>> {
    let path = limits::room_path(&request.name)?;
    let room = state.store.room_by_path(&path).await?.ok_or_else(|| {
        ApiError::not_found(
            "room_not_found",
            format!("No room is named {path:?}, or it is private and needs an invite."),
        )
    })?;
    if let Some(membership) = state.store.membership(room.id, auth.id()).await? {
        return Ok(Json(room.to_model(Some(membership.role))));
    }

    match room.kind {
        RoomKind::Direct => return Err(ApiError::room_not_found()),
        // A public sub-room of a room the caller may not see is as hidden as its parent.
        RoomKind::Public if !can_see(&state, auth.id(), &room).await? => {
            return Err(ApiError::room_not_found());
        }
        RoomKind::Public => {}
        RoomKind::Private => {
            // A private room without a password is joined by invite only, and so is
            // invisible here.
            let Some(hash) = room.password_hash.clone() else {
                return Err(ApiError::not_found(
                    "room_not_found",
                    format!("No room is named {path:?}, or it is private and needs an invite."),
                ));
            };
            let Some(password) = request.password else {
                return Err(ApiError::forbidden(
                    "password_required",
                    format!("The room {path:?} is private; send its password to join."),
                ));
            };
            // Room passwords are guessed as logins are, so they share the limits.
            let rate = &state.settings.rate_limit;
            if rate.enabled {
                let key = format!("room-password:{}:{}", auth.id(), room.id);
                state
                    .limiter
                    .check(
                        &key,
                        rate.login_per_account_per_minute,
                        Duration::from_secs(60),
                    )
                    .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
            }
            if !verify_password(password, Some(hash))
                .await
                .map_err(ApiError::internal)?
            {
                return Err(ApiError::forbidden(
                    "wrong_password",
                    format!("The password for {path:?} is wrong; ask the room's owner for it."),
                ));
            }
        }
    }

    let room = admit(&state, auth.id(), room).await?;
    Ok(Json(room))
}

/// Adds the user to the room as a member, after the checks every way of joining
/// shares: not banned, and a member of the parent.
pub(crate) async fn admit(state: &AppState, user_id: Uuid, room: RoomRecord) -> ApiResult<Room> {
    check_admission(state, user_id, &room).await?;
    add_member_now(state, user_id, room).await
}

/// The checks every way of joining shares: not banned, and a member of the parent.
async fn check_admission(state: &AppState, user_id: Uuid, room: &RoomRecord) -> ApiResult<()> {
    if state.store.is_banned(room.id, user_id).await? {
        return Err(ApiError::forbidden(
            "banned",
            format!("You are banned from {:?}.", room.path),
        ));
    }
    if let Some(parent_id) = room.parent_id
        && state.store.membership(parent_id, user_id).await?.is_none()
    {
        let parent = state.store.room_by_id(parent_id).await?;
        let parent_path = parent.map(|parent| parent.path).unwrap_or_default();
        return Err(ApiError::forbidden(
            "not_a_parent_member",
            format!("Join {parent_path:?} first: a sub-room's members are members of its parent."),
        ));
    }
    Ok(())
}

async fn add_member_now(state: &AppState, user_id: Uuid, room: RoomRecord) -> ApiResult<Room> {
    let fanout = state
        .store
        .add_member(room.id, user_id, Role::Member)
        .await?;
    state.publish([fanout]).await;
    tracing::info!(room_id = %room.id, %user_id, "joined a room");
    let room = state
        .store
        .room_by_id(room.id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    Ok(room.to_model(Some(Role::Member)))
}

#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms",
    responses((status = 200, body = Room), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Room>> {
    let room = state
        .store
        .room_by_id(id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    let membership = state.store.membership(id, auth.id()).await?;
    if membership.is_none() && !can_see(&state, auth.id(), &room).await? {
        return Err(ApiError::room_not_found());
    }
    Ok(Json(room.to_model(membership.map(|m| m.role))))
}

#[utoipa::path(get, path = "/api/rooms/{id}/children", tag = "rooms",
    responses((status = 200, body = RoomList), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn children(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RoomList>> {
    let room = state
        .store
        .room_by_id(id)
        .await?
        .ok_or_else(ApiError::room_not_found)?;
    if !can_see(&state, auth.id(), &room).await? {
        return Err(ApiError::room_not_found());
    }
    let mut visible = Vec::new();
    for child in state.store.child_rooms(id).await? {
        let membership = state.store.membership(child.id, auth.id()).await?;
        if membership.is_some() || child.kind == RoomKind::Public {
            visible.push(child.to_model(membership.map(|m| m.role)));
        }
    }
    Ok(Json(RoomList { rooms: visible }))
}

#[utoipa::path(patch, path = "/api/rooms/{id}", tag = "rooms", request_body = UpdateRoomRequest,
    responses((status = 200, body = Room), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub(crate) async fn update_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateRoomRequest>,
) -> ApiResult<Json<Room>> {
    let (room, membership) = require_role(&state, auth.id(), id, Role::Moderator).await?;
    if room.kind == RoomKind::Direct && request.name.is_some() {
        return Err(ApiError::invalid(
            "invalid_name",
            "Direct rooms have no name to change.",
        ));
    }
    let name = request.name.as_deref().map(limits::room_name).transpose()?;
    let topic = request.topic.as_deref().map(limits::topic).transpose()?;
    let password_hash = match request.password {
        None => None,
        Some(password) if password.is_empty() => Some(None),
        Some(_) if room.kind != RoomKind::Private => {
            return Err(ApiError::invalid(
                "invalid_password",
                "Only private rooms have a password.",
            ));
        }
        Some(password) => {
            limits::room_password(&password)?;
            Some(Some(
                hash_password(password).await.map_err(ApiError::internal)?,
            ))
        }
    };

    let new_name = name.clone().unwrap_or_default();
    let changes = RoomChanges {
        name,
        topic,
        password_hash,
    };
    let (room, fanouts) = state
        .store
        .update_room(id, changes)
        .await
        .map_err(|error| {
            ApiError::from_store_naming(error, &[(Conflict::RoomPathTaken, &new_name)])
        })?;
    state.publish(fanouts).await;
    Ok(Json(room.to_model(Some(membership.role))))
}

#[utoipa::path(delete, path = "/api/rooms/{id}", tag = "rooms",
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn delete_room(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    require_role(&state, auth.id(), id, Role::Owner).await?;
    let fanouts = state.store.delete_room(id).await?;
    state.publish(fanouts).await;
    tracing::info!(room_id = %id, user_id = %auth.id(), "deleted a room and its sub-rooms");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/rooms/{id}/members", tag = "rooms",
    responses((status = 200, body = MemberList), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn members(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<MemberList>> {
    require_member(&state, auth.id(), id).await?;
    Ok(Json(MemberList {
        members: state.store.members(id).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AddMemberRequest {
    user_id: Uuid,
}

#[utoipa::path(post, path = "/api/rooms/{id}/members", tag = "rooms",
    request_body = AddMemberRequest,
    responses((status = 204), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(request): Json<AddMemberRequest>,
) -> ApiResult<StatusCode> {
    let (room, _) = require_role(&state, auth.id(), id, Role::Moderator).await?;
    if room.kind == RoomKind::Direct {
        return Err(ApiError::invalid(
            "invalid_room",
            "Direct rooms keep their participants; start a new group instead.",
        ));
    }
    if state.store.user_by_id(request.user_id).await?.is_none() {
        return Err(ApiError::not_found(
            "user_not_found",
            "No user has that id.",
        ));
    }
    admit(&state, request.user_id, room).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/rooms/{id}/leave", tag = "rooms",
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub(crate) async fn leave(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let (room, membership) = require_member(&state, auth.id(), id).await?;
    if membership.role == Role::Owner && room.member_count > 1 {
        return Err(ApiError::conflict(
            "owner_must_transfer",
            "You own this room: transfer ownership to another member before you leave, or delete it.",
        ));
    }
    if membership.role == Role::Owner {
        // Leaving would strand a room that nobody could manage or delete.
        return Err(ApiError::conflict(
            "last_member",
            "You are the room's only member: delete the room instead of leaving it.",
        ));
    }
    // NOTE: leaving a room also leaves its sub-rooms, even ones the user owns, which
    // can leave such a sub-room without an owner.
    let fanouts = state
        .store
        .remove_member(id, auth.id(), Departure::Left)
        .await?;
    state.publish(fanouts).await;
    state
        .calls
        .remove(&state, id, auth.id(), "you left the room")
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks that `actor` may act on `target`: moderators act on members only, owners
/// on everyone but themselves.
pub(crate) async fn require_authority(
    state: &AppState,
    actor: Uuid,
    room_id: Uuid,
    target: Uuid,
) -> ApiResult<(RoomRecord, Membership, Option<Membership>)> {
    let (room, membership) = require_role(state, actor, room_id, Role::Moderator).await?;
    if actor == target {
        return Err(ApiError::invalid(
            "invalid_target",
            "You cannot do this to yourself.",
        ));
    }
    let target_membership = state.store.membership(room_id, target).await?;
    if let Some(target_membership) = &target_membership
        && target_membership.role >= membership.role
    {
        return Err(ApiError::forbidden(
            "insufficient_role",
            format!(
                "A {} cannot act on a {}.",
                membership.role.as_str(),
                target_membership.role.as_str()
            ),
        ));
    }
    Ok((room, membership, target_membership))
}

#[utoipa::path(delete, path = "/api/rooms/{id}/members/{user_id}", tag = "rooms",
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn kick(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let (_, _, target) = require_authority(&state, auth.id(), id, user_id).await?;
    if target.is_none() {
        return Err(ApiError::not_found(
            "member_not_found",
            "That user is not a member.",
        ));
    }
    let fanouts = state
        .store
        .remove_member(id, user_id, Departure::Kicked { by: auth.id() })
        .await?;
    state.publish(fanouts).await;
    state
        .calls
        .remove(&state, id, user_id, "a moderator removed you from the room")
        .await;
    tracing::info!(room_id = %id, %user_id, by = %auth.id(), "kicked a member");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/rooms/{id}/bans/{user_id}", tag = "rooms",
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn ban(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    require_authority(&state, auth.id(), id, user_id).await?;
    if state.store.user_by_id(user_id).await?.is_none() {
        return Err(ApiError::not_found(
            "user_not_found",
            "No user has that id.",
        ));
    }
    let fanouts = state
        .store
        .remove_member(id, user_id, Departure::Banned { by: auth.id() })
        .await?;
    state.publish(fanouts).await;
    state
        .calls
        .remove(&state, id, user_id, "a moderator banned you from the room")
        .await;
    tracing::info!(room_id = %id, %user_id, by = %auth.id(), "banned a user");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/rooms/{id}/bans", tag = "rooms",
    responses((status = 200, body = BanList), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn bans(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<BanList>> {
    require_role(&state, auth.id(), id, Role::Moderator).await?;
    let mut bans = Vec::new();
    for ban in state.store.bans(id).await? {
        // Bans of accounts that no longer exist are left out, since no user is left to unban.
        let Some(user) = state.store.user_by_id(ban.user_id).await? else {
            continue;
        };
        bans.push(Ban {
            user: UserRef {
                id: user.id,
                username: user.username,
                display_name: user.display_name,
            },
            banned_by: ban.banned_by,
            banned_at: ban.banned_at,
        });
    }
    Ok(Json(BanList { bans }))
}

#[utoipa::path(delete, path = "/api/rooms/{id}/bans/{user_id}", tag = "rooms",
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn unban(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    require_role(&state, auth.id(), id, Role::Moderator).await?;
    if !state.store.unban(id, user_id).await? {
        return Err(ApiError::not_found(
            "ban_not_found",
            "That user is not banned here.",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/rooms/{id}/members/{user_id}/role", tag = "rooms",
    request_body = SetRoleRequest,
    responses((status = 204), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    Json(request): Json<SetRoleRequest>,
) -> ApiResult<StatusCode> {
    if request.role == Role::Owner {
        return Err(ApiError::invalid(
            "invalid_role",
            "Make someone the owner with PUT /api/rooms/{id}/owner.",
        ));
    }
    let (_, membership, target) = require_authority(&state, auth.id(), id, user_id).await?;
    if target.is_none() {
        return Err(ApiError::not_found(
            "member_not_found",
            "That user is not a member.",
        ));
    }
    if request.role >= membership.role {
        return Err(ApiError::forbidden(
            "insufficient_role",
            "You can only give roles below your own.",
        ));
    }
    let fanout = state.store.set_role(id, user_id, request.role).await?;
    state.publish([fanout]).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/rooms/{id}/owner", tag = "rooms",
    request_body = TransferOwnershipRequest,
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn transfer_ownership(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(request): Json<TransferOwnershipRequest>,
) -> ApiResult<StatusCode> {
    require_role(&state, auth.id(), id, Role::Owner).await?;
    if request.user_id == auth.id() {
        return Err(ApiError::invalid(
            "invalid_target",
            "You already own this room.",
        ));
    }
    if state.store.membership(id, request.user_id).await?.is_none() {
        return Err(ApiError::not_found(
            "member_not_found",
            "The new owner must be a member of the room.",
        ));
    }
    let fanouts = state
        .store
        .transfer_ownership(id, auth.id(), request.user_id)
        .await?;
    state.publish(fanouts).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct InviteResponse {
    #[serde(flatten)]
    invite: Invite,
    /// A link to share, when the server knows its public URL.
    url: Option<String>,
}

#[utoipa::path(post, path = "/api/rooms/{id}/invites", tag = "rooms",
    request_body = CreateInviteRequest,
    responses((status = 201, body = InviteResponse), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn create_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(request): Json<CreateInviteRequest>,
) -> ApiResult<Response> {
    let (room, _) = require_role(&state, auth.id(), id, Role::Moderator).await?;
    if room.kind == RoomKind::Direct {
        return Err(ApiError::invalid(
            "invalid_room",
            "Direct rooms take no invites.",
        ));
    }
    let seconds = request.expires_in_secs.unwrap_or(DEFAULT_INVITE_SECS);
    if seconds == 0 || seconds > MAX_INVITE_SECS {
        return Err(ApiError::invalid(
            "invalid_expires_in_secs",
            format!("expires_in_secs must be 1 to {MAX_INVITE_SECS} (30 days)."),
        ));
    }

    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    let code = URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(seconds as i64);
    let record = InviteRecord {
        code_hash: token_hash(&code),
        room_id: id,
        created_by: auth.id(),
        expires_at,
        single_use: request.single_use,
    };
    state.store.create_invite(record).await?;

    let url = state
        .settings
        .public_url
        .as_ref()
        .map(|base| format!("{}/invite/{code}", base.trim_end_matches('/')));
    let invite = Invite {
        code,
        room_id: id,
        expires_at,
        single_use: request.single_use,
    };
    Ok((StatusCode::CREATED, Json(InviteResponse { invite, url })).into_response())
}

#[utoipa::path(post, path = "/api/invites/{code}", tag = "rooms",
    responses((status = 200, body = Room), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(code): Path<String>,
) -> ApiResult<Json<Room>> {
    let invalid = || {
        ApiError::not_found(
            "invite_not_found",
            "The invite does not exist, has expired, or was already used; ask for a new one.",
        )
    };
    let code_hash = token_hash(&code);
    let invite = state
        .store
        .find_invite(&code_hash)
        .await?
        .ok_or_else(invalid)?;
    let room = state
        .store
        .room_by_id(invite.room_id)
        .await?
        .ok_or_else(invalid)?;
    if let Some(membership) = state.store.membership(room.id, auth.id()).await? {
        return Ok(Json(room.to_model(Some(membership.role))));
    }
    // The invite is used up only once the join can succeed.
    check_admission(&state, auth.id(), &room).await?;
    state
        .store
        .redeem_invite(&code_hash)
        .await?
        .ok_or_else(invalid)?;
    Ok(Json(add_member_now(&state, auth.id(), room).await?))
}

#[utoipa::path(post, path = "/api/direct", tag = "rooms", request_body = CreateDirectRequest,
    responses((status = 201, body = Room), (status = 200, body = Room), (status = 404),
        (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn create_direct(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<CreateDirectRequest>,
) -> ApiResult<Response> {
    let mut member_ids = vec![auth.id()];
    for id in request.user_ids {
        if !member_ids.contains(&id) {
            member_ids.push(id);
        }
    }
    if member_ids.len() < 2 {
        return Err(ApiError::invalid(
            "invalid_user_ids",
            "Name at least one other user in user_ids.",
        ));
    }
    if member_ids.len() > limits::DIRECT_MAX_MEMBERS {
        return Err(ApiError::invalid(
            "invalid_user_ids",
            format!(
                "A direct conversation has at most {} participants, you included; create a \
                 private room for more.",
                limits::DIRECT_MAX_MEMBERS
            ),
        ));
    }
    for id in &member_ids[1..] {
        let user = state.store.user_by_id(*id).await?;
        if user.is_none_or(|user| user.disabled) {
            return Err(ApiError::not_found(
                "user_not_found",
                format!("No user has the id {id}."),
            ));
        }
    }

    let (room, fanout) = state
        .store
        .create_direct(NewDirect {
            creator_id: auth.id(),
            member_ids,
        })
        .await?;
    let status = if fanout.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    state.publish(fanout).await;
    Ok((status, Json(room.to_model(Some(Role::Member)))).into_response())
}
