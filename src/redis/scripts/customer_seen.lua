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
-- The record is the string "<time> <message id>", written with one SET ... GET (each nested
-- call costs the script engine more than the command): the older of the two is put back in
-- the rare case the platform delivered out of order.  A hash there is the earlier layout
-- (id, ts fields) and is replaced by the newer of the two; a key of any other type, or a
-- time that is not a number, is skipped rather than failing the run: the webhook's events
-- are written by then, and an error would have the platform send them again for ever, each
-- time a dedupe hit.
local function customer_seen(i)
  if ARGV[i] ~= '' then return 0 end
  local ttl, n = ARGV[i + 1], 0
  for j = i + 2, #ARGV, 3 do
    local key, id, t = ARGV[j], ARGV[j + 1], ARGV[j + 2]
    local ts = tonumber(t)
    if ts then
      local old = redis.pcall('SET', key, t .. ' ' .. id, 'EX', ttl, 'GET')
      if type(old) == 'table' and old.err then
        local h = redis.pcall('HMGET', key, 'ts', 'id')
        if type(h) == 'table' and not h.err then
          if ts < (tonumber(h[1] or '') or -1) and h[2] then t, id = h[1], h[2] end
          redis.call('DEL', key)
          redis.call('SET', key, t .. ' ' .. id, 'EX', ttl)
          n = n + 1
        end
      elseif type(old) == 'string' and ts < (tonumber(string.match(old, '^(%S+) ')) or -1) then
        redis.call('SET', key, old, 'EX', ttl)
      else
        n = n + 1
      end
    end
  end
  return n
end
