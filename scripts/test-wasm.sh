#!/usr/bin/env bash
# Browser tests of wisp-wasm: builds wisp-server, starts it (three instances: open, with
# authentication, and one the tests kill) and loopback targets, then runs
# `wasm-pack test --headless --chrome` against them. Everything binds 127.0.0.1 port 0 and is
# killed on exit.
#
# Needs: the wasm32-unknown-unknown target, wasm-pack 0.15.1, wasm-bindgen-cli matching the
# `wasm-bindgen` version in Cargo.lock, chromium + chromedriver, node >= 18.
# Honours CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building wisp-server"
cargo build -q -p wisp-server
SERVER_BIN=$TARGET_DIR/debug/wisp-server

# Waits for "listening" in a server log and prints the port.
server_port() {
  local log=$1
  for _ in $(seq 200); do
    if grep -q 'listening' "$log"; then
      sed -n 's/.*listening.*addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1
      return 0
    fi
    sleep 0.05
  done
  echo "wisp-server did not start; log:" >&2
  cat "$log" >&2
  return 1
}

start_server() {
  local name=$1 config=$2
  NO_COLOR=1 RUST_LOG=${WISP_SERVER_LOG:-info} "$SERVER_BIN" --config "$config" \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
}

base_config() {
  cat <<EOF
[server]
bind = "127.0.0.1:0"

[wisp]
motd = "hello from wisp-server"

[policy]
allow_loopback = true
block_hosts = ["blocked.test"]

[limits]
max_connections_per_ip = 512
max_streams_per_connection = 512
EOF
}

# The server the "server goes away" test kills: started first so that the targets helper knows
# its process ID.
base_config >"$WORK/doomed.toml"
start_server doomed "$WORK/doomed.toml"
DOOMED_PID=$LAST_PID

echo "== starting loopback targets"
node wisp-wasm/tests-support/targets.mjs "$DOOMED_PID" >"$WORK/targets.json" 2>"$WORK/targets.err" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/targets.json" ] && break; sleep 0.05; done
TARGETS=$(head -1 "$WORK/targets.json")
field() { node -e "process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))" "$TARGETS" "$1"; }

base_config >"$WORK/open.toml"
start_server open "$WORK/open.toml"

{
  base_config
  cat <<EOF

[auth]
required = true
authorized_keys = ["$(field pubkey)"]

[auth.users]
alice = "correct horse"
EOF
} >"$WORK/auth.toml"
start_server auth "$WORK/auth.toml"

WISP_URL="ws://127.0.0.1:$(server_port "$WORK/open.log")/"
WISP_AUTH_URL="ws://127.0.0.1:$(server_port "$WORK/auth.log")/"
WISP_DOOMED_URL="ws://127.0.0.1:$(server_port "$WORK/doomed.log")/"
export WISP_URL WISP_AUTH_URL WISP_DOOMED_URL
export WISP_ECHO_PORT=$(field echo)
export WISP_SOURCE_PORT=$(field source)
export WISP_UDP_PORT=$(field udp)
export WISP_REFUSED_PORT=$(field refused)
export WISP_CONTROL_URL="http://127.0.0.1:$(field control)"
export WISP_KEY_SEED=$(field seed)
echo "== servers: open $WISP_URL auth $WISP_AUTH_URL doomed $WISP_DOOMED_URL"
echo "== targets: $TARGETS"

export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
export WASM_BINDGEN_TEST_WEBDRIVER_JSON=${WASM_BINDGEN_TEST_WEBDRIVER_JSON:-$ROOT/wisp-wasm/webdriver.json}
echo "== wasm-pack test"
status=0
timeout 900 wasm-pack test --headless --chrome --mode no-install wisp-wasm --test web "$@" \
  2>&1 | tee "$WORK/test.log" || status=$?

if [ "$status" -ne 0 ]; then
  for name in open auth doomed; do
    echo "---- wisp-server $name log (last 40 lines)"
    tail -40 "$WORK/$name.log"
  done
fi
echo "== wasm tests: $(grep -E '^test result:' "$WORK/test.log" | tail -1)"
exit "$status"
