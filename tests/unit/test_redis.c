/* test_redis.c - src/redis/redis.c against real redis-server processes (redis_fixture). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/event.h>

#include "redis/redis.h"
#include "daemon.h"
#include "redis_fixture.h"
#include "sentinel_fixture.h"
#include "testutil.h"

struct res {
    int called;
    int status;
    int type;
    long long integer;
    size_t len;
    char str[256];
    char err[128];
    int free_on_reply; /* db_redis_free(r) from inside the callback */
    struct db_redis *r;
};

static void res_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct res *x = arg;
    x->called++;
    x->status = status;
    x->type = reply ? reply->type : -1;
    if (reply) {
        x->integer = reply->integer;
        x->len = reply->len < sizeof x->str ? reply->len : sizeof x->str - 1;
        if (reply->str) memcpy(x->str, reply->str, x->len);
        x->str[x->len] = '\0';
    }
    snprintf(x->err, sizeof x->err, "%s", errstr ? errstr : "");
    if (x->free_on_reply) db_redis_free(x->r);
}

struct state {
    int ups, downs, up;
};

static void state_cb(int up, void *arg)
{
    struct state *s = arg;
    s->up = up;
    if (up) s->ups++;
    else s->downs++;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag becomes nonzero or ms elapse; returns the final *flag. */
static int run_until(struct event_base *base, const int *flag, int ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(tick, &tv);
    long long deadline = db_test_now_ms() + ms;
    while (!*flag && db_test_now_ms() < deadline) event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return *flag;
}

static void run_for(struct event_base *base, int ms)
{
    int never = 0;
    run_until(base, &never, ms);
}


struct fx {
    struct event_base *base;
    struct db_test_redis *srv;
    struct db_redis *r;
    struct state st;
    struct db_test_redis *more[2]; /* extra servers, stopped by teardown even on failure */
    struct db_test_sentinel *sent;
};

static struct db_redis *connect_url(struct fx *f, const char *url, int cmd_timeout_ms)
{
    struct db_redis_opts o = {.url = url,
                              .command_timeout_ms = cmd_timeout_ms,
                              .connect_timeout_ms = 300,
                              .reconnect_ms = 50,
                              .name = "dbtest"};
    struct db_err e = {0};
    struct db_redis *r = NULL;
    assert_int_equal(db_redis_new(f->base, &o, &r, &e), DB_OK);
    db_redis_set_state_cb(r, state_cb, &f->st);
    return r;
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
    db_redis_free(f->r);
    run_for(f->base, 20); /* lets deferred socket cleanup run */
    event_base_free(f->base);
    db_test_redis_stop(f->srv);
    if (f->sent) db_test_sentinel_stop(f->sent);
    for (int i = 0; i < 2; i++) db_test_redis_stop(f->more[i]);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------------------- */

static void url_forms_are_accepted(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *good[] = {
        "redis://127.0.0.1:1",
        "redis://127.0.0.1",
        "redis://:pw@127.0.0.1:1/3",
        "redis://user:p%40ss%2Fx@127.0.0.1:1/0",
        "redis://user:p@ss@127.0.0.1:1",
        "redis://[::1]:1/2",
        "unix:///tmp/nonexistent-dbtest.sock",
        "unix:///tmp/nonexistent-dbtest.sock?db=2",
        "unix://:pw@/tmp/nonexistent-dbtest.sock",
        "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster",
        "redis+sentinel://u:p@127.0.0.1/mymaster/4",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        struct db_redis_opts o = {.url = good[i], .reconnect_ms = 10000};
        struct db_err e = {0};
        struct db_redis *r = NULL;
        int rc = db_redis_new(base, &o, &r, &e);
        if (rc != DB_OK) fail_msg("%s rejected: %s", good[i], e.msg);
        assert_non_null(r);
        assert_int_equal(db_redis_is_up(r), 0);
        db_redis_free(r);
    }
    run_for(base, 20);
    event_base_free(base);
}

static void url_malformed_is_econfig_with_reason(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    static char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    memcpy(longpath, "unix:///", 8);
    struct {
        const char *url, *reason;
    } bad[] = {
        {NULL, "no Redis URL"},
        {"", "no Redis URL"},
        {"http://h", "scheme"},
        {"rediss://h:6379", "TLS"},
        {"redis://", "empty host"},
        {"redis://h:0", "port"},
        {"redis://h:70000", "port"},
        {"redis://h:12ab", "port"},
        {"redis://h:", "port"},
        {"redis://h/abc", "database"},
        {"redis://h/1/2", "database"},
        {"redis://user@h", "credentials"},
        {"redis://:@h", "empty password"},
        {"redis://h?db=1", "query"},
        {"redis://[::1:5", "unterminated"},
        {"unix://relative.sock", "absolute"},
        {"unix:///tmp/x.sock?foo=1", "?db="},
        {"unix:///tmp/x.sock?db=x", "database"},
        {longpath, "longer"},
        {"redis+sentinel://h:1", "master-name"},
        {"redis+sentinel://h:1/", "master-name"},
        {"redis+sentinel://h:1,/m", "empty host"},
        {"redis+sentinel://h:1/m/x", "database"},
        {"redis://u:%zz@h", "password"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct db_redis_opts o = {.url = bad[i].url};
        struct db_err e = {0};
        struct db_redis *r = (struct db_redis *)1;
        int rc = db_redis_new(base, &o, &r, &e);
        if (rc != DB_ECONFIG) fail_msg("url #%zu accepted (rc %d)", i, rc);
        assert_null(r);
        if (!strstr(e.msg, bad[i].reason))
            fail_msg("url #%zu: reason '%s' lacks '%s'", i, e.msg, bad[i].reason);
        /* The same parser serves the blocking helper. */
        struct db_err e2 = {0};
        assert_null(db_redis_connect_sync(bad[i].url, 100, &e2));
        assert_int_equal(e2.code, DB_ECONFIG);
    }
    event_base_free(base);
}

static void url_error_never_shows_password(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    const char *urls[] = {"redis://user:supersecret@h:99999", "redis://user:supersecret@h/x",
                          "redis+sentinel://u:supersecret@h:1"};
    for (size_t i = 0; i < 3; i++) {
        struct db_redis_opts o = {.url = urls[i]};
        struct db_err e = {0};
        struct db_redis *r = NULL;
        assert_int_equal(db_redis_new(base, &o, &r, &e), DB_ECONFIG);
        assert_null(strstr(e.msg, "supersecret"));
    }
    struct db_redis_opts o = {.url = "redis://h", .name = "has space"};
    struct db_err e = {0};
    struct db_redis *r = NULL;
    assert_int_equal(db_redis_new(base, &o, &r, &e), DB_ECONFIG);
    event_base_free(base);
}

static void command_roundtrip_queued_while_connecting(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 2000);
    /* Issued before the first connection is up: held, then sent. */
    struct res set = {0}, get = {0};
    db_redis_cmd(f->r, res_cb, &set, "SET %s %s", "k1", "v1");
    db_redis_cmd(f->r, res_cb, &get, "GET %s", "k1");
    assert_int_equal(set.called, 0);
    assert_int_equal(db_redis_pending(f->r), 2);
    assert_true(run_until(f->base, &get.called, 2000));
    assert_int_equal(set.called, 1);
    assert_int_equal(set.status, DB_OK);
    assert_int_equal(set.type, REDIS_REPLY_STATUS);
    assert_string_equal(set.str, "OK");
    assert_int_equal(get.status, DB_OK);
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_string_equal(get.str, "v1");
    assert_int_equal(f->st.ups, 1);
    assert_true(db_redis_is_up(f->r));
    assert_int_equal(db_redis_pending(f->r), 0);

    struct res name = {0};
    db_redis_cmd(f->r, res_cb, &name, "CLIENT GETNAME");
    assert_true(run_until(f->base, &name.called, 2000));
    assert_string_equal(name.str, "dbtest");
}

static void argv_is_binary_safe(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 2000);
    assert_true(run_until(f->base, &f->st.up, 2000));
    const char val[] = "a\0b\r\n$3\r\nc";
    const char *argv[] = {"SET", "bin\0key", val};
    size_t lens[] = {3, 7, sizeof val - 1};
    struct res set = {0}, get = {0};
    db_redis_cmd_argv(f->r, res_cb, &set, 3, argv, lens);
    const char *gargv[] = {"GET", "bin\0key"};
    size_t glens[] = {3, 7};
    db_redis_cmd_argv(f->r, res_cb, &get, 2, gargv, glens);
    assert_true(run_until(f->base, &get.called, 2000));
    assert_int_equal(set.status, DB_OK);
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_int_equal(get.len, sizeof val - 1);
    assert_memory_equal(get.str, val, sizeof val - 1);
    /* argvlen NULL means strlen. */
    struct res s2 = {0};
    const char *a2[] = {"SET", "plain", "text"};
    db_redis_cmd_argv(f->r, res_cb, &s2, 3, a2, NULL);
    assert_true(run_until(f->base, &s2.called, 2000));
    redisReply *rep = redisCommand(db_test_redis_ctx(f->srv), "GET plain");
    assert_string_equal(rep->str, "text");
    freeReplyObject(rep);
}

static void error_reply_comes_as_reply(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 2000);
    struct res set = {0}, bad = {0}, after = {0};
    db_redis_cmd(f->r, res_cb, &set, "SET s x");
    db_redis_cmd(f->r, res_cb, &bad, "HGET s field");
    db_redis_cmd(f->r, res_cb, &after, "PING");
    assert_true(run_until(f->base, &after.called, 2000));
    assert_int_equal(bad.status, DB_OK);
    assert_int_equal(bad.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(bad.str, "WRONGTYPE"));
    assert_string_equal(after.str, "PONG");
    assert_int_equal(f->st.downs, 0); /* an error reply is no connection problem */
}

