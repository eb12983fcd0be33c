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

    /// The session token.
    ///
    /// NOTE: the token is kept in a file that only the user may read; the OS keyring
    /// is not used yet.
    pub fn token(&self) -> Result<Option<String>> {
        match std::fs::read_to_string(self.dir.join(TOKEN_FILE)) {
            Ok(token) => Ok(Some(token.trim().to_string()).filter(|token| !token.is_empty())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ClientError::Other(error.into())),
        }
    }

    pub fn save_token(&self, token: &str) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(anyhow::Error::from)?;
        write_private(&self.dir.join(TOKEN_FILE), token.as_bytes())
    }

    pub fn forget_token(&self) -> Result<()> {
        match std::fs::remove_file(self.dir.join(TOKEN_FILE)) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(ClientError::Other(error.into())),
        }
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
