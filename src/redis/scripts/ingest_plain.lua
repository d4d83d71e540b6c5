-- ingest_plain.lua - stores a webhook with no receipt and no cursor, as nearly every webhook is:
-- without the receipt machinery it costs Redis about a tenth less per webhook than ingest.lua
-- (bench/redis_cost.sh).  Both take the full dedupe key of each event, so an event first stored
-- by one is a dedupe hit in the other.
-- ARGV: ttl events-key dedupe-spec (dedupe.lua), then per event: dedupe key, event JSON, then
-- optionally the customers' newest messages (customer_seen.lua; both put in front).  Returns
-- events written.  The stream is trimmed apart, by stream_trim.lua, which spares what a
-- consumer group has not read.
local stream = ARGV[2]
local stop = events_end(4, 2)
local fresh = dedupe_fresh(ARGV[3], 4, stop, 2, ARGV[1])
for _, i in ipairs(fresh) do redis.call('XADD', stream, '*', 'event', ARGV[i + 1]) end
customer_seen(stop)
return #fresh
