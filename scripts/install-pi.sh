#!/usr/bin/env bash
# install-pi.sh — install the pinned `pi` coding agent into <repo root>/.pi-runtime.
#
# Piface drives `pi --mode rpc`; tests and local runs need a known pi version, independent of whatever is
# (or is not) installed globally. This script installs @mariozechner/pi-coding-agent at PI_VERSION with npm
# into .pi-runtime/ (git-ignored) and prints the path of the pi binary on its last line of stdout.
#
# Idempotent: when .pi-runtime already holds pi at PI_VERSION nothing is downloaded. Safe to run from any
# directory, and safe to run concurrently (a lock serialises installs, e.g. parallel test processes).
set -euo pipefail

PI_PACKAGE="@mariozechner/pi-coding-agent"
PI_VERSION="0.73.1"

# Resolve the repository root from this script's own location, so the cwd does not matter.
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "$script_dir/.." && pwd -P)"
runtime_dir="$repo_root/.pi-runtime"
pi_bin="$runtime_dir/node_modules/.bin/pi"
pkg_json="$runtime_dir/node_modules/$PI_PACKAGE/package.json"

# Prints the installed version, or nothing when pi is absent or its package.json is unreadable.
installed_version() {
    if [[ -x "$pi_bin" && -f "$pkg_json" ]]; then
        node -e 'try { process.stdout.write(String(require(process.argv[1]).version)) } catch (e) {}' "$pkg_json" \
            2>/dev/null || true
    fi
}

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-pi.sh: '$tool' is not on PATH; install Node.js (>= 20) first" >&2
        exit 1
    fi
done

mkdir -p "$runtime_dir"

# Serialise concurrent runs: the second one waits, then finds the finished install and skips npm.
# flock(1) is util-linux; without it we fall back to an unguarded install (still idempotent).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$runtime_dir/.install.lock"
    flock 9
fi

if [[ "$(installed_version)" != "$PI_VERSION" ]]; then
    echo "install-pi.sh: installing $PI_PACKAGE@$PI_VERSION into $runtime_dir" >&2
    # npm's progress output goes to stderr so stdout stays machine-readable (the last line is the path).
    npm install --prefix "$runtime_dir" --no-audit --no-fund --save-exact \
        "$PI_PACKAGE@$PI_VERSION" >&2
    got="$(installed_version)"
    if [[ "$got" != "$PI_VERSION" ]]; then
        echo "install-pi.sh: expected $PI_PACKAGE@$PI_VERSION after npm install, found '${got:-nothing}'" >&2
        exit 1
    fi
else
    echo "install-pi.sh: $PI_PACKAGE@$PI_VERSION already installed in $runtime_dir" >&2
fi

echo "$pi_bin"
