#!/usr/bin/env bash
# Interop tests with the published JavaScript Wisp implementations (the Rust ones run under
# `cargo test --workspace`): builds our wisp-server and our wasm package, then runs
# interop/js/run.mjs, which starts everything on 127.0.0.1 port 0 (each child in its own process
# group, killed on exit), runs the wisp-js client in node and the browser clients (wisp-js,
# epoxy-tls 1.5 and 2.1, libcurl.js, our wasm client against the peer servers) in headless
# Chromium, writes interop/results/js.json and renders interop/compat-table.md from every
# results file present. Ends with `interop: N passed, N failed`.
#
# Needs: node >= 18, chromium (Debian's), wasm-pack and wasm-bindgen-cli as scripts/setup.sh
# installs them, interop/node_modules and interop/.venv (scripts/setup.sh). Honours
# CARGO_TARGET_DIR. Extra arguments: none; INTEROP_ONLY=case,case narrows the run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR

fail() { echo "$1" >&2; echo "interop: 0 passed, 1 failed"; exit 1; }

echo "== building wisp-server"
cargo build -q -p wisp-server || fail "building wisp-server failed"
export WISP_SERVER_BIN=$TARGET_DIR/debug/wisp-server

echo "== building the wasm package (wasm-pack build --target web)"
PKG_DIR=pkg-interop
wasm-pack build --target web --mode no-install --out-dir "$PKG_DIR" wisp-wasm >"$TARGET_DIR/wasm-pack-interop.log" 2>&1 \
  || { cat "$TARGET_DIR/wasm-pack-interop.log"; fail "building the wasm package failed"; }
export WISP_WASM_PKG=$ROOT/wisp-wasm/$PKG_DIR

status=0
(cd interop && timeout 900 node js/run.mjs) || status=$?
node interop/render-table.mjs || status=1
exit "$status"
