//! Settings: defaults, then a TOML file, then environment variables, then flags.
//!
//! The environment variables of the original Roomler container keep their names and
//! meaning (`API_URL`, `DB_CONN`, `WS_SCALEOUT_*`, `TURN_*`, ...); the others start
//! with `ROOMLER_`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listen address.
    pub addr: SocketAddr,
    /// Folder for the SQLite database and uploaded files.
    pub data_dir: PathBuf,
    /// The URL people use to reach the server, for invite links (`API_URL`).
    pub public_url: Option<String>,
    /// Database (`DB_CONN`): a SQLite path or `sqlite:PATH`, or a MongoDB connection
    /// string (`mongodb://` or `mongodb+srv://`); by default `DATA_DIR/roomler.db`.
    pub db_conn: Option<String>,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// How long each user's events are kept for replay, in days; a client away longer
    /// gets a `resync`.
    pub event_retention_days: u64,
    /// Interval of WebSocket pings, in seconds; a connection silent for three
    /// intervals is dropped.
    pub heartbeat_secs: u64,
    /// Events queued per WebSocket before the connection is closed as too slow.
    pub ws_send_queue: usize,
    /// Use `X-Forwarded-For` from a reverse proxy as the client address for rate limits.
    pub trust_proxy_headers: bool,
    /// `text` or `json`.
    pub log_format: String,
    pub rate_limit: RateLimitSettings,
    pub ws_scaleout_enabled: bool,
    pub ws_scaleout_host: Option<String>,
    pub turn_url: Option<String>,
    pub turn_username: Option<String>,
    pub turn_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Login attempts per client address per minute.
    pub login_per_ip_per_minute: u32,
    /// Login attempts per account per minute, whatever the address.
    pub login_per_account_per_minute: u32,
    /// Registrations per client address per hour.
    pub register_per_ip_per_hour: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("data"),
            public_url: None,
            db_conn: None,
            max_upload_bytes: 100 * 1024 * 1024,
            event_retention_days: 7,
            heartbeat_secs: 30,
            ws_send_queue: 256,
            trust_proxy_headers: false,
            log_format: "text".to_string(),
            rate_limit: RateLimitSettings::default(),
            ws_scaleout_enabled: false,
            ws_scaleout_host: None,
            turn_url: None,
            turn_username: None,
            turn_password: None,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            login_per_ip_per_minute: 30,
            login_per_account_per_minute: 10,
            register_per_ip_per_hour: 20,
        }
    }
}

/// Where the store keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A MongoDB connection string; the database is the one its path names, `roomler`
    /// when it names none.
    Mongo(String),
}

/// Shows a MongoDB URL without its password.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Mongo(url) => f
                .debug_tuple("Mongo")
                .field(&crate::store::mongo::redact_url(url))
                .finish(),
        }
    }
}