static long long cmdstat_calls(struct db_test_redis *srv, const char *cmd)
{
    redisReply *rep = redisCommand(db_test_redis_ctx(srv), "INFO commandstats");
    assert_non_null(rep);
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(rep->str, key);
    long long n = p ? atoll(p + strlen(key)) : 0;
    freeReplyObject(rep);
    return n;
}

static void eval_falls_back_to_eval_on_noscript(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 2000);
    struct db_redis_script *s =
        db_redis_script_new("return {KEYS[1], ARGV[1], string.len(ARGV[2])}");
    assert_non_null(s);
    const char *keys[] = {"key1"};
    const char *args[] = {"v\0x", "abc"};
    size_t lens[] = {3, 3};
    freeReplyObject(redisCommand(db_test_redis_ctx(f->srv), "CONFIG RESETSTAT"));

    for (int round = 0; round < 3; round++) {
        if (round == 2) freeReplyObject(redisCommand(db_test_redis_ctx(f->srv), "SCRIPT FLUSH"));
        struct res x = {0};
        db_redis_eval(f->r, s, res_cb, &x, 1, keys, 2, args, lens);
        assert_true(run_until(f->base, &x.called, 2000));
        assert_int_equal(x.called, 1);
        assert_int_equal(x.status, DB_OK);
        assert_int_equal(x.type, REDIS_REPLY_ARRAY);
    }
    /* Round 0 and 2: EVALSHA answered NOSCRIPT, EVAL loaded the script; round 1 was a
     * plain EVALSHA hit, which proves the locally computed SHA1 is Redis' own. */
    assert_int_equal(cmdstat_calls(f->srv, "eval"), 2);
    assert_int_equal(cmdstat_calls(f->srv, "evalsha"), 3);

    /* The reply content, through a callback that inspects the array. */
    db_redis_script_free(s);
}

