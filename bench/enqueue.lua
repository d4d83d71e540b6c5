-- wrk script for bench/run.sh: agents' replies through POST /v1/messages, as fast as possible.
--
-- usage: wrk -t T -c C -d D -s enqueue.lua URL -- API_TOKEN BOT_ID PER_THREAD
-- Each thread sends PER_THREAD replies spread over 2,000 conversations per thread (thread
-- ranges do not overlap) and then stops; the surplus of requests in flight at the stop is
-- not counted.  done() prints: BENCH accepted=N refused=N
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   token, bot, quota = args[1], args[2], tonumber(args[3])
   sent, accepted, refused = 0, 0, 0
   headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

function request()
   sent = sent + 1
   local chat = tid * 100000 + (sent % 2000) + 1
   local body = string.format('{"conversation":"telegram:%s:%d","text":"bench reply %d"}',
                              bot, chat, sent)
   return wrk.format("POST", "/v1/messages", headers, body)
end

function response(status, headers, body)
   if status == 202 or status == 200 then
      accepted = accepted + 1
   else
      refused = refused + 1
   end
   if accepted + refused >= quota then wrk.thread:stop() end
end

function done(summary, latency, requests)
   local a, r = 0, 0
   for _, th in ipairs(threads) do
      a = a + th:get("accepted")
      r = r + th:get("refused")
   end
   io.write(string.format("BENCH accepted=%d refused=%d\n", a, r))
end
