//! The notification level: the choice in Settings of the new messages that notify the user.
//! The profile folder's `notifications.json` stores it, so it applies before the UI loads
//! and across logins.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tauri::State;

use crate::error::{CommandError, ErrorCode};
use crate::state::AppState;

/// Name of the file in the profile folder that stores the level.
pub const SETTINGS_FILE: &str = "notifications.json";

/// The set of new messages that show a native notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum NotificationLevel {
    /// No message notifies.
    Off,
    /// Direct messages, replies to the user and mentions of the user, `@room` or `@here`.
    #[default]
    Mentions,
    /// Every new message from someone else.
    All,
}

/// The stored form of `notifications.json`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredLevel {
    level: NotificationLevel,
}

/// The notification level in force, shared by the notifier and the commands.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    path: PathBuf,
    level: Arc<Mutex<NotificationLevel>>,
}

impl NotificationSettings {
    /// Reads the level from `dir/notifications.json`. A missing file gives the default,
    /// and an unreadable or invalid one gives the default with a warning.
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(SETTINGS_FILE);
        let level = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StoredLevel>(&bytes) {
                Ok(stored) => stored.level,
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "invalid notification settings; using the default");
                    NotificationLevel::default()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                NotificationLevel::default()
            }
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "failed to read the notification settings; using the default");
                NotificationLevel::default()
            }
        };
        NotificationSettings {
            path,
            level: Arc::new(Mutex::new(level)),
        }
    }

    pub fn level(&self) -> NotificationLevel {
        *self.level.lock().unwrap()
    }

    /// Stores `level` on disk, then puts it in force. On a write failure the level in
    /// force stays as it was.
    pub fn set(&self, level: NotificationLevel) -> Result<(), CommandError> {
        let failed = |error: std::io::Error| {
            tracing::error!(%error, path = %self.path.display(), "failed to save the notification settings");
            CommandError::new(
                ErrorCode::Internal,
                format!(
                    "failed to save the notification settings to {}: {error}",
                    self.path.display()
                ),
            )
        };
        let json = serde_json::to_vec_pretty(&StoredLevel { level })
            .expect("a notification level serializes");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        // A rename replaces the file in one step, so a crash never leaves half a file.
        let partial = self.path.with_extension("json.part");
        std::fs::write(&partial, json)
            .and_then(|()| std::fs::rename(&partial, &self.path))
            .map_err(failed)?;
        *self.level.lock().unwrap() = level;
        tracing::info!(?level, "the notification level changed");
        Ok(())
    }
}

/// Returns which new messages notify the user.
#[tauri::command]
#[specta::specta]
pub fn notification_level(state: State<'_, AppState>) -> NotificationLevel {
    state.notification_settings().level()
}

/// Sets which new messages notify the user, from the next message on, and stores it in the
/// profile.
#[tauri::command]
#[specta::specta]
pub fn set_notification_level(
    state: State<'_, AppState>,
    level: NotificationLevel,
) -> Result<(), CommandError> {
    state.notification_settings().set(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_mentions() {
        let dir = tempfile::tempdir().unwrap();
        let settings = NotificationSettings::load(dir.path());
        assert_eq!(settings.level(), NotificationLevel::Mentions);
    }

    #[test]
    fn set_level_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let settings = NotificationSettings::load(&dir.path().join("profile"));

        settings.set(NotificationLevel::Off).unwrap();

        assert_eq!(settings.level(), NotificationLevel::Off);
        let reloaded = NotificationSettings::load(&dir.path().join("profile"));
        assert_eq!(reloaded.level(), NotificationLevel::Off);
        let json = std::fs::read_to_string(dir.path().join("profile").join(SETTINGS_FILE));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json.unwrap()).unwrap(),
            serde_json::json!({ "level": "off" })
        );
    }

    #[test]
    fn invalid_file_gives_mentions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SETTINGS_FILE), r#"{"level": "loud"}"#).unwrap();
        let settings = NotificationSettings::load(dir.path());
        assert_eq!(settings.level(), NotificationLevel::Mentions);
    }

    #[test]
    fn failed_save_keeps_level() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the profile folder should be makes the save fail.
        let blocked = dir.path().join("profile");
        std::fs::write(&blocked, "not a folder").unwrap();
        let settings = NotificationSettings::load(&blocked);

        let error = settings.set(NotificationLevel::All).unwrap_err();

        assert_eq!(error.code, ErrorCode::Internal);
        assert!(error.message.contains(SETTINGS_FILE), "{}", error.message);
        assert_eq!(settings.level(), NotificationLevel::Mentions);
    }

    #[test]
    fn clones_share_level() {
        let dir = tempfile::tempdir().unwrap();
        let settings = NotificationSettings::load(dir.path());
        let notifier_copy = settings.clone();

        settings.set(NotificationLevel::All).unwrap();

        assert_eq!(notifier_copy.level(), NotificationLevel::All);
    }
}
