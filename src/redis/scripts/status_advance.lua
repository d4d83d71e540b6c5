-- status_advance.lua - the forward-only rule of delivery states, shared by every script that
-- changes one (ingest, enqueue, set_status): it is prepended to them when they are loaded
-- (src/store/store.c), so the rule exists once.  ARGV[1] is always the key prefix P.
local P = ARGV[1]
local RANK = {queued = 0, sent = 1, delivered = 2, read = 3}
local function forward(cur, new)
  if cur == new then return false end
  if cur == 'failed' then return new == 'delivered' or new == 'read' end
  if new == 'failed' then return cur == 'queued' or cur == 'sent' end
  local a, b = RANK[cur], RANK[new]
  if a == nil or b == nil then return false end
  return b > a
end
local function advance(id, new, ext, ecode, emsg, attempt, now)
  local mk = P .. ':msg:{' .. id .. '}'
  -- one read of what the rule and the status entry need (each call costs the script engine
  -- more than the command itself)
  local rec = redis.call('HMGET', mk, 'status', 'conversation', 'external_message_id', 'attempt')
  local cur = rec[1]
  if not cur then return nil, false end
  if not forward(cur, new) then return cur, false end
  local f = {'status', new, 'updated', now}
  local ext_id = rec[3]
  if ext and ext ~= '' and not ext_id then
    f[#f + 1] = 'external_message_id'; f[#f + 1] = ext
    ext_id = ext
  end
  local att = rec[4]
  if attempt and attempt ~= '' then
    f[#f + 1] = 'attempt'; f[#f + 1] = attempt
    att = attempt
  end
  if new == 'failed' then
    f[#f + 1] = 'error_code'; f[#f + 1] = ecode or ''
    f[#f + 1] = 'error_message'; f[#f + 1] = emsg or ''
  elseif cur == 'failed' then
    -- only a failed message holds an error, and a receipt may still move it on
    redis.call('HDEL', mk, 'error_code', 'error_message')
  end
  redis.call('HSET', mk, unpack(f))
  local st = {v = 1, id = id, conversation = rec[2], status = new,
    attempt = tonumber(att or '0'), timestamp = math.floor(tonumber(now) / 1000),
    timestamp_ms = tonumber(now)}
  if ext_id then st.external_message_id = ext_id end
  if new == 'failed' then st.error = {code = ecode or '', message = emsg or ''} end
  local js = cjson.encode(st)
  redis.call('RPUSH', mk .. ':history', js)
  redis.call('XADD', P .. ':status', '*', 'status', js)
  return new, true
end
