# Shared helpers of the set-up scripts; sourced, not run.

# Build output outside the checkout, so that a fresh clone rebuilds incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/roomler-target}"

# Installs the Debian packages given as arguments that are not installed yet.
install_packages() {
  local missing=()
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "Installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What building the workspace needs: a C compiler for SQLite and pkg-config.
install_build_packages() {
  install_packages build-essential pkg-config ca-certificates curl
}

# Services the tests start themselves: Redis for the scale-out bus.
install_test_packages() {
  install_packages redis-server
  # The package starts a system Redis on port 6379; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
}
