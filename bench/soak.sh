#!/usr/bin/env bash
# bench/soak.sh - role=all (what the README runs) under a steady load for a long time: does
# anything grow or get lost?
#
#   bench/soak.sh                 # 30 minutes at 70% of the peak rate it measures first (the
#                                 # rate at which role=all also dispatches what it takes)
#   bench/soak.sh --short         # 2 minutes (what the test suite runs: ctest label soak)
#   SOAK_RATE=8000 bench/soak.sh  # a fixed rate instead of 70% of the measured peak
#
# Load: Telegram webhooks from wrk (bench/soak_tg.lua: a new update per request, 5,000 chats,
# each connection pacing itself, run in segments of SOAK_SEGMENT_S seconds so latency is known
# per segment; each segment's pause between a connection's requests is set from the previous
# one's rate, so the rate settles at the aim with the same connections throughout, and more
# connections are added only when no pause is left), and bench/soak_driver.py: agents'
# replies through the API, WhatsApp messages with replies and their signed delivered/read
# receipts, agents changing presence, and a helpdesk-like consumer group that counts what
# reached P:events.  A fake platform
# (bench/fake_telegram.c) takes the sends.  Redis: AOF everysec; the gateway trims P:events
# with stream_maxlen = SOAK_MAXLEN (200000).
#
# Every SOAK_SAMPLE_S seconds it samples the gateway's RssAnon and open descriptors, Redis's
# memory, conversations and stream lengths; at the end it prints the first and last fifth of
# the run (5 of 30 minutes; 24 s of 2) side by side, the p99 of the first and last segments,
# the stream lengths against their trimming, and the lost count.
#
# Prints figures; exits 1 only when a message was lost (a 2xx webhook not in the stream, an
# accepted reply never sent, an event trimmed before a group read it, a dead letter), the
# dispatcher is still behind when the wait after the load ends (BEHIND: not applied, still in
# the stream) or the gateway died, never on timing.  Knobs: SOAK_DURATION (s),
# SOAK_RATE, SOAK_SEGMENT_S, SOAK_SAMPLE_S, SOAK_MAXLEN, SOAK_REPLIES_PER_S (50), SOAK_DRAIN_S,
# DESKBRIDGE_BIN, SOAK_KEEP=1, BENCH_PIN, SOAK_REDIS_ARGS (more redis-server options, split on
# spaces, e.g. "--auto-aof-rewrite-percentage 400"; default none: Redis's own AOF rewrites,
# as scripts/run.sh and docker-compose.yml run it), SOAK_DEDUPE_DB (the gateway's dedupe_db,
# default 1 as scripts/run.sh and docker-compose.yml set it; -1 = in its own database).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
SHORT=0
[ "${1:-}" = --short ] && SHORT=1
if [ $SHORT = 1 ]; then
    DURATION=${SOAK_DURATION:-120}
    SEGMENT=${SOAK_SEGMENT_S:-12}
    SAMPLE=${SOAK_SAMPLE_S:-6}
else
    DURATION=${SOAK_DURATION:-1800}
    SEGMENT=${SOAK_SEGMENT_S:-60}
    SAMPLE=${SOAK_SAMPLE_S:-10}
fi
MAXLEN=${SOAK_MAXLEN:-200000}
CHATS=5000
PACE_MS=20 # the first segment's pause; later ones follow the rate
BOT=700000001
PNID=106540352242922
APP_SECRET="soak-app-secret-0123456789"
TG_SECRET="soak-webhook-secret-0123456789"
API_TOKEN="soak-api-token-0123456789abcdef"

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'soak: %s\n' "$*" >&2; exit 2; }
# A missing tool skips (77, what the test suite's soak_short counts as skipped), except on a
# CI machine (CI=true), where scripts/deps.sh installs every one of them: there it fails.
missing() {
    echo "soak: $1 is missing" >&2
    [ "${CI:-}" = true ] && exit 2
    exit 77
}
for t in wrk redis-server redis-cli python3 cc curl; do
    command -v $t >/dev/null || missing "$t"
