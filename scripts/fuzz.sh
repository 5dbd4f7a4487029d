#!/usr/bin/env bash
# The long fuzzing run: every target of fuzz/ (crate piface-fuzz), one after the other,
# coverage-guided by libFuzzer through cargo-bolero, on stable Rust.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default: 600 s, every target
#
# Each target starts from its committed corpus (fuzz/tests/__fuzz__/<target>/corpus/, read only)
# and keeps what it learns in target/fuzz-corpus/<target>/. A crash is written to
# fuzz/tests/__fuzz__/<target>/crashes/, where `cargo test -p piface-fuzz` replays it from then
# on (commit it with the fix). Logs: target/fuzz-logs/<target>.log; the summary at the end
# gives each target's executions, executions per second and crashes.
#
# Needs cargo and a C++ compiler (bolero-libfuzzer builds libFuzzer); cargo-bolero is installed
# on first use. No sanitizer (that would need nightly flags): the code under test is safe Rust,
# and the targets check allocations themselves (fuzz/src/alloc.rs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

secs="${1:-600}"
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  # Every target named in the test file's `targets!` list.
  mapfile -t targets < <(sed -n '/^targets! {/,/^}/p' fuzz/tests/fuzz.rs | grep -E '^\s+[a-z_]+$' | tr -d ' ')
fi

if ! command -v cargo-bolero >/dev/null; then
  cargo install cargo-bolero --version 0.13.5 --locked --no-default-features
fi

# cargo-bolero builds with `--profile fuzz`; define it here (the workspace manifest stays as it
# is): optimised, one codegen unit (bolero's advice for sancov), with debug assertions and
# overflow checks so that they can fail.
export CARGO_PROFILE_FUZZ_INHERITS=release
export CARGO_PROFILE_FUZZ_CODEGEN_UNITS=1
export CARGO_PROFILE_FUZZ_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_FUZZ_OVERFLOW_CHECKS=true
export CARGO_PROFILE_FUZZ_INCREMENTAL=false

mkdir -p target/fuzz-logs
summary=()
status=0
for t in "${targets[@]}"; do
  seeds="fuzz/tests/__fuzz__/$t/corpus"
  corpus="target/fuzz-corpus/$t"
  crashes="fuzz/tests/__fuzz__/$t/crashes"
  mkdir -p "$seeds" "$corpus" "$crashes"
  before=$(find "$crashes" -type f 2>/dev/null | wc -l)
  echo "== $t: ${secs} s" >&2
  if ! cargo bolero test "$t" -p piface-fuzz --sanitizer NONE -T "${secs}sec" \
      --corpus-dir "$corpus" --engine-args=-print_final_stats=1 --engine-args="$seeds" >"target/fuzz-logs/$t.log" 2>&1; then
    status=1
  fi
  after=$(find "$crashes" -type f 2>/dev/null | wc -l)
  stat() { grep -oE "$1 *[0-9]+" "target/fuzz-logs/$t.log" | tail -1 | grep -oE '[0-9]+$' || echo '?'; }
  runs=$(stat 'stat::number_of_executed_units:')
  rate=$(stat 'stat::average_exec_per_sec:')
  cov=$(stat 'cov:')
  summary+=("$(printf '%-20s %12s runs %8s exec/s  cov %6s  new crashes %s' "$t" "$runs" "$rate" "$cov" "$((after - before))")")
done

printf '%s\n' "${summary[@]}"
exit "$status"
