-- wrk script for bench/soak.sh: Telegram webhook updates made up per request (Telegram's
-- webhooks carry a secret header, not a signature over the body, so every update can have
-- its own update_id without signing anything), each connection waiting PACE_MS between
-- requests so the rate is about connections * 1000 / PACE_MS.
--
-- usage: wrk -t T -c C -d D -s soak_tg.lua URL -- SECRET SEGMENT CHATS PACE_MS
-- update_id = SEGMENT * 1e9 + thread * 1e8 + n: distinct across a soak's segments and threads.
-- done() prints: SOAK ok2xx=N non2xx=N rps=N p50_us=N p99_us=N max_us=N
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
end

function init(args)
   secret, segment, chats, pace = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
   n = 0
   headers = {["Content-Type"] = "application/json", ["X-Telegram-Bot-Api-Secret-Token"] = secret}
end

function delay()
   return pace
end

function request()
   n = n + 1
   local id = segment * 1000000000 + tid * 100000000 + n
   local chat = (id * 7919) % chats + 1
   local body = string.format('{"update_id":%d,"message":{"message_id":%d,"date":1764600000,' ..
      '"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"Soak %d",' ..
      '"language_code":"en"},"text":"soak message %d: where is my order? it was due yesterday"}}',
      id, id, chat, chat, chat, id)
   return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
   io.write(string.format("SOAK ok2xx=%d non2xx=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d\n",
      summary.requests - summary.errors.status, summary.errors.status,
      summary.requests / (summary.duration / 1e6), latency:percentile(50),
      latency:percentile(99), latency.max))
end
