#!/usr/bin/env bash
# bench/search.sh - the console's search with 10,000 conversations and 100,000 messages in
# Redis, for docs/console.md.
#
# Not a test: it prints figures and exits 0 whatever they are (1 only when something could not
# be set up).  One private redis-server; the gateway in role=all with one Telegram account and
# a [console] section.  bench/search.mjs writes BENCH_SEARCH_CONVERSATIONS (10000) customers'
# BENCH_SEARCH_MESSAGES (100000) messages through signed webhooks (names from a list, texts
# from a vocabulary of English and Ukrainian words of uneven frequency), waits until the index
# has read them all, signs a supervisor in and times GET /console/api/search over loopback for
# several kinds of query (a name's beginning, a whole name, a rare word, a common word, two
# words, a chat id): p50/p90/p99/max and the hits.
#
#   bench/search.sh                                  # build-bench/deskbridge
#   DESKBRIDGE_BIN=/path/to/deskbridge bench/search.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
API_TOKEN="bench-api-token-0123456789abcdef"
BOT_ID="700000001"
SECRET="bench-webhook-secret"

die() { printf 'search: %s\n' "$*" >&2; exit 1; }
for t in redis-server redis-cli python3 curl node; do command -v $t >/dev/null || die "$t is missing"; done

WORK=$(mktemp -d /tmp/deskbridge-search.XXXXXX)
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
[console]
password_iterations = 100000
CONF
env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" \
    DESKBRIDGE_LISTEN="127.0.0.1:$GW_PORT" DESKBRIDGE_LOG_LEVEL=warn \
    DESKBRIDGE_API_TOKEN="$API_TOKEN" TELEGRAM_BOT_TOKEN="$BOT_ID:AAbenchTokenNotReal0123456789" \
    TELEGRAM_WEBHOOK_SECRET="$SECRET" TELEGRAM_API_BASE="http://127.0.0.1:9" \
    "$GW_BIN" --config "$WORK/deskbridge.conf" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$GW_PORT/healthz" || { tail -20 "$WORK/gateway.log" >&2; die "gateway did not start"; }

echo "deskbridge search, $(date -u '+%Y-%m-%d %H:%M UTC'), $GW_BIN (role=all)"
GW_PORT=$GW_PORT API_TOKEN=$API_TOKEN BOT_ID=$BOT_ID SECRET=$SECRET REDIS_SOCK="$WORK/redis.sock" \
    node "$ROOT/bench/search.mjs"
