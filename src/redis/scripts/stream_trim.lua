-- stream_trim.lua - trims a stream to about its cap without removing an entry that a consumer
-- group still needs (src/stream/trim.c; docs/stream-contract.md, "Trimming").
-- KEYS[1]: the stream.  ARGV: cap (entries, > 0), hard cap (0 for none).
-- A group needs the entries after its last-delivered id and those it holds pending.  XADD's
-- own MAXLEN cannot know that (Redis 7.0 trims by length alone), so a group further behind than
-- the cap would lose what it had not read.  Here the cap removes only what no group needs;
-- what groups need beyond it is kept ("held") until they have read it, unless the hard cap is
-- passed: then the oldest entries go even so.
-- Returns {entries removed, of them removed by the hard cap, entries held over the cap, the
-- group that needs the oldest entry ('' when nothing is held or forced)}.
local S = KEYS[1]
local cap, hard = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('XLEN', S) <= cap then return {0, 0, 0, ''} end

-- Counting entries walks them: a count is given up past this many, and the trim then falls
-- back to what the ids alone prove.
local COUNT_LIMIT = 10000

local function field(t, name)
  for i = 1, #t - 1, 2 do
    if t[i] == name then return t[i + 1] end
  end
end

local function id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am < bm end
  return tonumber(as) < tonumber(bs)
end

-- Entries from..to, counted up to limit; nil when there are more than COUNT_LIMIT.
local function count(from, to, limit)
  local n = #redis.call('XRANGE', S, from, to, 'COUNT', math.min(limit, COUNT_LIMIT + 1))
  if n > COUNT_LIMIT then return nil end
  return n
end

-- by_length: every group needs only entries among the newest `cap`, so trimming by length is
-- safe.  oldest: the oldest id any group needs, and which group.
local by_length, oldest, holder = true, nil, ''
for _, g in ipairs(redis.call('XINFO', 'GROUPS', S)) do
  local name, last = field(g, 'name'), field(g, 'last-delivered-id')
  local first_needed = last
  local need = field(g, 'lag')
  -- Redis reports no lag when its counters cannot tell (a group created at '$' before a trim).
  if type(need) ~= 'number' then need = count('(' .. last, '+', cap + 1) end
  if field(g, 'pending') > 0 then
    first_needed = redis.call('XPENDING', S, name)[2]
    if need and need <= cap then
      local held = count(first_needed, last, cap + 1 - need)
      need = held and need + held
    end
  end
  if not need or need > cap then by_length = false end
  if not oldest or id_less(first_needed, oldest) then oldest, holder = first_needed, name end
end

-- LIMIT 0: an approximate XTRIM otherwise stops after 100 nodes (10,000 entries by default),
-- less than a second of a busy gateway's webhooks, and the stream would outgrow its cap.
-- Whole nodes are freed, one allocation per node: 800,000 entries took Redis 12.5 ms.
local removed
if by_length then
  removed = redis.call('XTRIM', S, 'MAXLEN', '~', cap, 'LIMIT', 0)
else
  -- Keeps every entry from the oldest needed one on (one already read, when that group holds
  -- nothing pending: its last-delivered entry).
  removed = redis.call('XTRIM', S, 'MINID', '~', oldest, 'LIMIT', 0)
end
local forced = 0
if hard > 0 and redis.call('XLEN', S) > hard then
  forced = redis.call('XTRIM', S, 'MAXLEN', '~', hard, 'LIMIT', 0)
end
local held = redis.call('XLEN', S) - cap
if by_length or held < 0 then held = 0 end
if held == 0 and forced == 0 then holder = '' end
return {removed + forced, forced, held, holder}
