//! A profile: one folder with the server's URL, the account, the session token and
//! the cache. Several profiles let one person use several servers or accounts.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ClientError, Result};

const SETTINGS_FILE: &str = "profile.json";
const TOKEN_FILE: &str = "token";
const CACHE_FILE: &str = "cache.db";
/// Present when the token is in the OS keyring rather than in `TOKEN_FILE`.
const KEYRING_MARKER: &str = "token.keyring";
/// The keyring service name of every Roomler token.
const KEYRING_SERVICE: &str = "roomler";

/// The store that keeps a profile's session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStore {
    Keyring,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileSettings {
    pub server_url: String,
    pub user_id: Uuid,
    pub username: String,
}

#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Profile { dir: dir.into() }
    }

    /// `$ROOMLER_PROFILE`, else `$XDG_CONFIG_HOME/roomler/default`, else
    /// `~/.config/roomler/default`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("ROOMLER_PROFILE") {
            return PathBuf::from(dir);
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        config.join("roomler").join("default")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cache_path(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }

    pub fn settings(&self) -> Result<Option<ProfileSettings>> {
        let path = self.dir.join(SETTINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text)?)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ClientError::Other(anyhow::anyhow!(
                "failed to read {}: {error}",
                path.display()
            ))),
        }
    }

    pub fn save_settings(&self, settings: &ProfileSettings) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(anyhow::Error::from)?;
        let text = serde_json::to_string_pretty(settings)?;
        write_private(&self.dir.join(SETTINGS_FILE), text.as_bytes())
    }

    /// The session token: from the OS keyring when the profile keeps it there, else
    /// from the profile's token file.
    pub fn token(&self) -> Result<Option<String>> {
        if self.dir.join(KEYRING_MARKER).exists() {
            return match keyring_call(self.keyring_account(), |entry| entry.get_password()) {
                Ok(token) => Ok(Some(token)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(error) => Err(ClientError::Other(anyhow::anyhow!(
                    "failed to read the session token from the OS keyring: {error}; log in again"
                ))),
            };
        }
        match std::fs::read_to_string(self.dir.join(TOKEN_FILE)) {
            Ok(token) => Ok(Some(token.trim().to_string()).filter(|token| !token.is_empty())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ClientError::Other(error.into())),
        }
    }

    /// Stores the session token in the OS keyring (the Secret Service on Linux, the
    /// Keychain on macOS, the Credential Manager on Windows). Where none answers, or
    /// `ROOMLER_TOKEN_STORE=file` says so, it goes to a file only the user can read.
    /// Returns where it went.
    pub fn save_token(&self, token: &str) -> Result<TokenStore> {
        std::fs::create_dir_all(&self.dir).map_err(anyhow::Error::from)?;
        let forced_file = std::env::var("ROOMLER_TOKEN_STORE").is_ok_and(|value| value == "file");
        if !forced_file {
            let secret = token.to_string();
            match keyring_call(self.keyring_account(), move |entry| {
                entry.set_password(&secret)
            }) {
                Ok(()) => {
                    write_private(&self.dir.join(KEYRING_MARKER), b"")?;
                    remove_if_present(&self.dir.join(TOKEN_FILE))?;
                    return Ok(TokenStore::Keyring);
                }
                Err(error) => {
                    tracing::info!(%error, "no OS keyring is available; keeping the token in a private file");
                }
            }
        }
        write_private(&self.dir.join(TOKEN_FILE), token.as_bytes())?;
        remove_if_present(&self.dir.join(KEYRING_MARKER))?;
        Ok(TokenStore::File)
    }

    pub fn forget_token(&self) -> Result<()> {
        if self.dir.join(KEYRING_MARKER).exists() {
            match keyring_call(self.keyring_account(), |entry| entry.delete_credential()) {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(error) => {
                    tracing::warn!(%error, "failed to delete the token from the OS keyring")
                }
            }
            remove_if_present(&self.dir.join(KEYRING_MARKER))?;
        }
        remove_if_present(&self.dir.join(TOKEN_FILE))
    }

    /// The keyring account name: one per profile folder.
    fn keyring_account(&self) -> String {
        let dir = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        format!("profile:{}", dir.display())
    }
}

/// Runs a keyring call on a thread of its own: the platform stores may block, and
/// the Secret Service client must not run inside the async runtime's threads.
fn keyring_call<T: Send + 'static>(
    account: String,
    call: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> keyring::Result<T> {
    std::thread::spawn(move || {
        let entry = keyring::Entry::new(KEYRING_SERVICE, &account)?;
        call(&entry)
    })
    .join()
    .unwrap_or_else(|_| {
        Err(keyring::Error::PlatformFailure(
            "the keyring call panicked".into(),
        ))
    })
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ClientError::Other(error.into())),
    }
}

/// Writes a file that only its owner can read or write, replacing it atomically.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(anyhow::Error::from)?;
    file.write_all(contents).map_err(anyhow::Error::from)?;
    file.sync_all().map_err(anyhow::Error::from)?;
    std::fs::rename(&temporary, path).map_err(anyhow::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_through_some_store() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path());
        let store = profile.save_token("secret-token").unwrap();
        assert_eq!(profile.token().unwrap().as_deref(), Some("secret-token"));
        let file = dir.path().join(TOKEN_FILE);
        match store {
            TokenStore::Keyring => assert!(!file.exists(), "the token must not also be on disk"),
            TokenStore::File => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = file.metadata().unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600);
                }
            }
        }
        profile.forget_token().unwrap();
        assert_eq!(profile.token().unwrap(), None);
        assert!(!file.exists());
    }

    #[test]
    fn settings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path().join("nested"));
        assert!(profile.settings().unwrap().is_none());
        let settings = ProfileSettings {
            server_url: "http://127.0.0.1:3000".into(),
            user_id: Uuid::nil(),
            username: "alice".into(),
        };
        profile.save_settings(&settings).unwrap();
        assert_eq!(profile.settings().unwrap().unwrap().username, "alice");
    }
}
