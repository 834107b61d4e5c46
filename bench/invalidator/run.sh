#!/usr/bin/env bash
# Invalidator benchmarks: evaluation throughput (10k / 100k / 1M instances,
# with a lean in-memory index and with the real sqlmap::SqlMap)
# and invalidation latency (100 and 1000 changes/s, 100k cached pages)
# against a throwaway PostgreSQL. Prints one line per measurement.
#
#   bench/invalidator/run.sh [BUILD_DIR] [PG_PORT]
# Defaults: build-inval-release, 55524.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-inval-release}
port=${2:-55524}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCP_TEST_PG_PORT="$port" >/dev/null
cmake --build "$build" --target bench_invalidator -j2 >/dev/null
bin=$build/invalidator/bench_invalidator
"$src/scripts/pg" start "/tmp/cp-pgtest-$port" "$port" >/dev/null
conninfo="host=127.0.0.1 port=$port user=postgres dbname=postgres"

echo "# evaluation throughput, one core (decode + candidates + evaluate + eject bookkeeping)"
for n in 10000 100000 1000000; do
  taskset -c 0 "$bin" eval "$n" 300000 1
done
taskset -c 0 "$bin" eval 1000000 300000 100
echo "# the same through the real sqlmap::SqlMap (RocksDB + in-memory index; map writes on RemoveKeys skipped)"
for n in 10000 100000 1000000; do
  taskset -c 0 "$bin" eval-map "$n" 300000 1
done
taskset -c 0 "$bin" eval-map 1000000 300000 100

echo "# invalidation latency, commit_time -> Eject() returned, 100k cached pages"
for rate in 100 1000; do
  "$bin" latency "$conninfo" "$rate" 20 100000
done
