//! End-to-end helpers: start the real server binary and talk to it.
//!
//! - [`ServerProcess`] runs `roomler-server` as a child process on a free loopback port.
//! - [`ApiClient`] calls the HTTP API with the request and response types of
//!   `roomler_shared::api`.
//! - [`connect_websocket`], [`read_hello`] and [`send_frame`] open and use `GET /api/ws`.
//! - [`process_rss_kib`], [`process_cpu_secs`], [`MachineInfo`], [`load_average_1m`] and
//!   [`raise_open_file_limit`] read and set facts in `/proc` and the resource limits,
//!   for benchmark reports. They work on Linux only.
//! - [`desktop`] runs the desktop app under Xvfb and tauri-driver, driven over WebDriver.
//! - [`netns`] re-runs a test inside a network namespace of its own, for calls.
//! - [`call_bots`] starts `roomler call` participants for the call benchmarks.

pub mod call_bots;
pub mod desktop;

pub use roomler_netns as netns;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use roomler_shared::api::{
    AuthResponse, CreateRoomRequest, ErrorBody, JoinRoomRequest, PostMessageRequest,
    RegisterRequest,
};
use roomler_shared::model::{Message, Room};
use roomler_shared::ws::{ClientFrame, Control, ServerFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// Timeout of one HTTP request made by [`ApiClient`].
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines of the server log that startup errors include.
const LOG_TAIL_LINES: usize = 40;

/// How to start the server binary.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub binary: PathBuf,
    /// Environment variables set for the server, on top of the inherited ones.
    pub env: Vec<(String, String)>,
    /// File for the server's stdout and stderr. Without it they go to `server.log` in the
    /// temporary data directory, which is deleted with the [`ServerProcess`].
    pub log_path: Option<PathBuf>,
    /// Time allowed from the spawn until `GET /health` returns 200.
    pub startup_timeout: Duration,
}

impl ServerOptions {
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            env: Vec::new(),
            log_path: None,
            startup_timeout: Duration::from_secs(30),
        }
    }
}

/// A running `roomler-server` child with its own temporary data directory.
///
/// Dropping it kills the child with SIGKILL (`kill_on_drop`), so the server also stops
/// when the caller returns early with an error or its future is cancelled. Call
/// [`ServerProcess::shutdown`] to wait for the exit.
///
/// NOTE: a parent that dies without unwinding (SIGKILL, or a signal it does not handle)
/// leaves the child and its data directory behind. Setting PR_SET_PDEATHSIG would need
/// unsafe code, which this workspace forbids.
pub struct ServerProcess {
    // Declared before `data_dir` so that drop kills the child before it deletes the directory.
    child: Child,
    base_url: String,
    log_path: PathBuf,
    data_dir: TempDir,
    options: ServerOptions,
}

impl ServerProcess {
    /// Starts the binary with `--addr 127.0.0.1:PORT --data-dir DIR` on a free port and
    /// waits until `GET /health` returns 200.
    ///
    /// Errors when the binary cannot be spawned, exits early, or is not healthy within
    /// `options.startup_timeout`. The error includes the end of the server log.
    pub async fn start(options: &ServerOptions) -> Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("roomler-e2e-")
            .tempdir()
            .context("failed to create a temporary data directory for the server")?;
        let log_path = options
            .log_path
            .clone()
            .unwrap_or_else(|| data_dir.path().join("server.log"));
        let port = free_loopback_port()?;
        let (child, base_url) = spawn_server(options, data_dir.path(), &log_path, port, false)?;

