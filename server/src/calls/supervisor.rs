//! A Janus started and supervised by the server, for set-ups with no Janus URL.
//!
//! The server writes a configuration into `DATA_DIR/janus/`: the WebSocket transport
//! on a free loopback port, only the VideoRoom plugin and the WebSocket transport
//! loaded, a fresh `api_secret` and VideoRoom `admin_key`, mDNS candidates ignored,
//! and the ICE interfaces and RTP port range from the settings. It restarts Janus
//! when it exits, with a growing delay, and kills it at shutdown.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Where distributions put Janus's plugin and transport folders.
const LIBRARY_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/janus",
    "/usr/lib/aarch64-linux-gnu/janus",
    "/usr/lib/janus",
    "/usr/local/lib/janus",
];
const RESTART_DELAY_MIN: Duration = Duration::from_secs(1);
const RESTART_DELAY_MAX: Duration = Duration::from_secs(30);
/// A Janus that ran this long before it exited counts as healthy, so the restart
/// delay starts from the minimum again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The local Janus: its URL and the secrets of its generated configuration.
#[derive(Debug, Clone)]
pub struct LocalJanus {
    pub url: String,
    pub api_secret: String,
    pub admin_key: String,
}

/// Parses `MIN-MAX` into a port range.
pub fn parse_port_range(text: &str) -> anyhow::Result<(u16, u16)> {
    let invalid = || {
        anyhow::anyhow!(
            "the RTP port range {text:?} is invalid; use MIN-MAX with 1 <= MIN <= MAX <= \
             65535, e.g. 20000-40000"
        )
    };
    let (min, max) = text.split_once('-').ok_or_else(invalid)?;
    let min: u16 = min.trim().parse().map_err(|_| invalid())?;
    let max: u16 = max.trim().parse().map_err(|_| invalid())?;
    if min == 0 || min > max {
        return Err(invalid());
    }
    Ok((min, max))
}

/// The Janus program named by `janus_binary`, looked up in `PATH` when it has no
/// slash; `None` when it is empty or not found.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A local Janus not started yet: the server starts it when the first call begins,
/// so a server that never hosts a call never runs Janus.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub port: u16,
    pub janus: LocalJanus,
}

impl Launch {
    /// Picks a free loopback port and the secrets for a local Janus.
    pub fn prepare(
        binary: PathBuf,
        settings: &Settings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        Ok(Launch {
            binary,
            settings: settings.clone(),
            shutdown,
            port,
            janus: LocalJanus {
                url: format!("ws://127.0.0.1:{port}"),
                api_secret: random_secret(),
                admin_key: random_secret(),
            },
        })
    }

