#include "stream/ordering.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log/log.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "util/parse.h"

enum { S_IDLE, S_QUEUED, S_CHECKING, S_READY };

struct db_order_chat {
    char *key;
    struct db_order_slot *active;  /* checking, or handed to the owner */
    struct db_order_slot *head;    /* waiting, sorted by entry id */
    int64_t not_before_ms;
    struct db_order_chat *next;
};

/* An order check in flight; outlives neither side (see db_order_done, db_ordering_free). */
struct db_order_op {
    struct db_ordering *o;
    struct db_order_slot *slot;
    int stream;
    unsigned long upto;  /* every entry of a read up to this one had been delivered when sent */
    struct db_order_slot *riders; /* slots waiting for this answer instead of asking */
    struct db_order_op *prev, *next;
};

struct db_ordering {
    struct event_base *base;
    struct db_redis *redis;
    struct db_redis_script *script;
    db_order_ready_fn ready;
    void *arg;
    struct db_order_chat *chats;
    struct db_order_op *ops;
    int stopped;
    /* Per stream: the newest read an added entry came from, and the newest read known to
     * wait for nothing elsewhere (a check answered that no other consumer held anything). */
    unsigned long max_batch[2], clear_upto[2];
    char *who, *group, *consumer, *streams[2], *fields[2];
};

static void begin(struct db_order_slot *s);
static void order_answer(struct db_order_slot *s, int status, const redisReply *reply,
                         const char *errstr);

static struct db_order_chat *chat_get(struct db_ordering *o, const char *key)
{
    for (struct db_order_chat *c = o->chats; c; c = c->next)
        if (strcmp(c->key, key) == 0) return c;
    struct db_order_chat *c = calloc(1, sizeof *c);
    if (!c || !(c->key = strdup(key))) {
        free(c);
        return NULL;
    }
    c->next = o->chats;
    o->chats = c;
    return c;
}

static void chat_drop(struct db_ordering *o, struct db_order_chat *c)
{
    for (struct db_order_chat **p = &o->chats; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    free(c->key);
    free(c);
}

static void queue_sorted(struct db_order_chat *c, struct db_order_slot *s)
{
    s->state = S_QUEUED;
    struct db_order_slot **p = &c->head;
    while (*p && db_stream_id_cmp((*p)->entry, s->entry) <= 0) p = &(*p)->next;
    s->next = *p;
    *p = s;
}

/* Forgets a check in flight or due: its answer no longer concerns s. */
static void cancel_check(struct db_order_slot *s)
{
    if (s->op) {
        s->op->slot = NULL;
        s->op = NULL;
    }
    if (s->ride) {
        for (struct db_order_slot **p = &s->ride->riders; *p; p = &(*p)->ride_next)
            if (*p == s) {
                *p = s->ride_next;
                break;
            }
        s->ride = NULL;
        s->ride_next = NULL;
    }
    if (s->timer) evtimer_del(s->timer);
}

/* A check in flight that s may wait for: one of its stream sent after s's read was
 * delivered (an answer of 2 then clears s too). */
static struct db_order_op *ride_for(const struct db_order_slot *s)
{
    if (s->solo || !s->batch) return NULL;
    for (struct db_order_op *op = s->o->ops; op; op = op->next)
        if (op->stream == s->stream && op->upto >= s->batch) return op;
    return NULL;
}

static void give(struct db_order_slot *s)
{
    s->state = S_READY;
    s->o->ready(s, s->o->arg);
}

static void op_unlink(struct db_order_op *op)
{
    if (!op->o) return;
    if (op->prev) op->prev->next = op->next;
    else op->o->ops = op->next;
    if (op->next) op->next->prev = op->prev;
}

static void check_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    begin(arg);
}

/* Asks again later: short at first (the other process is usually just finishing), then
 * capped, so a long-blocked entry costs a few checks a second at most. */
static void retry_check(struct db_order_slot *s)
{
    s->held_back++;
    int ms = s->held_back < 3 ? 100 : 200;
    struct timeval tv = {0, ms * 1000};
    if (!s->timer) s->timer = evtimer_new(s->o->base, check_timer_cb, s);
    if (!s->timer || evtimer_add(s->timer, &tv) != 0) {
        struct db_log_ctx ctx = {s->o->who, NULL, NULL, s->entry};
        db_log(DB_LOG_WARN, &ctx, "could not schedule an order check; going on unordered");
        s->ordered = 1;
        give(s);
    }
}

