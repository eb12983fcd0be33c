//! Password hashing, session tokens, and the extractors that authenticate requests.
//!
//! Tokens are 32 random bytes, base64url-encoded, given to the client once; the store
//! keeps only their SHA-256, so a leaked database holds no usable token. Deleting the
//! session row revokes a token at once, on logout or a password change.

use std::net::{IpAddr, SocketAddr};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::store::UserRecord;

/// Concurrent Argon2 computations. Each takes 19 MiB (the default parameters) and a
/// core for tens of milliseconds, so more than one per core only adds memory: without
/// a bound, a burst of registrations grew the server by gigabytes.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    tokio::sync::Semaphore::new(cores)
});

/// Hashes a password with Argon2id and a random salt, off the async workers because
/// each hash takes tens of milliseconds on purpose.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("failed to hash a password: {error}"))
    })
    .await?
}

/// Checks a password against a stored hash. With no hash, it checks against a fixed
/// one, so that a login for an unknown account takes as long as for a known one.
pub async fn verify_password(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        let parsed = PasswordHash::new(&hash)
            .map_err(|error| anyhow::anyhow!("a stored password hash is invalid: {error}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

/// The Argon2id hash of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Fq0CBrwQ3y6dNAPu9zgxMdyaRsNQC8ohPeL+TfUtqkk";

/// Creates a new session token; returns the token for the client and the hash to store.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRecord,
    pub token_hash: String,
}

impl AuthUser {
    pub fn id(&self) -> uuid::Uuid {
        self.user.id
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "This request needs an `Authorization: Bearer TOKEN` header; log in to get a token.",
            )
        })?;
        let token_hash = token_hash(&token);
        let user = state
            .store
            .session_user(&token_hash)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "invalid_token",
                    "The token is invalid or was revoked; log in again.",
                )
            })?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        Ok(AuthUser { user, token_hash })
    }
}

/// The token from `Authorization: Bearer`, or from `?access_token=` for WebSocket
/// clients (browsers cannot set headers on a WebSocket).
fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "access_token" && !value.is_empty()).then(|| value.to_string())
    })
}

/// The client's address, for rate limits: the peer address, or the first
/// `X-Forwarded-For` entry when the settings trust a reverse proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.settings.trust_proxy_headers {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .and_then(|first| first.trim().parse().ok());
            if forwarded.is_some() {
                return Ok(ClientIp(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientIp(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hash_verifies() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn dummy_hash_parses_and_rejects() {
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (first, first_hash) = new_token();
        let (second, _) = new_token();
        assert_ne!(first, second);
        assert_eq!(first.len(), 43);
        assert_eq!(token_hash(&first), first_hash);
        assert_ne!(first_hash, first);
    }
}