        let mut server = Self {
            child,
            base_url,
            log_path,
            data_dir,
            options: options.clone(),
        };
        server.wait_until_healthy(options.startup_timeout).await?;
        Ok(server)
    }

    /// Kills the server and starts the binary again with the same data directory, on a new
    /// free port, so [`ServerProcess::base_url`] changes. The log file is appended to.
    ///
    /// Benchmarks use it to measure memory without what setup left in the allocator.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill_and_wait().await?;
        let port = free_loopback_port()?;
        let (child, base_url) = spawn_server(
            &self.options,
            self.data_dir.path(),
            &self.log_path,
            port,
            true,
        )?;
        self.child = child;
        self.base_url = base_url;
        self.wait_until_healthy(self.options.startup_timeout).await
    }

    /// Kills the server and waits for it to exit, keeping its data directory, so that
    /// [`ServerProcess::start_again`] can bring it back. Clients see the server go offline.
    pub async fn stop(&mut self) -> Result<()> {
        self.kill_and_wait().await
    }

    /// Starts the binary again after [`ServerProcess::stop`], on the same port and data
    /// directory, so clients that stored [`ServerProcess::base_url`] reach it again. The
    /// log file is appended to.
    pub async fn start_again(&mut self) -> Result<()> {
        self.ensure_stopped()?;
        let port = self.port()?;
        let (child, base_url) = spawn_server(
            &self.options,
            self.data_dir.path(),
            &self.log_path,
            port,
            true,
        )?;
        self.child = child;
        self.base_url = base_url;
        self.wait_until_healthy(self.options.startup_timeout).await
    }

    fn port(&self) -> Result<u16> {
        self.base_url
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .with_context(|| format!("the server URL {} has no port", self.base_url))
    }

    fn ensure_stopped(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(_)) => Ok(()),
            Ok(None) => bail!("the server is still running; call stop() first"),
            Err(error) => Err(anyhow!(error).context("failed to poll the server process")),
        }
    }

    /// Returns the server's URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns the child's process id, or `None` once it has been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Returns an error with the exit status and the end of the log if the server has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited_error(status)),
            Err(error) => Err(anyhow!(error).context("failed to poll the server process")),
        }
    }

    /// Kills the server with SIGKILL and waits up to 5 seconds for it to exit.
    pub async fn shutdown(mut self) -> Result<()> {
        self.kill_and_wait().await
    }

    /// Stops the server with SIGTERM, so that it shuts down gracefully and stops the
    /// Janus it started, and waits up to 10 s before it kills it.
    pub async fn terminate(mut self) -> Result<()> {
        let Some(pid) = self.child.id() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .context("failed to run kill")?;
        if !status.success() {
            return self.kill_and_wait().await;
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(exit) => exit
                .map(|_| ())
                .context("failed to wait for the server process"),
            Err(_) => self.kill_and_wait().await,
        }
    }

    async fn kill_and_wait(&mut self) -> Result<()> {
        self.child
            .start_kill()
            .context("failed to kill the server process")?;
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .context("timed out waiting for the killed server to exit")?
            .context("failed to wait for the server process")?;
        Ok(())
    }

    async fn wait_until_healthy(&mut self, timeout: Duration) -> Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()?;
        let url = format!("{}/health", self.base_url);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_problem = String::from("no response yet");

        while tokio::time::Instant::now() < deadline {
            self.ensure_running()?;
            match client.get(&url).send().await {
                Ok(response) if response.status() == StatusCode::OK => return Ok(()),
                Ok(response) => last_problem = format!("status {}", response.status()),
                Err(error) => last_problem = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "timed out after {timeout:?} waiting for GET {url} to return 200 (last result: \
             {last_problem}); server log {}:\n{}",
            self.log_path.display(),
            read_log_tail(&self.log_path)
        )
    }

    fn exited_error(&self, status: ExitStatus) -> anyhow::Error {
        anyhow!(
            "the server exited with {status}; server log {}:\n{}",
            self.log_path.display(),
            read_log_tail(&self.log_path)
        )
    }
}

