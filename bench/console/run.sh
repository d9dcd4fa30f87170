#!/usr/bin/env bash
# Console benchmark (not part of the test suite): audit ingest (events/s, batches of 100) and
# the defender policy 304 path (req/s), against a release `lambda-console serve` on SQLite,
# loopback only. Needs wrk (Debian: apt-get install wrk).
#   bench/console/run.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 2; }
cargo build --release -p lambda-console >&2
BIN=$CARGO_TARGET_DIR/release/lambda-console
DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
PASS=bench-password-$$
CONSOLE_ADMIN_PASSWORD=$PASS CONSOLE_LOG=warn "$BIN" serve --listen "$ADDR" --data-dir "$DATA" >/dev/null 2>"$DATA/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf "http://$ADDR/api/v1/_ping" >/dev/null && break; sleep 0.1; done
ADMIN=$(curl -sf -X POST "http://$ADDR/api/v1/authenticate" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASS\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -sf -X PUT "http://$ADDR/api/v1/policies/runtime/app-embedded" -H "authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' --data-binary @examples/policy.json >/dev/null
DEF=$(curl -sf -X POST "http://$ADDR/api/v1/defenders/install-bundle" -H "authorization: Bearer $ADMIN" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ETAG=$(curl -sf -D - -o /dev/null -H "authorization: Bearer $DEF" \
  "http://$ADDR/api/v1/defender/policy?task=bench-task&container=app&image=bench:1" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')

echo "== audit ingest: POST /api/v1/defender/audits, 100 records per batch, $CONNS connections, ${SECS}s"
OUT=$(TOKEN=$DEF NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ) wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s bench/console/audits.lua "http://$ADDR")
echo "$OUT" | grep -E 'Latency|requests in|Requests/sec|99%|Non-2xx|BATCHES'
read -r BATCHES NON2XX DUR < <(echo "$OUT" | awk '/^BATCHES/{print $2, $4, $6}')
python3 - "$BATCHES" "$NON2XX" "$DUR" <<'PY'
import sys
b, bad, d = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f"ingest: {(b - bad) * 100 / d:,.0f} events/s ({(b - bad) / d:,.0f} batches/s, {bad} non-2xx)")
PY
STORED=$(curl -sf -H "authorization: Bearer $ADMIN" "http://$ADDR/api/v1/defenders" \
  | python3 -c 'import json,sys; print(sum(d["audits_received"] for d in json.load(sys.stdin)["defenders"]))')
echo "stored audit records (console's count): $STORED (wrk saw $(( (BATCHES - NON2XX) * 100 )) acknowledged; requests in flight at the end add a few)"

echo "== policy 304: GET /api/v1/defender/policy with If-None-Match $ETAG, $CONNS connections, ${SECS}s"
OUT=$(TOKEN=$DEF ETAG=$ETAG wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s bench/console/policy304.lua "http://$ADDR")
echo "$OUT" | grep -E 'Latency|requests in|Requests/sec|99%|Non-2xx|REQUESTS'
read -r REQS NON2XX DUR < <(echo "$OUT" | awk '/^REQUESTS/{print $2, $4, $6}')
python3 - "$REQS" "$NON2XX" "$DUR" <<'PY'
import sys
r, bad, d = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f"policy 304: {r / d:,.0f} req/s (wrk counts 304 as non-2xx: {bad} of {r})")
PY
