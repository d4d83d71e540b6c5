-- dedupe_moved.lua - until when the dedupe keys of the main database must still be asked,
-- for a gateway that keeps them in dedupe_db (dedupe.lua).  Run in the main database.
-- ARGV: P, now (Unix s), dedupe TTL (s), dedupe db.  Answers the Unix time (0: never): the
-- time recorded in P:dedupe_moved for this dedupe db, else now + TTL when the prefix has
-- stored events before (its keys may be in the main database), else 0 (a new installation).
-- The answer is recorded, so every process and every restart agree on it.
local P, now, ttl, ddb = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local key = P .. ':dedupe_moved'
local rec = redis.call('GET', key)
if rec then
  local untl, db = string.match(rec, '^(%d+) (%d+)$')
  if db == ddb then return tonumber(untl) end
end
-- Stored before: the stream's count of entries ever added (Redis 7), not its existence or
-- length: a dispatcher creates it empty with its group, trimming empties it.  A Redis that
-- does not count is taken to have stored some.
local untl = 0
local info = redis.pcall('XINFO', 'STREAM', P .. ':events')
if type(info) == 'table' and not info.err then
  local added = nil
  for i = 1, #info - 1, 2 do
    if info[i] == 'entries-added' then added = info[i + 1] end
  end
  if added ~= 0 then untl = now + ttl end
end
redis.call('SET', key, untl .. ' ' .. ddb)
return untl
