//! [`CommandError`]: what every command returns on failure. The UI branches on `code`
//! and shows `message` to people.

use roomler_client::ClientError;
use serde::Serialize;

/// The kind of failure a command met, which decides what the UI does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The input cannot work, e.g. an empty message or an unknown room name. Fix it.
    InvalidInput,
    /// The server rejected the request. `server_code` is its reason, e.g. `invalid_credentials`.
    Rejected,
    /// The server could not be reached. Queued operations wait in the outbox.
    Network,
    /// The user cancelled the operation.
    Cancelled,
    /// There is no session. Show the login form.
    NotLoggedIn,
    /// No item with the given id exists, e.g. an outbox item that was sent meanwhile.
    NotFound,
    /// The local cache failed to read or write.
    Cache,
    /// Any other failure; `message` has the detail.
    Internal,
}

/// The error of every command, serialized as `{code, message, server_code, retryable}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    /// The server's own error code, for rejections.
    pub server_code: Option<String>,
    /// Whether the same request may succeed later: network failures, and server errors
    /// such as 503 or 429.
    pub retryable: bool,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
            server_code: None,
            retryable: false,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

impl From<ClientError> for CommandError {
    fn from(error: ClientError) -> Self {
        let retryable = error.is_network();
        let command_error = match error {
            ClientError::Usage(message) => Self::new(ErrorCode::InvalidInput, message),
            ClientError::Rejected { code, message, .. } => CommandError {
                code: ErrorCode::Rejected,
                message,
                server_code: Some(code),
                retryable,
            },
            ClientError::Network(message) => CommandError {
                retryable,
                ..Self::new(
                    ErrorCode::Network,
                    format!("the server is unreachable: {message}"),
                )
            },
            ClientError::Cancelled => {
                Self::new(ErrorCode::Cancelled, "the operation was cancelled")
            }
            // The engine's own text names the CLI's `roomler login`, which the app has not.
            ClientError::NotLoggedIn => {
                Self::new(ErrorCode::NotLoggedIn, "not logged in; log in first")
            }
            ClientError::Cache(error) => {
                Self::new(ErrorCode::Cache, format!("the local cache failed: {error}"))
            }
            // `{:#}` keeps the causes that anyhow's plain display drops.
            ClientError::Other(error) => Self::new(ErrorCode::Internal, format!("{error:#}")),
        };
        command_error.log();
        command_error
    }
}

impl CommandError {
    /// Logs the failure once, inside the span of the command that met it. Failures of the
    /// user's input or of the network are expected and logged at debug level.
    fn log(&self) {
        match self.code {
            ErrorCode::Cache | ErrorCode::Internal => {
                tracing::error!(code = ?self.code, message = %self.message, "a command failed");
            }
            ErrorCode::Rejected => {
                tracing::info!(server_code = ?self.server_code, message = %self.message, "the server rejected a command");
            }
            _ => tracing::debug!(code = ?self.code, message = %self.message, "a command failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    fn rejected(status: StatusCode, code: &str) -> ClientError {
        ClientError::Rejected {
            status,
            code: code.to_string(),
            message: format!("rejected with {code}"),
        }
    }

    #[test]
    fn client_error_kinds_map_to_codes() {
        let cache_error = rusqlite::Error::InvalidQuery;
        let cases = [
            (
                ClientError::Usage("empty body".into()),
                ErrorCode::InvalidInput,
            ),
            (
                rejected(StatusCode::UNAUTHORIZED, "invalid_credentials"),
                ErrorCode::Rejected,
            ),
            (
                ClientError::Network("connection refused".into()),
                ErrorCode::Network,
            ),
            (ClientError::Cancelled, ErrorCode::Cancelled),
            (ClientError::NotLoggedIn, ErrorCode::NotLoggedIn),
            (ClientError::Cache(cache_error), ErrorCode::Cache),
            (
                ClientError::Other(anyhow::anyhow!("broken")),
                ErrorCode::Internal,
            ),
        ];
        for (error, code) in cases {
            let text = error.to_string();
            assert_eq!(CommandError::from(error).code, code, "{text}");
        }
    }

    #[test]
    fn rejection_keeps_server_code() {
        let error = CommandError::from(rejected(StatusCode::NOT_FOUND, "room_not_found"));
        assert_eq!(error.server_code.as_deref(), Some("room_not_found"));
        assert_eq!(error.message, "rejected with room_not_found");
        assert!(!error.retryable);
    }

    #[test]
    fn retryable_follows_engine() {
        let network = CommandError::from(ClientError::Network("timed out".into()));
        assert!(network.retryable);
        let unavailable = CommandError::from(rejected(StatusCode::SERVICE_UNAVAILABLE, "busy"));
        assert!(unavailable.retryable);
        let limited = CommandError::from(rejected(StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
        assert!(limited.retryable);
        let usage = CommandError::from(ClientError::Usage("bad".into()));
        assert!(!usage.retryable);
    }

    #[test]
    fn internal_error_keeps_causes() {
        let error = anyhow::anyhow!("disk full").context("failed to write profile.json");
        let command_error = CommandError::from(ClientError::Other(error));
        assert_eq!(
            command_error.message,
            "failed to write profile.json: disk full"
        );
    }

    #[test]
    fn command_error_serializes_snake_case() {
        let error = CommandError::from(ClientError::NotLoggedIn);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["code"], "not_logged_in");
        assert_eq!(json["server_code"], serde_json::Value::Null);
        assert_eq!(json["retryable"], false);
    }
}
