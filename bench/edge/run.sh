#!/usr/bin/env bash
# Edge cache benchmark: hit throughput and p99 of the CachePortal edge side by
# side with nginx proxy_cache and Varnish, all three fronting the SAME origin
# (an nginx serving static 4 KiB and 32 KiB pages), then memory per cached
# 4 KiB page. One run prints everything, including the ratios.
#
#   bench/edge/run.sh                 # builds the Release edge, runs, prints
#   DURATION=30s CONNS=128 bench/edge/run.sh
#   SKIP_BUILD=1 bench/edge/run.sh    # reuse the existing Release build
#   MEM_PAGES=100000 (default)        # pages filled for the memory measurement
#
# Each server gets EDGE_THREADS workers (default 2: edge --threads 2, nginx
# worker_processes 2, Varnish thread_pools 2); wrk runs on the same 2-core
# machine, so absolute numbers are modest, but the comparison is like for like.
#
# The tail on a 2-core machine: with wrk -t2 every wrk thread shares a core
# with a server thread or with the other wrk thread, and p99 measures that
# time-sharing (a scheduler slice, 3-5 ms here, the same for all three
# servers). To see the servers' own tail, give the client a core of its own:
#   SERVER_CPUS=1 WRK_CPUS=0 WRK_THREADS=1 EDGE_THREADS=1 bench/edge/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-edge-release}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
MEM_PAGES=${MEM_PAGES:-100000}
ORIGIN_PORT=${ORIGIN_PORT:-18180}
EDGE_PORT=${EDGE_PORT:-18181}
EDGE_ADMIN_PORT=${EDGE_ADMIN_PORT:-18191}
NGINX_PORT=${NGINX_PORT:-18182}
VARNISH_PORT=${VARNISH_PORT:-18183}
# All benchmarked processes (the three servers, the origin and wrk) run at
# this nice level, so background work on a shared machine disturbs them less;
# the same for all, so the comparison stays fair. Empty = don't renice.
BENCH_NICE=${BENCH_NICE:--10}
# wrk's own nice level (default: the same as the servers).
WRK_NICE=${WRK_NICE-$BENCH_NICE}
EDGE_THREADS=${EDGE_THREADS:-2}
# CPU sets (taskset lists; empty = no pinning): SERVER_CPUS for the three
# caches and the origin, WRK_CPUS for wrk. Splitting them (SERVER_CPUS=1
# WRK_CPUS=0) stands in for a client on a machine of its own: wrk's threads
# then never preempt a server's, so the tail measures the server, not how the
# scheduler interleaves the two on shared cores.
SERVER_CPUS=${SERVER_CPUS:-}
WRK_CPUS=${WRK_CPUS:-}
NGINX=${NGINX:-/usr/sbin/nginx}
VARNISHD=${VARNISHD:-/usr/sbin/varnishd}

for tool in "$NGINX" "$VARNISHD" wrk curl; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/cp-bench-edge.XXXXXX)
chmod 755 "$TMP"  # nginx workers run unprivileged and must read the pages
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$TMP/origin.pid" ] && kill "$(cat "$TMP/origin.pid")" 2>/dev/null || true
  [ -f "$TMP/proxy.pid" ] && kill "$(cat "$TMP/proxy.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== building the Release edge in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCP_TEST_PG_PORT=55522 >/dev/null
  cmake --build "$BUILD" --target cacheportal-edge -j2 >/dev/null
fi
EDGE_BIN=$BUILD/edgecache/cacheportal-edge
[ -x "$EDGE_BIN" ] || { echo "no edge binary at $EDGE_BIN" >&2; exit 1; }