struct arr {
    int called;
    char k[16], a[16];
    size_t alen;
    long long n;
};

static void arr_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)errstr;
    struct arr *x = arg;
    x->called = 1;
    assert_int_equal(status, DB_OK);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 3);
    snprintf(x->k, sizeof x->k, "%s", reply->element[0]->str);
    x->alen = reply->element[1]->len;
    memcpy(x->a, reply->element[1]->str, x->alen);
    x->n = reply->element[2]->integer;
}

static void eval_args_are_binary_safe(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 2000);
    struct db_redis_script *s =
        db_redis_script_new("return {KEYS[1], ARGV[1], string.len(ARGV[2])}");
    const char *keys[] = {"key1"};
    const char *args[] = {"v\0x", "abcd"};
    size_t lens[] = {3, 4};
    struct arr x = {0};
    db_redis_eval(f->r, s, arr_cb, &x, 1, keys, 2, args, lens);
    /* The caller may drop its reference while the command is in flight. */
    db_redis_script_free(s);
    assert_true(run_until(f->base, &x.called, 2000));
    assert_string_equal(x.k, "key1");
    assert_int_equal(x.alen, 3);
    assert_memory_equal(x.a, "v\0x", 3);
    assert_int_equal(x.n, 4);
}

static void kill_and_restart_reports_state_and_fails_fast(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 5000);
    assert_true(run_until(f->base, &f->st.up, 2000));

    struct res blocked = {0};
    db_redis_cmd(f->r, res_cb, &blocked, "BLPOP nothing 10");
    run_for(f->base, 50);
    assert_int_equal(db_redis_pending(f->r), 1);
    long long t0 = db_test_now_ms();
    db_test_redis_kill(f->srv, SIGKILL);
    assert_true(run_until(f->base, &blocked.called, 2000));
    assert_true(db_test_now_ms() - t0 < 1000);
    assert_int_equal(blocked.status, DB_EAGAIN);
    assert_int_equal(blocked.type, -1);
    assert_int_equal(f->st.downs, 1);
    assert_false(db_redis_is_up(f->r));

    /* While down (after a failed attempt), a command fails before db_redis_cmd returns. */
    run_for(f->base, 150);
    struct res fast = {0};
    db_redis_cmd(f->r, res_cb, &fast, "PING");
    assert_int_equal(fast.called, 1);
    assert_int_equal(fast.status, DB_EAGAIN);
    assert_int_equal(db_redis_pending(f->r), 0);

    db_test_redis_restart(f->srv);
    assert_true(run_until(f->base, &f->st.up, 3000));
    assert_int_equal(f->st.ups, 2);
    struct res ok = {0};
    db_redis_cmd(f->r, res_cb, &ok, "PING");
    assert_true(run_until(f->base, &ok.called, 2000));
    assert_string_equal(ok.str, "PONG");
}

