#!/usr/bin/env python3
"""bench/redis_split.py - where Redis's time goes per webhook, split by the gateway part that
asked for it (ingest, dispatcher, dispatcher replies, automatic answers, helpdesk webhooks,
sender, the console's search index and the Chatwoot bridges where configured, the rest).

Run while the gateway is under load.  It waits until the events stream grows, lets the run
settle, then for --window seconds has Redis log every command with its own execution time
(SLOWLOG with a threshold of 0 µs), and reads INFO commandstats and redis-server's CPU time
(schedstat) over the same window.  Each logged command is put to a part:

  - a script by its SHA1, computed here from the files in src/redis/scripts the gateway
    embeds (alone, or behind the status_advance.lua, customer_seen.lua and dedupe.lua
    preludes, as src/store/store.c loads them); dispatch.lua by its operation ("events"/"event": the
    dispatcher, "reply": the dispatcher's replies group, the rest: the API and the sweep);
  - the commands of the connection named deskbridge-dispatch-tx (the dispatcher's plain
    updates, src/dispatch/fast.c: WATCH, HMGET, XPENDING, then RPUSH, HSET, XADD, XACK
    inside MULTI/EXEC, which Redis logs one by one): the dispatcher, labelled "plain";
  - the commands of the connection named deskbridge-ingest-tx (plain webhooks,
    src/store/ingest_tx.c: WATCH, MGET, EXISTS, then SET, XADD inside MULTI/EXEC): the
    ingest, labelled "plain";
  - anything else by the consumer group it names (XREADGROUP, XACK, XCLAIM, XPENDING,
    stream_dead.lua, stream_order.lua): deskbridge-dispatch, -dispatch-replies,
    -autoreply, -senders, -hook-*, -search, -chatwoot-*.

The figures are µs of Redis time per webhook accepted in the window (entries added to
P:events).  "outside commands" is redis-server's CPU time minus the logged commands' time:
reading and parsing requests, writing answers, the AOF, the event loop.  The logging itself
costs Redis in the window (after each command's time is taken), so the window's total is
above the run's, and the load's rate and latency suffer: in role=all it took up to 30% off the
rate and put up to 5x on the p99 (docs/performance.md, 7 December evening).  Give it a run
whose figures are not otherwise used, as bench/run.sh does.

Not a test: prints figures, exits 0 unless Redis cannot be reached.
"""
import argparse
import glob
import hashlib
import os
import socket
import sys
import time

GROUPS = [  # longest first: deskbridge-dispatch is a prefix of the replies group
    ("deskbridge-dispatch-replies", "dispatcher replies"),
    ("deskbridge-dispatch", "dispatcher"),
    ("deskbridge-autoreply", "automatic answers"),
    ("deskbridge-senders", "sender"),
    ("deskbridge-hook-", "helpdesk webhooks"),
    ("deskbridge-search", "console search"),
    ("deskbridge-chatwoot-", "Chatwoot bridges"),
]
PARTS = ["ingest", "dispatcher", "dispatcher replies", "automatic answers", "helpdesk webhooks",
         "sender", "console search", "Chatwoot bridges", "API, metrics, other"]
DISPATCH_OPS = {"events", "event", "reply", "sweep", "qwait", "qwait_told", "agent_put", "presence",
                "assign", "transfer", "close", "priority", "list", "get", "agents", "stats"}
SCRIPT_PART = {
    "ingest.lua": "ingest", "ingest_plain.lua": "ingest", "autoreply_claim.lua": "automatic answers",
    "set_status.lua": "sender", "msg_get.lua": "API, metrics, other",
    "metrics_convs.lua": "API, metrics, other", "enqueue.lua": "API, metrics, other",
    "console_index.lua": "console search",
}


class Redis:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        return self.read()

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("unexpected reply %r" % line)


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def script_names(root):
    d = os.path.join(root, "src", "redis", "scripts")
    files = {os.path.basename(p): open(p, "rb").read() for p in glob.glob(os.path.join(d, "*.lua"))}
    # the preludes as src/store/store.c puts them in front, in this order: any of them
    adv, cust = files.get("status_advance.lua", b""), files.get("customer_seen.lua", b"")
    dedupe = files.get("dedupe.lua", b"")
    names = {}
    for name, body in files.items():
        for a in (b"", adv):
            for c in (b"", cust):
                for d in (b"", dedupe):
                    names[hashlib.sha1(a + c + d + body).hexdigest()] = name
    return names


def part_of(args, shas, client=""):
    cmd = text(args[0]).upper() if args else ""
    if client == "deskbridge-dispatch-tx":
        return "dispatcher", "plain " + cmd
    if client == "deskbridge-ingest-tx":
        return "ingest", "plain " + cmd
    if cmd in ("EVALSHA", "EVAL") and len(args) > 1:
        name = shas.get(text(args[1]), "script?") if cmd == "EVALSHA" else "eval"
        if name == "script?" and len(args) > 3 and text(args[3]) in DISPATCH_OPS:
            name = "dispatch.lua"  # another version of it (DESKBRIDGE_BIN from another commit)
        if name == "dispatch.lua":
            op = text(args[3]) if len(args) > 3 else ""
            label = "dispatch.lua:" + op
            if op in ("events", "event"):
                return "dispatcher", label
            if op == "reply":
                return "dispatcher replies", label
            if op in ("sweep", "qwait", "qwait_told"):
                return "dispatcher", label
            return "API, metrics, other", label
        if name in SCRIPT_PART:
            return SCRIPT_PART[name], name
        label = name
    else:
        label = cmd
    for a in args[1:12]:
        a = text(a)
        for g, part in GROUPS:
            if a.startswith(g):
                return part, label
    return "API, metrics, other", label


