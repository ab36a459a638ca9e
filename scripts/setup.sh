#!/usr/bin/env bash
# Installs what the build and the tests need, when it is missing: the wasm32 target, wasm-pack,
# the wasm-bindgen CLI matching Cargo.lock, Debian's Chromium and ChromeDriver, and the npm
# packages. Every step is skipped when its tool is already there, so a second run is fast.
# See shared toolchain notes: no wasm-opt from GitHub (wasm-opt is disabled in the crate), and
# wasm-bindgen-cli is installed unlocked when --locked fails on the registry mirror.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== setup: %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

WASM_PACK_VERSION=0.15.1
if ! wasm-pack --version 2>/dev/null | grep -qx "wasm-pack $WASM_PACK_VERSION"; then
  step "cargo install wasm-pack $WASM_PACK_VERSION (about 2 minutes)"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
fi

WBG_VERSION=$(awk '$0=="name = \"wasm-bindgen\""{getline; gsub(/"/,"",$3); print $3}' Cargo.lock)
if [ -n "$WBG_VERSION" ] && ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $WBG_VERSION"; then
  step "cargo install wasm-bindgen-cli $WBG_VERSION (2 to 4 minutes)"
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --locked \
    || cargo install wasm-bindgen-cli --version "$WBG_VERSION"
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  step "apt-get install chromium chromium-driver (about 30 seconds)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# nginx for the scale-out test (wisp-server/tests/scale_out.rs, run by npm run stress); the test
# starts its own instance with its own config, so the Debian service is never started.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  step "apt-get install nginx (about 10 seconds)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # RUNLEVEL=1 keeps the package from starting the system service on port 80.
  $SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi

if grep -qE '"(dev)?[dD]ependencies"' package.json \
  && { [ ! -d node_modules ] || [ package.json -nt node_modules ]; }; then
  step "npm install"
  npm install --no-fund --no-audit --silent
  touch node_modules
fi

# The published peers for the interop tests, at the exact versions their manifests pin.
if [ ! -d interop/node_modules ] || [ interop/package.json -nt interop/node_modules ]; then
  step "npm install in interop/ (published Wisp peers)"
  (cd interop && npm install --no-fund --no-audit --silent)
  touch interop/node_modules
fi
if [ ! -x interop/.venv/bin/python ] || [ interop/requirements.txt -nt interop/.venv ]; then
  step "python venv for interop/ (wisp-python)"
  python3 -m venv interop/.venv
  interop/.venv/bin/pip install --quiet -r interop/requirements.txt
  touch interop/.venv
fi
