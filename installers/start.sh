#!/usr/bin/env bash
# Builds roomler-server and starts a complete single-node Roomler with its embedded
# defaults: http://127.0.0.1:3000, SQLite and uploads in ./data.
# Extra arguments go to roomler-server, e.g. `--addr 127.0.0.1:8080`.
#
# When a display is available (DISPLAY or WAYLAND_DISPLAY is set), it also builds the
# desktop app and opens it pointed at this server. ROOMLER_START_DESKTOP=0 skips that.
set -euo pipefail
cd "$(dirname "$0")/.."
source installers/lib.sh

# Node.js version that the UI's build tools (Vite) need, as in ui/package.json's engines.
NODE_MIN_VERSION=20.19.0

# Prints the server's listen address from the arguments, ROOMLER_ADDR or the default.
listen_addr() {
  local addr="${ROOMLER_ADDR:-127.0.0.1:3000}"
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --addr) addr="${2:-$addr}"; shift ;;
      --addr=*) addr="${1#--addr=}" ;;
    esac
    shift
  done
  # A wildcard address is reached through loopback on this machine.
  addr="${addr/#0.0.0.0:/127.0.0.1:}"
  addr="${addr/#\[::\]:/[::1]:}"
  echo "$addr"
}

# Succeeds when node is installed in at least NODE_MIN_VERSION.
node_is_recent() {
  command -v node >/dev/null 2>&1 || return 1
  local version
  version="$(node --version)"
  version="${version#v}"
  [ "$(printf '%s\n%s\n' "$NODE_MIN_VERSION" "$version" | sort -V | head -n1)" = "$NODE_MIN_VERSION" ]
}

# Prints why the desktop app is not started, or nothing when it can be.
desktop_skip_reason() {
  if [ "${ROOMLER_START_DESKTOP:-1}" = 0 ]; then
    echo "ROOMLER_START_DESKTOP=0"
  elif [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "no display: DISPLAY and WAYLAND_DISPLAY are unset"
  elif ! node_is_recent; then
    echo "building its UI needs Node.js $NODE_MIN_VERSION or newer with npm, and found $(node --version 2>/dev/null || echo none)"
  fi
}

build_desktop() {
  echo "Building the desktop app (the UI with npm, then roomler-desktop in release mode)"
  if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules ]; then
    npm --prefix ui ci --no-audit --no-fund
  fi
  npm --prefix ui run build
  cargo build --release -p roomler-desktop --features custom-protocol
}

# Waits up to 30 seconds until GET /health answers 200, or the server exits.
wait_until_healthy() {
  local url="$1" pid="$2" attempt
  for attempt in $(seq 1 300); do
    if curl -fsS -o /dev/null "$url/health" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

bound_target_dir
install_build_packages
skip_reason="$(desktop_skip_reason)"
cargo build --release -p roomler-server
if [ -n "$skip_reason" ]; then
  echo "Starting the server only ($skip_reason). The README's section on the desktop app"
  echo "says how to build and run it elsewhere."
  exec "$CARGO_TARGET_DIR/release/roomler-server" "$@"
fi

build_desktop
url="http://$(listen_addr "$@")"
"$CARGO_TARGET_DIR/release/roomler-server" "$@" &
server_pid=$!
desktop_pid=""
stop_all() {
  [ -n "$desktop_pid" ] && kill "$desktop_pid" 2>/dev/null
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
}
trap stop_all EXIT INT TERM

if ! wait_until_healthy "$url" "$server_pid"; then
  echo "start.sh: the server did not answer at $url/health; see its log above" >&2
  exit 1
fi
log="${TMPDIR:-/tmp}/roomler-desktop.log"
echo "Opening the desktop app on $url (its log: $log). Ctrl+C stops the server and the app."
"$CARGO_TARGET_DIR/release/roomler-desktop" --server "$url" >"$log" 2>&1 &
desktop_pid=$!
wait "$server_pid"
