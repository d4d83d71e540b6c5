#!/usr/bin/env bash
# bench/redis_instr.sh - Redis's instructions per ingested webhook (role=ingest) and per
# dispatched event (role=dispatch), counted by valgrind's callgrind inside redis-server.
#
# Not a test: it prints figures and exits 0 whatever they are.  Timings on a shared machine
# drift by 10-30% within an hour, which hides a change of a few per cent; an instruction
# count of the same work repeats to within about 0.5%, so this is the A/B measure for a
# change to a script or to the commands the gateway sends (run it before and after, with
# DESKBRIDGE_BIN naming each build).  Instructions are not time: a cache miss costs no
# instruction, so a change that touches more keys can count fewer and still run slower.
#
# What it does, on one redis-server (AOF everysec, as scripts/run.sh runs it) under callgrind:
#   1. a backlog: role=ingest takes 200,000 signed WhatsApp webhooks (bench/gen_bodies.py,
#      5,000 customers), not counted: wrk sends them for BACKLOG_S seconds, and once it has
#      sent them all it starts over, which adds nothing (each is a dedupe hit), so the backlog
#      is the same in every run that gives it the time;
#   2. ingest: another INGEST_S seconds of webhooks, counted; per webhook = the count over
#      the entries added to P:events;
#   3. dispatch: role=dispatch applies the whole stream (the backlog and step 2's events),
#      counted until its group has acknowledged every entry; per event = the count over the
#      entries.  Most conversations already exist by then, as in a running system; the
#      first event of each creates it.
# Each figure is split by where Redis spends it: the script engine (a script's run outside the
# commands it calls: the Lua code, its arguments and the answers of its calls), the commands
# scripts call, the AOF (formatting every write for the file), reading streams (XREADGROUP),
# and the rest (parsing requests, answers, the event loop).
#
#   bench/redis_instr.sh
#   DESKBRIDGE_BIN=/path/to/deskbridge BACKLOG_S=60 INGEST_S=8 bench/redis_instr.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BACKLOG_S=${BACKLOG_S:-40}
INGEST_S=${INGEST_S:-8}

say() { printf '== %s\n' "$*" >&2; }

need=()
for t in valgrind:valgrind wrk:wrk redis-server:redis-server redis-cli:redis-tools python3:python3 curl:curl; do
    command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "redis_instr: missing ${need[*]}: install them (apt-get) or run as root" >&2; exit 1; }
    say "installing ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init instr valgrind callgrind_control callgrind_annotate wrk redis-server redis-cli python3 curl
if [ -z "${DESKBRIDGE_BIN:-}" ]; then
    "$ROOT/scripts/deps.sh" run || die "cannot install the gateway's build dependencies"
    say "building deskbridge (RelWithDebInfo) in build-bench"
fi
bench_gateway

say "signing webhook bodies"
# Two sets: every body has its own message id, and a repeated one would be a dedupe hit.
python3 "$ROOT/bench/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" --threads 2 \
    --per-thread 100000 --first 10000000 --out "$WORK/backlog"
python3 "$ROOT/bench/gen_bodies.py" --secret "$APP_SECRET" --pnid "$PNID" --threads 2 \
    --per-thread 100000 --out "$WORK/bodies"

mkdir -p "$WORK/redis"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg" \
    redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 --dir "$WORK/redis" \
    --appendonly yes --appendfsync everysec --auto-aof-rewrite-min-size 4gb --save '' \
    >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=($REDIS_PID)
for _ in $(seq 300); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.2; done
rcli PING | grep -q PONG || die "redis-server did not start under valgrind"
counting() { callgrind_control -i "$1" "$REDIS_PID" >/dev/null 2>&1; }

send() { # $1 = seconds, $2 = body set
    rm -f "$WORK"/*.ready.*
    wrk -t 2 -c 16 -d "${1}s" -s "$ROOT/bench/wa_ingest.lua" "$URL" -- "$WORK/$2" 2 >"$WORK/wrk.txt" 2>&1 ||
        { cat "$WORK/wrk.txt" >&2; die "wrk failed"; }
}

say "backlog: role=ingest for ${BACKLOG_S}s (not counted)"
bench_whatsapp_gateway ingest
send "$BACKLOG_S" backlog
BACKLOG=$(rcli XLEN deskbridge:events)
[ "$BACKLOG" -ge 200000 ] || say "only $BACKLOG of the backlog's 200,000 webhooks in ${BACKLOG_S}s: raise BACKLOG_S for figures comparable with other runs"
say "ingest: ${INGEST_S}s more, counted"
counting on
send "$INGEST_S" bodies
sleep 1 # answers cut off by wrk's stop may still be committing
counting off
bench_stop_gateway
TOTAL=$(rcli XLEN deskbridge:events)
callgrind_control -d "$REDIS_PID" >/dev/null 2>&1 # -> $WORK/cg.1
callgrind_control -z "$REDIS_PID" >/dev/null 2>&1

say "dispatch: role=dispatch over all $TOTAL events, counted"
counting on
bench_whatsapp_gateway dispatch
for _ in $(seq 3600); do [ "$(group_applied "$WORK/redis.sock")" -ge "$TOTAL" ] && break; sleep 1; done
counting off
[ "$(group_applied "$WORK/redis.sock")" -ge "$TOTAL" ] || die "the dispatcher did not apply the stream within an hour"
bench_stop_gateway
callgrind_control -d "$REDIS_PID" >/dev/null 2>&1 # -> $WORK/cg.2

# Inclusive instruction counts of the functions that mark each part; redis-server's own
# symbols (Debian's build keeps them; the Lua interpreter's are stripped and not needed).
split() { # $1 = profile, $2 = units, $3 = label
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | python3 -c '
import re, sys
units, label = int(sys.argv[1]), sys.argv[2]
total, f = None, {}
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s", line)
    if not m:
        continue
    n = int(m.group(1).replace(",", ""))
    if "PROGRAM TOTALS" in line:
        total = n
        continue
    s = re.search(r":([A-Za-z_][\w]*)(\x27\d+)? \[", line)
    if s and not s.group(2) and s.group(1) not in f:
        f[s.group(1)] = n
if not total or units <= 0:
    sys.exit("no counts")
ev, sc = f.get("evalGenericCommand", 0), f.get("scriptCall", 0)
parts = [("script engine", ev - sc), ("commands in scripts", sc),
         ("AOF (propagating writes)", f.get("propagatePendingCommands", 0)),
         ("reading streams (XREADGROUP)", f.get("xreadCommand", 0))]
rest = total - sum(p[1] for p in parts)
print("%s: %d instructions each" % (label, total / units))
for name, n in parts + [("the rest (requests, answers, event loop)", rest)]:
    print("  %-42s %8d  %4.1f%%" % (name, n / units, 100.0 * n / total))
if not ev:
    print("  (redis-server without symbols: the split needs evalGenericCommand and scriptCall)")
' "$2" "$3"
}
echo
echo "Redis instructions (callgrind), $(redis-server --version | awk '{print $3}'), AOF everysec"
split "$WORK/cg.1" $((TOTAL - BACKLOG)) "webhook (role=ingest, $((TOTAL - BACKLOG)) webhooks)"
split "$WORK/cg.2" "$TOTAL" "event (role=dispatch, $TOTAL events over 5,000 conversations)"
