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

# shellcheck source=lib/browser-test-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/browser-test-env.sh"

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
export WISP_NOECHO_PORT=$(field noecho)
export WISP_KEY_SEED=$(field seed)
echo "== servers: open $WISP_URL auth $WISP_AUTH_URL doomed $WISP_DOOMED_URL"
echo "== targets: $TARGETS"

export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
export WASM_BINDGEN_TEST_WEBDRIVER_JSON=${WASM_BINDGEN_TEST_WEBDRIVER_JSON:-$ROOT/wisp-wasm/webdriver.json}
echo "== wasm-pack test"
status=0
timeout 900 wasm-pack test --headless --chrome --mode no-install wisp-wasm --test web "$@" \
  2>&1 | tee "$WORK/test.log" || status=$?

# The npm package from plain JavaScript: build the `web` target, serve it with a page that
# imports it, and read the page's verdict from headless Chromium.
page_result="skipped"
if [ "$status" -eq 0 ]; then
  echo "== package check: wasm-pack build --target web, plain page in headless Chromium"
  wasm-pack build --target web --mode no-install wisp-wasm >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
  SITE=$WORK/site
  mkdir -p "$SITE"
  cp -r wisp-wasm/pkg "$SITE/pkg"
  cp wisp-wasm/tests-support/page/index.html "$SITE/"
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$SITE" >"$WORK/http.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q 'port [0-9]' "$WORK/http.log" && break; sleep 0.05; done
  HTTP_PORT=$(grep -o 'port [0-9]*' "$WORK/http.log" | head -1 | awk '{print $2}')
  PAGE_URL="http://127.0.0.1:$HTTP_PORT/?ws=$WISP_URL&echo=$WISP_ECHO_PORT&refused=$WISP_REFUSED_PORT&report=$WISP_CONTROL_URL/report"
  # The page POSTs its verdict to the targets helper, which prints it as `REPORT ...`.
  "${CHROMIUM:-chromium}" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/profile" "$PAGE_URL" >"$WORK/chromium.log" 2>&1 &
  CHROMIUM_PID=$!
  PIDS+=($CHROMIUM_PID)
  page_result="no report within 60 s"
  for _ in $(seq 600); do
    if grep -q '^REPORT ' "$WORK/targets.err"; then
      page_result=$(sed -n 's/^REPORT //p' "$WORK/targets.err" | head -1)
      break
    fi
    sleep 0.1
  done
  kill "$CHROMIUM_PID" 2>/dev/null || true
  echo "page: $page_result"
  expected="OK version=2.0 motd=hello from wisp-server echo=same refused=0x44"
  if [ "$page_result" != "$expected" ]; then
    echo "package check FAILED: expected \"$expected\"" >&2
    status=1
  fi
fi

if [ "$status" -ne 0 ]; then
  for name in open auth doomed; do
    echo "---- wisp-server $name log (last 40 lines)"
    tail -40 "$WORK/$name.log"
  done
fi
echo "== wasm tests: $(grep -E '^test result:' "$WORK/test.log" | tail -1)"
echo "== package check: ${page_result:-no result}"
exit "$status"
