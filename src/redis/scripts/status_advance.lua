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
  local cur = redis.call('HGET', mk, 'status')
  if not cur then return nil, false end
  if not forward(cur, new) then return cur, false end
  local f = {'status', new, 'updated', now}
  if ext and ext ~= '' and redis.call('HEXISTS', mk, 'external_message_id') == 0 then
    f[#f + 1] = 'external_message_id'; f[#f + 1] = ext
  end
  if attempt and attempt ~= '' then f[#f + 1] = 'attempt'; f[#f + 1] = attempt end
  if new == 'failed' then
    f[#f + 1] = 'error_code'; f[#f + 1] = ecode or ''
    f[#f + 1] = 'error_message'; f[#f + 1] = emsg or ''
  else
    redis.call('HDEL', mk, 'error_code', 'error_message')
  end
  redis.call('HSET', mk, unpack(f))
  local rec = redis.call('HMGET', mk, 'conversation', 'external_message_id', 'attempt')
  local st = {v = 1, id = id, conversation = rec[1], status = new,
    attempt = tonumber(rec[3] or '0'), timestamp = math.floor(tonumber(now) / 1000),
    timestamp_ms = tonumber(now)}
  if rec[2] then st.external_message_id = rec[2] end
  if new == 'failed' then st.error = {code = ecode or '', message = emsg or ''} end
  local js = cjson.encode(st)
  redis.call('RPUSH', mk .. ':history', js)
  redis.call('XADD', P .. ':status', '*', 'status', js)
  return new, true
end
