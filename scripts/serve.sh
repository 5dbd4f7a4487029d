#!/usr/bin/env bash
# Builds Piface and starts it: `piface serve` on http://127.0.0.1:7832 (arguments are passed on,
# e.g. `--port 8000` or `--host 0.0.0.0`). Uses `pi` from PATH when there is one, else installs
# the pinned pi into .pi-runtime/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "cargo is needed to build Piface: https://rustup.rs" >&2
  exit 1
fi
if command -v pi >/dev/null; then
  pi_bin="$(command -v pi)"
else
  pi_bin="$("$root/scripts/install-pi.sh" | tail -n 1)"
fi
# The web UI is embedded into the binary at compile time: build it first.
if command -v npm >/dev/null; then
  npm --prefix "$root/frontend" ci --no-audit --no-fund
  npm --prefix "$root/frontend" run build
else
  echo "npm not found: Piface will serve a page explaining how to build the web UI" >&2
fi
# PIFACE_FEATURES=cuda builds GPU speech and TTS: CUDA 12.x's nvcc, set up for the card (its
# compute capability from CUDA_COMPUTE_CAP or nvidia-smi) by scripts/cuda-env.sh, which says
# what to install when it is missing.
if [[ " ${PIFACE_FEATURES:-} " =~ [\ ,]cuda[\ ,] ]]; then
  # shellcheck source=cuda-env.sh
  source "$root/scripts/cuda-env.sh"
fi
cargo build --release --bin piface ${PIFACE_FEATURES:+--features "$PIFACE_FEATURES"}
exec "$root/target/release/piface" serve --pi-bin "$pi_bin" "$@"
