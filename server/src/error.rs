//! The API's error type and its single mapping to an HTTP answer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roomler_shared::Invalid;
use roomler_shared::api::{ErrorBody, ErrorDetail};

use crate::store::{Conflict, StoreError};

pub type ApiResult<T> = Result<T, ApiError>;

/// Everything a handler can fail with. Each variant maps to one status; internal
/// errors are logged once here and answered with a sentence that hides the cause.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error("{message}")]
    Invalid { code: String, message: String },
    #[error("{message}")]
    MethodNotAllowed { message: String },
    #[error("too many requests, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }

    /// The answer for a room the caller may not see: the same as for one that does
    /// not exist, so a private room's existence is never revealed.
    pub fn room_not_found() -> Self {
        ApiError::not_found(
            "room_not_found",
            "The room does not exist or you are not a member of it.",
        )
    }

    pub fn message_not_found() -> Self {
        ApiError::not_found(
            "message_not_found",
            "The message does not exist or is in a room you are not a member of.",
        )
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::TooLarge { code, .. } => code,
            ApiError::Invalid { code, .. } => code,
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::invalid(format!("invalid_{}", invalid.field), invalid.message)
    }
}

impl ApiError {
    /// Converts a store error as `From` does, but a conflict listed in `values` gets a
    /// message that names its value, e.g. `(Conflict::UsernameTaken, "ada")`.
    pub fn from_store_naming(error: StoreError, values: &[(Conflict, &str)]) -> Self {
        match error {
            StoreError::Conflict(what) => {
                match values.iter().find(|(conflict, _)| *conflict == what) {
                    Some((_, value)) => ApiError::conflict(what.code(), what.message_naming(value)),
                    None => ApiError::conflict(what.code(), what.message()),
                }
            }
            StoreError::Other(error) => ApiError::Internal(error),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => ApiError::conflict(what.code(), what.message()),
            StoreError::Other(error) => ApiError::Internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(error) => {
                tracing::error!(error = ?error, "request failed");
                "The server failed to handle the request; try again, and tell the \
                 administrator if it keeps failing."
                    .to_string()
            }
            ApiError::RateLimited { retry_after_secs } => {
                format!("Too many attempts; wait {retry_after_secs} seconds before trying again.")
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
