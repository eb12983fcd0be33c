//! Installs the desktop app's `.deb` into a scratch root with `dpkg -x` and runs the
//! installed binary.
//!
//! `installers/build-desktop.sh --bundles deb` builds the package into
//! `$CARGO_TARGET_DIR/release/bundle/deb/`, and `installers/test.sh` runs it before
//! `cargo test`. The package is not built here, because a cargo build inside `cargo
//! test` would wait for the target directory's lock that the outer cargo holds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns the target directory that this test binary was built in.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // The test is target/PROFILE/deps/desktop_bundle-HASH.
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("the test binary is three folders below the target directory")
        .to_path_buf()
}

/// Returns the `.deb` of this version, failing with the command that builds it.
fn deb_package() -> PathBuf {
    let version = env!("CARGO_PKG_VERSION");
    let folder = target_dir().join("release/bundle/deb");
    let found = std::fs::read_dir(&folder).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| {
                        name.starts_with(&format!("Roomler_{version}_")) && name.ends_with(".deb")
                    })
            })
    });
    found.unwrap_or_else(|| {
        panic!(
            "no Roomler_{version}_*.deb in {}; build it with \
             `installers/build-desktop.sh --bundles deb` and the same CARGO_TARGET_DIR",
            folder.display()
        )
    })
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the output is UTF-8")
}

#[test]
fn deb_installs_and_runs() {
    let deb = deb_package();
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()));

    let binary = root.path().join("usr/bin/roomler-desktop");
    assert!(binary.is_file(), "{} is missing", binary.display());
    let version = run(Command::new(&binary).arg("--version"));
    assert_eq!(
        version.trim(),
        format!(
            "roomler-desktop {} (embedded UI)",
            env!("CARGO_PKG_VERSION")
        ),
        "the packaged app must embed ui/dist, not load the Vite dev server"
    );

    let desktop_entry = root.path().join("usr/share/applications/Roomler.desktop");
    let entry = std::fs::read_to_string(&desktop_entry)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", desktop_entry.display()));
    assert!(entry.contains("Exec=roomler-desktop"), "{entry}");
    assert!(entry.contains("Categories=Network;"), "{entry}");

    let icon = root
        .path()
        .join("usr/share/icons/hicolor/128x128/apps/roomler-desktop.png");
    assert!(icon.is_file(), "{} is missing", icon.display());

    let example = root
        .path()
        .join("usr/share/doc/roomler-desktop/desktop.toml.example");
    let example = std::fs::read_to_string(&example)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", example.display()));
    assert!(example.contains("server_url ="), "{example}");
}

#[test]
fn deb_control_names_dependencies() {
    let deb = deb_package();
    let package = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package"));
    assert_eq!(package.trim(), "roomler");
    let depends = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Depends"));
    for library in ["libwebkit2gtk-4.1-0", "libgtk-3-0"] {
        assert!(
            depends.contains(library),
            "Depends lacks {library}: {depends}"
        );
    }
}
