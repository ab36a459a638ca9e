#!/usr/bin/env bash
# npm run bench: the whole benchmark set in bounded time (about 10 minutes), written to
# bench/results.md (the tables) and bench/results.jsonl (one JSON object per measurement).
#
# 1. matrix: our wisp-server and the published peers (wisp-js, wisp-server-node, wisp-python
#    from interop/, installed by scripts/setup.sh), the WispMark columns (1, 10, 5x10 streams),
#    beside a plain TCP relay and the echo target itself, plus the wisp-js node client against
#    our server; two interleaved rounds.
# 2. memory: our server's RSS per idle connection and per open stream (1,000 of each).
# 3. browser: our wasm client, the wisp-js browser client and the epoxy-tls wasm client (1.5.0,
#    npm latest, and the 2.1.19-1 prerelease; the pinned copies in interop/node_modules, which
#    scripts/setup.sh installs) in headless Chromium, beside a plain WebSocket (skipped when
#    wasm-pack or chromium is missing). All run against one default wisp-server.
#
# Everything listens on 127.0.0.1 port 0 and every process started is killed on exit.
# Honours CARGO_TARGET_DIR. BENCH_DURATION / BENCH_ROUNDS shorten or lengthen the matrix.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
DURATION=${BENCH_DURATION:-3}
ROUNDS=${BENCH_ROUNDS:-2}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== building wisp-server and wisp-bench (release)" >&2
cargo build --release -q -p wisp-server -p wisp-bench
BENCH=$TARGET_DIR/release/wisp-bench
SERVER=$TARGET_DIR/release/wisp-server

OUT=bench/results.md
JSON=bench/results.jsonl
: >"$JSON"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
{
  echo "# wisp-bench results"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?'):" \
    "$(nproc) cores ($cpu), $mem, load average before the run $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Everything (load client, servers, echo target, browser) runs on this one machine;"
  echo "subjects are interleaved round by round, so a busy machine slows them alike, but the"
  echo "figures stay noisy: compare ratios within one run, not absolute figures across runs."
  echo
} >"$OUT"

echo "== matrix" >&2
timeout 480 "$BENCH" --json "$JSON" matrix --server-bin "$SERVER" \
  --duration "$DURATION" --warmup 1 --rounds "$ROUNDS" --latency-streams 300 | tee -a "$OUT"

echo "== memory" >&2
timeout 120 "$BENCH" --json "$JSON" memory --server-bin "$SERVER" --count 1000 | tee -a "$OUT"

if command -v wasm-pack >/dev/null && command -v "${CHROMIUM:-chromium}" >/dev/null; then
  echo "== browser: building the wasm client" >&2
  if wasm-pack build --target web --mode no-install --release --out-dir "$WORK/pkg" wisp-wasm \
    >"$WORK/wasm-pack.log" 2>&1; then
    timeout 420 "$BENCH" --json "$JSON" browser --server-bin "$SERVER" --wasm-pkg "$WORK/pkg" \
      --chromium "$(command -v "${CHROMIUM:-chromium}")" | tee -a "$OUT"
  else
    cat "$WORK/wasm-pack.log" >&2
    echo "_browser benchmark skipped: wasm-pack build failed_" | tee -a "$OUT"
  fi
else
  echo "_browser benchmark skipped: wasm-pack or chromium not installed_" | tee -a "$OUT"
fi
echo "== wrote $OUT and $JSON" >&2
