-- customer_seen.lua - remembers the newest message each customer sent in a conversation: its
-- platform id and the platform's time of it (Unix seconds).  A message older than the one
-- remembered (platforms deliver out of order) changes nothing.  Put in front of both ingest
-- scripts (src/store/store.c), so the webhook's events and its customers are written by one
-- script run rather than two: an ingest script's arguments may end with '' and then a ttl and,
-- per message, its key and its record, "<time> <message id>".

-- The index after the last argument of the events, which start at first and take stride
-- arguments each (no event's first argument, its dedupe key, is empty): the '', or #ARGV + 1.
local function events_end(first, stride)
  for i = first, #ARGV, stride do
    if ARGV[i] == '' then return i end
  end
  return #ARGV + 1
end
-- The time of a record "<time> <message id>", or -1.
local function record_time(r)
  local sp = string.find(r, ' ', 1, true)
  return sp and tonumber(string.sub(r, 1, sp - 1)) or -1
end
-- Writes the records that follow the '' at ARGV[i], if any.  Returns how many it remembered.
-- A record is one string, "<time> <message id>", built by the gateway and written with one
-- SET ... GET (each nested call costs the script engine more than the command): the older of
-- the two is put back in the rare case the platform delivered out of order (Meta retries a
-- webhook for days).  Times of ten digits (2001 to 2286) compare as text, without making a
-- number of either.  A hash there is the earlier layout (id, ts fields) and is replaced by the
-- newer of the two; a key of any other type is skipped rather than failing the run: the
-- webhook's events are written by then, and an error would have the platform send them again
-- for ever, each time a dedupe hit.
local function customer_seen(i)
  if ARGV[i] ~= '' then return 0 end
  local ttl, n = ARGV[i + 1], 0
  for j = i + 2, #ARGV, 2 do
    local key, rec = ARGV[j], ARGV[j + 1]
    local old = redis.pcall('SET', key, rec, 'EX', ttl, 'GET')
    if type(old) == 'string' then
      local later
      if string.find(old, ' ', 1, true) == 11 and string.find(rec, ' ', 1, true) == 11 then
        later = old > rec
      else
        later = record_time(old) > record_time(rec)
      end
      if later then redis.call('SET', key, old, 'EX', ttl) else n = n + 1 end
    elseif old == false then
      n = n + 1
    elseif type(old) == 'table' and old.err then
      local h = redis.pcall('HMGET', key, 'ts', 'id')
      if type(h) == 'table' and not h.err then
        local t = tonumber(h[1] or '')
        if t and h[2] and t > record_time(rec) then rec = h[1] .. ' ' .. h[2] end
        redis.call('DEL', key)
        redis.call('SET', key, rec, 'EX', ttl)
        n = n + 1
      end
    end
  end
  return n
end
