//! Registration, login and logout, and the caller's own account.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use roomler_shared::api::{
    AuthResponse, ChangePasswordRequest, LoginRequest, RegisterRequest, UpdateProfileRequest,
};
use roomler_shared::limits;
use roomler_shared::model::User;
use uuid::Uuid;

use super::files::{read_upload, serve_blob};
use super::{Json, Multipart, Path, Query};
use crate::AppState;
use crate::auth::{AuthUser, ClientIp, hash_password, new_token, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::store::{Conflict, NewUser, UserRecord};

/// The longer side of an avatar, in pixels.
const AVATAR_SIZE: u32 = 256;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me).patch(update_profile))
        .route("/me/password", post(change_password))
        .route("/me/avatar", put(upload_avatar))
        .route("/users", get(find_user))
        .route("/users/{id}", get(user))
        .route("/users/{id}/avatar", get(avatar))
}

/// The account as its owner sees it, with the email address.
pub fn own_user(record: &UserRecord) -> User {
    User {
        email: Some(record.email.clone()),
        ..public_user(record)
    }
}

pub fn public_user(record: &UserRecord) -> User {
    User {
        id: record.id,
        username: record.username.clone(),
        display_name: record.display_name.clone(),
        email: None,
        avatar_url: record
            .avatar_file_id
            .map(|_| format!("/api/users/{}/avatar", record.id)),
        created_at: record.created_at,
    }
}

#[utoipa::path(post, path = "/api/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 409), (status = 422), (status = 429)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<Response> {
    let rate = &state.settings.rate_limit;
    if rate.enabled {
        let key = format!("register:{}", ip_key(ip));
        let hour = Duration::from_secs(3600);
        state
            .limiter
            .check(&key, rate.register_per_ip_per_hour, hour)
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    }

    let username = limits::username(&request.username)?;
    let email = limits::email(&request.email)?;
    limits::password(&request.password)?;
    let display_name = match &request.display_name {
        Some(name) => limits::display_name(name)?,
        None => username.display.clone(),
    };

    let password_hash = hash_password(request.password)
        .await
        .map_err(ApiError::internal)?;
    let taken = [
        (Conflict::UsernameTaken, username.display.clone()),
        (Conflict::EmailTaken, email.clone()),
    ];
    let record = state
        .store
        .create_user(NewUser {
            username: username.display,
            username_key: username.key,
            display_name,
            email,
            password_hash,
        })
        .await
        .map_err(|error| {
            let values = taken
                .each_ref()
                .map(|(conflict, value)| (*conflict, value.as_str()));
            ApiError::from_store_naming(error, &values)
        })?;
    tracing::info!(user_id = %record.id, "registered an account");

    let token = start_session(&state, record.id).await?;
    let body = AuthResponse {
        user: own_user(&record),
        token,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(post, path = "/api/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401), (status = 429)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let login = request.login.trim();
    let key = if login.contains('@') {
        limits::email(login).unwrap_or_else(|_| login.to_lowercase())
    } else {
        limits::username_key(login)
    };

    let record = state.store.user_by_login(&key).await?;

    let rate = &state.settings.rate_limit;
    if rate.enabled {
        let minute = Duration::from_secs(60);
        let limited = |retry_after_secs| ApiError::RateLimited { retry_after_secs };
        let ip_key = format!("login-ip:{}", ip_key(ip));
        state
            .limiter
            .check(&ip_key, rate.login_per_ip_per_minute, minute)
            .map_err(limited)?;
        // One bucket per account, whether it is named by username or by email.
        let account = record
            .as_ref()
            .map_or(key.clone(), |user| user.id.to_string());
        let account_key = format!("login-account:{account}");
        let per_account = rate.login_per_account_per_minute;
        state
            .limiter
            .check(&account_key, per_account, minute)
            .map_err(limited)?;
    }

    let hash = record.as_ref().map(|user| user.password_hash.clone());
    let valid = verify_password(request.password, hash)
        .await
        .map_err(ApiError::internal)?;
    let record = match record {
        Some(record) if valid && !record.disabled => record,
        Some(record) if valid => {
            tracing::info!(user_id = %record.id, "rejected a login to a disabled account");
            return Err(ApiError::forbidden(
                "account_disabled",
                "This account is disabled; ask your administrator to enable it.",
            ));
        }
        _ => {
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "The username, email or password is wrong.",
            ));
        }
    };

    let token = start_session(&state, record.id).await?;
    tracing::info!(user_id = %record.id, "logged in");
    Ok(Json(AuthResponse {
        user: own_user(&record),
        token,
    }))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts",
    responses((status = 204), (status = 401)), security(("bearer" = [])))]
pub(crate) async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<StatusCode> {
    state.store.delete_session(&auth.token_hash).await?;
    state.hub.end_sessions(auth.id(), Some(&auth.token_hash));
    tracing::info!(user_id = %auth.id(), "logged out");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/me", tag = "accounts",
    responses((status = 200, body = User), (status = 401)), security(("bearer" = [])))]