static void command_timeout_on_stalled_server_then_reconnect(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 300);
    assert_true(run_until(f->base, &f->st.up, 2000));
    db_test_redis_kill(f->srv, SIGSTOP);
    struct res x = {0}, y = {0};
    long long t0 = db_test_now_ms();
    db_redis_cmd(f->r, res_cb, &x, "PING");
    db_redis_cmd(f->r, res_cb, &y, "PING");
    assert_true(run_until(f->base, &y.called, 3000));
    long long dt = db_test_now_ms() - t0;
    assert_int_equal(x.called, 1);
    assert_int_equal(x.status, DB_EAGAIN);
    assert_string_equal(x.err, "timeout");
    assert_int_equal(y.status, DB_EAGAIN);
    assert_true(dt >= 250 && dt < 1000);
    assert_int_equal(f->st.downs, 1); /* the stalled connection was dropped */
    /* While stopped, reconnects fail (the handshake PING goes unanswered). */
    run_for(f->base, 500);
    assert_false(db_redis_is_up(f->r));
    db_test_redis_kill(f->srv, SIGCONT);
    assert_true(run_until(f->base, &f->st.up, 3000));
    struct res z = {0};
    db_redis_cmd(f->r, res_cb, &z, "PING");
    assert_true(run_until(f->base, &z.called, 2000));
    assert_int_equal(z.status, DB_OK);
    /* The late PONGs of the dropped connection reached no callback twice. */
    assert_int_equal(x.called, 1);
    assert_int_equal(y.called, 1);
}

static void free_with_pending_answers_every_callback(void **state)
{
    struct fx *f = *state;
    f->r = connect_url(f, db_test_redis_url(f->srv), 5000);
    assert_true(run_until(f->base, &f->st.up, 2000));
    struct res b[3] = {{0}};
    for (int i = 0; i < 3; i++) db_redis_cmd(f->r, res_cb, &b[i], "BLPOP nothing 10");
    db_redis_cmd(f->r, NULL, NULL, "BLPOP nothing 10"); /* fire and forget */
    run_for(f->base, 30);
    assert_int_equal(db_redis_pending(f->r), 4);
    db_redis_free(f->r);
    f->r = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b[i].called, 1);
        assert_int_equal(b[i].status, DB_EAGAIN);
        assert_string_equal(b[i].err, "shutting down");
    }
}

