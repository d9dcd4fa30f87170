#!/usr/bin/env bash
# CNAF performance benchmark: the same app (cnaf example `hello_app`) measured directly, through
# CNAF (every protection on `prevent`) and through nginx as a plain reverse proxy, with wrk at
# 64 connections, one run each, then the inspection latency of typical requests.
#
#   bash bench/cnaf/run.sh [DURATION]        # default 10s per target
# Needs: wrk and nginx (apt-get install wrk nginx-light); builds the cnaf examples in release.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10s}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found; apt-get install wrk nginx-light" >&2; exit 2; }
done
cargo build --release -q -p cnaf --examples
BIN="$TARGET_DIR/release/examples"
APP=127.0.0.1:18081 CNAF=127.0.0.1:18080 NGINX=127.0.0.1:18082
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/hello_app" "$APP" & PIDS+=($!)
"$BIN/cnaf_proxy" "$CNAF" "$APP" prevent >"$WORK/audits.jsonl" & PIDS+=($!)
CNAF_PID=$!
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
}
CONF
nginx -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=($!)
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
printf '%-28s %12s %10s %10s %16s\n' target 'requests/s' 'p50' 'p99' 'proxy CPU/req'
for pair in "app direct:$APP:" "through CNAF:$CNAF:$CNAF_PID" "through nginx:$NGINX:$NGINX_PID"; do
  name="${pair%%:*}" rest="${pair#*:}"
  addr="${rest%:*}" pid="${rest##*:}"
  [ -n "$pid" ] && t0="$(cpu_ticks "$pid")"
  out="$(wrk -t2 -c64 -d"$DURATION" --latency -H "User-Agent: $UA" -H 'Cookie: session=abc123; theme=dark' "http://$addr$PATH_Q")"
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
echo
echo "inspection latency (cnaf::inspect, release build):"
"$BIN/inspect_latency" 20000
