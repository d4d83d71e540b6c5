-- ingest.lua - stores any webhook (status_advance.lua, customer_seen.lua and dedupe.lua are
-- put in front).  ARGV: P ttl now platform account cursor dedupe-spec (dedupe.lua), then per
-- event: dedupe key, event JSON, receipt status ('' when not a receipt), external id, error
-- code, error message, then optionally the customers' newest messages (customer_seen.lua).
-- Returns the events written.
local ttl, now = ARGV[2], ARGV[3]
local plat, acct, cursor = ARGV[4], ARGV[5], ARGV[6]
local stop = events_end(8, 6)
local fresh = dedupe_fresh(ARGV[7], 8, stop, 6, ttl)
for _, i in ipairs(fresh) do
  -- No MAXLEN: stream_trim.lua trims, sparing what a consumer group has not read.
  redis.call('XADD', P .. ':events', '*', 'event', ARGV[i + 1])
  -- Only events that name a grant or a media URL are decoded.
  local text = ARGV[i + 1]
  local ev = nil
  if string.find(text, '"business_connection":{', 1, true) or
     string.find(text, '"media":{', 1, true) then
    ev = cjson.decode(text)
  end
  -- A media file the webhook named by URL (Viber): GET /v1/media/... fetches only a URL
  -- recorded here, under the media id the event carries.
  local md = ev and ev.media
  if type(md) == 'table' and type(md.id) == 'string' and type(md.url) == 'string' then
    redis.call('SET', P .. ':mediaurl:' .. plat .. ':' .. acct .. ':' .. md.id, md.url,
               'EX', ttl)
  end
  -- A platform grant's state (Telegram business_connection), newest by its date, for the
  -- sender's check before a reply goes through it.
  if ev then
    local bc = ev.business_connection
    if type(bc) == 'table' and type(bc.id) == 'string' then
      local gk = P .. ':grant:' .. plat .. ':' .. acct .. ':' .. bc.id
      local ts = tonumber(ev.timestamp) or 0
      local seen = tonumber(redis.call('HGET', gk, 'date') or '-1')
      if ts >= seen then
        redis.call('HSET', gk, 'enabled', bc.enabled and '1' or '0',
                   'can_reply', bc.can_reply and '1' or '0', 'user_chat_id',
                   tostring(bc.user_chat_id or ''), 'date', tostring(ts))
      end
    end
  end
  local rs = ARGV[i + 2]
  if rs ~= '' then
    local ek = plat .. ':' .. acct .. ':' .. ARGV[i + 3]
    local id = redis.call('GET', P .. ':ext:' .. ek)
    if id then
      advance(id, rs, nil, ARGV[i + 4], ARGV[i + 5], nil, now)
    else
      -- The platform reported on a send whose answer we have not processed yet (Meta does
      -- this); keep it until the sender records the external id.
      local early = P .. ':early:' .. ek
      redis.call('HSET', early, rs, cjson.encode({code = ARGV[i + 4], message = ARGV[i + 5]}))
      redis.call('EXPIRE', early, ttl)
    end
  end
end
if cursor ~= '' then redis.call('SET', P .. ':cursor:' .. plat .. ':' .. acct, cursor) end
customer_seen(stop)
return #fresh
