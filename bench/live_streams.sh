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

die() { printf 'live_streams: %s\n' "$*" >&2; exit 1; }
for t in redis-server redis-cli python3 curl node; do command -v $t >/dev/null || die "$t is missing"; done

WORK=$(mktemp -d /tmp/deskbridge-live.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${DESKBRIDGE_BIN:-}" ]; then
    GW_BIN=$DESKBRIDGE_BIN
else
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDB_TESTS=OFF \
        >"$WORK/cmake.log" 2>&1 &&
        cmake --build "$ROOT/build-bench" --target deskbridge -j2 >>"$WORK/cmake.log" 2>&1 ||
        { tail -40 "$WORK/cmake.log" >&2; die "build failed"; }
    GW_BIN="$ROOT/build-bench/deskbridge"
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() {
    for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 --dir "$WORK" \
    --appendonly no --save '' >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -s "$WORK/redis.sock" PING >/dev/null 2>&1 && break; sleep 0.1; done

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
PIDS+=($GW_PID)
wait_http "http://127.0.0.1:$GW_PORT/healthz" || { tail -20 "$WORK/gateway.log" >&2; die "gateway did not start"; }

echo "deskbridge live streams, $(date -u '+%Y-%m-%d %H:%M UTC'), $GW_BIN (role=all)"
GW_PORT=$GW_PORT GW_PID=$GW_PID API_TOKEN=$API_TOKEN BOT_ID=$BOT_ID SECRET=$SECRET \
    REDIS_SOCK="$WORK/redis.sock" node "$ROOT/bench/live_streams.mjs"
