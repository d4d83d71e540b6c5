#include "store/store.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "store/ingest_tx.h"
#include "util/id.h"
#include "util/json.h"
#include "util/join.h"
#include "util/parse.h"

/* Outbound ids and idempotency keys outlive the longest receipt delay we expect (a message
 * read weeks later still finds its record). */
#define EXT_INDEX_TTL_S "2592000"
#define CLIENT_ID_TTL_S "604800"
/* A customer's newest message is remembered long past WhatsApp's 24-hour window, so a reply
 * days later is still known to be outside it; once forgotten, the platform's own refusal
 * (131047) is what tells. */
#define CUSTOMER_TTL_S "2592000"

/* The scripts are files in src/redis/scripts/ (redis/scripts.h); those that change a delivery
 * state run behind the status_advance.lua prelude, so the forward-only rule exists once.  Both
 * ingest scripts take the full dedupe key of each event from dedupe_key() below, so an event
 * first stored by one is a dedupe hit in the other, and both run behind customer_seen.lua, so
 * a webhook's customers are remembered by the same script run (a second run per webhook cost
 * Redis about 8 us, a fifth of its time per webhook in role=all). */

struct db_store {
    struct db_redis *redis;
    int wait_replicas, wait_timeout_ms;
    char *prefix;
    char ttl[24];
    char events[96]; /* P:events (the prefix is at most 64 bytes, config.c) */
    /* dedupe_db (db_store_set_dedupe_db): the dedupe keys' database and the main one, -1 when
     * they are the same; until when the main database's keys are asked too (INT64_MAX until
     * dedupe_moved.lua answered); whether that question is in flight. */
    int dedupe_db, main_db;
    int64_t old_until_s;
    int moved_asking;
    struct db_redis_script *ingest, *ingest_plain, *enqueue, *set_status, *get, *moved;
    /* plain webhooks as plain commands (db_store_start_tx); NULL = always the script */
    struct db_ingest_tx *tx;
    int freeing;
    unsigned long long written_by[2]; /* webhooks stored: [0] by a script, [1] as a transaction */
};

struct db_store *db_store_new(struct db_redis *r, const char *prefix, int dedupe_ttl_s)
{
    struct db_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->redis = r;
    s->prefix = strdup(prefix);
    snprintf(s->ttl, sizeof s->ttl, "%d", dedupe_ttl_s);
    db_key(s->events, sizeof s->events, prefix, DB_KEY_EVENTS);
    s->dedupe_db = s->main_db = -1;
    char *pre = DB_JOINED(db_lua_status_advance, db_lua_customer_seen, db_lua_dedupe);
    if (pre) s->ingest = db_redis_script_new_with(pre, db_lua_ingest);
    free(pre);
    pre = DB_JOINED(db_lua_customer_seen, db_lua_dedupe);
    if (pre) s->ingest_plain = db_redis_script_new_with(pre, db_lua_ingest_plain);
    free(pre);
    s->enqueue = db_redis_script_new_with(db_lua_status_advance, db_lua_enqueue);
    s->set_status = db_redis_script_new_with(db_lua_status_advance, db_lua_set_status);
    s->get = db_redis_script_new(db_lua_msg_get);
    s->moved = db_redis_script_new(db_lua_dedupe_moved);
    if (!s->prefix || !s->ingest || !s->ingest_plain || !s->enqueue || !s->set_status ||
        !s->get || !s->moved) {
        db_store_free(s);
        return NULL;
    }
    return s;
}

void db_store_free(struct db_store *s)
{
    if (!s) return;
    /* webhooks in a transaction are answered DB_EAGAIN, not handed to the script */
    s->freeing = 1;
    db_ingest_tx_free(s->tx);
    db_redis_script_free(s->ingest);
    db_redis_script_free(s->ingest_plain);
    db_redis_script_free(s->enqueue);
    db_redis_script_free(s->set_status);
    db_redis_script_free(s->get);
    db_redis_script_free(s->moved);
    free(s->prefix);
    free(s);
}

const char *db_store_key(const struct db_store *s, const char *suffix, char *buf, size_t n)
{
    return db_key(buf, n, s->prefix, suffix);
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
        db_store_customer_fn customer;
    } cb;
    void *arg;
    long long written; /* ingest: held while WAIT runs */
    char *conversation; /* customer read: owned, for the earlier layout's second read */
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