# ---- the origin: static pages --------------------------------------------
mkdir -p "$TMP/www" "$TMP/logs" "$TMP/ngx-cache" "$TMP/varnish"
head -c 4096 /dev/urandom | base64 -w 0 | head -c 4096 > "$TMP/www/4k.html"
head -c 32768 /dev/urandom | base64 -w 0 | head -c 32768 > "$TMP/www/32k.html"
# An ESI page: a template of 4 x 512 bytes around 4 includes of 1 KiB
# fragments (6 KiB assembled), and the bytes it must assemble to.
mkdir -p "$TMP/www/esi"
# (Varnish parses ESI only in bodies that start with '<'.)
printf '<div>' > "$TMP/esi-expected.html"
printf '<div>' > "$TMP/www/esi/page.html"
for i in 1 2 3 4; do
  head -c 768 /dev/urandom | base64 -w 0 | head -c 512 > "$TMP/esi-verbatim-$i"
  head -c 1536 /dev/urandom | base64 -w 0 | head -c 1024 > "$TMP/www/esi/f$i.html"
  cat "$TMP/esi-verbatim-$i" >> "$TMP/www/esi/page.html"
  printf '<esi:include src="/esi/f%d.html"/>' "$i" >> "$TMP/www/esi/page.html"
  cat "$TMP/esi-verbatim-$i" "$TMP/www/esi/f$i.html" >> "$TMP/esi-expected.html"
done

cat > "$TMP/origin.conf" <<EOF
worker_processes 1;
pid $TMP/origin.pid;
error_log $TMP/logs/origin.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/html;
  client_body_temp_path $TMP/logs/origin-body;
  proxy_temp_path $TMP/logs/origin-proxy;
  fastcgi_temp_path $TMP/logs/origin-fcgi;
  uwsgi_temp_path $TMP/logs/origin-uwsgi;
  scgi_temp_path $TMP/logs/origin-scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    root $TMP/www;
    # /p/N: distinct URLs with a 4 KiB body, for the memory measurement.
    location /p/ { try_files /4k.html =404; }
    # Asks surrogates to process ESI (CachePortal's edge looks for this;
    # Varnish is told by its VCL).
    location /esi/ { add_header Surrogate-Control 'content="ESI/1.0"'; }
  }
}
EOF

# ---- nginx proxy_cache -----------------------------------------------------
cat > "$TMP/proxy.conf" <<EOF
worker_processes $EDGE_THREADS;
pid $TMP/proxy.pid;
error_log $TMP/logs/proxy.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/logs/proxy-body;
  proxy_temp_path $TMP/logs/proxy-proxy;
  fastcgi_temp_path $TMP/logs/proxy-fcgi;
  uwsgi_temp_path $TMP/logs/proxy-uwsgi;
  scgi_temp_path $TMP/logs/proxy-scgi;
  keepalive_requests 1000000;
  proxy_cache_path $TMP/ngx-cache levels=1:2 keys_zone=edge:64m max_size=2g inactive=1h;
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_valid 200 1h;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
EOF

# ---- the edge ----------------------------------------------------------------
cat > "$TMP/rules.yaml" <<EOF
version: 1
defaults:
  ttl: 3600
rules:
  - name: everything
    match: {methods: [GET, HEAD], path: "/**"}
    action: cache
EOF
cat > "$TMP/edge.yaml" <<EOF
common:
  log_level: warn
edge:
  admin_token: bench
  threads: 2
  memory_budget_bytes: 4000000000
EOF

NICE=()
[ -n "$BENCH_NICE" ] && NICE=(nice -n "$BENCH_NICE")
WRK_NICE_CMD=()
[ -n "$WRK_NICE" ] && WRK_NICE_CMD=(nice -n "$WRK_NICE")
[ -n "$SERVER_CPUS" ] && NICE=(taskset -c "$SERVER_CPUS" "${NICE[@]}")
[ -n "$WRK_CPUS" ] && WRK_NICE_CMD=(taskset -c "$WRK_CPUS" "${WRK_NICE_CMD[@]}")
"${NICE[@]}" "$NGINX" -c "$TMP/origin.conf" -p "$TMP"
"${NICE[@]}" "$NGINX" -c "$TMP/proxy.conf" -p "$TMP"
cat > "$TMP/varnish.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN_PORT"; }
sub vcl_backend_response {
  if (bereq.url ~ "^/esi/") { set beresp.do_esi = true; }
}
EOF
"${NICE[@]}" "$VARNISHD" -F -j none -n "$TMP/varnish" -a "127.0.0.1:$VARNISH_PORT" -f "$TMP/varnish.vcl" \
  -s malloc,2g -p default_ttl=3600 -p thread_pools="$EDGE_THREADS" >"$TMP/logs/varnish.out" 2>&1 &
