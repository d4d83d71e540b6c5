#!/usr/bin/env bash
# bench/memory.sh - the gateway's private memory (RssAnon) idle and under load, next to VmHWM
# and VmRSS, for docs/performance.md.
#
# Not a test: it prints figures and exits 0 whatever they are (1 only when something could not
# be set up or a reply was not sent).  One private redis-server on a unix socket; the gateway
# in role=all with the Telegram quickstart environment (webhook mode) against
# bench/fake_telegram.c.  Figures: 2 s after start (idle); then BENCH_MEM_WEBHOOKS signed
# webhooks and BENCH_MEM_REPLIES replies (POST /v1/messages, all sent to the fake) from 8
# keep-alive connections, RssAnon sampled every 20 ms meanwhile (its peak; the kernel keeps no
# peak of RssAnon itself), and the figures once every reply was sent.
#
#   bench/memory.sh                                  # build-bench/deskbridge (built when missing)
#   DESKBRIDGE_BIN=/path/to/deskbridge bench/memory.sh   # another build, e.g. an older commit
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WEBHOOKS=${BENCH_MEM_WEBHOOKS:-20000}
REPLIES=${BENCH_MEM_REPLIES:-20000}
API_TOKEN="bench-api-token-0123456789abcdef"
BOT_ID="700000001"
SECRET="bench-webhook-secret"

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_init memory redis-server redis-cli python3 curl cc
bench_gateway
# shellcheck disable=SC2046 # pkg-config prints several flags
cc -O2 -o "$WORK/fake_telegram" "$ROOT/bench/fake_telegram.c" $(pkg-config --cflags --libs libevent) ||
    die "cannot build bench/fake_telegram.c"
bench_redis --appendonly yes --appendfsync everysec

"$WORK/fake_telegram" 0 >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q '^port ' "$WORK/fake.out" && break; sleep 0.1; done
FAKE_PORT=$(awk '/^port /{print $2; exit}' "$WORK/fake.out")
[ -n "$FAKE_PORT" ] || die "fake_telegram did not start"

GW_PORT=$(free_port)
env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$WORK/redis.sock" \
    DESKBRIDGE_LISTEN="127.0.0.1:$GW_PORT" DESKBRIDGE_LOG_LEVEL=warn \
    DESKBRIDGE_API_TOKEN="$API_TOKEN" TELEGRAM_BOT_TOKEN="$BOT_ID:AAbenchTokenNotReal0123456789" \
    TELEGRAM_WEBHOOK_SECRET="$SECRET" TELEGRAM_API_BASE="http://127.0.0.1:$FAKE_PORT" \
    "$GW_BIN" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/healthz" || { tail -20 "$WORK/gateway.log" >&2; die "gateway did not start"; }
sleep 2

echo "deskbridge memory, $(date -u '+%Y-%m-%d %H:%M UTC'), $GW_BIN (role=all), $WEBHOOKS webhooks + $REPLIES replies"
python3 - "$GW_PID" "$GW_PORT" "$FAKE_PORT" "$API_TOKEN" "$BOT_ID" "$SECRET" "$WEBHOOKS" "$REPLIES" <<'EOF'
import http.client, json, sys, threading, time
pid, port, fake_port, token, bot, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
webhooks, replies = int(sys.argv[7]), int(sys.argv[8])

def status():
    out = {}
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('RssAnon', 'VmHWM', 'VmRSS'):
                out[k] = int(v.split()[0])
    return out

def show(when, s, peak=None):
    extra = '  peak RssAnon %6d kB' % peak if peak is not None else ''
    print('%-34s RssAnon %6d kB  VmHWM %6d kB  VmRSS %6d kB%s' % (when, s['RssAnon'], s['VmHWM'], s['VmRSS'], extra))

show('idle (2 s after start)', status())
peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], status()['RssAnon'])
        time.sleep(0.02)
sampler = threading.Thread(target=sample)
sampler.start()

errors = []
def worker(n, first):
    c = http.client.HTTPConnection('127.0.0.1', port)
    for i in range(first, first + n):
        chat = 100000 + i % 2000
        if i % 2 == 0 and i // 2 < webhooks:
            body = json.dumps({'update_id': i, 'message': {'message_id': i, 'date': 1795365000,
                'chat': {'id': chat, 'type': 'private', 'first_name': 'Olena'},
                'from': {'id': chat, 'is_bot': False, 'first_name': 'Olena'}, 'text': 'hello %d' % i}})
            c.request('POST', '/webhooks/telegram/' + bot, body,
                      {'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': secret})
            want = 200
        else:
            body = json.dumps({'conversation': 'telegram:%s:%d' % (bot, chat), 'text': 'reply %d' % i})
            c.request('POST', '/v1/messages', body,
                      {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token})
            want = 202
        r = c.getresponse()
        r.read()
        if r.status != want:
            errors.append(r.status)
total = webhooks + replies
threads, per = [], (total + 7) // 8
for t in range(8):
    first = t * per
    th = threading.Thread(target=worker, args=(max(0, min(per, total - first)), first))
    th.start()
    threads.append(th)
for th in threads:
    th.join()
sent_replies = sum(1 for i in range(total) if not (i % 2 == 0 and i // 2 < webhooks))
deadline = time.time() + 120
while time.time() < deadline:
    c = http.client.HTTPConnection('127.0.0.1', fake_port)
    c.request('GET', '/_stats')
    sends = json.loads(c.getresponse().read())['sends']
    if sends >= sent_replies:
        break
    time.sleep(0.2)
stop.set()
sampler.join()
s = status()
peak[0] = max(peak[0], s['RssAnon'])
show('after the load, every reply sent', s, peak[0])
print('errors: %d answers not 200/202; replies sent to the fake: %d of %d' % (len(errors), sends, sent_replies))
time.sleep(5)
show('5 s later', status())
sys.exit(1 if errors or sends < sent_replies else 0)
EOF
