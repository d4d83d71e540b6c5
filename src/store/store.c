#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis.h"
#include "util/id.h"
#include "util/json.h"
#include "util/parse.h"

/* Outbound ids and idempotency keys outlive the longest receipt delay we expect (a message
 * read weeks later still finds its record). */
#define EXT_INDEX_TTL_S "2592000"
#define CLIENT_ID_TTL_S "604800"

/* Shared by every script that changes a delivery state, so the forward-only rule exists
 * once.  ARGV[1] is always the key prefix. */
#define LUA_COMMON                                                                             \
    "local P = ARGV[1]\n"                                                                      \
    "local RANK = {queued = 0, sent = 1, delivered = 2, read = 3}\n"                           \
    "local function forward(cur, new)\n"                                                       \
    "  if cur == new then return false end\n"                                                  \
    "  if cur == 'failed' then return new == 'delivered' or new == 'read' end\n"               \
    "  if new == 'failed' then return cur == 'queued' or cur == 'sent' end\n"                  \
    "  local a, b = RANK[cur], RANK[new]\n"                                                    \
    "  if a == nil or b == nil then return false end\n"                                        \
    "  return b > a\n"                                                                         \
    "end\n"                                                                                    \
    "local function advance(id, new, ext, ecode, emsg, attempt, now)\n"                        \
    "  local mk = P .. ':msg:{' .. id .. '}'\n"                                                \
    "  local cur = redis.call('HGET', mk, 'status')\n"                                         \
    "  if not cur then return nil, false end\n"                                                \
    "  if not forward(cur, new) then return cur, false end\n"                                  \
    "  local f = {'status', new, 'updated', now}\n"                                            \
    "  if ext and ext ~= '' and redis.call('HEXISTS', mk, 'external_message_id') == 0 then\n"  \
    "    f[#f + 1] = 'external_message_id'; f[#f + 1] = ext\n"                                 \
    "  end\n"                                                                                  \
    "  if attempt and attempt ~= '' then f[#f + 1] = 'attempt'; f[#f + 1] = attempt end\n"     \
    "  if new == 'failed' then\n"                                                              \
    "    f[#f + 1] = 'error_code'; f[#f + 1] = ecode or ''\n"                                  \
    "    f[#f + 1] = 'error_message'; f[#f + 1] = emsg or ''\n"                                \
    "  else\n"                                                                                 \
    "    redis.call('HDEL', mk, 'error_code', 'error_message')\n"                              \
    "  end\n"                                                                                  \
    "  redis.call('HSET', mk, unpack(f))\n"                                                    \
    "  local rec = redis.call('HMGET', mk, 'conversation', 'external_message_id', 'attempt')\n" \
    "  local st = {v = 1, id = id, conversation = rec[1], status = new,\n"                     \
    "    attempt = tonumber(rec[3] or '0'), timestamp = math.floor(tonumber(now) / 1000),\n"   \
    "    timestamp_ms = tonumber(now)}\n"                                                      \
    "  if rec[2] then st.external_message_id = rec[2] end\n"                                   \
    "  if new == 'failed' then st.error = {code = ecode or '', message = emsg or ''} end\n"    \
    "  local js = cjson.encode(st)\n"                                                          \
    "  redis.call('RPUSH', mk .. ':history', js)\n"                                            \
    "  redis.call('XADD', P .. ':status', '*', 'status', js)\n"                                \
    "  return new, true\n"                                                                     \
    "end\n"

/* Two scripts store webhooks.  Both take the full dedupe key of each event from dedupe_key()
 * below, so an event first stored by one is a dedupe hit in the other. */

/* No receipt and no cursor, as in nearly every webhook: without the receipt machinery it
 * costs Redis about a tenth less per webhook than the general one (bench/redis_cost.sh).
 * ARGV: ttl maxlen events-key, then per event: dedupe key, event JSON. */
