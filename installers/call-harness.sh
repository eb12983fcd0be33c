#!/usr/bin/env bash
# Runs a call between headless clients with real Janus, coturn and roomler-server,
# all inside a network namespace of its own, and prints each client's statistics.
#
#   sudo bash installers/call-harness.sh [--clients N] [--seconds S] [--relay]
#
# Janus's ICE gathers no candidates on a loopback interface, so the namespace holds
# `lo` and a veth pair whose end v0 carries 127.0.0.2 (Janus and coturn) and
# 127.0.0.3 (the clients). Nothing leaves the namespace; it is deleted, with every
# process started in it, when the script exits, also on failure or Ctrl+C.
#
# --relay forces the clients to relay-only ICE through coturn, with TURN REST
# credentials that the server signs. Needs root, the janus and coturn packages, and
# the binaries from `cargo build -p roomler-server -p roomler-client`: it takes them
# from $ROOMLER_BIN_DIR, else from the newer build of $CARGO_TARGET_DIR/debug and
# the checkout's target/debug, and prints which folder it uses.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=installers/lib.sh
source "$here/lib.sh"

usage="use --clients N (1 to 50), --seconds S (1 to 3600) or --relay"
clients=2
seconds=10
relay=no
while [ "$#" -gt 0 ]; do
  case "$1" in
    --clients | --seconds)
      if [ "$#" -lt 2 ]; then
        echo "$1 needs a value; $usage" >&2
        exit 2
      fi
      if ! [[ "$2" =~ ^[0-9]+$ ]]; then
        echo "invalid $1 value '$2': not a whole number; $usage" >&2
        exit 2
      fi
      if [ "$1" = --clients ]; then clients="$2"; else seconds="$2"; fi
      shift 2
      ;;
    --relay) relay=yes; shift ;;
    *) echo "unknown argument $1; $usage" >&2; exit 2 ;;
  esac
done
if [ "$clients" -lt 1 ] || [ "$clients" -gt 50 ]; then
  echo "invalid --clients value $clients: outside 1 to 50; $usage" >&2
  exit 2
fi
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 3600 ]; then
  echo "invalid --seconds value $seconds: outside 1 to 3600; $usage" >&2
  exit 2
fi

# Of the two usual build folders, the one with the newer build, so that an old
# build in one does not hide a new one in the other.
bin_dir="${ROOMLER_BIN_DIR:-$CARGO_TARGET_DIR/debug}"
checkout_bins="$(cd "$here/.." && pwd)/target/debug"
if [ -z "${ROOMLER_BIN_DIR:-}" ] && [ -x "$checkout_bins/roomler" ] \
  && [ "$checkout_bins/roomler" -nt "$bin_dir/roomler" ]; then
  bin_dir="$checkout_bins"
fi
for program in ip janus turnserver "$bin_dir/roomler-server" "$bin_dir/roomler"; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "$program is missing; install janus, coturn and iproute2, build the binaries" \
      "with 'cargo build -p roomler-server -p roomler-client', and set ROOMLER_BIN_DIR" \
      "to their folder if it is not $CARGO_TARGET_DIR/debug or target/debug" >&2
    exit 2
  fi
done
echo "using roomler and roomler-server from $bin_dir"
if [ "$(id -u)" -ne 0 ]; then
  echo "network namespaces need root; run with sudo" >&2
  exit 2
fi

ns="roomler-call-$$"
work="$(mktemp -d)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  # Processes started with `ip netns exec` stay in the namespace; end them all.
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

inside() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
inside ip link set lo up
inside ip link add v0 type veth peer name v1
inside ip addr add 127.0.0.2/32 dev v0
inside ip addr add 127.0.0.3/32 dev v0
inside ip link set v0 up
inside ip link set v1 up

turn_secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# An empty configuration file and a user database of its own, because Debian's
# /etc/turnserver.conf sends the log to syslog. With --verbose, coturn logs the result
# of each request.
: >"$work/turnserver.conf"
inside turnserver -c "$work/turnserver.conf" --userdb "$work/turndb" \
  --listening-ip=127.0.0.2 --relay-ip=127.0.0.2 --listening-port=3478 \
  --use-auth-secret --static-auth-secret="$turn_secret" --realm=roomler \
  --no-tls --no-dtls --no-cli --allow-loopback-peers --fingerprint \
  --min-port=49160 --max-port=49200 --verbose --log-file=stdout >"$work/coturn.log" 2>&1 &
pids+=("$!")

port=3000
ROOMLER_DATA_DIR="$work/server" ROOMLER_ADDR="127.0.0.1:$port" ROOMLER_RATE_LIMIT=false \
  ROOMLER_JANUS_ICE_ENFORCE_LIST=127.0.0.2 \
  TURN_URL="turn:127.0.0.2:3478?transport=udp,turn:127.0.0.2:3478?transport=tcp" \
  TURN_SECRET="$turn_secret" \
  inside "$bin_dir/roomler-server" >"$work/server.log" 2>&1 &
pids+=("$!")
server="http://127.0.0.1:$port"
for _ in $(seq 50); do
  inside curl -fsS "$server/health" >/dev/null 2>&1 && break
  sleep 0.2
done

for index in $(seq "$clients"); do
  profile="$work/client$index"
  echo "a long password" | inside "$bin_dir/roomler" --profile "$profile" register \
    --server "$server" --user "client$index" --email "client$index@example.com" \
    --password-stdin >/dev/null
  if [ "$index" -eq 1 ]; then
    inside "$bin_dir/roomler" --profile "$profile" create harness >/dev/null
  else
    inside "$bin_dir/roomler" --profile "$profile" join harness >/dev/null
  fi
done

call_args=(--synthetic --for "$seconds" --bind 127.0.0.3)
if [ "$relay" = yes ]; then
  call_args+=(--relay-only)
fi
client_pids=()
for index in $(seq "$clients"); do
  # Each client sends its own tone (440, 550, 660 Hz, ...), so each statistics
  # file shows whose audio arrived.
  inside "$bin_dir/roomler" --profile "$work/client$index" call harness "${call_args[@]}" \
    --tone-hz "$((330 + 110 * index))" \
    --stats "$work/stats$index.json" >"$work/client$index.log" 2>&1 &
  client_pids+=("$!")
done
status=0
for pid in "${client_pids[@]}"; do
  wait "$pid" || status=1
done

for index in $(seq "$clients"); do
  echo "== client$index"
  if [ -f "$work/stats$index.json" ]; then
    # The statistics file has no final newline.
    cat "$work/stats$index.json"
    echo
  else
    tail -20 "$work/client$index.log"
  fi
done
if [ "$relay" = yes ]; then
  echo "== coturn allocations"
  grep -c "ALLOCATE processed, success" "$work/coturn.log" || true
fi
if [ "$status" -ne 0 ]; then
  echo "== server log"
  tail -40 "$work/server.log"
fi
exit "$status"
