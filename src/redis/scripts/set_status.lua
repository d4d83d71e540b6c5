-- set_status.lua - records a send's outcome and its external ids, then applies receipts that
-- arrived before it (status_advance.lua is prepended).
-- ARGV: P id new ecode emsg attempt now platform account ext_ttl n ext...  Returns {id, status, changed}.
local id, new, now = ARGV[2], ARGV[3], ARGV[7]
local plat, acct, n = ARGV[8], ARGV[9], tonumber(ARGV[11])
for i = 1, n do
  redis.call('SET', P .. ':ext:' .. plat .. ':' .. acct .. ':' .. ARGV[11 + i], id, 'EX', ARGV[10])
end
local res, changed = advance(id, new, ARGV[12], ARGV[4], ARGV[5], ARGV[6], now)
if res == nil then return {id, '', 0} end
for i = 1, n do
  local early = P .. ':early:' .. plat .. ':' .. acct .. ':' .. ARGV[11 + i]
  local h = redis.call('HGETALL', early)
  for j = 1, #h, 2 do
    local e = cjson.decode(h[j + 1])
    local r, c = advance(id, h[j], nil, e.code, e.message, nil, now)
    if c then res = r end
    changed = changed or c
  end
  if #h > 0 then redis.call('DEL', early) end
end
return {id, res, changed and 1 or 0}
