//! Runs `installers/check-deploy.sh`, which checks the deployment files (nginx,
//! compose, coturn, Janus, systemd, Dockerfiles) with the tools that read them.
//!
//! The script runs nginx in front of the real `roomler-server` when that binary
//! is in the target directory of this test. Build it first with
//! `cargo build --workspace --bins` and the same `CARGO_TARGET_DIR`. Checks
//! whose tool is not installed print "skipped:" and do not fail the test;
//! `installers/lib.sh` (`install_test_packages`) installs the ones CI runs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns the path of `roomler-server` beside this test's target directory, if
/// it was built.
fn server_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // The test is target/PROFILE/deps/deploy-HASH, and binaries are in target/PROFILE.
    let path = exe.parent()?.parent()?.join("roomler-server");
    path.is_file().then_some(path)
}

#[test]
fn deployment_files_pass_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate is one folder below the repository root");
    let mut command = Command::new("bash");
    command.arg("installers/check-deploy.sh").current_dir(root);
    match server_binary() {
        Some(path) => {
            command.env("ROOMLER_SERVER_BIN", path);
        }
        None => println!(
            "roomler-server is not built in this target directory, so the live nginx \
             check is skipped; run `cargo build --workspace --bins` first"
        ),
    }

    let output = command
        .output()
        .expect("failed to run bash installers/check-deploy.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");

    assert!(
        output.status.success(),
        "installers/check-deploy.sh failed with {}; its FAILED: lines above name the checks",
        output.status
    );
    assert!(
        stdout.contains(" 0 failed"),
        "installers/check-deploy.sh printed no summary line with 0 failed"
    );
}
