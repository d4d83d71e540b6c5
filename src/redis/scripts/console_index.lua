-- console_index.lua - adds one read of P:events to the search index and acknowledges it.
-- ARGV[1] key prefix, ARGV[2] group, ARGV[3] words kept per set, then per event: the entry id,
-- the account ('platform:account'), the conversation, the time (Unix ms) and the words,
-- '\n'-separated ('' when the entry has none: it is only acknowledged).
-- Returns the number of entries.
local P, GROUP, KEEP = ARGV[1], ARGV[2], tonumber(ARGV[3])
local S = P .. ':search:'
local n, ids = 0, {}
for i = 4, #ARGV, 5 do
  local acct, conv, at, words = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  ids[#ids + 1] = ARGV[i]
  for w in string.gmatch(words, '[^\n]+') do
    local k = S .. acct .. ':' .. w
    redis.call('ZADD', k, at, conv)
    -- Trimmed in steps of a tenth, not on every add past the bound (ZCARD is O(1)).
    if redis.call('ZCARD', k) > KEEP + KEEP / 10 then
      redis.call('ZREMRANGEBYRANK', k, 0, -KEEP - 1)
    end
  end
  n = n + 1
end
if #ids > 0 then redis.call('XACK', P .. ':events', GROUP, unpack(ids)) end
return n
