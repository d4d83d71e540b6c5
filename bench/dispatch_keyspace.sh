#!/usr/bin/env bash
# bench/dispatch_keyspace.sh - the dispatcher's rate over a backlog as the number of other keys
# in Redis grows: does a large keyspace (the dedupe keys, one per webhook for dedupe_ttl_s,
# 8 days by default) slow the dispatcher's own commands?
#
# Not a test: it prints figures and exits 0 whatever they are.  One redis-server (AOF
# everysec, as scripts/run.sh runs it, but no automatic rewrite: a rewrite child would take
# CPU from the runs), the gateway in role=dispatch.
#   1. a backlog: role=ingest takes 500,000 signed WhatsApp webhooks (bench/gen_bodies.py,
#      5,000 customers); role=dispatch applies it once, so the conversations exist;
#   2. three runs of role=dispatch over the same backlog (each conversation's last applied
#      entry and history cleared, the group set back to the start), DURATION_S seconds each:
#      with the keyspace as it is; with KEYS_M million keys like dedupe keys (a TTL of 8 days)
#      in another logical database (SELECT 1); with as many again in the dispatcher's own.
# Per run: events applied a second, Redis's and the gateway's CPU time per event (schedstat,
# every thread),
# and the dispatcher's three commands per event (HMGET, RPUSH, HSET) from INFO commandstats.
#
#   bench/dispatch_keyspace.sh
#   KEYS_M=10 DURATION_S=8 DESKBRIDGE_BIN=/path/to/deskbridge bench/dispatch_keyspace.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEYS_M=${KEYS_M:-20}
DURATION_S=${DURATION_S:-8}

say() { printf '== %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init keyspace wrk redis-server redis-cli python3 curl
bench_gateway
bench_pin

python3 "$ROOT/bench/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" --threads 2 \
    --per-thread 250000 --out "$WORK/backlog"
mkdir -p "$WORK/redis"
"${LOAD[@]}" redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
    --dir "$WORK/redis" --save '' --appendonly yes --appendfsync everysec \
    --auto-aof-rewrite-percentage 0 >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=($REDIS_PID)
for _ in $(seq 50); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
rcli PING | grep -q PONG || die "redis-server did not start"
# the first AOF is written by a rewrite child: wait for it, as before every run
no_rewrite() {
    local _
    for _ in $(seq 600); do
        rcli INFO persistence | grep -q '^aof_rewrite_in_progress:0' && return 0
        sleep 0.2
    done
}

say "backlog: 500,000 webhooks through role=ingest"
no_rewrite
bench_whatsapp_gateway ingest "${SRV[@]}"
rm -f "$WORK"/*.ready.*
"${LOAD[@]}" wrk -t 2 -c 16 -d 30s -s "$ROOT/bench/wa_ingest.lua" "$URL" -- "$WORK/backlog" 2 \
    >"$WORK/wrk.txt" 2>&1 || { cat "$WORK/wrk.txt" >&2; die "wrk failed"; }
bench_stop_gateway
BACKLOG=$(rcli XLEN deskbridge:events)
say "applying the backlog of $BACKLOG once, so the conversations exist"
bench_whatsapp_gateway dispatch "${SRV[@]}"
for _ in $(seq 600); do
    [ "$(group_applied "$WORK/redis.sock")" -ge "$BACKLOG" ] && break
    sleep 0.5
done
bench_stop_gateway

# Every conversation as before the backlog reached it, its hash kept: no last applied entry,
# an empty history; the dispatcher's group back at the start of the stream.
reset_backlog() {
    rcli EVAL "for _, c in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
        redis.call('HDEL', ARGV[1] .. ':conv:{' .. c .. '}', 'last_entry')
        redis.call('DEL', ARGV[1] .. ':conv:{' .. c .. '}:items')
      end
      return 1" 1 deskbridge:convs deskbridge >/dev/null
    rcli XGROUP SETID deskbridge:events deskbridge-dispatch 0 >/dev/null
}
# KEYS_M million keys like dedupe keys in logical database $1.
add_keys() {
    local m
    for m in $(seq "$KEYS_M"); do
        rcli EVAL "redis.call('SELECT', ARGV[1])
          for i = 1, 1000000 do
            redis.call('SET', 'deskbridge:dedupe:bench:' .. ARGV[2] .. ':' .. i, '1', 'EX', 691200)
          end
          return 1" 0 "$1" "$m" >/dev/null
    done
}
RESULTS=()
measure() { # $1 = label
    no_rewrite
    reset_backlog
    rcli CONFIG RESETSTAT >/dev/null
    bench_whatsapp_gateway dispatch "${SRV[@]}"
    sleep 1.5
    local a0 a1 c0 c1 g0 g1 t0 t1
    a0=$(group_applied "$WORK/redis.sock")
    c0=$(cpu_us "$REDIS_PID")
    g0=$(cpu_us "$GW_PID")
    t0=$(date +%s%N)
    sleep "$DURATION_S"
    a1=$(group_applied "$WORK/redis.sock")
    c1=$(cpu_us "$REDIS_PID")
    g1=$(cpu_us "$GW_PID")
    t1=$(date +%s%N)
    RESULTS+=("$(python3 -c "
n, t = $a1 - $a0, ($t1 - $t0) / 1e9
print('%-34s %10d %8.0f %14.2f %12.2f %8s %8s %8s' % ('$1', $(rcli DBSIZE), n / t, ($c1 - $c0) / max(n, 1), ($g1 - $g0) / max(n, 1),
      '$(cmd_us hmget)', '$(cmd_us rpush)', '$(cmd_us hset)'))")")
    bench_stop_gateway
    [ "$a1" -lt "$BACKLOG" ] || say "the run reached the end of the backlog: raise the backlog or lower DURATION_S"
}

say "run 1: the keyspace as it is"
measure "as it is"
say "adding $KEYS_M million keys in database 1"
add_keys 1
measure "+${KEYS_M}M keys in database 1"
say "adding $KEYS_M million keys in database 0 (the dispatcher's)"
add_keys 0
measure "+${KEYS_M}M keys in database 0 as well"

echo
echo "deskbridge dispatcher over a backlog of $BACKLOG events, ${DURATION_S}s per run, as the keyspace grows"
printf '%-34s %10s %8s %14s %12s %8s %8s %8s\n' "other keys" "db0 keys" "events/s" "Redis us/event" "gw us/event" "HMGET" "RPUSH" "HSET"
printf '%s\n' "${RESULTS[@]}"
echo "HMGET, RPUSH, HSET: microseconds per call (INFO commandstats, the dispatcher's commands per event)"
