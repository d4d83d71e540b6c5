/* test_consumer.c - src/stream/consumer.c's claims against a real redis-server: entries a dead
 * consumer left pending are taken over however the entries held here stand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "redis/redis.h"
#include "redis_fixture.h"
#include "stream/consumer.h"
#include "testutil.h"

#define MAX_SEEN 64

/* The owner keeps every entry; once the entry named wait_for arrives it is done with all of
 * them (acknowledges and releases them), as the sender is once the earlier entry of a
 * conversation that its held entries wait for comes. */
struct owner {
    struct fx *f;
    const char *wait_for; /* NULL: keeps everything */
    size_t n;
    char seen[MAX_SEEN][32];
    int claimed[MAX_SEEN];
    int done[MAX_SEEN];
};

struct fx {
    struct event_base *base;
    struct db_test_redis *srv;
    struct db_redis *shared;
    struct db_consumer *c;
    struct owner o;
};

static void finish_all(struct owner *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->done[i]) continue;
        o->done[i] = 1;
        freeReplyObject(db_test_redis_cmd(o->f->srv, "XACK s g %s", o->seen[i]));
        db_consumer_release(o->f->c, 0, o->seen[i]);
    }
}

static int take_cb(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct owner *o = arg;
    assert_int_equal(stream, 0);
    assert_true(o->n < MAX_SEEN);
    snprintf(o->seen[o->n], sizeof o->seen[o->n], "%s", entry->element[0]->str);
    o->claimed[o->n++] = claimed;
    if (o->wait_for && strcmp(entry->element[0]->str, o->wait_for) == 0) finish_all(o);
    return 1;
}

static int seen(const struct owner *o, const char *id)
{
    int k = 0;
    for (size_t i = 0; i < o->n; i++) k += strcmp(o->seen[i], id) == 0;
    return k;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) { (void)fd, (void)what, (void)arg; }

/* Runs the loop until cond(f) or ms elapse; returns cond(f). */
static int run_until(struct fx *f, int (*cond)(struct fx *), int ms)
{
    struct event *tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(tick, &tv);
    long long deadline = db_test_now_ms() + ms;
    while (!(cond && cond(f)) && db_test_now_ms() < deadline) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(tick);
    return cond ? cond(f) : 0;
}

/* XADDs n entries to s; their ids go to ids. */
static void add(struct fx *f, int n, char ids[][32])
{
    for (int i = 0; i < n; i++) {
        redisReply *x = db_test_redis_cmd(f->srv, "XADD s * n %d", i);
        snprintf(ids[i], 32, "%s", x->str);
        freeReplyObject(x);
    }
}

/* A consumer that died long ago: it read the next n entries and never spoke again. */
static void gone_reads(struct fx *f, const char *consumer, int n, int idle_ms)
{
    redisReply *r = db_test_redis_cmd(f->srv, "XREADGROUP GROUP g %s COUNT %d STREAMS s >", consumer, n);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    const redisReply *list = r->element[0]->element[1];
    assert_int_equal(list->elements, (size_t)n);
    for (size_t i = 0; i < list->elements; i++)
        freeReplyObject(db_test_redis_cmd(f->srv, "XCLAIM s g %s 0 %s IDLE %d JUSTID", consumer,
                            list->element[i]->element[0]->str, idle_ms));
    freeReplyObject(r);
}

