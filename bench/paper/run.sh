#!/usr/bin/env bash
# The CachePortal paper's PetStore experiment on this machine, end to end:
# a throwaway PostgreSQL, the store loaded at $SCALE, `cacheportal serve`
# (edge + sniffer + map + invalidator) in front of it on ports of its own (so
# it never clashes with scripts/demo), then `cacheportal bench`: the main runs
# without and with the cache, the user-count sweep under a p95 bound, the
# invalidation probe and the staleness audit. Writes $OUT/report.html and the
# CSV files, prints the summary, stops everything it started.
#
#   bench/paper/run.sh                       # build (Release) + run the default bench
#   SKIP_BUILD=1 bench/paper/run.sh          # reuse the build in $BUILD
#   SCALE=10 USERS=32 DURATION=30 WRITE_RATE=2 SWEEP=1,2,4,8,16,32,64,128,256,512,1024 \
#     SWEEP_DURATION=6 BOUND_MS=100 RYW_SECONDS=2 OUT=bench-out/paper bench/paper/run.sh
#
# If `cacheportal serve` is not available the script runs the no-cache half
# only (store straight to PostgreSQL) and says so.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench-release}
SCALE=${SCALE:-10}
USERS=${USERS:-32}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
WRITE_RATE=${WRITE_RATE:-2}
SWEEP=${SWEEP:-1,2,4,8,16,24,32,48,64,96,128,192,256,384,512,768,1024,1536,2048}
SWEEP_DURATION=${SWEEP_DURATION:-6}
BOUND_MS=${BOUND_MS:-100}
THINK_MS=${THINK_MS:-0}
OUT=${OUT:-$ROOT/out/paper-$(date -u +%Y%m%d-%H%M%S)}
PG_PORT=${PG_PORT:-55530}
STORE_PORT=${STORE_PORT:-28281}
DIRECT_PORT=${DIRECT_PORT:-28282}
EDGE_PORT=${EDGE_PORT:-28280}
ADMIN_PORT=${ADMIN_PORT:-28290}
SNIFFER_PORT=${SNIFFER_PORT:-26433}
STORE_THREADS=${STORE_THREADS:-4}
TOKEN=bench-token
RYW_SECONDS=${RYW_SECONDS:-2}
EXTRA=("$@")  # passed through to cacheportal bench

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== building (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCP_TEST_PG_PORT=55531 >/dev/null
  cmake --build "$BUILD" --target cacheportal-store cacheportal-bench -j2 >/dev/null
  cmake --build "$BUILD" --target cacheportal -j2 >/dev/null 2>&1 || echo "== note: the cacheportal binary did not build"
fi
STORE_BIN=$BUILD/sample-app/cacheportal-store
BENCH_BIN=$BUILD/bench/cacheportal-bench
CP_BIN=$BUILD/cli/cacheportal
for b in "$STORE_BIN" "$BENCH_BIN"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }; done

TMP=$(mktemp -d /tmp/cp-bench-paper.XXXXXX)
chmod 755 "$TMP"
PGDIR=$TMP/pg
PIDS=()
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not cut the cleanup short
  trap - EXIT
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$ROOT/scripts/pg" stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup INT TERM EXIT

wait_port() {  # port, what
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for $2 on port $1" >&2
  for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "-- $f:" >&2; tail -20 "$f" >&2; }; done
  return 1
}

t0=$(date +%s)
echo "== PostgreSQL on port $PG_PORT ($PGDIR)"
"$ROOT/scripts/pg" start "$PGDIR" "$PG_PORT" >/dev/null
DB="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"
echo "== loading the store at scale $SCALE"
"$STORE_BIN" load --scale "$SCALE" --database "$DB"

serve_ok=0
if [ -x "$CP_BIN" ] && "$CP_BIN" serve --help >/dev/null 2>&1; then serve_ok=1; fi

cat > "$TMP/cacheportal.yaml" <<YAML
common:
  log_level: warn
  database: "$DB"
store:
  listen_port: $STORE_PORT
  database: "host=127.0.0.1 port=$SNIFFER_PORT user=postgres dbname=postgres sslmode=disable"
  threads: $STORE_THREADS
sniffer:
  listen_port: $SNIFFER_PORT
  upstream_port: $PG_PORT
