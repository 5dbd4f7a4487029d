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

cargo build --workspace --bins
cargo test --workspace "$@"

# The UI end to end: the piface and fake-llm binaries just built, the real pi, Debian's chromium.
npm --prefix "$root/frontend" run e2e
