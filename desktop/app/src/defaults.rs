//! Settings that administrators push to every user of a computer: the server URL that
//! the sign-in form offers. It comes from, in this order, the command line or
//! `ROOMLER_SERVER_URL`, the system-wide file [`system_config_path`], and the URL baked
//! in at build time from `ROOMLER_DEFAULT_SERVER_URL`. A profile that has signed in
//! before keeps its own server.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::parse_server_url;

/// The server URL that `ROOMLER_DEFAULT_SERVER_URL` held when the app was built. build.rs
/// has checked that it parses.
const BUILT_IN_SERVER_URL: Option<&str> = option_env!("ROOMLER_DEFAULT_SERVER_URL");

/// The system-wide settings file, which `installers/desktop/desktop.toml.example`
/// documents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemConfig {
    server_url: Option<String>,
}

/// Returns the platform's path of the system-wide settings file.
pub fn system_config_path() -> PathBuf {
    if cfg!(target_os = "windows") {
        let program_data =
            std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(program_data)
            .join("Roomler")
            .join("desktop.toml")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/Roomler/desktop.toml")
    } else {
        PathBuf::from("/etc/roomler/desktop.toml")
    }
}

/// Picks the server URL the sign-in form offers to a profile without one: `explicit`
/// (the command line) first, then the file at `config_path`, then the built-in URL.
///
/// A missing file is normal. A file that cannot be read or parsed is logged and skipped,
/// so a broken push from an administrator never keeps the app from starting.
pub fn default_server_url(explicit: Option<String>, config_path: &Path) -> Option<String> {
    if explicit.is_some() {
        return explicit;
    }
    match read_system_config(config_path) {
        Ok(Some(url)) => return Some(url),
        Ok(None) => {}
        Err(error) => tracing::warn!(path = %config_path.display(), "{error}; ignoring the file"),
    }
    built_in_server_url()
}

/// Returns the URL baked in at build time, trimmed like one typed on the command line.
fn built_in_server_url() -> Option<String> {
    BUILT_IN_SERVER_URL.and_then(|url| parse_server_url(url).ok())
}

/// Reads `server_url` from the settings file at `path`. Returns `Ok(None)` when the file
/// does not exist or sets no URL.
fn read_system_config(path: &Path) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let config: SystemConfig = toml::from_str(&text)
        .map_err(|error| format!("invalid settings file {}: {error}", path.display()))?;
    config
        .server_url
        .map(|url| parse_server_url(&url))
        .transpose()
        .map_err(|error| format!("invalid server_url in {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desktop.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn explicit_url_wins_over_file() {
        let (_dir, path) = write_config("server_url = \"https://file.example.com\"\n");
        let url = default_server_url(Some("https://cli.example.com".into()), &path);
        assert_eq!(url.as_deref(), Some("https://cli.example.com"));
    }

    #[test]
    fn file_url_is_used_and_normalised() {
        let (_dir, path) = write_config("server_url = \" https://chat.example.com/ \"\n");
        let url = default_server_url(None, &path);
        assert_eq!(url.as_deref(), Some("https://chat.example.com"));
    }

    #[test]
    fn missing_file_falls_back_to_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let url = default_server_url(None, &dir.path().join("absent.toml"));
        assert_eq!(url, built_in_server_url());
    }

    #[test]
    fn invalid_url_in_file_is_reported() {
        let (_dir, path) = write_config("server_url = \"chat.example.com\"\n");
        let error = read_system_config(&path).unwrap_err();
        assert!(error.contains("invalid server_url"), "{error}");
        assert!(error.contains("chat.example.com"), "{error}");
        assert_eq!(default_server_url(None, &path), built_in_server_url());
    }

    #[test]
    fn unknown_key_in_file_is_reported() {
        let (_dir, path) = write_config("server = \"https://chat.example.com\"\n");
        let error = read_system_config(&path).unwrap_err();
        assert!(error.contains("unknown field `server`"), "{error}");
    }

    #[test]
    fn file_without_url_is_empty() {
        let (_dir, path) = write_config("# nothing set\n");
        assert_eq!(read_system_config(&path), Ok(None));
    }
}
