-- The dispatcher's whole state machine: one script, so every change is atomic across processes.
-- ARGV[1] operation, ARGV[2] key prefix, ARGV[3] now (Unix ms); the rest depends on the operation.
-- Keys are built here rather than declared: the dispatcher needs one non-cluster Redis (docs/dispatcher.md).
local op, P, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local PRIO = {low = 0, normal = 1, high = 2, urgent = 3}
local QUEUE, AGENTS, CONVS = P .. ':dispatch:queue', P .. ':agents', P .. ':convs'
local ACTIVE, RR, EVENTS = P .. ':dispatch:active', P .. ':dispatch:rr', P .. ':events'
local GROUP = 'deskbridge-dispatch'
-- A conversation shows its last HISTORY items.  The list is trimmed back to them once it
-- holds SLACK more, not on every push: a trim per event cost a command per event once the
-- histories are full.  Readers take the last HISTORY (op_get, console_inbox.lua).
local HISTORY, SLACK = 1000, 100
-- The last conversation's key kept: an event asks for it several times, and each string built
-- here costs Redis a hash of every byte.
local ck_c, ck_k
local function ck(c)
  if c ~= ck_c then ck_c, ck_k = c, P .. ':conv:{' .. c .. '}' end
  return ck_k
end
local function items(c) return P .. ':conv:{' .. c .. '}:items' end
local function inbox(a) return P .. ':agent:{' .. a .. '}' end

local function push(a, kind, c, data)
  if not a or a == '' then return end
  redis.call('XADD', inbox(a), 'MAXLEN', '~', 10000, '*', 'type', kind, 'conversation', c, 'data', data)
