-- console_auth.lua - the agent console's sign-in state: secrets, invitations, sessions and the
-- failure counters, each change one atomic run.
-- ARGV[1] operation, ARGV[2] key prefix, ARGV[3] now (Unix ms); the rest by operation:
--   signin_check agent addr max_agent max_addr
--       -> {wait_s, hash, role, tenant}: wait_s > 0 while either counter is at its maximum
--   signin_fail agent addr window_s        -> 1 (both counters + 1, expiring window_s after the first)
--   secret_set agent hash role scope       -> 1, or 'no_agent' when the agent is missing or not
--       the scope's ('' = the operator: any agent); every session of the agent ends
--   invite_new agent token_hash role ttl_s scope -> 1 or 'no_agent'
--   invite_peek token_hash                 -> {agent, role, tenant} or nil, the link kept
--   invite_redeem token_hash hash          -> {agent, role, tenant} or nil: the link used up and
--       its agent's secret set to hash (its sessions end), in one run
--   session_new id_hash agent tenant role idle_s max_s -> 1
--   session_get id_hash idle_s             -> {agent, tenant, role} or nil; refreshes the idle expiry
--   session_end id_hash                    -> 1
local op, P, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local function auth(a) return P .. ':agentauth:{' .. a .. '}' end
local function info(a) return P .. ':agentinfo:{' .. a .. '}' end
local function sessions(a) return P .. ':agentsessions:{' .. a .. '}' end
local function session(h) return P .. ':session:' .. h end
local FAIL = P .. ':signinfail:'
local function fail_agent(a) return FAIL .. 'agent:' .. a end
local function fail_addr(ip) return FAIL .. 'addr:' .. ip end

-- The agent exists and is the scope's (the operator's scope '' reaches every agent).
local function owned(a, scope)
  if redis.call('EXISTS', info(a)) == 0 then return false end
  if scope == '' then return true end
  return redis.call('HGET', info(a), 'tenant') == scope
end

local function end_all(a)
  for _, h in ipairs(redis.call('SMEMBERS', sessions(a))) do redis.call('DEL', session(h)) end
  redis.call('DEL', sessions(a))
end

if op == 'signin_check' then
  local a, ip = ARGV[4], ARGV[5]
  local wait = 0
  local na = tonumber(redis.call('GET', fail_agent(a)) or '0')
  local ni = tonumber(redis.call('GET', fail_addr(ip)) or '0')
  if na >= tonumber(ARGV[6]) then wait = math.max(wait, redis.call('TTL', fail_agent(a))) end
  if ni >= tonumber(ARGV[7]) then wait = math.max(wait, redis.call('TTL', fail_addr(ip))) end
  local h = redis.call('HMGET', auth(a), 'secret', 'role')
  local tenant = redis.call('HGET', info(a), 'tenant') or ''
  if redis.call('EXISTS', info(a)) == 0 then h = {false, false} end
  return {wait, h[1] or '', h[2] or 'agent', tenant}
elseif op == 'signin_fail' then
  local window = tonumber(ARGV[6])
  for _, k in ipairs({fail_agent(ARGV[4]), fail_addr(ARGV[5])}) do
    if redis.call('INCR', k) == 1 then redis.call('EXPIRE', k, window) end
  end
  return 1
elseif op == 'secret_set' then
  local a = ARGV[4]
  if not owned(a, ARGV[7]) then return 'no_agent' end
  redis.call('HSET', auth(a), 'secret', ARGV[5], 'role', ARGV[6], 'set_at', now)
  end_all(a)
  redis.call('DEL', fail_agent(a))
  return 1
elseif op == 'invite_new' then
  local a = ARGV[4]
  if not owned(a, ARGV[8]) then return 'no_agent' end
  local k = P .. ':invite:' .. ARGV[5]
  redis.call('HSET', k, 'agent', a, 'role', ARGV[6])
  redis.call('EXPIRE', k, tonumber(ARGV[7]))
  return 1
elseif op == 'invite_peek' or op == 'invite_redeem' then
  local k = P .. ':invite:' .. ARGV[4]
  local v = redis.call('HMGET', k, 'agent', 'role')
  if not v[1] or redis.call('EXISTS', info(v[1])) == 0 then return nil end
  local role = v[2] or 'agent'
  if op == 'invite_redeem' then
    redis.call('DEL', k)
    redis.call('HSET', auth(v[1]), 'secret', ARGV[5], 'role', role, 'set_at', now)
    end_all(v[1])
    redis.call('DEL', fail_agent(v[1]))
  end
  return {v[1], role, redis.call('HGET', info(v[1]), 'tenant') or ''}
elseif op == 'session_new' then
  local h, a, idle, max = ARGV[4], ARGV[5], tonumber(ARGV[8]), tonumber(ARGV[9])
  redis.call('HSET', session(h), 'agent', a, 'tenant', ARGV[6], 'role', ARGV[7],
             'created', now, 'ends', now + max * 1000)
  redis.call('EXPIRE', session(h), math.min(idle, max))
  redis.call('SADD', sessions(a), h)
  redis.call('EXPIRE', sessions(a), max)
  redis.call('DEL', fail_agent(a))
  return 1
elseif op == 'session_get' then
  local h, idle = ARGV[4], tonumber(ARGV[5])
  local v = redis.call('HMGET', session(h), 'agent', 'tenant', 'role', 'ends')
  if not v[1] then return nil end
  local left = math.floor((tonumber(v[4]) - now) / 1000)
  if left <= 0 then
    redis.call('DEL', session(h))
    redis.call('SREM', sessions(v[1]), h)
    return nil
  end
  redis.call('EXPIRE', session(h), math.min(idle, left))
  return {v[1], v[2], v[3]}
elseif op == 'session_end' then
  local a = redis.call('HGET', session(ARGV[4]), 'agent')
  redis.call('DEL', session(ARGV[4]))
  if a then redis.call('SREM', sessions(a), ARGV[4]) end
  return 1
end
return redis.error_reply('unknown operation ' .. tostring(op))
