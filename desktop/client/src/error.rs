//! The engine's error type. Its kinds tell a caller what to do next: fix the input,
//! accept the server's answer, or wait for the network.

use reqwest::StatusCode;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The caller asked for something that cannot work, e.g. an unknown room name.
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error; retrying the same request will not help.
    #[error("the server rejected the request ({status}, {code}): {message}")]
    Rejected {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// The server could not be reached or the connection broke; retrying later may work.
    #[error("the server is unreachable: {0}")]
    Network(String),
    /// The caller cancelled the operation, e.g. an upload or a download.
    #[error("the transfer was cancelled")]
    Cancelled,
    /// The profile has no session: log in first.
    #[error("not logged in; run `roomler login` first")]
    NotLoggedIn,
    #[error("the local cache failed: {0}")]
    Cache(#[from] rusqlite::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ClientError {
    /// Whether the failure is the network's, so a queued operation should stay queued.
    pub fn is_network(&self) -> bool {
        match self {
            ClientError::Network(_) => true,
            // 5xx answers and 429 are the server's trouble, not the request's.
            ClientError::Rejected { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(error: reqwest::Error) -> Self {
        ClientError::Network(without_url_secrets(&error))
    }
}

impl From<serde_json::Error> for ClientError {
    fn from(error: serde_json::Error) -> Self {
        ClientError::Other(error.into())
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        ClientError::Network(error.to_string())
    }
}

/// The error's text without its URL's query, which may hold an access token.
fn without_url_secrets(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(query) = error.url().and_then(|url| url.query()) {
        text = text.replace(query, "…");
    }
    text
}
