#!/usr/bin/env bash
# bench/outbound.sh - the sender alone: how fast role=all drains a full outbox to a fake
# Telegram, and what each send costs the gateway, Redis and the fake in CPU.
#
# Placed as bench/run.sh places its outbound run (the gateway on CPU 1; Redis with AOF
# everysec, the fake and wrk on CPU 0). The replies are enqueued through POST /v1/messages
# while the fake is stopped, then the fake is resumed and the drain is timed where the sends
# land (the fake's own clock). Prints one line per round:
#   round N: S sends, R sends/s; gateway G us, redis D us, fake F us per send; scripts: ...
# Not a test; exits 1 only when a queued reply was not sent.
#
#   bench/outbound.sh                       # 20,000 replies, 3 rounds
#   OUT_N=40000 ROUNDS=5 DESKBRIDGE_BIN=... bench/outbound.sh
#   OUT_PERF=/tmp/p ROUNDS=1 bench/outbound.sh   # perf record -g of the gateway during each
#                                                # drain, into /tmp/p.<round>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
N=${OUT_N:-20000}
ROUNDS=${ROUNDS:-3}
API_TOKEN="bench-api-token-0123456789abcdef"
BOT_ID="700000001"

bench_init outbound redis-server redis-cli wrk curl python3 cc taskset
bench_gateway
bench_pin
cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -o "$WORK/fake_telegram" \
    "$BENCH/fake_telegram.c" -levent || die "cannot build fake_telegram"

stats() { curl -fsS "http://127.0.0.1:$FAKE_PORT/_stats"; }
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

for round in $(seq "$ROUNDS"); do
    rm -rf "$WORK/redis" "$WORK/redis.sock"
    mkdir -p "$WORK/redis"
    "${LOAD[@]}" redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
        --dir "$WORK/redis" --appendonly yes --appendfsync everysec --save '' \
        --auto-aof-rewrite-min-size 4gb >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=($REDIS_PID)
    for _ in $(seq 50); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done

    "${LOAD[@]}" "$WORK/fake_telegram" 0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
    FAKE_PID=$!
    PIDS+=($FAKE_PID)
    for _ in $(seq 50); do grep -q '^port ' "$WORK/fake.out" && break; sleep 0.1; done
    FAKE_PORT=$(awk '/^port /{print $2; exit}' "$WORK/fake.out")
    [ -n "$FAKE_PORT" ] || die "fake_telegram did not start"

    port=$(free_port)
    env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" DESKBRIDGE_DEDUPE_DB=1 \
        DESKBRIDGE_LISTEN="127.0.0.1:$port" DESKBRIDGE_LOG_LEVEL=warn \
        DESKBRIDGE_API_TOKEN="$API_TOKEN" TELEGRAM_BOT_TOKEN="$BOT_ID:AAbenchTokenNotReal0123456789" \
        TELEGRAM_WEBHOOK_SECRET="bench-webhook-secret" TELEGRAM_API_BASE="http://127.0.0.1:$FAKE_PORT" \
        "${SRV[@]}" "$GW_BIN" >"$WORK/gateway.log" 2>&1 &
    GW_PID=$!
    PIDS+=($GW_PID)
    wait_http "http://127.0.0.1:$port/healthz" || { tail -20 "$WORK/gateway.log" >&2; die "gateway did not start"; }
    sleep 1
    kill -STOP "$FAKE_PID"
    "${LOAD[@]}" wrk -t 2 -c 16 -d 120s -s "$BENCH/enqueue.lua" "http://127.0.0.1:$port" \
        -- "$API_TOKEN" "$BOT_ID" $((N / 2)) >"$WORK/wrk.txt" 2>&1 &
    WRK_PID=$!
    for _ in $(seq 2400); do
        [ "$(rcli XLEN deskbridge:outbox)" -ge "$N" ] && break
        sleep 0.05
    done
    kill -INT "$WRK_PID"
    wait "$WRK_PID" || true
    sleep 0.5
    QUEUED=$(rcli XLEN deskbridge:outbox)
    rcli CONFIG RESETSTAT >/dev/null
    g0=$(cpu_us "$GW_PID"); r0=$(cpu_us "$REDIS_PID"); f0=$(cpu_us "$FAKE_PID")
    PERF_PID=
    if [ -n "${OUT_PERF:-}" ]; then
        perf record -q ${OUT_PERF_ARGS:--g} -o "$OUT_PERF.$round" -p "$GW_PID" >/dev/null 2>&1 &
        PERF_PID=$!
        sleep 0.3
    fi
    kill -CONT "$FAKE_PID"
    last=-1
    still=0
    for _ in $(seq 600); do
        n=$(stats | field sends)
        if [ "$n" = "$last" ] && [ "$n" -ge "$QUEUED" ]; then still=$((still + 1)); else still=0; fi
        [ $still -ge 3 ] && break
        last=$n
        sleep 0.2
    done
    g1=$(cpu_us "$GW_PID"); r1=$(cpu_us "$REDIS_PID"); f1=$(cpu_us "$FAKE_PID")
    if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
    S=$(stats)
    sends=$(echo "$S" | field sends)
    rate=$(echo "$S" | python3 -c 'import json, sys; s = json.load(sys.stdin); d = (s["last_us"] - s["first_us"]) / 1e6; print("%.0f" % ((s["sends"] - 1) / d if d > 0 else 0))')
    scripts=$(rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '
        $1 ~ /^cmdstat_/ { sub("cmdstat_", "", $1); if ($3 + 0 >= 1000) printf "%s %d/%.1fus ", $1, $3, $7 }')
    printf 'round %d: %d of %d sent, %s sends/s; gateway %.1f us, redis %.1f us, fake %.1f us per send\n  calls: %s\n' \
        "$round" "$sends" "$QUEUED" "$rate" \
        "$(python3 -c "print(($g1 - $g0) / $sends)")" "$(python3 -c "print(($r1 - $r0) / $sends)")" \
        "$(python3 -c "print(($f1 - $f0) / $sends)")" "$scripts"
    [ "$sends" -ge "$QUEUED" ] || die "round $round: $((QUEUED - sends)) queued replies not sent"
    for p in $GW_PID $FAKE_PID $REDIS_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
done
