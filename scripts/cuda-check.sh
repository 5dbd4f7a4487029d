#!/usr/bin/env bash
# CI's CUDA compile check, no GPU needed: the `cuda` feature of the `piface` binary with CUDA
# 12.4 (Debian's packages, unpacked once into ~/.cache/piface/cuda-12.4 by cuda-toolkit.sh),
# built and linked for compute capability 6.1 (the GTX 1080 Ti, through
# scripts/cuda/pascal-compat.cuh) and for 9.0 (H100/H200): every kernel goes through nvcc for
# both, so the check fails when they stop compiling for either. Each run compiles the kernels
# for both cards again (about 2.5 minutes each here); PIFACE_CUDA_CHECK=0 skips the check.
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

for cap in "${caps[@]}"; do
  (
    # shellcheck source=cuda-env.sh
    source "$root/scripts/cuda-env.sh" "$cap"
    start=$SECONDS
    # The whole binary, linked, for every card (in the dev profile): what `make serve-audio-1080`
    # builds for the 1080 Ti. After the first card only candle's kernels (each through nvcc) and
    # the crates above them are rebuilt: the same invocation keeps every other crate fresh.
    what=(--bin piface --features cuda)
    # Cargo names the kernels' build output in its messages (for fresh builds too).
    out="$(cargo build "${what[@]}" --message-format=json-render-diagnostics |
      grep '"reason":"build-script-executed"' | grep 'candle-kernels' |
      sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)"
    ptx="$out/reduce.ptx"
    # The kernels cargo used were compiled for this card (nvcc names sm_90's arch-specific
    # target sm_90a), not left over from another one.
    if [ -z "$out" ] || ! grep -qE "^\.target sm_${cap}a?$" "$ptx"; then
      echo "cuda-check: the kernels cargo used ($ptx) are not compiled for sm_$cap" >&2
      exit 1
    fi
    echo "cuda-check: compute capability $cap: kernels compiled ($ptx), $((SECONDS - start)) s" >&2
  )
done
