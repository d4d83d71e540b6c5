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

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init search redis-server redis-cli python3 curl node
bench_gateway
bench_redis --appendonly no

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
