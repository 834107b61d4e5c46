#!/usr/bin/env bash
# Sniffer overhead: pgbench select-only (-S -M prepared) against the database
# directly, through the sniffer, and through PgBouncer (session pooling), at
# -c 1 and -c 8 (-j 2), in one run on one throwaway PostgreSQL.
#
#   bench/sniffer/run.sh              build (Release) if needed, run, print the table
#
# Environment:
#   DURATION=10          seconds per pgbench run
#   ROUNDS=3             rounds of (direct, sniffer, pgbouncer) interleaved; each
#                        figure is the median over rounds (the machine is shared,
#                        interleaving spreads other load evenly over the targets)
#   SNIFFER_BIN=path     use this binary (`cacheportal` or `cacheportal-sniffer`)
#                        instead of building build-sniffer-release
#   SNIFFER_THREADS=1    sniffer I/O threads
#   SNIFFER_POLL_US=N    sniffer --poll-us N (poll before sleeping; 0 = off;
#                        unset = the sniffer's default, 50)
#
# Prints tps per target, ratios vs direct and vs PgBouncer, and the latency
# each proxy adds per statement at -c 1: 1e6/tps_proxy - 1e6/tps_direct (µs).
# On a shared machine single runs swing widely, so it also prints the median
# of the per-round sniffer/PgBouncer ratios (the two run back to back) and
# each proxy's own CPU time per transaction (utime+stime from /proc), which
# other load barely moves.
# Targets (issue 4): sniffer >= 1.0x PgBouncer tps at -c 8, <= 30 µs added at -c 1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${SNIFFER_THREADS:-1}
POLL_ARGS=()
[ -n "${SNIFFER_POLL_US:-}" ] && POLL_ARGS=(--poll-us "$SNIFFER_POLL_US")
PG_DIR=/tmp/cp-bench-sniffer
PG_PORT=55520
SNIFFER_PORT=55522
BOUNCER_PORT=55523
BUILD=$ROOT/build-sniffer-release
DB=bench

pgbin=""
for v in 15 16 17; do
  if [ -x "/usr/lib/postgresql/$v/bin/pgbench" ]; then pgbin=/usr/lib/postgresql/$v/bin; break; fi
done
PGBENCH=${pgbin:+$pgbin/}pgbench
PSQL=${pgbin:+$pgbin/}psql
BOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
[ -x "$BOUNCER" ] || { echo "run.sh: $BOUNCER not found (apt-get install pgbouncer)" >&2; exit 1; }

# --- the sniffer binary (Release) -------------------------------------------
sniffer_cmd=()
if [ -n "${SNIFFER_BIN:-}" ]; then
  bin=$SNIFFER_BIN
else
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCP_TEST_PG_PORT=55521 >/dev/null
  fi
  # The all-parts binary when every part compiles, else the sniffer alone.
  if cmake --build "$BUILD" --target cacheportal -j2 >"$BUILD/bench-build.log" 2>&1; then
    bin=$BUILD/cli/cacheportal
  else
    echo "run.sh: 'cacheportal' does not build right now (see $BUILD/bench-build.log);" \
         "using cacheportal-sniffer" >&2
    cmake --build "$BUILD" --target cacheportal-sniffer -j2 >/dev/null
    bin=$BUILD/sniffer/cacheportal-sniffer
  fi
fi
case "$(basename "$bin")" in
  cacheportal) sniffer_cmd=("$bin" sniffer) ;;
  *) sniffer_cmd=("$bin") ;;
esac

work=$(mktemp -d /tmp/cp-bench-sniffer-XXXXXX)
chmod 755 "$work"
sniffer_pid=""
cleanup() {
  [ -n "$sniffer_pid" ] && kill "$sniffer_pid" 2>/dev/null && wait "$sniffer_pid" 2>/dev/null || true
  if [ -f "$work/pgbouncer.pid" ]; then kill "$(cat "$work/pgbouncer.pid")" 2>/dev/null || true; fi
  "$ROOT/scripts/pg" stop "$PG_DIR" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- database ---------------------------------------------------------------
# Ports in the 555xx range are also in the ephemeral range: a busy machine's
# outgoing connection (TIME_WAIT: 60 s) may hold $PG_PORT, so retry the start.
for attempt in $(seq 1 40); do
  "$ROOT/scripts/pg" start "$PG_DIR" "$PG_PORT" >/dev/null 2>"$work/pg-start.err" && break
  [ $attempt = 40 ] && { cat "$work/pg-start.err" >&2; exit 1; }
  sleep 2
done
$PSQL -X -q -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres \
  -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
$PGBENCH -i -s 10 -q -h 127.0.0.1 -p $PG_PORT -U postgres $DB >/dev/null 2>&1

# --- sniffer ----------------------------------------------------------------
# Both proxies run as children of this script (same session, so the same
# sched_autogroup as pgbench): on a busy machine a daemonized proxy is
# scheduled differently, which would skew the comparison.
"${sniffer_cmd[@]}" --listen 127.0.0.1:$SNIFFER_PORT --upstream 127.0.0.1:$PG_PORT \
  --threads "$THREADS" "${POLL_ARGS[@]}" --log-level warn >"$work/sniffer.log" 2>&1 &
sniffer_pid=$!

# --- PgBouncer (session pooling; it refuses to run as root) -------------------
cat >"$work/pgbouncer.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
EOF
echo '"postgres" ""' >"$work/userlist.txt"
if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$work"
  runuser -u postgres -- "$BOUNCER" -q "$work/pgbouncer.ini" &
else
  "$BOUNCER" -q "$work/pgbouncer.ini" &
fi

for port in $SNIFFER_PORT $BOUNCER_PORT; do
  for _ in $(seq 1 100); do
    $PSQL -X -q -h 127.0.0.1 -p "$port" -U postgres -d $DB -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

# --- runs ---------------------------------------------------------------------
declare -A TPS RUNS CPU LAST
bouncer_pid=$(cat "$work/pgbouncer.pid")
ticks() {  # utime+stime of a process, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run() {  # name port clients threads
  local out tps n pid="" t0=0 t1=0 cpu=""
  case $1 in sniffer) pid=$sniffer_pid ;; pgbouncer) pid=$bouncer_pid ;; esac
  [ -n "$pid" ] && t0=$(ticks "$pid")
  out=$($PGBENCH -S -M prepared -T "$DURATION" -c "$3" -j "$4" -n -h 127.0.0.1 -p "$2" \
        -U postgres $DB 2>&1) || { echo "$out" >&2; exit 1; }
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1)
  n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  RUNS[$1,$3]="${RUNS[$1,$3]:-} $tps"
  LAST[$1,$3]=$tps
  if [ -n "$pid" ]; then
    t1=$(ticks "$pid")
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
    CPU[$1,$3]="${CPU[$1,$3]:-} $cpu"
    printf '  round %d  %-10s -c %-2s tps %10.1f   proxy CPU %5.1f us/txn\n' \
      "$round" "$1" "$3" "$tps" "$cpu"
  else
    printf '  round %d  %-10s -c %-2s tps %10.1f\n' "$round" "$1" "$3" "$tps"
  fi
}
declare -A PAIRED ADDED
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "pgbench -S -M prepared -T $DURATION (scale 10), $(nproc) cores, sniffer threads=$THREADS, poll_us=${SNIFFER_POLL_US:-default}," \
     "median of $ROUNDS interleaved rounds"
