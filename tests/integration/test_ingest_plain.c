/* test_ingest_plain.c - src/store/ingest_tx.c against a real redis-server: plain webhooks
 * written as one transaction leave exactly what ingest_plain.lua leaves for the same
 * arguments on the same state (the same events in the same order, the same dedupe keys in
 * the same database, the same customer records, the same count of new events per webhook),
 * nothing when the script must decide, and no event twice when two processes take the same
 * webhook at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "redis/redis.h"
#include "redis/scripts.h"
#include "redis_fixture.h"
#include "store/ingest_tx.h"
#include "testutil.h"

#define MAXARG 24
#define TTL "691200"

struct fx {
    struct event_base *base;
    struct db_test_redis *srv;
};

/* Checked commands on the fixture's server (redis_fixture.h). */
#define cmd(f, ...) db_test_redis_cmd((f)->srv, __VA_ARGS__)
#define run(f, ...) db_test_redis_run((f)->srv, __VA_ARGS__)

/* One webhook's arguments in ingest_plain.lua's layout. */
struct item {
    char s[MAXARG][256];
    const char *v[MAXARG];
    size_t l[MAXARG];
    size_t n;
    int customers; /* the '' and ttl before the customers are in */
};

static void arg(struct item *it, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->s[it->n], sizeof it->s[it->n], fmt, ap);
    va_end(ap);
    it->v[it->n] = it->s[it->n];
    it->l[it->n] = strlen(it->s[it->n]);
    it->n++;
}

static void head(struct item *it, const char *P, const char *spec)
{
    it->n = 0;
    it->customers = 0;
    arg(it, TTL), arg(it, "%s:events", P), arg(it, "%s", spec);
}

static void event(struct item *it, const char *P, const char *key, int n)
{
    arg(it, "%s:dedupe:whatsapp:106:%s", P, key);
    arg(it, "{\"v\":1,\"n\":%d,\"text\":\"<b>%s</b>\"}", n, key);
}

static void customer(struct item *it, const char *P, const char *conv, const char *id,
                     const char *ts)
{
    if (!it->customers++) arg(it, ""), arg(it, "2592000");
    arg(it, "%s:customer:{%s}", P, conv), arg(it, "%s", id), arg(it, "%s", ts);
}

/* Three webhooks.  The first: two new events and two customers (one older than what is
 * kept).  The module writes it alone and the next two together.  The second: a redelivery,
 * an event of the first webhook again, a new event, and two customers (one older than the
 * first webhook's).  The third: a new event, the second's new event again (in the same
 * transaction), and a customer older than the second's. */
static void three(struct item it[3], const char *P, const char *spec)
{
    head(&it[0], P, spec);
    event(&it[0], P, "e1", 1), event(&it[0], P, "e2", 2);
    customer(&it[0], P, "c1", "wamid.1", "1700000000");
    customer(&it[0], P, "c2", "wamid.2", "1700000200");
    head(&it[1], P, spec);
    event(&it[1], P, "dup", 3), event(&it[1], P, "e1", 4), event(&it[1], P, "e4", 5);
    customer(&it[1], P, "c2", "wamid.3", "1700000100");
    customer(&it[1], P, "c3", "wamid.4", "5");
    head(&it[2], P, spec);
    event(&it[2], P, "e3", 6), event(&it[2], P, "e4", 7);
    customer(&it[2], P, "c3", "wamid.5", "4");
}

/* The same state under P: a redelivery's key (in database db) and two customer records. */
static void seed(struct fx *f, const char *P, int db)
{
    run(f, "SELECT %d", db);
    run(f, "SET %s:dedupe:whatsapp:106:dup 1 EX 100", P);
    run(f, "SELECT 0");
    run(f, "SET %s:customer:{c1} %s", P, "1700000100 wamid.old");
    run(f, "SET %s:customer:{c3} junk", P);
}

