//! Private network namespaces for tests that run Janus, coturn and call clients.
//!
//! Janus's ICE gathers no candidates on an interface flagged loopback, and
//! everything a test starts must stay off the machine's real interfaces. So a test
//! re-runs itself inside a fresh network namespace (`unshare -n`) with `lo` up and
//! a veth pair whose end `v0` carries [`JANUS_IP`] (Janus and coturn) and
//! [`CLIENT_IP`] (the call clients). Servers inside listen on 127.0.0.1. The
//! namespace goes away with the last process in it. Tests of several server
//! replicas start their shared [`Redis`] here too.
//!
//! ```no_run
//! #[test]
//! fn call_works() {
//!     if roomler_netns::run_inside_namespace("call_works", &["janus"]) {
//!         return;
//!     }
//!     // Runs inside the namespace.
//! }
//! ```

mod redis;

use std::path::PathBuf;
use std::process::Command;

pub use redis::Redis;

/// Set in the re-run inside the namespace.
const INSIDE: &str = "ROOMLER_TEST_IN_NETNS";
/// The address on `v0` for Janus's ICE and for coturn.
pub const JANUS_IP: &str = "127.0.0.2";
/// The address on `v0` that call clients bind their ICE sockets to.
pub const CLIENT_IP: &str = "127.0.0.3";

/// Runs the test `name` of the current test binary inside a new network
/// namespace and returns `true`, or returns `false` inside that run, after setting
/// up the namespace, so that the caller does the test's work.
///
/// Without root, `unshare`, `ip` or one of `programs`, it prints why the test is
/// skipped and returns `true`, so that the test passes without running.
///
/// # Panics
///
/// Panics when the run inside the namespace fails, or when setting up the
/// namespace fails.
pub fn run_inside_namespace(name: &str, programs: &[&str]) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        set_up_namespace();
        return false;
    }
    if let Some(reason) = missing_prerequisite(programs) {
        println!("skipped {name}: {reason}");
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary has no path");
    let status = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .status()
        .expect("failed to run unshare");
    assert!(
        status.success(),
        "{name} failed inside its network namespace"
    );
    true
}

/// Re-runs the current program with its arguments inside a new network namespace,
/// for benchmarks. Returns `None` in the run inside, once the namespace is set up,
/// so that the caller does the work; otherwise the exit status of the run inside.
///
/// # Errors
///
/// Fails when a prerequisite is missing or `unshare` cannot start.
pub fn enter(programs: &[&str]) -> std::io::Result<Option<std::process::ExitStatus>> {
    if std::env::var_os(INSIDE).is_some() {
        set_up_namespace();
        return Ok(None);
    }
    if let Some(reason) = missing_prerequisite(programs) {
        return Err(std::io::Error::other(format!(
            "cannot create a network namespace: {reason}"
        )));
    }
    let status = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(INSIDE, "1")
        .status()?;
    Ok(Some(status))
}

/// Runs `ip` with `args`, inside the namespace when called from a test's run
/// there.
///
/// # Panics
///
/// Panics when `ip` fails.
pub fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("failed to run ip");
    assert!(status.success(), "ip {} failed", args.join(" "));
}

/// Returns the path of the program `name` on `PATH`, or `name` itself when it
/// contains a `/` and is a file.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn missing_prerequisite(programs: &[&str]) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("network namespaces need root".into());
    }
    ["unshare", "ip"]
        .iter()
        .chain(programs)
        .find(|program| find_program(program).is_none())
        .map(|program| format!("the {program} program is not installed"))
}

fn set_up_namespace() {
    let janus = format!("{JANUS_IP}/32");
    let client = format!("{CLIENT_IP}/32");
    ip(&["link", "set", "lo", "up"]);
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ip(&["addr", "add", &janus, "dev", "v0"]);
    ip(&["addr", "add", &client, "dev", "v0"]);
    ip(&["link", "set", "v0", "up"]);
    ip(&["link", "set", "v1", "up"]);
}
