#!/usr/bin/env python3
"""bench/soak_driver.py - the rest of bench/soak.sh's load, next to wrk's Telegram webhooks:

  - agents: creates --agents agents (capacity 50) and keeps changing one agent's presence
    (online -> away -> offline -> online) every --presence-s seconds, so conversations are
    assigned, held, queued again and handed over all the time;
  - replies: --replies-per-s agents' replies through POST /v1/messages to the Telegram
    conversations wrk writes to, naming the agent;
  - receipts: once a second a signed WhatsApp message from one of 50 customers, a reply to it,
    and once the sender has sent that reply, signed `delivered` and `read` statuses for it;
  - counting: its own consumer group on P:events (like a helpdesk's) counts the Telegram
    messages that reached the stream, so wrk's 2xx answers can be checked against them even
    though the stream is trimmed (stream_maxlen).

Runs until the file --stop exists, then drains (waits for the counting group to catch up and
the replies to be sent) and writes its counts as JSON to --out.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redis_split import Redis, text  # noqa: E402


class Api:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.c = None

    def call(self, method, path, body=None, headers=None):
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        for _ in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.c.request(method, path, data, h)
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.c = None
        return 0, b""


def wa_body(pnid, value):
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "102003040506070", "changes": [{"value": value, "field": "messages"}]}]},
                      separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--bot", required=True)
    ap.add_argument("--chats", type=int, required=True)
    ap.add_argument("--pnid", required=True)
    ap.add_argument("--app-secret", required=True)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--replies-per-s", type=float, default=50)
    ap.add_argument("--presence-s", type=float, default=5)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    api = Api(a.port, a.token)
    hook = Api(a.port, None)
    r = Redis(a.socket)
    try:  # soak.sh creates it before the load starts; alone, the driver counts from now
        r.cmd("XGROUP", "CREATE", "deskbridge:events", "soak-count", "$", "MKSTREAM")
    except RuntimeError:
        pass
    agents = ["soak-agent-%d" % i for i in range(a.agents)]
    for ag in agents:
        api.call("PUT", "/v1/agents/" + ag, {"name": ag, "capacity": 50})
        api.call("POST", "/v1/agents/%s/presence" % ag, {"presence": "online"})
    presence = {ag: "online" for ag in agents}
    nxt = {"online": "away", "away": "offline", "offline": "online"}
    c = {"replies_accepted": 0, "replies_refused": 0, "wa_messages": 0, "wa_refused": 0,
         "receipts": 0, "receipts_refused": 0, "presence_changes": 0, "tg_counted": 0,
         "read_confirmed": 0}
    waiting = []  # (message id, when) of WhatsApp replies whose receipts are still to send
    replied = []
    secret = a.app_secret.encode()
    tick, last_presence, last_wa, seq = 0, time.time(), time.time(), 0

    def count_once(block_ms):
        block = ["BLOCK", str(block_ms)] if block_ms > 0 else []  # BLOCK 0 would wait forever
        res = r.cmd("XREADGROUP", "GROUP", "soak-count", "c1", "COUNT", "2000", *block,
                    "STREAMS", "deskbridge:events", ">")
        if not res:
            return 0
        ids = []
        for _, entries in res:
            for eid, fields in entries:
                ids.append(eid)
                ev = fields[1] if len(fields) > 1 else b""
                if b'"platform":"telegram"' in ev and b'"kind":"message"' in ev:
                    c["tg_counted"] += 1
        if ids:
            r.cmd("XACK", "deskbridge:events", "soak-count", *ids)
        return len(ids)

    while not os.path.exists(a.stop):
        t0 = time.time()
        while count_once(0) >= 2000:
            pass
        # replies
        for _ in range(int(a.replies_per_s / 5)):
            chat = random.randint(1, a.chats)
            st, _ = api.call("POST", "/v1/messages", {"conversation": "telegram:%s:%d" % (a.bot, chat),
                                                       "text": "soak reply", "agent": random.choice(agents)})
            c["replies_accepted" if st == 202 else "replies_refused"] += 1
        # WhatsApp message, reply, receipts
        if time.time() - last_wa >= 1:
            last_wa = time.time()
            seq += 1
            cust = "1650666%04d" % (seq % 50)
            body = wa_body(a.pnid, {"messaging_product": "whatsapp",
                                    "metadata": {"display_phone_number": "1555", "phone_number_id": a.pnid},
                                    "contacts": [{"profile": {"name": "Receipt Customer"}, "wa_id": cust}],
                                    "messages": [{"from": cust, "id": "wamid.soak.%d.%d" % (os.getpid(), seq),
                                                  "timestamp": str(int(time.time())), "type": "text",
                                                  "text": {"body": "hello"}}]})
            sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            st, _ = hook.call("POST", "/webhooks/whatsapp/" + a.pnid, body, {"X-Hub-Signature-256": sig})
            c["wa_messages" if st == 200 else "wa_refused"] += 1
            st, b = api.call("POST", "/v1/messages", {"conversation": "whatsapp:%s:%s" % (a.pnid, cust),
                                                       "text": "soak answer", "agent": agents[0]})
            if st == 202:
                c["replies_accepted"] += 1
                waiting.append((json.loads(b)["id"], cust))
            else:
                c["replies_refused"] += 1
        still = []
        for mid, cust in waiting:
            st, b = api.call("GET", "/v1/messages/" + mid)
            ext = json.loads(b).get("external_message_id") if st == 200 else None
            if not ext:
                still.append((mid, cust))
                continue
            for status in ("delivered", "read"):
                body = wa_body(a.pnid, {"messaging_product": "whatsapp",
                                        "metadata": {"display_phone_number": "1555", "phone_number_id": a.pnid},
                                        "statuses": [{"id": ext, "status": status, "timestamp": str(int(time.time())),
                                                      "recipient_id": cust}]})
                sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                st, _ = hook.call("POST", "/webhooks/whatsapp/" + a.pnid, body, {"X-Hub-Signature-256": sig})
                c["receipts" if st == 200 else "receipts_refused"] += 1
            replied.append(mid)
        waiting = still
        # presence
        if time.time() - last_presence >= a.presence_s:
            last_presence = time.time()
            ag = agents[tick % len(agents)]
            tick += 1
            presence[ag] = nxt[presence[ag]]
            api.call("POST", "/v1/agents/%s/presence" % ag, {"presence": presence[ag]})
            c["presence_changes"] += 1
        time.sleep(max(0, 0.2 - (time.time() - t0)))

    # Drain: the counting group reads what is left; receipts took effect.
    idle = 0
    while idle < 3:
        idle = idle + 1 if count_once(500) == 0 else 0
    for mid in replied[-20:]:
        st, b = api.call("GET", "/v1/messages/" + mid)
        if st == 200 and json.loads(b).get("status") == "read":
            c["read_confirmed"] += 1
    c["read_checked"] = min(20, len(replied))
    c["receipts_pending"] = len(waiting)
    r.cmd("XGROUP", "DESTROY", "deskbridge:events", "soak-count")
    with open(a.out, "w") as f:
        json.dump(c, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
