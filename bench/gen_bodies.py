#!/usr/bin/env python3
"""Pre-signs WhatsApp webhook bodies for the wrk ingest script (bench/wa_ingest.lua).

wrk's LuaJIT has no HMAC, and every request needs its own message id (a repeated id is a
dedupe hit that never reaches the stream), so the bodies are made and signed here, once.
Writes one file per wrk thread, PREFIX.<thread>, each line "<hex signature> <body>"; the
thread slices never share a message id.  Bodies are compact JSON shaped like Meta's, one text
message each, padded to about --size bytes, from a rotating set of customers so the run spans
many conversations.

usage: gen_bodies.py --secret S --pnid ID --threads T --per-thread N --out PREFIX [--first K]
(--first shifts the message ids, so a warm-up set never collides with the measured one)
"""
import argparse
import hashlib
import hmac
import json


def body(pnid, i, size):
    customer = "1650555%04d" % (i % 5000)
    msg = {
        "from": customer,
        "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUJC%010dAA==" % i,
        "timestamp": "1749416383",
        "type": "text",
        "text": {"body": ""},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": customer}],
        "messages": [msg],
    }
    root = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102003040506070", "changes": [{"value": value, "field": "messages"}]}],
    }
    bare = len(json.dumps(root, separators=(",", ":")))
    filler = "Hello, I ordered a blue kettle last week and it has not arrived yet. "
    want = max(1, size - bare)
    msg["text"]["body"] = (filler * (want // len(filler) + 1))[:want]
    return json.dumps(root, separators=(",", ":"), ensure_ascii=True).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--pnid", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-thread", type=int, default=150000)
    ap.add_argument("--size", type=int, default=600)
    ap.add_argument("--out", required=True)
    ap.add_argument("--first", type=int, default=0)
    a = ap.parse_args()
    key = a.secret.encode()
    for t in range(a.threads):
        with open("%s.%d" % (a.out, t), "wb") as f:
            for k in range(a.per_thread):
                b = body(a.pnid, a.first + t * a.per_thread + k, a.size)
                sig = hmac.new(key, b, hashlib.sha256).hexdigest()
                f.write(sig.encode() + b" " + b + b"\n")


if __name__ == "__main__":
    main()
