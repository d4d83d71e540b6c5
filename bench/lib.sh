# shellcheck shell=bash
# bench/lib.sh - the set-up the single-purpose benchmarks share (sourced, not run).
#
# bench_init NAME TOOL...  names the script in its errors, checks the tools, makes $WORK and
#                          removes it (and stops every PID in PIDS) on exit;
# bench_gateway            sets GW_BIN: $DESKBRIDGE_BIN, or build-bench/deskbridge built now
#                          (a release build without tests, so a benchmark never measures a
#                          debug or sanitizer build by accident);
# bench_redis [ARGS...]    starts a private redis-server on $WORK/redis.sock (extra ARGS go to
#                          it, e.g. AOF settings) and waits until it answers;
# bench_whatsapp_gateway ROLE [CMD...]
#                          starts $GW_BIN in ROLE on a free port with one WhatsApp account
#                          ($PNID, $APP_SECRET; its API a closed port), through CMD when given
#                          (e.g. taskset -c 1), and waits until it answers; sets GW_PID and URL
#                          (the account's webhook); its log is $WORK/gateway-ROLE.log;
# bench_stop_gateway       stops the gateway bench_whatsapp_gateway started last;
# bench_pin                sets SRV and LOAD, command prefixes that put the server under test
#                          on CPU 1 and wrk and Redis on CPU 0 (as bench/run.sh), or nothing
#                          with BENCH_PIN=0 or one CPU;
# rcli ARGS...             redis-cli on $WORK/redis.sock;
# cpu_us PID               CPU time of every thread of PID so far, in microseconds (schedstat);
# cmd_us NAME              Redis's microseconds per call of command NAME since the last
#                          CONFIG RESETSTAT (INFO commandstats);
# free_port, wait_http URL as their names say;
# group_applied SOCKET           entries of deskbridge:events that the dispatcher's group read
#                                and acknowledged (read minus still pending).
# bench/run.sh and bench/soak.sh keep their own set-up: they pin CPUs and install packages
# (run.sh takes group_applied from here).

die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# The WhatsApp account of bench_whatsapp_gateway and of the bodies bench/gen_bodies.py signs
# for it: made up, the point is that the gateway does the real verification work.
APP_SECRET="bench-app-secret-0123456789"
PNID="106540352242922"

bench_init() {
    BENCH_NAME=$1
    shift
    local t
    for t in "$@"; do command -v "$t" >/dev/null || die "$t is missing"; done
    WORK=$(mktemp -d "/tmp/deskbridge-$BENCH_NAME.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

bench_gateway() {
    if [ -n "${DESKBRIDGE_BIN:-}" ]; then
        GW_BIN=$DESKBRIDGE_BIN
        return
    fi
    if ! cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DDB_TESTS=OFF >"$WORK/cmake.log" 2>&1 ||
        ! cmake --build "$ROOT/build-bench" --target deskbridge -j2 >>"$WORK/cmake.log" 2>&1; then
        tail -40 "$WORK/cmake.log" >&2
        die "build failed"
    fi
    # shellcheck disable=SC2034 # read by the script that sources this file
    GW_BIN="$ROOT/build-bench/deskbridge"
}

bench_redis() {
    mkdir -p "$WORK/redis"
    redis-server --port 0 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
        --dir "$WORK/redis" --save '' "$@" >"$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    local _
    for _ in $(seq 50); do redis-cli -s "$WORK/redis.sock" PING >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "redis-server did not start"
}

bench_pin() {
    SRV=()
    LOAD=()
    if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        SRV=(taskset -c 1)
        LOAD=(taskset -c 0)
    fi
}

rcli() { redis-cli -s "$WORK/redis.sock" "$@"; }

cpu_us() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s / 1000}'; }

cmd_us() {
    rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v c="cmdstat_$1" '$1 == c {print $7}'
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() {
    local _
    for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

bench_whatsapp_gateway() {
    local role=$1 port
    shift
    port=$(free_port)
    env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" DESKBRIDGE_LISTEN="127.0.0.1:$port" \
        DESKBRIDGE_ROLE="$role" DESKBRIDGE_LOG_LEVEL=warn \
        WHATSAPP_ACCESS_TOKEN="EAAGbenchToken0123456789" WHATSAPP_APP_SECRET="$APP_SECRET" \
        WHATSAPP_VERIFY_TOKEN="bench-verify" WHATSAPP_PHONE_NUMBER_ID="$PNID" \
        WHATSAPP_API_BASE="http://127.0.0.1:9" "$@" "$GW_BIN" >>"$WORK/gateway-$role.log" 2>&1 &
    GW_PID=$!
    PIDS+=($GW_PID)
    URL="http://127.0.0.1:$port/webhooks/whatsapp/$PNID"
    wait_http "http://127.0.0.1:$port/healthz" && return 0
    tail -20 "$WORK/gateway-$role.log" >&2
    die "gateway ($role) did not start"
}

bench_stop_gateway() { kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; }

group_applied() {
    redis-cli -s "$1" XINFO GROUPS deskbridge:events | awk '
        prev == "name" { want = ($0 == "deskbridge-dispatch") }
        want && prev == "entries-read" { r = $0 }
        want && prev == "pending" { p = $0 }
        { prev = $0 }
        END { print (r == "" ? 0 : r) - (p == "" ? 0 : p) }'
}
