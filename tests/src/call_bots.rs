//! Participants of one room's call for the call benchmarks: users registered
//! through the API, each logged in with the `roomler` CLI in a profile of its own,
//! and `roomler call` processes in those profiles.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::{Context, Result, ensure};
use roomler_shared::api::{CreateRoomRequest, JoinRoomRequest, RegisterRequest};
use roomler_shared::model::RoomKind;
use serde_json::Value;
use tempfile::TempDir;

use crate::desktop::{descendants, process_name};
use crate::{ApiClient, ServerOptions, ServerProcess, netns};

/// Password of every user that [`CallBots`] registers.
pub const BOT_PASSWORD: &str = "correct horse battery staple";

/// Re-runs the benchmark `bench` with its arguments inside a network namespace of
/// its own, where Janus can gather ICE candidates (see [`netns::enter`]). Returns
/// `None` in the run inside, where the caller does the work, and the exit code of
/// that run in the outer one.
pub fn enter_namespace(bench: &str) -> Option<ExitCode> {
    match netns::enter(&["janus"]) {
        Ok(Some(status)) if status.success() => Some(ExitCode::SUCCESS),
        Ok(Some(_)) => Some(ExitCode::FAILURE),
        Ok(None) => None,
        Err(error) => {
            eprintln!("{bench}: {error}");
            Some(ExitCode::FAILURE)
        }
    }
}

/// Starts `server_binary` for calls inside the benchmark's network namespace, with
/// its own Janus and no rate limits, and creates the public room `room`, owned by a
/// user named `host`.
pub async fn start_call_server(
    server_binary: PathBuf,
    room: &str,
) -> Result<(ServerProcess, ApiClient)> {
    let mut options = ServerOptions::new(server_binary);
    options.env.push((
        "ROOMLER_JANUS_ICE_ENFORCE_LIST".into(),
        netns::JANUS_IP.into(),
    ));
    // Every participant logs in once; the default limits would reject the bots.
    options
        .env
        .push(("ROOMLER_RATE_LIMIT".into(), "false".into()));
    let server = ServerProcess::start(&options).await?;
    let api = ApiClient::new(server.base_url())?;
    let owner = api
        .register(&RegisterRequest {
            username: "host".into(),
            email: "host@example.com".into(),
            password: BOT_PASSWORD.into(),
            display_name: None,
        })
        .await?;
    api.create_room(
        &owner.token,
        &CreateRoomRequest {
            name: room.into(),
            kind: RoomKind::Public,
            password: None,
            parent_id: None,
            topic: None,
        },
    )
    .await?;
    Ok((server, api))
}

/// Returns the process id of the Janus that `server` started.
pub fn janus_pid(server: &ServerProcess) -> Option<u32> {
    let server = server.pid()?;
    descendants(server)
        .into_iter()
        .find(|pid| process_name(*pid).is_some_and(|name| name.starts_with("janus")))
}

/// A `roomler call` process; killed when dropped.
pub struct Participant {
    child: Child,
    stats: PathBuf,
}

impl Drop for Participant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Participant {
    /// Reads the statistics that the process last wrote, or `None` before its first
    /// write.
    pub fn report(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.stats).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Registers users who join `room` and starts their `roomler call` processes.
pub struct CallBots {
    api: ApiClient,
    roomler: PathBuf,
    room: String,
    dir: TempDir,
    next_user: u32,
}

impl CallBots {
    /// `api` talks to the server, `roomler` is the CLI binary and `room` the
    /// existing public room whose call the participants join.
    pub fn new(api: ApiClient, roomler: &Path, room: &str) -> Result<Self> {
        Ok(Self {
            api,
            roomler: roomler.to_path_buf(),
            room: room.into(),
            dir: tempfile::tempdir()?,
            next_user: 0,
        })
    }

    /// Registers the user `name`, who joins the room, and logs the CLI in as that
    /// user in a profile of its own, whose folder it returns. The token is kept in
    /// a file, so the desktop app can open the profile too.
    pub async fn user(&mut self, name: &str) -> Result<PathBuf> {
        let auth = self
            .api
            .register(&RegisterRequest {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: BOT_PASSWORD.into(),
                display_name: None,
            })
            .await?;
        self.api
            .join_room(
                &auth.token,
                &JoinRoomRequest {
                    name: self.room.clone(),
                    password: None,
                },
            )
            .await?;
        let profile = self.dir.path().join(name);
        let mut login = Command::new(&self.roomler)
            .arg("--profile")
            .arg(&profile)
            .args(["login", "--server", self.api.base_url(), "--user", name])
            .arg("--password-stdin")
            .env("ROOMLER_TOKEN_STORE", "file")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to run {}", self.roomler.display()))?;
        {
            use std::io::Write;
            writeln!(login.stdin.take().context("no stdin")?, "{BOT_PASSWORD}")?;
        }
        let status = login.wait()?;
        ensure!(status.success(), "roomler login as {name} failed: {status}");
        Ok(profile)
    }

    /// Starts `roomler call` with synthetic media for a new user named `prefix`
    /// and a number, with `flags` added. It binds its ICE sockets to
    /// [`netns::CLIENT_IP`], stays a day and rewrites its statistics every second.
    pub async fn join(&mut self, prefix: &str, flags: &[&str]) -> Result<Participant> {
        let name = format!("{prefix}{}", self.next_user);
        self.next_user += 1;
        let profile = self.user(&name).await?;
        let stats = profile.join("stats.json");
        let log = std::fs::File::create(profile.join("call.log"))?;
        let child = Command::new(&self.roomler)
            .arg("--profile")
            .arg(&profile)
            .args(["call", &self.room, "--synthetic", "--for", "86400"])
            .args(["--bind", netns::CLIENT_IP, "--stats-every", "1"])
            .arg("--stats")
            .arg(&stats)
            .args(flags)
            .env("ROOMLER_TOKEN_STORE", "file")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to run {}", self.roomler.display()))?;
        Ok(Participant { child, stats })
    }
}
