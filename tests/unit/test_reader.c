/* test_reader.c - src/stream/reader.c (a consumer group's read loop) against a real redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "stream/reader.h"
#include "redis_fixture.h"
#include "testutil.h"

#define MAX_SEEN 64

/* The owner: a room to report, and every entry the reader handed over, per stream. */
struct owner {
    size_t room;
    int reads;  /* calls of the entries callback */
    size_t most; /* the most entries one call brought */
    size_t n[2];
    char seen[2][MAX_SEEN][32]; /* entry ids */
};

static size_t room_cb(void *arg) { return ((struct owner *)arg)->room; }

static void entries_cb(const redisReply *const lists[2], void *arg)
{
    struct owner *o = arg;
    o->reads++;
    for (int s = 0; s < 2; s++) {
        size_t n = lists[s] ? lists[s]->elements : 0;
        if (n > o->most) o->most = n;
    }
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; lists[s] && i < lists[s]->elements; i++) {
            assert_true(o->n[s] < MAX_SEEN);
            snprintf(o->seen[s][o->n[s]++], 32, "%s", lists[s]->element[i]->element[0]->str);
            o->room--;
        }
}

struct fx {
    struct event_base *base;
    struct db_test_redis *srv;
    struct db_reader *r;
    struct owner o;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg) { (void)fd, (void)what, (void)arg; }

/* Runs the loop until owner has n entries of stream s, or ms elapse; returns the count. */
static size_t run_until_seen(struct fx *f, int s, size_t n, int ms)
{
    struct event *tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(tick, &tv);
    long long deadline = db_test_now_ms() + ms;
    while (f->o.n[s] < n && db_test_now_ms() < deadline) event_base_loop(f->base, EVLOOP_ONCE);
    event_free(tick);
    return f->o.n[s];
}

static void run_for(struct fx *f, int ms) { run_until_seen(f, 0, (size_t)-1, ms); }

/* XADDs n entries to stream; the ids go to ids (may be NULL). */
static void add(struct fx *f, const char *stream, int n, char ids[][32])
{
    for (int i = 0; i < n; i++) {
        redisReply *x = redisCommand(db_test_redis_ctx(f->srv), "XADD %s * n %d", stream, i);
        assert_non_null(x);
        assert_int_equal(x->type, REDIS_REPLY_STRING);
        if (ids) snprintf(ids[i], 32, "%s", x->str);
        freeReplyObject(x);
    }
}

static void start_with(struct fx *f, const char *s0, const char *s1, const char *from, int count,
                       int min_room)
{
    struct db_reader_opts o = {.redis_url = db_test_redis_url(f->srv),
                               .redis_timeout_ms = 1000,
                               .conn_name = "dbtest-reader",
                               .who = "test",
                               .what = "stream",
                               .group = "g",
                               .consumer = "c1",
                               .streams = {s0, s1},
                               .start = from,
                               .count = count,
                               .min_room = min_room};
    struct db_err e = {0};
    assert_int_equal(db_reader_new(f->base, &o, room_cb, entries_cb, &f->o, &f->r, &e), DB_OK);
    db_reader_more(f->r);
}

