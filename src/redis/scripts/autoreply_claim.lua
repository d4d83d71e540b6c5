-- autoreply_claim.lua - takes the once-only key of an automatic answer for this event: 1 when it
-- was free or already held by the same event (a re-run after a crash), else 0.
-- ARGV: key owner ttl refresh.
if redis.call('SET', ARGV[1], ARGV[2], 'NX', 'EX', ARGV[3]) then return 1 end
if redis.call('GET', ARGV[1]) == ARGV[2] then return 1 end
if ARGV[4] == '1' then redis.call('EXPIRE', ARGV[1], ARGV[3]) end
return 0
