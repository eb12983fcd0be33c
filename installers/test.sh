#!/usr/bin/env bash
# Installs what the tests need and runs every check: formatting, lints, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source installers/lib.sh

bound_target_dir
# A full check builds each crate once, so incremental caches would only take disk space.
export CARGO_INCREMENTAL=0

install_build_packages
install_test_packages
install_test_tools

echo "== ui: install, lint, format, unit tests, build"
(
  cd ui
  npm ci --no-audit --no-fund
  npm run lint
  npm run format:check
  npm test
  npm run build
)

echo "== rustfmt"
cargo fmt --all --check

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
# End-to-end tests run the server, CLI and desktop binaries, which `cargo test` does not
# build for other crates. The desktop app embeds ui/dist, built above, so that it runs
# without the Vite dev server.
cargo build --workspace --bins --locked --features roomler-desktop/custom-protocol
# The .deb for tests/tests/desktop_bundle.rs: a release build with the UI embedded.
bash installers/build-desktop.sh --bundles deb
# Integration tests open many sockets and files at once.
ulimit -n 65536 2>/dev/null || true
# The same features as the build above, so the tests reuse its artifacts.
cargo test --workspace --locked --features roomler-desktop/custom-protocol