static void free_from_inside_a_callback_is_deferred(void **state)
{
    struct fx *f = *state;
    struct db_redis *r = connect_url(f, db_test_redis_url(f->srv), 5000);
    struct res first = {.free_on_reply = 1, .r = r}, second = {0};
    db_redis_cmd(r, res_cb, &first, "PING");
    db_redis_cmd(r, res_cb, &second, "BLPOP nothing 10");
    assert_true(run_until(f->base, &second.called, 2000));
    assert_int_equal(first.called, 1);
    assert_int_equal(first.status, DB_OK);
    assert_int_equal(second.status, DB_EAGAIN);
    assert_string_equal(second.err, "shutting down");
    run_for(f->base, 30);
    /* The server saw our socket closed: only the fixture's own client is left. */
    redisReply *rep = redisCommand(db_test_redis_ctx(f->srv), "CLIENT LIST");
    assert_null(strstr(rep->str, "name=dbtest"));
    freeReplyObject(rep);
}

static void auth_with_password_and_acl_user(void **state)
{
    struct fx *f = *state;
    db_test_redis_stop(f->srv);
    f->srv = db_test_redis_start("--requirepass s3cret");
    const char *path = db_test_redis_url(f->srv) + strlen("unix://");
    char url[512];

    snprintf(url, sizeof url, "unix://:s3cret@%s", path);
    f->r = connect_url(f, url, 2000);
    struct res p = {0};
    db_redis_cmd(f->r, res_cb, &p, "PING");
    assert_true(run_until(f->base, &p.called, 2000));
    assert_string_equal(p.str, "PONG");
    db_redis_free(f->r);
    f->r = NULL;

    /* A wrong password never comes up, and its queued command fails. */
    snprintf(url, sizeof url, "unix://:wrong@%s", path);
    struct state st0 = f->st;
    f->r = connect_url(f, url, 2000);
    struct res w = {0};
    db_redis_cmd(f->r, res_cb, &w, "PING");
    assert_true(run_until(f->base, &w.called, 2000));
    assert_int_equal(w.status, DB_EAGAIN);
    assert_non_null(strstr(w.err, "AUTH failed"));
    assert_null(strstr(w.err, "wrong"));
    assert_int_equal(f->st.ups, st0.ups);
    db_redis_free(f->r);
    f->r = NULL;
    struct db_err e = {0};
    assert_null(db_redis_connect_sync(url, 1000, &e));
    assert_int_equal(e.code, DB_EAUTH);

    redisReply *rep =
        redisCommand(db_test_redis_ctx(f->srv), "ACL SETUSER alice on >pa:ss ~* &* +@all");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    snprintf(url, sizeof url, "unix://alice:pa%%3Ass@%s", path);
    f->r = connect_url(f, url, 2000);
    struct res who = {0};
    db_redis_cmd(f->r, res_cb, &who, "ACL WHOAMI");
    assert_true(run_until(f->base, &who.called, 2000));
    assert_string_equal(who.str, "alice");
}

static void select_db_from_url(void **state)
{
    struct fx *f = *state;
    char url[512];
    snprintf(url, sizeof url, "%s?db=3", db_test_redis_url(f->srv));
    f->r = connect_url(f, url, 2000);
    struct res set = {0};
    db_redis_cmd(f->r, res_cb, &set, "SET dbkey three");
    assert_true(run_until(f->base, &set.called, 2000));
    redisContext *c = db_test_redis_ctx(f->srv);
    redisReply *rep = redisCommand(c, "GET dbkey");
    assert_int_equal(rep->type, REDIS_REPLY_NIL);
    freeReplyObject(rep);
    freeReplyObject(redisCommand(c, "SELECT 3"));
    rep = redisCommand(c, "GET dbkey");
    assert_string_equal(rep->str, "three");
    freeReplyObject(rep);
    freeReplyObject(redisCommand(c, "SELECT 0"));
}

static void sync_connect_follows_url(void **state)
{
    struct fx *f = *state;
    char url[512];
    snprintf(url, sizeof url, "%s?db=2", db_test_redis_url(f->srv));
    struct db_err e = {0};
    redisContext *c = db_redis_connect_sync(url, 1000, &e);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "SET synckey 1"));
    redisReply *rep = redisCommand(c, "CLIENT INFO");
    assert_non_null(strstr(rep->str, "db=2"));
    freeReplyObject(rep);
    redisFree(c);

    assert_null(db_redis_connect_sync("unix:///nonexistent/dbtest.sock", 500, &e));
    assert_int_equal(e.code, DB_EAGAIN);
}

