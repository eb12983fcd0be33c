# Shared helpers of the set-up scripts; sourced, not run.

# Build output outside the checkout, so that a fresh clone rebuilds incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/roomler-target}"

# Size bounds for the build output, in GiB: above the first, or with less free disk
# than the second, the output is removed before building. Each commit leaves
# artifacts behind that later builds never reuse, so without a bound the folder
# grows until the disk is full.
ROOMLER_TARGET_MAX_GIB="${ROOMLER_TARGET_MAX_GIB:-30}"
ROOMLER_MIN_FREE_GIB="${ROOMLER_MIN_FREE_GIB:-15}"

# Removes stale build output when the folder is too large or the disk too full, and
# stops with a clear message when even an empty folder would leave too little room.
bound_target_dir() {
  local dir="$CARGO_TARGET_DIR"
  mkdir -p "$dir"
  local gib=$((1024 * 1024))
  local used_kib free_kib
  used_kib=$(du -sk "$dir" | cut -f1)
  free_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  if [ "$used_kib" -le $((ROOMLER_TARGET_MAX_GIB * gib)) ] \
    && [ "$free_kib" -ge $((ROOMLER_MIN_FREE_GIB * gib)) ]; then
    return 0
  fi
  echo "Build output in $dir: $((used_kib / gib)) GiB, $((free_kib / gib)) GiB free on its disk;" \
    "removing it (bounds: ${ROOMLER_TARGET_MAX_GIB} GiB used, ${ROOMLER_MIN_FREE_GIB} GiB free)."
  # Keep the folder itself, because its CACHEDIR.TAG marks it for backup tools to skip.
  find "$dir" -mindepth 1 -maxdepth 1 ! -name CACHEDIR.TAG -exec rm -rf {} +
  free_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  if [ "$free_kib" -lt $((ROOMLER_MIN_FREE_GIB * gib)) ]; then
    echo "Only $((free_kib / gib)) GiB free on the disk of $dir after removing the build output;" \
      "a full build needs about ${ROOMLER_MIN_FREE_GIB} GiB. Free some space or set" \
      "CARGO_TARGET_DIR to a folder on a larger disk." >&2
    return 1
  fi
}

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
  # Packaged services (nginx, Redis, Janus, coturn) must not start on install: the
  # tests start their own on loopback. policy-rc.d exit 101 is Debian's way to say so.
  local policy=/usr/sbin/policy-rc.d
  local own_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    own_policy=yes
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "$own_policy" = yes ]; then
    $sudo rm -f "$policy"
  fi
}

# What building the workspace needs: a C compiler for SQLite and pkg-config.
install_build_packages() {
  # libdbus-1-dev: the client keeps tokens in the Secret Service keyring over D-Bus.
  # The WebKitGTK, GTK, libsoup, librsvg and appindicator headers: the Tauri desktop app.
  # The media crate: ALSA for cpal, libopus, libvpx, WebRTC's audio processing 0.3,
  # and libclang for the bindgen runs of env-libvpx-sys and the V4L2 bindings.
  install_packages build-essential pkg-config ca-certificates curl libdbus-1-dev \
    libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev \
    librsvg2-dev libayatana-appindicator3-dev \
    libasound2-dev libopus-dev libvpx-dev libwebrtc-audio-processing-dev libclang-dev
}

# Services the tests start themselves: Redis for the scale-out bus; nginx, openssl,
# Janus and coturn for installers/check-deploy.sh.
install_test_packages() {
  local had_nginx=yes
  dpkg-query -W -f='${Status}' nginx 2>/dev/null | grep -q "install ok installed" || had_nginx=no
  # iproute2: the call tests put Janus in a network namespace with a veth pair;
  # nftables: the loss tests drop packets at random inside that namespace.
  # xvfb and webkit2gtk-driver (WebKitWebDriver): the desktop app's end-to-end tests;
  # fonts-noto-color-emoji, without which WebKit draws emoji as empty boxes.
  install_packages redis-server nginx openssl janus coturn iproute2 nftables xvfb \
    webkit2gtk-driver fonts-noto-color-emoji
  # A newly installed nginx serves a default site on port 80, and the tests start
  # their own nginx.
  if [ "$had_nginx" = no ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
  # Where systemd runs, keep the packaged services off; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then
    local service
    for service in redis-server janus coturn; do
      systemctl disable --now "$service" >/dev/null 2>&1 || true
    done
  fi
}

# Version of tauri-driver, the WebDriver server in front of WebKitWebDriver that the
# desktop app's end-to-end tests use.
TAURI_DRIVER_VERSION=2.1.0

# Installs the cargo tools the tests need into CARGO_HOME, once: a second run finds the
# installed version in `cargo install --list` and does not build or contact the registry.
install_test_tools() {
  local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  if cargo install --list 2>/dev/null | grep -q "^tauri-driver v$TAURI_DRIVER_VERSION:"; then
    return 0
  fi
  echo "Installing tauri-driver $TAURI_DRIVER_VERSION into $cargo_home/bin"
  # Its own temporary target folder, so the tool's release build does not share the
  # workspace's and its dependencies do not fill that folder.
  env -u CARGO_TARGET_DIR cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked
}