impl Settings {
    /// Loads the settings from an optional TOML file and the process environment.
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut settings = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("failed to read the settings file {}", path.display())
                })?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid settings file {}", path.display()))?
            }
            None => Settings::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(settings)
    }

    /// Overrides settings with the environment variables that `lookup` finds.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(value) = lookup("ROOMLER_ADDR") {
            self.addr = parse_env("ROOMLER_ADDR", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = lookup("API_URL") {
            self.public_url = Some(value);
        }
        if let Some(value) = lookup("DB_CONN") {
            self.db_conn = Some(value);
        }
        if let Some(value) = lookup("ROOMLER_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = parse_env("ROOMLER_MAX_UPLOAD_BYTES", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_EVENT_RETENTION_DAYS") {
            self.event_retention_days = parse_env("ROOMLER_EVENT_RETENTION_DAYS", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_HEARTBEAT_SECS") {
            self.heartbeat_secs = parse_env("ROOMLER_HEARTBEAT_SECS", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_WS_SEND_QUEUE") {
            self.ws_send_queue = parse_env("ROOMLER_WS_SEND_QUEUE", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_TRUST_PROXY_HEADERS") {
            self.trust_proxy_headers = parse_bool("ROOMLER_TRUST_PROXY_HEADERS", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_LOG_FORMAT") {
            self.log_format = value;
        }
        if let Some(value) = lookup("ROOMLER_RATE_LIMIT") {
            self.rate_limit.enabled = parse_bool("ROOMLER_RATE_LIMIT", &value)?;
        }
        if let Some(value) = lookup("WS_SCALEOUT_ENABLED") {
            self.ws_scaleout_enabled = parse_bool("WS_SCALEOUT_ENABLED", &value)?;
        }
        if let Some(value) = lookup("WS_SCALEOUT_HOST") {
            self.ws_scaleout_host = Some(value);
        }
        if let Some(value) = lookup("TURN_URL") {
            self.turn_url = Some(value);
        }
        if let Some(value) = lookup("TURN_USERNAME") {
            self.turn_username = Some(value);
        }
        if let Some(value) = lookup("TURN_PASSWORD") {
            self.turn_password = Some(value);
        }
        Ok(())
    }

    /// Checks the settings that can be wrong in ways a type cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.database()?;
        if self.heartbeat_secs == 0 {
            bail!("heartbeat_secs must be at least 1");
        }
        if self.ws_send_queue == 0 {
            bail!("ws_send_queue must be at least 1");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format is {:?}; use \"text\" or \"json\"",
                self.log_format
            );
        }
        Ok(())
    }

    pub fn database(&self) -> anyhow::Result<Database> {
        let Some(conn) = &self.db_conn else {
            return Ok(Database::Sqlite(self.data_dir.join("roomler.db")));
        };
        if conn.starts_with("mongodb://") || conn.starts_with("mongodb+srv://") {
            return Ok(Database::Mongo(conn.clone()));
        }
        let path = conn
            .strip_prefix("sqlite://")
            .or_else(|| conn.strip_prefix("sqlite:"));
        Ok(Database::Sqlite(PathBuf::from(path.unwrap_or(conn))))
    }

    /// The folder of uploaded files.
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }
}

fn parse_env<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|error| anyhow::anyhow!("{name}={value:?} is invalid: {error}"))
}

fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}={value:?} is invalid; use true or false"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with_env(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut settings = Settings::default();
        settings.apply_env(|name| env.get(name).cloned())?;
        Ok(settings)
    }

    #[test]
    fn defaults_listen_on_loopback_with_sqlite() {
        let settings = Settings::default();
        assert_eq!(settings.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(
            settings.database().unwrap(),
            Database::Sqlite("data/roomler.db".into())
        );
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn env_overrides_defaults() {
        let settings = with_env(&[
            ("ROOMLER_ADDR", "0.0.0.0:8080"),
            ("DB_CONN", "sqlite:/tmp/x.db"),
        ])
        .unwrap();
        assert_eq!(settings.addr.port(), 8080);
        assert_eq!(
            settings.database().unwrap(),
            Database::Sqlite("/tmp/x.db".into())
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let error = with_env(&[("ROOMLER_ADDR", "nowhere")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("ROOMLER_ADDR"), "{error}");
        let error = with_env(&[("ROOMLER_RATE_LIMIT", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("true or false"), "{error}");
    }

    #[test]
    fn mongodb_url_selects_mongo_store() {
        for url in [
            "mongodb://db:27017/roomler?replicaSet=rs0",
            "mongodb+srv://cluster.example/roomler",
        ] {
            let settings = with_env(&[("DB_CONN", url)]).unwrap();
            assert!(settings.validate().is_ok(), "{url}");
            assert_eq!(settings.database().unwrap(), Database::Mongo(url.into()));
        }
    }

    #[test]
    fn mongo_database_debug_hides_password() {
        let database = Database::Mongo("mongodb://roomler:s3cret@db:27017/roomler".into());
        let debug = format!("{database:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("roomler:***@db:27017"), "{debug}");
    }

    #[test]
    fn toml_file_rejects_unknown_keys() {
        let parsed: Result<Settings, _> = toml::from_str("adress = \"127.0.0.1:1\"");
        assert!(parsed.is_err());
        let parsed: Settings =
            toml::from_str("max_upload_bytes = 10\n[rate_limit]\nenabled = false").unwrap();
        assert_eq!(parsed.max_upload_bytes, 10);
        assert!(!parsed.rate_limit.enabled);
    }
}
