# Sourced by the browser test scripts (test-wasm.sh, test-e2e.sh): moves to the repository root,
# sets TARGET_DIR (CARGO_TARGET_DIR, or target/), makes a scratch directory $WORK, and stops every
# process whose PID the script appends to PIDS when it exits.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Chromium may still be writing its profile as it dies; a leftover temp dir is no failure.
  rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
