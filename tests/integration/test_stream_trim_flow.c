/* [gateway] stream_maxlen, outbox_maxlen and status_maxlen end to end: the real deskbridge
 * binary, a real redis-server and a fake Telegram.  A helpdesk's consumer group that stopped
 * reading falls far behind a small cap while webhooks keep coming; the gateway's trimmer keeps
 * every event that group has not read, says so in /metrics and its log, and trims to the cap
 * once the group has caught up.  Replies a helpdesk puts on the outbox are all sent while the
 * outbox and the status stream are trimmed under them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define TOKEN "7000000001:AAtesttokenDoNotLog_abcdefghijkl"
#define SECRET "hook-secret_123"
#define API_TOKEN "api-token-0123456789abcdef"
#define CAP 40
#define NODE 10 /* Redis runs with this many entries per stream node: a `~` trim's slack */
#define WEBHOOKS 300

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon d;
    char dir[64], conf[128], env[2][512];
};

static struct world W;

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start("--stream-node-max-entries 10");
    W.tg = db_fake_start();
    assert_non_null(W.redis);
    assert_non_null(W.tg);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(W.dir, sizeof W.dir, "/tmp/db-trim-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    snprintf(W.conf, sizeof W.conf, "%s/deskbridge.conf", W.dir);
    FILE *f = fopen(W.conf, "w");
    assert_non_null(f);
    fprintf(f, "[gateway]\nstream_maxlen = %d\noutbox_maxlen = %d\nstatus_maxlen = %d\n\n"
               "[telegram bot]\ntoken = %s\nwebhook_secret = %s\n"
               "api_base = %s\n", CAP, CAP, CAP, TOKEN, SECRET, db_fake_url(W.tg));
    fclose(f);
    /* A helpdesk that subscribed from the start and then stopped reading. */
    freeReplyObject(redisCommand(db_test_redis_ctx(W.redis),
                                 "XGROUP CREATE deskbridge:events helpdesk-slow 0 MKSTREAM"));
    snprintf(W.env[0], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[1], sizeof W.env[1], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    const char *env[] = {W.env[0], W.env[1], NULL};
    const char *args[] = {"--config", W.conf, NULL};
    db_test_daemon_start(&W.d, env, args, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const never[] = {"AAtesttokenDoNotLog", SECRET, NULL};
    db_test_daemon_stop_clean(&W.d, never);
    unlink(W.conf);
    rmdir(W.dir);
    db_fake_stop(W.tg);
    db_test_redis_stop(W.redis);
    return 0;
}

static long long xlen_of(const char *stream)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XLEN deskbridge:%s", stream);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static long long xlen(void)
{
    return xlen_of("events");
}

static int post_message(int n)
{
    char body[512], h[128];
    snprintf(body, sizeof body,
             "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
             "\"chat\":{\"id\":%d,\"type\":\"private\",\"first_name\":\"Olena\"},"
             "\"from\":{\"id\":%d,\"is_bot\":false,\"first_name\":\"Olena\"},"
             "\"text\":\"message %d\"}}", n, n, 900 + n % 7, 900 + n % 7, n);
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", SECRET);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/telegram/bot", headers, body, strlen(body), &r);
    int status = r.status;
    db_test_resp_clear(&r);
    return status;
}

/* Value of the sample series (name and labels exactly) in /metrics; -1 when absent. */
static double metric(const char *series)
{
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = r.body; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    db_test_resp_clear(&r);
    return v;
}

static int held(void *arg)
{
    (void)arg;
    return metric("deskbridge_stream_trim_held_entries{stream=\"events\"}") > 0;
}

static int trimmed_to_cap(void *arg)
{
    (void)arg;
    return xlen() < CAP + NODE && metric("deskbridge_stream_trim_held_entries{stream=\"events\"}") == 0;
}

static void a_group_far_behind_the_cap_loses_nothing(void **state)
{
    (void)state;
    for (int n = 1; n <= WEBHOOKS; n++) assert_int_equal(post_message(n), 200);
    /* The trimmer runs once a second: the held gauge says it ran with the stream over the
     * cap, and the helpdesk's group holding it. */
    assert_true(db_test_wait(held, NULL, 5000));
    assert_true(xlen() >= WEBHOOKS);
    assert_true(metric("deskbridge_stream_trim_held_entries{stream=\"events\"}") >= WEBHOOKS - CAP);
    assert_int_equal(metric("deskbridge_stream_trimmed_unread_total{stream=\"events\"}"), 0);
    assert_true(db_test_daemon_log_count(&W.d, "kept until consumer group helpdesk-slow") >= 1);

    /* The helpdesk comes back: every event is there, in order. */
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                 "XREADGROUP GROUP helpdesk-slow c COUNT 1000 STREAMS "
                                 "deskbridge:events >");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    const redisReply *entries = r->element[0]->element[1];
    assert_int_equal((int)entries->elements, WEBHOOKS);
    for (size_t i = 0; i < entries->elements; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"message %zu\"", i + 1);
        const char *ev = entries->element[i]->element[1]->element[1]->str;
        if (!strstr(ev, want)) fail_msg("entry %zu is not message %zu: %s", i, i + 1, ev);
        redisReply *a = redisCommand(db_test_redis_ctx(W.redis),
                                     "XACK deskbridge:events helpdesk-slow %s",
                                     entries->element[i]->element[0]->str);
        assert_int_equal(a->integer, 1);
        freeReplyObject(a);
    }
    freeReplyObject(r);

    /* Read and acknowledged by every group: now the cap applies. */
    assert_true(db_test_wait(trimmed_to_cap, NULL, 5000));
    assert_true(xlen() >= CAP);
    assert_true(metric("deskbridge_stream_trimmed_total{stream=\"events\"}") >= WEBHOOKS - CAP - NODE);
}

