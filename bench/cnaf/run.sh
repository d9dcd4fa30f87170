#!/usr/bin/env bash
# CNAF performance benchmark: the same app (cnaf example `hello_app`) measured directly, through
# CNAF (every protection on `prevent`) and through nginx as a plain reverse proxy, with wrk at
# 64 connections, one run each, in two variants:
#   - trivial app: a fixed 13-byte answer (measures mostly "a proxy exists": on a small machine
#     wrk, the app and the proxy share the cores);
#   - working app: the same answer after ~WORK_US microseconds of CPU work per request
#     (default 150, calibrated against the thread CPU clock), like an app that renders a page.
# Then the latency at a fixed RATE (default 2000 requests/s, below saturation) for the working
# app direct, through CNAF and through nginx: what a proxy adds to each request. Then the
# inspection latency of typical requests.
#
#   bash bench/cnaf/run.sh [DURATION] [WORK_US]   # default 10s per target, 150 us of app work
#   PIN=1 bash bench/cnaf/run.sh                  # app on CPU 1; proxies and wrk on CPU 0
# Proxy CPU per request is the proxy process's user+system CPU time over the run divided by the
# requests served: the stable figure on a shared machine (requests/s move with other load).
# Needs: wrk and nginx (apt-get install wrk nginx-light); builds the cnaf examples in release.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10s}"
# requests/s of the fixed-rate latency runs (a third or less of what the working app serves)
RATE="${RATE:-2000}"
WORK_US="${2:-150}"
PIN="${PIN:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found; apt-get install wrk nginx-light" >&2; exit 2; }
done
cargo build --release -q -p cnaf --examples
BIN="$TARGET_DIR/release/examples"
APP=127.0.0.1:18081 CNAF=127.0.0.1:18080 NGINX=127.0.0.1:18082
WAPP=127.0.0.1:18083 WCNAF=127.0.0.1:18084 WNGINX=127.0.0.1:18085
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
# with PIN=1 the app runs on CPU 1, proxies and wrk on CPU 0 (needs 2 CPUs)
on_app_cpu() { if [ "$PIN" = 1 ]; then exec taskset -c 1 "$@"; else exec "$@"; fi; }
on_proxy_cpu() { if [ "$PIN" = 1 ]; then exec taskset -c 0 "$@"; else exec "$@"; fi; }

on_app_cpu "$BIN/hello_app" "$APP" & PIDS+=($!)
on_app_cpu "$BIN/hello_app" "$WAPP" "$WORK_US" & PIDS+=($!)
on_proxy_cpu "$BIN/cnaf_proxy" "$CNAF" "$APP" prevent >"$WORK/audits.jsonl" & PIDS+=($!)
CNAF_PID=$!
on_proxy_cpu "$BIN/cnaf_proxy" "$WCNAF" "$WAPP" prevent >"$WORK/audits-w.jsonl" & PIDS+=($!)
WCNAF_PID=$!
cat >"$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fcgi; uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
  upstream app { server $APP; keepalive 64; }
  upstream wapp { server $WAPP; keepalive 64; }
  server {
    listen $NGINX;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
  server {
    listen $WNGINX;
    location / {
      proxy_pass http://wapp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
on_proxy_cpu nginx -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=($!)
NGINX_PID=$!
sleep 1

# CPU time (clock ticks) used so far by a process and its children threads/workers
cpu_ticks() {
  local total=0 p
  for p in "$@" $(pgrep -P "$1" 2>/dev/null || true); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat")))
  done
  echo "$total"
}

PATH_Q='/catalogue/shoes?color=red&size=42&sort=price_asc&page=2'
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36'
HZ="$(getconf CLK_TCK)"
run_set() {
  printf '%-28s %12s %10s %10s %16s\n' target 'requests/s' 'p50' 'p99' 'proxy CPU/req'
  local pair name rest addr pid t0 t1 out cpu reqs rps p50 p99 non2xx
  for pair in "$@"; do
    name="${pair%%:*}" rest="${pair#*:}"
    addr="${rest%:*}" pid="${rest##*:}"
    [ -n "$pid" ] && t0="$(cpu_ticks "$pid")"
    out="$(on_proxy_cpu wrk -t2 -c64 -d"$DURATION" --latency -H "User-Agent: $UA" -H 'Cookie: session=abc123; theme=dark' "http://$addr$PATH_Q")"
    cpu=""
    if [ -n "$pid" ]; then
      t1="$(cpu_ticks "$pid")"
      reqs="$(awk '/requests in/ {print $1}' <<<"$out")"
      cpu="$(( (t1 - t0) * 1000000 / HZ / reqs )) us"
    fi
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
    p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
    non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
    printf '%-28s %12s %10s %10s %16s %s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "${non2xx:+(non-2xx: $non2xx)}"
  done
}
echo "trivial app (fixed answer; PIN=$PIN; load average: $(cut -d' ' -f1-3 /proc/loadavg)):"
run_set "app direct:$APP:" "through CNAF:$CNAF:$CNAF_PID" "through nginx:$NGINX:$NGINX_PID"
echo
echo "working app (~$WORK_US us CPU per request; PIN=$PIN; load average: $(cut -d' ' -f1-3 /proc/loadavg)):"
run_set "app direct:$WAPP:" "through CNAF:$WCNAF:$WCNAF_PID" "through nginx:$WNGINX:$NGINX_PID"
echo
# Latency below saturation: what each request gains by going through a proxy. wrk above sends as
# fast as the target answers, so its percentiles there are mostly queueing.
echo "fixed rate: $RATE requests/s over 64 connections, working app (fixed_rate; load average: $(cut -d' ' -f1-3 /proc/loadavg)):"
for pair in "app direct:$WAPP" "through CNAF:$WCNAF" "through nginx:$WNGINX"; do
  printf '%-16s ' "${pair%%:*}"
  (on_proxy_cpu "$BIN/fixed_rate" "${pair#*:}" "$RATE" "${DURATION%s}")
done
echo
echo "inspection latency (cnaf::inspect, release build):"
"$BIN/inspect_latency" 20000