    /// Writes the configuration and starts the supervising task, which runs Janus
    /// until `shutdown`.
    pub fn start(&self) -> anyhow::Result<()> {
        let dir = self.settings.data_dir.join("janus");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create the Janus folder {}", dir.display()))?;
        write_config(&dir, self.port, &self.janus, &self.settings)?;
        tracing::info!(binary = %self.binary.display(), url = %self.janus.url,
            "starting a local Janus");
        tokio::spawn(supervise(self.binary.clone(), dir, self.shutdown.clone()));
        Ok(())
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn write_config(
    dir: &Path,
    port: u16,
    local: &LocalJanus,
    settings: &Settings,
) -> anyhow::Result<()> {
    let (rtp_min, rtp_max) = parse_port_range(&settings.janus_rtp_port_range)?;
    let library = LIBRARY_DIRS.iter().map(Path::new).find(|dir| dir.is_dir());
    let mut general = format!(
        "general: {{\n  configs_folder = {configs}\n  debug_level = 4\n  \
         api_secret = {secret}\n  session_timeout = 60\n",
        configs = quote(&dir.display().to_string()),
        secret = quote(&local.api_secret),
    );
    let mut plugins = String::new();
    let mut transports = String::new();
    if let Some(library) = library {
        general.push_str(&format!(
            "  plugins_folder = {}\n  transports_folder = {}\n",
            quote(&library.join("plugins").display().to_string()),
            quote(&library.join("transports").display().to_string()),
        ));
        let unwanted = |folder: &str, keep: &str| -> Vec<String> {
            let Ok(entries) = std::fs::read_dir(library.join(folder)) else {
                return Vec::new();
            };
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| name.ends_with(".so") && name != keep)
                .collect()
        };
        plugins = unwanted("plugins", "libjanus_videoroom.so").join(",");
        transports = unwanted("transports", "libjanus_websockets.so").join(",");
    }
    general.push_str("}\n");
    let mut nat = String::from("nat: {\n  nice_debug = false\n  ignore_mdns = true\n");
    if let Some(list) = &settings.janus_ice_enforce_list {
        nat.push_str(&format!("  ice_enforce_list = {}\n", quote(list)));
    }
    if let Some(mapping) = &settings.janus_nat_1_1_mapping {
        nat.push_str(&format!("  nat_1_1_mapping = {}\n", quote(mapping)));
    }
    nat.push_str("}\n");
    let janus = format!(
        "{general}{nat}media: {{\n  rtp_port_range = \"{rtp_min}-{rtp_max}\"\n}}\n\
         plugins: {{\n  disable = {plugins}\n}}\ntransports: {{\n  disable = {transports}\n}}\n\
         events: {{\n  broadcast = false\n}}\n",
        plugins = quote(&plugins),
        transports = quote(&transports),
    );
    let websockets = format!(
        "general: {{\n  json = \"compact\"\n  ws = true\n  ws_port = {port}\n  \
         ws_ip = \"127.0.0.1\"\n  wss = false\n}}\nadmin: {{\n  admin_ws = false\n  \
         admin_wss = false\n}}\n"
    );
    let videoroom = format!(
        "general: {{\n  admin_key = {}\n  lock_rtp_forward = true\n}}\n",
        quote(&local.admin_key)
    );
    write_private(&dir.join("janus.jcfg"), &janus)?;
    write_private(&dir.join("janus.transport.websockets.jcfg"), &websockets)?;
    write_private(&dir.join("janus.plugin.videoroom.jcfg"), &videoroom)?;
    Ok(())
}

/// A libconfig string literal.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes a file only its owner can read, since it holds the Janus secrets.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))
}

async fn supervise(binary: PathBuf, dir: PathBuf, shutdown: CancellationToken) {
    let mut delay = RESTART_DELAY_MIN;
    loop {
        let started = tokio::time::Instant::now();
        match run_once(&binary, &dir, &shutdown).await {
            Ok(None) => return,
            Ok(Some(status)) => {
                tracing::error!(%status, log = %dir.join("janus.log").display(),
                    "the local Janus exited; restarting it");
            }
            Err(error) => tracing::error!(%error, "failed to start the local Janus"),
        }
        if started.elapsed() > HEALTHY_RUN {
            delay = RESTART_DELAY_MIN;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(RESTART_DELAY_MAX);
    }
}

/// Runs Janus until it exits (its status) or until `shutdown` (`None`).
async fn run_once(
    binary: &Path,
    dir: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    let log = std::fs::File::create(dir.join("janus.log"))
        .with_context(|| format!("failed to create {}", dir.join("janus.log").display()))?;
    let mut child = Command::new(binary)
        .arg("--disable-colors")
        .arg("-F")
        .arg(dir)
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    tokio::select! {
        status = child.wait() => Ok(Some(status?)),
        () = shutdown.cancelled() => {
            let _ = child.kill().await;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses() {
        assert_eq!(parse_port_range("20000-40000").unwrap(), (20000, 40000));
        assert!(parse_port_range("40000-20000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("20000").is_err());
    }

    #[test]
    fn config_carries_the_nat_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        let local = LocalJanus {
            url: "ws://127.0.0.1:8188".into(),
            api_secret: "secret".into(),
            admin_key: "key".into(),
        };
        write_config(dir.path(), 8188, &local, &settings).unwrap();
        let janus = std::fs::read_to_string(dir.path().join("janus.jcfg")).unwrap();
        assert!(!janus.contains("nat_1_1_mapping"), "{janus}");

        settings.janus_nat_1_1_mapping = Some("203.0.113.10".into());
        write_config(dir.path(), 8188, &local, &settings).unwrap();
        let janus = std::fs::read_to_string(dir.path().join("janus.jcfg")).unwrap();
        assert!(
            janus.contains("  nat_1_1_mapping = \"203.0.113.10\"\n"),
            "{janus}"
        );
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