pub(crate) async fn me(auth: AuthUser) -> Json<User> {
    Json(own_user(&auth.user))
}

#[utoipa::path(patch, path = "/api/me", tag = "accounts", request_body = UpdateProfileRequest,
    responses((status = 200, body = User), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn update_profile(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<UpdateProfileRequest>,
) -> ApiResult<Json<User>> {
    let display_name = request
        .display_name
        .as_deref()
        .map(limits::display_name)
        .transpose()?;
    let (record, fanout) = state
        .store
        .update_profile(auth.id(), display_name, None)
        .await?;
    state.publish([fanout]).await;
    Ok(Json(own_user(&record)))
}

#[utoipa::path(post, path = "/api/me/password", tag = "accounts",
    request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    // A stolen session must not be a way to guess the password faster than a login.
    let rate = &state.settings.rate_limit;
    if rate.enabled {
        let key = format!("login-account:{}", auth.id());
        let minute = Duration::from_secs(60);
        state
            .limiter
            .check(&key, rate.login_per_account_per_minute, minute)
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    }
    let current = Some(auth.user.password_hash.clone());
    let valid = verify_password(request.current_password, current)
        .await
        .map_err(ApiError::internal)?;
    if !valid {
        return Err(ApiError::forbidden(
            "wrong_password",
            "The current password is wrong; the password was not changed.",
        ));
    }
    limits::password(&request.new_password)?;
    let hash = hash_password(request.new_password)
        .await
        .map_err(ApiError::internal)?;
    state.store.set_password(auth.id(), hash).await?;
    state.hub.end_sessions(auth.id(), None);
    tracing::info!(user_id = %auth.id(), "changed the password and ended all sessions");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/me/avatar", tag = "accounts",
    request_body(content_type = "multipart/form-data", description = "a `file` part with the image"),
    responses((status = 200, body = User), (status = 413), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn upload_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
    multipart: Multipart,
) -> ApiResult<Json<User>> {
    let upload = read_upload(&state, multipart).await?;
    let Some(thumbnail) = state
        .blobs
        .thumbnail(&upload.blob.sha256, Some(AVATAR_SIZE))
        .await
    else {
        return Err(ApiError::invalid(
            "invalid_image",
            "The avatar is not an image the server can read; upload a PNG, JPEG, GIF or WebP.",
        ));
    };
    let file_id = Uuid::now_v7();
    state
        .store
        .create_file(crate::store::FileRecord {
            id: file_id,
            sha256: thumbnail.clone(),
            size: 0,
            mime: "image/png".to_string(),
            name: "avatar.png".to_string(),
            uploader_id: auth.id(),
            room_id: None,
            thumbnail_sha256: Some(thumbnail),
            created_at: time::OffsetDateTime::now_utc(),
        })
        .await?;
    let (record, fanout) = state
        .store
        .update_profile(auth.id(), None, Some(file_id))
        .await?;
    state.publish([fanout]).await;
    Ok(Json(own_user(&record)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct FindUserQuery {
    /// An exact username, matched without regard to case.
    username: String,
}

#[utoipa::path(get, path = "/api/users", tag = "accounts", params(FindUserQuery),
    responses((status = 200, body = User), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn find_user(
    State(state): State<AppState>,
    _auth: AuthUser,
    Query(query): Query<FindUserQuery>,
) -> ApiResult<Json<User>> {
    let key = limits::username_key(&query.username);
    let found = state.store.users_by_keys(&[key]).await?.into_iter().next();
    let record = found.ok_or_else(user_not_found)?;
    Ok(Json(public_user(&record)))
}

#[utoipa::path(get, path = "/api/users/{id}", tag = "accounts",
    responses((status = 200, body = User), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn user(
    State(state): State<AppState>,
    _auth: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<User>> {
    let record = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(user_not_found)?;
    Ok(Json(public_user(&record)))
}

#[utoipa::path(get, path = "/api/users/{id}/avatar", tag = "accounts",
    responses((status = 200, content_type = "image/png"), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn avatar(
    State(state): State<AppState>,
    _auth: AuthUser,
    Path(id): Path<Uuid>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    let record = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(user_not_found)?;
    let file_id = record
        .avatar_file_id
        .ok_or_else(|| ApiError::not_found("avatar_not_found", "This user has no avatar."))?;
    let file = state
        .store
        .file(file_id)
        .await?
        .ok_or_else(|| ApiError::not_found("avatar_not_found", "This user has no avatar."))?;
    serve_blob(&state, &file.sha256, "image/png", "avatar.png", request).await
}

fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "No user has that id or username.")
}

fn ip_key(ip: ClientIp) -> String {
    ip.0.map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

pub(crate) async fn start_session(state: &AppState, user_id: Uuid) -> ApiResult<String> {
    let (token, hash) = new_token();
    state.store.create_session(&hash, user_id).await?;
    Ok(token)
}
