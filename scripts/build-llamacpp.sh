#!/usr/bin/env bash
# Builds llama.cpp (CPU only) from the llama-cpp-python sdist's vendor/llama.cpp, as a reference
# for scripts/compare-llamacpp.sh and scripts/bench-llamacpp.sh. Not part of `make test`.
#
# Cache: $LLAMACPP_CACHE (default ${LLM_BAREMETAL_CACHE:-~/.cache/llm-baremetal}/llamacpp).
# Idempotent: skips the download, the extraction and the build when they are already done.
# Builds only llama-bench, llama-tokenize and llama-completion (or llama-simple / llama-cli
# where this version has no llama-completion). Prints the directory holding the binaries last.
# Installs cmake / g++ with apt-get when missing (needs root).
#
# AMX is compiled out (-mno-amx-*): on this project's VMs the CPU reports AMX and the kernel
# grants the tile state, but the first AMX instruction (tilezero in ggml's AMX Q8_0 kernel)
# dies with SIGILL, so -march=native alone gives a llama.cpp that crashes on its first matmul.
set -euo pipefail
cache="${LLAMACPP_CACHE:-${LLM_BAREMETAL_CACHE:-$HOME/.cache/llm-baremetal}/llamacpp}"
mkdir -p "$cache"

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "build-llamacpp: installing ${need[*]}" >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >&2
fi

sdist="$(ls "$cache"/llama_cpp_python-*.tar.gz 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$sdist" ]; then
  echo "build-llamacpp: downloading the llama-cpp-python sdist" >&2
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$cache" llama-cpp-python >&2
  sdist="$(ls "$cache"/llama_cpp_python-*.tar.gz | sort -V | tail -1)"
fi
src="${sdist%.tar.gz}"
if [ ! -f "$src/vendor/llama.cpp/CMakeLists.txt" ]; then
  echo "build-llamacpp: extracting $(basename "$sdist")" >&2
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  tar -xzf "$sdist" -C "$src.tmp"
  rm -rf "$src" && mv "$src.tmp/$(basename "$src")" "$src" && rm -rf "$src.tmp"
fi
ll="$src/vendor/llama.cpp"
build="$ll/build"

# Which generation tool this version has (llama-completion is newer; llama-cli became chat-only).
targets=(llama-bench llama-tokenize)
if grep -rqs 'llama-completion' "$ll/tools"/*/CMakeLists.txt "$ll/examples"/*/CMakeLists.txt; then
  targets+=(llama-completion)
else
  grep -rqs 'llama-simple' "$ll/examples"/*/CMakeLists.txt && targets+=(llama-simple)
  targets+=(llama-cli)
fi

done_=1
for t in "${targets[@]}"; do [ -x "$build/bin/$t" ] || done_=0; done
if [ $done_ = 0 ]; then
  if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "build-llamacpp: configuring $ll" >&2
    noamx=""; [ "$(uname -m)" = x86_64 ] && noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    cmake -S "$ll" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
      -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" \
      -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
      -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF -DGGML_CUDA=OFF >&2
  fi
  echo "build-llamacpp: building ${targets[*]} (takes ~15 min on 2 cores)" >&2
  nice cmake --build "$build" --config Release -j2 --target "${targets[@]}" >&2
fi
for t in "${targets[@]}"; do [ -x "$build/bin/$t" ] || { echo "build-llamacpp: $t missing" >&2; exit 1; }; done
ver="$(basename "$src")"
commit="$(grep -s -m1 "LLAMA_COMMIT =" "$build/common/build-info.cpp" 2>/dev/null | sed -E 's/.*"(.*)".*/\1/' || true)"
echo "build-llamacpp: ${ver} (llama.cpp ${commit:-unknown commit}); tools: ${targets[*]}" >&2
echo "$build/bin"
