#!/bin/bash
# Starts Janus with the settings in janus/*.jcfg and the values that differ per
# deployment, which come from the environment:
#
#   JANUS_API_SECRET       required: the api_secret that every Janus API request
#                          must carry (roomler-server's ROOMLER_JANUS_API_SECRET)
#   JANUS_ADMIN_KEY        required: the VideoRoom admin_key that creating a room
#                          needs (roomler-server's ROOMLER_JANUS_ADMIN_KEY)
#   JANUS_WS_IP            required: the IPv4 address the WebSocket API listens on
#   JANUS_WS_SUBNET        required: the /24 subnet, e.g. 172.30.88.0/24, whose
#                          addresses may connect to the WebSocket API (ws_acl)
#   JANUS_NAT_1_1_MAPPING  optional: the public address of a host behind a 1:1 NAT
#   JANUS_CONFIG_SOURCE    the folder of the *.jcfg files; default /etc/janus
#   JANUS_CONFIG_DIR       where the completed copy goes; default /run/janus
#   JANUS_WS_IP_WAIT_SECS  how long to wait for JANUS_WS_IP to appear on an
#                          interface; default 60
#
# Janus reads the VideoRoom admin_key only from its configuration file, so the
# script writes every value into a copy of the files that only its user can
# read, then replaces itself with Janus. The secrets stay off the command line,
# which every user of the host can read with ps.
set -euo pipefail

source_dir="${JANUS_CONFIG_SOURCE:-/etc/janus}"
config_dir="${JANUS_CONFIG_DIR:-/run/janus}"
wait_secs="${JANUS_WS_IP_WAIT_SECS:-60}"

fail() {
  echo "janus-entrypoint: $*" >&2
  exit 1
}

[[ "$wait_secs" =~ ^[0-9]+$ ]] || fail "JANUS_WS_IP_WAIT_SECS=$wait_secs is not a number of seconds"

# Prints the value of the variable $1, failing when it is unset or empty, or
# when it has a character that a libconfig string would need to escape.
require() {
  local name="$1" value="${!1:-}"
  [ -n "$value" ] || fail "$name is not set; set it in the environment (compose takes it from .env)"
  [[ "$value" != CHANGE_ME* ]] \
    || fail "$name is still the placeholder of .env.example; replace it, e.g. with \`openssl rand -hex 32\`"
  [[ "$value" =~ ^[A-Za-z0-9._~+/=:-]+$ ]] \
    || fail "$name contains a character other than letters, digits and ._~+/=:-; use e.g. \`openssl rand -hex 32\`"
  printf '%s' "$value"
}

api_secret="$(require JANUS_API_SECRET)"
admin_key="$(require JANUS_ADMIN_KEY)"
ws_ip="$(require JANUS_WS_IP)"
ws_subnet="$(require JANUS_WS_SUBNET)"
nat_mapping="${JANUS_NAT_1_1_MAPPING:-}"
if [ -n "$nat_mapping" ]; then
  nat_mapping="$(require JANUS_NAT_1_1_MAPPING)"
fi

# Janus allows a WebSocket client when the ws_acl entry occurs anywhere in the
# client's address (strstr in transports/janus_websockets.c of Janus 1.1). The
# entry "A.B.C." of a /24 can only occur at the start of an address when A has
# three digits, so only such subnets are accepted: "10.1.2." would also match
# 110.1.2.9.
octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
three_digit_octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9])'
[[ "$ws_subnet" =~ ^($three_digit_octet\.$octet\.$octet\.)0/24$ ]] \
  || fail "JANUS_WS_SUBNET=$ws_subnet is not a /24 subnet whose first number is 100 to 255, e.g. 172.30.88.0/24; Janus's ws_acl cannot limit other subnets exactly"
ws_acl="${BASH_REMATCH[1]}"
[[ "$ws_ip" =~ ^$octet\.$octet\.$octet\.$octet$ ]] \
  || fail "JANUS_WS_IP=$ws_ip is not an IPv4 address"
[[ "$ws_ip" == "$ws_acl"* ]] \
  || fail "JANUS_WS_IP=$ws_ip is outside JANUS_WS_SUBNET=$ws_subnet"

# Returns whether $1 is an address of this network namespace: a loopback
# address, or one that `hostname -I` lists (the addresses of the interfaces that
# are up, loopback excluded).
has_address() {
  [[ "$1" == 127.* ]] && return 0
  local address
  for address in $(hostname -I); do
    [ "$address" = "$1" ] && return 0
  done
  return 1
}

# The address belongs to the bridge of a compose network, which Docker creates
# before it starts containers, but a Janus started alone (`docker compose up
# janus`) or restarted after `docker compose down` may come first. Without the
# address Janus would run without its WebSocket API, so the script waits and
# then fails, which makes Docker restart the container.
waited=0
until has_address "$ws_ip"; do
  if [ "$waited" -ge "$wait_secs" ]; then
    fail "no interface has the address JANUS_WS_IP=$ws_ip after $wait_secs s; start the whole compose project, which creates the janus network and its gateway $ws_ip"
  fi
  if [ "$waited" -eq 0 ]; then
    echo "janus-entrypoint: waiting for an interface with the address $ws_ip" >&2
  fi
  sleep 1
  waited=$((waited + 1))
done

# Sets KEY ($2) to the string VALUE ($3) in the copy of FILE ($1), on the one
# line that sets it or has it commented out. Fails unless exactly one line
# does, so that a changed template cannot leave a value unset.
set_value() {
  local file="$config_dir/$1" key="$2" value="$3" pattern count
  pattern="^[[:space:]]*#?$key = "
  count="$(grep -cE "$pattern" "$file" || true)"
  [ "$count" = 1 ] \
    || fail "expected one line that sets $key in $source_dir/$1, found $count"
  sed -i -E "s|$pattern.*\$|\t$key = \"$value\"|" "$file"
}

umask 077
mkdir -p "$config_dir"
rm -f "$config_dir"/*.jcfg
cp "$source_dir"/*.jcfg "$config_dir"/
set_value janus.jcfg api_secret "$api_secret"
if [ -n "$nat_mapping" ]; then
  set_value janus.jcfg nat_1_1_mapping "$nat_mapping"
fi
set_value janus.plugin.videoroom.jcfg admin_key "$admin_key"
set_value janus.transport.websockets.jcfg ws_ip "$ws_ip"
set_value janus.transport.websockets.jcfg ws_acl "$ws_acl"

echo "janus-entrypoint: starting Janus; its WebSocket API listens on $ws_ip for clients in $ws_subnet" >&2
exec janus --configs-folder="$config_dir" --config="$config_dir/janus.jcfg" "$@"
