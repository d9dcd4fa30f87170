#!/usr/bin/env bash
# CPU per request of two CNAF builds and nginx, split into user and system time: the trivial app
# of run.sh behind `cnaf_proxy` (every protection `prevent`, then every protection `disable`),
# wrk -t2 -c64 with the same request as run.sh, rounds interleaved so load from other processes
# spreads over both builds.
#
#   bash bench/cnaf/ab.sh DIR_A DIR_B [DURATION] [ROUNDS]
# DIR_A/DIR_B hold `cnaf_proxy` and `hello_app` (e.g. copies of target/release/examples from two
# commits). Needs wrk and nginx.
set -euo pipefail
A="${1:?usage: ab.sh DIR_A DIR_B [DURATION] [ROUNDS]}" B="${2:?usage: ab.sh DIR_A DIR_B [DURATION] [ROUNDS]}"
DURATION="${3:-5s}" ROUNDS="${4:-3}"
APP=127.0.0.1:18091 PROXY=127.0.0.1:18090
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36'
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
cat >"$WORK/nginx.conf" <<CONF
worker_processes auto; pid $WORK/nginx.pid; error_log $WORK/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fcgi; uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;
  upstream app { server $APP; keepalive 64; }
  server { listen $PROXY; location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; } } }
CONF
# user and system clock ticks of a process and its children
ticks() {
  local u=0 s=0 p a b
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat")
    u=$((u + a)) s=$((s + b))
  done
  echo "$u $s"
}
# one measurement: LABEL APP_DIR MODE (prevent|disable|nginx)
measure() {
  local label=$1 dir=$2 mode=$3 app proxy u0 s0 u1 s1 out reqs
  "$dir/hello_app" "$APP" & app=$!; PIDS+=("$app")
  if [ "$mode" = nginx ]; then
    nginx -c "$WORK/nginx.conf" -g 'daemon off;' & proxy=$!
  else
    "$dir/cnaf_proxy" "$PROXY" "$APP" "$mode" >/dev/null & proxy=$!
  fi
  PIDS+=("$proxy")
  sleep 0.7
  read -r u0 s0 < <(ticks "$proxy")
  out="$(wrk -t2 -c64 -d"$DURATION" -H "User-Agent: $UA" -H 'Cookie: session=abc123; theme=dark' \
    "http://$PROXY/catalogue/shoes?color=red&size=42&sort=price_asc&page=2")"
  read -r u1 s1 < <(ticks "$proxy")
  reqs="$(awk '/requests in/ {print $1}' <<<"$out")"
  awk -v n="$label $mode" -v r="$reqs" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" \
    -v rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    'BEGIN { printf "%-20s %9.0f req/s  user %5.1f us  system %5.1f us  total %5.1f us per request\n", n, rps, u*1e6/hz/r, s*1e6/hz/r, (u+s)*1e6/hz/r }'
  kill "$proxy" "$app"; wait "$proxy" "$app" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
  for mode in prevent disable; do
    measure A "$A" "$mode"
    measure B "$B" "$mode"
  done
  measure - "$B" nginx
done
