//! End-to-end tests of the `roomler` CLI against the real `roomler-server` binary.
//!
//! Each test starts its own server on a loopback port with a temporary data directory
//! and runs the CLI with temporary profile folders, so every cache is a real SQLite
//! file. Both binaries are taken from the target directory of this test executable:
//! build them first with `cargo build --workspace --bins`, with the same
//! `CARGO_TARGET_DIR`. Some tests read or damage a client's cache with the `sqlite3`
//! command-line shell, which must be on `PATH`.

use std::collections::HashSet;
use std::fmt;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use roomler_e2e::{ApiClient, free_loopback_port};
use roomler_shared::api::PostMessageRequest;
use roomler_shared::model::{Message, Room};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::Instant;
use uuid::Uuid;

/// Maximum time of one CLI command, including a `sync` that replays 1,500 events.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Time from a send until a running `roomler tail` prints the message.
const LIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for `roomler tail` to reconnect after a server restart. The client's backoff
/// grows to at most 30 s between attempts.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(40);
/// Time from the server's spawn until `GET /health` returns 200.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the server log that error messages include.
const LOG_TAIL_LINES: usize = 30;
/// Password of every test account.
const PASSWORD: &str = "correct horse battery staple";
/// Exit codes of `roomler`: a usage error, a rejection by the server, an unreachable server.
const EXIT_USAGE: i32 = 2;
const EXIT_REJECTED: i32 = 3;
const EXIT_NETWORK: i32 = 4;

// Binaries.

/// Returns the path of a binary built into the target directory of this test.
///
/// Panics with the build command when it is missing.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    // The test is target/debug/deps/cli-HASH, and binaries are in target/debug.
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in target/PROFILE/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing; run `cargo build --workspace --bins` with the same CARGO_TARGET_DIR \
         before these tests",
        path.display()
    );
    path
}

// Server.

/// A `roomler-server` child on a fixed loopback port, which survives restarts, so that
/// profiles that stored its URL reach it again.
struct TestServer {
    // Declared first so that drop kills the child before the directory is deleted.
    child: Option<Child>,
    addr: String,
    data_dir: TempDir,
    log_path: PathBuf,
}

impl TestServer {
    /// Starts the server with login rate limits off on a free port.
    async fn start() -> Result<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("roomler-cli-server-")
            .tempdir()
            .context("failed to create the server's data directory")?;
        let port = free_loopback_port()?;
        let log_path = data_dir.path().join("server.log");
        let mut server = TestServer {
            child: None,
            addr: format!("127.0.0.1:{port}"),
            data_dir,
            log_path,
        };
        server.spawn(&[]).await?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn api(&self) -> Result<ApiClient> {
        ApiClient::new(&self.url())
    }

    /// Spawns the binary with extra environment variables and waits until it is healthy.
    async fn spawn(&mut self, env: &[(&str, &str)]) -> Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("failed to open {}", self.log_path.display()))?;
        let log_for_stderr = log.try_clone()?;
        let child = Command::new(binary("roomler-server"))
            .arg("--addr")
            .arg(&self.addr)
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            .env("ROOMLER_RATE_LIMIT", "off")
            .env("RUST_LOG", "roomler_server=info,warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .kill_on_drop(true)
            .spawn()
            .context("failed to spawn roomler-server")?;
        self.child = Some(child);
        self.wait_until_healthy().await
    }

    async fn wait_until_healthy(&mut self) -> Result<()> {
        let api = self.api()?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last_problem = String::from("no response yet");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "roomler-server exited with {status} on {}; log:\n{}",
                    self.addr,
                    self.log_tail()
                );
            }
            match api.health().await {
                Ok(()) => return Ok(()),
                Err(error) => last_problem = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "roomler-server on {} was not healthy within {STARTUP_TIMEOUT:?} ({last_problem}); \
             log:\n{}",
            self.addr,
            self.log_tail()
        )
    }

    /// Kills the server with SIGKILL and waits for it to exit.
    async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child
                .start_kill()
                .context("failed to kill roomler-server")?;
            tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .context("timed out waiting for the killed roomler-server to exit")??;
        }
        Ok(())
    }

    /// Kills the server and starts it again on the same address and data directory.
    async fn restart(&mut self, env: &[(&str, &str)]) -> Result<()> {
        self.kill().await?;
        self.spawn(env).await
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Waits until the server log contains `text`.
    async fn wait_for_log(&self, text: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            if log.contains(text) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the server log has no {text:?} after {timeout:?}; log:\n{}",
            self.log_tail()
        )
    }
}

