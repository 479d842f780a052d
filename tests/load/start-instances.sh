#!/usr/bin/env bash
# Load benchmark of the real server: `POST /v1/workflows/approval-flow/instances` over HTTP
# with wrk (Debian package `wrk`), against the release binary on a fresh store (the default engine, fjall).
# Every 201 is durable (flushed before the answer). Run as `bash tests/load/start-instances.sh`.
#
#   DURATION=30s CONNECTIONS=64 THREADS=2 bash tests/load/start-instances.sh
#   WAYSTATION_BIN=/tmp/waystation-old bash tests/load/start-instances.sh   # another build, same run
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-18480}
ADMIN=ws_load_admin_token

command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
BIN=${WAYSTATION_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release -p waystation-server
    BIN=./target/release/waystation
fi
data=$(mktemp -d)
WAYSTATION_BOOTSTRAP_TOKEN=$ADMIN RUST_LOG=warn "$BIN" serve \
    --listen 127.0.0.1:$PORT --data "$data" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.1; done

ws() { curl -sf -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' "$@"; }
ws -X PUT http://127.0.0.1:$PORT/v1/workflows/approval-flow --data @workflows/approval-flow.json >/dev/null
OPS_TOKEN=$(ws -X POST http://127.0.0.1:$PORT/v1/tokens -d '{"name": "load", "roles": ["operator"]}' \
    | sed 's/.*"token":"\([^"]*\)".*/\1/')
export OPS_TOKEN

echo "== $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, server and wrk on the same machine"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s tests/load/start-instances.lua \
    http://127.0.0.1:$PORT
started=$(curl -s http://127.0.0.1:$PORT/metrics | grep '^waystation_instances_by_status{' | awk '{s+=$2} END {print s}')
echo "== instances in the store afterwards: $started"
