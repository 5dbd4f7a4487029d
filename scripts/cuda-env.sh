#!/usr/bin/env bash
# The environment of a CUDA build of Piface (`--features cuda`), for one card's compute
# capability. Source it (`source scripts/cuda-env.sh 61`) before `cargo build --features cuda`,
# or run it to check a machine (`scripts/cuda-env.sh 61`: exit 0 when a build can go ahead).
# `scripts/serve.sh` (PIFACE_FEATURES=cuda), `make serve-audio-1080` and CI's compile check use
# it, so they all build the same way.
#
# The capability: the argument, else CUDA_COMPUTE_CAP, else the first GPU's as nvidia-smi
# reports it (61 for a GTX 1080 Ti, 90 for an H100/H200).
#
# It finds nvcc ($CUDA_HOME/bin, then PATH, then the folder scripts/cuda-toolkit.sh fills), and
# refuses, saying what to install, when there is none or it cannot build for the card: CUDA 13
# dropped every card below compute capability 7.5, Pascal included, so those need CUDA 12.x.
# For Pascal (6.x) it forces scripts/cuda/pascal-compat.cuh into candle's kernel compilation
# (NVCC_PREPEND_FLAGS); see that file and ARCHITECTURE.md, "CUDA builds".

_piface_cuda_env() {
  local root cap nvcc release major minor
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cap="${1:-${CUDA_COMPUTE_CAP:-}}"
  if [ -z "$cap" ] && command -v nvidia-smi >/dev/null; then
    cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
  fi
  if ! [[ "$cap" =~ ^[0-9]{2,3}$ ]]; then
    echo "cuda-env.sh: which card? Pass its compute capability (61 for a GTX 1080 Ti, 90 for an H200)" \
      "or set CUDA_COMPUTE_CAP; nvidia-smi found none." >&2
    return 1
  fi

  nvcc=""
  for candidate in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc 2>/dev/null)" \
    "${PIFACE_CUDA_HOME:-$HOME/.cache/piface/cuda-12.4}/bin/nvcc"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      nvcc="$candidate"
      break
    fi
  done
  local install="Install CUDA 12.x (12.4 or later 12.x): Debian trixie's 'nvidia-cuda-toolkit' (non-free), NVIDIA's
  CUDA 12 toolkit, or without installing anything: ./scripts/cuda-toolkit.sh (unpacks Debian's CUDA 12.4 into
  ~/.cache/piface/cuda-12.4, which this script then finds). A GTX 1080 Ti also needs a driver branch that
  still supports Pascal (the 535-580 series)."
  if [ -z "$nvcc" ]; then
    echo "cuda-env.sh: nvcc not found (looked in \$CUDA_HOME/bin, PATH and ~/.cache/piface/cuda-12.4)." >&2
    echo "$install" >&2
    return 1
  fi
  release="$("$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\).*/\1.\2/p' | head -n 1)"
  major="${release%%.*}"
  minor="${release#*.}"
  if ! [[ "$major" =~ ^[0-9]+$ ]]; then
    echo "cuda-env.sh: $nvcc does not say which CUDA it is ('nvcc --version')." >&2
    echo "$install" >&2
    return 1
  fi
  if [ "$major" -lt 12 ]; then
    echo "cuda-env.sh: $nvcc is CUDA $release; Piface's CUDA build (candle, cudarc) needs CUDA 12." >&2
    echo "$install" >&2
    return 1
  fi
  if [ "$major" -ge 13 ] && [ "$cap" -lt 75 ]; then
    echo "cuda-env.sh: $nvcc is CUDA $release, which cannot build for compute capability $cap: CUDA 13" \
      "dropped every card below 7.5 (Pascal, the GTX 1080 Ti's, included)." >&2
    echo "$install" >&2
    return 1
  fi

  export CUDA_COMPUTE_CAP="$cap"
  CUDA_HOME="$(cd "$(dirname "$nvcc")/.." && pwd)"
  export CUDA_HOME CUDA_PATH="$CUDA_HOME" CUDA_ROOT="$CUDA_HOME"
  case ":$PATH:" in *":$CUDA_HOME/bin:"*) ;; *) export PATH="$CUDA_HOME/bin:$PATH" ;; esac
  if [ "$cap" -lt 70 ]; then
    local compat="$root/scripts/cuda/pascal-compat.cuh"
    case " ${NVCC_PREPEND_FLAGS:-} " in
      *" $compat "*) ;;
      *) export NVCC_PREPEND_FLAGS="${NVCC_PREPEND_FLAGS:+$NVCC_PREPEND_FLAGS }-include $compat" ;;
    esac
  fi
  echo "cuda-env.sh: CUDA $release ($nvcc) for compute capability $cap${NVCC_PREPEND_FLAGS:+; NVCC_PREPEND_FLAGS=$NVCC_PREPEND_FLAGS}" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Run, not sourced: a check.
  set -euo pipefail
  _piface_cuda_env "$@"
else
  _piface_cuda_env "$@"
fi
