-- media_forget.lua - drops the record of a file whose object the retention sweep deleted
-- (src/mediastore/).  ARGV: P, record id.  Returns 1.
local P, rid = ARGV[1], ARGV[2]
local rec = P .. ':mediarec:' .. rid
local conv = redis.call('HGET', rec, 'conversation')
if conv and conv ~= '' then redis.call('SREM', P .. ':mediaconv:' .. conv, rid) end
redis.call('DEL', rec)
redis.call('ZREM', P .. ':mediaidx', rid)
return 1
