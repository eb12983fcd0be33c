#!/usr/bin/env bash
# Checks the deployment files in installers/ with the tools that read them:
#   nginx     `nginx -t` on nginx/roomler.conf. With ROOMLER_SERVER_BIN set to a
#             roomler-server binary, nginx also runs in front of it, and the
#             script checks the redirect, TLS, HTTP/2, headers, gzip, the
#             WebSocket upgrade, the JSON errors and the Dockerfile's HEALTHCHECK.
#   compose   `docker compose config` on compose.yaml with .env.example, and that
#             both files name the same variables.
#   coturn    turnserver started through coturn/entrypoint.sh with
#             coturn/turnserver.conf, and REST API credentials.
#   janus     Janus started through janus/entrypoint.sh with the files in janus/:
#             transports, API secret, VideoRoom admin key and numeric room ids,
#             plugins, and the values the entrypoint rejects.
#   systemd   `systemd-analyze verify` and `security` on systemd/roomler.service.
#   hadolint  the Dockerfiles.
# A check whose tool is missing prints "skipped:" with the reason. Every server
# that this script starts listens on 127.0.0.1 only and is stopped at exit.
#
# Usage: bash installers/check-deploy.sh   (exit status 1 when a check failed)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PASSED=0
FAILED=0
SKIPPED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/roomler-check-deploy.XXXXXX")"
STARTED_PIDS=()

cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

pass() {
  PASSED=$((PASSED + 1))
  echo "ok: $*"
}

fail() {
  FAILED=$((FAILED + 1))
  echo "FAILED: $*"
}

skip() {
  SKIPPED=$((SKIPPED + 1))
  echo "skipped: $*"
}

# Prints the indented lines of a file, for the output around a failure.
show() {
  sed 's/^/    /' "$1"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local port
  while true; do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# Waits until `curl URL` succeeds: 10 tries per second of $2, each of at most 1 s.
wait_for_url() {
  local url="$1" seconds="$2" _
  for _ in $(seq 1 $((seconds * 10))); do
    if curl -s -o /dev/null --max-time 1 "$url"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Replaces each match of the sed expression $2 in file $1 and fails unless it
# matched exactly $3 lines, so that a change to the file under test cannot
# silently make the substitution a no-op.
substitute() {
  local file="$1" expression="$2" expected="$3" pattern count
  pattern="$(printf '%s' "$expression" | sed -E 's/^s\|([^|]*)\|.*$/\1/')"
  count="$(grep -cE "$pattern" "$file" || true)"
  if [ "$count" != "$expected" ]; then
    echo "check-deploy: expected $expected lines matching '$pattern' in $file, found $count" >&2
    return 1
  fi
  sed -i -E "$expression" "$file"
}

# nginx

# Lays out an nginx prefix in $1 that includes installers/nginx/roomler.conf in
# `http {}`. The copies differ from the files under test in three ways only:
# - the upstream servers become 127.0.0.1:$2, because roomler-1 and roomler-2
#   resolve only inside compose;
# - logs go to the prefix;
# - with $3 and $4 set, the listen ports become 127.0.0.1:$3 (HTTP) and
#   127.0.0.1:$4 (HTTPS).
prepare_nginx() {
  local prefix="$1" upstream_port="$2" http_port="${3:-}" https_port="${4:-}"
  mkdir -p "$prefix/conf/roomler" "$prefix/conf/tls" "$prefix/logs" "$prefix/temp"
  cp installers/nginx/roomler.conf "$prefix/conf/roomler.conf"
  cp installers/nginx/roomler/proxy.conf "$prefix/conf/roomler/proxy.conf"
  cp installers/nginx/roomler/upstream.conf "$prefix/conf/roomler/upstream.conf"

  substitute "$prefix/conf/roomler/upstream.conf" \
    "s|server roomler-[12]:3000|server 127.0.0.1:$upstream_port|" 2 || return 1
  substitute "$prefix/conf/roomler.conf" "s|/var/log/nginx/|$prefix/logs/|" 2 || return 1
  if [ -n "$http_port" ]; then
    substitute "$prefix/conf/roomler.conf" "s|listen 80;|listen 127.0.0.1:$http_port;|" 1 \
      || return 1
    substitute "$prefix/conf/roomler.conf" \
      "s|listen 443 ssl http2;|listen 127.0.0.1:$https_port ssl http2;|" 1 || return 1
  fi

  # A throwaway certificate for chat.example.com, the placeholder server_name.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=chat.example.com" -addext "subjectAltName=DNS:chat.example.com" \
    -keyout "$prefix/conf/tls/privkey.pem" -out "$prefix/conf/tls/fullchain.pem" \
    >"$prefix/openssl.log" 2>&1 || {
    show "$prefix/openssl.log"
    return 1
  }

  local user_line=""
  if [ "$(id -u)" -eq 0 ]; then
    # Workers would run as the user "nobody", which cannot write to this private folder.
    user_line="user root;"
  fi
  cat >"$prefix/conf/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events {
    worker_connections 256;
}
http {
    client_body_temp_path $prefix/temp/body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    include roomler.conf;
}
EOF
}

check_nginx_syntax() {
  echo "== nginx -t"
  if ! command -v nginx >/dev/null 2>&1; then
    skip "nginx -t: nginx is not installed (Debian package nginx-light)"
    return
  fi
  if ! command -v openssl >/dev/null 2>&1; then
    skip "nginx -t: openssl is not installed, so no test certificate can be made"
    return
  fi
  local prefix="$WORK/nginx-syntax"
  if ! prepare_nginx "$prefix" 3000; then
    fail "nginx -t: could not prepare the test configuration"
    return
  fi
  if nginx -t -p "$prefix" -c conf/nginx.conf >"$prefix/test.log" 2>&1; then
    pass "nginx -t accepts nginx/roomler.conf ($(nginx -v 2>&1 | sed 's/^nginx version: //'))"
  else
    fail "nginx -t rejects nginx/roomler.conf:"
    show "$prefix/test.log"
  fi
}

# Prints the command of the Dockerfile's HEALTHCHECK instruction (exec form, a
# JSON array) as one argument per line. No argument may contain a newline.
dockerfile_healthcheck() {
  sed -n '/^HEALTHCHECK/,/^[^ ]/p' installers/Dockerfile \
    | sed -n 's/^ *CMD //p' \
    | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))'
}

