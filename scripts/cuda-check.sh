#!/usr/bin/env bash
# CI's CUDA compile check, no GPU needed: the `cuda` feature of the `piface` binary with CUDA
# 12.4 (Debian's packages, unpacked once into ~/.cache/piface/cuda-12.4 by cuda-toolkit.sh),
# built for compute capability 6.1 (the GTX 1080 Ti, through scripts/cuda/pascal-compat.cuh)
# and type-checked for 9.0 (H100/H200). Both compile every one of candle's kernels with nvcc, so
# the check fails when they stop compiling for either card.
#
#   scripts/cuda-check.sh [CAPABILITY...]      # default: 61 90
#
# It shares the workspace's target dir (only candle and the crates above it are rebuilt with the
# feature) and rebuilds the plain `piface` binary at the end, so target/debug/piface stays the
# one the other tests run (a CUDA binary needs libcudart to start).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

caps=("$@")
[ ${#caps[@]} -gt 0 ] || caps=(61 90)

if [ -z "${CUDA_HOME:-}" ] && ! command -v nvcc >/dev/null; then
  CUDA_HOME="$("$root/scripts/cuda-toolkit.sh" | tail -n 1)"
  export CUDA_HOME
fi

restore() { cargo build --quiet --bin piface; }
trap restore EXIT

first=1
for cap in "${caps[@]}"; do
  (
    # shellcheck source=cuda-env.sh
    source "$root/scripts/cuda-env.sh" "$cap"
    start=$SECONDS
    if [ "$first" = 1 ]; then
      # The first card is built and linked (the 1080 Ti's, by default): what `make
      # serve-audio-1080` does, in the dev profile.
      cargo build --bin piface --features cuda
    else
      cargo check --bin piface --features cuda
    fi
    # The kernels cargo just used were compiled for this card (not left over from another).
    out="$(ls -td "${CARGO_TARGET_DIR:-$root/target}"/debug/build/candle-kernels-*/out 2>/dev/null | head -n 1)"
    if ! grep -qx "\.target sm_$cap" "$out/reduce.ptx"; then
      echo "cuda-check: $out/reduce.ptx is not compiled for sm_$cap" >&2
      exit 1
    fi
    echo "cuda-check: compute capability $cap compiled in $((SECONDS - start)) s" >&2
  )
  first=0
done
