-- agent_stats.lua - per-agent and per-account statistics of the last hour and day, read from
-- the dispatcher's sample sets (docs/dispatcher.md "Statistics"): one pass over each set's day
-- window, never a scan of the conversations, so a call costs O(samples of a day + agents).
-- KEYS: stats:frt, stats:csat, stats:handled, agents.  ARGV[1]: now (Unix ms).
-- frt and csat members are "<value>|<conversation>|<at>|<agent>|<platform:account>" (members
-- written before agents were recorded are "<value>|<conversation>|<at>": no agent, and the
-- account is read from the conversation id); handled members are
-- "<agent>|<platform:account>|<conversation>", scored by the last reply.
-- Answer: a JSON text {"agents": {...}, "accounts": {...}, "satisfaction": {...}}.
-- Agents are the registered ones (the set), so a name nobody registered in a sample adds
-- nothing; at most MAX accounts are reported (they come from configured accounts anyway).
local now = tonumber(ARGV[1])
local HOUR, DAY, MAX = now - 3600000, now - 86400000, 1000
local registered = {}
for _, a in ipairs(redis.call('SMEMBERS', KEYS[4])) do registered[a] = true end

local agents, accounts, naccounts = {}, {}, 0
local function fresh()
  return {frt = {hour = {}, day = {}}, csat = {hour = {0, 0}, day = {0, 0}},
          handled = {hour = 0, day = 0}, seen = {}}
end
for a in pairs(registered) do agents[a] = fresh() end
local function account(acct)
  local t = accounts[acct]
  if not t and naccounts < MAX and acct ~= '' then
    t = fresh()
    accounts[acct] = t
    naccounts = naccounts + 1
  end
  return t
end
local overall = {hour = {0, 0}, day = {0, 0}}

-- "v|c|at|agent|account", or "v|c|at" from before: v, agent, account.  The conversation may
-- hold "|" (the pattern is anchored at both ends), agent ids and accounts do not.
local function parse(m)
  local v, _, _, a, acct = string.match(m, '^(%-?%d+)|(.*)|(%d+)|([^|]*)|([^|]*)$')
  if v then return tonumber(v), a, acct end
  local v2, c = string.match(m, '^(%-?%d+)|(.*)|%d+$')
  if not v2 then return nil end
  return tonumber(v2), '', string.match(c, '^([^:]+:[^:]+):') or ''
end

-- Calls fn(member, in the last hour) for the day's members, oldest first.  Scores are not
-- fetched: the last ZCOUNT members of the ascending range are the hour's.
local function each(key, fn)
  local list = redis.call('ZRANGEBYSCORE', key, DAY, '+inf')
  local first = #list - redis.call('ZCOUNT', key, HOUR, '+inf')
  for i = 1, #list do fn(list[i], i > first) end
end

local function add_frt(t, v, recent)
  local d, h = t.frt.day, t.frt.hour
  d[#d + 1] = v
  if recent then h[#h + 1] = v end
end
each(KEYS[1], function(m, recent)
  local v, a, acct = parse(m)
  if not v then return end
  if agents[a] then add_frt(agents[a], v, recent) end
  local t = account(acct)
  if t then add_frt(t, v, recent) end
end)

local function add_csat(s, v, recent)
  s.day[1], s.day[2] = s.day[1] + v, s.day[2] + 1
  if recent then s.hour[1], s.hour[2] = s.hour[1] + v, s.hour[2] + 1 end
end
each(KEYS[2], function(m, recent)
  local v, a, acct = parse(m)
  if not v or v < 1 or v > 5 then return end
  add_csat(overall, v, recent)
  if agents[a] then add_csat(agents[a].csat, v, recent) end
  local t = account(acct)
  if t then add_csat(t.csat, v, recent) end
end)

-- Distinct conversations: an agent's member is unique per conversation already; an account's
-- conversation may have been answered by several agents, so it is counted at its newest
-- member (the members come oldest first: an older one seen later cannot be).
each(KEYS[3], function(m, recent)
  local a, acct, c = string.match(m, '^([^|]*)|([^|]*)|(.+)$')
  if not a then return end
  local t = agents[a]
  if t then
    t.handled.day = t.handled.day + 1
    if recent then t.handled.hour = t.handled.hour + 1 end
  end
  t = account(acct)
  if t then
    local was = t.seen[c]
    if was == nil then t.handled.day = t.handled.day + 1 end
    if recent and not was then t.handled.hour = t.handled.hour + 1 end
    t.seen[c] = was or recent
  end
end)

local function pct(vals)
  if #vals == 0 then return {median_ms = cjson.null, p90_ms = cjson.null, count = 0} end
  table.sort(vals)
  local function at(q) return vals[math.max(1, math.ceil(q * #vals))] end
  return {median_ms = at(0.5), p90_ms = at(0.9), count = #vals}
end
local function avg(s)
  return {average = s[2] > 0 and s[1] / s[2] or cjson.null, count = s[2]}
end
local function out(t)
  return {handled = {hour = t.handled.hour, day = t.handled.day},
          first_response = {hour = pct(t.frt.hour), day = pct(t.frt.day)},
          satisfaction = {hour = avg(t.csat.hour), day = avg(t.csat.day)}}
end

-- cjson writes an empty table as {}: no agents and no accounts still give objects.
local res = {agents = {}, accounts = {}, satisfaction = {hour = avg(overall.hour), day = avg(overall.day)}}
for a, t in pairs(agents) do res.agents[a] = out(t) end
for acct, t in pairs(accounts) do res.accounts[acct] = out(t) end
return cjson.encode(res)