// CLI.

/// What one `roomler` run printed and how it exited.
struct CliOutput {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl CliOutput {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn json(&self) -> Result<Value> {
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("`{}` printed invalid JSON:\n{self}", self.command))
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\nstdout: {}\nstderr: {}",
            self.command,
            self.status,
            self.stdout.trim(),
            self.stderr.trim()
        )
    }
}

/// One person's profile folder, used by running the CLI with `--profile`.
struct CliUser {
    name: String,
    dir: TempDir,
}

impl CliUser {
    fn new(name: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("roomler-cli-{name}-"))
            .tempdir()
            .context("failed to create a profile folder")?;
        Ok(CliUser {
            name: name.to_string(),
            dir,
        })
    }

    /// Creates a profile and registers its account on `server`.
    async fn register(name: &str, server: &TestServer) -> Result<Self> {
        let user = CliUser::new(name)?;
        let email = format!("{name}@example.com");
        let url = server.url();
        let args = [
            "register",
            "--server",
            &url,
            "--user",
            name,
            "--email",
            &email,
            "--password-stdin",
        ];
        let output = user.run_with_stdin(&args, &format!("{PASSWORD}\n")).await?;
        ensure!(output.code() == Some(0), "registration failed:\n{output}");
        Ok(user)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("roomler"));
        command
            .arg("--profile")
            .arg(self.dir.path())
            .args(args)
            .env_remove("ROOMLER_PROFILE")
            .env_remove("ROOMLER_LOG")
            // The tests read each profile's token from its file.
            .env("ROOMLER_TOKEN_STORE", "file")
            .kill_on_drop(true);
        command
    }

    fn describe(&self, args: &[&str]) -> String {
        format!("roomler ({}) {}", self.name, args.join(" "))
    }

    async fn run(&self, args: &[&str]) -> Result<CliOutput> {
        let mut command = self.command(args);
        command.stdin(Stdio::null());
        self.finish(args, command, None).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Result<CliOutput> {
        let mut command = self.command(args);
        command.stdin(Stdio::piped());
        self.finish(args, command, Some(stdin)).await
    }

    async fn finish(
        &self,
        args: &[&str],
        mut command: Command,
        stdin: Option<&str>,
    ) -> Result<CliOutput> {
        let description = self.describe(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to spawn `{description}`"))?;
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().context("no stdin pipe")?;
            pipe.write_all(text.as_bytes()).await?;
            // Dropping the pipe closes it, so the CLI reads to the end.
        }
        // On a timeout the future is dropped, and `kill_on_drop` kills the child.
        let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("`{description}` did not exit within {COMMAND_TIMEOUT:?}"))?
            .with_context(|| format!("failed to wait for `{description}`"))?;
        Ok(CliOutput {
            command: description,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs a command with `--json`, requires exit code 0 and returns the printed JSON.
    async fn json(&self, args: &[&str]) -> Result<Value> {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let output = self.run(&with_json).await?;
        ensure!(output.code() == Some(0), "expected exit code 0:\n{output}");
        output.json()
    }

    /// Starts `roomler tail ROOM --json`, which prints one message as JSON per line.
    fn tail(&self, room: &str) -> Result<Tail> {
        let args = ["--json", "tail", room];
        let mut child = self
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to spawn `{}`", self.describe(&args)))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        Ok(Tail {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Returns the session token that the CLI stored in the profile.
    fn token(&self) -> Result<String> {
        let path = self.dir.path().join("token");
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        Ok(token.trim().to_string())
    }

    fn cache_path(&self) -> PathBuf {
        self.dir.path().join("cache.db")
    }

    /// Creates a public room and returns it.
    async fn create_room(&self, name: &str) -> Result<Room> {
        let value = self.json(&["create", name]).await?;
        Ok(serde_json::from_value(value)?)
    }

    /// Runs `history ROOM --limit LIMIT --json` and returns the messages, oldest first.
    async fn history(&self, room: &str, limit: u32) -> Result<Vec<Message>> {
        let limit = limit.to_string();
        let value = self.json(&["history", room, "--limit", &limit]).await?;
        Ok(serde_json::from_value(value["messages"].clone())?)
    }

    /// Runs `outbox --json` and returns the items.
    async fn outbox(&self) -> Result<Vec<Value>> {
        let value = self.json(&["outbox"]).await?;
        Ok(serde_json::from_value(value)?)
    }
}

/// A running `roomler tail`; dropping it kills the child.
struct Tail {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Tail {
    /// Returns the next printed message, waiting at most `timeout`.
    async fn next_message(&mut self, timeout: Duration) -> Result<Message> {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .with_context(|| format!("`roomler tail` printed nothing within {timeout:?}"))?
            .context("failed to read the output of `roomler tail`")?;
        let Some(line) = line else {
            let status = self.child.wait().await?;
            bail!("`roomler tail` exited with {status}");
        };
        serde_json::from_str(&line)
            .with_context(|| format!("`roomler tail` printed invalid JSON {line:?}"))
    }

    /// Reads printed messages until one has `body`, for at most `timeout`.
    async fn wait_for_body(&mut self, body: &str, timeout: Duration) -> Result<Message> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let message = self.next_message(remaining).await.with_context(|| {
                format!("no message {body:?} from `roomler tail`, which printed {seen:?}")
            })?;
            if message.body == body {
                return Ok(message);
            }
            seen.push(message.body);
        }
    }
}

// Scenario helpers.

/// Two registered users: `alice` created the public room `general` and `bob` joined
/// it. Both have synced, so their caches hold a resume position.
struct Pair {
    alice: CliUser,
    bob: CliUser,
    room: Room,
}

async fn alice_and_bob_in_general(server: &TestServer) -> Result<Pair> {
    let alice = CliUser::register("alice", server).await?;
    let bob = CliUser::register("bob", server).await?;
    let room = alice.create_room("general").await?;
    bob.json(&["join", "general"]).await?;
    alice.json(&["sync"]).await?;
    bob.json(&["sync"]).await?;
    Ok(Pair { alice, bob, room })
}

/// Posts `count` messages `"{prefix} {i}"` through the HTTP API, a few at a time.
async fn post_messages(
    server: &TestServer,
    token: &str,
    room_id: Uuid,
    prefix: &str,
    count: usize,
) -> Result<()> {
    let api = server.api()?;
    let posts = (0..count).map(|index| {
        let api = api.clone();
        let request = PostMessageRequest {
            body: format!("{prefix} {index}"),
            client_id: Uuid::new_v4().to_string(),
            reply_to: None,
            attachments: Vec::new(),
        };
        async move { api.post_message(token, room_id, &request).await }
    });
    let mut results = futures_util::stream::iter(posts).buffer_unordered(4);
    while let Some(result) = results.next().await {
        result.context("failed to post a message")?;
    }
    Ok(())
}

/// Runs one SQL statement on a cache file with the `sqlite3` shell and returns its
/// output, one row per line.
async fn sqlite(db: &Path, sql: &str) -> Result<String> {
    let output = tokio::time::timeout(
        COMMAND_TIMEOUT,
        Command::new("sqlite3")
            // Waits up to 5 s for a lock that the CLI holds, instead of failing at once.
            .args(["-cmd", ".timeout 5000"])
            .arg(db)
            .arg(sql)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("sqlite3 did not exit in time")?
    .context("failed to run sqlite3; install Debian's sqlite3 package")?;
    ensure!(
        output.status.success(),
        "sqlite3 {} {sql:?} failed: {}",
        db.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Reads the last applied event number of a cache file.
async fn cached_last_seq(db: &Path) -> Result<i64> {
    let text = sqlite(db, "SELECT value FROM meta WHERE key = 'last_seq'").await?;
    Ok(text.parse().unwrap_or(0))
}

/// Returns the seqs of a room's cached messages in ascending order.
async fn cached_seqs(db: &Path, room_id: Uuid) -> Result<Vec<i64>> {
    let sql = format!("SELECT seq FROM messages WHERE room_id = '{room_id}' ORDER BY seq");
    let text = sqlite(db, &sql).await?;
    text.lines()
        .map(|line| line.parse().context("invalid seq"))
        .collect()
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .map(|message| message.body.as_str())
        .collect()
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|message| message.seq).collect()
}

fn count_body(messages: &[Message], body: &str) -> usize {
    messages
        .iter()
        .filter(|message| message.body == body)
        .count()
}

// Tests.

#[tokio::test]
async fn two_profiles_chat_live() -> Result<()> {
    let server = TestServer::start().await?;
    let Pair { alice, bob, .. } = alice_and_bob_in_general(&server).await?;
    let mut tail = bob.tail("general")?;

    let sent = alice.json(&["send", "general", "hello"]).await?;
    assert_eq!(sent["state"], "sent", "send output: {sent}");
    let printed = tail.wait_for_body("hello", LIVE_TIMEOUT).await?;
    assert_eq!(printed.author.username, "alice");

    let reply = bob.json(&["send", "general", "hi alice"]).await?;
    assert_eq!(reply["state"], "sent", "send output: {reply}");
    let next = tail.next_message(LIVE_TIMEOUT).await?;
    assert_eq!(next.body, "hi alice", "the tail prints each message once");
    alice.json(&["sync"]).await?;
    let history = alice.history("general", 20).await?;
    assert_eq!(bodies(&history), ["hello", "hi alice"]);
    Ok(())
}

#[tokio::test]
async fn offline_history_search_and_outbox() -> Result<()> {
    let mut server = TestServer::start().await?;
    let Pair { alice, bob, .. } = alice_and_bob_in_general(&server).await?;
    bob.json(&["send", "general", "the deploy key rotates on friday"])
        .await?;
    alice.json(&["send", "general", "noted"]).await?;
    alice.json(&["sync"]).await?;
    server.kill().await?;

    let history = alice.run(&["history", "general"]).await?;
    assert_eq!(history.code(), Some(0), "{history}");
    assert!(history.stdout.contains("deploy key rotates"), "{history}");
    let search = alice.run(&["search", "deploy"]).await?;
    assert_eq!(search.code(), Some(0), "{search}");
    assert!(search.stdout.contains("deploy"), "{search}");

    let queued = ["offline 1", "offline 2", "offline 3"];
    for body in queued {
        let output = alice.json(&["send", "general", body]).await?;
        assert_eq!(output["state"], "pending", "send {body:?} output: {output}");
    }
    let outbox = alice.outbox().await?;
    assert_eq!(outbox.len(), 3, "outbox: {outbox:?}");
    assert!(
        outbox.iter().all(|item| item["state"] == "pending"),
        "outbox: {outbox:?}"
    );
    let listing = alice.run(&["outbox"]).await?;
    assert!(listing.stdout.contains("in general"), "{listing}");
    assert!(listing.stdout.contains("offline 2"), "{listing}");
    let offline_sync = alice.run(&["sync"]).await?;
    assert_eq!(offline_sync.code(), Some(EXIT_NETWORK), "{offline_sync}");

    server.restart(&[]).await?;
    let report = alice.json(&["sync"]).await?;
    assert_eq!(report["outbox"]["sent"], 3, "sync report: {report}");
    assert_eq!(report["outbox"]["pending"], 0, "sync report: {report}");
    bob.json(&["sync"]).await?;
    let history = bob.history("general", 50).await?;
    for body in queued {
        assert_eq!(
            count_body(&history, body),
            1,
            "{body:?} in {:?}",
            bodies(&history)
        );
    }
    let tail: Vec<&str> = bodies(&history).into_iter().rev().take(3).rev().collect();
    assert_eq!(tail, queued, "the queued messages are the newest, in order");
    let history_seqs = seqs(&history);
    assert!(
        history_seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "seqs in order: {history_seqs:?}"
    );
    assert!(alice.outbox().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn kill_during_apply_loses_nothing() -> Result<()> {
    const MESSAGES: usize = 1500;
    let server = TestServer::start().await?;
    let Pair { alice, bob, room } = alice_and_bob_in_general(&server).await?;
    let cache = alice.cache_path();
    let start_seq = cached_last_seq(&cache).await?;
    assert!(start_seq > 0, "alice's cache has a resume position");

    // Alice is offline (no CLI runs) while Bob posts.
    post_messages(&server, &bob.token()?, room.id, "burst", MESSAGES).await?;

    // Kill the first sync once its replay has applied a third of the events, past the
    // server's first replay batch of 500 when the polling is quick enough.
    let kill_at = start_seq + MESSAGES as i64 / 3;
    let mut sync = alice.command(&["sync"]);
    let mut child = sync
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut observed = vec![start_seq];
    let mut killed_mid_replay = false;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            break;
        }
        let seq = cached_last_seq(&cache).await?;
        observed.push(seq);
        if seq >= kill_at {
            child.start_kill()?;
            killed_mid_replay = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), child.wait()).await??;
    let after_kill = cached_last_seq(&cache).await?;
    observed.push(after_kill);
    assert!(
        observed.windows(2).all(|pair| pair[0] <= pair[1]),
        "last_seq never goes back: {observed:?}"
    );
    if killed_mid_replay {
        assert!(
            after_kill < start_seq + MESSAGES as i64,
            "the kill landed before the end of the replay (last_seq {after_kill})"
        );
    } else {
        eprintln!("note: the sync finished before it could be killed mid-replay");
    }
    // Each event is applied in one transaction with its number, so the cached
    // messages match the recorded position exactly.
    let applied = cached_seqs(&cache, room.id).await?.len() as i64;
    assert_eq!(
        applied,
        after_kill - start_seq,
        "messages applied before the kill"
    );

    let report = alice.json(&["sync"]).await?;
    assert_eq!(
        report["last_seq"],
        start_seq + MESSAGES as i64,
        "sync report: {report}"
    );
    let expected: Vec<i64> = (1..=MESSAGES as i64).collect();
    assert_eq!(cached_seqs(&cache, room.id).await?, expected);

    // --limit takes at most 500, so history shows the newest 500.
    let history = alice.history("general", 500).await?;
    assert_eq!(history.len(), 500, "messages in `history --limit 500`");
    let newest: Vec<i64> = expected[MESSAGES - history.len()..].to_vec();
    assert_eq!(seqs(&history), newest);
    let unique: HashSet<Uuid> = history.iter().map(|message| message.id).collect();
    assert_eq!(unique.len(), history.len(), "no message appears twice");
    Ok(())
}

#[tokio::test]
async fn reconnects_after_server_restart() -> Result<()> {
    let mut server = TestServer::start().await?;
    let Pair { alice, bob, .. } = alice_and_bob_in_general(&server).await?;
    let mut tail = bob.tail("general")?;
    alice
        .json(&["send", "general", "before the restart"])
        .await?;
    tail.wait_for_body("before the restart", LIVE_TIMEOUT)
        .await?;

    server.restart(&[]).await?;
    let sent = alice
        .json(&["send", "general", "after the restart"])
        .await?;
    assert_eq!(sent["state"], "sent", "send output: {sent}");
    let printed = tail
        .wait_for_body("after the restart", RECONNECT_TIMEOUT)
        .await?;
    assert_eq!(printed.author.username, "alice");
    Ok(())
}

#[tokio::test]
async fn long_gap_resyncs_consistently() -> Result<()> {
    // More than one history page of 50, so the resync cannot fetch them in one request.
    const MESSAGES: usize = 120;
    let mut server = TestServer::start().await?;
    let Pair { alice, bob, room } = alice_and_bob_in_general(&server).await?;
    bob.json(&["send", "general", "before the gap"]).await?;
    alice.json(&["sync"]).await?;

    post_messages(&server, &bob.token()?, room.id, "during the gap", MESSAGES).await?;
    server
        .restart(&[("ROOMLER_EVENT_RETENTION_DAYS", "0")])
        .await?;
    server
        .wait_for_log("pruned expired events", STARTUP_TIMEOUT)
        .await?;

    let report = alice.json(&["sync"]).await?;
    assert_eq!(report["resynced"], true, "sync report: {report}");
    let history = alice.history("general", 500).await?;
    let expected: Vec<i64> = (1..=MESSAGES as i64 + 1).collect();
    assert_eq!(
        seqs(&history),
        expected,
        "seqs of alice's history after the resync"
    );
    for index in 0..MESSAGES {
        let body = format!("during the gap {index}");
        assert_eq!(count_body(&history, &body), 1, "{body:?}");
    }
    Ok(())
}

#[tokio::test]
async fn corrupt_cache_is_rebuilt_and_keeps_outbox() -> Result<()> {
    let mut server = TestServer::start().await?;
    let Pair { alice, bob, room } = alice_and_bob_in_general(&server).await?;
    // Enough messages that the messages table spans many pages.
    post_messages(&server, &bob.token()?, room.id, "filler", 40).await?;
    alice.json(&["sync"]).await?;
    server.kill().await?;
    let queued = alice.json(&["send", "general", "written offline"]).await?;
    assert_eq!(queued["state"], "pending", "send output: {queued}");

    let cache = alice.cache_path();
    sqlite(&cache, "PRAGMA wal_checkpoint(TRUNCATE)").await?;
    let page_size: u64 = sqlite(&cache, "PRAGMA page_size").await?.parse()?;
    let pages = sqlite(
        &cache,
        "SELECT pageno FROM dbstat WHERE name IN ('messages', 'messages_fts_content')",
    )
    .await?;
    let outbox_pages = sqlite(&cache, "SELECT pageno FROM dbstat WHERE name = 'outbox'").await?;
    let outbox_pages: HashSet<&str> = outbox_pages.lines().collect();
    let mut file = std::fs::File::options().write(true).open(&cache)?;
    let mut damaged = 0;
    for page in pages.lines().filter(|page| !outbox_pages.contains(page)) {
        let page: u64 = page.parse()?;
        let garbage: Vec<u8> = (0..page_size)
            .map(|index| (index * 37 + page * 11) as u8 | 0x80)
            .collect();
        file.seek(SeekFrom::Start((page - 1) * page_size))?;
        file.write_all(&garbage)?;
        damaged += 1;
    }
    file.sync_all()?;
    drop(file);
    assert!(damaged > 0, "the messages table has pages to damage");

    let outbox = alice.outbox().await?;
    assert_eq!(outbox.len(), 1, "outbox after the rebuild: {outbox:?}");
    assert_eq!(outbox[0]["body"], "written offline");
    let moved: Vec<String> = std::fs::read_dir(alice.dir.path())?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("cache.db.corrupt-"))
        .collect();
    assert!(!moved.is_empty(), "the damaged file was moved aside");
    // The rebuilt cache contains no rooms until the next sync.
    let offline_history = alice.run(&["history", "general"]).await?;
    assert_eq!(
        offline_history.code(),
        Some(EXIT_USAGE),
        "{offline_history}"
    );

    server.restart(&[]).await?;
    let report = alice.json(&["sync"]).await?;
    assert_eq!(report["resynced"], true, "sync report: {report}");
    assert_eq!(report["outbox"]["sent"], 1, "sync report: {report}");
    let history = alice.history("general", 100).await?;
    assert_eq!(history.len(), 41, "bodies: {:?}", bodies(&history));
    assert_eq!(count_body(&history, "filler 0"), 1);
    assert_eq!(count_body(&history, "written offline"), 1);
    bob.json(&["sync"]).await?;
    let bob_history = bob.history("general", 100).await?;
    assert_eq!(count_body(&bob_history, "written offline"), 1);
    Ok(())
}

#[tokio::test]
async fn server_rejection_becomes_failed_item() -> Result<()> {
    let mut server = TestServer::start().await?;
    let owner = CliUser::register("bob", &server).await?;
    let alice = CliUser::register("alice", &server).await?;
    let room = owner.create_room("doomed").await?;
    alice.json(&["join", "doomed"]).await?;
    alice.json(&["sync"]).await?;

    server.kill().await?;
    let queued = alice.json(&["send", "doomed", "into the void"]).await?;
    assert_eq!(queued["state"], "pending", "send output: {queued}");
    let item_id = queued["outbox_id"].as_i64().context("outbox_id")?;

    server.restart(&[]).await?;
    let response = reqwest::Client::new()
        .delete(format!("{}/api/rooms/{}", server.url(), room.id))
        .bearer_auth(owner.token()?)
        .send()
        .await?;
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);

    let sync = alice.run(&["--json", "sync"]).await?;
    assert_eq!(sync.code(), Some(0), "{sync}");
    let report = sync.json()?;
    assert_eq!(report["outbox"]["failed"], 1, "sync report: {report}");
    let outbox = alice.outbox().await?;
    assert_eq!(outbox.len(), 1, "outbox: {outbox:?}");
    assert_eq!(outbox[0]["id"], item_id);
    assert_eq!(outbox[0]["state"], "failed");
    assert_eq!(outbox[0]["error_code"], "room_not_found");

    let id = item_id.to_string();
    let retried = alice.json(&["outbox", "--retry", &id]).await?;
    assert_eq!(
        retried[0]["state"], "pending",
        "outbox after the retry: {retried}"
    );
    let report = alice.json(&["sync"]).await?;
    assert_eq!(
        report["outbox"]["failed"], 1,
        "sync report after the retry: {report}"
    );

    let discarded = alice.json(&["outbox", "--discard", &id]).await?;
    assert_eq!(discarded, Value::Array(Vec::new()));
    let retry = alice.run(&["outbox", "--retry", &id]).await?;
    assert_eq!(retry.code(), Some(EXIT_USAGE), "{retry}");
    let send = alice.run(&["send", "doomed", "again"]).await?;
    assert_eq!(send.code(), Some(EXIT_USAGE), "{send}");
    Ok(())
}

#[tokio::test]
async fn usage_and_auth_errors() -> Result<()> {
    let server = TestServer::start().await?;
    let stranger = CliUser::new("stranger")?;
    let history = stranger.run(&["history", "general"]).await?;
    assert_eq!(history.code(), Some(EXIT_USAGE), "{history}");
    assert!(history.stderr.contains("roomler login"), "{history}");

    let alice = CliUser::register("alice", &server).await?;
    let url = server.url();
    let login = [
        "login",
        "--server",
        &url,
        "--user",
        "alice",
        "--password-stdin",
    ];
    let wrong = alice.run_with_stdin(&login, "not the password\n").await?;
    assert_eq!(wrong.code(), Some(EXIT_REJECTED), "{wrong}");
    let right = alice
        .run_with_stdin(&login, &format!("{PASSWORD}\n"))
        .await?;
    assert_eq!(right.code(), Some(0), "{right}");

    let closed = format!("http://127.0.0.1:{}", free_loopback_port()?);
    let closed_login = [
        "login",
        "--server",
        &closed,
        "--user",
        "alice",
        "--password-stdin",
    ];
    let unreachable = stranger
        .run_with_stdin(&closed_login, &format!("{PASSWORD}\n"))
        .await?;
    assert_eq!(unreachable.code(), Some(EXIT_NETWORK), "{unreachable}");

    let unknown = alice.run(&["send", "no.such.room", "hello"]).await?;
    assert_eq!(unknown.code(), Some(EXIT_USAGE), "{unknown}");
    assert!(unknown.stderr.contains("no.such.room"), "{unknown}");
    assert!(
        unknown.stderr.contains("roomler join no.such.room"),
        "{unknown}"
    );

    // `roomler join` takes a path, so an unknown id gets no hint to join it.
    let id = Uuid::now_v7().to_string();
    let unknown_id = alice.run(&["send", &id, "hello"]).await?;
    assert_eq!(unknown_id.code(), Some(EXIT_USAGE), "{unknown_id}");
    assert!(unknown_id.stderr.contains(&id), "{unknown_id}");
    assert!(
        !unknown_id.stderr.contains(&format!("roomler join {id}")),
        "{unknown_id}"
    );

    let too_many = alice.run(&["history", "general", "--limit", "501"]).await?;
    assert_eq!(too_many.code(), Some(EXIT_USAGE), "{too_many}");
    assert!(too_many.stderr.contains("501"), "{too_many}");

    let bad_reply = alice
        .run(&["send", "general", "hello", "--reply-to", "42"])
        .await?;
    assert_eq!(bad_reply.code(), Some(EXIT_USAGE), "{bad_reply}");
    assert!(
        bad_reply.stderr.contains("\"42\" is not a message id"),
        "{bad_reply}"
    );
    Ok(())
}

#[tokio::test]
async fn unread_counts_fall_after_history() -> Result<()> {
    let server = TestServer::start().await?;
    let Pair { alice, bob, .. } = alice_and_bob_in_general(&server).await?;
    bob.json(&["send", "general", "one"]).await?;
    bob.json(&["send", "general", "two"]).await?;
    alice.json(&["sync"]).await?;

    let unread = |rooms: &serde_json::Value| {
        rooms
            .as_array()
            .and_then(|rooms| {
                rooms
                    .iter()
                    .find(|cached| cached["room"]["path"] == "general")
            })
            .map(|cached| cached["unread"].as_u64().unwrap_or_default())
    };
    let before = alice.json(&["rooms"]).await?;
    assert!(
        unread(&before).is_some_and(|count| count >= 2),
        "rooms: {before}"
    );
    alice.history("general", 20).await?;
    let after = alice.json(&["rooms"]).await?;
    assert_eq!(unread(&after), Some(0), "rooms after reading: {after}");
    Ok(())
}

#[tokio::test]
async fn login_fills_rooms_and_checks_url() -> Result<()> {
    let server = TestServer::start().await?;
    let Pair { alice, .. } = alice_and_bob_in_general(&server).await?;
    let url = server.url();
    let login = [
        "login",
        "--server",
        &url,
        "--user",
        "alice",
        "--password-stdin",
    ];
    let again = alice
        .run_with_stdin(&login, &format!("{PASSWORD}\n"))
        .await?;
    assert_eq!(again.code(), Some(0), "{again}");
    let rooms = alice.json(&["rooms"]).await?;
    let paths: Vec<&str> = rooms
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|cached| cached["room"]["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"general"),
        "rooms right after login: {rooms}"
    );

    let bare = url.trim_start_matches("http://").to_string();
    let login = [
        "login",
        "--server",
        &bare,
        "--user",
        "alice",
        "--password-stdin",
    ];
    let invalid = alice
        .run_with_stdin(&login, &format!("{PASSWORD}\n"))
        .await?;
    assert_eq!(invalid.code(), Some(EXIT_USAGE), "{invalid}");
    assert!(invalid.stderr.contains("http://"), "{invalid}");
    Ok(())
}
