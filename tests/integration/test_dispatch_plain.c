/* test_dispatch_plain.c - src/dispatch/fast.c against a real redis-server: the plain updates
 * write exactly what the dispatcher's script writes for the same events on the same state
 * (the same hash fields in the same order, the same history, the same inbox entries, every
 * entry acknowledged, also when a profile written before is not sent again), and write
 * nothing when an event is not a plain update, an entry of another consumer is still pending
 * among them, or a watched conversation changes before EXEC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/config.h"
#include "dispatch/fast.h"
#include "redis/keys.h"
#include "redis/scripts.h"
#include "redis_fixture.h"
#include "testutil.h"

#define MAXEV 16
#define MAXARG 24

struct fx {
    struct event_base *base;
    struct db_test_redis *srv;
};

/* Checked commands on the fixture's server (redis_fixture.h). */
#define cmd(f, ...) db_test_redis_cmd((f)->srv, __VA_ARGS__)
#define run(f, ...) db_test_redis_run((f)->srv, __VA_ARGS__)

/* One event of a batch: the raw event and op_event's arguments built from it, as the
 * dispatcher's take_entry builds them. */
struct ev {
    char entry[32], conv[64], kind[16], id[32], at[24], prio[8], name[32], uid[32];
    char raw[512], item[640];
    const char *v[MAXARG];
    size_t l[MAXARG];
    int n;
};

struct batch {
    struct ev ev[MAXEV];
    struct db_fast_event fe[MAXEV];
    size_t n;
};

/* An event whose customer is user uid (NULL: a new one per event). */
static void add_from(struct batch *b, const char *entry, const char *conv, const char *kind,
                     const char *prio, const char *name, const char *uid)
{
    struct ev *e = &b->ev[b->n];
    memset(e, 0, sizeof *e);
    snprintf(e->entry, sizeof e->entry, "%s", entry);
    snprintf(e->conv, sizeof e->conv, "%s", conv);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->id, sizeof e->id, "wa-%zu", b->n);
    snprintf(e->at, sizeof e->at, "%lld", 1765000000000LL + (long long)b->n);
    snprintf(e->prio, sizeof e->prio, "%s", prio);
    snprintf(e->name, sizeof e->name, "%s", name);
    if (uid) snprintf(e->uid, sizeof e->uid, "%s", uid);
    else snprintf(e->uid, sizeof e->uid, "1650555%04zu", b->n);
    const char *chat = strrchr(conv, ':') + 1;
    char raw[sizeof e->raw], item[sizeof e->item];
    snprintf(raw, sizeof raw,
             "{\"v\":1,\"id\":\"wa-%zu\",\"kind\":\"%s\",\"platform\":\"whatsapp\","
             "\"account\":\"106\",\"conversation\":\"%s\",\"external_chat_id\":\"%s\","
             "\"external_user_id\":\"%s\",\"sender\":{\"name\":\"%s\"},"
             "\"text\":\"<b>hi</b> %zu\",\"received_at\":%lld}",
             b->n, kind, conv, chat, e->uid, name, b->n, 1765000000000LL + (long long)b->n);
    snprintf(item, sizeof item, "{\"dir\":\"in\",\"entry\":\"%s\",\"event\":%s}", entry, raw);
    memcpy(e->raw, raw, sizeof raw);
    memcpy(e->item, item, sizeof item);
    const char *v[] = {e->entry, e->conv, "", e->item, "i", e->kind, "whatsapp", "106", chat,
                       e->id, e->at, e->prio, "name", e->name, "user_id", e->uid};
    e->n = (int)(sizeof v / sizeof *v);
    for (int i = 0; i < e->n; i++) e->v[i] = v[i], e->l[i] = strlen(v[i]);
    b->fe[b->n] = (struct db_fast_event){e->v, e->l, e->n};
    b->n++;
}

