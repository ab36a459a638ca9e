#!/usr/bin/env bash
# `npm start`: installs what is missing, builds the wasm package (into www/pkg) and wisp-server
# (release), starts the demo's loopback targets and wisp-server serving www/ on 127.0.0.1, prints
# the URL to open and runs until Ctrl-C, which stops everything.
#
# Environment: PORT (default 4000; if it is taken, a free port is used), CARGO_TARGET_DIR
# (default target/), SKIP_SETUP=1 to skip scripts/setup.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
PORT=${PORT:-4000}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${SKIP_SETUP:-0}" != 1 ]; then
  say "checking the toolchain (scripts/setup.sh; the first run installs wasm-pack and friends)"
  bash scripts/setup.sh
fi

say "building the wasm package (wasm-pack --target web -> www/pkg)"
if ! wasm-pack build --target web --mode no-install --release --out-dir ../www/pkg wisp-wasm; then
  echo "wasm-pack build failed" >&2
  exit 1
fi

say "building wisp-server (release)"
cargo build --release -p wisp-server
SERVER_BIN=$TARGET_DIR/release/wisp-server

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f www/targets.json
  # Chromium may still be writing its profile as it dies; a leftover temp dir is no failure.
  rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM

say "starting the demo targets (TCP echo, chargen, discard; UDP echo)"
node www/targets.mjs --out www/targets.json >"$WORK/targets.json" 2>"$WORK/targets.err" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/targets.json" ] && break; sleep 0.05; done
[ -s "$WORK/targets.json" ] || { cat "$WORK/targets.err" >&2; echo "targets did not start" >&2; exit 1; }
echo "targets: $(head -1 "$WORK/targets.json")"

# Starts wisp-server on $1 and sets SERVER_PID; SERVER_PORT is its port, or empty if it did not
# come up.
start_server() {
  local bind=$1 log=$WORK/server.log
  : >"$log"
  NO_COLOR=1 "$SERVER_BIN" --config www/demo.toml --static-dir www --bind "$bind" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_PORT=
  for _ in $(seq 200); do
    if grep -q 'listening' "$log"; then
      SERVER_PORT=$(sed -n 's/.*listening.*addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || return 0
    sleep 0.05
  done
}

say "starting wisp-server --config www/demo.toml --static-dir www"
start_server "127.0.0.1:$PORT"
if [ -z "$SERVER_PORT" ]; then
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  echo "port $PORT is not available; using a free port"
  start_server "127.0.0.1:0"
fi
PIDS+=("$SERVER_PID")
[ -n "$SERVER_PORT" ] || { cat "$WORK/server.log" >&2; echo "wisp-server did not start" >&2; exit 1; }

tail -n +1 -f "$WORK/server.log" &
PIDS+=($!)
sleep 0.2
printf '\n\033[1;32m  Open http://127.0.0.1:%s/ in your browser.\033[0m   (Ctrl-C stops the server and the targets)\n\n' "$SERVER_PORT"

wait "$SERVER_PID" || true
