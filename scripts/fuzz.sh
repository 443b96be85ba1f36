#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60) from seed
# corpora written fresh by testkit's fuzz-seeds example, and prints the executions per target
# (libFuzzer's "#N DONE"). A crash stops the run with the target's non-zero status; the input
# is saved under fuzz/artifacts/<target>/. See docs/FUZZING.md.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
secs=${1:-60}
shift || true
cd "$(dirname "$0")/.."
# cargo-fuzz, pinned (installed once, like the rest of scripts/setup.sh's tools).
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install, once)" >&2
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
cargo run --release -q -p llm-testkit --example fuzz-seeds -- fuzz/corpus >/dev/null
cd fuzz
# cargo-fuzz needs nightly flags; the pinned stable toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1
FLAGS=(--release --debug-assertions)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build "${FLAGS[@]}" >/dev/null 2>&1 || cargo fuzz build "${FLAGS[@]}"
mkdir -p logs
for t in "${targets[@]}"; do
    log=logs/$t.log
    status=0
    cargo fuzz run "${FLAGS[@]}" "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(grep -o '#[0-9]*[[:space:]]*DONE' "$log" | grep -o '[0-9]*' | tail -1 || true)
    line=$(printf '%-16s %12s executions in %ss' "$t" "${execs:-?}" "$secs")
    echo "$line"
    if [ "$status" -ne 0 ]; then
        tail -40 "$log"
        echo "fuzz target $t failed (status $status): see fuzz/$log and fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
done