# Runs the command after $1 and counts it as passed or failed, described by $1.
expect() {
  local description="$1"
  shift
  if "$@"; then
    pass "$description"
  else
    fail "$description"
  fi
}

# Succeeds when the health check command (after $1, the server's port) fails.
probe_fails() {
  local port="$1"
  shift
  ! env ROOMLER_ADDR="0.0.0.0:$port" "$@" 2>/dev/null
}

header_is() {
  # $1 headers file, $2 header name, $3 expected value (an extended regex).
  grep -qiE "^$2: $3"$'\r?$' "$1"
}

check_nginx_live() {
  echo "== nginx in front of roomler-server"
  local server_bin="${ROOMLER_SERVER_BIN:-}"
  if [ -z "$server_bin" ]; then
    skip "live nginx: ROOMLER_SERVER_BIN is not set to a roomler-server binary"
    return
  fi
  if [ ! -x "$server_bin" ]; then
    skip "live nginx: $server_bin is not an executable; build it with cargo build --bins"
    return
  fi
  local tool
  for tool in nginx openssl curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      skip "live nginx: $tool is not installed"
      return
    fi
  done

  local server_port http_port https_port prefix="$WORK/nginx-live"
  server_port="$(free_port)"
  http_port="$(free_port)"
  https_port="$(free_port)"
  if ! prepare_nginx "$prefix" "$server_port" "$http_port" "$https_port"; then
    fail "live nginx: could not prepare the configuration"
    return
  fi

  ROOMLER_TRUST_PROXY_HEADERS=true ROOMLER_LOG_FORMAT=json \
    "$server_bin" --addr "127.0.0.1:$server_port" --data-dir "$prefix/data" serve \
    >"$prefix/server.out" 2>"$prefix/server.err" &
  local server_pid=$!
  STARTED_PIDS+=("$server_pid")
  nginx -p "$prefix" -c conf/nginx.conf -g "daemon off;" >"$prefix/nginx.out" 2>&1 &
  local nginx_pid=$!
  STARTED_PIDS+=("$nginx_pid")

  if ! wait_for_url "http://127.0.0.1:$server_port/health" 30; then
    fail "live nginx: roomler-server did not answer /health within 30 s:"
    show "$prefix/server.err"
    return
  fi
  if ! wait_for_url "http://127.0.0.1:$http_port/" 10; then
    fail "live nginx: nginx did not start within 10 s:"
    show "$prefix/nginx.out"
    show "$prefix/logs/error.log"
    return
  fi

  local base="https://chat.example.com:$https_port"
  local curl_tls=(curl -s --max-time 10 --resolve "chat.example.com:$https_port:127.0.0.1"
    --cacert "$prefix/conf/tls/fullchain.pem")

  # Port 80 sends everything to HTTPS, path and query kept.
  local redirect
  redirect="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: chat.example.com' \
    "http://127.0.0.1:$http_port/api/rooms?limit=5")"
  expect "port 80 redirects to https with path and query ($redirect)" \
    test "$redirect" = "301 https://chat.example.com/api/rooms?limit=5"

  # /health over TLS and HTTP/2, with the security headers.
  local headers="$prefix/health.headers" version body
  version="$("${curl_tls[@]}" --http2 -D "$headers" -o "$prefix/health.body" \
    -w '%{http_version}' -H 'X-Request-Id: check-deploy-1' "$base/health")"
  body="$(cat "$prefix/health.body")"
  expect "GET /health through nginx returns ok (body: $body)" test "$body" = "ok"
  expect "nginx serves HTTP/2 (version: $version)" test "$version" = "2"
  expect "response has Strict-Transport-Security" \
    header_is "$headers" strict-transport-security 'max-age=[0-9]+'
  expect "response has X-Frame-Options DENY" header_is "$headers" x-frame-options DENY
  expect "response has X-Content-Type-Options nosniff" \
    header_is "$headers" x-content-type-options nosniff
  expect "response has Referrer-Policy" header_is "$headers" referrer-policy no-referrer
  expect "response has a Content-Security-Policy of default-src 'none'" \
    header_is "$headers" content-security-policy "default-src 'none'.*frame-ancestors 'none'"
  expect "the client's X-Request-Id reaches the server and returns" \
    header_is "$headers" x-request-id check-deploy-1

  # The metrics are not served on the public address.
  local metrics_status
  metrics_status="$("${curl_tls[@]}" -o /dev/null -w '%{http_code}' "$base/metrics")"
  expect "nginx does not serve /metrics (status $metrics_status)" test "$metrics_status" = 404

  # JSON is compressed.
  "${curl_tls[@]}" -H 'Accept-Encoding: gzip' -D "$prefix/openapi.headers" -o /dev/null \
    "$base/api/openapi.json"
  expect "JSON responses are gzip-compressed" \
    header_is "$prefix/openapi.headers" content-encoding gzip

  # An account, for the WebSocket below.
  local token
  token="$("${curl_tls[@]}" -X POST -H 'Content-Type: application/json' \
    -d '{"username": "deploycheck", "email": "deploycheck@example.com", "password": "a long password for the check"}' \
    "$base/api/auth/register" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
  expect "registration through nginx returns a token" test -n "$token"

  # The WebSocket upgrade through TLS and the proxy: the server responds with 101
  # and sends its hello frame. curl has no WebSocket support here, so it stops at
  # --max-time, with the frames written as the body.
  "${curl_tls[@]}" --http1.1 -N --max-time 3 -D "$prefix/ws.headers" -o "$prefix/ws.body" \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: cm9vbWxlci1kZXBsb3ktY2s=' -H "Authorization: Bearer $token" \
    "$base/api/ws"
  expect "GET /api/ws through nginx switches protocols" \
    grep -q '^HTTP/1.1 101' "$prefix/ws.headers"
  expect "the WebSocket delivers the server's hello frame" \
    grep -aq '"type":"hello"' "$prefix/ws.body"

  # A body over client_max_body_size gets the API's JSON error from nginx.
  local too_large
  too_large="$("${curl_tls[@]}" -X POST -H 'Content-Type: application/octet-stream' \
    -H "Content-Length: $((102 * 1024 * 1024))" --data-binary @/dev/null -w ' %{http_code}' \
    "$base/api/rooms/00000000-0000-0000-0000-000000000000/files" | tr -d '\n')"
  expect "a body over 101 MiB gets 413 with a JSON error ($too_large)" \
    grep -q '"code": "request_too_large".* 413$' <<<"$too_large"

  # The Dockerfile's health check probe, against the live server.
  local probe=()
  if ! command -v python3 >/dev/null 2>&1; then
    skip "the Dockerfile's health check: python3 is not installed to read its JSON"
  else
    mapfile -t probe < <(dockerfile_healthcheck)
    if [ "${#probe[@]}" -eq 0 ]; then
      fail "the Dockerfile has no HEALTHCHECK CMD in exec form"
    else
      expect "the Dockerfile's health check succeeds against a ready server" \
        env ROOMLER_ADDR="0.0.0.0:$server_port" "${probe[@]}"
    fi
  fi

  # SIGTERM, the STOPSIGNAL of the image and the KillSignal of the unit.
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  expect "roomler-server exits with status 0 on SIGTERM (status $status)" test "$status" -eq 0
  if [ "${#probe[@]}" -gt 0 ]; then
    expect "the Dockerfile's health check fails once the server is gone" \
      probe_fails "$server_port" "${probe[@]}"
  fi
  local unavailable
  unavailable="$("${curl_tls[@]}" -w ' %{http_code}' "$base/api/rooms" | tr -d '\n')"
  expect "with no server up, nginx returns 502 with a JSON error ($unavailable)" \
    grep -q '"code": "upstream_unavailable".* 502$' <<<"$unavailable"

  kill -QUIT "$nginx_pid" 2>/dev/null
  wait "$nginx_pid" 2>/dev/null
  if grep -q '\[emerg\]\|\[alert\]' "$prefix/logs/error.log" 2>/dev/null; then
    fail "nginx logged errors during the live run:"
    show "$prefix/logs/error.log"
  fi
}

