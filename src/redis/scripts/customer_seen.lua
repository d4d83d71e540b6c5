-- customer_seen.lua - remembers the newest message each customer sent in a conversation: its
-- platform id and the platform's time of it (Unix seconds).  A message older than the one
-- remembered (platforms deliver out of order) changes nothing.
-- ARGV: ttl, then per message: key, message id, time.  Returns the messages remembered.
local ttl = ARGV[1]
local n = 0
for i = 2, #ARGV, 3 do
  local key, id, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local old = tonumber(redis.call('HGET', key, 'ts') or '-1')
  if ts >= old then
    redis.call('HSET', key, 'id', id, 'ts', ARGV[i + 2])
    n = n + 1
  end
  redis.call('EXPIRE', key, ttl)
end
return n