/* The riders of op after its answer: cleared (no other consumer held anything), or each
 * asks for itself.  A rider's ready callback may end other riders (cancel_check takes them
 * off the list), so the list is read afresh each time. */
static void riders_go(struct db_order_op *op, int clear)
{
    struct db_order_slot *r;
    while ((r = op->riders)) {
        op->riders = r->ride_next;
        r->ride = NULL;
        r->ride_next = NULL;
        if (op->o && op->o->stopped) continue; /* stays pending for whoever runs next */
        if (clear) {
            r->ordered = 1;
            give(r);
        } else {
            r->solo = 1;
            begin(r);
        }
    }
}

static void order_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_order_op *op = arg;
    struct db_order_slot *s = op->slot;
    /* No other consumer held anything: every entry read up to op->upto had been delivered
     * by then, so nothing earlier can be pending elsewhere for any of them. */
    int clear = status == DB_OK && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2;
    if (op->o && clear && op->upto > op->o->clear_upto[op->stream])
        op->o->clear_upto[op->stream] = op->upto;
    op_unlink(op);
    if (s) order_answer(s, status, reply, errstr);
    riders_go(op, clear);
    free(op);
}

/* The answer of s's own check. */
static void order_answer(struct db_order_slot *s, int status, const redisReply *reply,
                         const char *errstr)
{
    s->op = NULL;
    struct db_ordering *o = s->o;
    if (o->stopped) return; /* stays pending for whoever runs next */
    if (status == DB_OK && reply->type == REDIS_REPLY_INTEGER &&
        (reply->integer == 0 || reply->integer == 2)) {
        /* Final: an entry acknowledged never comes back, and later ones cannot matter. */
        s->ordered = 1;
        give(s);
        return;
    }
    struct db_log_ctx ctx = {o->who, NULL, NULL, s->entry};
    /* Once per entry: a Redis outage would otherwise log every few milliseconds. */
    if (!s->held_back) {
        if (status != DB_OK || reply->type != REDIS_REPLY_INTEGER)
            db_log(DB_LOG_WARN, &ctx, "order check failed: %s; retrying",
                   status != DB_OK ? (errstr ? errstr : "unavailable")
                   : reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        else
            db_log(DB_LOG_DEBUG, &ctx, "waiting for an earlier entry of the conversation held "
                   "by another process");
    }
    retry_check(s);
}

/* s is its chat's active slot: start it, after asking Redis unless that was settled. */
static void begin(struct db_order_slot *s)
{
    struct db_ordering *o = s->o;
    if (o->stopped) return;
    if (s->ordered || (s->batch && s->batch <= o->clear_upto[s->stream])) {
        s->ordered = 1;
        give(s);
        return;
    }
    s->state = S_CHECKING;
    struct db_order_op *ride = ride_for(s);
    if (ride) {
        s->ride = ride;
        s->ride_next = ride->riders;
        ride->riders = s;
        return;
    }
    struct db_order_op *op = calloc(1, sizeof *op);
    if (!op) {
        retry_check(s);
        return;
    }
    op->o = o;
    op->slot = s;
    op->stream = s->stream;
    op->upto = o->max_batch[s->stream];
    op->next = o->ops;
    if (op->next) op->next->prev = op;
    o->ops = op;
    s->op = op;
    int plain = 1;
    for (const unsigned char *p = (const unsigned char *)s->chat->key; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '/') plain = 0;
    const char *args[] = {o->streams[s->stream], o->group, o->consumer, s->entry, s->chat->key,
                          o->fields[s->stream], plain ? "1" : "0"};
    db_redis_eval(o->redis, o->script, order_cb, op, 0, NULL, 7, args, NULL);
}

int db_order_add(struct db_ordering *o, struct db_order_slot *s, int stream,
                 const char *entry, const char *conversation, unsigned long batch)
{
    s->o = o;
    s->stream = stream;
    s->batch = batch;
    if (batch > o->max_batch[stream]) o->max_batch[stream] = batch;
    snprintf(s->entry, sizeof s->entry, "%s", entry);
    /* Entries without a conversation share one local queue and are not ordered across
     * processes. */
    s->ordered = !conversation || !*conversation;
    struct db_order_chat *c = chat_get(o, conversation ? conversation : "");
    if (!c) return DB_ENOMEM;
    s->chat = c;
    struct db_order_slot *a = c->active;
    if (!a) {
        c->active = s;
        begin(s);
    } else if (a->state == S_CHECKING && db_stream_id_cmp(s->entry, a->entry) < 0) {
        /* Taken over from a dead process: it goes before the one still being checked. */
        cancel_check(a);
        queue_sorted(c, a);
        c->active = s;
        begin(s);
    } else {
        queue_sorted(c, s);
    }
    return DB_OK;
}

int db_order_yield(struct db_order_slot *s)
{
    struct db_order_chat *c = s->chat;
    if (!c || c->active != s || !c->head || db_stream_id_cmp(c->head->entry, s->entry) >= 0) return 0;
    struct db_order_slot *first = c->head;
    c->head = first->next;
    first->next = NULL;
    queue_sorted(c, s);
    c->active = first;
    begin(first);
    return 1;
}

void db_order_wait_until(struct db_order_slot *s, int64_t ms)
{
    if (s && s->chat) s->chat->not_before_ms = ms;
}

int64_t db_order_not_before(const struct db_order_slot *s)
{
    return s && s->chat ? s->chat->not_before_ms : 0;
}

void db_order_done(struct db_order_slot *s)
{
    if (!s || !s->chat) return;
    struct db_order_chat *c = s->chat;
    struct db_ordering *o = s->o;
    cancel_check(s);
    if (s->timer) {
        event_free(s->timer);
        s->timer = NULL;
    }
    s->chat = NULL;
    s->state = S_IDLE;
    struct db_order_slot *next = NULL;
    if (c->active == s) {
        next = c->head;
        c->active = next;
        if (next) {
            c->head = next->next;
            next->next = NULL;
            /* Read together with s, after it: every entry between the two is this process's,
             * and s's turn came only when everything before it was done. */
            if (s->ordered && s->batch && next->batch == s->batch && next->stream == s->stream &&
                db_stream_id_cmp(s->entry, next->entry) < 0)
                next->ordered = 1;
        }
    } else {
        for (struct db_order_slot **p = &c->head; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
    }
    s->next = NULL;
    if (!c->active && !c->head) chat_drop(o, c);
    /* Last: the owner may finish next at once, which changes the chat again. */
    if (next) begin(next);
}

void db_ordering_stop(struct db_ordering *o)
{
    if (o) o->stopped = 1;
}

void db_ordering_free(struct db_ordering *o)
{
    if (!o) return;
    for (struct db_order_op *op = o->ops; op; op = op->next) {
        if (op->slot) op->slot->op = NULL;
        while (op->riders) {
            struct db_order_slot *r = op->riders;
            op->riders = r->ride_next;
            r->ride = NULL;
            r->ride_next = NULL;
        }
        op->o = NULL;
        op->slot = NULL;
    }
    while (o->chats) {
        struct db_order_chat *c = o->chats;
        for (struct db_order_slot *s = c->active; s; s = NULL) {
            if (s->timer) event_free(s->timer);
            s->timer = NULL;
            s->chat = NULL;
        }
        for (struct db_order_slot *s = c->head; s; s = s->next) {
            if (s->timer) event_free(s->timer);
            s->timer = NULL;
            s->chat = NULL;
        }
        chat_drop(o, c);
    }
    db_redis_script_free(o->script);
    free(o->who);
    free(o->group);
    free(o->consumer);
    for (int i = 0; i < 2; i++) {
        free(o->streams[i]);
        free(o->fields[i]);
    }
    free(o);
}

int db_ordering_new(struct event_base *base, const struct db_ordering_opts *opts,
                    db_order_ready_fn ready, void *arg, struct db_ordering **out,
                    struct db_err *e)
{
    *out = NULL;
    struct db_ordering *o = calloc(1, sizeof *o);
    if (!o) return db_err_set(e, DB_ENOMEM, "out of memory");
    o->base = base;
    o->redis = opts->redis;
    o->ready = ready;
    o->arg = arg;
    o->script = db_redis_script_new(db_lua_stream_order);
    o->who = strdup(opts->who);
    o->group = strdup(opts->group);
    o->consumer = strdup(opts->consumer);
    int ok = o->script && o->who && o->group && o->consumer;
    for (int i = 0; i < 2 && opts->streams[i]; i++) {
        o->streams[i] = strdup(opts->streams[i]);
        o->fields[i] = strdup(opts->fields[i]);
        ok = ok && o->streams[i] && o->fields[i];
    }
    if (!ok) {
        db_ordering_free(o);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    *out = o;
    return DB_OK;
}