# compose

check_compose() {
  echo "== compose"
  local compose=installers/compose.yaml example=installers/.env.example

  # Every variable that compose.yaml interpolates is documented in .env.example,
  # set or as a commented-out optional line, and .env.example has no leftovers.
  local used documented missing unused
  used="$(grep -oE '\$\{[A-Z][A-Z0-9_]*' "$compose" | sed 's/^\${//' | sort -u)"
  documented="$(sed -nE 's/^#?([A-Z][A-Z0-9_]*)=.*/\1/p' "$example" | sort -u)"
  missing="$(comm -23 <(echo "$used") <(echo "$documented") | tr '\n' ' ')"
  unused="$(comm -13 <(echo "$used") <(echo "$documented") | tr '\n' ' ')"
  expect "every variable of compose.yaml is in .env.example (missing: ${missing:-none})" \
    test -z "$missing"
  expect "every variable of .env.example is used by compose.yaml (unused: ${unused:-none})" \
    test -z "$unused"

  # Each required variable (${VAR:?message}) has a value in .env.example.
  local required unset_vars="" name
  required="$(grep -oE '\$\{[A-Z][A-Z0-9_]*:\?' "$compose" | sed -E 's/^\$\{|:\?$//g' | sort -u)"
  for name in $required; do
    grep -qE "^$name=.+" "$example" || unset_vars+="$name "
  done
  expect "every required variable has a placeholder in .env.example (unset: ${unset_vars:-none})" \
    test -z "$unset_vars"

  if docker compose version >/dev/null 2>&1; then
    local env_copy="$WORK/compose.env"
    cp "$example" "$env_copy"
    if docker compose --env-file "$env_copy" -f "$compose" config --quiet \
      >"$WORK/compose.log" 2>&1; then
      pass "docker compose config accepts compose.yaml with .env.example"
    else
      fail "docker compose config rejects compose.yaml:"
      show "$WORK/compose.log"
    fi
  else
    skip "docker compose config: docker compose is not installed"
    # Without compose, at least the YAML and the service layout are checked.
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
      if python3 - "$compose" >"$WORK/compose-yaml.log" 2>&1 <<'EOF'
import sys

import yaml

with open(sys.argv[1]) as file:
    compose = yaml.safe_load(file)
services = compose["services"]
networks = compose["networks"]
expected = {"nginx", "roomler-1", "roomler-2", "mongo", "mongo-init", "redis", "janus", "coturn"}
assert set(services) == expected, f"services are {sorted(services)}"
for name, service in services.items():
    assert "profiles" not in service, f"{name} starts only with a profile"
for name in ("janus", "coturn"):
    assert services[name].get("network_mode") == "host", f"{name} is not on the host network"
janus = services["janus"]["environment"]
gateway = "${JANUS_API_GATEWAY:-172.30.88.1}"
subnet = "${JANUS_API_SUBNET:-172.30.88.0/24}"
assert networks["janus"]["internal"] is True, "the janus network is not internal"
assert networks["janus"]["ipam"]["config"] == [{"subnet": subnet, "gateway": gateway}], \
    f"the janus network's addresses are {networks['janus']['ipam']}"
assert janus["JANUS_WS_IP"] == gateway, "Janus does not listen on the janus network's gateway"
assert janus["JANUS_WS_SUBNET"] == subnet, "Janus's ws_acl is not the janus network's subnet"
for name in ("roomler-1", "roomler-2"):
    environment = services[name]["environment"]
    assert environment["DB_CONN"].startswith("mongodb://"), f"{name} has no MongoDB DB_CONN"
    assert environment["WS_SCALEOUT_ENABLED"] == "true", f"{name} has no Redis bus"
    assert "ports" not in services[name], f"{name} publishes ports past nginx"
    assert "janus" in services[name]["networks"], f"{name} is not on the janus network"
    assert environment["ROOMLER_JANUS_URLS"] == f"ws://{gateway}:8188", \
        f"{name} does not reach Janus at the janus network's gateway"
    assert environment["ROOMLER_JANUS_API_SECRET"] == janus["JANUS_API_SECRET"], \
        f"{name} and Janus take the API secret from different variables"
    assert environment["ROOMLER_JANUS_ADMIN_KEY"] == janus["JANUS_ADMIN_KEY"], \
        f"{name} and Janus take the admin key from different variables"
    assert environment["TURN_SECRET"] == services["coturn"]["environment"]["TURN_SECRET"], \
        f"{name} and coturn take the TURN secret from different variables"
assert "janus" not in services["nginx"]["networks"], "nginx is on the janus network"
assert networks["backend"]["internal"] is True, "the backend network is not internal"
EOF
      then
        pass "compose.yaml parses as YAML with the expected services and networks"
      else
        fail "compose.yaml:"
        show "$WORK/compose-yaml.log"
      fi
    else
      skip "compose.yaml YAML parse: python3 with PyYAML is not installed"
    fi
  fi
}