/* Answers an ingest and frees o, once the replicas asked for hold it. */
static void ingest_done(struct op *o, int status, long long written)
{
    if (status == DB_OK && o->store->wait_replicas > 0) {
        o->written = written;
        db_redis_cmd(o->store->redis, wait_reply, o, "WAIT %d %d", o->store->wait_replicas,
                     o->store->wait_timeout_ms);
        return;
    }
    if (o->cb.ingest) o->cb.ingest(status, written, o->arg);
    free(o);
}

static void ingest_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    long long written = 0;
    if (status == DB_OK && reply->type == REDIS_REPLY_INTEGER) {
        written = reply->integer;
        o->store->written_by[0]++;
    } else if (status == DB_OK) {
        /* An error reply: OOM, READONLY, a dedupe_db Redis refuses to select.  Its text is
         * the operator's only clue; Redis's errors quote no arguments. */
        struct db_log_ctx ctx = {"store", NULL, NULL, NULL};
        db_log(DB_LOG_ERROR, &ctx, "Redis refused the ingest script: %.200s",
               reply->type == REDIS_REPLY_ERROR ? reply->str : "(an answer of another type)");
        status = DB_EAGAIN;
    }
    ingest_done(o, status, written);
}

void db_store_set_wait(struct db_store *s, int replicas, int command_timeout_ms)
{
    s->wait_replicas = replicas;
    /* The server must answer a WAIT that runs out before the client's timer for the same
     * command fires: a client-side timeout drops the whole connection (its replies would be
     * out of step), so with a replica down every webhook would cost a reconnect. */
    s->wait_timeout_ms = command_timeout_ms / 2 > 0 ? command_timeout_ms / 2 : 1;
}

/* ---- the dedupe keys' database ---- */

static void moved_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_store *s = arg;
    (void)errstr;
    s->moved_asking = 0;
    /* Unanswered: keep asking the main database too, and ask again with the next webhook. */
    if (status == DB_OK && reply->type == REDIS_REPLY_INTEGER) s->old_until_s = reply->integer;
}

/* Asks dedupe_moved.lua once it is known to be needed and not yet answered. */
static void ask_moved(struct db_store *s)
{
    if (s->dedupe_db < 0 || s->moved_asking || s->old_until_s != INT64_MAX) return;
    char now[24], ddb[16];
    snprintf(now, sizeof now, "%" PRId64, db_now_ms() / 1000);
    snprintf(ddb, sizeof ddb, "%d", s->dedupe_db);
    const char *args[] = {s->prefix, now, s->ttl, ddb};
    s->moved_asking = 1;
    db_redis_eval(s->redis, s->moved, moved_reply, s, 0, NULL, 4, args, NULL);
}

void db_store_set_dedupe_db(struct db_store *s, int dedupe_db, int main_db)
{
    s->dedupe_db = dedupe_db >= 0 && dedupe_db != main_db ? dedupe_db : -1;
    s->main_db = main_db;
    s->old_until_s = INT64_MAX;
    /* Asked now, before webhooks come in: a webhook stored first would count as a stored
     * event, and a new installation would ask the main database too for dedupe_ttl_s.
     * Asked again with the next ingest while unanswered (Redis down at the start). */
    ask_moved(s);
}

/* dedupe.lua's spec for an ingest now: '' or "<dedupe db> <main db> <0|1>". */
static void dedupe_spec(struct db_store *s, char *buf, size_t n)
{
    if (s->dedupe_db < 0) {
        buf[0] = '\0';
        return;
    }
    ask_moved(s);
    char ddb[DB_LL_MAX], mdb[DB_LL_MAX];
    db_fmt_ll(ddb, s->dedupe_db), db_fmt_ll(mdb, s->main_db);
    DB_JOIN(buf, n, ddb, " ", mdb, db_now_ms() / 1000 < s->old_until_s ? " 1" : " 0");
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
    DB_JOIN(text + n - 1, extra + 2, n > 2 ? "," : "", "\"id\":\"", id, "\",\"received_at\":", now,
            "}");
    return text;
}

/* The dedupe key of one event: "<prefix>:dedupe:<platform>:<account>:<event's key>".
 * malloc'd, caller frees; NULL on ENOMEM. */
static char *dedupe_key(const struct db_store *s, const char *platform, const char *account,
                        const char *key)
{
    return DB_JOINED(s->prefix, ":" DB_KEY_DEDUPE ":", platform, ":", account, ":", key);
}

static int is_receipt(const json_t *ev)
{
    const char *kind = db_json_str(ev, "kind");
    return kind && strcmp(kind, "receipt") == 0;
}