/// Spawns the server binary on a free loopback port and returns the child and its base URL.
fn spawn_server(
    options: &ServerOptions,
    data_dir: &Path,
    log_path: &Path,
    port: u16,
    append_log: bool,
) -> Result<(Child, String)> {
    let log = std::fs::File::options()
        .create(true)
        .write(true)
        .append(append_log)
        .truncate(!append_log)
        .open(log_path)
        .with_context(|| format!("failed to open the server log {}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .context("failed to duplicate the log file")?;

    // NOTE: another process may take the port between the caller's check and the server's
    // bind. The server then exits with a bind error, which `wait_until_healthy` reports.
    let addr = format!("127.0.0.1:{port}");

    let mut command = Command::new(&options.binary);
    command
        .arg("--addr")
        .arg(&addr)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(options.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .kill_on_drop(true);
    let child = command.spawn().with_context(|| {
        format!(
            "failed to start the server binary {}; build it with \
             `cargo build --release -p roomler-server` or pass its path",
            options.binary.display()
        )
    })?;
    Ok((child, format!("http://{addr}")))
}

/// Returns a port on 127.0.0.1 that was free a moment ago.
pub fn free_loopback_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("failed to bind 127.0.0.1:0 to find a port")?;
    Ok(listener.local_addr()?.port())
}

fn read_log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(error) => format!("(failed to read the log: {error})"),
    }
}

/// A failed call to the HTTP API.
#[derive(Debug)]
pub enum ApiError {
    /// No response: connection refused or reset, or the request timed out.
    Transport {
        request: String,
        source: reqwest::Error,
    },
    /// A response with another status than the contract's. `code` and `message` come from
    /// the `{"error":{"code","message"}}` body, and `body` is the raw body when it had
    /// another shape.
    Status {
        request: String,
        status: StatusCode,
        code: Option<String>,
        message: Option<String>,
        body: String,
    },
    /// The expected status, with a body that does not parse as the expected type.
    Decode {
        request: String,
        source: serde_json::Error,
        body: String,
    },
}

impl ApiError {
    /// Returns the HTTP status, when a response arrived.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Returns the API's error code, e.g. `room_not_found`.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transport { request, source } => {
                write!(f, "{request} failed: {source}")
            }
            ApiError::Status {
                request,
                status,
                code: Some(code),
                message,
                ..
            } => write!(
                f,
                "{request} returned {status}: {code}: {}",
                message.as_deref().unwrap_or("")
            ),
            ApiError::Status {
                request,
                status,
                body,
                ..
            } => write!(f, "{request} returned {status} with body {body:?}"),
            ApiError::Decode {
                request,
                source,
                body,
            } => write!(
                f,
                "{request} returned a body that is invalid for its type: {source}; body {body:?}"
            ),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Transport { source, .. } => Some(source),
            ApiError::Decode { source, .. } => Some(source),
            ApiError::Status { .. } => None,
        }
    }
}

/// A client of the HTTP API. Cloning it shares the connection pool.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
}

impl ApiClient {
    /// Builds a client for `base_url`, e.g. `http://127.0.0.1:41234`, with the request
    /// timeout [`HTTP_TIMEOUT`].
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `GET /health` and expects 200.
    pub async fn health(&self) -> Result<(), ApiError> {
        let request = format!("GET {}/health", self.base_url);
        let response = self
            .http
            .get(format!("{}/health", self.base_url))
            .send()
            .await
            .map_err(|source| ApiError::Transport {
                request: request.clone(),
                source,
            })?;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(status_error(request, status, body))
    }

    /// Sends `POST /api/auth/register` and expects 201.
    pub async fn register(&self, request: &RegisterRequest) -> Result<AuthResponse, ApiError> {
        self.call(
            Method::POST,
            "/api/auth/register",
            None,
            request,
            StatusCode::CREATED,
        )
        .await
    }

    /// Sends `POST /api/rooms` and expects 201.
    pub async fn create_room(
        &self,
        token: &str,
        request: &CreateRoomRequest,
    ) -> Result<Room, ApiError> {
        self.call(
            Method::POST,
            "/api/rooms",
            Some(token),
            request,
            StatusCode::CREATED,
        )
        .await
    }

    /// Sends `POST /api/rooms/join` and expects 200.
    pub async fn join_room(
        &self,
        token: &str,
        request: &JoinRoomRequest,
    ) -> Result<Room, ApiError> {
        self.call(
            Method::POST,
            "/api/rooms/join",
            Some(token),
            request,
            StatusCode::OK,
        )
        .await
    }

