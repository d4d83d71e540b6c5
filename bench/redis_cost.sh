#!/usr/bin/env bash
# bench/redis_cost.sh - Redis CPU per ingested webhook: the gateway's two ingest scripts against the
# plain commands it is made of, measured apart from the gateway and from wrk.
#
# Not a test: it prints figures and exits 0 whatever they are.  redis-server (AOF everysec, as
# bench/run.sh runs it) gets CPU 0 to itself and redis-benchmark runs on CPU 1 (when there
# are two CPUs), 64 clients pipelining 4 commands each, a new message id per command.  The
# figure is redis-server's CPU time (schedstat) over the run divided by the commands sent.
#
#   bench/redis_cost.sh                 # 300,000 commands per subject
#   BENCH_REDIS_CALLS=1000000 bench/redis_cost.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CALLS=${BENCH_REDIS_CALLS:-300000}
# Redis, its tools and the gateway's build dependencies, when missing.
"$ROOT/scripts/deps.sh" run || { echo "redis_cost: cannot install what it needs (scripts/deps.sh run)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "redis_cost: python3 is missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/deskbridge-redis-cost.XXXXXX)
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The very scripts the gateway runs: the files it embeds (src/redis/scripts.h), behind the
# preludes src/store/store.c puts in front of them (status_advance.lua for the general one,
# customer_seen.lua and dedupe.lua for both; called here without customers, so that part
# costs nothing).
LUA="$ROOT/src/redis/scripts"
cat "$LUA/status_advance.lua" "$LUA/customer_seen.lua" "$LUA/dedupe.lua" "$LUA/ingest.lua" >"$WORK/ingest.lua"
cat "$LUA/customer_seen.lua" "$LUA/dedupe.lua" "$LUA/ingest_plain.lua" >"$WORK/ingest_plain.lua"

SRV=()
LOAD=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SRV=(taskset -c 0)
    LOAD=(taskset -c 1)
fi
mkdir -p "$WORK/redis"
"${SRV[@]}" redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
    --dir "$WORK/redis" --appendonly yes --appendfsync everysec --save '' \
    --auto-aof-rewrite-min-size 4gb >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
rcli() { redis-cli -s "$WORK/redis.sock" "$@"; }
for _ in $(seq 50); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli PING >/dev/null || { cat "$WORK/redis.log" >&2; exit 1; }
SHA=$(rcli SCRIPT LOAD "$(cat "$WORK/ingest.lua")")
SHA_PLAIN=$(rcli SCRIPT LOAD "$(cat "$WORK/ingest_plain.lua")")

cpu_us() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s / 1000}'; }
# A stored event of the benchmark's size (555 bytes).
EVENT=$(python3 -c 'import json; e = {"v": 1, "platform": "whatsapp", "account": "106540352242922",
  "kind": "message", "conversation": "whatsapp:106540352242922:16505550001",
  "sender": {"id": "16505550001", "name": "Kerry Fisher"}, "external_id": "wamid.0000000001",
  "received_at": 1764600000000, "id": "0000000000000000000000000"}
e["text"] = "x" * (555 - len(json.dumps(e, separators=(",", ":"))) - 10)
print(json.dumps(e, separators=(",", ":")))')
PREFIX=deskbridge PNID=106540352242922 TTL=691200

# $1 = name, rest = the command (__rand_int__ makes each message id new).
measure() {
    local name=$1
    shift
    rcli FLUSHALL >/dev/null
    local c0 c1
    c0=$(cpu_us "$REDIS_PID")
    "${LOAD[@]}" redis-benchmark -s "$WORK/redis.sock" -c 64 -P 4 -n "$CALLS" -r 1000000000 -q \
        "$@" >/dev/null 2>&1
    c1=$(cpu_us "$REDIS_PID")
    printf '%-46s %6.2f  %s\n' "$name" "$(python3 -c "print(($c1 - $c0) / $CALLS)")" \
        "$(rcli DBSIZE) keys, $(rcli XLEN "$PREFIX:events") stream entries"
}

echo "deskbridge redis cost, $(date -u '+%Y-%m-%d %H:%M UTC'), $(redis-server --version | cut -d' ' -f3), ${#EVENT}-byte event, $CALLS commands each"
printf '%-46s %6s  %s\n' "command (one webhook, one message)" "us CPU" "after it"
# A script that wrote nothing (its argument layout changed in store.c and not here) would be
# measured as dedupe hits: refuse to print that as the cost of a webhook.
check_written() {
    local written
    written=$(rcli XLEN "$PREFIX:events")
    [ "$written" -ge $((CALLS * 99 / 100)) ] ||
        { echo "redis_cost: the $1 wrote $written of $CALLS events; update its arguments here" >&2; exit 1; }
}
# Each script with the arguments db_store_ingest (src/store/store.c) passes it for one message.
DEDUPE_KEY="$PREFIX:dedupe:whatsapp:$PNID:wamid.__rand_int__"
measure "ingest script, no receipt (what messages run)" EVALSHA "$SHA_PLAIN" 0 "$TTL" "$PREFIX:events" \
    '' "$DEDUPE_KEY" "$EVENT"
check_written "plain ingest script"
# dedupe_db = 1: the dedupe keys in database 1 (docs/config.md), the stream in 0.
measure "the same, dedupe keys in database 1" EVALSHA "$SHA_PLAIN" 0 "$TTL" "$PREFIX:events" \
    '1 0 0' "$DEDUPE_KEY" "$EVENT"
check_written "plain ingest script with dedupe_db"
# What a WhatsApp message runs: the same run also remembers the customer's newest message
# (customer_seen.lua's part, a new customer per call here).
measure "the same with the customer's newest message" EVALSHA "$SHA_PLAIN" 0 "$TTL" \
    "$PREFIX:events" '' "$DEDUPE_KEY" "$EVENT" '' 2592000 "$PREFIX:customer:{whatsapp:$PNID:__rand_int__}" \
    wamid.__rand_int__ 1764600000
check_written "plain ingest script with a customer"
# bench/run.sh's bodies come from 5,000 customers: nearly every record replaces one.
measure "the same, the customer already known" EVALSHA "$SHA_PLAIN" 0 "$TTL" \
    "$PREFIX:events" '' "$DEDUPE_KEY" "$EVENT" '' 2592000 "$PREFIX:customer:{whatsapp:$PNID:16505550001}" \
    wamid.__rand_int__ 1764600000
check_written "plain ingest script with a known customer"
measure "ingest script, general (receipts, cursor)" EVALSHA "$SHA" 0 "$PREFIX" "$TTL" 1764600000000 \
    whatsapp "$PNID" "" '' "$DEDUPE_KEY" "$EVENT" "" "" "" ""
check_written "general ingest script"
measure "SET NX EX alone (the dedupe)" SET "$DEDUPE_KEY" 1 NX EX "$TTL"
measure "XADD alone (the relay's whole write)" XADD "$PREFIX:events" '*' event "$EVENT"