echo "sniffer: ${sniffer_cmd[*]}"
echo "pgbouncer: $($BOUNCER --version | head -1), pool_mode=session"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for c in 1 8; do
    j=1; [ $c -gt 1 ] && j=2
    run direct $PG_PORT $c $j
    # The two proxies take turns going first, so a load burst from elsewhere
    # does not always land on the same one.
    if [ $((round % 2)) = 1 ]; then
      run sniffer $SNIFFER_PORT $c $j
      run pgbouncer $BOUNCER_PORT $c $j
    else
      run pgbouncer $BOUNCER_PORT $c $j
      run sniffer $SNIFFER_PORT $c $j
    fi
    PAIRED[$c]="${PAIRED[$c]:-} $(awk -v s="${LAST[sniffer,$c]}" -v b="${LAST[pgbouncer,$c]}" \
      'BEGIN { printf "%.3f", s / b }')"
    for t in sniffer pgbouncer; do
      ADDED[$t,$c]="${ADDED[$t,$c]:-} $(awk -v x="${LAST[$t,$c]}" -v d="${LAST[direct,$c]}" \
        'BEGIN { printf "%.1f", 1e6 / x - 1e6 / d }')"
    done
  done
done
for k in "${!RUNS[@]}"; do TPS[$k]=$(echo "${RUNS[$k]}" | median); done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
printf '%-10s %6s %12s %10s %13s\n' target clients tps vs_direct vs_pgbouncer
for c in 1 8; do
  for t in direct sniffer pgbouncer; do
    awk -v t=$t -v c=$c -v x="${TPS[$t,$c]}" -v d="${TPS[direct,$c]}" -v b="${TPS[pgbouncer,$c]}" \
      'BEGIN { printf "%-10s %6d %12.1f %9.2fx %12.2fx\n", t, c, x, x / d, x / b }'
  done
done
echo
for t in sniffer pgbouncer; do
  awk -v t=$t -v x="${TPS[$t,1]}" -v d="${TPS[direct,1]}" \
    'BEGIN { printf "added latency per statement at -c 1, %-9s: %6.1f us\n", t, 1e6 / x - 1e6 / d }'
done
for c in 1 8; do
  printf 'sniffer/pgbouncer per round at -c %d: %s  (median %s)\n' "$c" "${PAIRED[$c]# }" \
    "$(echo "${PAIRED[$c]}" | median)"
  printf 'proxy CPU per transaction at -c %d (median): sniffer %s us, pgbouncer %s us\n' "$c" \
    "$(echo "${CPU[sniffer,$c]}" | median)" "$(echo "${CPU[pgbouncer,$c]}" | median)"
done
for t in sniffer pgbouncer; do
  printf 'added latency at -c 1 per round, %-9s: %s  (median %s us)\n' "$t" "${ADDED[$t,1]# }" \
    "$(echo "${ADDED[$t,1]}" | median)"
done
awk -v s="${TPS[sniffer,8]}" -v b="${TPS[pgbouncer,8]}" -v s1="${TPS[sniffer,1]}" -v d1="${TPS[direct,1]}" \
  -v p="$(echo "${PAIRED[8]}" | median)" \
  'BEGIN {
     r = s / b; l = 1e6 / s1 - 1e6 / d1
     printf "target sniffer/pgbouncer at -c 8 >= 1.00: %.2f %s (medians); %.2f %s (paired rounds)\n",
       r, (r >= 1.0 ? "MET" : "NOT MET"), p, (p >= 1.0 ? "MET" : "NOT MET")
     printf "target added latency at -c 1 <= 30 us:   %.1f %s\n", l, (l <= 30 ? "MET" : "NOT MET")
   }'
if grep -q "level=error\|level=warn" "$work/sniffer.log"; then
  echo "sniffer log warnings:"; grep "level=error\|level=warn" "$work/sniffer.log" | head -5
fi