    /// Sends `POST /api/rooms/{room_id}/messages` and expects 201.
    pub async fn post_message(
        &self,
        token: &str,
        room_id: Uuid,
        request: &PostMessageRequest,
    ) -> Result<Message, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/rooms/{room_id}/messages"),
            Some(token),
            request,
            StatusCode::CREATED,
        )
        .await
    }

    /// Sends a JSON request and decodes the response as `T` when its status is `expected`.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &B,
        expected: StatusCode,
    ) -> Result<T, ApiError> {
        let request_name = format!("{method} {path}");
        let mut builder = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .json(body);
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }

        let transport_error = |source| ApiError::Transport {
            request: request_name.clone(),
            source,
        };
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport_error)?;

        if status != expected {
            let body = String::from_utf8_lossy(&bytes).into_owned();
            return Err(status_error(request_name, status, body));
        }
        serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode {
            request: request_name,
            source,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

fn status_error(request: String, status: StatusCode, body: String) -> ApiError {
    let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(parsed) => (Some(parsed.error.code), Some(parsed.error.message)),
        Err(_) => (None, None),
    };
    ApiError::Status {
        request,
        status,
        code,
        message,
        body,
    }
}

/// A client WebSocket connection to `GET /api/ws`.
pub type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Read buffer of each client connection. tungstenite 0.27 allocates it eagerly with a
/// default of 128 KiB, which would cost about 1.2 GiB for 10,000 connections.
const WEBSOCKET_READ_BUFFER_BYTES: usize = 8 * 1024;

/// Opens `GET /api/ws` on `base_url` (an `http://` or `https://` URL) with
/// `Authorization: Bearer TOKEN`, with Nagle's algorithm off.
pub async fn connect_websocket(base_url: &str, token: &str) -> Result<WebSocket> {
    let url = websocket_url(base_url)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .with_context(|| format!("invalid WebSocket URL {url}"))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token contains characters that are invalid in a header")?;
    request.headers_mut().insert(AUTHORIZATION, bearer);

    let config = WebSocketConfig::default().read_buffer_size(WEBSOCKET_READ_BUFFER_BYTES);
    let (socket, _response) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .with_context(|| format!("WebSocket handshake with {url} failed"))?;
    Ok(socket)
}

fn websocket_url(base_url: &str) -> Result<String> {
    let base = base_url.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        bail!("invalid server URL {base_url:?}: expected http:// or https://");
    };
    Ok(format!("{rest}/api/ws"))
}

/// Reads the first text frame of a new connection and returns the `seq` of its `hello`.
///
/// Errors when the frame is not a `hello`, the stream ends, or nothing arrives in `timeout`.
pub async fn read_hello(socket: &mut WebSocket, timeout: Duration) -> Result<i64> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .with_context(|| format!("timed out after {timeout:?} waiting for the hello frame"))?
            .context("the WebSocket closed before the hello frame")?
            .context("failed to read the hello frame")?;
        let text = match frame {
            tokio_tungstenite::tungstenite::Message::Text(text) => text,
            tokio_tungstenite::tungstenite::Message::Close(close) => {
                bail!("the server closed the WebSocket before the hello frame: {close:?}")
            }
            // tungstenite replies to pings while the stream is read.
            _ => continue,
        };
        let parsed: ServerFrame = serde_json::from_str(text.as_str())
            .with_context(|| format!("invalid first frame {:?}", text.as_str()))?;
        return match parsed {
            ServerFrame::Control(Control::Hello { seq, .. }) => Ok(seq),
            other => bail!("expected a hello frame first, got {other:?}"),
        };
    }
}

/// Sends a client frame as a JSON text frame.
pub async fn send_frame(socket: &mut WebSocket, frame: &ClientFrame) -> Result<()> {
    let text = serde_json::to_string(frame)?;
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .with_context(|| format!("failed to send the frame {frame:?}"))
}

