//! TURN credentials for call participants.
//!
//! With a shared secret (coturn's `use-auth-secret` and `static-auth-secret`), each
//! participant gets time-limited credentials in the TURN REST scheme: the username
//! is `EXPIRY:USER`, with EXPIRY in Unix seconds, and the password is the base64 of
//! HMAC-SHA1(secret, username). coturn checks the same HMAC and the expiry, so the
//! server and coturn share only the secret. Without a secret, the static
//! `TURN_USERNAME` and `TURN_PASSWORD` are handed out as they are.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use roomler_shared::call::IceServer;
use sha1::Sha1;
use time::OffsetDateTime;
use uuid::Uuid;

/// The TURN part of the settings.
#[derive(Debug, Clone, Default)]
pub struct TurnSettings {
    /// `turn:` and `stun:` URLs.
    pub urls: Vec<String>,
    pub secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Lifetime of the time-limited credentials.
    pub ttl: Duration,
}

impl TurnSettings {
    /// The ICE servers for `user_id`, none when no TURN URL is set.
    pub fn ice_servers(&self, user_id: Uuid, now: OffsetDateTime) -> Vec<IceServer> {
        if self.urls.is_empty() {
            return Vec::new();
        }
        if let Some(secret) = &self.secret {
            let expires_at = now + self.ttl;
            let username = format!("{}:{user_id}", expires_at.unix_timestamp());
            let credential = rest_password(secret, &username);
            return vec![IceServer {
                urls: self.urls.clone(),
                username: Some(username),
                credential: Some(credential),
                expires_at: Some(expires_at),
            }];
        }
        vec![IceServer {
            urls: self.urls.clone(),
            username: self.username.clone(),
            credential: self.password.clone(),
            expires_at: None,
        }]
    }
}

/// The TURN REST password of `username`: base64(HMAC-SHA1(secret, username)).
pub fn rest_password(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_password_matches_known_value() {
        // The same HMAC as `printf %s 1700000000:alice | openssl dgst -sha1 -hmac
        // north -binary | base64`.
        assert_eq!(
            rest_password("north", "1700000000:alice"),
            "Cd/49soE35ICqcJF/bCTn8Z4OyE="
        );
    }

    #[test]
    fn secret_gives_expiring_username() {
        let settings = TurnSettings {
            urls: vec!["turn:127.0.0.2:3478".into()],
            secret: Some("north".into()),
            ttl: Duration::from_secs(600),
            ..TurnSettings::default()
        };
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let user = Uuid::nil();
        let servers = settings.ice_servers(user, now);
        assert_eq!(servers.len(), 1);
        let username = servers[0].username.clone().unwrap();
        assert_eq!(username, format!("1700000600:{user}"));
        assert_eq!(
            servers[0].credential.as_deref(),
            Some(rest_password("north", &username).as_str())
        );
    }

    #[test]
    fn static_credentials_pass_through() {
        let settings = TurnSettings {
            urls: vec!["turn:127.0.0.2:3478".into()],
            username: Some("static".into()),
            password: Some("word".into()),
            ..TurnSettings::default()
        };
        let servers = settings.ice_servers(Uuid::nil(), OffsetDateTime::now_utc());
        assert_eq!(servers[0].username.as_deref(), Some("static"));
        assert_eq!(servers[0].credential.as_deref(), Some("word"));
        assert_eq!(servers[0].expires_at, None);
    }

    #[test]
    fn no_url_gives_no_servers() {
        let settings = TurnSettings::default();
        assert!(
            settings
                .ice_servers(Uuid::nil(), OffsetDateTime::now_utc())
                .is_empty()
        );
    }
}
