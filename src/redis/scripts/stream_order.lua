-- stream_order.lua - whether entry E must wait for an earlier entry of its conversation
-- (src/stream/ordering.c: the sender, the helpdesk webhooks).
-- ARGV: stream, group, this consumer, entry E, conversation, field, 1 when the conversation
-- appears verbatim in any JSON encoding of it (plain ASCII).  Returns 1 while an entry before
-- E of the same conversation is pending under another consumer (or when too many earlier
-- entries are pending to look at all of them: waiting is safe, the oldest always passes),
-- 2 when no other consumer holds any entry at all (then no entry delivered to this consumer
-- so far waits for anything elsewhere), else 0.  This process's own pending entries are
-- ordered locally and not looked at.
local S, G, me, E, conv, field, plain = unpack(ARGV)
local sum = redis.pcall('XPENDING', S, G)
if type(sum) ~= 'table' or sum.err then return 0 end
if sum[1] == 0 then return 2 end
local others = false
for _, c in ipairs(sum[4] or {}) do if c[1] ~= me then others = true end end
if not others then return 2 end
local from, seen = '-', 0
while seen < 1024 do
  local p = redis.call('XPENDING', S, G, from, '(' .. E, 128)
  for i = 1, #p do
    if p[i][2] ~= me then
      local r = redis.call('XRANGE', S, p[i][1], p[i][1])
      local f = r[1] and r[1][2] or {}
      for k = 1, #f - 1, 2 do
        if f[k] == field and (plain ~= '1' or string.find(f[k + 1], conv, 1, true)) then
          local ok, obj = pcall(cjson.decode, f[k + 1])
          if ok and type(obj) == 'table' and obj.conversation == conv then return 1 end
        end
      end
    end
  end
  if #p < 128 then return 0 end
  seen = seen + #p
  from = '(' .. p[#p][1]
end
return 1
