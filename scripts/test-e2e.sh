#!/usr/bin/env bash
# Browser end-to-end tests of the demo page: builds the wasm package into www/pkg and
# wisp-server (release, as `npm start` does), starts the demo targets and
# `wisp-server --config www/demo.toml --static-dir www` on 127.0.0.1 port 0, and drives the page
# in headless Chromium with playwright-core (www/tests/e2e.mjs). Saves www/tests/output/screenshot.png.
# Ends with `e2e: N passed, N failed`; every process started here is stopped on exit.
#
# Honours CARGO_TARGET_DIR and CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

# shellcheck source=lib/browser-test-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/browser-test-env.sh"
trap 'exit 130' INT TERM

fail_setup() {
  echo "$*" >&2
  echo "e2e: 0 passed, 1 failed"
  exit 1
}

if [ ! -d node_modules/playwright-core ]; then
  echo "== npm install (playwright-core)"
  npm install --no-fund --no-audit --silent
fi

echo "== building the wasm package (www/pkg)"
wasm-pack build --target web --mode no-install --release --out-dir ../www/pkg wisp-wasm \
  >"$WORK/wasm-pack.log" 2>&1 || { cat "$WORK/wasm-pack.log"; fail_setup "wasm-pack build failed"; }
echo "== building wisp-server (release)"
cargo build -q --release -p wisp-server || fail_setup "cargo build failed"
SERVER_BIN=$TARGET_DIR/release/wisp-server

echo "== starting the demo targets"
node www/targets.mjs >"$WORK/targets.json" 2>"$WORK/targets.err" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/targets.json" ] && break; sleep 0.05; done
[ -s "$WORK/targets.json" ] || { cat "$WORK/targets.err" >&2; fail_setup "targets did not start"; }
TARGETS=$(head -1 "$WORK/targets.json")
echo "   $TARGETS"

echo "== starting wisp-server --config www/demo.toml --static-dir www --bind 127.0.0.1:0"
NO_COLOR=1 "$SERVER_BIN" --config www/demo.toml --static-dir www --bind 127.0.0.1:0 \
  >"$WORK/server.log" 2>&1 &
PIDS+=($!)
PORT=
for _ in $(seq 200); do
  PORT=$(sed -n 's/.*listening.*addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || { cat "$WORK/server.log" >&2; fail_setup "wisp-server did not start"; }

QUERY=$(node -e 'const t=JSON.parse(process.argv[1]); process.stdout.write(new URLSearchParams(t).toString())' "$TARGETS")
export E2E_URL="http://127.0.0.1:$PORT/?$QUERY"
export E2E_TARGETS=$TARGETS
echo "== page: $E2E_URL"

status=0
timeout 300 node www/tests/e2e.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "---- wisp-server log (last 40 lines)"
  tail -40 "$WORK/server.log"
  if [ "$status" -eq 124 ]; then echo "e2e: 0 passed, 1 failed (timed out)"; fi
fi
exit "$status"