# coturn

# Prints TURN REST API credentials for secret $1: "EXPIRY:roomler PASSWORD".
turn_credentials() {
  local username
  username="$(($(date +%s) + 3600)):roomler"
  printf '%s %s\n' "$username" \
    "$(printf '%s' "$username" | openssl dgst -sha1 -hmac "$1" -binary | openssl base64)"
}

check_coturn() {
  echo "== coturn"
  if ! command -v turnserver >/dev/null 2>&1; then
    skip "coturn: turnserver is not installed (Debian package coturn)"
    return
  fi
  # coturn 4.6 has no option that only checks a configuration file (its --help
  # lists none), so the check starts the server and logs in with REST API credentials.
  expect "coturn/entrypoint.sh rejects a missing TURN_SECRET" \
    coturn_entrypoint_rejects "$WORK/coturn-no-secret" "TURN_SECRET is not set" TURN_SECRET=
  expect "coturn/entrypoint.sh rejects the placeholder of .env.example" \
    coturn_entrypoint_rejects "$WORK/coturn-placeholder" "placeholder" \
    TURN_SECRET=CHANGE_ME_turn_secret

  # Started through the image's entrypoint, with the addresses and ports that
  # keep the check on loopback as arguments, as compose passes none.
  local port secret="check-deploy-turn-secret" dir="$WORK/coturn"
  mkdir -p "$dir"
  port="$(free_port)"
  TURN_CONFIG_SOURCE=installers/coturn/turnserver.conf TURN_CONFIG_DIR="$dir/run" \
    TURN_SECRET="$secret" TURN_REALM=chat.example.com \
    bash installers/coturn/entrypoint.sh --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 \
    --listening-port="$port" --pidfile="$dir/turnserver.pid" --userdb="$dir/turndb" \
    >"$dir/turnserver.log" 2>&1 &
  STARTED_PIDS+=("$!")
  local pid=$! _
  for _ in $(seq 1 50); do
    grep -q "Total General servers" "$dir/turnserver.log" && break
    sleep 0.1
  done

  if ! kill -0 "$pid" 2>/dev/null; then
    fail "coturn does not start through coturn/entrypoint.sh with coturn/turnserver.conf:"
    show "$dir/turnserver.log"
    return
  fi
  if grep -qiE "bad configuration|unknown option|CONFIG ERROR" "$dir/turnserver.log"; then
    fail "coturn reports configuration errors:"
    show "$dir/turnserver.log"
  else
    pass "coturn 4.6 starts through coturn/entrypoint.sh with coturn/turnserver.conf"
  fi
  expect "the TURN secret is not on coturn's command line" \
    bash -c "! tr '\\0' ' ' </proc/$pid/cmdline | grep -qF -- '$secret'"
  expect "the completed coturn settings are readable by their owner only" \
    test "$(stat -c %a "$dir/run/turnserver.conf")" = 600

  # Valid credentials allocate a relay. The peer is a loopback address, which the
  # server must reject (403 Forbidden IP), so no packet leaves the relay.
  local username password
  read -r username password <<<"$(turn_credentials "$secret")"
  turnutils_uclient -p "$port" -u "$username" -w "$password" -n 1 -m 1 \
    -e 127.0.0.1 -r "$(free_port)" 127.0.0.1 >"$dir/good.log" 2>&1
  if grep -q "Cannot complete Allocation" "$dir/good.log"; then
    fail "coturn refuses credentials signed with its static-auth-secret:"
    show "$dir/good.log"
  else
    pass "coturn accepts credentials signed with its static-auth-secret"
  fi
  expect "coturn refuses to relay to a loopback peer" grep -q "403 (Forbidden IP)" "$dir/good.log"

  read -r username password <<<"$(turn_credentials "some-other-secret")"
  turnutils_uclient -p "$port" -u "$username" -w "$password" -n 1 -m 1 \
    -e 127.0.0.1 -r "$(free_port)" 127.0.0.1 >"$dir/bad.log" 2>&1
  expect "coturn refuses credentials signed with another secret" \
    grep -q "Cannot complete Allocation" "$dir/bad.log"
}

