-- enqueue.lua - creates an outbound message in state queued and appends its command to P:outbox
-- (status_advance.lua is prepended).  ARGV: P id client_id conversation platform account command
-- now client_ttl.  Returns {id, status, created}.
local id, cid, now = ARGV[2], ARGV[3], ARGV[8]
if cid ~= '' then
  local ck = P .. ':client:' .. cid
  local first = redis.call('GET', ck)
  if first then
    return {first, redis.call('HGET', P .. ':msg:{' .. first .. '}', 'status') or 'queued', 0}
  end
  redis.call('SET', ck, id, 'EX', ARGV[9])
end
local mk = P .. ':msg:{' .. id .. '}'
if redis.call('EXISTS', mk) == 1 then return {id, redis.call('HGET', mk, 'status'), 0} end
redis.call('HSET', mk, 'id', id, 'status', 'queued', 'conversation', ARGV[4],
  'platform', ARGV[5], 'account', ARGV[6], 'created', now, 'updated', now, 'attempt', '0')
local js = cjson.encode({v = 1, id = id, conversation = ARGV[4], status = 'queued',
  attempt = 0, timestamp = math.floor(tonumber(now) / 1000), timestamp_ms = tonumber(now)})
redis.call('RPUSH', mk .. ':history', js)
redis.call('XADD', P .. ':status', '*', 'status', js)
-- 'recorded' tells the sender that this record exists, queued, so a first delivery of the
-- entry needs no look at it (docs/stream-contract.md).
if ARGV[7] ~= '' then
  redis.call('XADD', P .. ':outbox', '*', 'command', ARGV[7], 'id', id, 'recorded', '1')
end
return {id, 'queued', 1}
