-- console_inbox.lua - what one signed-in agent may see, read in one run.
-- ARGV[1] operation, ARGV[2] key prefix, ARGV[3] now (Unix ms), ARGV[4] the agent,
-- ARGV[5] the tenant's accounts ('platform:account' lines; '' = the operator's: every account),
-- ARGV[6] 1 for a supervisor; then by operation:
--   list view limit -> {{conversation, {field, value, ...}}, ...}: view 'mine' (assigned to the
--       agent), 'queue' (waiting, of accounts both the tenant and the agent serve, best first)
--       or 'all' (a supervisor's: every conversation not closed of the tenant's accounts)
--   access conversation -> {state, agent, served}: served 1 when the agent serves its account
--   transcript conversation -> {{field, value, ...}, {item, ...}, {{status, text, error_code,
--       error_message} per item ('' for an inbound one)}} or nil
--   search words limit -> like list: the conversations whose index has every one of words
--       ('\n'-separated) in one account, newest first; of the tenant's accounts (ARGV[5] must
--       then list them: '' is refused), and for an agent only those it may open (its own, the
--       queued ones of accounts it serves)
--   stats -> {open, queued, assigned, agents online}: of the tenant's accounts and agents
--       (a supervisor's; the operator's agents count everything)
local op, P, A, sup = ARGV[1], ARGV[2], ARGV[4], ARGV[6] == '1'
local function ck(c) return P .. ':conv:{' .. c .. '}' end

local tenant = nil
if ARGV[5] ~= '' then
  tenant = {}
  for s in string.gmatch(ARGV[5], '[^\n]+') do tenant[s] = true end
end
-- The agent's own accounts (an empty list serves every account).
local mine = nil
local raw = redis.call('HGET', P .. ':agentinfo:{' .. A .. '}', 'accounts')
if raw and raw ~= '' and raw ~= '[]' then
  local ok, list = pcall(cjson.decode, raw)
  if ok and type(list) == 'table' and #list > 0 then
    mine = {}
    for _, s in ipairs(list) do mine[s] = true end
  end
end
local function acct_of(c)
  local h = redis.call('HMGET', ck(c), 'platform', 'account')
  return (h[1] or '') .. ':' .. (h[2] or '')
end
local function in_tenant(a) return not tenant or tenant[a] == true end
local function served(a) return in_tenant(a) and (sup or not mine or mine[a] == true) end

if op == 'list' then
  local view, limit, out = ARGV[7], tonumber(ARGV[8]) or 200, {}
  local ids
  if view == 'mine' then
    ids = redis.call('SMEMBERS', P .. ':agentconvs:{' .. A .. '}')
  elseif view == 'queue' then
    ids = redis.call('ZRANGE', P .. ':dispatch:queue', 0, 1999)
  elseif view == 'all' and sup then
    ids = redis.call('SMEMBERS', P .. ':dispatch:active')
  else
    return {}
  end
  for _, c in ipairs(ids) do
    if #out >= limit then break end
    local a = acct_of(c)
    local ok = in_tenant(a)
    if view == 'queue' then ok = served(a) end
    if ok then out[#out + 1] = {c, redis.call('HGETALL', ck(c))} end
  end
  return out
elseif op == 'access' then
  local c = ARGV[7]
  local h = redis.call('HMGET', ck(c), 'state', 'agent')
  if not h[1] then return nil end
  return {h[1], h[2] or '', served(acct_of(c)) and 1 or 0}
end
if op == 'stats' then
  if not sup then return redis.error_reply('for supervisors') end
  local open, queued, assigned, online = 0, 0, 0, 0
  for _, c in ipairs(redis.call('SMEMBERS', P .. ':dispatch:active')) do
    if in_tenant(acct_of(c)) then
      open = open + 1
      local st = redis.call('HGET', ck(c), 'state')
      if st == 'queued' then queued = queued + 1 elseif st == 'assigned' then assigned = assigned + 1 end
    end
  end
  local T = redis.call('HGET', P .. ':agentinfo:{' .. A .. '}', 'tenant') or ''
  for _, a in ipairs(redis.call('SMEMBERS', P .. ':agents')) do
    local h = redis.call('HMGET', P .. ':agentinfo:{' .. a .. '}', 'presence', 'tenant')
    if h[1] == 'online' and (T == '' or h[2] == T) then online = online + 1 end
  end
  return {open, queued, assigned, online}
elseif op == 'search' then
  if not tenant then return redis.error_reply('search needs the accounts') end
  local words, limit, found = {}, tonumber(ARGV[8]) or 50, {}
  for w in string.gmatch(ARGV[7], '[^\n]+') do words[#words + 1] = w end
  if #words == 0 then return {} end
  for acct in pairs(tenant) do
    local keys, small, smallest = {}, nil, nil
    for i, w in ipairs(words) do
      keys[i] = P .. ':search:' .. acct .. ':' .. w
      local n = redis.call('ZCARD', keys[i])
      if not smallest or n < smallest then smallest, small = n, i end
    end
    if smallest and smallest > 0 then
      -- Walk the smallest set, newest first, and keep what every other word's set holds.
      local cand = redis.call('ZREVRANGE', keys[small], 0, -1, 'WITHSCORES')
      for i = 1, #cand, 2 do
        local ok = true
        for k, key in ipairs(keys) do
          if k ~= small and not redis.call('ZSCORE', key, cand[i]) then ok = false; break end
        end
        if ok then found[#found + 1] = {cand[i], tonumber(cand[i + 1])} end
      end
    end
  end
  table.sort(found, function(a, b) return a[2] > b[2] end)
  local out = {}
  for _, f in ipairs(found) do
    if #out >= limit then break end
    local c = f[1]
    local h = redis.call('HMGET', ck(c), 'state', 'agent')
    local visible = sup or (h[1] == 'assigned' and h[2] == A) or (h[1] == 'queued' and served(acct_of(c)))
    if h[1] and visible then out[#out + 1] = {c, redis.call('HGETALL', ck(c))} end
  end
  return out
elseif op == 'transcript' then
  local c = ARGV[7]
  local h = redis.call('HGETALL', ck(c))
  if #h == 0 then return nil end
  -- the last 1000, as dispatch.lua's op_get: the list may hold up to its trim slack more
  local list = redis.call('LRANGE', ck(c) .. ':items', -1000, -1)
  local out = {}
  for i, it in ipairs(list) do
    local id = string.match(it, '^{[^{]*"id":"([^"]+)"')
    out[i] = {'', '', '', ''}
    if string.sub(it, 1, 12) ~= '{"dir":"in",' and id then
      local m = redis.call('HMGET', P .. ':msg:{' .. id .. '}', 'status', 'text', 'error_code', 'error_message')
      out[i] = {m[1] or '', m[2] or '', m[3] or '', m[4] or ''}
    end
  end
  return {h, list, out}
end
return redis.error_reply('unknown operation ' .. tostring(op))
