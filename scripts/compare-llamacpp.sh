#!/usr/bin/env bash
# Compares our engine with llama.cpp on the real GGUF models: (a) the prompt token ids
# (llama-tokenize vs cli/examples/tokenize.rs), (b) greedy continuations (llama-completion
# --temp 0 -no-cnv vs `llm-baremetal generate --parse-special --temperature 0`: llama.cpp parses
# control tokens in a prompt by default), with our top-1/top-2 logit
# margin at the first token where they part (cli/examples/topk.rs). Not part of `make test`.
#
#   scripts/compare-llamacpp.sh [STEPS]          (default 48 generated tokens)
#
# Models: $GEMMA and $QWEN (default models/gemma-3-270m-q4_k_m.gguf and
# models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; scripts/fetch-models.sh puts them there).
# llama.cpp comes from scripts/build-llamacpp.sh (built on first use, ~15 min on 2 cores).
# Prints one markdown table per model on stdout; raw outputs are kept in $KEEP if set.
# Prompts contain no backslashes: both sides turn \n, \t, \\ in a prompt into characters.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-48}
GEMMA=${GEMMA:-models/gemma-3-270m-q4_k_m.gguf}
QWEN=${QWEN:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
threads=${THREADS:-2}

bin="$(scripts/build-llamacpp.sh)"
nice cargo build --quiet --release -p llm-baremetal --bin llm-baremetal --example tokenize --example topk >&2
ours=target/release/llm-baremetal
ex=target/release/examples
if [ -n "${KEEP:-}" ]; then tmp="$KEEP"; mkdir -p "$tmp"; else tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi

# name<TAB>text ($'...' strings: real newlines and tabs)
common_prompts=(
  "english"$'\t'"The capital of France is Paris. The capital of Germany is"
  "story"$'\t'"Once upon a time, in a small village by the sea, there lived an old fisherman who"
  "python"$'\t'$'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n'
  "c"$'\t'$'#include <stdio.h>\n\nint main(void) {\n    int sum = 0;\n    for (int i = 0; i < 10; i++) {'
  "question"$'\t'$'Question: What is the boiling point of water at sea level, in degrees Celsius?\nAnswer:'
  "unicode"$'\t'"Café, naïve, résumé, Ærø, Straße; 東京は日本の首都です。北京欢迎你 🙂🚀👍🏽 «ça va?» — done."
  "whitespace"$'\t'$'  Two leading spaces.\n\n\nThree newlines,   runs   of   spaces,\t\ttwo tabs,\n    \n  and a trailing space '
  "numbers"$'\t'"In 2024, 3.14159 × 12,345 = 38,781.93 (approx.); 1e-9 < 0.001 and 0x1F == 31, so"
)
gemma_prompts=("${common_prompts[@]}"
  "gemma-turns"$'\t'$'<start_of_turn>user\nWhat is the tallest mountain in the world?<end_of_turn>\n<start_of_turn>model\n')
qwen_prompts=("${common_prompts[@]}"
  "chatml"$'\t'$'<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWrite a Python function that checks whether a number is prime.<|im_end|>\n<|im_start|>assistant\n')

run_model() { # label model prompts...
  local label=$1 model=$2; shift 2
  [ -f "$model" ] || { echo "compare-llamacpp: $model missing (scripts/fetch-models.sh)" >&2; return; }
  local i=0
  for entry in "$@"; do
    local name=${entry%%$'\t'*} text=${entry#*$'\t'}
    local d="$tmp/$label/$i-$name"; i=$((i + 1)); mkdir -p "$d"
    printf '%s' "$text" > "$d/prompt.txt"
    echo "compare-llamacpp: $label / $name" >&2
    "$bin/llama-tokenize" -m "$model" -p "$text" --ids --log-disable > "$d/ids.llamacpp" 2> "$d/tok.err" || true
    "$ex/tokenize" "$model" "$text" > "$d/ids.ours"
    "$bin/llama-completion" -m "$model" -p "$text" -n "$steps" --temp 0 -no-cnv --no-display-prompt \
      -t "$threads" -s 1 -c 2048 < /dev/null > "$d/out.llamacpp" 2> "$d/gen.err" || true
    "$ours" generate "$model" --prompt "$text" --parse-special --steps "$steps" --temperature 0 --threads "$threads" \
      > "$d/out.ours" 2> "$d/ours.err"
    "$ex/topk" "$model" "$text" "$steps" > "$d/topk.tsv"
  done
  python3 - "$tmp/$label" "$label" "$steps" <<'PY'
import os, sys, json
root, label, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def llama_text(b):
    # llama-completion prints the continuation, " [end of text]\n" at an end token, then "\n\n".
    i = b.rfind(b"\n\n")
    if i >= 0 and b[i:].strip() == b"":
        b = b[:i]
    for suf in (b" [end of text]\n",):
        if b.endswith(suf):
            return b[: -len(suf)], True
    return b, False
def ids(s):
    return [int(x) for x in s.replace("[", " ").replace("]", " ").replace(",", " ").split()]
print(f"\n### {label}\n")
print("| prompt | prompt tokens (ours / llama.cpp) | ids equal | agreeing generated tokens | first difference (char) | ours / llama.cpp there | our top-2 margin there | generate = topk |")
print("|---|---|---|---|---|---|---|---|")
for d in sorted(os.listdir(root), key=lambda s: int(s.split("-")[0])):
    p = os.path.join(root, d)
    rd = lambda f: open(os.path.join(p, f), "rb").read()
    a, b = ids(rd("ids.ours").decode()), ids(rd("ids.llamacpp").decode())
    eq = "yes" if a == b else "**no**"
    if a != b:
        k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
        eq += f" (from #{k}: ours {a[k:k+4]} vs {b[k:k+4]})"
    lt, lend = llama_text(rd("out.llamacpp"))
    ot = rd("out.ours")
    steps_rows = [l.split("\t") for l in rd("topk.tsv").decode().splitlines() if l]
    # our tokens' bytes from the topk dump (hex column)
    acc, agree, margin_at, tok_at = b"", 0, None, None
    for r in steps_rows:
        piece, is_end = bytes.fromhex(r[6]), r[7] == "1"
        if (lend and acc == lt) if is_end else lt.startswith(acc + piece):
            acc += piece; agree += 1
        else:
            margin_at, tok_at = float(r[5]), (r[2], r[4]); break
    topk_text = b"".join(bytes.fromhex(r[6]) for r in steps_rows)
    same_gen = "yes" if topk_text == ot else "**no**"
    n = len(steps_rows)
    if ot == lt:
        diff, there, marg = "none (identical text)", "", ""
        agree_s = f"{agree}/{n} (all)"
    else:
        c = next((j for j in range(min(len(ot), len(lt))) if ot[j] != lt[j]), min(len(ot), len(lt)))
        cc = len(ot[:c].decode("utf-8", "replace"))
        diff = f"char {cc}"
        there = f"{ot[c:c+12].decode('utf-8','replace')!r} / {lt[c:c+12].decode('utf-8','replace')!r}".replace("|", "\\|")
        marg = f"{margin_at:.3f} ({tok_at[0]} vs {tok_at[1]})".replace("|", "\\|") if margin_at is not None else "n/a"
        agree_s = f"{agree}/{n}"
    print(f"| {d.split('-',1)[1]} | {len(a)} / {len(b)} | {eq} | {agree_s} | {diff} | {there} | {marg} | {same_gen} |")
PY
}

echo "llama.cpp: $("$bin/llama-completion" --version 2>&1 | head -1); ours: $(git rev-parse --short HEAD); $(date -u +%F); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $steps tokens, llama.cpp -t $threads, ours --threads $threads"
run_model "Gemma 3 270M Q4_K_M" "$GEMMA" "${gemma_prompts[@]}"
run_model "Qwen2.5-Coder 0.5B Instruct Q4_K_M" "$QWEN" "${qwen_prompts[@]}"