const char db_store_lua_ingest_plain[] =
    "local ttl, maxlen, stream = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local written = 0\n"
    "for i = 4, #ARGV, 2 do\n"
    "  if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then\n"
    "    if maxlen > 0 then\n"
    "      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', ARGV[i + 1])\n"
    "    else\n"
    "      redis.call('XADD', stream, '*', 'event', ARGV[i + 1])\n"
    "    end\n"
    "    written = written + 1\n"
    "  end\n"
    "end\n"
    "return written\n";

/* Any webhook.  ARGV: P ttl maxlen now platform account cursor, then per event: dedupe key,
 * event JSON, receipt status ('' when not a receipt), external id, error code, error
 * message. */
const char db_store_lua_ingest[] =
    LUA_COMMON
    "local ttl, maxlen, now = ARGV[2], tonumber(ARGV[3]), ARGV[4]\n"
    "local plat, acct, cursor = ARGV[5], ARGV[6], ARGV[7]\n"
    "local written = 0\n"
    "for i = 8, #ARGV, 6 do\n"
    "  if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then\n"
    "    if maxlen > 0 then\n"
    "      redis.call('XADD', P .. ':events', 'MAXLEN', '~', maxlen, '*', 'event', ARGV[i + 1])\n"
    "    else\n"
    "      redis.call('XADD', P .. ':events', '*', 'event', ARGV[i + 1])\n"
    "    end\n"
    "    written = written + 1\n"
    "    local rs = ARGV[i + 2]\n"
    "    if rs ~= '' then\n"
    "      local ek = plat .. ':' .. acct .. ':' .. ARGV[i + 3]\n"
    "      local id = redis.call('GET', P .. ':ext:' .. ek)\n"
    "      if id then\n"
    "        advance(id, rs, nil, ARGV[i + 4], ARGV[i + 5], nil, now)\n"
    "      else\n"
    /* The platform reported on a send whose answer we have not processed yet (Meta does
     * this); keep it until the sender records the external id. */
    "        local early = P .. ':early:' .. ek\n"
    "        redis.call('HSET', early, rs, cjson.encode({code = ARGV[i + 4], message = ARGV[i + 5]}))\n"
    "        redis.call('EXPIRE', early, ttl)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if cursor ~= '' then redis.call('SET', P .. ':cursor:' .. plat .. ':' .. acct, cursor) end\n"
    "return written\n";

/* ARGV: P id client_id conversation platform account command now client_ttl.
 * Returns {id, status, created}. */
static const char lua_enqueue[] =
    LUA_COMMON
    "local id, cid, now = ARGV[2], ARGV[3], ARGV[8]\n"
    "if cid ~= '' then\n"
    "  local ck = P .. ':client:' .. cid\n"
    "  local first = redis.call('GET', ck)\n"
    "  if first then\n"
    "    return {first, redis.call('HGET', P .. ':msg:{' .. first .. '}', 'status') or 'queued', 0}\n"
    "  end\n"
    "  redis.call('SET', ck, id, 'EX', ARGV[9])\n"
    "end\n"
    "local mk = P .. ':msg:{' .. id .. '}'\n"
    "if redis.call('EXISTS', mk) == 1 then return {id, redis.call('HGET', mk, 'status'), 0} end\n"
    "redis.call('HSET', mk, 'id', id, 'status', 'queued', 'conversation', ARGV[4],\n"
    "  'platform', ARGV[5], 'account', ARGV[6], 'created', now, 'updated', now, 'attempt', '0')\n"
    "local js = cjson.encode({v = 1, id = id, conversation = ARGV[4], status = 'queued',\n"
    "  attempt = 0, timestamp = math.floor(tonumber(now) / 1000), timestamp_ms = tonumber(now)})\n"
    "redis.call('RPUSH', mk .. ':history', js)\n"
    "redis.call('XADD', P .. ':status', '*', 'status', js)\n"
    "if ARGV[7] ~= '' then redis.call('XADD', P .. ':outbox', '*', 'command', ARGV[7], 'id', id) end\n"
    "return {id, 'queued', 1}\n";

