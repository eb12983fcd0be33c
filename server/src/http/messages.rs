//! Messages: history, posting, edits, deletes, threads, reactions, pins and search.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use roomler_shared::api::{
    EditMessageRequest, MessagePage, PostMessageRequest, SearchHit, SearchResults,
};
use roomler_shared::model::{Mention, Message, Role};
use roomler_shared::{limits, rich_text};
use serde::Deserialize;
use uuid::Uuid;

use super::rooms::{require_member, require_role};
use super::{Json, Path, Query};
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::store::{HistoryPage, MessageMeta, NewMessage, Posted};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms/{id}/messages", get(history).post(post_message))
        .route("/rooms/{id}/pins", get(pins))
        .route(
            "/messages/{id}",
            get(message).patch(edit).delete(delete_message),
        )
        .route("/messages/{id}/thread", get(thread))
        .route(
            "/messages/{id}/reactions/{emoji}",
            put(add_reaction).delete(remove_reaction),
        )
        .route("/messages/{id}/pin", put(pin).delete(unpin))
        .route("/search", get(search))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct HistoryQuery {
    /// Messages with a smaller `seq`, newest first.
    before: Option<i64>,
    /// Messages with a larger `seq`, oldest first.
    after: Option<i64>,
    /// Page size, 1 to 200; 50 by default.
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "messages", params(HistoryQuery),
    responses((status = 200, body = MessagePage), (status = 400), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<MessagePage>> {
    require_member(&state, auth.id(), room_id).await?;
    let limit = page_limit(query.limit)?;
    let page = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "Give `before` or `after`, not both.",
            ));
        }
        (Some(before), None) => HistoryPage::Before { before, limit },
        (None, Some(after)) => HistoryPage::After { after, limit },
        (None, None) => HistoryPage::Latest { limit },
    };
    let messages = state.store.history(room_id, page).await?;
    Ok(Json(MessagePage { messages }))
}

fn page_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit is {limit}; use 1 to {MAX_PAGE}."),
        )),
    }
}

