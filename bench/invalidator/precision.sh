#!/usr/bin/env bash
# Invalidation precision on the store's update mix against a throwaway
# PostgreSQL: CachePortal's ejections vs the table-level baseline; then the
# staleness watchdog's reaction time.
#
#   bench/invalidator/precision.sh [BUILD_DIR] [PG_PORT] [CHANGES]
# Defaults: build-inval-release, 55524, 300.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-inval-release}
port=${2:-55524}
changes=${3:-300}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCP_TEST_PG_PORT="$port" >/dev/null
cmake --build "$build" --target bench_invalidator_precision -j2 >/dev/null
"$src/scripts/pg" start "/tmp/cp-pgtest-$port" "$port" >/dev/null
conninfo="host=127.0.0.1 port=$port user=postgres dbname=postgres"
"$build/invalidator/bench_invalidator_precision" "$conninfo" "$changes"
# The staleness watchdog with a blocked Eject(): withdrawal past the bound, re-vouch delay.
cmake --build "$build" --target bench_invalidator_watchdog -j2 >/dev/null
"$build/invalidator/bench_invalidator_watchdog" "$conninfo" 20 0.5