/* ARGV: P id new ecode emsg attempt now platform account ext_ttl n ext... */
static const char lua_set_status[] =
    LUA_COMMON
    "local id, new, now = ARGV[2], ARGV[3], ARGV[7]\n"
    "local plat, acct, n = ARGV[8], ARGV[9], tonumber(ARGV[11])\n"
    "for i = 1, n do\n"
    "  redis.call('SET', P .. ':ext:' .. plat .. ':' .. acct .. ':' .. ARGV[11 + i], id, 'EX', ARGV[10])\n"
    "end\n"
    "local res, changed = advance(id, new, ARGV[12], ARGV[4], ARGV[5], ARGV[6], now)\n"
    "if res == nil then return {id, '', 0} end\n"
    "for i = 1, n do\n"
    "  local early = P .. ':early:' .. plat .. ':' .. acct .. ':' .. ARGV[11 + i]\n"
    "  local h = redis.call('HGETALL', early)\n"
    "  for j = 1, #h, 2 do\n"
    "    local e = cjson.decode(h[j + 1])\n"
    "    local _, c = advance(id, h[j], nil, e.code, e.message, nil, now)\n"
    "    changed = changed or c\n"
    "  end\n"
    "  redis.call('DEL', early)\n"
    "end\n"
    "return {id, redis.call('HGET', P .. ':msg:{' .. id .. '}', 'status'), changed and 1 or 0}\n";

/* ARGV: P id-or-'' ext-key-suffix-or-''.  Returns {} or {fields..., history list}. */
static const char lua_get[] =
    "local P = ARGV[1]\n"
    "local id = ARGV[2]\n"
    "if id == '' then\n"
    "  id = redis.call('GET', P .. ':ext:' .. ARGV[3])\n"
    "  if not id then return {} end\n"
    "end\n"
    "local mk = P .. ':msg:{' .. id .. '}'\n"
    "local h = redis.call('HGETALL', mk)\n"
    "if #h == 0 then return {} end\n"
    "return {h, redis.call('LRANGE', mk .. ':history', 0, -1)}\n";

/* ARGV: P group entry_id command reason now */
static const char lua_dead[] =
    "local P = ARGV[1]\n"
    "redis.call('XADD', P .. ':dead', '*', 'command', ARGV[4], 'reason', ARGV[5],\n"
    "  'entry', ARGV[3], 'at', ARGV[6])\n"
    "return redis.call('XACK', P .. ':outbox', ARGV[2], ARGV[3])\n";

struct db_store {
    struct db_redis *redis;
    int wait_replicas, wait_timeout_ms;
    char *prefix;
    char ttl[24];
    char maxlen[24];
    struct db_redis_script *ingest, *ingest_plain, *enqueue, *set_status, *get, *dead;
};

struct db_store *db_store_new(struct db_redis *r, const char *prefix, int dedupe_ttl_s,
                              long events_maxlen)
{
    struct db_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->redis = r;
    s->prefix = strdup(prefix);
    snprintf(s->ttl, sizeof s->ttl, "%d", dedupe_ttl_s);
    snprintf(s->maxlen, sizeof s->maxlen, "%ld", events_maxlen);
    s->ingest = db_redis_script_new(db_store_lua_ingest);
    s->ingest_plain = db_redis_script_new(db_store_lua_ingest_plain);
    s->enqueue = db_redis_script_new(lua_enqueue);
    s->set_status = db_redis_script_new(lua_set_status);
    s->get = db_redis_script_new(lua_get);
    s->dead = db_redis_script_new(lua_dead);
    if (!s->prefix || !s->ingest || !s->ingest_plain || !s->enqueue || !s->set_status ||
        !s->get || !s->dead) {
        db_store_free(s);
        return NULL;
    }
    return s;
}

void db_store_free(struct db_store *s)
{
    if (!s) return;
    db_redis_script_free(s->ingest);
    db_redis_script_free(s->ingest_plain);
    db_redis_script_free(s->enqueue);
    db_redis_script_free(s->set_status);
    db_redis_script_free(s->get);
    db_redis_script_free(s->dead);
    free(s->prefix);
    free(s);
}

