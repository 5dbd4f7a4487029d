#!/usr/bin/env bash
# Runs every test of the workspace: installs what the tests need (the pinned pi from npm),
# then `cargo test --workspace`. Extra arguments go to cargo test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The end-to-end tests run the real pi; install the pinned one into .pi-runtime/ once.
PIFACE_TEST_PI="$("$root/scripts/install-pi.sh" | tail -n 1)"
export PIFACE_TEST_PI

cargo build --workspace --bins
cargo test --workspace "$@"
