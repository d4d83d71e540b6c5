-- stream_dead.lua - an entry given up on goes to P:dead and is acknowledged, in one step, once
-- (src/stream/consumer.c; the shape is in docs/stream-contract.md).
-- ARGV: stream, group, entry, dead stream, stream label, reason, now (ms), minimum deliveries
-- ('' for any), minimum idle ms ('' for any), then extra name/value pairs.  Writes only while
-- the entry is pending (and, for the consumer's own decision, still delivered that often and
-- idle that long), so several processes deciding together write one dead letter.  The entry's
-- own fields are copied unless the shape already uses the name.  Returns 1 when written, else 0.
local S, G, E, D, label, reason, at, mind, minidle =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local p = redis.call('XPENDING', S, G, E, E, 1)
if #p == 0 then return 0 end
local n = p[1][4]
if mind ~= '' and n < tonumber(mind) then return 0 end
if minidle ~= '' and p[1][3] < tonumber(minidle) then return 0 end
local out = {'group', G, 'stream', label, 'entry', E, 'reason', reason, 'at', at,
  'deliveries', n}
local used = {group = 1, stream = 1, entry = 1, reason = 1, at = 1, deliveries = 1}
for i = 10, #ARGV - 1, 2 do
  out[#out + 1] = ARGV[i]; out[#out + 1] = ARGV[i + 1]; used[ARGV[i]] = 1
end
local r = redis.call('XRANGE', S, E, E)
if #r == 1 then
  local f = r[1][2]
  for i = 1, #f - 1, 2 do
    if not used[f[i]] then out[#out + 1] = f[i]; out[#out + 1] = f[i + 1]; used[f[i]] = 1 end
  end
end
redis.call('XADD', D, '*', unpack(out))
redis.call('XACK', S, G, E)
return 1
