#!/usr/bin/env bash
# Builds roomler-server and starts a complete single-node Roomler with its embedded
# defaults: http://127.0.0.1:3000, SQLite and uploads in ./data.
# Extra arguments go to roomler-server, e.g. `--addr 127.0.0.1:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
source installers/lib.sh

install_build_packages
cargo build --release -p roomler-server
exec "$CARGO_TARGET_DIR/release/roomler-server" "$@"