# janus

# Succeeds when a TCP socket listens on 127.0.0.1:$1 and none on another IPv4
# or IPv6 address of that port, going by /proc/net/tcp and /proc/net/tcp6.
listens_on_loopback_only() {
  local port_hex listeners
  port_hex="$(printf '%04X' "$1")"
  # Fields: slot, local address, remote address, state (0A is LISTEN).
  listeners="$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
    | awk -v port=":$port_hex" '$4 == "0A" && substr($2, length($2) - 4) == port { print $2 }')"
  [ -n "$listeners" ] && ! grep -qv '^0100007F:' <<<"$listeners"
}

# Sends a Janus API request ($2, JSON) to the HTTP transport at path $1.
janus_post() {
  curl -s --max-time 5 -H 'Content-Type: application/json' -d "$2" "$1"
}

# Runs janus/entrypoint.sh with the variables after $2 (NAME=VALUE) added to
# valid ones, and succeeds when it exits with an error that contains $2 before
# starting Janus. $1 is the folder for its output.
entrypoint_rejects() {
  local dir="$1" expected="$2" status=0
  shift 2
  mkdir -p "$dir"
  env JANUS_CONFIG_SOURCE=installers/janus JANUS_CONFIG_DIR="$dir/run" \
    JANUS_API_SECRET=check-deploy-janus-secret JANUS_ADMIN_KEY=check-deploy-admin-key \
    JANUS_WS_IP=127.0.0.1 JANUS_WS_SUBNET=127.0.0.0/24 JANUS_WS_IP_WAIT_SECS=0 "$@" \
    timeout 10 bash installers/janus/entrypoint.sh >"$dir/output" 2>&1 || status=$?
  if [ "$status" -ne 1 ] || ! grep -qF "$expected" "$dir/output"; then
    echo "    exit status $status, output:"
    show "$dir/output"
    return 1
  fi
}