const char *db_store_key(const struct db_store *s, const char *suffix, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%s", s->prefix, suffix);
    return buf;
}

/* ---- argument vectors ---- */

struct argv {
    const char **v;
    size_t *len;
    char **owned; /* strings this vector allocated (freed with it) */
    size_t n, cap, n_owned;
};

/* Appends s; with take, the vector owns s from now on (also when the push fails, when s is
 * freed at once). */
static int argv_push(struct argv *a, const char *s, size_t len, int take)
{
    if (take && !s) return -1;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        const char **v = realloc(a->v, cap * sizeof *v);
        size_t *l = v ? realloc(a->len, cap * sizeof *l) : NULL;
        char **o = l ? realloc(a->owned, cap * sizeof *o) : NULL;
        if (v) a->v = v;
        if (l) a->len = l;
        if (o) a->owned = o;
        if (!o) {
            if (take) free((char *)s);
            return -1;
        }
        a->cap = cap;
    }
    a->v[a->n] = s ? s : "";
    a->len[a->n] = s ? len : 0;
    a->n++;
    if (take && s) a->owned[a->n_owned++] = (char *)s;
    return 0;
}

static int argv_str(struct argv *a, const char *s)
{
    return argv_push(a, s, s ? strlen(s) : 0, 0);
}

static void argv_free(struct argv *a)
{
    for (size_t i = 0; i < a->n_owned; i++) free(a->owned[i]);
    free(a->v);
    free(a->len);
    free(a->owned);
}

/* ---- callbacks ---- */

struct op {
    struct db_store *store;
    union {
        db_store_ingest_fn ingest;
        db_store_enqueue_fn enqueue;
        db_store_json_fn json;
        db_store_str_fn str;
    } cb;
    void *arg;
    long long written; /* ingest: held while WAIT runs */
};

static struct op *op_new(struct db_store *s, void *arg)
{
    struct op *o = calloc(1, sizeof *o);
    if (o) {
        o->store = s;
        o->arg = arg;
    }
    return o;
}

static void wait_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    /* Fewer replicas than asked hold the write: a failover now could lose it, so it does
     * not count as accepted (the platform retries; the dedupe makes that a no-op). */
    if (status == DB_OK && (reply->type != REDIS_REPLY_INTEGER ||
                            reply->integer < o->store->wait_replicas))
        status = DB_EAGAIN;
    if (o->cb.ingest) o->cb.ingest(status, o->written, o->arg);
    free(o);
}

static void ingest_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    long long written = 0;
    if (status == DB_OK && reply->type == REDIS_REPLY_INTEGER) written = reply->integer;
    else if (status == DB_OK) status = DB_EAGAIN; /* an error reply: OOM, READONLY, ... */
    if (status == DB_OK && o->store->wait_replicas > 0) {
        o->written = written;
        db_redis_cmd(o->store->redis, wait_reply, o, "WAIT %d %d", o->store->wait_replicas,
                     o->store->wait_timeout_ms);
        return;
    }
    if (o->cb.ingest) o->cb.ingest(status, written, o->arg);
    free(o);
}

void db_store_set_wait(struct db_store *s, int replicas, int command_timeout_ms)
{
    s->wait_replicas = replicas;
    /* The server must answer a WAIT that runs out before the client's timer for the same
     * command fires: a client-side timeout drops the whole connection (its replies would be
     * out of step), so with a replica down every webhook would cost a reconnect. */
    s->wait_timeout_ms = command_timeout_ms / 2 > 0 ? command_timeout_ms / 2 : 1;
}

/* The event as stored: its members, then the gateway id and arrival time (db_event_validate
 * made sure it has neither).  The caller's object is left as it was (a retried batch gets new
 * ids only for what was not written).  The two members are spliced into the dump instead of
 * set on a copy of the object, which cost as much as the dump itself.  malloc'd, caller frees;
 * NULL on ENOMEM. */
