#!/usr/bin/env bash
# Writes the target spec for the UEFI app: the pinned compiler's own x86_64-unknown-uefi spec
# with hardware floating point (SSE/SSE2 on, soft-float ABI off). Generated, not hand-kept,
# because target-spec keys change between rustc versions.
set -euo pipefail
out=${1:?usage: efi-target.sh OUT.json}
mkdir -p "$(dirname "$out")"
RUSTC_BOOTSTRAP=1 rustc -Z unstable-options --print target-spec-json --target x86_64-unknown-uefi \
  | sed -e 's/"features": ".*"/"features": "+sse,+sse2"/' -e '/"rustc-abi"/d' > "$out.tmp"
grep -q '"features": "+sse,+sse2"' "$out.tmp" || { echo "efi-target.sh: could not set features in the spec" >&2; exit 1; }
mv "$out.tmp" "$out"