static void add(struct batch *b, const char *entry, const char *conv, const char *kind,
                const char *prio, const char *name)
{
    add_from(b, entry, conv, kind, prio, name, NULL);
}

/* The events of all at the given indexes, as a batch of their own (borrowing all's). */
static struct batch pick(const struct batch *all, const size_t *at, size_t n)
{
    struct batch b = {0};
    for (size_t i = 0; i < n; i++) b.ev[b.n] = all->ev[at[i]], b.fe[b.n++] = all->fe[at[i]];
    return b;
}

/* The same conversations, history and group under prefix P. */
static void seed(struct fx *f, const char *P, const struct batch *b)
{
    run(f, "HSET %s:conv:{whatsapp:106:1} state queued unread 3 priority normal queued_at 1700 "
           "agent \"\" first_message_at 1600 last_entry 1-1 id whatsapp:106:1", P);
    run(f, "HSET %s:conv:{whatsapp:106:2} state assigned agent ag1 prev_agent ag1 unread 0 "
           "priority high last_entry 1-1 id whatsapp:106:2", P);
    run(f, "HSET %s:conv:{whatsapp:106:3} state queued unread 9 priority low queued_at 1800 "
           "first_message_at 1750 id whatsapp:106:3", P);
    for (int i = 0; i < 1100; i++) run(f, "RPUSH %s:conv:{whatsapp:106:3}:items old-%d", P, i);
    /* its first event below was applied before: last_entry is that entry */
    run(f, "HSET %s:conv:{whatsapp:106:4} state assigned agent ag2 unread 12 priority urgent "
           "first_message_at 1500 last_entry 1765000000000-3 id whatsapp:106:4", P);
    run(f, "HSET %s:conv:{whatsapp:106:5} state open unread 1 priority normal first_message_at 1 "
           "last_entry 1-1", P);
    for (size_t i = 0; i < b->n; i++)
        run(f, "XADD %s:events %s event %s", P, b->ev[i].entry, b->ev[i].raw);
    run(f, "XGROUP CREATE %s:events " DB_DISPATCH_GROUP " 0", P);
}

static void read_all(struct fx *f, const char *P, const char *consumer, int count)
{
    run(f, "XREADGROUP GROUP " DB_DISPATCH_GROUP " %s COUNT %d STREAMS %s:events >", consumer,
        count, P);
}

struct result {
    int called, applied;
};

static void done_cb(int applied, void *arg)
{
    struct result *r = arg;
    r->called++;
    r->applied = applied;
}

static struct db_config cfg_of(struct fx *f, const char *P)
{
    struct db_config c;
    memset(&c, 0, sizeof c);
    c.prefix = (char *)P;
    c.redis_url = (char *)db_test_redis_url(f->srv);
    c.redis_timeout_ms = 2000;
    return c;
}

/* Runs the plain updates of b under P; returns done's applied.  ready (may be NULL) runs once
 * the transaction's EXEC is queued, before it is written to Redis (at the end of the loop's
 * pass). */
static struct db_dispatch_fast *fast_open(struct fx *f, const char *P, db_fast_ready_fn ready,
                                          void *ready_arg)
{
    struct db_config c = cfg_of(f, P);
    struct db_dispatch_fast *fast = NULL;
    struct db_err e = {0};
    assert_int_equal(db_dispatch_fast_new(f->base, &c, ready, ready_arg, &fast, &e), DB_OK);
    return fast;
}

