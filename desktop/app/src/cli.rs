//! The command line of `roomler-desktop`. It is parsed before Tauri starts, so
//! `--version` and `--help` print and exit without a window or a display.

use std::path::PathBuf;

use clap::Parser;

/// The `--version` line. It names where the UI comes from, so scripts and the end-to-end
/// tests can tell a standalone binary from one that needs the Vite dev server.
#[cfg(feature = "custom-protocol")]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (embedded UI)");
#[cfg(not(feature = "custom-protocol"))]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (UI from the Vite dev server; build with --features custom-protocol to embed ui/dist)"
);

#[derive(Debug, Clone, Parser)]
#[command(name = "roomler-desktop", version = VERSION, about = "The Roomler desktop app")]
pub struct Options {
    /// Server URL that the login form offers when the profile has none yet,
    /// e.g. https://chat.example.com.
    #[arg(long, env = "ROOMLER_SERVER_URL", value_name = "URL", value_parser = parse_server_url)]
    pub server: Option<String>,
    /// Profile folder with the session and the offline cache
    /// (default: a `profile` folder in the platform's app data folder).
    #[arg(long, env = "ROOMLER_PROFILE", value_name = "DIR")]
    pub profile: Option<PathBuf>,
}

/// Parses a server URL, which needs http or https and a host. Returns it trimmed and
/// without a trailing slash.
pub fn parse_server_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(url.to_string()),
        _ => Err(format!(
            "invalid server URL {text:?}: expected http:// or https:// and a host, \
             e.g. https://chat.example.com"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_accepts_http_and_https() {
        assert_eq!(
            parse_server_url("https://chat.example.com/").unwrap(),
            "https://chat.example.com"
        );
        assert_eq!(
            parse_server_url(" http://127.0.0.1:3000 ").unwrap(),
            "http://127.0.0.1:3000"
        );
    }

    #[test]
    fn server_url_rejects_other_text() {
        for text in ["", "chat.example.com", "ftp://chat.example.com", "https://"] {
            assert!(parse_server_url(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn version_flag_exits_early() {
        let error = Options::try_parse_from(["roomler-desktop", "--version"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
