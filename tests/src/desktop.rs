//! The desktop app under WebDriver: Xvfb, tauri-driver with WebKitWebDriver, and the
//! `roomler-desktop` binary with its UI embedded.
//!
//! [`Prerequisites::find`] locates the programs, [`Xvfb`] runs a virtual display, and
//! [`DesktopApp`] starts tauri-driver on it, which starts WebKitWebDriver, which starts
//! the app. Dropping a [`DesktopApp`] ends the WebDriver session, which closes the app.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::free_loopback_port;

/// Time for tauri-driver to answer `GET /status` after its spawn.
const DRIVER_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Time for Xvfb to report its display number.
const XVFB_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time [`DesktopApp::wait_for`] waits for an element or a condition.
pub const UI_TIMEOUT: Duration = Duration::from_secs(20);
/// Size of the virtual screen and of the app's window, in pixels.
pub const SCREEN_WIDTH: u32 = 1280;
pub const SCREEN_HEIGHT: u32 = 800;

/// The programs that driving the desktop app needs.
#[derive(Debug, Clone)]
pub struct Prerequisites {
    pub xvfb: PathBuf,
    pub webkit_webdriver: PathBuf,
    pub tauri_driver: PathBuf,
    /// `roomler-desktop`, built with `--features custom-protocol`.
    pub app: PathBuf,
}

impl Prerequisites {
    /// Finds the programs. Returns `Ok(None)` with the reason printed when Xvfb or
    /// WebKitWebDriver is not installed, which are the only reasons to skip.
    ///
    /// `app` is the `roomler-desktop` binary. Errors when tauri-driver or the app is
    /// missing, or when the app was built without its UI, naming the command that fixes it.
    pub fn find(app: &Path) -> Result<Option<Self>> {
        let Some(xvfb) = find_program("Xvfb") else {
            println!("skipped: Xvfb is not installed (Debian package xvfb)");
            return Ok(None);
        };
        let Some(webkit_webdriver) = find_program("WebKitWebDriver") else {
            println!(
                "skipped: WebKitWebDriver is not installed (Debian package webkit2gtk-driver)"
            );
            return Ok(None);
        };
        let tauri_driver = find_program("tauri-driver")
            .or_else(|| {
                let path = cargo_home()?.join("bin/tauri-driver");
                path.is_file().then_some(path)
            })
            .context(
                "tauri-driver is not installed; install it with `cargo install tauri-driver \
                 --locked` (installers/lib.sh's install_test_tools does)",
            )?;
        check_app(app)?;
        Ok(Some(Self {
            xvfb,
            webkit_webdriver,
            tauri_driver,
            app: app.to_path_buf(),
        }))
    }
}

