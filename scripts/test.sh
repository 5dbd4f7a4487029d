#!/usr/bin/env bash
# Runs every test of the workspace: installs what the tests need (the pinned pi from npm),
# then `cargo test --workspace`. Extra arguments go to cargo test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The end-to-end tests run the real pi; install the pinned one into .pi-runtime/ once.
PIFACE_TEST_PI="$("$root/scripts/install-pi.sh" | tail -n 1)"
export PIFACE_TEST_PI

# The web UI: dependencies, type check, unit specs, then the build that the binary embeds
# (so it comes before cargo build).
npm --prefix "$root/frontend" ci --no-audit --no-fund
npm --prefix "$root/frontend" run check
npm --prefix "$root/frontend" test
npm --prefix "$root/frontend" run build

# The etcd backend is a feature (it needs protoc); the tests run the state store's contract and the
# persistence and failover tests against a real etcd, so it is on here, for the build and the tests
# alike (one feature set, one build).
features=(--features piface-coordinator/etcd)
cargo build --workspace --bins "${features[@]}"
cargo test --workspace "${features[@]}" "$@"
# The benchmarks are not tests, but they must keep compiling (dev profile, no run).
cargo test --workspace --benches --no-run "${features[@]}"

# The UI end to end: the piface and fake-llm binaries just built, the real pi, Debian's chromium.
npm --prefix "$root/frontend" run e2e

# CUDA without a GPU: the `cuda` feature compiles for the GTX 1080 Ti (sm_61) and for sm_90 with
# CUDA 12.4 from Debian's packages (downloaded once, ~1.3 GB, into ~/.cache/piface/cuda-12.4).
# PIFACE_CUDA_CHECK=0 skips it (a machine that cannot reach Debian's archive).
if [ "${PIFACE_CUDA_CHECK:-1}" != 0 ]; then
  "$root/scripts/cuda-check.sh"
fi
