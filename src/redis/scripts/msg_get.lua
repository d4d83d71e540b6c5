-- msg_get.lua - one outbound message by id or by external id.
-- ARGV: P id-or-'' ext-key-suffix-or-''.  Returns {} or {hash fields, history list}.
local P = ARGV[1]
local id = ARGV[2]
if id == '' then
  id = redis.call('GET', P .. ':ext:' .. ARGV[3])
  if not id then return {} end
end
local mk = P .. ':msg:{' .. id .. '}'
local h = redis.call('HGETALL', mk)
if #h == 0 then return {} end
return {h, redis.call('LRANGE', mk .. ':history', 0, -1)}
