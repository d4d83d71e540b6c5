-- wrk script for bench/run.sh: signed WhatsApp webhooks, a different message id per request.
--
-- usage: wrk -t T -c C -d D -s wa_ingest.lua URL -- BODIES_PREFIX T
-- Each thread reads BODIES_PREFIX.<thread number> (made by gen_bodies.py: "<hex sig> <body>"
-- per line), so no two threads send the same message id.  A thread that runs out of bodies
-- starts over; those repeats are counted (wrapped) because the gateway answers them 2xx as
-- dedupe hits without a new stream entry.  Answers of 400 or more are counted by wrk itself.
-- done() prints machine-readable lines for run.sh:
--   BENCH requests=N ok2xx=N non2xx=N wrapped=N
--
-- wrk loads thread 1's script only after thread 0 is running, and starts its clock after the
-- last thread is created, so thread 0 would send, uncounted in time, while thread 1 loads its
-- bodies (seconds for a few hundred thousand) on the same core.  Each thread therefore marks
-- BODIES_PREFIX.ready.<thread> when loaded and sends nothing until every thread has; run.sh
-- removes the marks before each run.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local ffi = require("ffi")
ffi.cdef("int usleep(unsigned int usec);")

function init(args)
   prefix, nthreads = args[1], tonumber(args[2] or "1")
   local f = assert(io.open(prefix .. "." .. tid, "rb"))
   reqs = {}
   for line in f:lines() do
      local sp = line:find(" ", 1, true)
      local sig, body = line:sub(1, sp - 1), line:sub(sp + 1)
      reqs[#reqs + 1] = wrk.format("POST", nil, {
         ["Content-Type"] = "application/json",
         ["X-Hub-Signature-256"] = "sha256=" .. sig,
      }, body)
   end
   f:close()
   n = #reqs
   i = 0
   wrapped = 0
   started, checked = false, false
   assert(io.open(prefix .. ".ready." .. tid, "w")):close()
end

local function wait_for_all_threads()
   for t = 0, nthreads - 1 do
      local waited = 0
      while true do
         local f = io.open(prefix .. ".ready." .. t, "r")
         if f then f:close() break end
         assert(waited < 300000, "wrk thread " .. t .. " did not load its bodies in 300 s")
         ffi.C.usleep(1000)
         waited = waited + 1
      end
   end
end

function request()
   if not started then
      -- wrk's main thread calls thread 0's request() once, to check what it returns, before
      -- any other thread is loaded: that call must not wait, and its request is never sent.
      if tid == 0 and not checked then
         checked = true
         return reqs[1]
      end
      wait_for_all_threads()
      started = true
   end
   i = i + 1
   if i > n then wrapped = wrapped + 1 end
   return reqs[(i - 1) % n + 1]
end

-- BENCH_PACE_MS > 0: each connection waits that long before its next request (wrk calls
-- delay() per request when the script defines it).
local pace = tonumber(os.getenv("BENCH_PACE_MS") or "0") or 0
if pace > 0 then
   function delay()
      return pace
   end
end

function done(summary, latency, requests)
   -- wrk counts answers with a status of 400 or more itself; a Lua response() hook to count
   -- them would cost wrk a call per answer on the core it shares with Redis.  None of the
   -- servers measured answers 3xx, so the rest are the 2xx.
   local t = {requests = 0, ok2xx = summary.requests - summary.errors.status,
              non2xx = summary.errors.status, wrapped = 0}
   for _, th in ipairs(threads) do
      t.requests = t.requests + th:get("i")
      t.wrapped = t.wrapped + th:get("wrapped")
   end
   io.write(string.format("BENCH requests=%d ok2xx=%d non2xx=%d wrapped=%d\n",
                          t.requests, t.ok2xx, t.non2xx, t.wrapped))
   io.write(string.format("BENCH p50_us=%d p99_us=%d rps=%.1f\n",
                          latency:percentile(50), latency:percentile(99),
                          summary.requests / (summary.duration / 1e6)))
end
