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
    /// TURN server URLs for call participants (`TURN_URL`), comma-separated, e.g.
    /// `turn:turn.example.com:3478?transport=udp,turn:turn.example.com:3478?transport=tcp`.
    pub turn_url: Option<String>,
    /// Static TURN username and password, handed out when no `turn_secret` is set.
    pub turn_username: Option<String>,
    pub turn_password: Option<String>,
    /// coturn's `static-auth-secret`: participants get time-limited TURN REST
    /// credentials signed with it.
    pub turn_secret: Option<String>,
    /// Lifetime of the time-limited TURN credentials, in seconds.
    pub turn_ttl_secs: u64,
    /// WebSocket URLs of Janus instances (`ws://host:8188`); each call is placed on
    /// the instance with the fewest calls. Empty: start a local Janus if the
    /// `janus_binary` exists.
    pub janus_urls: Vec<String>,
    /// The `api_secret` of the configured Janus instances, if they set one.
    pub janus_api_secret: Option<String>,
    /// The VideoRoom plugin's `admin_key` of the configured instances, if they set one.
    pub janus_admin_key: Option<String>,
    /// The Janus program for the local instance; an empty string disables it.
    pub janus_binary: String,
    /// The local Janus's `ice_enforce_list`: the interfaces or addresses its ICE
    /// gathers candidates on, comma-separated; all interfaces when unset.
    pub janus_ice_enforce_list: Option<String>,
    /// The local Janus's `nat_1_1_mapping`: the public addresses, comma-separated,
    /// that its candidates carry in place of the host's private address behind a
    /// 1:1 NAT, as on most cloud machines.
    pub janus_nat_1_1_mapping: Option<String>,
    /// The local Janus's UDP port range for media, `MIN-MAX`.
    pub janus_rtp_port_range: String,
    /// The maximum number of publishers in one call.
    pub call_max_participants: u32,
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
            turn_secret: None,
            turn_ttl_secs: 86_400,
            janus_urls: Vec::new(),
            janus_api_secret: None,
            janus_admin_key: None,
            janus_binary: "janus".to_string(),
            janus_ice_enforce_list: None,
            janus_nat_1_1_mapping: None,
            janus_rtp_port_range: "20000-40000".to_string(),
            call_max_participants: 50,
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
        if let Some(value) = lookup("TURN_SECRET") {
            self.turn_secret = Some(value);
        }
        if let Some(value) = lookup("ROOMLER_TURN_TTL_SECS") {
            self.turn_ttl_secs = parse_env("ROOMLER_TURN_TTL_SECS", &value)?;
        }
        if let Some(value) = lookup("ROOMLER_JANUS_URLS") {
            self.janus_urls = split_list(&value);
        }
        if let Some(value) = lookup("ROOMLER_JANUS_API_SECRET") {
            self.janus_api_secret = Some(value);
        }
        if let Some(value) = lookup("ROOMLER_JANUS_ADMIN_KEY") {
            self.janus_admin_key = Some(value);
        }
        if let Some(value) = lookup("ROOMLER_JANUS_BINARY") {
            self.janus_binary = value;
        }
        if let Some(value) = lookup("ROOMLER_JANUS_ICE_ENFORCE_LIST") {
            self.janus_ice_enforce_list = Some(value);
        }
        if let Some(value) = lookup("ROOMLER_JANUS_NAT_1_1_MAPPING") {
            self.janus_nat_1_1_mapping = Some(value);
        }
        if let Some(value) = lookup("ROOMLER_JANUS_RTP_PORT_RANGE") {
            self.janus_rtp_port_range = value;
        }
        if let Some(value) = lookup("ROOMLER_CALL_MAX_PARTICIPANTS") {
            self.call_max_participants = parse_env("ROOMLER_CALL_MAX_PARTICIPANTS", &value)?;
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
        for url in &self.janus_urls {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                bail!(
                    "the Janus URL {url:?} is invalid; use the WebSocket transport's URL, \
                     e.g. ws://127.0.0.1:8188"
                );
            }
        }
        for url in self.turn_urls() {
            if !(url.starts_with("turn:") || url.starts_with("turns:") || url.starts_with("stun:"))
            {
                bail!(
                    "TURN_URL contains {url:?}, which is invalid; use turn:HOST:PORT, \
                     turns:HOST:PORT or stun:HOST:PORT, separated by commas"
                );
            }
        }
        if self.turn_ttl_secs == 0 {
            bail!("turn_ttl_secs must be at least 1");
        }
        if self.call_max_participants == 0 {
            bail!("call_max_participants must be at least 1");
        }
        crate::calls::supervisor::parse_port_range(&self.janus_rtp_port_range)?;
        for address in split_list(self.janus_nat_1_1_mapping.as_deref().unwrap_or_default()) {
            if address.parse::<std::net::IpAddr>().is_err() {
                bail!(
                    "janus_nat_1_1_mapping contains {address:?}, which is not an IP address; \
                     give the public addresses of this host, separated by commas, e.g. \
                     203.0.113.10"
                );
            }
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

    /// The `turn:` and `stun:` URLs of `turn_url`.
    pub fn turn_urls(&self) -> Vec<String> {
        self.turn_url.as_deref().map(split_list).unwrap_or_default()
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

/// Splits a comma-separated list, dropping blanks.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
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
    fn call_settings_parse_lists() {
        let settings = with_env(&[
            (
                "ROOMLER_JANUS_URLS",
                "ws://127.0.0.1:8188, ws://127.0.0.1:8189",
            ),
            (
                "TURN_URL",
                "turn:127.0.0.2:3478?transport=udp,turn:127.0.0.2:3478?transport=tcp",
            ),
            ("TURN_SECRET", "north"),
        ])
        .unwrap();
        assert_eq!(settings.janus_urls.len(), 2);
        assert_eq!(settings.turn_urls().len(), 2);
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn invalid_call_urls_are_named() {
        let settings = with_env(&[("ROOMLER_JANUS_URLS", "http://127.0.0.1:8088")]).unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("http://127.0.0.1:8088"), "{error}");
        let settings = with_env(&[("TURN_URL", "127.0.0.2:3478")]).unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("127.0.0.2:3478"), "{error}");
        let settings = with_env(&[("ROOMLER_JANUS_RTP_PORT_RANGE", "40000-20000")]).unwrap();
        assert!(settings.validate().is_err());
    }

    #[test]
    fn nat_mapping_takes_ip_addresses() {
        let settings =
            with_env(&[("ROOMLER_JANUS_NAT_1_1_MAPPING", "203.0.113.10, 2001:db8::1")]).unwrap();
        assert!(settings.validate().is_ok());
        let settings = with_env(&[(
            "ROOMLER_JANUS_NAT_1_1_MAPPING",
            "203.0.113.10,public.example",
        )])
        .unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("\"public.example\""), "{error}");
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