/* Runs it through ingest_plain.lua as the store does; returns its count. */
static long long apply_script(struct fx *f, const struct item *it)
{
    size_t n = strlen(db_lua_customer_seen) + strlen(db_lua_dedupe) + strlen(db_lua_ingest_plain);
    char *lua = malloc(n + 3);
    assert_non_null(lua);
    snprintf(lua, n + 3, "%s\n%s\n%s", db_lua_customer_seen, db_lua_dedupe, db_lua_ingest_plain);
    const char *v[MAXARG + 3] = {"EVAL", lua, "0"};
    size_t l[MAXARG + 3] = {4, strlen(lua), 1};
    for (size_t i = 0; i < it->n; i++) v[3 + i] = it->v[i], l[3 + i] = it->l[i];
    redisReply *r = redisCommandArgv(db_test_redis_ctx(f->srv), (int)it->n + 3, v, l);
    free(lua);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER) fail_msg("script: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    long long w = r->integer;
    freeReplyObject(r);
    return w;
}

struct result {
    int called, applied;
    long long written;
};

static void done_cb(int applied, long long written, void *arg)
{
    struct result *r = arg;
    r->called++;
    r->applied = applied;
    r->written = written;
}

/* One pass of the loop, at most 10 ms. */
static void spin(struct fx *f)
{
    struct timeval tv = {0, 10000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static struct db_ingest_tx *tx_new_timeout(struct fx *f, int timeout_ms)
{
    struct db_redis_opts o = {.url = db_test_redis_url(f->srv), .command_timeout_ms = timeout_ms};
    struct db_ingest_tx *t = NULL;
    struct db_err e = {0};
    assert_int_equal(db_ingest_tx_new(f->base, &o, &t, &e), DB_OK);
    int up = 0;
    for (int i = 0; i < 200 && !(up = db_ingest_tx_up(t)); i++) spin(f);
    assert_true(up);
    return t;
}

static struct db_ingest_tx *tx_new(struct fx *f) { return tx_new_timeout(f, 2000); }

/* Runs the loop until each of r[0..n) was answered (at most 3 s), then checks each was
 * answered once. */
static void wait_answers(struct fx *f, const struct result *r, size_t n)
{
    int all = 0;
    for (int k = 0; k < 300 && !all; k++) {
        spin(f);
        all = 1;
        for (size_t i = 0; i < n; i++) all &= r[i].called > 0;
    }
    for (size_t i = 0; i < n; i++) assert_int_equal(r[i].called, 1);
}

/* Gives the n items to the module together (the first starts a run, the others wait for the
 * next) and waits for every answer. */
static void apply_tx(struct fx *f, const struct item *it, size_t n, struct result *r)
{
    struct db_ingest_tx *t = tx_new(f);
    for (size_t i = 0; i < n; i++) {
        struct db_ingest_tx_item x = {it[i].v, it[i].l, it[i].n};
        db_ingest_tx_apply(t, &x, done_cb, &r[i]);
    }
    wait_answers(f, r, n);
    db_ingest_tx_free(t);
}

static long long integer(struct fx *f, const char *fmt, const char *P, const char *key)
{
    redisReply *r = cmd(f, fmt, P, key);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -9;
    freeReplyObject(r);
    return v;
}

/* Script under pa, transaction under pb, dedupe keys in database db (spec '' for 0). */
static void compare(struct fx *f, int db)
{
    char spec[32] = "";
    if (db) snprintf(spec, sizeof spec, "%d 0 0", db);
    run(f, "FLUSHALL");
    seed(f, "pa", db);
    seed(f, "pb", db);
    struct item a[3], b[3];
    three(a, "pa", spec);
    three(b, "pb", spec);
    long long wa[3];
    for (int i = 0; i < 3; i++) wa[i] = apply_script(f, &a[i]);
    struct result rb[3] = {{0}};
    apply_tx(f, b, 3, rb);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rb[i].applied, 1);
        assert_int_equal(rb[i].written, wa[i]);
    }
    /* the counts themselves: e1 and e2 new; e4 new, dup and e1 again not; e3 new, e4 not */
    assert_int_equal(wa[0], 2);
    assert_int_equal(wa[1], 1);
    assert_int_equal(wa[2], 1);
    /* the events, in order, without their stream ids */
    redisReply *xa = cmd(f, "XRANGE pa:events - +"), *xb = cmd(f, "XRANGE pb:events - +");
    assert_int_equal(xa->elements, 4);
    assert_int_equal(xb->elements, xa->elements);
    for (size_t i = 0; i < xa->elements; i++)
        db_test_same_reply(xa->element[i]->element[1], xb->element[i]->element[1], "event");
    freeReplyObject(xa);
    freeReplyObject(xb);
    /* the customers: c1 keeps its newer record, c2 has the first webhook's, c3's junk gives
     * way to the second's (the third's is older) */
    static const char *const want[3] = {"1700000100 wamid.old", "1700000200 wamid.2", "5 wamid.4"};
    for (int c = 0; c < 3; c++) {
        char k[8];
        snprintf(k, sizeof k, "c%d", c + 1);
        redisReply *ra = cmd(f, "GET pa:customer:{%s}", k), *rb2 = cmd(f, "GET pb:customer:{%s}", k);
        db_test_same_reply(ra, rb2, "customer");
        assert_string_equal(rb2->str, want[c]);
        freeReplyObject(ra);
        freeReplyObject(rb2);
        assert_true(integer(f, "TTL %s:customer:{%s}", "pb", k) > 2590000);
    }
    /* the dedupe keys in their database, with the dedupe ttl (dup kept its own) */
    run(f, "SELECT %d", db);
    static const char *const keys[4] = {"e1", "e2", "e3", "e4"};
    for (int i = 0; i < 4; i++) {
        char k[32];
        snprintf(k, sizeof k, "whatsapp:106:%s", keys[i]);
        assert_true(integer(f, "TTL %s:dedupe:%s", "pb", k) > 691000);
        assert_true(integer(f, "TTL %s:dedupe:%s", "pa", k) > 691000);
    }
    assert_true(integer(f, "TTL %s:dedupe:%s", "pb", "whatsapp:106:dup") <= 100);
    run(f, "SELECT 0");
    if (db) assert_int_equal(integer(f, "EXISTS %s:dedupe:%s", "pb", "whatsapp:106:e1"), 0);
}