static void fresh_tcp_server_works_too(void **state)
{
    struct fx *f = *state;
    struct db_test_redis *tcp = db_test_redis_start_tcp(NULL);
    assert_true(db_test_redis_port(tcp) > 0);
    f->r = connect_url(f, db_test_redis_url(tcp), 2000);
    struct res p = {0};
    db_redis_cmd(f->r, res_cb, &p, "PING");
    assert_true(run_until(f->base, &p.called, 2000));
    assert_string_equal(p.str, "PONG");
    db_redis_free(f->r);
    f->r = NULL;
    run_for(f->base, 20);
    db_test_redis_stop(tcp);
}

static void readonly_reply_drops_the_connection(void **state)
{
    struct fx *f = *state;
    struct db_test_redis *master = db_test_redis_start_tcp(NULL);
    char extra[64];
    snprintf(extra, sizeof extra, "--replicaof 127.0.0.1 %d", db_test_redis_port(master));
    struct db_test_redis *replica = db_test_redis_start(extra);
    f->r = connect_url(f, db_test_redis_url(replica), 2000);
    assert_true(run_until(f->base, &f->st.up, 2000));
    struct res w = {0};
    db_redis_cmd(f->r, res_cb, &w, "SET x 1");
    assert_true(run_until(f->base, &w.called, 2000));
    assert_int_equal(w.status, DB_OK);
    assert_int_equal(w.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(w.str, "READONLY"));
    assert_int_equal(f->st.downs, 1);
    assert_true(run_until(f->base, &f->st.up, 2000)); /* reconnects (to the same replica) */
    db_redis_free(f->r);
    f->r = NULL;
    run_for(f->base, 20);
    db_test_redis_stop(replica);
    db_test_redis_stop(master);
}

/* ---------------------------------------------------------------------------------- */
/* through tcp_fault_proxy */

static void write_mode(const char *file, const char *mode)
{
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", mode);
    fclose(fp);
}

static void proxy_stall_and_reset(void **state)
{
    struct fx *f = *state;
    char daemon[1024], tool[1100];
    snprintf(daemon, sizeof daemon, "%s", DB_DAEMON_PATH);
    snprintf(tool, sizeof tool, "%s/tools/tcp_fault_proxy", dirname(daemon));
    if (access(tool, X_OK) != 0) skip();
    struct db_test_redis *tcp = db_test_redis_start_tcp(NULL);
    char ctl[512], port[16];
    snprintf(ctl, sizeof ctl, "%s/proxy.mode", db_test_redis_dir(tcp));
    snprintf(port, sizeof port, "%d", db_test_redis_port(tcp));
    write_mode(ctl, "pass");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl(tool, tool, "0", "127.0.0.1", port, ctl, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *out = fdopen(pfd[0], "r");
    int pport = 0;
    assert_int_equal(fscanf(out, "port %d", &pport), 1);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", pport);

    f->r = connect_url(f, url, 300);
    assert_true(run_until(f->base, &f->st.up, 2000));
    struct res a = {0};
    db_redis_cmd(f->r, res_cb, &a, "PING");
    assert_true(run_until(f->base, &a.called, 2000));
    assert_string_equal(a.str, "PONG");

    write_mode(ctl, "stall");
    run_for(f->base, 250);
    struct res b = {0};
    long long t0 = db_test_now_ms();
    db_redis_cmd(f->r, res_cb, &b, "PING");
    assert_true(run_until(f->base, &b.called, 2000));
    assert_true(db_test_now_ms() - t0 < 800);
    assert_int_equal(b.status, DB_EAGAIN);
    assert_int_equal(f->st.downs, 1);

    write_mode(ctl, "pass");
    assert_true(run_until(f->base, &f->st.up, 3000));

    struct res c = {0};
    db_redis_cmd(f->r, res_cb, &c, "BLPOP nothing 1");
    run_for(f->base, 30);
    write_mode(ctl, "reset");
    assert_true(run_until(f->base, &c.called, 1000));
    assert_int_equal(c.status, DB_EAGAIN);
    assert_int_equal(f->st.downs, 2);
    run_for(f->base, 200);
    assert_false(db_redis_is_up(f->r));

    write_mode(ctl, "pass");
    assert_true(run_until(f->base, &f->st.up, 3000));
    db_redis_free(f->r);
    f->r = NULL;
    run_for(f->base, 20);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    fclose(out);
    db_test_redis_stop(tcp);
}


/* ---------------------------------------------------------------------------------- */
/* sentinel: 1 master + 1 replica + 1 sentinel on loopback (tests/support/sentinel_fixture.c) */

struct port_res {
    int called, port;
};

static void port_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)errstr;
    struct port_res *x = arg;
    x->called = 1;
    x->port = -1;
    if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        x->port = atoi(reply->element[1]->str);
}