# Runs coturn/entrypoint.sh with the variables after $2 (NAME=VALUE) added to
# valid ones, and succeeds when it exits with an error that contains $2 before
# starting coturn. $1 is the folder for its output.
coturn_entrypoint_rejects() {
  local dir="$1" expected="$2" status=0
  shift 2
  mkdir -p "$dir"
  env TURN_CONFIG_SOURCE=installers/coturn/turnserver.conf TURN_CONFIG_DIR="$dir/run" \
    TURN_SECRET=check-deploy-turn-secret TURN_REALM=chat.example.com "$@" \
    timeout 10 bash installers/coturn/entrypoint.sh >"$dir/output" 2>&1 || status=$?
  if [ "$status" -ne 1 ] || ! grep -qF "$expected" "$dir/output"; then
    echo "    exit status $status, output:"
    show "$dir/output"
    return 1
  fi
}

# Succeeds when process $1 is Janus and its command line contains none of the
# words after it.
command_line_lacks() {
  local command_line word
  command_line="$(tr '\0' ' ' <"/proc/$1/cmdline")" || return 1
  grep -qF -- "--configs-folder" <<<"$command_line" || return 1
  shift
  for word in "$@"; do
    if grep -qF -- "$word" <<<"$command_line"; then
      return 1
    fi
  done
}

# Sends a VideoRoom request ($3, JSON) on the handle path $1 with the API secret
# $2 and prints the reply.
videoroom_request() {
  janus_post "$1" "{\"janus\": \"message\", \"transaction\": \"v\", \"apisecret\": \"$2\", \"body\": $3}"
}