/// Errors unless `app` exists and embeds the UI, which its `--version` line states.
fn check_app(app: &Path) -> Result<()> {
    let build = "build it with `npm --prefix ui ci && npm --prefix ui run build && cargo build \
                 -p roomler-desktop --features custom-protocol` (installers/test.sh does)";
    ensure!(app.is_file(), "{} is missing; {build}", app.display());
    let output = std::process::Command::new(app)
        .arg("--version")
        .output()
        .with_context(|| format!("failed to run {} --version", app.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    ensure!(
        version.contains("(embedded UI)"),
        "{} was built without its UI (--version printed {:?}); {build}",
        app.display(),
        version.trim()
    );
    Ok(())
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// A virtual X display, killed on drop.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb on the first free display number, which Xvfb picks itself
    /// (`-displayfd`), with a 24-bit screen of [`SCREEN_WIDTH`] by [`SCREEN_HEIGHT`].
    pub async fn start(program: &Path) -> Result<Self> {
        let mut child = Command::new(program)
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{SCREEN_WIDTH}x{SCREEN_HEIGHT}x24"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", program.display()))?;
        let mut stdout = child.stdout.take().context("Xvfb has no stdout")?;

        // Xvfb writes the display number and a newline once it accepts connections.
        let mut number = String::new();
        let read = async {
            let mut byte = [0u8; 1];
            while stdout.read(&mut byte).await? == 1 && byte[0] != b'\n' {
                number.push(char::from(byte[0]));
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(XVFB_STARTUP_TIMEOUT, read)
            .await
            .context("timed out waiting for Xvfb to report its display")??;
        ensure!(
            !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()),
            "Xvfb reported no display number (read {number:?})"
        );
        Ok(Self {
            child,
            display: format!(":{number}"),
        })
    }

    /// Returns the value for `DISPLAY`, e.g. `:99`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Returns the process id of Xvfb, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// How to launch the app.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Arguments of `roomler-desktop`, e.g. `--profile DIR --server URL`.
    pub args: Vec<String>,
    /// Environment variables of tauri-driver, which WebKitWebDriver and the app inherit.
    pub env: Vec<(String, String)>,
    /// File for the standard error of tauri-driver, WebKitWebDriver and the app.
    pub log_path: Option<PathBuf>,
}

/// The app running under tauri-driver, with a WebDriver session on its window.
pub struct DesktopApp {
    client: Option<Client>,
    driver: Child,
}

impl DesktopApp {
    /// Starts tauri-driver on free loopback ports with `DISPLAY` set to `display`, and opens
    /// a WebDriver session, which launches the app and returns once its page has loaded.
    pub async fn launch(
        prerequisites: &Prerequisites,
        display: &str,
        options: &LaunchOptions,
    ) -> Result<Self> {
        let port = free_loopback_port()?;
        let native_port = free_loopback_port()?;
        let stderr = match &options.log_path {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("failed to create {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        let driver = Command::new(&prerequisites.tauri_driver)
            .arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native_port.to_string())
            .arg("--native-driver")
            .arg(&prerequisites.webkit_webdriver)
            .env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY")
            .envs(options.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", prerequisites.tauri_driver.display()))?;
        let mut app = Self {
            client: None,
            driver,
        };

        let url = format!("http://127.0.0.1:{port}");
        app.wait_for_driver(&url).await?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "tauri:options".into(),
            json!({ "application": prerequisites.app, "args": options.args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .with_context(|| {
                format!(
                    "failed to open a WebDriver session on {}",
                    prerequisites.app.display()
                )
            })?;
        app.client = Some(client);
        Ok(app)
    }

    async fn wait_for_driver(&mut self, url: &str) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()?;
        let deadline = Instant::now() + DRIVER_STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.driver.try_wait()? {
                bail!("tauri-driver exited with {status} before it answered");
            }
            if let Ok(response) = http.get(format!("{url}/status")).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("timed out after {DRIVER_STARTUP_TIMEOUT:?} waiting for tauri-driver at {url}")
    }

    /// Returns the WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Returns the process id of tauri-driver, whose descendants are WebKitWebDriver, the
    /// app and WebKit's processes.
    pub fn driver_pid(&self) -> Option<u32> {
        self.driver.id()
    }

    /// Waits up to `timeout` for an element that matches the CSS `selector`.
    pub async fn wait_for(&self, selector: &str, timeout: Duration) -> Result<Element> {
        self.client()
            .wait()
            .at_most(timeout)
            .for_element(Locator::Css(selector))
            .await
            .with_context(|| format!("no element matched {selector:?} within {timeout:?}"))
    }

    /// Returns every element that matches the CSS `selector`.
    pub async fn find_all(&self, selector: &str) -> Result<Vec<Element>> {
        Ok(self.client().find_all(Locator::Css(selector)).await?)
    }

    /// Runs `script` in the page until it returns `true`, for up to `timeout`. `what`
    /// describes the condition for the error.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.client().execute(script, Vec::new()).await?;
            if value == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting until {what} (last result {value})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Returns the visible text of the whole page.
    pub async fn page_text(&self) -> Result<String> {
        let body = self.client().find(Locator::Css("body")).await?;
        Ok(body.text().await?)
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client().screenshot().await?;
        std::fs::write(path, png).with_context(|| format!("failed to write {}", path.display()))
    }

    /// Ends the WebDriver session, which closes the app, and stops tauri-driver.
    pub async fn close(mut self) -> Result<()> {
        if let Some(client) = self.client.take() {
            client
                .close()
                .await
                .context("failed to end the WebDriver session")?;
        }
        self.stop_driver().await
    }

    async fn stop_driver(&mut self) -> Result<()> {
        // SIGTERM, because tauri-driver then kills WebKitWebDriver, which SIGKILL would orphan.
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(5), self.driver.wait())
            .await
            .context("timed out waiting for tauri-driver to exit")??;
        Ok(())
    }
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        // Without an async drop, the session cannot be ended here. Killing tauri-driver
        // with SIGTERM makes it kill WebKitWebDriver, whose exit closes the app.
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

/// Lists the process ids of every descendant of `root`, read from `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = parent_pid(pid) {
                parents.push((pid, parent));
            }
        }
    }
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Returns the command name of a process (`/proc/PID/comm`).
pub fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim().to_owned())
}

/// Reads a process's proportional set size in KiB from `/proc/PID/smaps_rollup`.
pub fn process_pss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    let line = text
        .lines()
        .find(|line| line.starts_with("Pss:"))
        .with_context(|| format!("Pss is missing from {path}"))?;
    line["Pss:".len()..]
        .split_whitespace()
        .next()
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("invalid Pss line in {path}: {line:?}"))
}
