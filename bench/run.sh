#!/usr/bin/env bash
# bench/run.sh - ingest, outbound and idle-memory figures for docs/performance.md.
#
# Not a test: it prints figures and whether the performance targets hold, and exits 0 whatever
# they are (it fails only when something could not be set up or messages were lost).
#
#   bench/run.sh                        # everything, about 5 minutes
#   BENCH_DURATION=5 BENCH_ROUNDS=1 bench/run.sh   # shorter wrk runs, one round
#
# Knobs (environment): BENCH_DURATION (s, default 10), BENCH_ROUNDS (3: ingest rounds, each one
# run of the Node relay, role=all and role=ingest back to back), BENCH_CONNECTIONS (64),
# BENCH_OUTBOUND (replies to enqueue, 20000), BENCH_BODIES (signed bodies per wrk thread,
# 400000), BENCH_PIN (1 = pin servers to CPU 1 and load + Redis to CPU 0 when there are at
# least 2 CPUs; 0 = no pinning), DESKBRIDGE_BIN (use this binary instead of
# building build-bench/deskbridge), BENCH_LOG_LEVEL (the gateway's DESKBRIDGE_LOG_LEVEL for the
# ingest runs; default: its own default, info, one line per webhook), BENCH_PACE_MS (0; N = each
# wrk connection waits N ms before its next request, so every subject gets a similar, lower
# rate instead of as much as it takes: latency under equal load), BENCH_AOF_REWRITE_MIN_SIZE
# (Redis's auto-aof-rewrite-min-size, default 4gb: no automatic AOF rewrite within a run, as in
# a Redis whose data set is large next to one run's writes; 64mb is Redis's own default, under
# which a database growing from empty is rewritten every few seconds), BENCH_KEEP (1 = keep
# the work directory), BENCH_SPLIT (1 = after each measured role=all run, a short run of its
# own in which every Redis command is logged for one second, printed as Redis's time per
# webhook by part, bench/redis_split.py; 0 = not),
# BENCH_DEDUPE_DB (the gateways' dedupe_db, default 1 as scripts/run.sh sets it; -1 = the
# dedupe keys in the gateway's own database, as before 7 December).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh" # group_applied and the WhatsApp account; the rest of this script's set-up is its own (defined below)
DURATION=${BENCH_DURATION:-10}
DEDUPE_DB=${BENCH_DEDUPE_DB:-1}
CONNS=${BENCH_CONNECTIONS:-64}
OUTBOUND=${BENCH_OUTBOUND:-20000}
WARMUP=2
ROUNDS=${BENCH_ROUNDS:-3}
WRK_THREADS=2
PER_THREAD=${BENCH_BODIES:-400000} # per wrk thread: 80,000 req/s for 10 s before any repeat
export BENCH_PACE_MS=${BENCH_PACE_MS:-0} # read by wa_ingest.lua
REWRITE_MIN=${BENCH_AOF_REWRITE_MIN_SIZE:-4gb}

