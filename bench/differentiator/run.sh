#!/usr/bin/env bash
# Decide() ns/op for the store's request shapes (Google Benchmark).
#   bench/differentiator/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$here/build}"
cmake --build "$build" --target bench_differentiator -j2 >/dev/null
exec "$build/differentiator/bench_differentiator" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true "${@:2}"
