//! The HTTP API: the router, the request extractors, and one module per route group.

mod accounts;
mod files;
mod health;
mod messages;
pub mod openapi;
pub(crate) mod rooms;
mod ws;

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::AppState;
use crate::error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest JSON body; uploads have their own limit.
const JSON_BODY_LIMIT: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    let upload_limit = usize::try_from(state.settings.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let api = Router::new()
        .merge(accounts::router())
        .merge(rooms::router())
        .merge(messages::router())
        .merge(ws::router())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(files::router().layer(DefaultBodyLimit::max(upload_limit)))
        .merge(openapi::router());

    Router::new()
        .nest("/api", api)
        .merge(health::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    // The path without its query, which can carry an access token.
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id,
                        user_id = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn not_found() -> impl IntoResponse {
    ApiError::not_found(
        "route_not_found",
        "No API route has that path and method; see /api/openapi.json.",
    )
}

async fn method_not_allowed(method: axum::http::Method) -> impl IntoResponse {
    ApiError::MethodNotAllowed {
        message: format!(
            "This path does not take {method}; see /api/openapi.json for its methods."
        ),
    }
}

/// `axum::Json` with errors in the API's JSON shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with errors in the API's JSON shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with errors in the API's JSON shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Multipart` with errors in the API's JSON shape.
pub struct Multipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let multipart = axum::extract::Multipart::from_request(request, state).await?;
        Ok(Multipart(multipart))
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        ApiError::bad_request(
            "invalid_multipart",
            format!(
                "Send the file as multipart/form-data with a `file` part: {}",
                rejection.body_text()
            ),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge {
                code: "body_too_large",
                message: format!(
                    "The JSON body is larger than {JSON_BODY_LIMIT} bytes; send files as \
                     uploads to /api/rooms/{{id}}/files instead."
                ),
            };
        }
        match rejection {
            JsonRejection::JsonSyntaxError(error) => ApiError::bad_request(
                "invalid_json",
                format!("The request body is not valid JSON: {}", error.body_text()),
            ),
            JsonRejection::JsonDataError(error) => ApiError::bad_request(
                "invalid_request",
                format!(
                    "The request body does not match the expected fields: {}",
                    error.body_text()
                ),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::bad_request(
                "invalid_content_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            other => ApiError::bad_request("invalid_request", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(
            "invalid_path",
            format!(
                "A value in the URL path is invalid (ids are UUIDs): {}",
                rejection.body_text()
            ),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(
            "invalid_query",
            format!("A query parameter is invalid: {}", rejection.body_text()),
        )
    }
}