check_janus() {
  echo "== janus"
  if ! command -v janus >/dev/null 2>&1; then
    skip "janus: janus is not installed (Debian package janus)"
    return
  fi
  if ! command -v curl >/dev/null 2>&1; then
    skip "janus: curl is not installed"
    return
  fi

  # The entrypoint rejects what would leave Janus open or unusable.
  expect "janus/entrypoint.sh rejects a missing JANUS_ADMIN_KEY" \
    entrypoint_rejects "$WORK/janus-no-key" "JANUS_ADMIN_KEY is not set" JANUS_ADMIN_KEY=
  expect "janus/entrypoint.sh rejects the placeholder of .env.example" \
    entrypoint_rejects "$WORK/janus-placeholder" "placeholder" \
    JANUS_API_SECRET=CHANGE_ME_janus_api_secret
  expect "janus/entrypoint.sh rejects a subnet that ws_acl cannot limit exactly" \
    entrypoint_rejects "$WORK/janus-subnet" "JANUS_WS_SUBNET=10.1.2.0/24 is not" \
    JANUS_WS_SUBNET=10.1.2.0/24
  expect "janus/entrypoint.sh rejects a JANUS_WS_IP outside JANUS_WS_SUBNET" \
    entrypoint_rejects "$WORK/janus-outside" "outside JANUS_WS_SUBNET" JANUS_WS_IP=172.30.88.1 \
    JANUS_WS_SUBNET=172.30.89.0/24
  expect "janus/entrypoint.sh fails when no interface has JANUS_WS_IP" \
    entrypoint_rejects "$WORK/janus-absent" "no interface has the address" \
    JANUS_WS_IP=203.0.113.77 JANUS_WS_SUBNET=203.0.113.0/24

  # The configuration folder is a copy with other ports, so that the check does
  # not collide with a Janus on this machine. The entrypoint completes it as in
  # the image, with the loopback address in place of the janus network's gateway.
  local dir="$WORK/janus" http_port ws_port secret="check-deploy-janus-secret"
  local admin_key="check-deploy-admin-key"
  mkdir -p "$dir/conf"
  cp installers/janus/*.jcfg "$dir/conf/"
  http_port="$(free_port)"
  ws_port="$(free_port)"
  substitute "$dir/conf/janus.transport.http.jcfg" "s|port = 8088|port = $http_port|" 1 || {
    fail "janus: could not set the HTTP port"
    return
  }
  substitute "$dir/conf/janus.transport.websockets.jcfg" "s|ws_port = 8188|ws_port = $ws_port|" 1 || {
    fail "janus: could not set the WebSocket port"
    return
  }
  JANUS_CONFIG_SOURCE="$dir/conf" JANUS_CONFIG_DIR="$dir/run" JANUS_API_SECRET="$secret" \
    JANUS_ADMIN_KEY="$admin_key" JANUS_WS_IP=127.0.0.1 JANUS_WS_SUBNET=127.0.0.0/24 \
    bash installers/janus/entrypoint.sh >"$dir/janus.log" 2>&1 &
  local janus_pid=$!
  STARTED_PIDS+=("$janus_pid")

  local base="http://127.0.0.1:$http_port/janus"
  if ! wait_for_url "$base/info" 15; then
    fail "Janus did not answer $base/info within 15 s:"
    show "$dir/janus.log"
    return
  fi
  pass "Janus 1.1 starts through janus/entrypoint.sh with the files in janus/"
  expect "the Janus WebSocket transport starts" \
    grep -q "Websockets server started (port $ws_port)" "$dir/janus.log"
  expect "the Janus WebSocket transport listens on 127.0.0.1 only" \
    listens_on_loopback_only "$ws_port"
  expect "the Janus HTTP transport listens on 127.0.0.1 only" \
    listens_on_loopback_only "$http_port"
  expect "only the VideoRoom plugin is loaded" \
    test "$(grep -c "Loading plugin '" "$dir/janus.log")" = 1
  expect "the loaded plugin is VideoRoom" grep -q "Loading plugin 'libjanus_videoroom.so'" "$dir/janus.log"
  expect "the completed settings are readable by their owner only" \
    test "$(stat -c %a "$dir/run/"*.jcfg | sort -u)" = 600
  expect "the secrets are not on Janus's command line" \
    command_line_lacks "$janus_pid" "$secret" "$admin_key"

  local reply
  reply="$(janus_post "$base" '{"janus": "create", "transaction": "a"}')"
  expect "Janus refuses a request without the API secret" grep -q '"janus":"error"' <<<"$reply"
  reply="$(janus_post "$base" "{\"janus\": \"create\", \"transaction\": \"b\", \"apisecret\": \"$secret\"}")"
  local session handle
  session="$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' <<<"$reply")"
  expect "Janus creates a session with the API secret" test -n "$session"
  [ -n "$session" ] || return
  reply="$(janus_post "$base/$session" \
    "{\"janus\": \"attach\", \"plugin\": \"janus.plugin.videoroom\", \"transaction\": \"c\", \"apisecret\": \"$secret\"}")"
  expect "a session attaches to janus.plugin.videoroom" grep -q '"janus":"success"' <<<"$reply"
  handle="$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' <<<"$reply")"
  [ -n "$handle" ] || return

  # roomler-server creates rooms with a random numeric id and the admin key.
  local room=4503599627370495
  reply="$(videoroom_request "$base/$session/$handle" "$secret" \
    "{\"request\": \"create\", \"room\": $room, \"secret\": \"s\", \"admin_key\": \"$admin_key\"}")"
  expect "VideoRoom creates a room with a numeric id and the admin key" \
    grep -q "\"videoroom\":\"created\",\"room\":$room" <<<"$reply"
  reply="$(videoroom_request "$base/$session/$handle" "$secret" \
    "{\"request\": \"create\", \"room\": $((room - 1)), \"admin_key\": \"another-key\"}")"
  expect "VideoRoom refuses to create a room with another admin key" \
    grep -q '"error_code"' <<<"$reply"
  reply="$(videoroom_request "$base/$session/$handle" "$secret" \
    "{\"request\": \"destroy\", \"room\": $room, \"secret\": \"s\"}")"
  expect "VideoRoom destroys the room" grep -q '"videoroom":"destroyed"' <<<"$reply"
}

# systemd

check_systemd() {
  echo "== systemd"
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip "systemd: systemd-analyze is not installed (Debian package systemd)"
    return
  fi
  if [ ! -d /usr/lib/systemd/system ] && [ ! -d /lib/systemd/system ]; then
    skip "systemd: no system unit folder to verify against"
    return
  fi
  # verify checks that ExecStart exists and that the unit's dependencies load,
  # so it runs against a root with a stand-in binary and the system's units.
  local root="$WORK/systemd-root" units=/usr/lib/systemd/system
  [ -d "$units" ] || units=/lib/systemd/system
  mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
  cp -a "$units" "$root/usr/lib/systemd/system"
  printf '#!/bin/sh\n' >"$root/usr/local/bin/roomler-server"
  chmod 0755 "$root/usr/local/bin/roomler-server"
  cp installers/systemd/roomler.service "$root/etc/systemd/system/roomler.service"

  # verify exits 0 on unknown keys and only warns, so any output is a failure.
  if systemd-analyze verify --root="$root" roomler.service >"$WORK/verify.log" 2>&1 \
    && [ ! -s "$WORK/verify.log" ]; then
    pass "systemd-analyze verify accepts systemd/roomler.service"
  else
    fail "systemd-analyze verify reports problems in systemd/roomler.service:"
    show "$WORK/verify.log"
  fi

  # The exposure score runs from 0 (most confined) to 10, and --threshold takes
  # that score times ten.
  if systemd-analyze security --offline=yes --root="$root" --threshold=20 roomler.service \
    >"$WORK/security.log" 2>&1; then
    pass "systemd-analyze security: $(grep -o 'Overall exposure level.*' "$WORK/security.log")"
  else
    fail "systemd-analyze security rates the unit above 2.0:"
    show "$WORK/security.log"
  fi
}

# hadolint

check_dockerfiles() {
  echo "== Dockerfiles"
  if ! command -v hadolint >/dev/null 2>&1; then
    skip "hadolint: not installed (it has no Debian package)"
    return
  fi
  local dockerfile
  for dockerfile in installers/Dockerfile installers/janus/Dockerfile installers/coturn/Dockerfile; do
    # DL3008 requires pinned apt package versions, which break the build once a
    # Debian security update replaces the pinned version.
    if hadolint --ignore DL3008 "$dockerfile" >"$WORK/hadolint.log" 2>&1; then
      pass "hadolint accepts $dockerfile"
    else
      fail "hadolint reports problems in $dockerfile:"
      show "$WORK/hadolint.log"
    fi
  done
}

check_nginx_syntax
check_nginx_live
check_compose
check_coturn
check_janus
check_systemd
check_dockerfiles

echo "check-deploy: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
