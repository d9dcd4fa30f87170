#!/usr/bin/env bash
# Network benchmark: connect loop, UDP send loop and DNS lookup loop, bare vs under
# `defender run` with a network + DNS policy in force (nothing in the loops matches it, so this
# is the cost of deciding and emulating, not of denying). Everything is pinned to one CPU, as
# a 1-vCPU Fargate task would be, and bare/defended runs alternate. Loopback only: the lookups
# go to a responder this script starts on 127.0.53.200:53 (needs root for port 53 and for the
# private mount namespace that points /etc/resolv.conf at it).
#
#   bench/net/run.sh [PAIRS]        (default 5 pairs; prints medians and ratios)
#   BACKEND=ptrace bench/net/run.sh (the fallback backend; default notify)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pairs="${1:-5}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d /tmp/defender-bench-net.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

(cd "$root" && cargo build --release -q -p defender)
defender="$target/release/defender"
cc -O2 -pthread -o "$work/probe" "$root/defender/tests/net_harness/probe.c"
probe="$work/probe"

cat >"$work/policy.json" <<'JSON'
{ "revision": 1, "rules": [ { "name": "bench",
  "dns": { "effect": "prevent", "denied": ["yahoo.com", "*.evil.example"] },
  "network": { "effect": "prevent", "denied_outbound": ["203.0.113.0/24", "*:25"],
               "denied_listening_ports": [4444] } } ] }
JSON
printf 'nameserver 127.0.53.200\noptions timeout:1 attempts:1\n' >"$work/resolv.conf"

port=$((20000 + RANDOM % 20000))
taskset -c 0 "$probe" accept-loop 127.0.0.1 "$port" >/dev/null & pids+=($!)
taskset -c 0 python3 "$here/responder.py" 127.0.53.200 53 & pids+=($!)
sleep 0.3

backend="${BACKEND:-notify}"
defended() { taskset -c 0 "$defender" run --backend "$backend" --policy-file "$work/policy.json" --audit-log "$work/audit.log" -- "$@" 2>>"$work/defender.err"; }
bare() { taskset -c 0 "$@"; }
ns_of() { awk '$1 == "ok" { print $4 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

lookup_cmd=(unshare -m sh -c "mount --bind $work/resolv.conf /etc/resolv.conf && exec $probe lookup-loop 127.0.0.1 0 bench.example 500")
declare -A runs=(
  [connect]="$probe connect-loop 127.0.0.1 $port 3000"
  [udp]="$probe udp-loop 127.0.0.1 9 20000"
)

echo "backend: $backend"
printf '%-8s %14s %14s %8s\n' loop bare_ms defended_ms ratio
for name in connect udp lookup; do
  : >"$work/$name.bare"; : >"$work/$name.def"
  for _ in $(seq "$pairs"); do
    if [ "$name" = lookup ]; then
      bare "${lookup_cmd[@]}" | ns_of >>"$work/$name.bare"
      defended "${lookup_cmd[@]}" | ns_of >>"$work/$name.def"
    else
      # shellcheck disable=SC2086
      bare ${runs[$name]} | ns_of >>"$work/$name.bare"
      # shellcheck disable=SC2086
      defended ${runs[$name]} | ns_of >>"$work/$name.def"
    fi
  done
  b=$(median <"$work/$name.bare"); d=$(median <"$work/$name.def")
  awk -v n="$name" -v b="$b" -v d="$d" 'BEGIN { printf "%-8s %14.1f %14.1f %8.2f\n", n, b / 1e6, d / 1e6, b / d }'
  if [ "$name" = lookup ]; then
    awk -v b="$b" -v d="$d" 'BEGIN { printf "lookup: %.3f ms added per lookup (500 lookups per run)\n", (d - b) / 500 / 1e6 }'
  fi
done
if [ -s "$work/audit.log" ]; then
  echo "unexpected audits (the loops should match nothing):"; cat "$work/audit.log"
fi