sqlmap:
  path: $TMP/sqlmap
edge:
  listen_port: $EDGE_PORT
  admin_port: $ADMIN_PORT
  origin_port: $STORE_PORT
  rules_file: $ROOT/config/rules.yaml
  # Read-your-writes follows the session cookie (signed-in buyers only).
  read_your_writes_seconds: $RYW_SECONDS
YAML

mode=both
if [ $serve_ok = 1 ]; then
  echo "== cacheportal serve (edge :$EDGE_PORT, admin :$ADMIN_PORT, sniffer :$SNIFFER_PORT)"
  "$CP_BIN" serve --config "$TMP/cacheportal.yaml" --admin-token "$TOKEN" >"$TMP/serve.log" 2>&1 &
  PIDS+=($!)
  wait_port "$SNIFFER_PORT" sniffer
  store_db="host=127.0.0.1 port=$SNIFFER_PORT user=postgres dbname=postgres sslmode=disable"
else
  echo "== NOTE: 'cacheportal serve' is not available: running the no-cache half only"
  mode=origin
  store_db=$DB
fi
# The baseline ("without CachePortal") is a second store process that talks
# to PostgreSQL directly, so it pays for neither the sniffer nor the edge.
echo "== the store without CachePortal on :$DIRECT_PORT"
"$STORE_BIN" serve --config "$TMP/cacheportal.yaml" --database "$DB" \
  --listen "127.0.0.1:$DIRECT_PORT" --threads "$STORE_THREADS" >"$TMP/store-direct.log" 2>&1 &
PIDS+=($!)
wait_port "$DIRECT_PORT" "direct store"
echo "== the store behind CachePortal on :$STORE_PORT"
"$STORE_BIN" serve --config "$TMP/cacheportal.yaml" --database "$store_db" \
  --listen "127.0.0.1:$STORE_PORT" --threads "$STORE_THREADS" >"$TMP/store.log" 2>&1 &
PIDS+=($!)
wait_port "$STORE_PORT" store
if [ $serve_ok = 1 ]; then
  wait_port "$EDGE_PORT" edge
  # The edge serves hits only once the invalidator vouches for it.
  vouched=0
  for _ in $(seq 1 100); do
    curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/stats" | grep -q '"vouched":true' && { vouched=1; break; }
    sleep 0.2
  done
  [ $vouched = 1 ] || echo "== WARNING: the invalidator has not vouched for the edge after 20 s (no hits until it does)"
fi

setup="scale $SCALE ($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); store threads $STORE_THREADS, pool 8;"
setup+=" baseline = a second store process straight to PostgreSQL (no sniffer, no edge);"
setup+=" edge read_your_writes_seconds $RYW_SECONDS;"
setup+=" everything (PostgreSQL, store, cacheportal serve, the bench client) on one machine; think time ${THINK_MS} ms; writer $WRITE_RATE changes/s"
[ $mode = origin ] && setup+="; NO CACHE RUN: cacheportal serve unavailable"

echo "== cacheportal bench (mode $mode) -> $OUT"
set +e
"$BENCH_BIN" --origin "http://127.0.0.1:$DIRECT_PORT" --edge "http://127.0.0.1:$EDGE_PORT" \
  --admin "http://127.0.0.1:$ADMIN_PORT" --admin-token "$TOKEN" --database "$DB" \
  --mode "$mode" --users "$USERS" --duration "$DURATION" --warmup "$WARMUP" \
  --think-ms "$THINK_MS" --write-rate "$WRITE_RATE" --sweep "$SWEEP" \
  --sweep-duration "$SWEEP_DURATION" --bound-ms "$BOUND_MS" --out "$OUT" --setup "$setup" \
  "${EXTRA[@]}"
rc=$?
set -e
if [ $serve_ok = 1 ] && [ -d "$OUT" ]; then
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/stats" >"$OUT/edge-stats.json" || true
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" >"$OUT/edge-metrics.txt" || true
  cp "$TMP/serve.log" "$OUT/serve.log" 2>/dev/null || true
fi
echo "== done in $(( $(date +%s) - t0 )) s (bench exit $rc); logs were in $TMP (removed)"
[ -s "$TMP/serve.log" ] && { echo "-- last lines of the serve log:"; tail -5 "$TMP/serve.log"; }
exit $rc