done
[ -f /usr/include/event2/http.h ] || missing libevent-dev

WORK=$(mktemp -d /tmp/deskbridge-soak.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${SOAK_KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ -n "${DESKBRIDGE_BIN:-}" ]; then
    GW_BIN=$DESKBRIDGE_BIN
else
    say "building deskbridge (RelWithDebInfo) in build-bench"
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDB_TESTS=OFF >"$WORK/cmake.log" 2>&1 &&
        cmake --build "$ROOT/build-bench" --target deskbridge -j2 >>"$WORK/cmake.log" 2>&1 ||
        { tail -40 "$WORK/cmake.log" >&2; die "build failed"; }
    GW_BIN="$ROOT/build-bench/deskbridge"
fi
cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -o "$WORK/fake" "$BENCH/fake_telegram.c" -levent ||
    die "cannot build the fake platform"

SRV=()
LOAD=()
REDIS_CPUS=()
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SRV=(taskset -c 1)
    LOAD=(taskset -c 0)
    # Redis's AOF rewrite child would inherit the pin and take half of Redis's own core for
    # the length of every rewrite; unpinned, as in a deployment, it runs on whichever core
    # is free.  Its background threads (fsync, closing files, freeing) likewise.
    every_cpu="0-$(($(nproc) - 1))"
    REDIS_CPUS=(--aof_rewrite_cpulist "$every_cpu" --bgsave_cpulist "$every_cpu"
                --bio_cpulist "$every_cpu")
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rcli() { redis-cli -s "$WORK/redis.sock" "$@"; }
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

mkdir -p "$WORK/redis"
read -r -a REDIS_EXTRA <<<"${SOAK_REDIS_ARGS:-}"
"${LOAD[@]}" redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
    --dir "$WORK/redis" --appendonly yes --appendfsync everysec --save '' \
    ${REDIS_CPUS[@]+"${REDIS_CPUS[@]}"} ${REDIS_EXTRA[@]+"${REDIS_EXTRA[@]}"} >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli PING >/dev/null || die "redis-server did not start"

"${LOAD[@]}" "$WORK/fake" 0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
PIDS+=($!)
for _ in $(seq 50); do grep -q '^port ' "$WORK/fake.out" 2>/dev/null && break; sleep 0.1; done
FAKE_PORT=$(awk '/^port /{print $2; exit}' "$WORK/fake.out")
[ -n "$FAKE_PORT" ] || die "the fake platform did not start"

GW_PORT=$(free_port)
cat >"$WORK/soak.conf" <<EOF
[gateway]
listen = 127.0.0.1:$GW_PORT
redis_url = unix://$WORK/redis.sock
api_token = $API_TOKEN
stream_maxlen = $MAXLEN
dedupe_db = ${SOAK_DEDUPE_DB:-1}
log_level = warn

[telegram $BOT]
token = $BOT:AAsoakTokenNotReal0123456789
webhook_secret = $TG_SECRET
api_base = http://127.0.0.1:$FAKE_PORT

[whatsapp $PNID]
access_token = EAAGsoakToken0123456789
app_secret = $APP_SECRET
verify_token = soak-verify
phone_number_id = $PNID
api_base = http://127.0.0.1:$FAKE_PORT
EOF
env -i PATH="$PATH" DESKBRIDGE_CONFIG="$WORK/soak.conf" "${SRV[@]}" "$GW_BIN" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$GW_PORT/healthz" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$GW_PORT/healthz" || { tail -20 "$WORK/gateway.log" >&2; die "the gateway did not start"; }
URL="http://127.0.0.1:$GW_PORT/webhooks/telegram/$BOT"
field() { grep -o "$2=[0-9.]*" "$1" | head -1 | cut -d= -f2; }

# A consumer group's "lag pending" ($1 stream, $2 group; a lag Redis cannot tell counts as 0
# here, dispatch_lag below tells it apart).
group() {
    rcli XINFO GROUPS "$1" | awk -v g="$2" '
        prev == "name" { want = ($0 == g) }
        want && prev == "pending" { p = $0 }
        want && prev == "lag" { l = $0 }
        { prev = $0 }
        END { print (l == "" ? 0 : l), (p == "" ? 0 : p) }'
}
ms_now() { date +%s%3N; }

# ---- the peak, then 70% of it
# The peak is what role=all sustains: webhooks a second from the start of a 5 s burst until
# its dispatcher has applied all of them.  wrk's own rate over the burst counts webhooks
# accepted while the dispatcher's share of the work waits, which no load can keep up for long.
if [ -n "${SOAK_RATE:-}" ]; then
    RATE=$SOAK_RATE
    PEAK="-"
else
    t0=$(ms_now)
    "${LOAD[@]}" wrk -t2 -c64 -d5s -s "$BENCH/soak_tg.lua" "$URL" -- "$TG_SECRET" 0 $CHATS 0 >"$WORK/peak.txt" 2>&1 ||
        { cat "$WORK/peak.txt" >&2; die "wrk failed"; }
    for _ in $(seq 600); do
        read -r dl dp < <(group deskbridge:events deskbridge-dispatch)
        [ "$dl$dp" = 00 ] && break
        sleep 0.1
    done
    t1=$(ms_now)
    BURST=$(field "$WORK/peak.txt" rps)
    PEAK=$(python3 -c "print(round($(field "$WORK/peak.txt" ok2xx) * 1000.0 / ($t1 - $t0), 1))")
    say "peak: $BURST webhooks/s accepted over the burst, $PEAK/s applied by the dispatcher by $(((t1 - t0) / 1000)) s"
    RATE=$(python3 -c "print(int($PEAK * 0.7))")
fi
# connections * 1000 / (PACE_MS + the answer's time) = the rate: room for 5 ms answers
CONNS=$(python3 -c "print(max(2, min(1000, round($RATE * ($PACE_MS + 5) / 1000))))")
say "role=all for ${DURATION}s at about $RATE webhooks/s (peak $PEAK, dedupe_db ${SOAK_DEDUPE_DB:-1}): $CONNS connections, ${PACE_MS} ms apart"

# The counting group starts here, before the first counted webhook (soak_driver.py reads it).
rcli XGROUP CREATE deskbridge:events soak-count '$' MKSTREAM >/dev/null
START=$(date +%s)
STOP_FILE="$WORK/stop"
python3 "$BENCH/soak_driver.py" --port "$GW_PORT" --socket "$WORK/redis.sock" --token "$API_TOKEN" \
    --bot $BOT --chats $CHATS --pnid $PNID --app-secret "$APP_SECRET" \
    --replies-per-s "${SOAK_REPLIES_PER_S:-50}" --stop "$STOP_FILE" --out "$WORK/driver.json" \
    >"$WORK/driver.log" 2>&1 &
DRIVER_PID=$!
PIDS+=($DRIVER_PID)

# The dispatcher's group: its lag now, -1 when Redis cannot tell.
dispatch_lag() {
    rcli XINFO GROUPS deskbridge:events | awk '
        prev == "name" { want = ($0 == "deskbridge-dispatch") }
        want && prev == "lag" { l = $0 }
        { prev = $0 }
        END { print (l ~ /^[0-9]+$/ ? l : -1) }'
}
sample() { # $1 = file; t rss_anon_kb fds used_memory convs events outbox status dead inbox_max keys dispatch_lag
    local t=$(($(date +%s) - START)) inbox=0 k n
    # the driver's agents (soak_driver.py, --agents 8): a SCAN of millions of keys would
    # take longer than a sample's interval
    for k in $(seq 0 7); do
        n=$(rcli XLEN "deskbridge:agent:{soak-agent-$k}")
        [ "$n" -gt "$inbox" ] && inbox=$n
    done
    printf '%s %s %s %s %s %s %s %s %s %s %s %s\n' "$t" "$(kb $GW_PID RssAnon)" "$(ls /proc/$GW_PID/fd | wc -l)" \
        "$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')" "$(rcli ZCARD deskbridge:convs)" \
        "$(rcli XLEN deskbridge:events)" "$(rcli XLEN deskbridge:outbox)" "$(rcli XLEN deskbridge:status)" \
        "$(rcli XLEN deskbridge:dead)" "$inbox" "$(rcli DBSIZE)" "$(dispatch_lag)" >>"$1"
}
(
    while [ ! -f "$STOP_FILE" ]; do
        kill -0 $GW_PID 2>/dev/null || exit 0
        sample "$WORK/samples.txt"
        sleep "$SAMPLE"
    done
) &
SAMPLER_PID=$!
PIDS+=($SAMPLER_PID)

seg=0
crashed=0
while [ $(($(date +%s) - START)) -lt "$DURATION" ]; do
    seg=$((seg + 1))
    left=$((DURATION - ($(date +%s) - START)))
    d=$((left < SEGMENT ? left : SEGMENT))
    [ "$d" -ge 2 ] || break
    "${LOAD[@]}" wrk -t2 -c"$CONNS" -d"${d}s" -s "$BENCH/soak_tg.lua" "$URL" -- "$TG_SECRET" $seg $CHATS $PACE_MS \
        >"$WORK/seg-$seg.txt" 2>&1 || true
    echo "$(($(date +%s) - START)) $(field "$WORK/seg-$seg.txt" ok2xx) $(field "$WORK/seg-$seg.txt" non2xx) $(field "$WORK/seg-$seg.txt" rps) $(field "$WORK/seg-$seg.txt" p99_us) $CONNS $PACE_MS" >>"$WORK/segments.txt"
    # Each connection waits PACE_MS plus its answer's time: the next segment's pause is what
    # leaves the rate at the aim given this segment's answer time (a segment is long enough to
    # tell), so the connections, and with them the gateway's descriptors and buffers, stay the
    # same.  Only when no pause is left (answers alone take longer) do connections grow.
    got=$(field "$WORK/seg-$seg.txt" rps)
    if [ -n "$got" ]; then
        read -r CONNS PACE_MS < <(python3 -c "
c, pace, aim, got = $CONNS, $PACE_MS, $RATE, max($got, 1.0)
answer = max(c * 1000.0 / got - pace, 0.0)
want = round(c * 1000.0 / aim - answer)
if want >= 1: print(c, min(want, 1000))
else: print(max(2, min(1000, round(c * aim / got))), pace)")
    fi
    kill -0 $GW_PID 2>/dev/null || { crashed=1; break; }
done
touch "$STOP_FILE"
wait $SAMPLER_PID 2>/dev/null || true
wait $DRIVER_PID || true
kill -0 $GW_PID 2>/dev/null || crashed=1

# Let the pipeline finish: the dispatcher's group and the sender have everything.  A dispatcher
# that fell behind (an AOF rewrite) works through its backlog after the load: the wait goes on
# while the backlog keeps falling (it fell in the last 15 s), up to SOAK_DRAIN_S (1800 s).  An
# entry counts as lost only if it is still not applied after that.
drain_start=$(date +%s)
best=-1
best_at=$drain_start
while :; do
    read -r dl dp < <(group deskbridge:events deskbridge-dispatch)
    read -r sl sp < <(group deskbridge:outbox deskbridge-senders)
    [ "$dl$dp$sl$sp" = 0000 ] && break
    now=$(date +%s)
    left=$((dl + dp + sl + sp))
    if [ $best -lt 0 ] || [ $left -lt $best ]; then best=$left; best_at=$now; fi
    [ $((now - best_at)) -ge 15 ] && break
    [ $((now - drain_start)) -ge "${SOAK_DRAIN_S:-1800}" ] && break
    sleep 0.3
done
DRAINED_S=$(($(date +%s) - drain_start))
# once more, idle: what the load leaves behind
[ $crashed = 1 ] || sample "$WORK/after.txt"

# The trimmer's own account: what it removed before a group read it (stream_maxlen_hard is not
# set, so that must be 0) and what it held over stream_maxlen for a group behind.
curl -fsS "http://127.0.0.1:$GW_PORT/metrics" >"$WORK/metrics.txt" 2>/dev/null || : >"$WORK/metrics.txt"
rcli INFO persistence 2>/dev/null | tr -d '\r' >"$WORK/persistence.txt" || : >"$WORK/persistence.txt"
python3 - "$WORK" "$DURATION" "$MAXLEN" "$RATE" "$PEAK" "$crashed" "$dl" "$dp" "$sl" "$sp" "$FAKE_PORT" "$DRAINED_S" <<'EOF'
import json, os, sys, statistics, urllib.request
work, duration, maxlen, rate, peak, crashed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6] == "1"
dl, dp, sl, sp, fake_port, drained_s = (int(x) for x in sys.argv[7:13])
rows = [list(map(int, l.split())) for l in open(work + "/samples.txt") if l.strip()]
after = [list(map(int, l.split())) for l in open(work + "/after.txt") if l.strip()] if __import__("os").path.exists(work + "/after.txt") else []
segs = [l.split() for l in open(work + "/segments.txt") if l.strip()]
drv = json.load(open(work + "/driver.json")) if __import__("os").path.exists(work + "/driver.json") else {}
fake = json.load(urllib.request.urlopen("http://127.0.0.1:%d/_stats" % fake_port))
fifth = max(duration / 5.0, 1)
first = [r for r in rows if r[0] <= fifth] or rows[:1]
last = [r for r in rows if r[0] >= duration - fifth] or rows[-1:]
def avg(rs, i): return statistics.mean(r[i] for r in rs) if rs else 0
def per_conv(rs): return statistics.mean(r[3] / max(r[4], 1) for r in rs) if rs else 0
sfirst = [s for s in segs if int(s[0]) <= fifth + int(segs[0][0])] or segs[:1]
slast = [s for s in segs if int(s[0]) >= duration - fifth] or segs[-1:]
def p99(ss): return max(int(s[4] or 0) for s in ss) / 1000.0 if ss else 0
def rps(ss): return statistics.mean(float(s[3] or 0) for s in ss) if ss else 0
ok = sum(int(s[1] or 0) for s in segs)
non = sum(int(s[2] or 0) for s in segs)
lost_hooks = max(0, ok - drv.get("tg_counted", 0))
sent = fake["sends"] + fake["wa_sends"]
accepted = drv.get("replies_accepted", 0)
lost_replies = max(0, accepted - sent)
dead = rows[-1][8] if rows else 0
lags = [r[11] for r in rows]
def metric(name):
    for l in open(work + "/metrics.txt"):
        if l.startswith(name + " "): return float(l.split()[1])
    return None
trimmed = metric('deskbridge_stream_trimmed_total{stream="events"}')
trimmed_unread = metric('deskbridge_stream_trimmed_unread_total{stream="events"}')
held = metric('deskbridge_stream_trim_held_entries{stream="events"}')
# Without the gateway's own account (it died, or /metrics did not answer) a lag past
# stream_maxlen is taken as trimmed before the group read it.
if trimmed_unread is None:
    trimmed_unread = max(0, max(lags) - maxlen) if lags and maxlen else 0
trimmed_unread = int(trimmed_unread)
# Lost: gone for good.  Behind: events the dispatcher had not applied when the wait after the
# load ended; they are still in the stream (trimming spares them), but a dispatcher that cannot
# catch up fails the soak too.  Entries trimmed unread can still be in the group's lag (Redis
# counts the gap), so they are taken out of it.
lost = lost_hooks + lost_replies + trimmed_unread + dead
behind = max(0, dl - trimmed_unread) + dp
print()
print("deskbridge soak, role=all, %d s at about %s webhooks/s (peak %s), %d segments, sampled every few seconds" % (duration, rate, peak, len(segs)))
print("%-34s %14s %14s" % ("", "first %ds" % fifth, "last %ds" % fifth))
print("%-34s %14.2f %14.2f" % ("gateway RssAnon MB", avg(first, 1) / 1024, avg(last, 1) / 1024))
print("%-34s %14.0f %14.0f" % ("gateway open fds", avg(first, 2), avg(last, 2)))
print("%-34s %14.0f %14.0f" % ("Redis used_memory per conversation B", per_conv(first), per_conv(last)))
print("%-34s %14.0f %14.0f" % ("conversations", avg(first, 4), avg(last, 4)))
print("%-34s %14.0f %14.0f" % ("Redis keys (dedupe keys: 8 days)", avg(first, 10), avg(last, 10)))
print("%-34s %14.2f %14.2f" % ("p99 ms (worst segment)", p99(sfirst), p99(slast)))
print("%-34s %14.0f %14.0f" % ("webhooks/s", rps(sfirst), rps(slast)))
def load(ss): return "%s, %s ms" % (ss[-1][5], ss[-1][6]) if ss and len(ss[-1]) > 6 else "-"
print("%-34s %14s %14s" % ("wrk connections, pause", load(sfirst), load(slast)))
if after:
    a = after[0]
    print("after the load (idle, drained): RssAnon %.2f MB, %d open fds, Redis %.0f B per conversation" % (a[1] / 1024, a[2], a[3] / max(a[4], 1)))
if rows:
    r = (after or rows)[-1]
    print("streams at the end: events %d (stream_maxlen %d, trimmed with ~: at most a few hundred over unless a group is behind), outbox %d, status %d, dead %d, largest agent inbox %d (MAXLEN ~ 10000)" % (r[5], maxlen, r[6], r[7], r[8], r[9]))
    print("  largest seen during the run: events %d, inbox %d" % (max(x[5] for x in rows), max(x[9] for x in rows)))
    print("dispatcher lag during the run (entries not read yet): first fifth %.0f, last fifth %.0f, largest %d%s" % (
        avg(first, 11), avg(last, 11), max(lags), ", unknown in %d samples" % lags.count(-1) if -1 in lags else ""))
rewrites = [l.split(":")[1].strip() for l in open(work + "/persistence.txt") if l.startswith("aof_rewrites:")]
print("Redis AOF rewrites over the soak: %s (options: %s)" % (rewrites[0] if rewrites else "?", os.environ.get("SOAK_REDIS_ARGS") or "Redis's own"))
print("trimmer: %s entries removed, %d of them before a group read them, %s held over stream_maxlen at the end" % (
    "?" if trimmed is None else "%d" % trimmed, trimmed_unread, "?" if held is None else "%d" % held))
print("webhooks: %d answered 2xx, %d not; %d counted in P:events by a consumer group; lost %d" % (ok, non, drv.get("tg_counted", 0), lost_hooks))
print("replies: %d accepted, %d sent to the fake platform; not sent %d; receipts %d (read confirmed for %d of the last %d)" % (
    accepted, sent, lost_replies, drv.get("receipts", 0), drv.get("read_confirmed", 0), drv.get("read_checked", 0)))
print("dispatcher: lag %d, pending %d at the end (%d s after the load); sender: lag %d, pending %d; presence changes %d; WhatsApp messages %d" % (
    dl, dp, drained_s, sl, sp, drv.get("presence_changes", 0), drv.get("wa_messages", 0)))
print("LOST %d, BEHIND %d%s" % (lost, behind, ", GATEWAY DIED" if crashed else ""))
sys.exit(1 if lost or behind or crashed else 0)
EOF