static int outbox_and_status_trimmed(void *arg)
{
    (void)arg;
    return xlen_of("outbox") < CAP + NODE && xlen_of("status") < CAP + NODE;
}

/* 200 replies XADDed to the outbox as a helpdesk would: each is sent once, in order, and the
 * outbox and the status stream end near their cap. */
static void replies_on_a_capped_outbox_are_all_sent(void **state)
{
    (void)state;
    size_t before = db_fake_count(W.tg, NULL), sends = db_fake_count(W.tg, "/sendMessage");
    int replies = 200;
    for (int n = 1; n <= replies; n++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "{\"conversation\":\"telegram:bot:901\",\"text\":\"reply %d\"}", n);
        redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                     "XADD deskbridge:outbox * command %s", cmd);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    assert_int_equal(db_fake_wait(W.tg, "/sendMessage", sends + replies, 20000), sends + replies);
    assert_true(db_test_wait(outbox_and_status_trimmed, NULL, 5000));
    int next = 1;
    for (size_t i = before; i < db_fake_count(W.tg, NULL); i++) {
        struct db_fake_request q;
        assert_int_equal(db_fake_get(W.tg, i, &q), DB_OK);
        char want[32];
        snprintf(want, sizeof want, "\"reply %d\"", next);
        if (!strstr(q.path, "/sendMessage")) {
            db_fake_request_clear(&q);
            continue;
        }
        if (strstr(q.body, want)) next++;
        else fail_msg("request %zu is not reply %d: %s %s", i, next, q.path, q.body);
        db_fake_request_clear(&q);
    }
    assert_int_equal(next, replies + 1);
    assert_true(metric("deskbridge_stream_trimmed_total{stream=\"outbox\"}") >= replies - CAP - NODE);
    assert_true(metric("deskbridge_stream_trimmed_total{stream=\"status\"}") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_group_far_behind_the_cap_loses_nothing),
        cmocka_unit_test(replies_on_a_capped_outbox_are_all_sent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
