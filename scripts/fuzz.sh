#!/usr/bin/env bash
# Runs every cargo-fuzz target of wisp-core for a while and prints what each did.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# cargo-fuzz needs unstable compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them, so no nightly toolchain is needed. cargo-fuzz is installed when missing. Crashes are
# kept under fuzz/artifacts/<target>/ and make the script fail; turn each into a regression
# test in wisp-core/tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
status=0
for target in decode server_mux handshake; do
  echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
  log=$(mktemp)
  if cargo fuzz run --fuzz-dir fuzz "$target" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E '^Done|#[0-9]+.*(DONE|pulse)' "$log" | tail -1 || true
    grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | sed "s/^/   coverage: /" || true
  else
    status=1
    tail -40 "$log"
    echo "!! $target found a crash (see fuzz/artifacts/$target)"
  fi
  rm -f "$log"
done
exit $status
