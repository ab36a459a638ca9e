#!/usr/bin/env bash
# Runs every check and test suite of the workspace and ends with one line
# `N passed, N failed` summing them all; exits non-zero if anything failed.
#
# Suites: cargo fmt, clippy (native and wasm32), the Rust tests of the workspace, the wasm32
# build of wisp-core, the wasm client's tests in headless Chromium, and the browser end-to-end
# tests of the demo page (each where it exists).
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

PASSED=0
FAILED=0
LOGDIR=$(mktemp -d)
SUMMARY=()

# suite NAME CMD...: runs CMD; counts the `test result:` lines of cargo and wasm-bindgen-test
# and the `N passed, N failed` lines of our own scripts; a command that fails without
# reporting a failed test counts as one failure, one that passes without tests as one pass.
suite() {
  local name=$1; shift
  local log="$LOGDIR/$name.log"
  printf '\n== %s: %s\n' "$name" "$*"
  local start=$SECONDS
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -aoE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -aoE '^test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s+=$6} END{print s+0}')
  local own_p own_f
  own_p=$(grep -aoE '^[a-z0-9-]*:? ?[0-9]+ passed, [0-9]+ failed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END{print s+0}')
  own_f=$(grep -aoE '^[a-z0-9-]*:? ?[0-9]+ passed, [0-9]+ failed' "$log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END{print s+0}')
  p=$((p + own_p)); f=$((f + own_f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ]; then p=1; fi
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  SUMMARY+=("$(printf '%-14s %5d passed %3d failed  %4ds' "$name" "$p" "$f" $((SECONDS - start)))")
}

suite fmt cargo fmt --all --check
suite clippy cargo clippy --workspace --exclude wisp-wasm --all-features --all-targets -- -D warnings
if [ -d wisp-wasm ]; then
  suite clippy-wasm cargo clippy -p wisp-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings
fi
# Not --all-features: wisp-server's load tests (feature load-tests) run alone in the hardening
# suite below.
suite rust-tests cargo test --workspace --exclude wisp-wasm --features wisp-core/tokio-websockets --no-fail-fast
suite core-wasm32 cargo check -p wisp-core --target wasm32-unknown-unknown
if [ -x scripts/test-wasm.sh ]; then
  suite wasm-browser bash scripts/test-wasm.sh
fi
if [ -x scripts/test-e2e.sh ]; then
  suite e2e bash scripts/test-e2e.sh
fi
if [ -x scripts/test-interop.sh ]; then suite interop bash scripts/test-interop.sh; fi
# Hardening (issue 8): a short run of every fuzz target; the hostile-client, overload and
# SIGTERM suites against the real server with their figures. Long versions: npm run stress.
if [ -x scripts/fuzz-ci.sh ]; then suite fuzz bash scripts/fuzz-ci.sh; fi
if [ -x scripts/test-hardening.sh ]; then suite hardening bash scripts/test-hardening.sh; fi

printf '\n== summary\n'
printf '%s\n' "${SUMMARY[@]}"
rm -rf "$LOGDIR" 2>/dev/null || true
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
