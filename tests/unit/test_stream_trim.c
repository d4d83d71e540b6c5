/* test_stream_trim.c - src/redis/scripts/stream_trim.lua in a real redis-server: the events
 * stream is trimmed to about its cap, except what a consumer group has not read (delivered
 * or pending) until it has; the hard cap removes even that and says how much.  Redis runs
 * with 10 entries per stream node, so an approximate trim lands within 10 of its mark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis/scripts.h"
#include "redis_fixture.h"
#include "testutil.h"

#define NODE 10

static struct db_test_redis *R;

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start("--stream-node-max-entries 10");
    return R ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    db_test_redis_stop(R);
    return 0;
}

static int added; /* entries added since fresh() */

static int fresh(void **state)
{
    (void)state;
    added = 0;
    freeReplyObject(redisCommand(db_test_redis_ctx(R), "FLUSHALL"));
    return 0;
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(R), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis: %s", r->str);
    return r;
}

static long long num(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(R), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER) fail_msg("not a number: %s", r->str ? r->str : "?");
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Appends n entries; the id of the k-th (1-based) entry ever added is ids[k]. */
static char ids[4096][32];
static void add(int n)
{
    for (int i = 0; i < n; i++) {
        redisReply *r = cmd("XADD s * n %d", added + 1);
        snprintf(ids[++added], sizeof ids[0], "%s", r->str);
        freeReplyObject(r);
    }
}

struct trim { long long removed, forced, held; char holder[64]; };

static struct trim trim(long cap, long hard)
{
    struct trim t = {0};
    redisReply *r = cmd("EVAL %s 1 s %ld %ld", db_lua_stream_trim, cap, hard);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal((int)r->elements, 4);
    t.removed = r->element[0]->integer;
    t.forced = r->element[1]->integer;
    t.held = r->element[2]->integer;
    snprintf(t.holder, sizeof t.holder, "%s", r->element[3]->str);
    freeReplyObject(r);
    return t;
}

/* Entries newly delivered to group g (consumer c), up to count. */
static int read_new(const char *g, int count)
{
    redisReply *r = cmd("XREADGROUP GROUP %s c COUNT %d STREAMS s >", g, count);
    int n = r->type == REDIS_REPLY_ARRAY ? (int)r->element[0]->element[1]->elements : 0;
    freeReplyObject(r);
    return n;
}

static void ack(const char *g, int from, int to)
{
    for (int k = from; k <= to; k++) assert_int_equal(num("XACK s %s %s", g, ids[k]), 1);
}

static int exists(int k)
{
    redisReply *r = cmd("XRANGE s %s %s", ids[k], ids[k]);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n;
}

static void under_the_cap_nothing_is_removed(void **state)
{
    (void)state;
    add(30);
    struct trim t = trim(50, 0);
    assert_int_equal(t.removed, 0);
    assert_int_equal(t.held, 0);
    assert_string_equal(t.holder, "");
    assert_int_equal(num("XLEN s"), 30);
}

/* 3000 entries: more than an approximate XTRIM removes by default in one call (100 nodes). */
static void without_groups_the_cap_holds(void **state)
{
    (void)state;
    add(3000);
    struct trim t = trim(50, 0);
    long long len = num("XLEN s");
    assert_true(len >= 50 && len < 50 + NODE);
    assert_int_equal(t.removed, 3000 - len);
    assert_int_equal(t.held, 0);
}

/* The rule itself: a length cap alone would leave "slow" 50 of the 250 entries it still
 * needs. */
static void a_group_behind_the_cap_keeps_what_it_has_not_read(void **state)
{
    (void)state;
    add(300);
    freeReplyObject(cmd("XGROUP CREATE s fast 0"));
    freeReplyObject(cmd("XGROUP CREATE s slow 0"));
    assert_int_equal(read_new("fast", 1000), 300);
    ack("fast", 1, 300);
    assert_int_equal(read_new("slow", 100), 100);
    ack("slow", 1, 50); /* 51..100 pending, 101..300 not delivered */
    struct trim t = trim(50, 0);
    assert_string_equal(t.holder, "slow");
    assert_int_equal(t.forced, 0);
    long long len = num("XLEN s");
    assert_true(len >= 250 && len < 250 + NODE);
    assert_int_equal(t.held, len - 50);
    for (int k = 51; k <= 300; k++)
        if (!exists(k)) fail_msg("entry %d, which slow still needs, was removed", k);
    assert_int_equal(read_new("slow", 1000), 200);
    /* Still held: the 250 are pending now. */
    t = trim(50, 0);
    assert_true(num("XLEN s") >= 250);
    ack("slow", 51, 300);
    t = trim(50, 0);
    len = num("XLEN s");
    assert_true(len >= 50 && len < 50 + NODE);
    assert_int_equal(t.held, 0);
    assert_string_equal(t.holder, "");
}

/* Nothing undelivered, but one old entry still pending: it and all after it stay. */
static void an_old_pending_entry_is_kept(void **state)
{
    (void)state;
    add(300);
    freeReplyObject(cmd("XGROUP CREATE s g 0"));
    assert_int_equal(read_new("g", 1000), 300);
    ack("g", 2, 300);
    struct trim t = trim(50, 0);
    assert_true(exists(1));
    assert_string_equal(t.holder, "g");
    assert_int_equal(num("XLEN s"), 300);
    ack("g", 1, 1);
    trim(50, 0);
    assert_true(num("XLEN s") < 50 + NODE);
}

/* A group created at '$' before a trim has no lag Redis can tell: its unread entries are
 * counted instead, and kept. */
static void a_group_whose_lag_redis_cannot_tell(void **state)
{
    (void)state;
    add(100);
    freeReplyObject(cmd("XGROUP CREATE s late $"));
    freeReplyObject(cmd("XTRIM s MAXLEN 90"));
    add(200);
    struct trim t = trim(50, 0);
    assert_string_equal(t.holder, "late");
    for (int k = 101; k <= 300; k++)
        if (!exists(k)) fail_msg("entry %d, which late has not read, was removed", k);
    assert_int_equal(read_new("late", 1000), 200);
}

/* Past the hard cap even unread entries go, counted apart and naming the group. */
static void the_hard_cap_removes_unread_entries_and_says_so(void **state)
{
    (void)state;
    add(300);
    freeReplyObject(cmd("XGROUP CREATE s gone 0"));
    struct trim t = trim(50, 100);
    long long len = num("XLEN s");
    assert_true(len >= 100 && len < 100 + NODE);
    assert_int_equal(t.removed, 300 - len);
    assert_int_equal(t.forced, 300 - len);
    assert_int_equal(t.held, len - 50);
    assert_string_equal(t.holder, "gone");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(under_the_cap_nothing_is_removed, fresh),
        cmocka_unit_test_setup(without_groups_the_cap_holds, fresh),
        cmocka_unit_test_setup(a_group_behind_the_cap_keeps_what_it_has_not_read, fresh),
        cmocka_unit_test_setup(an_old_pending_entry_is_kept, fresh),
        cmocka_unit_test_setup(a_group_whose_lag_redis_cannot_tell, fresh),
        cmocka_unit_test_setup(the_hard_cap_removes_unread_entries_and_says_so, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
