//! Tests of the real `roomler-server` binary as a child process: start-up output,
//! graceful shutdown on SIGTERM, the admin commands, and what the logs must never hold.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BINARY: &str = env!("CARGO_BIN_EXE_roomler-server");

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on an ephemeral port and reads the port from its first stdout line.
fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(BINARY);
    command
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("ROOMLER_RATE_LIMIT", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("roomler-server starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a line on stdout");
    let base = line
        .trim()
        .strip_prefix("roomler-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Running { child, base }
}

fn admin(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BINARY)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn register(base: &str, username: &str, password: &str) -> Value {
    let body = json!({"username": username, "email": format!("{username}@example.com"),
                      "password": password});
    let response = reqwest::Client::new()
        .post(format!("{base}/api/auth/register"))
        .json(&body)
        .send()
        .await;
    let response = response.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn sigterm_closes_websockets_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &[]);
    let auth = register(&server.base, "alice", "a long password").await;
    let token = auth["token"].as_str().unwrap();

    let url = format!("{}/api/ws", server.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = socket.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));

    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    let Some(Ok(WsMessage::Close(Some(close)))) = frame else {
        panic!("expected a close frame, got {frame:?}");
    };
    assert_eq!(u16::from(close.code), 1001);
    let status = wait_for_exit(&mut server.child, Duration::from_secs(10));
    assert!(
        status.is_some_and(|status| status.success()),
        "exit status {status:?}"
    );
}

#[tokio::test]
async fn logs_hold_no_password_token_or_body() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &[("RUST_LOG", "debug")]);
    let password = "pw-5f1c2a9e-never-logged";
    let auth = register(&server.base, "alice", password).await;
    let token = auth["token"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();

    let login = json!({"login": "alice", "password": password});
    let response = client
        .post(format!("{}/api/auth/login", server.base))
        .json(&login)
        .send();
    assert_eq!(response.await.unwrap().status(), 200);
    let room = json!({"name": "general", "kind": "public"});
    let response = client
        .post(format!("{}/api/rooms", server.base))
        .bearer_auth(&token)
        .json(&room)
        .send()
        .await
        .unwrap();
    let room: Value = response.json().await.unwrap();
    let body = "body-7c3d0b1e-never-logged";
    let message = json!({"body": body, "client_id": "c1"});
    let path = format!(
        "{}/api/rooms/{}/messages",
        server.base,
        room["id"].as_str().unwrap()
    );
    let response = client
        .post(path)
        .bearer_auth(&token)
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .get(format!("{}/api/me?access_token={token}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut logs = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("registered an account"), "logs: {logs}");
    assert!(!logs.contains(password), "the password is in the logs");
    assert!(!logs.contains(&token), "the token is in the logs");
    assert!(!logs.contains(body), "the message body is in the logs");
}

#[test]
fn admin_commands_manage_users_and_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let (ok, stdout, stderr) = admin(
        data,
        &[
            "create-user",
            "--username",
            "Bob",
            "--email",
            "bob@example.com",
        ],
        Some("a long password\n"),
    );
    assert!(ok, "create-user failed: {stderr}");
    assert!(stdout.contains("created user Bob"), "{stdout}");

    let (ok, stdout, _) = admin(data, &["list-users"], None);
    assert!(ok);
    assert!(stdout.contains("bob@example.com"), "{stdout}");
    assert!(stdout.contains("active"), "{stdout}");

    let (ok, _, stderr) = admin(data, &["disable-user", "bob"], None);
    assert!(ok, "{stderr}");
    let (_, stdout, _) = admin(data, &["list-users"], None);
    assert!(stdout.contains("disabled"), "{stdout}");

    let (ok, _, stderr) = admin(data, &["reset-password", "bob"], Some(""));
    assert!(!ok);
    assert!(stderr.contains("standard input"), "{stderr}");

    let (ok, _, stderr) = admin(data, &["disable-user", "nobody"], None);
    assert!(!ok);
    assert!(stderr.contains("no user is named"), "{stderr}");

    let (ok, stdout, _) = admin(data, &["counts"], None);
    assert!(ok);
    let counts: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(counts["users"], 1);

    let backup = data.join("backup.db");
    let (ok, _, stderr) = admin(data, &["backup", backup.to_str().unwrap()], None);
    assert!(ok, "{stderr}");
    assert!(backup.metadata().unwrap().len() > 0);

    std::fs::write(&backup, b"an older backup").unwrap();
    let (ok, _, stderr) = admin(data, &["backup", backup.to_str().unwrap()], None);
    assert!(!ok, "an existing backup was overwritten");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(&backup).unwrap(), b"an older backup");
    let (ok, _, stderr) = admin(data, &["backup", "--force", backup.to_str().unwrap()], None);
    assert!(ok, "{stderr}");
    assert!(
        std::fs::read(&backup)
            .unwrap()
            .starts_with(b"SQLite format 3")
    );

    let (ok, _, stderr) = admin(data, &["delete-room", "missing"], None);
    assert!(!ok);
    assert!(stderr.contains("no room has"), "{stderr}");
}

#[test]
fn invalid_settings_fail_with_the_variable_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .arg("--data-dir")
        .arg(dir.path())
        .env("ROOMLER_HEARTBEAT_SECS", "soon")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ROOMLER_HEARTBEAT_SECS"), "{stderr}");
}

#[test]
fn admin_without_database_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = admin(dir.path(), &["list-users"], None);
    assert!(!ok, "list-users succeeded on an empty folder");
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(
        !dir.path().join("roomler.db").exists(),
        "an empty database was created"
    );
}

#[cfg(unix)]
#[test]
fn data_folder_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, _, stderr) = admin(
        &data,
        &[
            "create-user",
            "--username",
            "bob",
            "--email",
            "bob@example.com",
        ],
        Some("a long password\n"),
    );
    assert!(ok, "{stderr}");
    let mode = |path: &Path| path.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder");
    assert_eq!(mode(&data.join("roomler.db")), 0o600, "the database");
}
