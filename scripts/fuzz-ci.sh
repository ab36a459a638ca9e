#!/usr/bin/env bash
# The short fuzzing run of `npm test`: every cargo-fuzz target for FUZZ_SECONDS (default 30)
# each, printing executions and coverage per target and ending with `fuzz: N passed, N failed`.
#
#   scripts/fuzz-ci.sh [SECONDS_PER_TARGET]
#
# Long runs are scripts/fuzz.sh. Like it, this uses RUSTC_BOOTSTRAP=1 so the stable toolchain
# accepts cargo-fuzz's unstable flags. A target that crashes counts as failed and its input is
# kept under fuzz/artifacts/<target>/: turn it into a regression test in wisp-core/tests.
# The corpus under fuzz/corpus/ grows from run to run, so later runs start deeper.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-30}}"
TARGETS=(decode server_mux handshake)
export RUSTC_BOOTSTRAP=1
passed=0
failed=0

if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked || { echo "fuzz: 0 passed, ${#TARGETS[@]} failed"; exit 1; }
fi
# One build for all targets, so the per-target time is spent fuzzing. cargo-fuzz honours
# CARGO_TARGET_DIR through cargo; without it the build goes to fuzz/target.
if ! cargo fuzz build --fuzz-dir fuzz -O; then
  echo "fuzz: 0 passed, ${#TARGETS[@]} failed"
  exit 1
fi

total_execs=0
for target in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  log=$(mktemp)
  # -max_len bounds one input (a few packets); -rss_limit_mb turns a memory blow-up into a
  # failure instead of an OOM kill; -timeout flags a single input that hangs.
  cargo fuzz run --fuzz-dir fuzz -O "$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  peak=$(grep -oE '^stat::peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  execs=${execs:-0}
  total_execs=$((total_execs + execs))
  if [ "$rc" -eq 0 ] && ! grep -qE '^==[0-9]+==ERROR|panicked at|deadly signal' "$log"; then
    passed=$((passed + 1))
    printf 'fuzz %-10s ok    %9d execs in %ss, %s, peak RSS %s MB\n' \
      "$target" "$execs" "$SECONDS_PER_TARGET" "${cov:-cov: ?}" "${peak:-?}"
  else
    failed=$((failed + 1))
    tail -40 "$log"
    printf 'fuzz %-10s CRASH after %d execs (input kept in fuzz/artifacts/%s)\n' "$target" "$execs" "$target"
  fi
  rm -f "$log"
done
echo "fuzz total executions: $total_execs"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