/* 1 when ingest.lua records something of ev beside the event: a grant's state or the URL
 * of a media file it names by id and URL. */
static int needs_record(const json_t *ev)
{
    const json_t *m = json_object_get(ev, "media");
    return json_object_get(ev, "business_connection") != NULL ||
           (db_json_str(m, "id") && db_json_str(m, "url"));
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

/* ---- the customer's newest message ---- */

static void customer_key(const struct db_store *s, const char *conversation, char *buf, size_t n)
{
    DB_JOIN(buf, n, s->prefix, ":" DB_KEY_CUSTOMER ":{", conversation, "}");
}

/* Appends to a, the ingest script's arguments, what customer_seen.lua takes to remember each
 * WhatsApp message or tap of events as the customer's newest in its conversation: '', the ttl,
 * then key, message id and time per message; nothing when there is none.  So the same script
 * run writes them, before anything that read the stored events can ask, and they fail with
 * the ingest when Redis does.  Only WhatsApp needs it (its window and read marks), so other
 * platforms' webhooks cost nothing more.  -1 without memory. */
static int add_customers(struct db_store *s, const struct db_event_list *events, struct argv *a)
{
    int bad = 0, first = 1;
    for (size_t i = 0; !bad && i < events->n; i++) {
        const json_t *ev = events->v[i].json;
        const char *kind = db_json_str(ev, "kind"), *platform = db_json_str(ev, "platform");
        const char *conv = db_json_str(ev, "conversation");
        const char *mid = db_json_str(ev, "external_message_id");
        const json_t *ts = json_object_get(ev, "timestamp");
        if (!kind || !platform || !conv || !mid || !json_is_integer(ts) ||
            strcmp(platform, "whatsapp") != 0 ||
            (strcmp(kind, "message") != 0 && strcmp(kind, "callback") != 0))
            continue;
        char key[320], t[DB_LL_MAX];
        customer_key(s, conv, key, sizeof key);
        db_fmt_ll(t, json_integer_value(ts));
        if (first) bad = argv_str(a, "") || argv_str(a, CUSTOMER_TTL_S), first = 0;
        char *k = strdup(key), *v = strdup(t);
        bad |= argv_push(a, k, k ? strlen(k) : 0, 1);
        bad |= argv_push(a, strdup(mid), strlen(mid), 1);
        bad |= argv_push(a, v, v ? strlen(v) : 0, 1);
    }
    return bad ? -1 : 0;
}

/* Answers a read of the customer's newest message and frees o: status when Redis did not
 * answer, DB_EAGAIN for an answer of another shape (ok 0), DB_ENOTFOUND when id is NULL. */
static void customer_done(struct op *o, int status, int ok, const char *id, long ts)
{
    if (status == DB_OK && !ok) status = DB_EAGAIN;
    if (status == DB_OK && !id) status = DB_ENOTFOUND;
    o->cb.customer(status, status == DB_OK ? id : NULL, status == DB_OK ? (int64_t)ts : 0,
                   o->arg);
    free(o->conversation);
    free(o);
}

static void customer_old_reply(int status, const redisReply *reply, const char *errstr,
                               void *arg);

/* The record "<time> <message id>" (customer_seen.lua); a hash of the earlier layout (id, ts)
 * is read with HMGET until the next message replaces it. */
static void customer_reply(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op *o = arg;
    (void)errstr;
    if (status == DB_OK && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "WRONGTYPE", 9) == 0) {
        char key[320];
        customer_key(o->store, o->conversation, key, sizeof key);
        db_redis_cmd(o->store->redis, customer_old_reply, o, "HMGET %s id ts", key);
        return;
    }
    int ok = status == DB_OK &&
             (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL);
    const char *id = NULL;
    long ts = 0;
    if (ok && reply->type == REDIS_REPLY_STRING) {
        /* "<time> <message id>" */
        const char *sp = strchr(reply->str, ' ');
        char t[24];
        size_t n = sp ? (size_t)(sp - reply->str) : sizeof t;
        if (n < sizeof t) memcpy(t, reply->str, n), t[n] = '\0';
        if (n < sizeof t && sp[1] && db_parse_long(t, 0, LONG_MAX, &ts) == 0) id = sp + 1;
    }
    customer_done(o, status, ok, id, ts);
}

