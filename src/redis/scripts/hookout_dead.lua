-- hookout_dead.lua - a helpdesk webhook given up on: dead letter and acknowledgement in one script,
-- never one without the other.  ARGV: dead stream, endpoint, stream label, entry, payload, reason,
-- at, source stream, group.
redis.call('XADD', ARGV[1], '*', 'endpoint', ARGV[2], 'stream', ARGV[3],
  'entry', ARGV[4], 'payload', ARGV[5], 'reason', ARGV[6], 'at', ARGV[7])
return redis.call('XACK', ARGV[8], ARGV[9], ARGV[4])
