//! A network namespace of a test's own, for tests with calls. Janus's ICE gathers no
//! candidates on a loopback interface, so a test re-runs itself inside a fresh
//! namespace (`unshare -n`) with `lo` and a veth pair whose end `v0` carries
//! [`JANUS_ADDR`] and [`CLIENT_ADDR`]. The namespace goes away with the last process
//! in it, and no traffic of the test leaves it.

use std::path::PathBuf;
use std::process::Command;

/// Set in the run inside the namespace.
pub const INSIDE: &str = "ROOMLER_TEST_IN_NETNS";
/// The address Janus is limited to inside the namespace.
pub const JANUS_ADDR: &str = "127.0.0.2";
/// The address clients bind their ICE sockets to inside the namespace.
pub const CLIENT_ADDR: &str = "127.0.0.3";

/// Runs the test `name` of the current test binary inside a new network namespace.
/// Returns `true` when the caller should return: the test ran inside and passed, or
/// it is skipped (with the reason printed). Returns `false` in the run inside, once
/// the namespace is set up, so the caller does the work. Panics when the run inside
/// failed.
pub fn run_inside(name: &str, programs: &[&str]) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        set_up();
        return false;
    }
    if let Some(reason) = missing_prerequisite(programs) {
        println!("skipped {name}: {reason}");
        return true;
    }
    let exe = std::env::current_exe().expect("the path of the test executable");
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
/// so the caller does the work; otherwise the exit status of the run inside.
pub fn enter(programs: &[&str]) -> std::io::Result<Option<std::process::ExitStatus>> {
    if std::env::var_os(INSIDE).is_some() {
        set_up();
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

/// Returns why namespace tests cannot run here: not root, or a program missing from
/// `PATH` (`unshare` and `ip` always, and each of `programs`).
pub fn missing_prerequisite(programs: &[&str]) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("network namespaces need root".into());
    }
    for program in ["unshare", "ip"].iter().chain(programs) {
        if find_program(program).is_none() {
            return Some(format!("the {program} program is not installed"));
        }
    }
    None
}

/// Finds `name` in the directories of `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn set_up() {
    let janus = format!("{JANUS_ADDR}/32");
    let client = format!("{CLIENT_ADDR}/32");
    let commands: [&[&str]; 6] = [
        &["link", "set", "lo", "up"],
        &["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        &["addr", "add", &janus, "dev", "v0"],
        &["addr", "add", &client, "dev", "v0"],
        &["link", "set", "v0", "up"],
        &["link", "set", "v1", "up"],
    ];
    for args in commands {
        let status = Command::new("ip")
            .args(args)
            .status()
            .expect("failed to run ip");
        assert!(status.success(), "ip {} failed", args.join(" "));
    }
}
