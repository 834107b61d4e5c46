#!/usr/bin/env bash
# The store's own (uncached) throughput and latency on a catalogue browse mix:
# the baseline that CachePortal's figures are compared with.
#
#   bench/store/run.sh [PATH/TO/cacheportal-store]
#
# Builds nothing: uses the given binary, else build-release/ or
# build-store-release/. Starts a throwaway PostgreSQL (scripts/pg) on
# PG_PORT, loads SCALE, serves on HTTP_PORT with THREADS workers, runs
#   wrk -t2 -c$CONNECTIONS -d$DURATION --latency -s bench/store/browse.lua
# after a short warm-up, prints wrk's report and a summary line, and stops
# everything it started.
# Env (defaults): PG_PORT 55510, HTTP_PORT 18081, SCALE 100, THREADS 4,
#                 POOL 8, CONNECTIONS 32, DURATION 10s.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

pg_port=${PG_PORT:-55510}
http_port=${HTTP_PORT:-18081}
scale=${SCALE:-100}
threads=${THREADS:-4}
pool=${POOL:-8}
connections=${CONNECTIONS:-32}
duration=${DURATION:-10s}

bin=${1:-}
if [ -z "$bin" ]; then
  for b in build-release/sample-app/cacheportal-store build-store-release/sample-app/cacheportal-store; do
    if [ -x "$b" ]; then bin=$b; break; fi
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "bench/store: no cacheportal-store binary (build the release preset or pass a path)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench/store: wrk not found (apt-get install wrk)" >&2; exit 2; }

pgdir=$(mktemp -d /tmp/cp-bench-store.XXXXXX)
cfg=$(mktemp /tmp/cp-bench-store.XXXXXX.yaml)
store_pid=""
cleanup() {
  if [ -n "$store_pid" ]; then kill -TERM "$store_pid" 2>/dev/null || true; wait "$store_pid" 2>/dev/null || true; fi
  scripts/pg stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$pgdir" "$cfg"
}
trap cleanup EXIT

scripts/pg start "$pgdir" "$pg_port" >/dev/null
db="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
load_start=$(date +%s.%N)
"$bin" load --scale "$scale" --database "$db"
load_end=$(date +%s.%N)

printf 'common:\n  log_level: warn\nstore:\n  pool_size: %s\n' "$pool" >"$cfg"
"$bin" serve --config "$cfg" --listen "127.0.0.1:$http_port" --threads "$threads" --database "$db" &
store_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null && break
  sleep 0.1
done

url="http://127.0.0.1:$http_port"
export SCALE=$scale
wrk -t2 -c"$connections" -d2s -s bench/store/browse.lua "$url" >/dev/null  # warm-up
out=$(wrk -t2 -c"$connections" -d"$duration" --latency -s bench/store/browse.lua "$url")
echo "$out"

rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
printf '\nstore baseline: scale %s, %s store threads, pool %s, wrk -t2 -c%s -d%s: %s req/s, p50 %s, p99 %s, non-2xx %s; load took %.1f s\n' \
  "$scale" "$threads" "$pool" "$connections" "$duration" "$rps" "$p50" "$p99" "${non2xx:-0}" \
  "$(echo "$load_end - $load_start" | bc)"
