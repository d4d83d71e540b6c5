/* test_wake.c - src/stream/wake.c against a real redis-server: a write wakes the watchers of
 * its stream with its entries; a watch added while the read blocks is served at once, also
 * when it comes right after the read was sent (the kick stream; reads here block for ten
 * minutes, so anything left to the end of a read would never arrive within the test); an
 * idle waker sends nothing; an unwatched callback is not called again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "redis/redis.h"
#include "stream/wake.h"
#include "redis_fixture.h"
#include "testutil.h"

#define LONG_BLOCK_MS 600000

struct seen {
    int calls;
    size_t entries;
    char last[48];
    struct db_wake_watch *self; /* unwatched from inside the callback when set */
};

static void cb(const char *key, const redisReply *entries, void *arg)
{
    struct seen *s = arg;
    (void)key;
    s->calls++;
    s->entries += entries->elements;
    snprintf(s->last, sizeof s->last, "%s", entries->element[entries->elements - 1]->element[0]->str);
    if (s->self) {
        db_wake_unwatch(s->self);
        s->self = NULL;
    }
}

struct fx {
    struct event_base *base;
    struct db_test_redis *srv;
    struct db_redis *main;
    struct db_wake *w;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    f->srv = db_test_redis_start(NULL);
    struct db_err e = {0};
    struct db_redis_opts ro = {.url = db_test_redis_url(f->srv)};
    assert_int_equal(db_redis_new(f->base, &ro, &f->main, &e), DB_OK);
    assert_int_equal(db_wake_new(f->base, db_test_redis_url(f->srv), f->main, "t:wake:{me}",
                                 LONG_BLOCK_MS, 1500, &f->w, &e),
                     DB_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    db_redis_free(f->main);
    db_wake_free(f->w);
    event_base_free(f->base);
    db_test_redis_stop(f->srv);
    free(f);
    return 0;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) { (void)fd, (void)what, (void)arg; }

/* Runs the loop until *counter reaches n or ms pass (a generous bound, not a measurement). */
static void run_until(struct fx *f, const int *counter, int n, int ms)
{
    struct event *tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(tick, &tv);
    long long deadline = db_test_now_ms() + ms;
    while ((!counter || *counter < n) && db_test_now_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_free(tick);
}

static void xadd(struct fx *f, const char *key, int n)
{
    for (int i = 0; i < n; i++) {
        redisReply *r = redisCommand(db_test_redis_ctx(f->srv), "XADD %s * n %d", key, i);
        assert_non_null(r);
        freeReplyObject(r);
    }
}

static void a_write_wakes_its_watchers(void **state)
{
    struct fx *f = *state;
    struct seen a = {0}, b = {0}, other = {0};
    struct db_wake_watch *wa = db_wake_watch(f->w, "t:s1", "$", cb, &a);
    struct db_wake_watch *wb = db_wake_watch(f->w, "t:s1", "$", cb, &b);
    struct db_wake_watch *wo = db_wake_watch(f->w, "t:s2", "$", cb, &other);
    run_until(f, NULL, 0, 200); /* the read is blocked now */
    xadd(f, "t:s1", 3);
    /* A read may end with the first entry: the next one brings the rest. */
    for (int i = 0; i < 3 && b.entries < 3; i++) run_until(f, &b.calls, b.calls + 1, 5000);
    assert_int_equal(a.entries, 3);
    assert_int_equal(b.entries, 3);
    assert_string_equal(a.last, b.last);
    assert_int_equal(other.calls, 0);
    db_wake_unwatch(wa);
    db_wake_unwatch(wb);
    db_wake_unwatch(wo);
}

static void a_new_watch_is_served_at_once(void **state)
{
    struct fx *f = *state;
    struct seen first = {0};
    struct db_wake_watch *w0 = db_wake_watch(f->w, "t:first", "$", cb, &first);
    run_until(f, NULL, 0, 100);
    /* Each round watches a new stream right after the read went out (or while it blocks) and
     * writes to it at once: the read must end and start again with the new stream. */
    for (int round = 0; round < 20; round++) {
        char key[32];
        snprintf(key, sizeof key, "t:new%d", round);
        struct seen s = {0};
        struct db_wake_watch *h = db_wake_watch(f->w, key, "0-0", cb, &s);
        xadd(f, key, 1);
        run_until(f, &s.calls, 1, 5000);
        if (s.calls != 1) fail_msg("round %d: the new stream's entry did not wake it", round);
        db_wake_unwatch(h);
        if (round % 2) run_until(f, NULL, 0, 20); /* half the rounds: while the read blocks */
    }
    db_wake_unwatch(w0);
}

static void idle_costs_nothing_and_unwatch_stops_calls(void **state)
{
    struct fx *f = *state;
    struct seen s = {0};
    s.self = db_wake_watch(f->w, "t:quiet", "$", cb, &s);
    run_until(f, NULL, 0, 200);
    unsigned long reads = db_wake_reads(f->w);
    run_until(f, NULL, 0, 500);
    assert_int_equal(db_wake_reads(f->w), reads); /* blocked, nothing sent */
    xadd(f, "t:quiet", 1);
    run_until(f, &s.calls, 1, 5000);
    assert_int_equal(s.calls, 1); /* and it unwatched itself inside the callback */
    xadd(f, "t:quiet", 1);
    run_until(f, NULL, 0, 300);
    assert_int_equal(s.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_write_wakes_its_watchers, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_watch_is_served_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_costs_nothing_and_unwatch_stops_calls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