# APP_SECRET and PNID, the WhatsApp account, come from lib.sh.
API_TOKEN="bench-api-token-0123456789abcdef"
BOT_ID="700000001"

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v redis-cli >/dev/null || need_pkgs+=(redis-tools)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v cc >/dev/null || need_pkgs+=(gcc)
command -v cmake >/dev/null || need_pkgs+=(cmake)
[ -f /usr/include/event2/http.h ] || need_pkgs+=(libevent-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${need_pkgs[*]}: install them (apt-get) or run as root"
    say "installing ${need_pkgs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/deskbridge-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- builds
if [ -n "${DESKBRIDGE_BIN:-}" ]; then
    GW_BIN=$DESKBRIDGE_BIN
else
    # The gateway's own build dependencies (jansson, hiredis, libcurl, OpenSSL), when missing.
    "$ROOT/scripts/deps.sh" run || die "cannot install the gateway's build dependencies"
    say "building deskbridge (RelWithDebInfo) in build-bench"
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDB_TESTS=OFF >"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; die "cmake configure failed"; }
    cmake --build "$ROOT/build-bench" --target deskbridge -j2 >>"$WORK/cmake.log" 2>&1 ||
        { tail -40 "$WORK/cmake.log" >&2; die "build failed"; }
    GW_BIN="$ROOT/build-bench/deskbridge"
fi
for f in bare_server fake_telegram; do
    cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -o "$WORK/$f" "$BENCH/$f.c" -levent ||
        die "cannot build $f"
done
# The JSON reader and writer against jansson, in-process (bench/json_bench.c); optional: a
# missing libjansson-dev (possible with DESKBRIDGE_BIN) skips it.
JSON_BENCH=
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -I"$ROOT/include" -I"$ROOT/src" -o "$WORK/json_bench" \
    "$BENCH/json_bench.c" "$ROOT"/src/util/{json,json_parse,text,status}.c -ljansson 2>"$WORK/json_bench.log" &&
    JSON_BENCH="$WORK/json_bench"
if [ ! -d "$BENCH/node-relay/node_modules" ] ||
    [ "$BENCH/node-relay/package-lock.json" -nt "$BENCH/node-relay/node_modules" ]; then
    say "npm ci (node relay)"
    (cd "$BENCH/node-relay" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
        die "npm ci failed"
fi

# ---------------------------------------------------------------- CPU placement
SRV=()
LOAD=()
PIN_NOTE="no pinning"
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SRV=(taskset -c 1)
    LOAD=(taskset -c 0)
    PIN_NOTE="server under test on CPU 1; wrk, redis-server and the fakes on CPU 0"
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Starts a helper that prints "port N" first; sets STARTED_PORT and LAST_PID (no command
# substitution: the helper must be this shell's child to be waited for and cleaned up).
# $1 = log name, rest = command.
start_with_port() {
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    LAST_PID=$!
    for _ in $(seq 100); do
        if grep -q '^port ' "$WORK/$name.out" 2>/dev/null; then
            STARTED_PORT=$(awk '/^port /{print $2; exit}' "$WORK/$name.out")
            return 0
        fi
        kill -0 "$LAST_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/$name.err" >&2
    die "$name did not start"
}
# Stops one of our children and forgets it, so the exit trap never signals a reused pid.
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# CPU time a process's threads have run so far, in microseconds (schedstat: ns on the CPU).
cpu_us() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s / 1000}'; }
wait_http() {
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
rcli() { redis-cli -s "$WORK/redis.sock" "$@"; }
aof_rewrites() { rcli INFO persistence | tr -d '\r' | awk -F: '$1 == "aof_rewrites" {print $2}'; }
# Empties Redis between phases, and its AOF with it, so one phase's writes never bring the next
# phase an AOF rewrite.
flush_redis() {
    rcli FLUSHALL >/dev/null
    rcli BGREWRITEAOF >/dev/null
    for _ in $(seq 100); do
        rcli INFO persistence | grep -q '^aof_rewrite_in_progress:0' && break
        sleep 0.1
    done
}

# ---------------------------------------------------------------- Redis, bodies
say "redis-server on a unix socket (AOF everysec, as scripts/run.sh runs it; rewrite from $REWRITE_MIN)"
mkdir -p "$WORK/redis"
"${LOAD[@]}" redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
    --dir "$WORK/redis" --appendonly yes --appendfsync everysec --save '' \
    --auto-aof-rewrite-min-size "$REWRITE_MIN" \
    >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
REDIS_PID=$!
for _ in $(seq 50); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli PING >/dev/null || die "redis-server did not start"

say "signing $((WRK_THREADS * PER_THREAD)) distinct webhook bodies (+ a warm-up set)"
python3 "$BENCH/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" --threads $WRK_THREADS \
    --per-thread $PER_THREAD --out "$WORK/bodies"
python3 "$BENCH/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" --threads $WRK_THREADS \
    --per-thread 60000 --first 10000000 --out "$WORK/warm"
[ "${BENCH_SPLIT:-1}" != 1 ] || python3 "$BENCH/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" \
    --threads $WRK_THREADS --per-thread 150000 --first 20000000 --out "$WORK/split"
BODY_BYTES=$(head -1 "$WORK/bodies.0" | cut -d' ' -f2- | tr -d '\n' | wc -c)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# Runs wrk against $2 for $3 seconds; the BENCH lines end up in $WORK/wrk-$1.txt.
run_wrk() {
    rm -f "$4".ready.* # wa_ingest.lua's marks of loaded threads
    "${LOAD[@]}" wrk -t $WRK_THREADS -c "$CONNS" -d "${3}s" --latency -s "$BENCH/wa_ingest.lua" \
        "$2" -- "$4" $WRK_THREADS >"$WORK/wrk-$1.txt" 2>&1 || { cat "$WORK/wrk-$1.txt" >&2; die "wrk failed"; }
}
field() { grep -o "$2=[0-9.]*" "$WORK/wrk-$1.txt" | head -1 | cut -d= -f2; }

# One ingest measurement: $1 = label, $2 = pid, $3 = url, $4 = stream key ("" = none).
declare -A RPS P50 P99 HWM ANON LOST NOTE CPU_SRV CPU_REDIS IDLE_RSS IDLE_ANON
ingest() {
    local label=$1 pid=$2 url=$3 key=$4
    run_wrk "$label-warm" "$url" $WARMUP "$WORK/warm"
    local before=0 after=0 rw0 rewrites srv0 red0
    [ -n "$key" ] && before=$(rcli XLEN "$key")
    rw0=$(aof_rewrites)
    srv0=$(cpu_us "$pid")
    red0=$(cpu_us "$REDIS_PID")
    run_wrk "$label" "$url" "$DURATION" "$WORK/bodies"
    sleep 0.5 # answers cut off by wrk's stop may still be committing
    [ -n "$key" ] && after=$(rcli XLEN "$key")
    rewrites=$(($(aof_rewrites) - rw0))
    # CPU per answered request over the measured run; wrk loading its bodies first adds idle
    # time, not CPU.
    local answered=$(($(field "$label" ok2xx) + $(field "$label" non2xx)))
    CPU_SRV[$label]=$(python3 -c "print('%.1f' % (($(cpu_us "$pid") - $srv0) / max($answered, 1)))")
    CPU_REDIS[$label]=$(python3 -c "print('%.1f' % (($(cpu_us "$REDIS_PID") - $red0) / max($answered, 1)))")
    RPS[$label]=$(field "$label" rps)
    P50[$label]=$(field "$label" p50_us)
    P99[$label]=$(field "$label" p99_us)
    HWM[$label]=$(kb "$pid" VmHWM)
    ANON[$label]=$(kb "$pid" RssAnon) # private memory now; VmHWM also counts mapped libraries
    local ok non wrapped
    ok=$(field "$label" ok2xx)
    non=$(field "$label" non2xx)
    wrapped=$(field "$label" wrapped)
    if [ -n "$key" ]; then
        # Every 2xx must be a new entry; requests cut off when wrk stopped may add a few more
        # entries than counted 2xx (at most one per connection), never fewer.
        local added=$((after - before))
        local lost=$((ok - wrapped - added))
        [ $lost -lt 0 ] && lost=0
        LOST[$label]=$lost
        NOTE[$label]="2xx=$ok non-2xx=$non new entries=$added wrapped=$wrapped aof rewrites=$rewrites"
    else
        LOST[$label]="-"
        NOTE[$label]="2xx=$ok non-2xx=$non aof rewrites=$rewrites"
    fi
    # role=all: where Redis's time goes, by part (bench/redis_split.py), in a run of its own
    # after the measured one: logging every command slows Redis, and inside a measured run it
    # took up to 30% off role=all's rate and put up to 5x on its p99.
    if [ "${label%%.*}" = all ] && [ "${BENCH_SPLIT:-1}" = 1 ]; then
        python3 "$BENCH/redis_split.py" --socket "$WORK/redis.sock" --pid "$REDIS_PID" --root "$ROOT" \
            --settle 1.5 --window 1 >"$WORK/split-$label.txt" 2>&1 &
        local split_pid=$!
        run_wrk "$label-split" "$url" 4 "$WORK/split"
        wait "$split_pid" || echo "redis split failed" >>"$WORK/split-$label.txt"
    fi
}

# Starts the gateway with the WhatsApp quickstart environment and role $1; sets GW_PID.
start_gateway() {
    GW_PORT=$(free_port)
    env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" DESKBRIDGE_DEDUPE_DB="$DEDUPE_DB" \
        DESKBRIDGE_LISTEN="127.0.0.1:$GW_PORT" DESKBRIDGE_ROLE="$1" \
        ${BENCH_LOG_LEVEL:+DESKBRIDGE_LOG_LEVEL="$BENCH_LOG_LEVEL"} \
        WHATSAPP_ACCESS_TOKEN="EAAGbenchToken0123456789" WHATSAPP_APP_SECRET="$APP_SECRET" \
        WHATSAPP_VERIFY_TOKEN="bench-verify" WHATSAPP_PHONE_NUMBER_ID="$PNID" \
        WHATSAPP_API_BASE="http://127.0.0.1:9" \
        "${SRV[@]}" "$GW_BIN" >"$WORK/gateway-$1.log" 2>&1 &
    GW_PID=$!
    PIDS+=($GW_PID)
    wait_http "http://127.0.0.1:$GW_PORT/healthz" ||
        { tail -20 "$WORK/gateway-$1.log" >&2; die "gateway ($1) did not start"; }
}
HOOK_PATH="/webhooks/whatsapp/$PNID"

# Starts the gateway with role $1, takes its idle RSS, measures it as $2 and stops it.
measure_gateway() {
    start_gateway "$1"
    sleep 2
    IDLE_RSS[$2]=$(kb $GW_PID VmRSS)
    IDLE_ANON[$2]=$(kb $GW_PID RssAnon)
    ingest "$2" $GW_PID "http://127.0.0.1:$GW_PORT$HOOK_PATH" deskbridge:events
    stop_pid $GW_PID
}

# ---------------------------------------------------------------- 1. ingest rounds
# The machine's speed drifts (a neighbour's load moves the subjects by different amounts), so
# the gateway and the Node relay are measured in rounds, each round one run of each back to
# back, and each target is the median of the rounds' own ratios.
# role=all is the quickstart: every role in one process, so besides ingest the dispatcher
# reads every event back and files it under its conversation.  role=ingest is the same work
# the Node relay does (verify, parse, normalize, write, answer after the ack); the gateway's
# write also deduplicates.  It runs last in a round, so the last round leaves its backlog to
# the dispatcher phase.
for r in $(seq "$ROUNDS"); do
    [ "$r" = 1 ] || flush_redis
    say "round $r of $ROUNDS: Node.js relay (fastify + ioredis)"
    start_with_port node env PORT=0 REDIS_SOCKET="$WORK/redis.sock" APP_SECRET="$APP_SECRET" \
        PHONE_NUMBER_ID="$PNID" "${SRV[@]}" node "$BENCH/node-relay/server.js"
    ingest node.$r $LAST_PID "http://127.0.0.1:$STARTED_PORT$HOOK_PATH" relay:events
    stop_pid $LAST_PID
    flush_redis
    say "round $r: deskbridge role=all (the quickstart default): idle RSS, then ingest (${DURATION}s, $CONNS connections)"
    measure_gateway all all.$r
    flush_redis
    say "round $r: deskbridge role=ingest"
    measure_gateway ingest gateway.$r
done

# ---------------------------------------------------------------- 2. the dispatcher alone
# The last ingest run left a backlog of events from 5,000 interleaved conversations; a
# role=dispatch process works through it, and its group's progress over DURATION seconds is
# its rate.
# The window ends early when the backlog does: a rate taken over a window that the backlog
# did not fill would be the backlog's size, not the dispatcher's speed.
BACKLOG=$(rcli XLEN deskbridge:events)
say "dispatcher (role=dispatch) over the backlog of $BACKLOG events"
start_gateway dispatch
sleep 1
D0=$(group_applied "$WORK/redis.sock")
DT0=$(date +%s.%N)
DEND=$(python3 -c "print($DT0 + $DURATION)")
while :; do
    sleep 0.2
    D1=$(group_applied "$WORK/redis.sock")
    DT1=$(date +%s.%N)
    [ "$D1" -lt "$BACKLOG" ] && python3 -c "import sys; sys.exit(0 if $DT1 < $DEND else 1)" || break
done
[ "$D1" -lt "$BACKLOG" ] || say "the dispatcher reached the end of the backlog after $(python3 -c "print('%.1f' % ($DT1 - $DT0))") s"
DISPATCH_RATE=$(python3 -c "print('%.0f' % (($D1 - $D0) / ($DT1 - $DT0)))")
stop_pid $GW_PID
flush_redis

# ---------------------------------------------------------------- 3. the bare libevent server
# Its own ceiling does not drift with anything the gateway does, so one run is enough.
say "bare libevent server"
start_with_port bare "${SRV[@]}" "$WORK/bare_server" 0
BARE_PID=$LAST_PID
ingest bare $BARE_PID "http://127.0.0.1:$STARTED_PORT$HOOK_PATH" ""
stop_pid $BARE_PID

# ---------------------------------------------------------------- 4. outbound
# The fake is stopped (SIGSTOP) while the replies are enqueued, so the API's rate and the
# sender's rate are measured apart: the sender then drains a full outbox.  Its calls wait in
# the fake's listen queue meanwhile, far below the client's 30 s timeout.
say "outbound: $OUTBOUND replies through POST /v1/messages, then sent to a fake Telegram"
start_with_port fake "${LOAD[@]}" "$WORK/fake_telegram" 0
FAKE_PORT=$STARTED_PORT
FAKE_PID=$LAST_PID
GW2_PORT=$(free_port)
env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" DESKBRIDGE_DEDUPE_DB="$DEDUPE_DB" \
    DESKBRIDGE_LISTEN="127.0.0.1:$GW2_PORT" \
    DESKBRIDGE_API_TOKEN="$API_TOKEN" TELEGRAM_BOT_TOKEN="$BOT_ID:AAbenchTokenNotReal0123456789" \
    TELEGRAM_WEBHOOK_SECRET="bench-webhook-secret" TELEGRAM_API_BASE="http://127.0.0.1:$FAKE_PORT" \
    "${SRV[@]}" "$GW_BIN" >"$WORK/gateway-out.log" 2>&1 &
GW2_PID=$!
PIDS+=($GW2_PID)
wait_http "http://127.0.0.1:$GW2_PORT/healthz" ||
    { tail -20 "$WORK/gateway-out.log" >&2; die "gateway (outbound) did not start"; }
sleep 1
kill -STOP "$FAKE_PID"
"${LOAD[@]}" wrk -t $WRK_THREADS -c 16 -d 120s -s "$BENCH/enqueue.lua" "http://127.0.0.1:$GW2_PORT" \
    -- "$API_TOKEN" "$BOT_ID" $((OUTBOUND / WRK_THREADS)) >"$WORK/wrk-enqueue.txt" 2>&1 &
WRK_PID=$!
PIDS+=($WRK_PID)
T0=$(date +%s.%N)
QUEUED=0
for _ in $(seq 1200); do
    QUEUED=$(rcli XLEN deskbridge:outbox)
    [ "$QUEUED" -ge "$OUTBOUND" ] && break
    sleep 0.05
done
T1=$(date +%s.%N)
# wrk sleeps out its duration even when every thread stopped; SIGINT ends it with a report.
kill -INT $WRK_PID
wait $WRK_PID || true
forget_pid $WRK_PID
ACCEPTED=$(grep -o 'accepted=[0-9]*' "$WORK/wrk-enqueue.txt" | cut -d= -f2)
REFUSED=$(grep -o 'refused=[0-9]*' "$WORK/wrk-enqueue.txt" | cut -d= -f2)
[ -n "$ACCEPTED" ] || { cat "$WORK/wrk-enqueue.txt" >&2; die "no enqueue count"; }
ENQ_RATE=$(python3 -c "print('%.0f' % ($QUEUED / ($T1 - $T0)))")
QUEUED=$(rcli XLEN deskbridge:outbox)
kill -CONT "$FAKE_PID"
# Requests cut off by wrk's stop may have been accepted too: the outbox length is the truth.
last=-1
still=0
for _ in $(seq 600); do
    n=$(curl -fsS "http://127.0.0.1:$FAKE_PORT/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sends"])')
    if [ "$n" = "$last" ] && [ "$n" -ge "$QUEUED" ]; then still=$((still + 1)); else still=0; fi
    [ $still -ge 5 ] && break
    last=$n
    sleep 0.2
done
STATS=$(curl -fsS "http://127.0.0.1:$FAKE_PORT/_stats")
read -r SENDS SEND_RATE < <(echo "$STATS" | python3 -c '
import json, sys
s = json.load(sys.stdin)
span = (s["last_us"] - s["first_us"]) / 1e6
print(s["sends"], "%.0f" % ((s["sends"] - 1) / span if span > 0 else 0))')
OUT_HWM=$(kb $GW2_PID VmHWM)
OUT_LOST=$((QUEUED - SENDS))
[ $OUT_LOST -lt 0 ] && OUT_LOST=0
OUT_DUP=$((SENDS - QUEUED))
[ $OUT_DUP -lt 0 ] && OUT_DUP=0
stop_pid $GW2_PID
stop_pid $FAKE_PID

JSON_FIGURES="json bench: not built (see json_bench.log)"
if [ -n "$JSON_BENCH" ]; then
    say "JSON parse and dump, jansson and deskbridge's own"
    JSON_FIGURES=$("${SRV[@]}" "$JSON_BENCH" 2>&1) || JSON_FIGURES="json bench failed: $JSON_FIGURES"
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- summary
ms() { python3 -c "print('%.2f' % ($1 / 1000.0))"; }
mb() { python3 -c "print('%.1f' % ($1 / 1024.0))"; }
ratio() { python3 -c "print('%.2f' % ($1 / $2) if $2 else '-')" 2>/dev/null || echo "-"; }
holds() { python3 -c "print('yes' if $1 else 'NO')" 2>/dev/null || echo "?"; }
median() { python3 -c 'import statistics, sys; print("%.2f" % statistics.median(float(a) for a in sys.argv[1:]))' "$@"; }
# The values of array $1 for subject $2: one per round, or the single run's (bare).
values() {
    local -n v=$1
    local r
    if [ -n "${v[$2]+set}" ]; then echo "${v[$2]}"; return; fi
    for r in $(seq "$ROUNDS"); do printf '%s ' "${v[$2.$r]}"; done
}
med() { median $(values "$1" "$2"); }
most() { values "$1" "$2" | tr ' ' '\n' | grep . | sort -n | tail -1; }
total() { values "$1" "$2" | awk '{for (i = 1; i <= NF; i++) if ($i == "-") none = 1; else s += $i} END {print none ? "-" : s + 0}'; }
# Each round's ratio of array $1, subject $2 over subject $3 of the same round (or over the
# single run of $3).
ratios() {
    local -n v=$1
    local r out=() ref
    for r in $(seq "$ROUNDS"); do
        ref=${v[$3.$r]:-${v[$3]}}
        out+=("$(ratio "${v[$2.$r]}" "$ref")")
    done
    echo "${out[*]}"
}
subject() {
    case $1 in
    gateway) echo "deskbridge role=ingest" ;;
    all) echo "deskbridge role=all" ;;
    node) echo "node relay" ;;
    bare) echo "bare libevent (200 only)" ;;
    esac
}

