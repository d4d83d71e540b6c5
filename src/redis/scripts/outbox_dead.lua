-- outbox_dead.lua - an outbox entry given up on: appended to P:dead and acknowledged, never one
-- without the other.  ARGV: P group entry_id command reason now.
local P = ARGV[1]
redis.call('XADD', P .. ':dead', '*', 'command', ARGV[4], 'reason', ARGV[5],
  'entry', ARGV[3], 'at', ARGV[6])
return redis.call('XACK', P .. ':outbox', ARGV[2], ARGV[3])