static void the_transaction_writes_what_the_script_writes(void **state)
{
    compare(*state, 0);
}

static void the_dedupe_keys_go_to_their_own_database(void **state)
{
    compare(*state, 1);
}

/* Every key either side of an attempt could touch, as one text. */
static char *snapshot(struct fx *f, const char *P)
{
    static const char *const keys[] = {"events", "customer:{c1}", "customer:{c2}",
                                       "customer:{c3}", "dedupe:whatsapp:106:e1",
                                       "dedupe:whatsapp:106:e2", "dedupe:whatsapp:106:e3", "dedupe:whatsapp:106:e4",
                                       "dedupe:whatsapp:106:dup"};
    size_t cap = 1 << 14, len = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        redisReply *r = cmd(f, "DUMP %s:%s", P, keys[i]);
        len += (size_t)snprintf(out + len, cap - len, "%s=%zu;", keys[i], r->len);
        for (size_t j = 0; j < r->len && len + 3 < cap; j++)
            len += (size_t)snprintf(out + len, cap - len, "%02x", (unsigned char)r->str[j]);
        freeReplyObject(r);
    }
    return out;
}

/* Applies the webhook it under pb and checks that it changed nothing there. */
static struct result untouched(struct fx *f, const struct item *it)
{
    char *before = snapshot(f, "pb");
    struct result r = {0};
    apply_tx(f, it, 1, &r);
    char *after = snapshot(f, "pb");
    assert_string_equal(before, after);
    free(before);
    free(after);
    return r;
}

/* The first webhook of three() under pb with spec, refused: nothing written. */
static void refused(struct fx *f, const char *spec)
{
    struct item it[3];
    three(it, "pb", spec);
    assert_int_equal(untouched(f, it).applied, 0);
}

