//! Liveness and readiness probes for load balancers and orchestrators.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::handler))
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200)))]
pub(crate) async fn health() -> &'static str {
    "ok"
}

/// The process can reach its store and is not shutting down.
#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200), (status = 503)))]
pub(crate) async fn ready(State(state): State<AppState>) -> ApiResult<(StatusCode, &'static str)> {
    if state.shutdown.is_cancelled() {
        return Ok((StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    state
        .store
        .room_by_id(uuid::Uuid::nil())
        .await
        .map_err(ApiError::from)?;
    Ok((StatusCode::OK, "ready"))
}