static int port_of_connection(struct fx *f)
{
    struct port_res x = {0};
    db_redis_cmd(f->r, port_cb, &x, "CONFIG GET port");
    run_until(f->base, &x.called, 2000);
    return x.called ? x.port : -1;
}

static void sentinel_failover_is_followed(void **state)
{
    struct fx *f = *state;
    /* No diskless-sync delay: the replica is in sync before sentinel's first INFO, else
     * sentinel learns of it only 10 s later. */
    const char *fast = "--repl-diskless-sync-delay 0";
    struct db_test_redis *master = f->more[0] = db_test_redis_start_tcp(fast);
    int mport = db_test_redis_port(master);
    char extra[128];
    snprintf(extra, sizeof extra, "%s --replicaof 127.0.0.1 %d", fast, mport);
    struct db_test_redis *replica = f->more[1] = db_test_redis_start_tcp(extra);
    int rport = db_test_redis_port(replica);
    long long deadline = db_test_now_ms() + 10000;
    int linked = 0;
    while (!linked && db_test_now_ms() < deadline) {
        redisReply *rep = redisCommand(db_test_redis_ctx(replica), "INFO replication");
        linked = rep && rep->str && strstr(rep->str, "master_link_status:up");
        if (rep) freeReplyObject(rep);
        if (!linked) usleep(20 * 1000);
    }
    assert_true(linked);
    static struct db_test_sentinel s;
    db_test_sentinel_start(&s, mport);
    f->sent = &s;

    /* The first sentinel in the list is dead: the module must ask the next one. */
    char url[128];
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster/1",
             db_test_free_port(), s.port);
    f->r = connect_url(f, url, 2000);
    assert_true(run_until(f->base, &f->st.up, 3000));
    assert_int_equal(port_of_connection(f), mport);

    struct db_err e = {0};
    redisContext *c = db_redis_connect_sync(url, 1000, &e);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, "CONFIG GET port");
    assert_int_equal(atoi(rep->element[1]->str), mport);
    freeReplyObject(rep);
    redisFree(c);

    db_test_sentinel_failover(&s, 25000);

    /* Writes go to the new master once the connection has followed. */
    int followed = 0;
    deadline = db_test_now_ms() + 20000;
    while (!followed && db_test_now_ms() < deadline) {
        struct res w = {0};
        db_redis_cmd(f->r, res_cb, &w, "SET after-failover 1");
        run_until(f->base, &w.called, 2500);
        if (w.status == DB_OK && w.type == REDIS_REPLY_STATUS)
            followed = port_of_connection(f) == rport;
        if (!followed) run_for(f->base, 100);
    }
    assert_true(followed);
    assert_true(f->st.downs >= 1);

    db_redis_free(f->r);
    f->r = NULL;
    run_for(f->base, 20);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_forms_are_accepted),
        cmocka_unit_test(url_malformed_is_econfig_with_reason),
        cmocka_unit_test(url_error_never_shows_password),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(command_roundtrip_queued_while_connecting),
        T(argv_is_binary_safe),
        T(error_reply_comes_as_reply),
        T(eval_falls_back_to_eval_on_noscript),
        T(eval_args_are_binary_safe),
        T(kill_and_restart_reports_state_and_fails_fast),
        T(command_timeout_on_stalled_server_then_reconnect),
        T(free_with_pending_answers_every_callback),
        T(free_from_inside_a_callback_is_deferred),
        T(auth_with_password_and_acl_user),
        T(select_db_from_url),
        T(sync_connect_follows_url),
        T(fresh_tcp_server_works_too),
        T(readonly_reply_drops_the_connection),
        T(proxy_stall_and_reset),
        T(sentinel_failover_is_followed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