end
-- The assignment functions, defined by assignment(): an event needs them only when it routes
-- a conversation, and defining them costs Redis time on every run of the script.
local ak, aset, life, list_of, contains, lang_ok, agent, has_room, serves, conv, stat
local pick, assign_to, score, enqueue, route
local function assignment()
  if route then return end
  function ak(a) return P .. ':agentinfo:{' .. a .. '}' end
  function aset(a) return P .. ':agentconvs:{' .. a .. '}' end
  function life(kind, c, extra)
    local t = {type = kind, conversation = c, at = now}
    for k, v in pairs(extra or {}) do t[k] = v end
    return cjson.encode(t)
  end
  function list_of(s)
    if not s or s == '' then return {} end
    local ok, v = pcall(cjson.decode, s)
    if ok and type(v) == 'table' then return v end
    return {}
  end
  function contains(list, x)
    for _, v in ipairs(list) do if v == x then return true end end
    return false
  end
  -- "uk-UA" is served by an agent speaking "uk".
  function lang_ok(list, lang)
    if #list == 0 or not lang or lang == '' then return true end
    local base = string.match(lang, '^[^-_]+') or lang
    return contains(list, lang) or contains(list, base)
  end
  function agent(a)
    local h = redis.call('HMGET', ak(a), 'presence', 'capacity', 'languages', 'accounts')
    if not h[2] then return nil end
    return {id = a, presence = h[1] or 'offline', capacity = tonumber(h[2]) or 0,
            languages = list_of(h[3]), accounts = list_of(h[4]), load = redis.call('SCARD', aset(a))}
  end
  function has_room(ag) return ag and ag.presence == 'online' and ag.load < ag.capacity end
  function serves(ag, acct, lang)
    return (#ag.accounts == 0 or contains(ag.accounts, acct)) and lang_ok(ag.languages, lang)
  end
  function conv(c)
    local h = redis.call('HMGET', ck(c), 'state', 'agent', 'prev_agent', 'platform', 'account', 'language', 'priority')
    return {id = c, state = h[1], agent = h[2] or '', prev = h[3] or '', platform = h[4] or '',
            account = h[5] or '', language = h[6] or '', priority = h[7] or 'normal'}
  end
  -- A sample "v|c|now|agent|platform:account" (docs/dispatcher.md "Statistics"); readers
  -- take the leading number, so members written before the agent was recorded still count.
  function stat(kind, c, v, a)
    local k = P .. ':stats:' .. kind
    local acct = string.match(c, '^([^:]+:[^:]+):') or ''
    redis.call('ZADD', k, now, v .. '|' .. c .. '|' .. now .. '|' .. (a or '') .. '|' .. acct)
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - 86400000)
  end

  -- Sticky first, then the least loaded agent who serves the account and language; ties in turn.
  function pick(cv)
    if cv.prev ~= '' and has_room(agent(cv.prev)) then return cv.prev end
    local best, ties = nil, {}
    local acct = cv.platform .. ':' .. cv.account
    for _, a in ipairs(redis.call('SMEMBERS', AGENTS)) do
      local ag = agent(a)
      if has_room(ag) and serves(ag, acct, cv.language) then
        if not best or ag.load < best then best, ties = ag.load, {a}
        elseif ag.load == best then ties[#ties + 1] = a end
      end
    end
    if not best then return nil end
    table.sort(ties)
    return ties[(redis.call('INCR', RR) - 1) % #ties + 1]
  end

  function assign_to(c, a, kind, extra)
    local h = ck(c)
    local qa = tonumber(redis.call('HGET', h, 'queued_at'))
    if qa then stat('wait', c, now - qa, a) end
    redis.call('HSET', h, 'state', 'assigned', 'agent', a, 'prev_agent', a, 'assigned_at', now)
    redis.call('HDEL', h, 'queued_at')
    redis.call('ZREM', QUEUE, c)
    redis.call('SADD', aset(a), c)
    local t = extra or {}
    t.agent = a
    t.unread = tonumber(redis.call('HGET', h, 'unread')) or 0
    push(a, kind, c, life(kind, c, t))
  end
  function score(prio, since) return (3 - (PRIO[prio] or 1)) * 1e13 + since end
  function enqueue(c, notify)
    local h = ck(c)
    local qa = tonumber(redis.call('HGET', h, 'queued_at'))
    if not qa then qa = now; redis.call('HSET', h, 'queued_at', now) end
    redis.call('HSET', h, 'state', 'queued', 'agent', '')
    redis.call('ZADD', QUEUE, score(redis.call('HGET', h, 'priority') or 'normal', qa), c)
    if notify then push(notify, 'queued', c, life('queued', c, {})) end
  end
  -- A conversation assigned at once waited 0 ms: a sample too, or the median overstates.
  function route(c)
    local a = pick(conv(c))
    if not a then enqueue(c); return end
    if not redis.call('HGET', ck(c), 'queued_at') then stat('wait', c, 0, a) end
    assign_to(c, a, 'assigned')
  end
end

-- ---- events ----
-- Entry ids "ms-seq" compared as numbers, without making substrings or numbers in the usual
-- case (this runs twice for every event): Redis writes neither part with leading zeros, so a
-- longer part is a larger number, and two ids whose parts have the same lengths are in text order.
local function cmp_id(x, y)
  if x == y then return 0 end
  local xd, yd = string.find(x, '-', 1, true), string.find(y, '-', 1, true)
  if xd and yd then
    if xd ~= yd then return xd < yd and -1 or 1 end
    if #x == #y then return x < y and -1 or 1 end
    local xm, ym = string.sub(x, 1, xd), string.sub(y, 1, yd)
    if xm ~= ym then return xm < ym and -1 or 1 end
    return #x < #y and -1 or 1
  end
  local xm, ym = tonumber(string.sub(x, 1, (xd or 1) - 1)), tonumber(string.sub(y, 1, (yd or 1) - 1))
  if xm ~= ym then return (xm or -1) < (ym or -1) and -1 or 1 end
  local xs, ys = tonumber(string.sub(x, (xd or #x) + 1)), tonumber(string.sub(y, (yd or #y) + 1))
  if xs ~= ys then return (xs or -1) < (ys or -1) and -1 or 1 end
  return 0
end
local function priority_of(text, rules)
  local best = nil
  if type(text) ~= 'string' or rules == '' then return nil end
  local low = string.lower(text)
  for kw, pr in string.gmatch(rules, '([^\t\n]+)\t([^\n]+)') do
    if string.find(low, kw, 1, true) and (not best or PRIO[pr] > PRIO[best]) then best = pr end
  end
  return best
end
-- A whole number of ms as Redis would write it: the text itself when it already is that
-- (saves formatting a Lua number on every write), else tonumber's reading of it (nil if none).
local function ms(s)
  if type(s) == 'string' and #s < 16 and string.find(s, '^[1-9]%d*$') then return s end
  return tonumber(s)
end
-- What apply_event needs of an event: from ARGV[9] on when the caller passed it (the
-- dispatcher has parsed the event already), else decoded here from the raw event (earlier
-- pending entries, callers that pass only the raw event).  nil when raw is not an object.
local function fields_of(raw, rules)
  local ok, ev = pcall(cjson.decode, raw)
  if not ok or type(ev) ~= 'table' then return nil end
  local prof = {}
  if type(ev.sender) == 'table' then
    for _, f in ipairs({'name', 'username', 'language'}) do
      if type(ev.sender[f]) == 'string' then prof[#prof + 1] = f; prof[#prof + 1] = ev.sender[f] end
    end
  end
  if type(ev.external_user_id) == 'string' then prof[#prof + 1] = 'user_id'; prof[#prof + 1] = ev.external_user_id end
  return {kind = ev.kind, platform = ev.platform or '', account = ev.account or '',
          chat = ev.external_chat_id or '', id = ev.id or '', at = tonumber(ev.received_at),
          prio = priority_of(ev.text, rules), prof = prof}
end
-- The arguments of the event being applied are ARGV[B + 4] to ARGV[B + AN]: ARGV itself
-- (B = 0), or one event's share of op_events' (read in place: copying them into a table of
-- their own cost a table per event).
local B, AN = 0, #ARGV
local function fields_of_argv()
  -- the profile stays in ARGV: apply_event copies ARGV[pb..pe] into its HSET
  return {kind = ARGV[B + 9], platform = ARGV[B + 10], account = ARGV[B + 11], chat = ARGV[B + 12],
          id = ARGV[B + 13], at = ms(ARGV[B + 14]), prio = ARGV[B + 15] ~= '' and ARGV[B + 15] or nil,
          pb = B + 16, pe = B + AN}
end
local ACTIVITY = {message = true, edit = true, callback = true, reaction = true}

-- ---- the satisfaction survey (docs/survey.md) ----
-- What the survey took of the event being applied, for op_event's answer: nil, or
-- {'answered', score} / {'comment', score}.
local survey_out = nil
-- A customer's activity on a closed conversation whose survey is waiting: the answer
-- (a tap on csat-N, or a text that is only 1-5) and then one comment within the window are
-- recorded instead of reopening it; anything else ends the survey, so an answer given after a
-- new conversation started is never mixed into it.  Returns true when the event was taken.
local function survey_take(c, h, kind, raw)
  local s = redis.call('HMGET', h, 'survey_state', 'survey_window', 'survey_answered_at',
                       'survey_agent', 'platform', 'account', 'survey_score')
  local sst = s[1]
  if sst ~= 'pending' and sst ~= 'answered' then return false end
  local ok, ev = pcall(cjson.decode, raw)
  if not ok or type(ev) ~= 'table' then ev = {} end
  local score = nil
  if kind == 'callback' and type(ev.callback_data) == 'string' then
    score = string.match(ev.callback_data, '^csat%-([1-5])$')
  elseif kind == 'message' and type(ev.text) == 'string' then
    score = string.match(ev.text, '^%s*([1-5])%s*$')
  end
  local agent_of = s[4] or ''
  if sst == 'pending' then
    if not score then redis.call('HSET', h, 'survey_state', 'cancelled'); return false end
    redis.call('HSET', h, 'survey_state', 'answered', 'survey_score', score, 'survey_answered_at', now)
    local k = P .. ':stats:csat'
    redis.call('ZADD', k, now, score .. '|' .. c .. '|' .. now .. '|' .. agent_of .. '|' ..
               (s[5] or '') .. ':' .. (s[6] or ''))
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - 86400000)
    survey_out = {'answered', tonumber(score)}
  else
    -- a second tap on the question's buttons changes nothing and reopens nothing
    if kind == 'callback' and score then return true end
    local until_ms = (tonumber(s[3]) or 0) + (tonumber(s[2]) or 0)
    if kind ~= 'message' or type(ev.text) ~= 'string' or ev.text == '' or now >= until_ms then
      redis.call('HSET', h, 'survey_state', 'done')
      return false
    end
    redis.call('HSET', h, 'survey_state', 'done', 'survey_comment', ev.text, 'survey_commented_at', now)
    survey_out = {'comment', tonumber(s[7]) or 0}
  end
  -- The agent it was closed from learns the outcome in their inbox.
  if agent_of ~= '' then
    local t = {type = 'survey', conversation = c, at = now, agent = agent_of,
               score = tonumber(redis.call('HGET', h, 'survey_score'))}
    if survey_out[1] == 'comment' then t.comment = ev.text end
    push(agent_of, 'survey', c, cjson.encode(t))
  end
  return true
end
-- The fields apply_event reads before it changes anything; op_event reads them with
-- last_entry after them (STL), so its answer serves apply_event as it is.
local ST = {'state', 'priority', 'queued_at', 'agent', 'first_message_at', 'unread'}
local STL = {'state', 'priority', 'queued_at', 'agent', 'first_message_at', 'unread', 'last_entry'}
local NONE = {} -- an empty list of entries to apply, shared: only read
-- Applies one event (fields f) to conversation c.  st: c's fields ST read just before, or nil
-- to read them here; extra: field/value pairs to write along with the event (the caller's
-- last_entry).  Returns whether the conversation exists afterwards, and whether extra was
-- written.  The writes are gathered into as few commands as give the same end state.
-- item: the history item the caller built (then raw may be nil: taken from item when an
-- inbox needs it), or nil to build it here.
local function event_of(item, entry) return string.sub(item, #entry + 32, -2) end
local function apply_event(c, entry, raw, f, resolved, st, extra, item)
  if not f then return false, false end
  local h = ck(c)
  st = st or redis.call('HMGET', h, unpack(ST))
  local state, kind = st[1], f.kind
  if not state and not ACTIVITY[kind] then return false, false end
  local it = items(c)
  item = item or '{"dir":"in","entry":"' .. entry .. '","event":' .. raw .. '}'
  if redis.call('RPUSH', it, item) > HISTORY + SLACK then
    redis.call('LTRIM', it, -HISTORY, -1)
  end
  if not ACTIVITY[kind] then
    if state == 'assigned' then push(st[4], kind, c, raw or event_of(item, entry)) end
    return true, false
  end
  -- every activity passes by the survey, so whatever reopens (an edit, a reaction) ends it
  if state == 'closed' and not resolved and survey_take(c, h, kind, raw or event_of(item, entry)) then
    -- kept in the history, but the conversation stays closed and unread stays as it was
    if extra and #extra > 0 then redis.call('HSET', h, unpack(extra)) end
    return true, extra ~= nil
  end
  local at = f.at or ms(ARGV[3]) or now
  -- A new conversation's hash is written with the fields every event reads and writes first:
  -- Redis keeps a small hash as a list and finds a field by walking it from the front.  Every
  -- branch below sets state (and agent, when the event is routed) before the script ends.
  local w, u = nil, st[6]
  if not state then
    u = '0'
    w = {'state', 'open', 'unread', '1'}
    for i = 1, #(extra or NONE) do w[#w + 1] = extra[i] end
    extra = nil
    w[#w + 1] = 'priority'; w[#w + 1] = 'normal'; w[#w + 1] = 'first_message_at'; w[#w + 1] = at
    if not resolved then w[#w + 1] = 'agent'; w[#w + 1] = '' end
    w[#w + 1] = 'last_message_at'; w[#w + 1] = at; w[#w + 1] = 'last_event'; w[#w + 1] = f.id
    w[#w + 1] = 'id'; w[#w + 1] = c; w[#w + 1] = 'platform'; w[#w + 1] = f.platform
    w[#w + 1] = 'account'; w[#w + 1] = f.account; w[#w + 1] = 'chat'; w[#w + 1] = f.chat
    w[#w + 1] = 'created_at'; w[#w + 1] = now
  else
    w = {'last_message_at', at, 'last_event', f.id}
  end
  if state and not st[5] then w[#w + 1] = 'first_message_at'; w[#w + 1] = at end
  -- unread + 1 written directly when it is a plain count (a new conversation starts at 0);
  -- anything else is left to HINCRBY, which judges it as before.
  local incr = true
  if u == '0' then
    incr = false
    if state then w[#w + 1] = 'unread'; w[#w + 1] = '1' end
  elseif u and #u < 15 and string.find(u, '^[1-9]%d*$') then
    w[#w + 1] = 'unread'; w[#w + 1] = tostring(tonumber(u) + 1); incr = false
  end
  if f.prof then
    for i = 1, #f.prof do w[#w + 1] = f.prof[i] end
  else
    for i = f.pb, f.pe do w[#w + 1] = ARGV[i] end
  end
  for i = 1, #(extra or NONE) do w[#w + 1] = extra[i] end
  redis.call('HSET', h, unpack(w))
  if not state then redis.call('ZADD', CONVS, 'NX', now, c) end
  if incr then redis.call('HINCRBY', h, 'unread', 1) end
  local pr, cur = f.prio, state and st[2] or 'normal'
  local raised = pr and PRIO[pr] > (PRIO[cur] or 1)
  if raised then redis.call('HSET', h, 'priority', pr); cur = pr end
  local agent_now = st[4]
  if resolved and (not state or state == 'closed' or state == 'open') then
    -- answered by a keyword rule that resolves it: recorded, not routed to an agent
    state = state == 'closed' and 'closed' or 'open'
    redis.call('HSET', h, 'state', state, 'resolved_by', 'keyword')
  elseif not state or state == 'closed' or state == 'open' then
    -- a new conversation was written open above, with nothing to delete
    if state == 'closed' then redis.call('HSET', h, 'reopened_at', now, 'state', 'open') end
    redis.call('SADD', ACTIVE, c)
    if state then redis.call('HDEL', h, 'queued_at', 'closed_at') end
    assignment()
    route(c)
    local r = redis.call('HMGET', h, 'state', 'agent')
    state, agent_now = r[1], r[2]
  elseif state == 'queued' and (raised or not st[3]) then
    assignment()
    -- Unchanged priority and queued_at leave the score as enqueue or the last raise set it.
    redis.call('ZADD', QUEUE, 'XX', score(cur, tonumber(st[3]) or now), c)
  end
  if state == 'assigned' then push(agent_now, kind, c, raw or event_of(item, entry)) end
  return true, true
end

-- Entries of c in (last, E) that nobody applied yet, oldest first, as {entry, raw event}.
-- Only pending entries can be unapplied: everything older was delivered with or before E
-- and is either acknowledged (applied) or in the PEL.  This one asks the group; op_events
-- puts in its own, which asks once per run.
local function pending_in_group(c, last, E)
  local pend = redis.pcall('XPENDING', EVENTS, GROUP, last and ('(' .. last) or '-', '(' .. E, 512)
  if pend.err then return {} end -- no group yet: nothing can be pending
  local todo = {}
  local needle = '"conversation":"' .. c .. '"'
  for i = 1, #pend do
    local r = redis.call('XRANGE', EVENTS, pend[i][1], pend[i][1])
    local f = r[1] and r[1][2] or {}
    for j = 1, #f, 2 do
      if f[j] == 'event' and string.find(f[j + 1], needle, 1, true) then
        todo[#todo + 1] = {pend[i][1], f[j + 1]}
      end
    end
  end
  return todo
end
local pending_in = pending_in_group
local function ack_now(E) redis.call('XACK', EVENTS, GROUP, E) end
local ack = ack_now

-- Processes entry E of conversation c together with every earlier entry of c that nobody
-- processed yet (another process may still hold them), oldest first, so an agent's inbox
-- keeps the conversation's order; the later delivery of those entries then changes nothing.
-- ARGV[4] E, [5] c, [6] keyword rules, [7] the raw event, [8] flags: '1' when a keyword
-- answer resolved it, 'i' when [7] is instead E's history item as apply_event writes it,
-- '{"dir":"in","entry":"<E>","event":<raw event>}' (built by the caller, so Redis does not
-- build and hash a second copy of the event), '1i' for both; optionally E's fields, [9] kind,
-- [10] platform, [11] account, [12] external_chat_id, [13] id, [14] received_at, [15] keyword priority or '', [16...]
-- profile field/value pairs (docs/dispatcher.md).
local function op_event()
  local E, c, rules, raw, flags = ARGV[B + 4], ARGV[B + 5], ARGV[B + 6], ARGV[B + 7], ARGV[B + 8]
  local resolved, item = flags == '1' or flags == '1i', nil
  if flags == 'i' or flags == '1i' then item = raw; raw = nil end
  local h = ck(c)
  survey_out = nil
  local st = redis.call('HMGET', h, unpack(STL))
  local last = st[7]
  local done = 0
  if not last or cmp_id(E, last) > 0 then
    local todo = pending_in(c, last, E)
    local exists = false
    for _, t in ipairs(todo) do
      exists = apply_event(c, t[1], t[2], fields_of(t[2], rules), false) or exists
    end
    local fe = AN >= 9 and fields_of_argv() or fields_of(raw or event_of(item, E), rules)
    -- st still holds c's fields when nothing was applied before E.
    local cur = nil
    if #todo == 0 then cur = st end
    local ex, wrote = apply_event(c, E, raw, fe, resolved, cur, {'last_entry', E}, item)
    if not wrote and (ex or exists or redis.call('EXISTS', h) == 1) then
      redis.call('HSET', h, 'last_entry', E)
    end
    done = #todo + 1
  end
  ack(E)
  if survey_out then return {done, survey_out[1], survey_out[2]} end
  return done
end
-- ARGV[4] the number of events, [5] how they were delivered: 'read' (one XREADGROUP '>') or
-- 'claim'; then per event the count of its arguments and the arguments op_event takes from
-- its ARGV[4] on.  Each event is applied on its own: one that fails is answered with its
-- error and stays pending (not acknowledged), and the others go on.  Returns op_event's
-- answer (or the error) per event.
--
-- The PEL is read once for the run rather than once per event, and the applied entries are
-- acknowledged together at its end (two commands fewer per event).  Nothing else runs
-- meanwhile, so what an event would have found pending is: what was pending before the run
-- other than the run's own entries, plus the run's entries that failed so far (its later
-- entries are newer than the event, as reads and claims come in entry order).  A read
-- delivers the entries that follow the group's last one, all of them, so no other entry lies
-- between its oldest and its newest: the PEL is then read only below its oldest, which is
-- usually nothing (the PEL's own entries cost Redis more to answer than the run's other
-- reads).  A run out of order, or a PEL too long to read whole (512 entries below the
-- bound), falls back to asking per event.
local function op_events()
  local n, how, at, own, first, top, ordered = tonumber(ARGV[4]), ARGV[5], {}, {}, nil, nil, true
  local i = 6
  for k = 1, n do
    at[k] = i
    local E = ARGV[i + 1]
    own[E] = true
    first = first or E
    if not top or cmp_id(E, top) > 0 then top = E else ordered = false end
    i = i + tonumber(ARGV[i]) + 1
  end
  local acked = {}
  local failed = {}
  local below = how == 'read' and ordered and first or top
  local pend = below and redis.pcall('XPENDING', EVENTS, GROUP, '-', '(' .. below, 512) or {}
  if pend.err then pend = {} end
  if ordered and #pend < 512 then
    local others = {}
    for _, p in ipairs(pend) do
      if not own[p[1]] then others[#others + 1] = {p[1]} end
    end
    pending_in = function(c, last, E)
      if #others == 0 and #failed == 0 then return NONE end -- the usual case
      local todo = {}
      local needle = '"conversation":"' .. c .. '"'
      for _, o in ipairs(others) do
        if (not last or cmp_id(o[1], last) > 0) and cmp_id(o[1], E) < 0 then
          if o[2] == nil then -- its event, read once for the run
            local r = redis.call('XRANGE', EVENTS, o[1], o[1])
            local f = r[1] and r[1][2] or {}
            o[2] = false
            for j = 1, #f, 2 do if f[j] == 'event' then o[2] = f[j + 1] end end
          end
          if o[2] and string.find(o[2], needle, 1, true) then todo[#todo + 1] = {o[1], o[2]} end
        end
      end
      local k0 = #todo
      for _, f in ipairs(failed) do
        if f[3] == c and (not last or cmp_id(f[1], last) > 0) and cmp_id(f[1], E) < 0 then
          todo[#todo + 1] = {f[1], f[2]}
        end
      end
      if k0 > 0 and #todo > k0 then table.sort(todo, function(x, y) return cmp_id(x[1], y[1]) < 0 end) end
      return todo
    end
    ack = function(E) acked[#acked + 1] = E end
  end
  local out = {}
  for k = 1, n do
    i = at[k]
    B, AN = i - 3, 3 + tonumber(ARGV[i])
    local ok, r = pcall(op_event)
    if ok then
      out[k] = r
    else
      out[k] = {err = type(r) == 'table' and r.err or tostring(r)}
      local E, raw = ARGV[B + 4], ARGV[B + 7]
      if ARGV[B + 8] == 'i' or ARGV[B + 8] == '1i' then raw = event_of(raw, E) end
      failed[#failed + 1] = {E, raw, ARGV[B + 5]}
    end
  end
  if #acked > 0 then redis.call('XACK', EVENTS, GROUP, unpack(acked)) end
  return out
end
if op == 'event' then return op_event() end
if op == 'events' then return op_events() end
assignment()

-- ---- everything else ----
-- The tenant an agent belongs to ('' for the operator's agents).
local function owner(a) return redis.call('HGET', ak(a), 'tenant') or '' end
local function any_room()
  for _, a in ipairs(redis.call('SMEMBERS', AGENTS)) do
    if has_room(agent(a)) then return true end
  end
  return false
end
-- Hands queued conversations, best score first, to whoever has room; a conversation nobody
-- can serve does not block those behind it.
local function drain()
  local n = 0
  for _, c in ipairs(redis.call('ZRANGE', QUEUE, 0, 499)) do
    if not any_room() then break end
    local a = pick(conv(c))
    if a then assign_to(c, a, 'assigned'); n = n + 1 end
  end
  return n
end
local function release(c, a)
  if a and a ~= '' then redis.call('SREM', aset(a), c) end
end


-- ---- agents ----
local function requeue_agent(a)
  local n = 0
  for _, c in ipairs(redis.call('SMEMBERS', aset(a))) do
    redis.call('SREM', aset(a), c)
    if redis.call('HGET', ck(c), 'state') == 'assigned' then enqueue(c, a); n = n + 1 end
  end
  return n
end
-- ARGV[9] is the calling tenant ('' for the operator): a tenant creates agents of its own and
-- updates only those; the operator updates any and keeps its tenant, and an empty account list
-- from the operator keeps a tenant agent's accounts (empty would mean every account).
local function op_agent_put()
  local a, T, accts = ARGV[4], ARGV[9] or '', ARGV[8]
  local exists = redis.call('EXISTS', ak(a)) == 1
  if T ~= '' and exists and owner(a) ~= T then return 'no_agent' end
  if T == '' and accts == '[]' and exists and owner(a) ~= '' then
    accts = redis.call('HGET', ak(a), 'accounts') or '[]'
  end
  redis.call('HSET', ak(a), 'id', a, 'name', ARGV[5], 'capacity', ARGV[6], 'languages', ARGV[7], 'accounts', accts)
  if T ~= '' then redis.call('HSET', ak(a), 'tenant', T) end
  if redis.call('HSETNX', ak(a), 'presence', 'offline') == 1 then redis.call('HSET', ak(a), 'offline_at', now) end
  local created = redis.call('SADD', AGENTS, a)
  drain()
  return created
end
local function op_presence()
  local a, p, grace, T = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] or ''
  local cur = redis.call('HGET', ak(a), 'presence')
  if not cur or (T ~= '' and owner(a) ~= T) then return -1 end
  redis.call('HSET', ak(a), 'presence', p)
  if p == 'offline' then
    if cur ~= 'offline' then redis.call('HSET', ak(a), 'offline_at', now) end
    if grace <= 0 then requeue_agent(a) end
  else
    redis.call('HDEL', ak(a), 'offline_at')
  end
  drain()
  return 1
end
-- Run by a timer in every process: the script is atomic and idempotent, so running it in several
-- processes at once gives the same result as running it in one.
local function op_sweep()
  local grace, n = tonumber(ARGV[4]), 0
  for _, a in ipairs(redis.call('SMEMBERS', AGENTS)) do
    local h = redis.call('HMGET', ak(a), 'presence', 'offline_at')
    if h[1] == 'offline' and tonumber(h[2]) and tonumber(h[2]) + grace <= now then
      n = n + requeue_agent(a)
    end
  end
  return n + drain()
end

-- ---- conversation commands: 0 ok, or an error word the API maps to a status ----
-- ARGV[6]: the calling tenant ('' for the operator), who may name only its own agents.
local function op_assign(transfer)
  local c, a, T = ARGV[4], ARGV[5], ARGV[6] or ''
  local cv = conv(c)
  if not cv.state then return 'no_conversation' end
  local ag = agent(a)
  if not ag or (T ~= '' and owner(a) ~= T) then return 'no_agent' end
  if cv.state == 'closed' then return 'closed' end
  if transfer and cv.state ~= 'assigned' then return 'not_assigned' end
  if cv.agent == a then return 0 end
  if ag.load >= ag.capacity then return 'over_capacity' end
  release(c, cv.agent)
  if cv.agent ~= '' then push(cv.agent, 'transferred', c, life('transferred', c, {from = cv.agent, to = a})) end
  assign_to(c, a, transfer and 'transferred' or 'assigned', {from = cv.agent ~= '' and cv.agent or nil})
  drain()
  return 0
end
-- ARGV[5] the survey (docs/survey.md): '' none, 'send' to ask the customer, 'skip' when the
-- account asks but the customer cannot be reached (WhatsApp's window); ARGV[6] its comment
-- window (ms).  Answers 0, or for a survey {0, 'skip'} / {0, 'send', language, agent,
-- closed_at}: only a close that closes asks, so closing twice asks once.
local function op_close()
  local c, sv = ARGV[4], ARGV[5] or ''
  local cv = conv(c)
  if not cv.state then return 'no_conversation' end
  if cv.state == 'closed' then return 0 end
  release(c, cv.agent)
  redis.call('ZREM', QUEUE, c)
  redis.call('SREM', ACTIVE, c)
  redis.call('HDEL', ck(c), 'queued_at')
  redis.call('HSET', ck(c), 'state', 'closed', 'agent', '', 'closed_at', now, 'unread', 0)
  local out = 0
  if sv == 'send' or sv == 'skip' then
    -- a new survey for this closing; an earlier closing's answer gives way to it
    redis.call('HDEL', ck(c), 'survey_score', 'survey_comment', 'survey_answered_at',
               'survey_commented_at')
    redis.call('HSET', ck(c), 'survey_state', sv == 'send' and 'pending' or 'skipped',
               'survey_at', now, 'survey_agent', cv.agent, 'survey_window', tonumber(ARGV[6]) or 0)
    out = sv == 'send' and {0, 'send', cv.language, cv.agent, tostring(now)} or {0, 'skip'}
  end
  push(cv.agent, 'closed', c, life('closed', c, {agent = cv.agent}))
  drain()
  return out
end
local function op_priority()
  local c, pr = ARGV[4], ARGV[5]
  local cv = conv(c)
  if not cv.state then return 'no_conversation' end
  redis.call('HSET', ck(c), 'priority', pr)
  if cv.state == 'queued' then
    redis.call('ZADD', QUEUE, 'XX', score(pr, tonumber(redis.call('HGET', ck(c), 'queued_at')) or now), c)
    drain()
  elseif cv.state == 'assigned' then
    push(cv.agent, 'priority', c, life('priority', c, {priority = pr}))
  end
  return 0
end
-- A reply read from P:outbox by the dispatcher's group: ARGV[4] c, [5] message id, [6] agent
-- or '', [7] rule of an automatic answer or '', [8] the outbox, [9] the group, [10] the
-- entry, [11] the reply's text or ''.  Recorded and acknowledged in one step, and only while the entry is pending, so a
-- reply is recorded once however often its entry is delivered (a crash, a takeover).
-- The conversations an agent handled: one member per agent and conversation, scored by the
-- last reply, so counting a window's members counts distinct conversations answered in it.
local function handled(c, a)
  local k = P .. ':stats:handled'
  redis.call('ZADD', k, now, a .. '|' .. (string.match(c, '^([^:]+:[^:]+):') or '') .. '|' .. c)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - 86400000)
end
local function record_reply()
  local c, id, who = ARGV[4], ARGV[5], ARGV[6]
  local h = ck(c)
  local state = redis.call('HGET', h, 'state')
  if not state then
    local pl, acct, chat = string.match(c, '^([^:]+):([^:]+):(.+)$')
    if not pl then return -1 end
    redis.call('HSET', h, 'id', c, 'platform', pl, 'account', acct, 'chat', chat, 'state', 'open',
               'priority', 'normal', 'unread', 0, 'created_at', now)
    redis.call('ZADD', CONVS, 'NX', now, c)
    redis.call('SADD', ACTIVE, c)
  end
  local item = {dir = 'out', id = id, at = now}
  if who ~= '' then item.agent = who end
  -- The reply's text, so a transcript shows what was answered, whoever wrote to the outbox.
  if ARGV[11] and ARGV[11] ~= '' then item.text = ARGV[11] end
  local rule = ARGV[7]
  if rule and rule ~= '' then item.automatic = true; item.rule = rule end
  if redis.call('RPUSH', items(c), cjson.encode(item)) > HISTORY + SLACK then
    redis.call('LTRIM', items(c), -HISTORY, -1)
  end
  if item.automatic then -- not an agent's answer: no first response, unread kept
    if state == 'assigned' then
      push(redis.call('HGET', h, 'agent'), 'reply', c, life('reply', c, {id = id, automatic = true, rule = rule}))
    end
    return -1
  end
  -- Whose answer it is: the agent named on the reply, else the one it is assigned to.
  local by = who ~= '' and who or (state == 'assigned' and redis.call('HGET', h, 'agent')) or ''
  handled(c, by)
  local first = tonumber(redis.call('HGET', h, 'first_message_at'))
  -- The answer is this reply's first response time (ms) for the caller's histogram, -1 when not the first.
  local frt = -1
  if first and redis.call('HSETNX', h, 'first_response_at', now) == 1 then
    stat('frt', c, now - first, by)
    frt = math.max(0, now - first)
  end
  redis.call('HSET', h, 'unread', 0, 'last_reply_at', now)
  if state == 'assigned' then
    push(redis.call('HGET', h, 'agent'), 'reply', c, life('reply', c, {id = id, agent = item.agent}))
  end
  return frt
end
local function op_reply()
  local S, G, E = ARGV[8], ARGV[9], ARGV[10]
  if #redis.call('XPENDING', S, G, E, E, 1) == 0 then return -1 end
  local frt = record_reply()
  redis.call('XACK', S, G, E)
  return frt
end

-- ---- reads ----
-- ARGV[10]: the calling tenant's accounts, 'platform:account' lines ('' = every account).
-- Filtering here, while scanning, fills a tenant's page as fully as the operator's.
local function op_list()
  local st, ag, acct, pl = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local cursor, limit = tonumber(ARGV[8]) or 0, tonumber(ARGV[9]) or 50
  local scope = nil
  if ARGV[10] and ARGV[10] ~= '' then
    scope = {}
    for s in string.gmatch(ARGV[10], '[^\n]+') do scope[s] = true end
  end
  local function match(c)
    local h = redis.call('HMGET', ck(c), 'state', 'agent', 'account', 'platform')
    return (st == '' or h[1] == st) and (ag == '' or h[2] == ag) and (acct == '' or h[3] == acct)
       and (pl == '' or h[4] == pl) and (not scope or scope[(h[4] or '') .. ':' .. (h[3] or '')])
  end
  -- The cursor is the position of the next match, found within the scan budget, so the last
  -- page of a filtered list ends with no cursor rather than leading to an empty page.
  local out, scanned, pos, total = {''}, 0, cursor, redis.call('ZCARD', CONVS)
  local full = false
  while not full and pos < total and scanned < 2000 do
    local ids = redis.call('ZRANGE', CONVS, pos, pos + 99)
    if #ids == 0 then break end
    for _, c in ipairs(ids) do
      if match(c) then
        if #out - 1 >= limit then full = true; break end
        out[#out + 1] = redis.call('HGETALL', ck(c))
      end
      pos = pos + 1; scanned = scanned + 1
      if scanned >= 2000 then break end
    end
  end
  if pos < total then out[1] = tostring(pos) end
  return out
end
local function op_get()
  local c = ARGV[4]
  local h = redis.call('HGETALL', ck(c))
  if #h == 0 then return nil end
  local list = redis.call('LRANGE', items(c), -HISTORY, -1)
  local st = {}
  for i, it in ipairs(list) do
    local id = string.match(it, '^{[^{]*"id":"([^"]+)"')
    st[i] = ''
    if string.sub(it, 1, 12) ~= '{"dir":"in",' and id then
      st[i] = redis.call('HGET', P .. ':msg:{' .. id .. '}', 'status') or ''
    end
  end
  return {h, list, st}
end
-- ARGV[4]: one agent id or '' for all; ARGV[5]: the calling tenant ('' = the operator, sees all).
local function op_agents()
  local out, T = {}, ARGV[5] or ''
  local ids = redis.call('SMEMBERS', AGENTS)
  table.sort(ids)
  for _, a in ipairs(ids) do
    if (ARGV[4] == '' or ARGV[4] == a) and (T == '' or owner(a) == T) then
      local h = redis.call('HGETALL', ak(a))
      h[#h + 1] = 'load'; h[#h + 1] = tostring(redis.call('SCARD', aset(a)))
      out[#out + 1] = {h, redis.call('SMEMBERS', aset(a))}
    end
  end
  return out
end
local function pct(kind, since)
  local vals = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. ':stats:' .. kind, since, '+inf')) do
    vals[#vals + 1] = tonumber(string.match(m, '^(%-?%d+)'))
  end
  if #vals == 0 then return {'', '', '0'} end
  table.sort(vals)
  local function at(q) return tostring(vals[math.max(1, math.ceil(q * #vals))]) end
  return {at(0.5), at(0.9), tostring(#vals)}
end
local function op_stats()
  local online, assigned = 0, 0
  for _, a in ipairs(redis.call('SMEMBERS', AGENTS)) do
    if redis.call('HGET', ak(a), 'presence') == 'online' then online = online + 1 end
    assigned = assigned + redis.call('SCARD', aset(a))
  end
  return {redis.call('SCARD', ACTIVE), redis.call('ZCARD', QUEUE), assigned, online,
          pct('frt', now - 3600000), pct('frt', now - 86400000),
          pct('wait', now - 3600000), pct('wait', now - 86400000)}
end

-- ---- queue position and expected wait (docs/business-hours.md) ----
-- Whether a queued conversation should be told its place now: nil, or {position, minutes,
-- queued_at, n} where n numbers the messages of this wait (1 first, more only when the
-- estimate at least doubled).  It decides only: qwait_told records what was sent once it is
-- queued, so a crash in between repeats the same n and the client id makes that harmless.
local function qwait_key(c) return P .. ':dispatch:qwait:{' .. c .. '}' end
local function op_qwait()
  local c, def = ARGV[4], tonumber(ARGV[5]) or 300000
  local h = redis.call('HMGET', ck(c), 'state', 'queued_at')
  local rank = redis.call('ZRANK', QUEUE, c)
  if h[1] ~= 'queued' or not h[2] or not rank then return nil end
  local online = 0
  for _, a in ipairs(redis.call('SMEMBERS', AGENTS)) do
    if redis.call('HGET', ak(a), 'presence') == 'online' then online = online + 1 end
  end
  local m = pct('wait', now - 3600000)[1]
  if m == '' then m = pct('wait', now - 86400000)[1] end
  local per = tonumber(m) or def
  local mins = math.max(1, math.ceil(per * (rank + 1) / math.max(1, online) / 60000))
  local told = redis.call('HMGET', qwait_key(c), 'at', 'minutes', 'n')
  local n = 1
  if told[1] == h[2] then
    if mins < 2 * (tonumber(told[2]) or 0) then return nil end
    n = (tonumber(told[3]) or 0) + 1
  end
  return {rank + 1, mins, h[2], n}
end
local function op_qwait_told()
  local c, qa, mins, n = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
  local cur = redis.call('HMGET', qwait_key(c), 'at', 'n')
  if cur[1] == qa and (tonumber(cur[2]) or 0) >= n then return 0 end
  redis.call('HSET', qwait_key(c), 'at', qa, 'minutes', mins, 'n', n)
  redis.call('EXPIRE', qwait_key(c), 7 * 86400)
  return 1
end

if op == 'agent_put' then return op_agent_put()
elseif op == 'presence' then return op_presence()
elseif op == 'sweep' then return op_sweep()
elseif op == 'assign' then return op_assign(false)
elseif op == 'transfer' then return op_assign(true)
elseif op == 'close' then return op_close()
elseif op == 'priority' then return op_priority()
elseif op == 'reply' then return op_reply()
elseif op == 'list' then return op_list()
elseif op == 'get' then return op_get()
elseif op == 'agents' then return op_agents()
elseif op == 'stats' then return op_stats()
elseif op == 'qwait' then return op_qwait()
elseif op == 'qwait_told' then return op_qwait_told()
end
return redis.error_reply('unknown operation')