/// Reads the resident set size of a process in KiB: `VmRSS` of `/proc/PID/status`.
pub fn process_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    parse_kib_field(&status, "VmRSS:").with_context(|| format!("VmRSS is missing from {path}"))
}

/// Reads the CPU time (user plus system) that a process has used, in seconds, from
/// `/proc/PID/stat`.
pub fn process_cpu_secs(pid: u32) -> Result<f64> {
    // NOTE: assumes a USER_HZ of 100 ticks per second, the value Linux exposes on x86 and
    // arm. Reading it with sysconf(_SC_CLK_TCK) needs unsafe code, which this workspace forbids.
    const TICKS_PER_SEC: f64 = 100.0;
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    // The command name in brackets may contain spaces, so fields are counted after the last `)`.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("invalid {path}: {stat:?}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, which are indices 11 and 12 here.
    let ticks = |index: usize| -> Result<f64> {
        let field = fields
            .get(index)
            .with_context(|| format!("invalid {path}: {stat:?}"))?;
        Ok(field.parse::<u64>()? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SEC)
}

fn parse_kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The machine a benchmark ran on, read from `/proc`.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    /// `model name` of the first processor in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub logical_cpus: usize,
    pub memory_total_kib: u64,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
}

impl MachineInfo {
    /// Reads the machine facts. Fields that cannot be read are `"unknown"` or 0.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Self {
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map_or(0, |count| count.get()),
            memory_total_kib: parse_kib_field(&meminfo, "MemTotal:").unwrap_or(0),
            kernel,
        }
    }
}

/// Reads the 1-minute load average of the machine from `/proc/loadavg`.
///
/// Benchmarks report it because other processes on the machine skew their numbers.
pub fn load_average_1m() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The open-file limit (`RLIMIT_NOFILE`) of this process before and after
/// [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OpenFileLimit {
    pub previous_soft: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit, capped at `/proc/sys/fs/nr_open`.
///
/// Child processes spawned afterwards inherit the raised limit.
pub fn raise_open_file_limit() -> Result<OpenFileLimit> {
    let resource = rlimit::Resource::NOFILE;
    let (previous_soft, hard) = resource.get().context("failed to read RLIMIT_NOFILE")?;
    // An unlimited hard limit cannot be set as the soft limit; the kernel caps it at nr_open.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let target = hard.min(nr_open);
    if target > previous_soft {
        resource
            .set(target, hard)
            .with_context(|| format!("failed to raise RLIMIT_NOFILE to {target}"))?;
    }
    let (soft, hard) = resource.get().context("failed to read RLIMIT_NOFILE")?;
    Ok(OpenFileLimit {
        previous_soft,
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_from_http() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8080/").unwrap(),
            "ws://127.0.0.1:8080/api/ws"
        );
        assert_eq!(
            websocket_url("https://chat.example.com").unwrap(),
            "wss://chat.example.com/api/ws"
        );
        assert!(websocket_url("ftp://127.0.0.1").is_err());
    }

    #[test]
    fn kib_field_parses() {
        let status = "Name:\tx\nVmRSS:\t   12345 kB\nVmSwap:\t0 kB\n";
        assert_eq!(parse_kib_field(status, "VmRSS:"), Some(12345));
        assert_eq!(parse_kib_field(status, "VmHWM:"), None);
    }

    #[test]
    fn own_process_readings() {
        let pid = std::process::id();
        assert!(process_rss_kib(pid).unwrap() > 0);
        assert!(process_cpu_secs(pid).unwrap() >= 0.0);
        assert!(load_average_1m().unwrap() >= 0.0);
    }

    #[test]
    fn status_error_reads_error_body() {
        let body = r#"{"error":{"code":"room_not_found","message":"No room."}}"#;
        let error = status_error("GET /x".into(), StatusCode::NOT_FOUND, body.into());
        assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
        assert_eq!(error.code(), Some("room_not_found"));
    }
}
