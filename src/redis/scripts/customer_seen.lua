-- customer_seen.lua - remembers the newest message each customer sent in a conversation: its
-- platform id and the platform's time of it (Unix seconds).  A message older than the one
-- remembered (platforms deliver out of order) changes nothing.  Put in front of both ingest
-- scripts (src/store/store.c), so the webhook's events and its customers are written by one
-- script run rather than two: an ingest script's arguments may end with '' and then a ttl and,
-- per message, its key, message id and time.

-- The index after the last argument of the events, which start at first and take stride
-- arguments each (no event's first argument, its dedupe key, is empty): the '', or #ARGV + 1.
local function events_end(first, stride)
  for i = first, #ARGV, stride do
    if ARGV[i] == '' then return i end
  end
  return #ARGV + 1
end
-- Writes the messages that follow the '' at ARGV[i], if any.  Returns how many it remembered.
-- A message that cannot be written (its key holds another type, its time is not a number) is
-- skipped rather than failing the run: the webhook's events are written by then, and an error
-- would have the platform send them again for ever, each time a dedupe hit.
local function customer_seen(i)
  if ARGV[i] ~= '' then return 0 end
  local ttl, n = ARGV[i + 1], 0
  for j = i + 2, #ARGV, 3 do
    local key, ts = ARGV[j], tonumber(ARGV[j + 2])
    local old = redis.pcall('HGET', key, 'ts')
    if ts and type(old) ~= 'table' then
      if ts >= (tonumber(old or '-1') or -1) then
        redis.call('HSET', key, 'id', ARGV[j + 1], 'ts', ARGV[j + 2])
        n = n + 1
      end
      redis.call('EXPIRE', key, ttl)
    end
  end
  return n
end
