#!/usr/bin/env bash
# `npm run stress`: the long versions of the hardening suites (issue 8). 2,000 connections x 10
# streams of checksummed data for a minute, SIGTERM under 500 connections, the hostile suites,
# a longer fuzz run, and the nginx scale-out test. Needs root or a high `ulimit -Hn`
# (about 50,000 descriptors: 22 per connection across the test and the server).
#
#   scripts/stress.sh [FUZZ_SECONDS_PER_TARGET]   (default 300)
#
# Honours CARGO_TARGET_DIR. Ends with `stress: N passed, N failed`.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${1:-300}"
want=60000
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || echo "note: cannot raise the hard descriptor limit (not root?)"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "descriptor limit: $(ulimit -n)"
passed=0
failed=0
run() {
  echo; echo "== stress: $*"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
# Release build: a minute of 20,000 streams in a debug build measures the debug build.
export WISP_LOAD_CONNECTIONS="${WISP_LOAD_CONNECTIONS:-2000}"
export WISP_LOAD_SECONDS="${WISP_LOAD_SECONDS:-60}"
run cargo test --release -p wisp-server --features load-tests --test overload -- --nocapture --test-threads=1
run cargo test --release -p wisp-server --test hostile --test hostile_packets --test hostile_frames --test hostile_floods -- --nocapture
if [ -f wisp-server/tests/scale_out.rs ]; then
  run cargo test --release -p wisp-server --features load-tests --test scale_out -- --nocapture --test-threads=1
fi
run bash scripts/fuzz-ci.sh "$FUZZ_SECONDS"
echo "stress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
