-- metrics_convs.lua - conversations per state from the sets the dispatcher's script keeps
-- (docs/dispatcher.md), so a scrape costs O(agents), not O(conversations): every conversation
-- is in CONVS, those not closed in ACTIVE, queued ones in QUEUE and assigned ones in exactly one
-- agent's set.  What is left of ACTIVE is "open" (an agent wrote first).  One script, so the four
-- numbers come from one instant.
-- KEYS: convs, active, queue, agents; ARGV[1]: agent set name up to the id.
local total = redis.call('ZCARD', KEYS[1])
local active = redis.call('SCARD', KEYS[2])
local queued = redis.call('ZCARD', KEYS[3])
local assigned = 0
for _, a in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  assigned = assigned + redis.call('SCARD', ARGV[1] .. a .. '}')
end
return {math.max(0, active - queued - assigned), queued, assigned, math.max(0, total - active)}
