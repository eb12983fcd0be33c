#!/usr/bin/env bash
# Builds the desktop app's installers with the Tauri CLI from ui/node_modules:
# .deb and AppImage on Linux, .msi on Windows, .app and .dmg on macOS. The per-platform
# settings are in installers/desktop/. Arguments go to `tauri build`, e.g. `--bundles deb`.
#
# ROOMLER_DEFAULT_SERVER_URL, when set, is the server URL that the built app's sign-in
# form offers (see installers/desktop/desktop.toml.example for the run-time setting).
# The bundles land in $CARGO_TARGET_DIR/release/bundle/.
set -euo pipefail
cd "$(dirname "$0")/.."
source installers/lib.sh

case "$(uname -s)" in
  Linux) platform_config=linux.json ;;
  Darwin) platform_config=macos.json ;;
  MINGW* | MSYS* | CYGWIN*) platform_config=windows.json ;;
  *)
    echo "build-desktop.sh: no installer settings for $(uname -s); expected Linux, macOS or Windows" >&2
    exit 2
    ;;
esac

if [ ! -x ui/node_modules/.bin/tauri ]; then
  npm --prefix ui ci --no-audit --no-fund
fi
# The release binary embeds ui/dist.
npm --prefix ui run build

cd desktop/app
# The Tauri CLI turns on tauri/custom-protocol by itself, but not the app's own feature,
# which `roomler-desktop --version` reports.
../../ui/node_modules/.bin/tauri build --ci --features custom-protocol \
  --config "../../installers/desktop/$platform_config" "$@"
