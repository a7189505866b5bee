#!/usr/bin/env bash
# Installs the dependencies, builds the clickstream example in Release and runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake --preset release -DKINLET_BUILD_TESTS=OFF -DKINLET_BUILD_BENCH=OFF
cmake --build --preset release -j2 --target clickstream
build/release/examples/clickstream "$@"
