#!/usr/bin/env bash
# bench/dedupe_db.sh - role=all on a Redis that already holds the dedupe keys of a busy
# gateway's last days, with them in the gateway's own database (dedupe_db unset) and in
# database 1 (dedupe_db = 1), alternated.
#
# Not a test: it prints figures and exits 0 whatever they are.  Per run: a fresh redis-server
# (AOF everysec, no automatic rewrite: a rewrite child would take CPU from the run), KEYS_M
# million keys like dedupe keys (a TTL of 8 days) where the gateway keeps them, then
# role=all taking signed WhatsApp webhooks (bench/gen_bodies.py, 5,000 customers) from wrk
# for DURATION_S seconds, as bench/run.sh runs it: redis-server and wrk on CPU 0, the gateway
# on CPU 1.  Printed per run: webhooks answered a second and their p99, events the dispatcher
# applied a second and how many it had left at the end, Redis's CPU time per webhook
# (schedstat, every thread), and the dispatcher's HMGET, RPUSH and HSET per call (INFO
# commandstats).
#
#   bench/dedupe_db.sh
#   KEYS_M=5 DURATION_S=10 ROUNDS=1 DESKBRIDGE_BIN=/path/to/deskbridge bench/dedupe_db.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEYS_M=${KEYS_M:-20}
DURATION_S=${DURATION_S:-20}
ROUNDS=${ROUNDS:-2}

say() { printf '== %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init dedupe-db wrk redis-server redis-cli python3 curl
bench_gateway
bench_pin
python3 "$ROOT/bench/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" --threads 2 \
    --per-thread 300000 --out "$WORK/bodies"

RESULTS=()
# $1 = the database the dedupe keys are in, and the gateway's dedupe_db (-1: its own, 0)
run() {
    local ddb=$1 keydb=$1 label
    [ "$ddb" = -1 ] && keydb=0
    label="dedupe_db $ddb (keys in db $keydb)"
    rm -rf "$WORK/redis"
    mkdir -p "$WORK/redis"
    "${LOAD[@]}" redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
        --dir "$WORK/redis" --save '' --appendonly yes --appendfsync everysec \
        --auto-aof-rewrite-percentage 0 >"$WORK/redis.log" 2>&1 &
    local redis_pid=$!
    PIDS+=($redis_pid)
    local m
    for m in $(seq 50); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    rcli PING | grep -q PONG || die "redis-server did not start"
    for m in $(seq "$KEYS_M"); do
        rcli EVAL "redis.call('SELECT', ARGV[1])
          for i = 1, 1000000 do
            redis.call('SET', ARGV[3] .. ARGV[2] .. ':' .. i, '1', 'EX', 691200)
          end
          return 1" 0 "$keydb" "$m" "deskbridge:dedupe:whatsapp:$PNID:m:wamid.old" >/dev/null
    done
    # the first AOF is written by a rewrite child: wait for it
    for m in $(seq 600); do
        rcli INFO persistence | grep -q '^aof_rewrite_in_progress:0' && break
        sleep 0.2
    done
    rcli CONFIG RESETSTAT >/dev/null
    bench_whatsapp_gateway all env DESKBRIDGE_DEDUPE_DB="$ddb" "${SRV[@]}"
    rm -f "$WORK"/bodies.ready.*
    local a0 a1 c0 c1
    a0=$(group_applied "$WORK/redis.sock")
    c0=$(cpu_us "$redis_pid")
    "${LOAD[@]}" wrk -t 2 -c 64 -d "${DURATION_S}s" --latency -s "$ROOT/bench/wa_ingest.lua" "$URL" \
        -- "$WORK/bodies" 2 >"$WORK/wrk.txt" 2>&1 || { cat "$WORK/wrk.txt" >&2; die "wrk failed"; }
    a1=$(group_applied "$WORK/redis.sock")
    c1=$(cpu_us "$redis_pid")
    local added rps p99
    added=$(rcli XINFO STREAM deskbridge:events | awk 'prev == "entries-added" {print; exit} {prev = $0}')
    rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
    RESULTS+=("$(python3 -c "
added, applied = $added, $a1 - $a0
print('%-32s %9.0f %8s %10.0f %9d %9.2f %7s %7s %7s' % ('$label', $rps, '$p99', applied / $DURATION_S,
      added - $a1, ($c1 - $c0) / max(added, 1), '$(cmd_us hmget)', '$(cmd_us rpush)', '$(cmd_us hset)'))")")
    bench_stop_gateway
    grep -E 'error|fatal' "$WORK/gateway-all.log" | head -5 >&2 || true
    kill "$redis_pid"
    wait "$redis_pid" 2>/dev/null || true
}

for r in $(seq "$ROUNDS"); do
    say "round $r: dedupe keys in the gateway's database"
    run -1
    say "round $r: dedupe keys in database 1"
    run 1
done

echo
echo "deskbridge role=all with ${KEYS_M} million dedupe keys already stored, wrk -t2 -c64 -d${DURATION_S}s"
printf '%-32s %9s %8s %10s %9s %9s %7s %7s %7s\n' "" "webhooks/s" "p99" "applied/s" "left" \
    "Redis us" "HMGET" "RPUSH" "HSET"
printf '%s\n' "${RESULTS[@]}"
echo "applied/s: events the dispatcher applied a second during the load; left: stored but not yet"
echo "applied at its end.  Redis us: redis-server's CPU time per stored webhook.  HMGET, RPUSH, HSET:"
echo "microseconds per call (INFO commandstats)."
