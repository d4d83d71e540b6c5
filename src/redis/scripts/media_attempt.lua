-- media_attempt.lua - one attempt of the media store at a file (src/mediastore/).  KEYS: the
-- file's record.  Counts the attempt and returns {state or false, attempts so far, the last
-- attempt's reason or false}.
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return {redis.call('HGET', KEYS[1], 'state'), n, redis.call('HGET', KEYS[1], 'reason')}
