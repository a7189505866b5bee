#!/usr/bin/env bash
# Builds the benchmarks in Release and runs them with repetitions, printing the
# vCPU placement (near/far) before and after each binary. Results (JSON) go to
# build/release/bench/*.json. Usage: bench/run.sh [extra benchmark flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh test
cmake --preset release -DKINLET_BUILD_BENCH=ON -DKINLET_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release -j2
placement() { if [[ -x ../shared/tools/placement ]]; then ../shared/tools/placement; fi; }
for b in stream_bench end_to_end_bench fan_out_bench; do
  echo "== $b (placement before: $(placement))"
  build/release/bench/$b --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_out=build/release/bench/$b.json --benchmark_out_format=json "$@"
  echo "== $b (placement after: $(placement))"
done