{
    echo
    echo "deskbridge bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.1f GB", $2/1048576}' /proc/meminfo)"
    echo "load average before: $LOAD_BEFORE, after: $LOAD_AFTER; $PIN_NOTE"
    echo "redis: AOF everysec, automatic AOF rewrite from $REWRITE_MIN (BENCH_AOF_REWRITE_MIN_SIZE); each phase starts from an empty, rewritten AOF; the gateways' dedupe_db $DEDUPE_DB (BENCH_DEDUPE_DB)"
    echo "ingest: ${BODY_BYTES}-byte signed WhatsApp webhooks, a new message id each, wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s after a ${WARMUP}s warm-up"
    [ "$BENCH_PACE_MS" = 0 ] || echo "paced: each connection waits ${BENCH_PACE_MS} ms before its next request (BENCH_PACE_MS)"
    echo
    printf '%-26s %9s %8s %8s %8s %8s %8s %8s %5s\n' "ingest, median of rounds" "req/s" "p50 ms" "p99 ms" "peak MB" "anon MB" "srv us" "redis us" "lost"
    for l in gateway all node bare; do
        printf '%-26s %9s %8s %8s %8s %8s %8s %8s %5s\n' "$(subject $l)" "$(med RPS $l)" "$(ms "$(med P50 $l)")" \
            "$(ms "$(med P99 $l)")" "$(mb "$(most HWM $l)")" "$(mb "$(med ANON $l)")" "$(med CPU_SRV $l)" \
            "$(med CPU_REDIS $l)" "$(total LOST $l)"
    done
    echo
    echo "each run (peak MB: VmHWM at its end)"
    run_line() {
        printf '  %-11s %9s req/s  p50 %6s  p99 %6s ms  %5s MB  %s\n' "$1" "${RPS[$1]}" "$(ms "${P50[$1]}")" \
            "$(ms "${P99[$1]}")" "$(mb "${HWM[$1]}")" "${NOTE[$1]}"
    }
    for r in $(seq "$ROUNDS"); do for l in node all gateway; do run_line $l.$r; done; done
    run_line bare
    echo
    echo "targets (median of the rounds' ratios)   role=ingest  role=all    target   role=ingest per round"
    two() { # label, metric array name, reference subject, comparison, target text, limit
        local a b
        a=$(median $(ratios "$2" gateway "$3"))
        b=$(median $(ratios "$2" all "$3"))
        printf '%-40s %7s %-4s %7s %-4s %8s   %s\n' "$1" "${a}x" "$(holds "$a $4 $6")" "${b}x" \
            "$(holds "$b $4 $6")" "$5" "$(ratios "$2" gateway "$3")"
    }
    two "req/s vs node relay" RPS node ">=" ">= 1.5x" 1.5
    two "p99 vs node relay" P99 node "<=" "<= 0.5x" 0.5
    two "peak RSS vs node relay" HWM node "<=" "<= 0.1x" 0.1
    two "req/s vs bare libevent" RPS bare ">=" ">= 0.4x" 0.4
    idle_i=$(most IDLE_RSS gateway)
    idle_a=$(most IDLE_RSS all)
    printf '%-40s %7s %-4s %7s %-4s %8s\n' "idle RSS MB (2 s after start, largest)" "$(mb "$idle_i")" \
        "$(holds "$idle_i < 10240")" "$(mb "$idle_a")" "$(holds "$idle_a < 10240")" "< 10"
    printf '%-40s %7s %-4s %7s %-4s %8s\n' "outbound sends/s (role=all)" "" "" "$SEND_RATE" "$(holds "$SEND_RATE >= 5000")" ">= 5000"
    printf '%-40s %7s %-4s %7s %-4s %8s\n' "dispatcher events/s (role=dispatch)" "" "" "$DISPATCH_RATE" "$(holds "$DISPATCH_RATE >= 20000")" ">= 20000"
    echo
    # Issue 21 (the speed of role=all, what the README runs) asks more of the same figures.
    echo "issue 21's targets (the default deployment)          value        target"
    goal() { printf '%-46s %10s %-4s %8s\n' "$1" "$2" "$(holds "$2 $3")" "$3"; }
    goal "role=ingest req/s vs node relay" "$(median $(ratios RPS gateway node))" ">= 2.0"
    goal "role=ingest req/s vs bare libevent" "$(median $(ratios RPS gateway bare))" ">= 0.6"
    goal "role=all req/s vs node relay" "$(median $(ratios RPS all node))" ">= 1.5"
    goal "role=all p99 vs node relay" "$(median $(ratios P99 all node))" "<= 0.5"
    goal "Redis us per webhook, role=all" "$(med CPU_REDIS all)" "<= 25"
    goal "dispatcher events/s (role=dispatch)" "$DISPATCH_RATE" ">= 60000"
    goal "outbound sends/s (role=all)" "$SEND_RATE" ">= 20000"
    echo
    echo "peak MB = VmHWM (includes shared libraries mapped in); anon MB = RssAnon at the end of the run (private memory)."
    echo "srv us, redis us = CPU time of the server and of redis-server per answered request over the run."
    echo "idle RssAnon (largest): role=ingest $(mb "$(most IDLE_ANON gateway)") MB, role=all $(mb "$(most IDLE_ANON all)") MB"
    echo "outbound (role=all, Telegram): $ACCEPTED replies answered 202 ($REFUSED refused), $QUEUED in the outbox, enqueued at $ENQ_RATE/s with the fake paused;"
    echo "  $SENDS sendMessage calls reached the fake, $SEND_RATE/s from first to last; not sent: $OUT_LOST, extra: $OUT_DUP; gateway peak RSS $(mb "$OUT_HWM") MB"
    echo "$JSON_FIGURES"
    for r in $(seq "$ROUNDS"); do
        [ -f "$WORK/split-all.$r.txt" ] || continue
        echo
        echo "round $r, in a 4 s run after the measured one: $(cat "$WORK/split-all.$r.txt")"
    done
} | tee "$WORK/summary.txt"

fail=0
for l in gateway all node; do [ "$(total LOST $l)" = 0 ] || { echo "LOST MESSAGES in $l" >&2; fail=1; }; done
[ "$OUT_LOST" = 0 ] || { echo "replies not sent: $OUT_LOST" >&2; fail=1; }
exit $fail
