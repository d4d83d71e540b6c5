-- media_record.lua - the media store's outcome for one file (src/mediastore/).  ARGV: P,
-- record id (<platform>:<account>:<media id>), state (stored|lost), key, size, sha256,
-- content type, file name, event id, conversation, reason, now (ms), platform, account,
-- media id.  Writes the record, indexes a stored file for retention and for its conversation,
-- and appends the outcome to P:media once: a record already stored is left as it is.
-- Returns 1 when written, 0 when the file was stored before.
local P, rid, state = ARGV[1], ARGV[2], ARGV[3]
local rec = P .. ':mediarec:' .. rid
if redis.call('HGET', rec, 'state') == 'stored' then return 0 end
local now = tonumber(ARGV[12])
redis.call('HSET', rec, 'state', state, 'key', ARGV[4], 'size', ARGV[5], 'sha256', ARGV[6],
           'content_type', ARGV[7], 'file_name', ARGV[8], 'event', ARGV[9],
           'conversation', ARGV[10], 'reason', ARGV[11], 'at', ARGV[12])
if state == 'stored' then
  redis.call('ZADD', P .. ':mediaidx', now, rid)
  if ARGV[10] ~= '' then redis.call('SADD', P .. ':mediaconv:' .. ARGV[10], rid) end
end
local out = {v = 1, state = state, platform = ARGV[13], account = ARGV[14], media_id = ARGV[15],
             event = ARGV[9], conversation = ARGV[10], at = now}
if state == 'stored' then
  out.key = ARGV[4]
  out.size = tonumber(ARGV[5])
  out.sha256 = ARGV[6]
  out.content_type = ARGV[7]
else
  out.reason = ARGV[11]
end
redis.call('XADD', P .. ':media', 'MAXLEN', '~', 1000000, '*', 'media', cjson.encode(out))
return 1