static char *stored_text(const json_t *ev, const char *id, const char *now)
{
    char *body = db_json_dump(ev);
    size_t n = body ? strlen(body) : 0;
    if (n < 2 || body[n - 1] != '}') {
        free(body);
        return NULL;
    }
    /* id is base32 and now is digits: neither needs escaping */
    size_t extra = strlen(",\"id\":\"\",\"received_at\":}") + strlen(id) + strlen(now);
    char *text = realloc(body, n + extra + 1);
    if (!text) {
        free(body);
        return NULL;
    }
    snprintf(text + n - 1, extra + 2, "%s\"id\":\"%s\",\"received_at\":%s}", n > 2 ? "," : "", id,
             now);
    return text;
}

/* The dedupe key of one event: "<prefix>:dedupe:<platform>:<account>:<event's key>".
 * malloc'd, caller frees; NULL on ENOMEM. */
static char *dedupe_key(const struct db_store *s, const char *platform, const char *account,
                        const char *key)
{
    char *k;
    return asprintf(&k, "%s:dedupe:%s:%s:%s", s->prefix, platform, account, key) < 0 ? NULL : k;
}

static int is_receipt(const json_t *ev)
{
    const char *kind = db_json_str(ev, "kind");
    return kind && strcmp(kind, "receipt") == 0;
}

/* The receipt arguments of the general script for one event. */
static int push_receipt_args(struct argv *a, const json_t *ev)
{
    int receipt = is_receipt(ev);
    json_t *err = json_object_get(ev, "error");
    json_t *code = json_object_get(err, "code");
    char codebuf[48] = "";
    if (json_is_string(code)) snprintf(codebuf, sizeof codebuf, "%s", json_string_value(code));
    else if (json_is_integer(code))
        snprintf(codebuf, sizeof codebuf, "%" JSON_INTEGER_FORMAT, json_integer_value(code));
    const char *emsg = db_json_str(err, "title");
    if (!emsg) emsg = db_json_str(err, "message");
    return argv_str(a, receipt ? db_json_str(ev, "status") : "") ||
           argv_str(a, receipt ? db_json_str(ev, "external_message_id") : "") ||
           argv_push(a, strdup(codebuf), strlen(codebuf), 1) || argv_str(a, emsg);
}

void db_store_ingest(struct db_store *s, const char *platform, const char *account,
                     const struct db_event_list *events, const char *cursor_value,
                     db_store_ingest_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    struct argv a = {0};
    char now[24], stream[96]; /* the prefix is at most 64 bytes (config.c) */
    int rc = o ? DB_OK : DB_ENOMEM;
    if (o) o->cb.ingest = cb;
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    if (!cursor_value) cursor_value = "";
    int plain = !*cursor_value;
    for (size_t i = 0; plain && i < events->n; i++) plain = !is_receipt(events->v[i].json);
    db_store_key(s, "events", stream, sizeof stream);
    if (rc == DB_OK &&
        (plain ? argv_str(&a, s->ttl) || argv_str(&a, s->maxlen) || argv_str(&a, stream)
               : argv_str(&a, s->prefix) || argv_str(&a, s->ttl) || argv_str(&a, s->maxlen) ||
                     argv_str(&a, now) || argv_str(&a, platform) || argv_str(&a, account) ||
                     argv_str(&a, cursor_value)))
        rc = DB_ENOMEM;
    for (size_t i = 0; rc == DB_OK && i < events->n; i++) {
        json_t *ev = events->v[i].json;
        struct db_err e = {0};
        if (db_event_validate(ev, &e) != DB_OK) {
            rc = DB_EINVAL;
            break;
        }
        char id[DB_ID_LEN + 1];
        db_id_new(id);
        char *dk = dedupe_key(s, platform, account, events->v[i].dedupe_key);
        char *text = stored_text(ev, id, now);
        /* both pushed, so the vector owns (or has freed) both whatever fails */
        int bad = argv_push(&a, dk, dk ? strlen(dk) : 0, 1);
        bad |= argv_push(&a, text, text ? strlen(text) : 0, 1);
        if (bad || (!plain && push_receipt_args(&a, ev))) rc = DB_ENOMEM;
    }
    if (rc != DB_OK) {
        argv_free(&a);
        free(o);
        if (cb) cb(rc, 0, arg);
        return;
    }
    db_redis_eval(s->redis, plain ? s->ingest_plain : s->ingest, ingest_reply, o, 0, NULL,
                  (int)a.n, a.v, a.len);
    argv_free(&a);
}

