#!/usr/bin/env bash
# The full test run (what CI runs): installs the dependencies, then for each preset in turn
# configures, builds (-j2) and runs ctest, stopping at the first failure.
#   dev    Debug g++ -Werror; also builds the benchmarks (compile check only, not run)
#   asan   Debug clang++-14 -Werror -Wthread-safety, AddressSanitizer + UndefinedBehaviorSanitizer
#          (the clang build: one compiler pass gives the warnings, the thread-safety analysis
#          and the sanitizers; unoptimised, because g++ -O2 with ASan took 25 of CI's minutes)
#   tsan   g++ ThreadSanitizer
#   fuzz   clang++-14 libFuzzer targets (differential and parsers), 30 s each from their corpus
# Presets to run may be given as arguments (default: these four, in that order; `clang`, the
# same clang build without sanitizers, runs when named).
# Ends with one timing line per stage and a total "ctest: N passed, N failed" line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh test
# Node and the pinned npm servers are installed above: tests that need them must run, not skip.
export KINLET_REQUIRE_NODE_SERVERS=1

presets=("$@")
((${#presets[@]})) || presets=(dev asan tsan fuzz)

timings=()
current=""
passed=0
failed=0
total_start=$SECONDS
summary() {
  local rc=$?
  echo
  echo "=== timings"
  ((${#timings[@]} == 0)) || printf '%s\n' "${timings[@]}"
  [[ -z $current ]] || printf '%-16s FAILED (exit %d)\n' "$current" "$rc"
  printf '%-16s %5ds\n' "total" $((SECONDS - total_start))
  echo "ctest: ${passed} passed, ${failed} failed"
}
trap summary EXIT

stage() {
  current=$1
  shift
  local start=$SECONDS
  echo
  echo "=== ${current}"
  "$@"
  timings+=("$(printf '%-16s %5ds' "$current" $((SECONDS - start)))")
  echo "=== ${current}: $((SECONDS - start))s"
  current=""
}

# Runs ctest for a preset and adds its counts (from ctest's "N tests failed out of M" line) to
# the totals, whether or not it passed.
run_ctest() {
  local log rc=0 line
  log=$(mktemp)
  ctest --preset "$1" 2>&1 | tee "$log" || rc=$?
  line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1]))
    passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  return "$rc"
}

for preset in "${presets[@]}"; do
  stage "${preset} configure" cmake --preset "$preset"
  stage "${preset} build" cmake --build --preset "$preset" -j2
  stage "${preset} test" run_ctest "$preset"
done
