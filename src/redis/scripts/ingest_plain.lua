-- ingest_plain.lua - stores a webhook with no receipt and no cursor, as nearly every webhook is:
-- without the receipt machinery it costs Redis about a tenth less per webhook than ingest.lua
-- (bench/redis_cost.sh).  Both take the full dedupe key of each event, so an event first stored
-- by one is a dedupe hit in the other.
-- ARGV: ttl events-key, then per event: dedupe key, event JSON, then optionally the customers'
-- newest messages (customer_seen.lua, put in front).  Returns events written.  The stream is
-- trimmed apart, by stream_trim.lua, which spares what a consumer group has not read.
local ttl, stream = ARGV[1], ARGV[2]
local written = 0
local stop = events_end(3, 2)
for i = 3, stop - 1, 2 do
  if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', stream, '*', 'event', ARGV[i + 1])
    written = written + 1
  end
end
customer_seen(stop)
return written