/* One run of b's events on fast, to its end; returns done's applied. */
static int fast_run(struct fx *f, struct db_dispatch_fast *fast, struct batch *b)
{
    for (int i = 0; i < 200 && !db_dispatch_fast_ready(fast); i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    assert_true(db_dispatch_fast_ready(fast));
    struct result r = {0};
    db_dispatch_fast_apply(fast, b->n, b->fe, done_cb, &r);
    for (int i = 0; i < 300 && !r.called; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    assert_int_equal(r.called, 1);
    /* the history cut is sent after EXEC: let it reach Redis before anything is compared */
    struct timeval tv = {0, 50000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    return r.applied;
}

static int apply_plain_with(struct fx *f, const char *P, struct batch *b, db_fast_ready_fn ready,
                            void *ready_arg)
{
    struct db_dispatch_fast *fast = fast_open(f, P, ready, ready_arg);
    int applied = fast_run(f, fast, b);
    db_dispatch_fast_free(fast);
    return applied;
}

static int apply_plain(struct fx *f, const char *P, struct batch *b)
{
    return apply_plain_with(f, P, b, NULL, NULL);
}

/* Runs b through the dispatcher's script (op "events", a whole read) under P. */
static void apply_script(struct fx *f, const char *P, struct batch *b)
{
    const char *argv[8 + MAXEV * (MAXARG + 1)];
    size_t argl[8 + MAXEV * (MAXARG + 1)];
    char count[MAXEV][8], n[8];
    int k = 0;
    argv[k++] = "EVAL", argv[k++] = db_lua_dispatch, argv[k++] = "0", argv[k++] = "events";
    argv[k++] = P, argv[k++] = "1765000009999";
    snprintf(n, sizeof n, "%zu", b->n);
    argv[k++] = n, argv[k++] = "read";
    for (size_t i = 0; i < b->n; i++) {
        snprintf(count[i], sizeof count[i], "%d", b->ev[i].n);
        argv[k++] = count[i];
        for (int j = 0; j < b->ev[i].n; j++) argv[k++] = b->ev[i].v[j];
    }
    for (int i = 0; i < k; i++) argl[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(db_test_redis_ctx(f->srv), k, argv, argl);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) fail_msg("event %zu: %s", i, r->element[i]->str);
    freeReplyObject(r);
}

static void same(struct fx *f, const char *fmt_a, const char *fmt_b, const char *what)
{
    redisReply *a = cmd(f, fmt_a), *b = cmd(f, fmt_b);
    db_test_same_reply(a, b, what);
    freeReplyObject(a);
    freeReplyObject(b);
}

/* Conversations 1..n: the same hash and history under pa and pb. */
static void same_conversations(struct fx *f, int n)
{
    for (int c = 1; c <= n; c++) {
        char qa[128], qb[128];
        snprintf(qa, sizeof qa, "HGETALL pa:conv:{whatsapp:106:%d}", c);
        snprintf(qb, sizeof qb, "HGETALL pb:conv:{whatsapp:106:%d}", c);
        same(f, qa, qb, "conversation hash");
        snprintf(qa, sizeof qa, "LRANGE pa:conv:{whatsapp:106:%d}:items 0 -1", c);
        snprintf(qb, sizeof qb, "LRANGE pb:conv:{whatsapp:106:%d}:items 0 -1", c);
        same(f, qa, qb, "history");
    }
}

/* An agent inbox's entries without their ids (each side numbers its own). */
static void same_inbox(struct fx *f, const char *agent)
{
    char qa[128], qb[128];
    snprintf(qa, sizeof qa, "pa:agent:{%s}", agent);
    snprintf(qb, sizeof qb, "pb:agent:{%s}", agent);
    redisReply *a = cmd(f, "XRANGE %s - +", qa), *b = cmd(f, "XRANGE %s - +", qb);
    assert_int_equal(a->elements, b->elements);
    for (size_t i = 0; i < a->elements; i++) db_test_same_reply(a->element[i]->element[1], b->element[i]->element[1], agent);
    assert_true(a->elements > 0);
    freeReplyObject(a);
    freeReplyObject(b);
}

static long long integer(struct fx *f, const char *fmt, const char *P)
{
    redisReply *r = cmd(f, fmt, P);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_INTEGER
                      ? r->element[0]->integer
                      : -1;
    freeReplyObject(r);
    return v;
}

static int setup(void **state)
{
    static struct fx f;
    f.base = event_base_new();
    f.srv = db_test_redis_start(NULL);
    assert_non_null(f.srv);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    db_test_redis_stop(f->srv);
    event_base_free(f->base);
    return 0;
}

static void the_plain_updates_write_what_the_script_writes(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    struct batch b = {0};
    add(&b, "1765000000000-1", "whatsapp:106:1", "message", "", "Kerry");
    add(&b, "1765000000000-2", "whatsapp:106:2", "message", "normal", "Ann");
    add(&b, "1765000000000-3", "whatsapp:106:4", "message", "", "Bo");
    add(&b, "1765000000000-4", "whatsapp:106:3", "message", "low", "Cy");
    add(&b, "1765000000000-5", "whatsapp:106:1", "edit", "", "Kerry F");
    add(&b, "1765000000000-6", "whatsapp:106:2", "receipt", "", "Ann");
    add(&b, "1765000000000-7", "whatsapp:106:4", "reaction", "high", "Bo");
    add(&b, "1765000000000-8", "whatsapp:106:2", "callback", "", "Ann B");
    add(&b, "1765000000000-9", "whatsapp:106:1", "membership", "", "Kerry");
    seed(f, "pa", &b);
    seed(f, "pb", &b);
    read_all(f, "pa", "c1", 100);
    read_all(f, "pb", "c1", 100);

    assert_int_equal(apply_plain(f, "pa", &b), 1);
    apply_script(f, "pb", &b);

    same_conversations(f, 4);
    same_inbox(f, "ag1");
    same_inbox(f, "ag2");
    /* what the events did, checked apart from the script too */
    redisReply *r = cmd(f, "HMGET pa:conv:{whatsapp:106:1} unread last_entry name");
    assert_string_equal(r->element[0]->str, "5");
    assert_string_equal(r->element[1]->str, "1765000000000-9");
    assert_string_equal(r->element[2]->str, "Kerry F");
    freeReplyObject(r);
    assert_int_equal(integer(f, "LLEN %s:conv:{whatsapp:106:3}:items", "pa"), 1000);
    assert_int_equal(integer(f, "LLEN %s:conv:{whatsapp:106:4}:items", "pa"), 1);
    assert_int_equal(integer(f, "XLEN %s:agent:{ag1}", "pa"), 3);
    assert_int_equal(integer(f, "XPENDING %s:events " DB_DISPATCH_GROUP, "pa"), 0);
    assert_int_equal(integer(f, "XPENDING %s:events " DB_DISPATCH_GROUP, "pb"), 0);
}

/* One process's runs, one after another, with another process's script run between them:
 * a profile the conversation already holds from this process's last write is not sent
 * again, and whatever else wrote the conversation in between, the keys end as the script
 * alone leaves them. */
static void a_profile_already_written_is_not_sent_again(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    struct batch all = {0};
    add_from(&all, "1765000000000-1", "whatsapp:106:1", "message", "", "Kerry", "16505550001");
    add_from(&all, "1765000000000-2", "whatsapp:106:1", "message", "", "Kerry", "16505550001");
    add_from(&all, "1765000000000-3", "whatsapp:106:1", "receipt", "", "Kerry", "16505550001");
    /* another process (the script) writes a new name */
    add_from(&all, "1765000000000-4", "whatsapp:106:1", "message", "", "Kim", "16505550001");
    add_from(&all, "1765000000000-5", "whatsapp:106:1", "message", "", "Kerry", "16505550001");
    add_from(&all, "1765000000000-6", "whatsapp:106:1", "message", "", "Kerry", "16505550001");
    add_from(&all, "1765000000000-7", "whatsapp:106:1", "message", "", "Kerry", "16505550002");
    add_from(&all, "1765000000000-8", "whatsapp:106:2", "message", "", "Ann", "16505550003");
    seed(f, "pa", &all);
    seed(f, "pb", &all);
    read_all(f, "pa", "c1", 100);
    read_all(f, "pb", "c1", 100);
    apply_script(f, "pb", &all);

    struct db_dispatch_fast *fast = fast_open(f, "pa", NULL, NULL);
    const size_t r1[] = {0}, r2[] = {1, 2}, r3[] = {3}, r4[] = {4}, r5[] = {5, 6, 7};
    struct batch b = pick(&all, r1, 1);
    assert_int_equal(fast_run(f, fast, &b), 1);
    /* Nothing but a write that leaves last_entry as it was could make the stored profile
     * differ from the one written last; this one is made on purpose, to see that the next
     * event with the same profile does not send it. */
    run(f, "HSET pa:conv:{whatsapp:106:1} name Zed");
    b = pick(&all, r2, 2);
    assert_int_equal(fast_run(f, fast, &b), 1);
    redisReply *r = cmd(f, "HGET pa:conv:{whatsapp:106:1} name");
    assert_string_equal(r->str, "Zed");
    freeReplyObject(r);
    run(f, "HSET pa:conv:{whatsapp:106:1} name Kerry");
    b = pick(&all, r3, 1);
    apply_script(f, "pa", &b);
    b = pick(&all, r4, 1);
    assert_int_equal(fast_run(f, fast, &b), 1);
    /* the script's write moved last_entry on: the name is sent, and Kim is Kerry again */
    r = cmd(f, "HGET pa:conv:{whatsapp:106:1} name");
    assert_string_equal(r->str, "Kerry");
    freeReplyObject(r);
    b = pick(&all, r5, 3);
    assert_int_equal(fast_run(f, fast, &b), 1);
    db_dispatch_fast_free(fast);

    same_conversations(f, 2);
    r = cmd(f, "HMGET pa:conv:{whatsapp:106:1} name user_id last_entry");
    assert_string_equal(r->element[0]->str, "Kerry");
    assert_string_equal(r->element[1]->str, "16505550002");
    assert_string_equal(r->element[2]->str, "1765000000000-7");
    freeReplyObject(r);
    assert_int_equal(integer(f, "XPENDING %s:events " DB_DISPATCH_GROUP, "pa"), 0);
}

/* The state of prefix P's keys an attempt may touch, as one text. */
static char *snapshot(struct fx *f, const char *P)
{
    static const char *const keys[] = {"conv:{whatsapp:106:1}", "conv:{whatsapp:106:2}",
                                       "conv:{whatsapp:106:5}", "agent:{ag1}"};
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        redisReply *r = cmd(f, "DUMP %s:%s", P, keys[i]);
        len += (size_t)snprintf(out + len, cap - len, "%s=%zu:", keys[i], r->len);
        if (r->type == REDIS_REPLY_STRING)
            for (size_t k = 0; k < r->len && len + 3 < cap; k++)
                len += (size_t)snprintf(out + len, cap - len, "%02x", (unsigned char)r->str[k]);
        freeReplyObject(r);
    }
    redisReply *r = cmd(f, "XPENDING %s:events " DB_DISPATCH_GROUP, P);
    snprintf(out + len, cap - len, " pending=%lld", r->element[0]->integer);
    freeReplyObject(r);
    return out;
}

/* The plain updates of b under P are refused, and nothing of P changed. */
static void refused_untouched(struct fx *f, const char *P, struct batch *b)
{
    char *before = snapshot(f, P);
    assert_int_equal(apply_plain(f, P, b), 0);
    char *after = snapshot(f, P);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void nothing_is_written_unless_every_event_is_plain(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    /* an open conversation is routed by the script */
    struct batch b = {0};
    add(&b, "1765000000000-1", "whatsapp:106:1", "message", "", "Kerry");
    add(&b, "1765000000000-2", "whatsapp:106:5", "message", "", "Dee");
    seed(f, "pa", &b);
    read_all(f, "pa", "c1", 100);
    refused_untouched(f, "pa", &b);

    /* a raised priority re-scores the queue: the script's */
    run(f, "FLUSHALL");
    struct batch c = {0};
    add(&c, "1765000000000-1", "whatsapp:106:1", "message", "urgent", "Kerry");
    seed(f, "pa", &c);
    read_all(f, "pa", "c1", 100);
    refused_untouched(f, "pa", &c);
}

static void an_entry_of_another_consumer_leaves_the_run_to_the_script(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    struct batch all = {0};
    add(&all, "1765000000000-1", "whatsapp:106:1", "message", "", "Kerry");
    add(&all, "1765000000000-2", "whatsapp:106:2", "message", "", "Ann");
    add(&all, "1765000000000-3", "whatsapp:106:1", "message", "", "Kerry");
    seed(f, "pa", &all);
    /* another process holds the first entry, unapplied: the script would apply it first */
    read_all(f, "pa", "other", 1);
    read_all(f, "pa", "c1", 100);
    struct batch mine = {0};
    add(&mine, "1765000000000-2", "whatsapp:106:2", "message", "", "Ann");
    add(&mine, "1765000000000-3", "whatsapp:106:1", "message", "", "Kerry");
    refused_untouched(f, "pa", &mine);
    /* once it is acknowledged, the same run is plain */
    run(f, "XACK pa:events " DB_DISPATCH_GROUP " 1765000000000-1");
    assert_int_equal(apply_plain(f, "pa", &mine), 1);
    assert_int_equal(integer(f, "XPENDING %s:events " DB_DISPATCH_GROUP, "pa"), 0);
}

/* Another client changes a watched conversation after the first round, before EXEC reaches
 * Redis: Redis runs nothing of the transaction, and the run is left to the script. */
static int interfered;
static void interfere(void *arg)
{
    struct fx *f = arg;
    run(f, "HSET pa:conv:{whatsapp:106:2} note changed-meanwhile");
    interfered++;
}

static void a_conversation_changed_before_exec_aborts_the_transaction(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    struct batch b = {0};
    add(&b, "1765000000000-1", "whatsapp:106:1", "message", "", "Kerry");
    add(&b, "1765000000000-2", "whatsapp:106:2", "message", "", "Ann");
    seed(f, "pa", &b);
    read_all(f, "pa", "c1", 100);
    interfered = 0;
    assert_int_equal(apply_plain_with(f, "pa", &b, interfere, f), 0);
    assert_int_equal(interfered, 1);
    /* nothing of the transaction: no history item, no field, both entries still pending */
    assert_int_equal(integer(f, "LLEN %s:conv:{whatsapp:106:1}:items", "pa"), 0);
    assert_int_equal(integer(f, "LLEN %s:conv:{whatsapp:106:2}:items", "pa"), 0);
    assert_int_equal(integer(f, "XLEN %s:agent:{ag1}", "pa"), 0);
    redisReply *r = cmd(f, "HMGET pa:conv:{whatsapp:106:1} unread last_entry");
    assert_string_equal(r->element[0]->str, "3");
    assert_string_equal(r->element[1]->str, "1-1");
    freeReplyObject(r);
    assert_int_equal(integer(f, "XPENDING %s:events " DB_DISPATCH_GROUP, "pa"), 2);
    /* the same run again, undisturbed, is written */
    assert_int_equal(apply_plain(f, "pa", &b), 1);
    assert_int_equal(integer(f, "LLEN %s:conv:{whatsapp:106:2}:items", "pa"), 1);
    assert_int_equal(integer(f, "XPENDING %s:events " DB_DISPATCH_GROUP, "pa"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_plain_updates_write_what_the_script_writes),
        cmocka_unit_test(nothing_is_written_unless_every_event_is_plain),
        cmocka_unit_test(an_entry_of_another_consumer_leaves_the_run_to_the_script),
        cmocka_unit_test(a_conversation_changed_before_exec_aborts_the_transaction),
        cmocka_unit_test(a_profile_already_written_is_not_sent_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
