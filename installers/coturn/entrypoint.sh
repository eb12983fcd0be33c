#!/bin/bash
# Starts coturn with the settings in coturn/turnserver.conf and the values that
# differ per deployment, which come from the environment:
#
#   TURN_SECRET          required: the static-auth-secret that TURN credentials
#                        are signed with (roomler-server's TURN_SECRET)
#   TURN_REALM           required: the realm, the domain of the Roomler server
#   TURN_EXTERNAL_IP     optional: PUBLIC or PUBLIC/PRIVATE, the public address of
#                        a host behind a 1:1 NAT
#   TURN_CONFIG_SOURCE   the settings file; default /etc/coturn/turnserver.conf
#   TURN_CONFIG_DIR      where the completed copy goes; default /run/coturn
#
# The script writes the values into a copy of the file that only its user can
# read, then replaces itself with turnserver. So the secret stays off the command
# line, which every user of the host can read with ps. Arguments are passed on to
# turnserver.
set -euo pipefail

source_file="${TURN_CONFIG_SOURCE:-/etc/coturn/turnserver.conf}"
config_dir="${TURN_CONFIG_DIR:-/run/coturn}"

fail() {
  echo "coturn-entrypoint: $*" >&2
  exit 1
}

# Prints the value of the variable $1, failing when it is unset, empty, still
# the placeholder of .env.example, or has a character that would end a line of
# turnserver.conf early.
require() {
  local name="$1" value="${!1:-}"
  [ -n "$value" ] || fail "$name is not set; set it in the environment (compose takes it from .env)"
  [[ "$value" != CHANGE_ME* ]] \
    || fail "$name is still the placeholder of .env.example; replace it, e.g. with \`openssl rand -hex 32\`"
  [[ "$value" =~ ^[A-Za-z0-9._~+/=:-]+$ ]] \
    || fail "$name contains a character other than letters, digits and ._~+/=:-"
  printf '%s' "$value"
}

secret="$(require TURN_SECRET)"
realm="$(require TURN_REALM)"
external_ip="${TURN_EXTERNAL_IP:-}"
if [ -n "$external_ip" ]; then
  external_ip="$(require TURN_EXTERNAL_IP)"
fi

umask 077
mkdir -p "$config_dir"
config="$config_dir/turnserver.conf"
cp "$source_file" "$config"
{
  printf 'static-auth-secret=%s\n' "$secret"
  printf 'realm=%s\n' "$realm"
  if [ -n "$external_ip" ]; then
    printf 'external-ip=%s\n' "$external_ip"
  fi
} >>"$config"

echo "coturn-entrypoint: starting coturn for the realm $realm" >&2
exec turnserver -c "$config" "$@"