static void customer_old_reply(int status, const redisReply *reply, const char *errstr,
                               void *arg)
{
    struct op *o = arg;
    (void)errstr;
    int ok = status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2;
    const char *id = NULL;
    long ts = 0;
    if (ok && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        db_parse_long(reply->element[1]->str, 0, LONG_MAX, &ts) == 0)
        id = reply->element[0]->str;
    customer_done(o, status, ok, id, ts);
}

void db_store_customer_last(struct db_store *s, const char *conversation,
                            db_store_customer_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    if (!o) {
        cb(DB_ENOMEM, NULL, 0, arg);
        return;
    }
    o->cb.customer = cb;
    if (!(o->conversation = strdup(conversation))) {
        free(o);
        cb(DB_ENOMEM, NULL, 0, arg);
        return;
    }
    char key[320];
    customer_key(s, conversation, key, sizeof key);
    db_redis_cmd(s->redis, customer_reply, o, "GET %s", key);
}

/* A plain webhook handed to the transaction module, with the script's arguments it keeps. */
struct tx_op {
    struct op *o;
    struct argv a;
};

static void tx_done(int applied, long long written, void *arg)
{
    struct tx_op *t = arg;
    struct op *o = t->o;
    if (applied) {
        o->store->written_by[1]++;
        ingest_done(o, DB_OK, written);
    } else if (o->store->freeing) {
        ingest_done(o, DB_EAGAIN, 0);
    } else {
        db_redis_eval(o->store->redis, o->store->ingest_plain, ingest_reply, o, 0, NULL,
                      (int)t->a.n, t->a.v, t->a.len);
    }
    argv_free(&t->a);
    free(t);
}

int db_store_start_tx(struct db_store *s, struct event_base *base,
                      const struct db_redis_opts *opts, struct db_err *e)
{
    /* WAIT covers the writes of its own connection only: with replicas to wait for, every
     * webhook goes through the script on the connection that waits. */
    if (s->tx || s->wait_replicas > 0) return DB_OK;
    return db_ingest_tx_new(base, opts, &s->tx, e);
}

void db_store_ingest_ways(const struct db_store *s, unsigned long long *script,
                          unsigned long long *plain)
{
    *script = s ? s->written_by[0] : 0;
    *plain = s ? s->written_by[1] : 0;
}

void db_store_ingest(struct db_store *s, const char *platform, const char *account,
                     const struct db_event_list *events, const char *cursor_value,
                     db_store_ingest_fn cb, void *arg)
{
    struct op *o = op_new(s, arg);
    struct argv a = {0};
    char now[DB_LL_MAX], spec[48];
    int rc = o ? DB_OK : DB_ENOMEM;
    if (o) o->cb.ingest = cb;
    db_fmt_ll(now, db_now_ms());
    if (!cursor_value) cursor_value = "";
    int plain = !*cursor_value;
    /* Receipts, grant changes (an event with `business_connection`) and media named by URL
     * (recorded for GET /v1/media) need the general script. */
    for (size_t i = 0; plain && i < events->n; i++)
        plain = !is_receipt(events->v[i].json) && !needs_record(events->v[i].json);
    dedupe_spec(s, spec, sizeof spec);
    /* A plain webhook's arguments outlive this call when it waits for a transaction: each is
     * the store's, a literal, or a copy the vector owns. */
    if (rc == DB_OK &&
        (plain ? argv_str(&a, s->ttl) || argv_str(&a, s->events) ||
                     argv_push(&a, strdup(spec), strlen(spec), 1)
               : argv_str(&a, s->prefix) || argv_str(&a, s->ttl) || argv_str(&a, now) ||
                     argv_str(&a, platform) || argv_str(&a, account) ||
                     argv_str(&a, cursor_value) || argv_str(&a, spec)))
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
    if (rc == DB_OK && add_customers(s, events, &a)) rc = DB_ENOMEM;
    if (rc != DB_OK) {
        argv_free(&a);
        free(o);
        if (cb) cb(rc, 0, arg);
        return;
    }
    if (plain && s->tx && db_ingest_tx_up(s->tx)) {
        struct tx_op *t = malloc(sizeof *t);
        if (t) {
            *t = (struct tx_op){.o = o, .a = a};
            struct db_ingest_tx_item it = {.v = t->a.v, .l = t->a.len, .n = t->a.n};
            db_ingest_tx_apply(s->tx, &it, tx_done, t);
            return;
        }
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
    db_redis_cmd(s->redis, cursor_reply, o, "GET %s:" DB_KEY_CURSOR ":%s:%s", s->prefix, platform, account);
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

/* Turns the {hash fields, history} reply of msg_get.lua into the API's view of a message. */
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
