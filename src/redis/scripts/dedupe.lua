-- dedupe.lua - the redelivery guard of both ingest scripts, put in front of them with
-- customer_seen.lua (src/store/store.c): one key per event, SET NX with the dedupe TTL.
-- The keys may live in a logical database of their own (dedupe_db, docs/config.md): a
-- gateway holds one per webhook of the last 8 days, tens of millions under load, and in the
-- dispatcher's database they made every lookup of its own keys slower.
-- spec, one argument: '' when they live in the script's database, else "<dedupe db> <main
-- db> <old>", old '1' while keys written in the main database before dedupe_db was set may
-- still guard a redelivery (their TTL has not run out).
-- Returns the indexes i = first, first + stride, ... below stop whose key ARGV[i] was new,
-- with the script back in the main database.
local function dedupe_fresh(spec, first, stop, stride, ttl)
  local fresh = {}
  if spec == '' then
    for i = first, stop - 1, stride do
      if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then fresh[#fresh + 1] = i end
    end
    return fresh
  end
  local ddb, mdb, old = string.match(spec, '^(%d+) (%d+) ([01])$')
  if not ddb then error({err = 'ERR dedupe database spec "' .. spec .. '" is not "<db> <db> <0|1>"'}) end
  local r = redis.pcall('SELECT', ddb)
  if type(r) == 'table' and r.err then
    error({err = 'ERR dedupe_db ' .. ddb .. ' cannot be selected: ' .. r.err})
  end
  for i = first, stop - 1, stride do
    if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then fresh[#fresh + 1] = i end
  end
  redis.call('SELECT', mdb)
  if old == '1' and #fresh > 0 then
    local kept = {}
    for _, i in ipairs(fresh) do
      if redis.call('EXISTS', ARGV[i]) == 0 then kept[#kept + 1] = i end
    end
    fresh = kept
  end
  return fresh
end
