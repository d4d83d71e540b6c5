#!/usr/bin/env bash
# Long-polling and sending round trip against telegram-test-api, a Bot API emulator written
# independently of deskbridge.  Its deviations from the real Bot API that matter here:
# getUpdates ignores offset and timeout (it marks what it returned as read), and bot-sent
# messages are read back through its client-side /getUpdates.
set -euo pipefail
src="${DB_SOURCE_DIR:?}"; daemon="${DB_DAEMON:?}"
here="$src/tests/e2e"
[ -d "$here/node_modules/telegram-test-api" ] || npm ci --prefix "$here" --no-audit --no-fund >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for SECONDS COMMAND...
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $until ] || return 1; sleep 0.1; done
}

tg_port=$(free_port); gw_port=$(free_port)
node "$here/telegram_emulator.js" "$tg_port" >"$work/emulator.log" 2>&1 & pids+=($!)
redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 & pids+=($!)
wait_for 10 grep -q listening "$work/emulator.log"
wait_for 10 redis-cli -s "$work/redis.sock" ping

token="123456:TESTTOKEN"
api="api-token-for-the-emulator-test"
env -i PATH="$PATH" DESKBRIDGE_REDIS_URL="unix://$work/redis.sock" DESKBRIDGE_LISTEN="127.0.0.1:$gw_port" \
  DESKBRIDGE_API_TOKEN="$api" TELEGRAM_BOT_TOKEN="$token" TELEGRAM_API_BASE="http://127.0.0.1:$tg_port" \
  "$daemon" >"$work/gateway.log" 2>&1 & pids+=($!)
wait_for 10 curl -sf "http://127.0.0.1:$gw_port/healthz"

# A customer writes to the bot (the emulator's client side).
curl -sf -X POST "http://127.0.0.1:$tg_port/sendMessage" -H 'Content-Type: application/json' \
  -d '{"botToken":"'$token'","from":{"id":4242,"first_name":"Ivan","username":"ivan","is_bot":false},"chat":{"id":4242,"first_name":"Ivan","type":"private"},"date":1795365000,"text":"Де моє замовлення? 📦"}' >/dev/null

events() { redis-cli -s "$work/redis.sock" XRANGE deskbridge:events - +; }
wait_for 15 bash -c "redis-cli -s '$work/redis.sock' XLEN deskbridge:events | grep -qx 1" || {
  echo "FAIL: the customer's message did not reach the stream"; cat "$work/gateway.log"; exit 1; }
event=$(events | grep '"kind"')
echo "stream entry: $event"
python3 - "$event" <<'PY'
import json, sys
e = json.loads(sys.argv[1])
assert e["conversation"] == "telegram:123456:4242", e
assert e["text"] == "Де моє замовлення? 📦", e
assert e["type"] == "text" and e["kind"] == "message", e
assert e["sender"]["name"].startswith("Ivan"), e
PY

# The agent answers through the API; the customer sees the answer.
reply=$(curl -sf -X POST "http://127.0.0.1:$gw_port/v1/messages" -H "Authorization: Bearer $api" \
  -H 'Content-Type: application/json' -d '{"conversation":"telegram:123456:4242","text":"Вже в дорозі 🚚"}')
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$reply")
status() { curl -sf "http://127.0.0.1:$gw_port/v1/messages/$id" -H "Authorization: Bearer $api"; }
wait_for 15 bash -c "curl -sf 'http://127.0.0.1:$gw_port/v1/messages/$id' -H 'Authorization: Bearer $api' | grep -q '\"status\":\"sent\"'" || {
  echo "FAIL: reply not sent: $(status)"; cat "$work/gateway.log"; exit 1; }
seen=$(curl -sf -X POST "http://127.0.0.1:$tg_port/getUpdates" -H 'Content-Type: application/json' \
  -d '{"token":"'$token'","chatId":4242}')
echo "customer sees: $seen"
python3 - "$seen" "$(status)" <<'PY'
import json, sys
seen, msg = json.loads(sys.argv[1]), json.loads(sys.argv[2])
texts = [u["message"]["text"] for u in seen["result"]]
assert "Вже в дорозі 🚚" in texts, texts
ids = [str(u["messageId"]) for u in seen["result"]]
assert msg["external_message_id"] in ids, (msg, ids)
PY
if grep -q TESTTOKEN "$work/gateway.log"; then echo "FAIL: the bot token reached the log"; exit 1; fi
echo "1 passed, 0 failed"