def cpu_us(pid):
    total = 0
    for p in glob.glob("/proc/%d/task/*/schedstat" % pid):
        with open(p) as f:
            total += int(f.read().split()[0])
    return total / 1000.0


def stream_added(r, key):
    try:
        info = r.cmd("XINFO", "STREAM", key)
    except RuntimeError:
        return 0
    d = {text(info[i]): info[i + 1] for i in range(0, len(info) - 1, 2)}
    return int(d.get("entries-added", 0))


def commandstats(r):
    out = {}
    for line in text(r.cmd("INFO", "commandstats")).splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, rest = line[8:].split(":", 1)
        kv = dict(x.split("=") for x in rest.split(","))
        out[name] = (int(kv["calls"]), int(kv["usec"]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--pid", type=int, required=True, help="redis-server's pid")
    ap.add_argument("--root", required=True, help="the source tree (for the scripts)")
    ap.add_argument("--stream", default="deskbridge:events")
    ap.add_argument("--settle", type=float, default=2.0, help="s after the stream starts growing")
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--max-wait", type=float, default=30.0)
    a = ap.parse_args()
    shas = script_names(a.root)
    r = Redis(a.socket)
    # Wait for the load to start (wrk loads its bodies first), then let it settle.
    start = stream_added(r, a.stream)
    t_end = time.time() + a.max_wait
    while stream_added(r, a.stream) == start:
        if time.time() > t_end:
            print("redis split: the stream did not grow within %.0f s" % a.max_wait)
            return 0
        time.sleep(0.05)
    time.sleep(a.settle)

    old = {text(k): text(v) for k, v in zip(*[iter(r.cmd("CONFIG", "GET", "slowlog-*"))] * 2)}
    r.cmd("CONFIG", "SET", "slowlog-max-len", "1000000")
    r.cmd("SLOWLOG", "RESET")
    cs0, e0, c0, t0 = commandstats(r), stream_added(r, a.stream), cpu_us(a.pid), time.time()
    r.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
    time.sleep(a.window)
    r.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    cs1, e1, c1, t1 = commandstats(r), stream_added(r, a.stream), cpu_us(a.pid), time.time()
    log = r.cmd("SLOWLOG", "GET", "-1")
    r.cmd("SLOWLOG", "RESET")
    for k in ("slowlog-log-slower-than", "slowlog-max-len"):
        if k in old:
            r.cmd("CONFIG", "SET", k, old[k])

    hooks = max(e1 - e0, 1)
    by_part = {p: 0 for p in PARTS}
    by_label = {}
    nested_of = {}  # script label -> {command: us}
    logged = 0
    nested = []
    # Oldest first: a script's own commands (client "?:0", the script engine's) are logged
    # just before the script itself, so they are put under the script that follows them.
    for entry in sorted(log, key=lambda e: e[0]):
        us, args = int(entry[2]), entry[3]
        addr = text(entry[4]) if len(entry) > 4 else ""
        if addr.startswith("?"):
            nested.append((text(args[0]).upper() if args else "?", us))
            continue
        if args and text(args[0]).upper() in ("CONFIG", "SLOWLOG", "INFO", "XINFO"):
            nested = []
            continue  # this script's own
        part, label = part_of(args, shas, text(entry[5]) if len(entry) > 5 else "")
        by_part[part] += us
        n, t = by_label.get((part, label), (0, 0))
        by_label[(part, label)] = (n + 1, t + us)
        logged += us
        inner = nested_of.setdefault(label, {})
        for c, u in nested:
            inner[c] = inner.get(c, 0) + u
        nested = []
    total = c1 - c0
    print("Redis time per webhook by part (role=all; every command logged for %.1f s, %d webhooks, %d commands)"
          % (t1 - t0, e1 - e0, len(log)))
    print("  %-22s %8s %6s  %s" % ("part", "us/hook", "share", "commands (calls, us each)"))
    for p in PARTS:
        items = sorted(((k[1], v) for k, v in by_label.items() if k[0] == p), key=lambda x: -x[1][1])
        detail = ", ".join("%s %d x %.1f" % (l, n, t / n) for l, (n, t) in items[:4])
        print("  %-22s %8.2f %5.0f%%  %s" % (p, by_part[p] / hooks, 100.0 * by_part[p] / max(total, 1), detail))
    print("  %-22s %8.2f %5.0f%%  %s" % ("outside commands", (total - logged) / hooks,
                                         100.0 * (total - logged) / max(total, 1),
                                         "reading requests, answers, AOF, event loop"))
    print("  %-22s %8.2f" % ("redis-server CPU", total / hooks))
    print("  inside each script (its nested commands' own time, us per webhook; the rest of a script's")
    print("  time is the script engine: the Lua code, each call's arguments and answer, propagation):")
    for (p, label), (n, t) in sorted(by_label.items(), key=lambda x: -x[1][1]):
        inner = nested_of.get(label)
        if not inner or t / hooks < 0.05:
            continue
        own = sum(inner.values())
        print("   %s: %.2f us/hook, of which commands %.2f (%s), engine %.2f" % (
            label, t / hooks, own / hooks,
            ", ".join("%s %.2f" % (c, u / hooks) for c, u in sorted(inner.items(), key=lambda x: -x[1])),
            (t - own) / hooks))
    # Nested commands are counted in INFO commandstats on their own and inside their script.
    rows = []
    for name, (calls, usec) in cs1.items():
        c, u = cs0.get(name, (0, 0))
        if usec - u > 0 and name not in ("config", "slowlog", "info", "xinfo"):
            rows.append((usec - u, calls - c, name))
    rows.sort(reverse=True)
    print("  by command (INFO commandstats; commands run by scripts count here and in their script):")
    print("   " + ", ".join("%s %.2f us/hook (%.2f calls)" % (n, u / hooks, c / hooks) for u, c, n in rows[:10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