static void cursor_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    const char *v = NULL;
    if (status == DB_OK && reply->type == REDIS_REPLY_STRING) v = reply->str;
    else if (status == DB_OK && reply->type == REDIS_REPLY_ERROR) status = DB_EAGAIN;
    o->cb.str(status, v, o->arg);
    free(o);
}

void db_store_get_cursor(struct db_store *s, const char *platform, const char *account,
                         db_store_str_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    if (!o) {
        cb(DB_ENOMEM, NULL, arg);
        return;
    }
    o->cb.str = cb;
    db_redis_cmd(s->redis, cursor_reply, o, "GET %s:cursor:%s:%s", s->prefix, platform, account);
}

/* {id, status, created} replies of enqueue, adopt and set_status. */
static void triple_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        const redisReply *st = reply->element[1];
        o->cb.enqueue(DB_OK, reply->element[0]->str,
                      st->type == REDIS_REPLY_STRING && st->len ? st->str : NULL,
                      (int)reply->element[2]->integer, o->arg);
    } else {
        o->cb.enqueue(status == DB_OK ? DB_EAGAIN : status, NULL, NULL, 0, o->arg);
    }
    free(o);
}

static void enqueue_common(struct db_store *s, const char *id, const char *client_id,
                           const char *conversation, const char *platform, const char *account,
                           const char *command_json, db_store_enqueue_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    if (!o) {
        cb(DB_ENOMEM, NULL, NULL, 0, arg);
        return;
    }
    o->cb.enqueue = cb;
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    const char *args[] = {s->prefix, id,         client_id ? client_id : "", conversation,
                          platform,  account,    command_json ? command_json : "",
                          now,       CLIENT_ID_TTL_S};
    db_redis_eval(s->redis, s->enqueue, triple_reply, o, 0, NULL, 9, args, NULL);
}

void db_store_enqueue(struct db_store *s, const char *id, const char *client_id,
                      const char *conversation, const char *platform, const char *account,
                      const char *command_json, db_store_enqueue_fn cb, void *arg)
{
    enqueue_common(s, id, client_id, conversation, platform, account, command_json, cb, arg);
}

void db_store_adopt(struct db_store *s, const char *id, const char *conversation,
                    const char *platform, const char *account, db_store_enqueue_fn cb,
                    void *arg)
{
    enqueue_common(s, id, NULL, conversation, platform, account, NULL, cb, arg);
}

void db_store_set_status(struct db_store *s, const char *id, const char *platform,
                         const char *account, const char *new_status,
                         const char *const *ext_ids, size_t n_ext, const char *err_code,
                         const char *err_msg, int attempt, db_store_enqueue_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    struct argv a = {0};
    char now[24], att[16], n[16];
    if (!o) goto nomem;
    o->cb.enqueue = cb;
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    snprintf(att, sizeof att, "%d", attempt);
    snprintf(n, sizeof n, "%zu", n_ext);
    if (argv_str(&a, s->prefix) || argv_str(&a, id) || argv_str(&a, new_status) ||
        argv_str(&a, err_code) || argv_str(&a, err_msg) ||
        argv_str(&a, attempt >= 0 ? att : "") || argv_str(&a, now) || argv_str(&a, platform) ||
        argv_str(&a, account) || argv_str(&a, EXT_INDEX_TTL_S) || argv_str(&a, n))
        goto nomem;
    for (size_t i = 0; i < n_ext; i++)
        if (argv_str(&a, ext_ids[i])) goto nomem;
    db_redis_eval(s->redis, s->set_status, triple_reply, o, 0, NULL, (int)a.n, a.v, a.len);
    argv_free(&a);
    return;
nomem:
    argv_free(&a);
    free(o);
    cb(DB_ENOMEM, NULL, NULL, 0, arg);
}