static void start(struct fx *f, const char *s0, const char *s1, const char *from, int count)
{
    start_with(f, s0, s1, from, count, 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    f->srv = db_test_redis_start(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    db_reader_free(f->r);
    run_for(f, 20);
    db_test_redis_stop(f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void reads_from_the_start_no_more_than_the_room(void **state)
{
    struct fx *f = *state;
    char ids[5][32];
    add(f, "s", 5, ids);
    f->o.room = 3;
    start(f, "s", NULL, "0", 64);
    assert_int_equal(run_until_seen(f, 0, 3, 3000), 3);
    assert_true(db_reader_group_ready(f->r));
    /* no room: nothing more is read, though two entries wait */
    run_for(f, 300);
    assert_int_equal(f->o.n[0], 3);
    f->o.room = 10;
    db_reader_more(f->r);
    assert_int_equal(run_until_seen(f, 0, 5, 3000), 5);
    for (int i = 0; i < 5; i++) assert_string_equal(f->o.seen[0][i], ids[i]);
    /* a new entry reaches the read that blocks meanwhile */
    add(f, "s", 1, NULL);
    assert_int_equal(run_until_seen(f, 0, 6, 3000), 6);
}

static void count_bounds_each_read(void **state)
{
    struct fx *f = *state;
    add(f, "s", 7, NULL);
    f->o.room = 100;
    start(f, "s", NULL, "0", 2);
    assert_int_equal(run_until_seen(f, 0, 7, 3000), 7);
    assert_int_equal(f->o.most, 2);
    assert_true(f->o.reads >= 4); /* 2 + 2 + 2 + 1 */
}

/* With min_room, a read waits until the owner has room for that many entries, then takes a
 * whole read instead of what one freed slot allows. */
static void min_room_waits_for_a_whole_read(void **state)
{
    struct fx *f = *state;
    add(f, "s", 10, NULL);
    f->o.room = 4;
    start_with(f, "s", NULL, "0", 4, 4);
    assert_int_equal(run_until_seen(f, 0, 4, 3000), 4);
    /* room for 1, 2, then 3 entries: below min_room, nothing is read */
    for (size_t r = 1; r < 4; r++) {
        f->o.room = r;
        db_reader_more(f->r);
        run_for(f, 150);
        assert_int_equal(f->o.n[0], 4);
    }
    f->o.room = 4;
    db_reader_more(f->r);
    assert_int_equal(run_until_seen(f, 0, 8, 3000), 8);
    assert_int_equal(f->o.reads, 2);
    assert_int_equal(f->o.most, 4);
}

static void a_new_group_at_dollar_skips_what_was_there(void **state)
{
    struct fx *f = *state;
    add(f, "s", 3, NULL);
    f->o.room = 10;
    start(f, "s", NULL, "$", 64);
    run_for(f, 300);
    assert_int_equal(f->o.n[0], 0);
    char ids[1][32];
    add(f, "s", 1, ids);
    assert_int_equal(run_until_seen(f, 0, 1, 3000), 1);
    assert_string_equal(f->o.seen[0][0], ids[0]);
}

static void two_streams_come_apart(void **state)
{
    struct fx *f = *state;
    char a[2][32], b[3][32];
    add(f, "a", 2, a);
    add(f, "b", 3, b);
    f->o.room = 10;
    start(f, "a", "b", "0", 64);
    assert_int_equal(run_until_seen(f, 1, 3, 3000), 3);
    assert_int_equal(f->o.n[0], 2);
    assert_string_equal(f->o.seen[0][1], a[1]);
    assert_string_equal(f->o.seen[1][2], b[2]);
}

static void a_deleted_group_is_created_again(void **state)
{
    struct fx *f = *state;
    add(f, "s", 2, NULL);
    f->o.room = 50;
    start(f, "s", NULL, "0", 64);
    assert_int_equal(run_until_seen(f, 0, 2, 3000), 2);
    redisReply *x = redisCommand(db_test_redis_ctx(f->srv), "XGROUP DESTROY s g");
    assert_int_equal(x->integer, 1);
    freeReplyObject(x);
    add(f, "s", 1, NULL);
    /* the group is created again from "0", so the stream is read again from its start */
    assert_int_equal(run_until_seen(f, 0, 5, 5000), 5);
    assert_string_equal(f->o.seen[0][2], f->o.seen[0][0]);
    assert_true(db_reader_group_ready(f->r));
}

static void stopped_reads_no_more_and_free_calls_nobody(void **state)
{
    struct fx *f = *state;
    f->o.room = 10;
    start(f, "s", NULL, "0", 64);
    run_for(f, 200); /* group created, a read blocks */
    assert_true(db_reader_group_ready(f->r));
    db_reader_stop(f->r);
    add(f, "s", 1, NULL);
    run_for(f, 200); /* the read in flight still hands over what it brought */
    assert_int_equal(f->o.n[0], 1);
    add(f, "s", 1, NULL);
    db_reader_more(f->r);
    run_for(f, 300);
    assert_int_equal(f->o.n[0], 1);
    int reads = f->o.reads;
    db_reader_free(f->r);
    f->r = NULL;
    run_for(f, 50);
    assert_int_equal(f->o.reads, reads);
}

static void unreachable_redis_is_retried(void **state)
{
    struct fx *f = *state;
    add(f, "s", 1, NULL);
    f->o.room = 10;
    /* the reader's warnings go to stderr: catch them in a file */
    char path[] = "/tmp/dbtest-reader-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    db_test_redis_kill(f->srv, SIGSTOP);
    start(f, "s", NULL, "0", 64);
    run_for(f, 1800); /* past the 1 s connect timeout: the group creation fails */
    assert_int_equal(f->o.n[0], 0);
    db_test_redis_kill(f->srv, SIGCONT);
    size_t seen = run_until_seen(f, 0, 1, 6000);
    dup2(saved, 2);
    close(saved);
    close(fd);
    assert_int_equal(seen, 1);
    size_t len;
    char *log = db_test_read_file(path, &len);
    unlink(path);
    assert_non_null(strstr(log, "stream group creation failed"));
    free(log);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(reads_from_the_start_no_more_than_the_room),
        T(count_bounds_each_read),
        T(min_room_waits_for_a_whole_read),
        T(a_new_group_at_dollar_skips_what_was_there),
        T(two_streams_come_apart),
        T(a_deleted_group_is_created_again),
        T(stopped_reads_no_more_and_free_calls_nobody),
        T(unreachable_redis_is_retried),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
