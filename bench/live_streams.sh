#!/usr/bin/env bash
# bench/live_streams.sh - how fast an agent's live stream shows a customer's message, and what
# idle live streams cost, for docs/performance.md and docs/console.md.
#
# Not a test: it prints figures and exits 0 whatever they are (1 only when something could not
# be set up).  One private redis-server on a unix socket; the gateway in role=all with one
# Telegram account in webhook mode.  bench/live_streams.mjs then
#   1. connects BENCH_LIVE_CLIENTS (200) agents' inbox streams (GET /v1/agents/{id}/stream,
#      the same streams the console reads), sends BENCH_LIVE_MESSAGES (400) signed webhooks
#      from new customers one after another, and times each from the moment its webhook was
#      answered to the moment the assigned agent's stream delivered it: p50/p90/p99/max;
#   2. signs BENCH_IDLE_CLIENTS (500) agents in to the console, opens each one's console live
#      stream (inbox, delivery ticks, queue hints), lets them sit idle, and measures over
#      BENCH_IDLE_S (10) seconds the gateway's CPU (utime+stime of /proc/PID/stat) and the
#      commands Redis processed per second (INFO), the streams' own apart.
#
#   bench/live_streams.sh                                  # build-bench/deskbridge
#   DESKBRIDGE_BIN=/path/to/deskbridge bench/live_streams.sh   # another build, e.g. main
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
API_TOKEN="bench-api-token-0123456789abcdef"
BOT_ID="700000001"
SECRET="bench-webhook-secret"

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init live_streams redis-server redis-cli python3 curl node
bench_gateway
bench_redis --appendonly no

GW_PORT=$(free_port)
cat >"$WORK/deskbridge.conf" <<CONF
[gateway]
max_connections = 4096
[dispatch]
default_capacity = 5
[console]
password_iterations = 100000
CONF
env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" \
    DESKBRIDGE_LISTEN="127.0.0.1:$GW_PORT" DESKBRIDGE_LOG_LEVEL=warn \
    DESKBRIDGE_API_TOKEN="$API_TOKEN" TELEGRAM_BOT_TOKEN="$BOT_ID:AAbenchTokenNotReal0123456789" \
    TELEGRAM_WEBHOOK_SECRET="$SECRET" TELEGRAM_API_BASE="http://127.0.0.1:9" \
    "$GW_BIN" --config "$WORK/deskbridge.conf" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/healthz" || { tail -20 "$WORK/gateway.log" >&2; die "gateway did not start"; }

echo "deskbridge live streams, $(date -u '+%Y-%m-%d %H:%M UTC'), $GW_BIN (role=all)"
GW_PORT=$GW_PORT GW_PID=$GW_PID API_TOKEN=$API_TOKEN BOT_ID=$BOT_ID SECRET=$SECRET \
    REDIS_SOCK="$WORK/redis.sock" node "$ROOT/bench/live_streams.mjs"
