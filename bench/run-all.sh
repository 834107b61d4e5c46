#!/usr/bin/env bash
# Every benchmark of the project, one after another, from one Release build,
# each output kept in $OUT/<name>.txt, then the lines that carry the issues'
# target figures. Run it on a machine doing nothing else: the benchmarks share
# two cores with what they measure, so other load moves every number.
#
#   bench/run-all.sh                      # all, ~25 minutes on 2 cores
#   ONLY="sniffer edge" bench/run-all.sh  # a subset: store sniffer sqlmap edge
#                                         # invalidator precision paper
#   BUILD=build-release OUT=out/bench-all (defaults)
#
# Needs the bench packages: scripts/install-deps --bench (wrk, pgbouncer,
# nginx-light, varnish).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-release}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${OUT:-$ROOT/out/bench-all-$(date -u +%Y%m%d-%H%M%S)}
ONLY=${ONLY:-store sniffer sqlmap edge invalidator precision paper}
mkdir -p "$OUT"

echo "== building (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target cacheportal cacheportal-store cacheportal-bench \
  cacheportal-edge sqlmap_bench bench_invalidator bench_invalidator_precision \
  bench_invalidator_watchdog >"$OUT/build.log" 2>&1 ||
  { echo "build failed: $OUT/build.log" >&2; tail -20 "$OUT/build.log" >&2; exit 1; }

run() {  # name, command...
  local name=$1
  shift
  echo "== $name ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
  if "$@" >"$OUT/$name.txt" 2>&1; then
    echo "   ok -> $OUT/$name.txt"
  else
    echo "   FAILED ($?) -> $OUT/$name.txt"
  fi
}

for part in $ONLY; do
  case $part in
    store) run store "$ROOT/bench/store/run.sh" "$BUILD/sample-app/cacheportal-store" ;;
    sniffer) run sniffer env SNIFFER_BIN="$BUILD/cli/cacheportal" ROUNDS="${SNIFFER_ROUNDS:-5}" \
      "$ROOT/bench/sniffer/run.sh" ;;
    sqlmap) run sqlmap "$BUILD/sqlmap/sqlmap_bench" --repeat 5 --path "$OUT/sqlmap-bench-db" ;;
    edge) run edge env BUILD="$BUILD" SKIP_BUILD=1 "$ROOT/bench/edge/run.sh" ;;
    invalidator) run invalidator "$ROOT/bench/invalidator/run.sh" "$BUILD" ;;
    precision) run precision "$ROOT/bench/invalidator/precision.sh" "$BUILD" ;;
    paper) run paper env BUILD="$BUILD" SKIP_BUILD=1 OUT="$OUT/paper" "$ROOT/bench/paper/run.sh" ;;
    *) echo "unknown part '$part'" >&2 ;;
  esac
done
rm -rf "$OUT/sqlmap-bench-db"
echo "== results in $OUT"
