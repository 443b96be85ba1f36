#!/usr/bin/env bash
# Speed against llama.cpp on the real GGUF models, back to back on the same machine:
# `llama-bench -m MODEL -p 64,512 -n 64 -t T -r 3` against ours measured the same way
# (cli/examples/pp_tg.rs: a 64- or 512-token prefill into a fresh context, then 64 greedy
# tokens; our fastest kernels), for T in 1 2. Medians of the 3 repetitions on both sides
# (2-thread runs on a shared VM sometimes collapse on one repetition). Not part of `make test`.
#
# The decode limit: the machine's read bandwidth (cli/examples/membw.rs, 512 MiB read by T
# threads) divided by the bytes a decoded token reads (`Weights::bytes_per_token`, printed by
# pp_tg); "ours / limit" is our tg64 against it.
#
#   scripts/bench-llamacpp.sh            Models: $GEMMA, $QWEN (defaults under models/)
#
# pp_tg rather than `llm-baremetal bench --prefill 64 --decode 64`: the same measurement, but
# one kernel set (the default, as a user gets it) and medians, as llama-bench reports them
# (`bench` prints the best run of every kernel family). llama.cpp comes from
# scripts/build-llamacpp.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
GEMMA=${GEMMA:-models/gemma-3-270m-q4_k_m.gguf}
QWEN=${QWEN:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
THREADS=${THREADS:-"1 2"}
bin="$(scripts/build-llamacpp.sh)"
nice cargo build --quiet --release -p llm-baremetal --example pp_tg --example membw >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

target/release/examples/membw 512 $THREADS > "$tmp/bw.txt"
echo "llama.cpp $("$bin/llama-bench" --version 2>&1 | grep -m1 -o 'version: .*' || echo '?'); ours $(git rev-parse --short HEAD); $(date -u +%F); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); tok/s, median of 3"
echo "read bandwidth (cli/examples/membw, 512 MiB): $(awk '{printf "%s%s thread(s) %s GB/s", (NR>1?", ":""), $1, $2}' "$tmp/bw.txt")"
echo
echo "| model | threads | llama.cpp pp64 | ours pp64 | ratio | llama.cpp pp512 | ours pp512 | ratio | llama.cpp tg64 | ours tg64 | ratio | decode limit | ours / limit |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
# Our default model exported to GGUF (f32): llama.cpp reads our export, and the greedy texts
# of the two are compared below the table.
nice cargo build --quiet --release -p llm-baremetal >&2
target/release/llm-baremetal export models/shakespeare/model.bin --out "$tmp/shakespeare-f32.gguf" --type f32 >&2
for pair in "Gemma 3 270M Q4_K_M|$GEMMA" "Qwen2.5-Coder 0.5B Q4_K_M|$QWEN" "Shakespeare 0.8M (ours, exported F32)|$tmp/shakespeare-f32.gguf"; do
  label=${pair%%|*} model=${pair#*|}
  [ -f "$model" ] || { echo "bench-llamacpp: $model missing (scripts/fetch-models.sh)" >&2; continue; }
  for t in $THREADS; do
    # Our Shakespeare model has a context of 64: no pp512 on either side (llama.cpp aborts).
    pps=64,512
    case "$label" in Shakespeare*) pps=64 ;; esac
    "$bin/llama-bench" -m "$model" -p "$pps" -n 64 -t "$t" -r 3 -o json > "$tmp/ll.json" 2> "$tmp/ll.err" \
      || { cat "$tmp/ll.err" >&2; exit 1; }
    target/release/examples/pp_tg "$model" "$t" 64 64 3 > "$tmp/ours.txt"
    : > "$tmp/ours512.txt"
    [ "$pps" = 64 ] || target/release/examples/pp_tg "$model" "$t" 512 0 3 > "$tmp/ours512.txt"
    python3 - "$tmp/ll.json" "$tmp/ours.txt" "$tmp/ours512.txt" "$tmp/bw.txt" "$label" "$t" <<'PY'
import json, statistics, sys
rows = json.load(open(sys.argv[1]))
def med(pp, tg):
    for r in rows:
        if r["n_prompt"] == pp and r["n_gen"] == tg:
            return statistics.median(r.get("samples_ts") or [r["avg_ts"]])
    return float("nan")
ours = open(sys.argv[2]).read().splitlines()[0].split("\t")
ours512 = (open(sys.argv[3]).read().splitlines() or ["-\t-\tnan"])[0].split("\t")
bw = dict(l.split("\t") for l in open(sys.argv[4]).read().splitlines())
t = sys.argv[6]
pp_l, pp512_l, tg_l = med(64, 0), med(512, 0), med(0, 64)
pp_o, tg_o, mb, pp512_o = float(ours[2]), float(ours[3]), float(ours[4]), float(ours512[2])
limit = float(bw[t]) * 1e3 / mb
pp512 = f"{pp512_l:.1f} | {pp512_o:.1f} | {pp512_o/pp512_l:.2f}" if pp512_o == pp512_o else "- | - | -"
print(f"| {sys.argv[5]} | {t} | {pp_l:.1f} | {pp_o:.1f} ({ours[0]}) | {pp_o/pp_l:.2f} | {pp512} "
      f"| {tg_l:.1f} | {tg_o:.1f} | {tg_o/tg_l:.2f} | {limit:.0f} ({mb:.0f} MB/token) | {tg_o/limit:.0%} |")
PY
  done
done

# llama.cpp and we continue "ROMEO:" greedily from the exported file: the same text?
echo
"$bin/llama-completion" -m "$tmp/shakespeare-f32.gguf" -p "ROMEO:" -n 64 --temp 0 -no-cnv --no-display-prompt -t 1 -c 128 \
  < /dev/null 2> /dev/null | sed 's/ \[end of text\]$//' | head -c 2000 > "$tmp/ll.txt" || true
target/release/llm-baremetal generate "$tmp/shakespeare-f32.gguf" --prompt "ROMEO:" --steps 64 --temperature 0 2> /dev/null > "$tmp/ours.txt"
python3 - "$tmp/ll.txt" "$tmp/ours.txt" <<'PY'
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
n = 0
while n < min(len(a), len(b)) and a[n] == b[n]:
    n += 1
print(f"exported Shakespeare model, greedy 64 tokens after 'ROMEO:': llama.cpp {len(a)} bytes, ours {len(b)} bytes, "
      f"{'identical' if a.rstrip() == b.rstrip() else f'first {n} bytes equal'}")
print("llama.cpp: " + repr(a[:120].decode("utf-8", "replace")))
print("ours:      " + repr(b[:120].decode("utf-8", "replace")))
PY