static void what_the_script_reads_its_own_way_is_left_to_it(void **state)
{
    struct fx *f = *state;
    /* a customer record of the earlier layout (a hash) */
    run(f, "FLUSHALL");
    seed(f, "pb", 0);
    run(f, "DEL pb:customer:{c1}");
    run(f, "HSET pb:customer:{c1} id wamid.h ts 1800000000");
    refused(f, "");
    /* a dedupe key of another type */
    run(f, "FLUSHALL");
    seed(f, "pb", 0);
    run(f, "RPUSH pb:dedupe:whatsapp:106:e2 x");
    refused(f, "");
    /* a customer record whose time Lua reads its own way */
    run(f, "FLUSHALL");
    seed(f, "pb", 0);
    run(f, "SET pb:customer:{c2} %s", "0x10 wamid.hex");
    refused(f, "");
    /* the main database's dedupe keys still count (dedupe_moved) */
    run(f, "FLUSHALL");
    seed(f, "pb", 1);
    refused(f, "1 0 1");
    /* and the same webhook goes through once nothing of that kind is left */
    run(f, "FLUSHALL");
    seed(f, "pb", 0);
    struct item it[3];
    three(it, "pb", "");
    struct result r = {0};
    apply_tx(f, it, 1, &r);
    assert_int_equal(r.applied, 1);
    assert_int_equal(r.written, 2);
    /* its redelivery, with no customer, needs no transaction: nothing new, nothing written */
    head(&it[0], "pb", "");
    event(&it[0], "pb", "e1", 1), event(&it[0], "pb", "e2", 2);
    struct result again = untouched(f, it);
    assert_int_equal(again.applied, 1);
    assert_int_equal(again.written, 0);
}

/* Two processes take the same webhooks at the same moment (a platform retrying while the
 * first delivery is still being stored): each event is written once.  Both modules read the
 * dedupe keys before either writes, so without the WATCH both would write them. */
static void two_processes_write_each_event_once(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    struct db_ingest_tx *t1 = tx_new(f), *t2 = tx_new(f);
    struct item it[8];
    struct result r[16] = {{0}}; /* webhook i: r[2i] from the first, r[2i+1] the second */
    for (int i = 0; i < 8; i++) {
        char key[16];
        head(&it[i], "pb", "");
        snprintf(key, sizeof key, "k%d", i);
        event(&it[i], "pb", key, i);
    }
    for (int i = 0; i < 8; i++) {
        struct db_ingest_tx_item x = {it[i].v, it[i].l, it[i].n};
        db_ingest_tx_apply(t1, &x, done_cb, &r[2 * i]);
        db_ingest_tx_apply(t2, &x, done_cb, &r[2 * i + 1]);
    }
    wait_answers(f, r, 16);
    long long written = 0;
    int refused_n = 0;
    for (int i = 0; i < 16; i++) {
        written += r[i].applied * r[i].written;
        refused_n += !r[i].applied;
    }
    /* a webhook left to the script would be a dedupe hit there: written counts it all */
    assert_int_equal(written, 8);
    assert_int_equal(integer(f, "XLEN %s:%s", "pb", "events"), 8);
    print_message("two processes: %d of 16 takes left to the script\n", refused_n);
    db_ingest_tx_free(t1);
    db_ingest_tx_free(t2);
}

/* Redis stalls with a transaction in its first round and webhooks waiting for the next:
 * the lost connection answers the first, and the next ones, started while it is down, are
 * answered at once; every webhook goes to the script and nothing is written. */
static void a_lost_connection_leaves_every_webhook_to_the_script(void **state)
{
    struct fx *f = *state;
    run(f, "FLUSHALL");
    struct item it[6];
    struct result r[6] = {{0}};
    for (int i = 0; i < 6; i++) {
        char key[16];
        head(&it[i], "pb", "");
        snprintf(key, sizeof key, "s%d", i);
        event(&it[i], "pb", key, i);
    }
    struct db_ingest_tx *t = tx_new_timeout(f, 300);
    db_test_redis_kill(f->srv, SIGSTOP);
    for (int i = 0; i < 6; i++) {
        struct db_ingest_tx_item x = {it[i].v, it[i].l, it[i].n};
        db_ingest_tx_apply(t, &x, done_cb, &r[i]);
    }
    wait_answers(f, r, 6);
    db_test_redis_kill(f->srv, SIGCONT);
    for (int i = 0; i < 6; i++) assert_int_equal(r[i].applied, 0);
    db_ingest_tx_free(t);
    assert_int_equal(integer(f, "EXISTS %s:%s", "pb", "events"), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_transaction_writes_what_the_script_writes),
        cmocka_unit_test(the_dedupe_keys_go_to_their_own_database),
        cmocka_unit_test(what_the_script_reads_its_own_way_is_left_to_it),
        cmocka_unit_test(two_processes_write_each_event_once),
        cmocka_unit_test(a_lost_connection_leaves_every_webhook_to_the_script),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
