#!/usr/bin/env bash
# Profiles the timed loop of `bench_invalidator eval-map N` (not the map load):
#   bench/invalidator/profile.sh [BUILD_DIR] [N] [CHANGES]
# Writes /tmp/cp-inval-perf.data and prints the top symbols.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-inval-release}
n=${2:-1000000}
changes=${3:-600000}
dir=$(mktemp -d)
mkfifo "$dir/ctl" "$dir/ack"
PERF_CTL_FIFO=$dir/ctl PERF_ACK_FIFO=$dir/ack perf record -D -1 --control "fifo:$dir/ctl,$dir/ack" \
  -g -o /tmp/cp-inval-perf.data -- taskset -c 0 "$build/invalidator/bench_invalidator" eval-map "$n" "$changes" 1
perf report -i /tmp/cp-inval-perf.data --no-children --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40 | cut -c1-160
rm -rf "$dir"