/* Turns the {hash fields, history} reply of lua_get into the API's view of a message. */
static json_t *message_view(const redisReply *r)
{
    const redisReply *h = r->element[0], *hist = r->element[1];
    json_t *obj = json_object();
    json_t *error = NULL;
    const char *ecode = NULL, *emsg = NULL;
    if (!obj) return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (!k || !v) continue;
        if (strcmp(k, "error_code") == 0) ecode = v;
        else if (strcmp(k, "error_message") == 0) emsg = v;
        else if (strcmp(k, "attempt") == 0 || strcmp(k, "created") == 0 ||
                 strcmp(k, "updated") == 0)
            json_object_set_new(obj, k, json_integer(atoll(v)));
        else if (strcmp(k, "automatic") == 0 || strcmp(k, "resolve") == 0) {
            int b = 0;
            (void)db_parse_bool(v, &b); /* anything else reads as false */
            json_object_set_new(obj, k, json_boolean(b));
        }
        else
            json_object_set_new(obj, k, json_string(v));
    }
    if (ecode || emsg) error = json_pack("{s:s, s:s}", "code", ecode ? ecode : "", "message",
                                         emsg ? emsg : "");
    json_object_set_new(obj, "error", error ? error : json_null());
    if (!json_object_get(obj, "external_message_id"))
        json_object_set_new(obj, "external_message_id", json_null());
    json_t *history = json_array();
    for (size_t i = 0; history && i < hist->elements; i++) {
        json_t *entry = json_loadb(hist->element[i]->str, hist->element[i]->len, 0, NULL);
        if (entry) json_array_append_new(history, entry);
    }
    json_object_set_new(obj, "history", history ? history : json_array());
    return obj;
}

static void get_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        json_t *obj = message_view(reply);
        o->cb.json(obj ? DB_OK : DB_ENOMEM, obj, o->arg);
        json_decref(obj);
    } else if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY) {
        o->cb.json(DB_ENOTFOUND, NULL, o->arg);
    } else {
        o->cb.json(status == DB_OK ? DB_EAGAIN : status, NULL, o->arg);
    }
    free(o);
}

static void get_common(struct db_store *s, const char *id, const char *ext_suffix,
                       db_store_json_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    if (!o) {
        cb(DB_ENOMEM, NULL, arg);
        return;
    }
    o->cb.json = cb;
    const char *args[] = {s->prefix, id ? id : "", ext_suffix ? ext_suffix : ""};
    db_redis_eval(s->redis, s->get, get_reply, o, 0, NULL, 3, args, NULL);
}

void db_store_get_message(struct db_store *s, const char *id, db_store_json_fn cb, void *arg)
{
    get_common(s, id, NULL, cb, arg);
}

void db_store_get_by_external(struct db_store *s, const char *platform, const char *account,
                              const char *external_id, db_store_json_fn cb, void *arg)
{
    size_t n = strlen(platform) + strlen(account) + strlen(external_id) + 3;
    char *suffix = malloc(n);
    if (!suffix) {
        cb(DB_ENOMEM, NULL, arg);
        return;
    }
    snprintf(suffix, n, "%s:%s:%s", platform, account, external_id);
    get_common(s, NULL, suffix, cb, arg);
    free(suffix);
}

void db_store_dead_letter(struct db_store *s, const char *group, const char *entry_id,
                          const char *command_json, const char *reason,
                          db_store_ingest_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    if (!o) {
        if (cb) cb(DB_ENOMEM, 0, arg);
        return;
    }
    o->cb.ingest = cb;
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    const char *args[] = {s->prefix, group, entry_id, command_json ? command_json : "", reason,
                          now};
    db_redis_eval(s->redis, s->dead, ingest_reply, o, 0, NULL, 6, args, NULL);
}