static void start(struct fx *f, int count, int max_held, int claim_idle_ms)
{
    struct db_consumer_opts o = {.redis = f->shared,
                                 .redis_url = db_test_redis_url(f->srv),
                                 .redis_timeout_ms = 1000,
                                 .conn_name = "dbtest-consumer",
                                 .who = "test",
                                 .what = "stream",
                                 .group = "g",
                                 .consumer = "me",
                                 .streams = {"s"},
                                 .dead_key = "dead",
                                 .start = "0",
                                 .count = count,
                                 .max_held = max_held,
                                 .claim_idle_ms = claim_idle_ms};
    struct db_err e = {0};
    f->o.f = f;
    assert_int_equal(db_consumer_new(f->base, &o, take_cb, NULL, &f->o, &f->c, &e), DB_OK);
    db_consumer_start(f->c);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    f->srv = db_test_redis_start(NULL);
    struct db_redis_opts ro = {.url = db_test_redis_url(f->srv)};
    struct db_err e = {0};
    assert_int_equal(db_redis_new(f->base, &ro, &f->shared, &e), DB_OK);
    freeReplyObject(db_test_redis_cmd(f->srv, "XGROUP CREATE s g 0 MKSTREAM"));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    db_consumer_free(f->c);
    db_redis_free(f->shared);
    run_until(f, NULL, 20);
    db_test_redis_stop(f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

static char E[5][32];      /* entry ids of the first test */
static char late[32];      /* the dead consumer's entry of the second */
static const char *recent; /* a consumer that died a moment ago */

static int holds_all(struct fx *f) { return db_consumer_held(f->c) == 4; }
static int holds_30(struct fx *f) { return db_consumer_held(f->c) == 30; }
static int got_e0(struct fx *f) { return seen(&f->o, E[0]) > 0; }
static int got_late(struct fx *f) { return seen(&f->o, late) > 0; }

/* While the consumer fills up, the consumer that holds E[0] still refreshes it (it is alive
 * or only just died), so only entries of an older dead consumer are idle. */
static void refresh_recent(evutil_socket_t fd, short what, void *arg)
{
    struct fx *f = arg;
    (void)fd, (void)what;
    freeReplyObject(db_test_redis_cmd(f->srv, "XCLAIM s g %s 0 %s JUSTID", recent, E[0]));
}

/* The stall of test_outbound_faults: max_held read entries and count claimed ones all wait
 * for E[0], which a consumer that died a moment ago left pending and which was not idle yet
 * when the later, long idle entries of an older dead consumer were claimed.  Once E[0] is
 * idle it is claimed, though the consumer holds max_held + count entries: it is older than
 * every one of them. */
static void an_entry_older_than_all_held_is_claimed_beyond_the_room(void **state)
{
    struct fx *f = *state;
    recent = "recent";
    add(f, 5, E);
    gone_reads(f, recent, 1, 0);     /* E[0] */
    gone_reads(f, "old", 2, 600000); /* E[1], E[2] */
    f->o.wait_for = E[0];

    struct event *alive = event_new(f->base, -1, EV_PERSIST, refresh_recent, f);
    struct timeval every = {0, 100 * 1000};
    event_add(alive, &every);
    /* max_held 2, count 2: reads E[3] and E[4]; the first round (after 1 s) claims E[1] and
     * E[2] */
    start(f, 2, 2, 1500);
    assert_true(run_until(f, holds_all, 5000));
    event_free(alive); /* "recent" is dead from here on */
    assert_int_equal(f->o.n, 4);
    assert_int_equal(seen(&f->o, E[0]), 0);
    long long t0 = db_test_now_ms();

    /* E[0] is idle 1.5 s from now; a round runs every 500 ms */
    assert_true(run_until(f, got_e0, 6000));
    printf("# claimed the older entry %lld ms after its consumer died\n", db_test_now_ms() - t0);
    assert_int_equal(f->o.n, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(seen(&f->o, E[i]), 1);
    assert_int_equal(f->o.claimed[4], 1);
    assert_int_equal(db_consumer_held(f->c), 0);
    /* nothing is handed twice afterwards */
    run_until(f, NULL, 2000);
    assert_int_equal(f->o.n, 5);
    redisReply *r = db_test_redis_cmd(f->srv, "XPENDING s g");
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
}

/* XAUTOCLAIM from 0-0 looks at no more than ten times COUNT pending entries: behind 30
 * entries held here, with room for 2 more, a dead consumer's idle entry was never found. */
static void an_idle_entry_behind_many_held_ones_is_claimed(void **state)
{
    struct fx *f = *state;
    char ids[31][32];
    add(f, 30, ids);
    start(f, 2, 30, 1000);
    assert_true(run_until(f, holds_30, 5000));
    /* no room to read: the next entry goes to a consumer that dies at once */
    add(f, 1, ids + 30);
    snprintf(late, sizeof late, "%s", ids[30]);
    gone_reads(f, "gone", 1, 600000);
    assert_true(run_until(f, got_late, 4000));
    assert_int_equal(f->o.n, 31);
    assert_int_equal(f->o.claimed[30], 1);
    assert_int_equal(db_consumer_held(f->c), 31);
    /* the held ones stayed with this consumer, delivered once */
    redisReply *r = db_test_redis_cmd(f->srv, "XPENDING s g - + 100");
    assert_int_equal(r->elements, 31);
    for (size_t i = 0; i < 30; i++) {
        assert_string_equal(r->element[i]->element[1]->str, "me");
        assert_int_equal(r->element[i]->element[3]->integer, 1);
    }
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_entry_older_than_all_held_is_claimed_beyond_the_room,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(an_idle_entry_behind_many_held_ones_is_claimed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("consumer", tests, NULL, NULL);
}