VARNISH_PID=$!
PIDS+=($VARNISH_PID)
"${NICE[@]}" "$EDGE_BIN" --config "$TMP/edge.yaml" --rules "$TMP/rules.yaml" --ttl-only \
  --threads "$EDGE_THREADS" \
  --listen "127.0.0.1:$EDGE_PORT" --admin "127.0.0.1:$EDGE_ADMIN_PORT" \
  --origin "127.0.0.1:$ORIGIN_PORT" >"$TMP/logs/edge.out" 2>&1 &
EDGE_PID=$!
PIDS+=($EDGE_PID)

wait_port() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/4k.html" && return 0
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  cat "$TMP"/logs/*.out "$TMP"/logs/*.err 2>/dev/null >&2 || true
  exit 1
}
for p in $ORIGIN_PORT $NGINX_PORT $VARNISH_PORT $EDGE_PORT; do wait_port "$p"; done

# ---- warm and check that the second request is a hit -----------------------
hit_header() {  # port page -> the header that says "hit" on that server
  curl -s -o /dev/null -D - "http://127.0.0.1:$1/$2" | tr -d '\r' |
    grep -iE '^(x-cache|age):' | tr '\n' ' '
}
for page in 4k.html 32k.html; do
  for p in $EDGE_PORT $NGINX_PORT $VARNISH_PORT; do
    curl -s -o /dev/null "http://127.0.0.1:$p/$page"
    curl -s -o /dev/null "http://127.0.0.1:$p/$page"
  done
  echo "warm $page: edge[$(hit_header $EDGE_PORT $page)] nginx[$(hit_header $NGINX_PORT $page)]" \
       "varnish[$(hit_header $VARNISH_PORT $page)]"
done

for page in 4k.html 32k.html; do
  for p in $EDGE_PORT $NGINX_PORT $VARNISH_PORT; do
    code=$(curl -s -o "$TMP/check" -w '%{http_code}' "http://127.0.0.1:$p/$page")
    cmp -s "$TMP/check" "$TMP/www/$page" || { echo "port $p: $page differs from the origin's (HTTP $code)" >&2; exit 1; }
  done
done

# ESI: the edge and Varnish assemble the page (nginx proxy_cache has no ESI).
for p in $EDGE_PORT $VARNISH_PORT; do
  for _ in 1 2 3; do curl -s -o "$TMP/check" "http://127.0.0.1:$p/esi/page.html"; done
  cmp -s "$TMP/check" "$TMP/esi-expected.html" || { echo "port $p: the assembled ESI page differs from the expected bytes" >&2; exit 1; }
done
echo "warm esi/page.html: edge[$(hit_header $EDGE_PORT esi/page.html)] varnish[$(hit_header $VARNISH_PORT esi/page.html)]"

# ---- wrk --------------------------------------------------------------------
to_ms() {  # "1.23ms" | "870.00us" | "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n = n / 1000; else if (u == "s") n = n * 1000; else if (u == "m") n = n * 60000;
    printf "%.3f", n }'
}
# CPU time (user+system, clock ticks) of a process and all its descendants:
# CPU per request is far less sensitive to a busy machine than req/s or p99.
tree_ticks() {
  local pids=("$1") i=0 total=0 p
  while [ $i -lt ${#pids[@]} ]; do
    for p in $(ps -o pid= --ppid "${pids[$i]}" 2>/dev/null); do pids+=("$p"); done
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(sed -E 's/.*\) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
declare -A RPS P99 CPU
run_wrk() {  # name port page root-pid
  local out t0 t1
  t0=$(tree_ticks "$4")
  out=$("${WRK_NICE_CMD[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2/$3")
  t1=$(tree_ticks "$4")
  RPS[$1/$3]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P99[$1/$3]=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  local total
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  CPU[$1/$3]=$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$total" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  local errs
  errs=$(echo "$out" | grep -E 'Non-2xx|Socket errors' || true)
  printf "%-8s %-9s %12s req/s   p99 %8s ms   cpu %6s us/req %s\n" "$1" "$3" "${RPS[$1/$3]}" \
    "${P99[$1/$3]}" "${CPU[$1/$3]}" "$errs"
}
echo
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)   nice: ${BENCH_NICE:-none}   edge threads: $EDGE_THREADS   cpus: servers ${SERVER_CPUS:-any}, wrk ${WRK_CPUS:-any}"
echo "== wrk -t$WRK_THREADS -c$CONNS -d$DURATION --latency (all hits)"
for page in 4k.html 32k.html; do
  run_wrk edge $EDGE_PORT $page $EDGE_PID
  run_wrk nginx $NGINX_PORT $page "$(cat "$TMP/proxy.pid")"
  run_wrk varnish $VARNISH_PORT $page $VARNISH_PID
done
run_wrk edge $EDGE_PORT esi/page.html $EDGE_PID
run_wrk varnish $VARNISH_PORT esi/page.html $VARNISH_PID

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== ratios (edge / other, req/s; target >= 1.00) and edge p99 (target <= 2 ms)"
for page in 4k.html 32k.html; do
  awk -v e="${RPS[edge/$page]}" -v n="${RPS[nginx/$page]}" -v v="${RPS[varnish/$page]}" \
      -v p="${P99[edge/$page]}" -v page="$page" \
      'BEGIN { printf "%-9s edge/nginx %.2f   edge/varnish %.2f   edge p99 %.3f ms\n", page, e/n, e/v, p }'
done
awk -v e="${RPS[edge/esi/page.html]}" -v v="${RPS[varnish/esi/page.html]}" \
    -v p="${P99[edge/esi/page.html]}" -v q="${P99[varnish/esi/page.html]}" \
    'BEGIN { printf "esi page (4 includes, 6 KiB assembled)  edge/varnish %.2f   p99 edge %.3f ms, varnish %.3f ms\n", e/v, p, q }'
echo "== CPU per request (us of user+system time; lower is better; robust to a busy machine)"
for page in 4k.html 32k.html; do
  echo "$page  edge ${CPU[edge/$page]}   nginx ${CPU[nginx/$page]}   varnish ${CPU[varnish/$page]}"
done
echo "esi page  edge ${CPU[edge/esi/page.html]}   varnish ${CPU[varnish/esi/page.html]}"

# ---- memory per cached 4 KiB page ------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$EDGE_PID/status"; }
stat_field() {
  curl -s -H "Authorization: Bearer bench" "http://127.0.0.1:$EDGE_ADMIN_PORT/stats" |
    sed -E "s/.*\"$1\":([0-9]+).*/\1/"
}
echo
echo "== memory: $MEM_PAGES distinct 4 KiB pages into the edge"
before_rss=$(rss_kb)
before_objects=$(stat_field stored_objects)
curl -s -o /dev/null "http://127.0.0.1:$EDGE_PORT/p/[1-$MEM_PAGES]"
after_rss=$(rss_kb)
after_objects=$(stat_field stored_objects)
stored_bytes=$(stat_field stored_bytes)
awk -v b="$before_rss" -v a="$after_rss" -v o1="$before_objects" -v o2="$after_objects" \
    -v sb="$stored_bytes" 'BEGIN {
  n = o2 - o1;
  printf "objects stored: %d   RSS delta: %.1f MiB   per page: %.0f bytes (%.2f KiB; target <= 5 KiB)\n",
         n, (a - b) / 1024, (a - b) * 1024 / n, (a - b) / n;
  printf "budget charge per object (store accounting): %.0f bytes\n", sb / o2 }'