#[utoipa::path(post, path = "/api/rooms/{id}/messages", tag = "messages",
    request_body = PostMessageRequest,
    responses((status = 201, body = Message), (status = 200, body = Message,
        description = "a retry with a `client_id` already used"),
        (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn post_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    Json(request): Json<PostMessageRequest>,
) -> ApiResult<Response> {
    require_member(&state, auth.id(), room_id).await?;
    limits::body(&request.body)?;
    limits::client_id(&request.client_id)?;
    if request.attachments.len() > limits::ATTACHMENTS_MAX {
        return Err(ApiError::invalid(
            "invalid_attachments",
            format!(
                "A message carries at most {} attachments.",
                limits::ATTACHMENTS_MAX
            ),
        ));
    }

    if let Some(parent_id) = request.reply_to {
        let parent = state.store.message_meta(parent_id).await?;
        if parent.is_none_or(|parent| parent.room_id != room_id) {
            return Err(ApiError::invalid(
                "invalid_reply_to",
                "reply_to must be the id of a message in the same room.",
            ));
        }
    }
    for file_id in &request.attachments {
        let file = state.store.file(*file_id).await?;
        let usable =
            file.is_some_and(|file| file.uploader_id == auth.id() && file.room_id == Some(room_id));
        if !usable {
            return Err(ApiError::invalid(
                "invalid_attachments",
                format!("The attachment {file_id} is not a file you uploaded to this room."),
            ));
        }
    }

    let mentions = resolve_mentions(&state, room_id, &request.body).await?;
    let new = NewMessage {
        room_id,
        author_id: auth.id(),
        html: rich_text::render_html(&request.body),
        body: request.body,
        mentions,
        reply_to: request.reply_to,
        client_id: request.client_id,
        attachments: request.attachments,
    };
    match state.store.post_message(new).await? {
        Posted::Created(message, fanout) => {
            state.publish([fanout]).await;
            tracing::debug!(message_id = %message.id, %room_id, "posted a message");
            Ok((StatusCode::CREATED, Json(message)).into_response())
        }
        Posted::Existing(message) => Ok((StatusCode::OK, Json(message)).into_response()),
    }
}

/// Turns the `@` mentions of a body into structured mentions of the room's members;
/// names that are no member are left as text.
pub(crate) async fn resolve_mentions(
    state: &AppState,
    room_id: Uuid,
    body: &str,
) -> ApiResult<Vec<Mention>> {
    let tokens = rich_text::extract_mentions(body);
    let mut mentions = Vec::new();
    if tokens.room {
        mentions.push(Mention::Room);
    }
    if tokens.here {
        mentions.push(Mention::Here);
    }
    if !tokens.usernames.is_empty() {
        let members = state.store.members(room_id).await?;
        for key in &tokens.usernames {
            let member = members
                .iter()
                .find(|member| member.user.username.to_lowercase() == *key);
            if let Some(member) = member {
                mentions.push(Mention::User {
                    user_id: member.user.id,
                    username: member.user.username.clone(),
                });
            }
        }
    }
    Ok(mentions)
}

/// The message and the caller's role in its room, or 404 when the caller is no member.
pub(crate) async fn visible_message(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
) -> ApiResult<(MessageMeta, Role)> {
    let meta = state
        .store
        .message_meta(id)
        .await?
        .ok_or_else(ApiError::message_not_found)?;
    let membership = state.store.membership(meta.room_id, user_id).await?;
    let membership = membership.ok_or_else(ApiError::message_not_found)?;
    Ok((meta, membership.role))
}

#[utoipa::path(get, path = "/api/messages/{id}", tag = "messages",
    responses((status = 200, body = Message), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Message>> {
    visible_message(&state, auth.id(), id).await?;
    let message = state
        .store
        .message(id)
        .await?
        .ok_or_else(ApiError::message_not_found)?;
    Ok(Json(message))
}

#[utoipa::path(patch, path = "/api/messages/{id}", tag = "messages",
    request_body = EditMessageRequest,
    responses((status = 200, body = Message), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn edit(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Json(request): Json<EditMessageRequest>,
) -> ApiResult<Json<Message>> {
    let (meta, _) = visible_message(&state, auth.id(), id).await?;
    if meta.author_id != auth.id() {
        return Err(ApiError::forbidden(
            "not_author",
            "Only the author can edit a message.",
        ));
    }
    if meta.deleted {
        return Err(ApiError::conflict(
            "message_deleted",
            "A deleted message cannot be edited.",
        ));
    }
    limits::body(&request.body)?;
    let mentions = resolve_mentions(&state, meta.room_id, &request.body).await?;
    let html = rich_text::render_html(&request.body);
    let (message, fanout) = state
        .store
        .edit_message(id, request.body, html, mentions)
        .await?;
    state.publish([fanout]).await;
    Ok(Json(message))
}

#[utoipa::path(delete, path = "/api/messages/{id}", tag = "messages",
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn delete_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let (meta, role) = visible_message(&state, auth.id(), id).await?;
    if meta.author_id != auth.id() && !role.can_moderate() {
        return Err(ApiError::forbidden(
            "not_author",
            "Only the author or a room moderator can delete a message.",
        ));
    }
    if meta.deleted {
        return Ok(StatusCode::NO_CONTENT);
    }
    let fanout = state.store.delete_message(id).await?;
    state.publish([fanout]).await;
    tracing::info!(message_id = %id, by = %auth.id(), "deleted a message");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct ThreadQuery {
    /// Replies to return, 1 to 200; 50 by default.
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/messages/{id}/thread", tag = "messages", params(ThreadQuery),
    responses((status = 200, body = MessagePage, description = "the replies, oldest first"),
        (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn thread(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    Query(query): Query<ThreadQuery>,
) -> ApiResult<Json<MessagePage>> {
    visible_message(&state, auth.id(), id).await?;
    let messages = state.store.thread(id, page_limit(query.limit)?).await?;
    Ok(Json(MessagePage { messages }))
}

#[utoipa::path(put, path = "/api/messages/{id}/reactions/{emoji}", tag = "messages",
    responses((status = 204), (status = 404), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn add_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, emoji)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    react(state, auth, id, &emoji, true).await
}

#[utoipa::path(delete, path = "/api/messages/{id}/reactions/{emoji}", tag = "messages",
    responses((status = 204), (status = 404), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn remove_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, emoji)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    react(state, auth, id, &emoji, false).await
}

pub(crate) async fn react(
    state: AppState,
    auth: AuthUser,
    id: Uuid,
    emoji: &str,
    present: bool,
) -> ApiResult<StatusCode> {
    let (meta, _) = visible_message(&state, auth.id(), id).await?;
    if meta.deleted {
        return Err(ApiError::conflict(
            "message_deleted",
            "A deleted message takes no reactions.",
        ));
    }
    let Some(emoji) = rich_text::normalize_emoji(emoji) else {
        return Err(ApiError::invalid(
            "invalid_emoji",
            format!("{emoji:?} is not an emoji or a known shortcode such as tada."),
        ));
    };
    if let Some(fanout) = state
        .store
        .set_reaction(id, auth.id(), &emoji, present)
        .await?
    {
        state.publish([fanout]).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/messages/{id}/pin", tag = "messages",
    responses((status = 200, body = Message), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn pin(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Message>> {
    set_pin(state, auth, id, true).await
}

#[utoipa::path(delete, path = "/api/messages/{id}/pin", tag = "messages",
    responses((status = 200, body = Message), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn unpin(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Message>> {
    set_pin(state, auth, id, false).await
}

pub(crate) async fn set_pin(
    state: AppState,
    auth: AuthUser,
    id: Uuid,
    pinned: bool,
) -> ApiResult<Json<Message>> {
    let (meta, _) = visible_message(&state, auth.id(), id).await?;
    require_role(&state, auth.id(), meta.room_id, Role::Moderator).await?;
    if meta.deleted {
        return Err(ApiError::conflict(
            "message_deleted",
            "A deleted message cannot be pinned.",
        ));
    }
    let by = pinned.then(|| auth.id());
    let (message, fanout) = state.store.set_pin(id, by).await?;
    state.publish([fanout]).await;
    Ok(Json(message))
}

#[utoipa::path(get, path = "/api/rooms/{id}/pins", tag = "messages",
    responses((status = 200, body = MessagePage), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn pins(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
) -> ApiResult<Json<MessagePage>> {
    require_member(&state, auth.id(), room_id).await?;
    Ok(Json(MessagePage {
        messages: state.store.pins(room_id).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct SearchQuery {
    /// Words to find; the last one also matches as a prefix.
    q: String,
    /// Search one room only.
    room_id: Option<Uuid>,
    /// Hits to return, 1 to 200; 50 by default.
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/search", tag = "messages", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn search(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    if let Some(room_id) = query.room_id {
        require_member(&state, auth.id(), room_id).await?;
    }
    let limit = page_limit(query.limit)?;
    let rows = state
        .store
        .search(auth.id(), &query.q, query.room_id, limit)
        .await?;
    let hits = rows
        .into_iter()
        .map(|row| SearchHit {
            message: row.message,
            snippet: row.snippet,
        })
        .collect();
    Ok(Json(SearchResults { hits }))
}
