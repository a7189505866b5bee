#!/usr/bin/env bash
# The full test run (what CI runs): installs the dependencies, then for each preset in turn
# configures, builds (-j2) and runs ctest, stopping at the first failure.
#   dev    Debug g++ -Werror; also builds the benchmarks (compile check only, not run)
#   clang  Debug clang++-14 -Werror -Wthread-safety
#   asan   g++ AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan   g++ ThreadSanitizer
# Presets to run may be given as arguments (default: all four, in that order).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh test

presets=("$@")
((${#presets[@]})) || presets=(dev clang asan tsan)

timings=()
current=""
total_start=$SECONDS
summary() {
  local rc=$?
  echo
  echo "=== timings"
  ((${#timings[@]} == 0)) || printf '%s\n' "${timings[@]}"
  [[ -z $current ]] || printf '%-16s FAILED (exit %d)\n' "$current" "$rc"
  printf '%-16s %5ds\n' "total" $((SECONDS - total_start))
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

for preset in "${presets[@]}"; do
  stage "${preset} configure" cmake --preset "$preset"
  stage "${preset} build" cmake --build --preset "$preset" -j2
  stage "${preset} test" ctest --preset "$preset"
done
