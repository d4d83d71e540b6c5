/* GET /metrics end to end: the real deskbridge binary, a real redis-server and a fake
 * Telegram.  Webhooks with every outcome and a few sends go through the daemon; the scrape
 * must count exactly those, report the streams and consumer groups as Redis sees them, pass
 * `promtool check metrics`, and still answer (without the Redis gauges) when Redis stalls.
 *
 * (Named test_metrics_flow, not test_metrics: tests/unit/test_metrics.c already gives the
 * CTest target that name.) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define TOKEN "7000000001:AAtesttokenDoNotLog_abcdefghijkl"
#define SECRET "hook-secret_123"
#define API_TOKEN "api-token-0123456789abcdef"
#define HOOK "/webhooks/telegram/7000000001"
#define SENDER_GROUP "deskbridge-senders"

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon d;
    char env[5][512];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN,
                             "Content-Type: application/json", NULL};

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.tg = db_fake_start();
    assert_non_null(W.redis);
    assert_non_null(W.tg);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(W.env[0], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[1], sizeof W.env[1], "TELEGRAM_BOT_TOKEN=%s", TOKEN);
    snprintf(W.env[2], sizeof W.env[2], "TELEGRAM_API_BASE=%s", db_fake_url(W.tg));
    snprintf(W.env[3], sizeof W.env[3], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[4], sizeof W.env[4], "TELEGRAM_WEBHOOK_SECRET=%s", SECRET);
    const char *env[] = {W.env[0], W.env[1], W.env[2], W.env[3], W.env[4], NULL};
    db_test_daemon_start(&W.d, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const never[] = {"AAtesttokenDoNotLog", SECRET, NULL};
    db_test_daemon_stop_clean(&W.d, never);
    db_fake_stop(W.tg);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

static long long xlen(const char *stream)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XLEN deskbridge:%s", stream);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void redis_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(W.redis), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis: %s", r->str);
    freeReplyObject(r);
}

static int post_hook(const char *path, const char *body, const char *secret)
{
    char h[256];
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", secret ? secret : "");
    const char *headers[] = {"Content-Type: application/json", secret ? h : NULL, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, body, strlen(body), &r);
    int status = r.status;
    db_test_resp_clear(&r);
    return status;
}

/* Scrapes /metrics; returns the body (caller frees) and checks status and Content-Type. */
static char *scrape(long long *took_ms)
{
    long long t0 = db_test_now_ms();
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/metrics", NULL, NULL, 0, &r);
    if (took_ms) *took_ms = db_test_now_ms() - t0;
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_non_null(db_test_resp_header(&r, "Content-Type", ct, sizeof ct));
    assert_true(strncmp(ct, "text/plain; version=0.0.4", 25) == 0);
    char *body = r.body;
    r.body = NULL;
    db_test_resp_clear(&r);
    return body;
}

/* Value of the sample whose name and labels are exactly series; -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return -1;
}

static void expect_sample(const char *text, const char *series, double want)
{
    double got = sample(text, series);
    if (got != want) fail_msg("%s: want %g, got %g\n---\n%s", series, want, got, text);
}

/* Runs `promtool check metrics` over text; fails the test with its output otherwise. */
static void promtool_check(const char *text)
{
    char dir[] = "/tmp/db-metrics-flow-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96], cmd[320], out[4096] = "";
    snprintf(path, sizeof path, "%s/scrape.prom", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s/scrape.prom > %s/out 2>&1", dir, dir);
    int st = system(cmd);
    snprintf(path, sizeof path, "%s/out", dir);
    if ((f = fopen(path, "r"))) {
        out[fread(out, 1, sizeof out - 1, f)] = '\0';
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("promtool check metrics: status %d (127 = not installed; scripts/deps.sh "
                 "installs it): %s", st, out);
}

static char *update(long long update_id, const char *text)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":5012345678,\"type\":\"private\",\"first_name\":\"O\"},"
                         "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"O\"},"
                         "\"text\":\"%s\"}}",
                         update_id, update_id, text) > 0);
    return b;
}

static char *send_message(const char *conversation, const char *text)
{
    char json[256];
    snprintf(json, sizeof json, "{\"conversation\":\"%s\",\"text\":\"%s\"}", conversation, text);
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/v1/messages", auth, json, strlen(json), &r);
    assert_int_equal(r.status, 202);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    db_test_resp_clear(&r);
    return id;
}

struct msg_wait {
    const char *id, *want;
};

static int message_reaches(void *arg)
{
    struct msg_wait *w = arg;
    char path[256];
    snprintf(path, sizeof path, "/v1/messages/%s", w->id);
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", path, auth, NULL, 0, &r);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    const char *st = json_string_value(json_object_get(j, "status"));
    int ok = st && strcmp(st, w->want) == 0;
    json_decref(j);
    db_test_resp_clear(&r);
    return ok;
}

static void wait_status(const char *id, const char *want)
{
    struct msg_wait w = {id, want};
    if (!db_test_wait(message_reaches, &w, 10000)) fail_msg("message %s never became %s", id, want);
}

static int dead_letter_written(void *arg)
{
    (void)arg;
    return xlen("dead") == 1;
}

/* ---- the dispatcher's conversations ---- */

#define CONV_PREFIX "telegram:7000000001:"

static void post_chat(long long update_id, long long chat)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"O\"},"
                         "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"O\"},"
                         "\"text\":\"help\"}}",
                         update_id, update_id, chat, chat) > 0);
    assert_int_equal(post_hook(HOOK, b, SECRET), 200);
    free(b);
}

static int api_call(const char *method, const char *path, const char *body)
{
    struct db_test_resp r;
    db_test_http(W.d.port, method, path, auth, body, body ? strlen(body) : 0, &r);
    int status = r.status;
    db_test_resp_clear(&r);
    return status;
}

static void agent_reply(const char *conversation, const char *agent)
{
    char json[256];
    snprintf(json, sizeof json, "{\"conversation\":\"%s\",\"text\":\"on it\",\"agent\":\"%s\"}",
             conversation, agent);
    assert_int_equal(api_call("POST", "/v1/messages", json), 202);
}

struct conv_want {
    const char *conv, *field, *want; /* want NULL: the field just has to exist */
};

static int conv_field_is(void *arg)
{
    const struct conv_want *w = arg;
    redisReply *r =
        redisCommand(db_test_redis_ctx(W.redis), "HGET deskbridge:conv:{%s} %s", w->conv, w->field);
    assert_non_null(r);
    int ok = r->type == REDIS_REPLY_STRING && (!w->want || strcmp(r->str, w->want) == 0);
    freeReplyObject(r);
    return ok;
}

static void wait_conv_field(const char *conv, const char *field, const char *want)
{
    struct conv_want w = {conv, field, want};
    if (!db_test_wait(conv_field_is, &w, 10000))
        fail_msg("%s: %s never became %s", conv, field, want ? want : "set");
}

static const char *const conv_states[] = {"open", "queued", "assigned", "closed"};

/* Conversations per state counted the slow way, from every conversation's own hash: the
 * scrape reads the dispatcher's sets instead, so the two must agree. */
static void count_states(long long out[4])
{
    memset(out, 0, 4 * sizeof *out);
    redisContext *ctx = db_test_redis_ctx(W.redis);
    redisReply *ids = redisCommand(ctx, "ZRANGE deskbridge:convs 0 -1");
    assert_true(ids && ids->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *st = redisCommand(ctx, "HGET deskbridge:conv:{%s} state", ids->element[i]->str);
        assert_true(st && st->type == REDIS_REPLY_STRING);
        int k = 0;
        while (k < 4 && strcmp(st->str, conv_states[k]) != 0) k++;
        assert_true(k < 4);
        out[k]++;
        freeReplyObject(st);
    }
    freeReplyObject(ids);
}

/* Scrapes and checks deskbridge_conversations against count_states; returns the scrape
 * (caller frees) and the counts in have. */
static char *scrape_states(long long have[4])
{
    char *t = scrape(NULL);
    count_states(have);
    char s[128];
    for (int k = 0; k < 4; k++) {
        snprintf(s, sizeof s, "deskbridge_conversations{state=\"%s\"}", conv_states[k]);
        expect_sample(t, s, (double)have[k]);
    }
    return t;
}

struct frt_want {
    double count;
};

static int frt_count_is(void *arg)
{
    const struct frt_want *w = arg;
    char *t = scrape(NULL);
    int ok = sample(t, "deskbridge_first_response_seconds_count") == w->count;
    free(t);
    return ok;
}

/* ---- tests ---- */

static void scrape_counts_what_went_through_the_daemon(void **state)
{
    (void)state;
    char *body = update(910001, "hello");
    assert_int_equal(post_hook(HOOK, body, SECRET), 200);      /* accepted */
    assert_int_equal(post_hook(HOOK, body, SECRET), 200);      /* duplicate */
    assert_int_equal(post_hook(HOOK, body, "wrong"), 401);     /* unauthorized */
    assert_int_equal(post_hook(HOOK, body, NULL), 401);        /* unauthorized */
    assert_int_equal(post_hook(HOOK, "not json", SECRET), 400); /* invalid */
    assert_int_equal(post_hook(HOOK, "{\"update_id\":910002,\"poll\":{\"id\":\"1\"}}", SECRET),
                     200);                                      /* ignored */
    assert_int_equal(post_hook("/webhooks/telegram/999", "{}", NULL), 404);
    assert_int_equal(post_hook("/webhooks/wp-login/1", "{}", NULL), 404);
    free(body);

    /* One reply sent, one refused for good, one outbox entry that is garbage. */
    char *ok_id = send_message("telegram:7000000001:5012345678", "thanks");
    wait_status(ok_id, "sent");
    db_fake_rule(W.tg, "POST", "/sendMessage", -1, 403,
                 "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was blocked\"}",
                 0, 0);
    char *bad_id = send_message("telegram:7000000001:42", "hi");
    wait_status(bad_id, "failed");
    redis_ok("XADD deskbridge:outbox * command %s", "{not json");
    assert_true(db_test_wait(dead_letter_written, NULL, 10000));
    free(ok_id);
    free(bad_id);

    /* A helpdesk's consumer group with one entry read and not acknowledged for 5 s; the
     * group name needs escaping in the exposition format. */
    redis_ok("XGROUP CREATE deskbridge:events %s 0", "help\"desk");
    redis_ok("XREADGROUP GROUP %s agent-1 COUNT 1 STREAMS deskbridge:events >", "help\"desk");
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:events - + COUNT 1");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    redis_ok("XCLAIM deskbridge:events %s agent-1 0 %s IDLE 5000", "help\"desk",
             r->element[0]->element[0]->str);
    freeReplyObject(r);
    redis_ok("XGROUP CREATE deskbridge:status idle-helpdesk $ MKSTREAM");

    char *t = scrape(NULL);
    const char *wh = "deskbridge_webhooks_total{platform=\"telegram\",account=\"7000000001\",";
    char s[256];
    snprintf(s, sizeof s, "%soutcome=\"accepted\"}", wh);
    expect_sample(t, s, 1);
    snprintf(s, sizeof s, "%soutcome=\"duplicate\"}", wh);
    expect_sample(t, s, 1);
    snprintf(s, sizeof s, "%soutcome=\"unauthorized\"}", wh);
    expect_sample(t, s, 2);
    snprintf(s, sizeof s, "%soutcome=\"invalid\"}", wh);
    expect_sample(t, s, 1);
    snprintf(s, sizeof s, "%soutcome=\"ignored\"}", wh);
    expect_sample(t, s, 1);
    expect_sample(t, "deskbridge_webhooks_total{platform=\"telegram\",account=\"-\","
                     "outcome=\"unknown_account\"}", 1);
    expect_sample(t, "deskbridge_webhooks_total{platform=\"other\",account=\"-\","
                     "outcome=\"unknown_account\"}", 1);
    expect_sample(t, "deskbridge_events_total{platform=\"telegram\",kind=\"message\"}", 1);
    /* accepted and duplicate: each a plain webhook, written (or found written) as one
     * transaction */
    expect_sample(t, "deskbridge_stored_webhooks_total{way=\"plain\"}", 2);
    expect_sample(t, "deskbridge_stored_webhooks_total{way=\"script\"}", 0);
    expect_sample(t, "deskbridge_stream_write_seconds_count", 2);
    expect_sample(t, "deskbridge_stream_write_seconds_bucket{le=\"+Inf\"}", 2);
    expect_sample(t, "deskbridge_sends_total{platform=\"telegram\",outcome=\"sent\","
                     "error_class=\"\"}", 1);
    expect_sample(t, "deskbridge_sends_total{platform=\"telegram\",outcome=\"failed\","
                     "error_class=\"403\"}", 1);
    expect_sample(t, "deskbridge_dead_letters_total", 1);
    expect_sample(t, "deskbridge_redis_up", 1);
    expect_sample(t, "deskbridge_scrape_redis_ok", 1);
    expect_sample(t, "deskbridge_build_info{version=\"" DB_VERSION "\"}", 1);
    assert_true(sample(t, "process_resident_memory_bytes") > 1e6);
    assert_true(sample(t, "process_open_fds") >= 5);
    assert_true(sample(t, "deskbridge_http_connections") >= 1);
    assert_true(sample(t, "deskbridge_http_inflight") >= 1); /* the scrape itself */

    /* Redis gauges agree with Redis. */
    static const char *const streams[] = {"events", "outbox", "status", "dead"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(s, sizeof s, "deskbridge_queue_length{stream=\"%s\"}", streams[i]);
        expect_sample(t, s, (double)xlen(streams[i]));
    }
    expect_sample(t, "deskbridge_queue_length{stream=\"events\"}", 1);
    expect_sample(t, "deskbridge_queue_length{stream=\"dead\"}", 1);
    expect_sample(t, "deskbridge_pending_entries{stream=\"events\",group=\"help\\\"desk\"}", 1);
    double oldest =
        sample(t, "deskbridge_pending_oldest_seconds{stream=\"events\",group=\"help\\\"desk\"}");
    assert_true(oldest >= 5.0 && oldest < 60.0);
    expect_sample(t, "deskbridge_pending_entries{stream=\"status\",group=\"idle-helpdesk\"}", 0);
    expect_sample(t, "deskbridge_pending_oldest_seconds{stream=\"status\",group=\"idle-helpdesk\"}",
                  0);
    expect_sample(t, "deskbridge_pending_entries{stream=\"outbox\",group=\"" SENDER_GROUP "\"}", 0);
    promtool_check(t);

    /* Counters only grow between scrapes; another webhook shows at once. */
    body = update(910003, "again");
    assert_int_equal(post_hook(HOOK, body, SECRET), 200);
    free(body);
    free(t);
    t = scrape(NULL);
    snprintf(s, sizeof s, "%soutcome=\"accepted\"}", wh);
    expect_sample(t, s, 2);
    expect_sample(t, "deskbridge_events_total{platform=\"telegram\",kind=\"message\"}", 2);
    expect_sample(t, "deskbridge_stream_write_seconds_count", 3);
    free(t);
}

static void conversations_and_first_response(void **state)
{
    (void)state;
    const char *a = CONV_PREFIX "5012340001", *b = CONV_PREFIX "5012340002",
               *c = CONV_PREFIX "5012340003";
    long long have[4];
    char *t = scrape_states(have);
    double frt0 = sample(t, "deskbridge_first_response_seconds_count");
    double le10 = sample(t, "deskbridge_first_response_seconds_bucket{le=\"10\"}");
    double sum0 = sample(t, "deskbridge_first_response_seconds_sum");
    assert_true(frt0 >= 0 && le10 >= 0 && sum0 >= 0);
    promtool_check(t);
    free(t);

    /* Nobody online: the customer waits in the queue. */
    post_chat(920001, 5012340001);
    wait_conv_field(a, "state", "queued");
    t = scrape_states(have);
    assert_true(have[1] >= 1);
    free(t);

    /* An agent comes online and gets it; the next customer goes straight to her. */
    assert_int_equal(api_call("PUT", "/v1/agents/ag-metrics", "{\"name\":\"M\",\"capacity\":10}"),
                     200);
    assert_int_equal(
        api_call("POST", "/v1/agents/ag-metrics/presence", "{\"presence\":\"online\"}"), 200);
    wait_conv_field(a, "state", "assigned");
    post_chat(920002, 5012340002);
    wait_conv_field(b, "state", "assigned");

    /* Her first reply is one first-response observation, her second is none. */
    agent_reply(a, "ag-metrics");
    struct frt_want w = {frt0 + 1};
    if (!db_test_wait(frt_count_is, &w, 10000)) fail_msg("no first-response observation");
    wait_conv_field(a, "first_response_at", NULL);
    agent_reply(a, "ag-metrics");
    wait_conv_field(a, "unread", "0");

    /* One closed, and one the agent opened herself (no customer message yet: "open"). */
    assert_int_equal(api_call("POST", "/v1/conversations/telegram%3A7000000001%3A5012340002/close",
                              NULL),
                     200);
    wait_conv_field(b, "state", "closed");
    agent_reply(c, "ag-metrics");
    wait_conv_field(c, "state", "open");
    /* The reply without a customer message recorded nothing: wait for a later marker. */
    wait_conv_field(c, "last_reply_at", NULL);

    t = scrape_states(have);
    assert_true(have[0] >= 1 && have[2] >= 1 && have[3] >= 1);
    redisReply *n = redisCommand(db_test_redis_ctx(W.redis), "ZCARD deskbridge:convs");
    assert_true(n && n->type == REDIS_REPLY_INTEGER);
    assert_int_equal(have[0] + have[1] + have[2] + have[3], n->integer);
    freeReplyObject(n);
    expect_sample(t, "deskbridge_first_response_seconds_count", frt0 + 1);
    /* The reply came within seconds of the customer's message. */
    expect_sample(t, "deskbridge_first_response_seconds_bucket{le=\"10\"}", le10 + 1);
    double sum = sample(t, "deskbridge_first_response_seconds_sum");
    assert_true(sum >= sum0 && sum - sum0 < 10);
    promtool_check(t);
    free(t);
}

static int redis_gauges_back(void *arg)
{
    (void)arg;
    char *t = scrape(NULL);
    int back = sample(t, "deskbridge_scrape_redis_ok") == 1 && sample(t, "deskbridge_redis_up") == 1;
    free(t);
    return back;
}

static void stalled_redis_leaves_out_the_redis_gauges(void **state)
{
    (void)state;
    db_test_redis_kill(W.redis, SIGSTOP);
    long long took;
    char *t = scrape(&took);
    db_test_redis_kill(W.redis, SIGCONT);
    printf("# scrape with Redis stalled answered in %lld ms\n", took);
    assert_true(took < 5000); /* the command timeout (2 s) bounds it */
    expect_sample(t, "deskbridge_scrape_redis_ok", 0);
    assert_null(strstr(t, "deskbridge_queue_length"));
    assert_null(strstr(t, "deskbridge_pending_entries"));
    assert_null(strstr(t, "deskbridge_pending_oldest_seconds"));
    assert_null(strstr(t, "deskbridge_conversations"));
    /* the process's own series are still there */
    assert_true(sample(t, "deskbridge_stream_write_seconds_count") >= 2);
    assert_true(sample(t, "process_open_fds") > 0);
    promtool_check(t);
    free(t);

    assert_true(db_test_wait(redis_gauges_back, NULL, 10000));
    t = scrape(NULL);
    /* the timeout dropped the connection; it came back once */
    assert_true(sample(t, "deskbridge_redis_reconnects_total") >= 1);
    expect_sample(t, "deskbridge_queue_length{stream=\"events\"}", (double)xlen("events"));
    promtool_check(t);
    free(t);
}

static void redis_down_shows_in_redis_up(void **state)
{
    (void)state;
    /* A stopped server refuses connections: the gauge drops to 0 and the scrape answers at
     * once without the Redis gauges. */
    db_test_redis_kill(W.redis, SIGTERM);
    char *t = NULL;
    for (int i = 0; i < 100; i++) {
        free(t);
        t = scrape(NULL);
        if (sample(t, "deskbridge_redis_up") == 0) break;
        usleep(50000);
    }
    expect_sample(t, "deskbridge_redis_up", 0);
    expect_sample(t, "deskbridge_scrape_redis_ok", 0);
    assert_null(strstr(t, "deskbridge_queue_length{"));
    free(t);
    db_test_redis_restart(W.redis);
    assert_true(db_test_wait(redis_gauges_back, NULL, 10000));
}

/* Opens a connection to the daemon and has one request answered on it; the socket, or -1. */
static int busy_connection(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.d.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[512];
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1) ||
        read(fd, buf, sizeof buf) <= 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static int trimmed(void *arg)
{
    char *t = scrape(NULL);
    double n = sample(t, "deskbridge_memory_trims_total");
    free(t);
    return n > *(double *)arg;
}

static void memory_is_handed_back_after_a_burst_of_connections(void **state)
{
    (void)state;
    enum { BURST = 80 };
    char *t = scrape(NULL);
    double before = sample(t, "deskbridge_memory_trims_total");
    free(t);
    assert_true(before >= 0);
    int fds[BURST];
    for (int i = 0; i < BURST; i++) assert_true((fds[i] = busy_connection()) >= 0);
    /* While they stay open (the check runs every 2 s) nothing is trimmed. */
    sleep(3);
    assert_false(trimmed(&before));
    for (int i = 0; i < BURST; i++) close(fds[i]);
    if (!db_test_wait(trimmed, &before, 8000))
        fail_msg("no trim after %d connections closed", BURST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scrape_counts_what_went_through_the_daemon),
        cmocka_unit_test(conversations_and_first_response),
        cmocka_unit_test(stalled_redis_leaves_out_the_redis_gauges),
        cmocka_unit_test(redis_down_shows_in_redis_up),
        cmocka_unit_test(memory_is_handed_back_after_a_burst_of_connections),
    };
    return cmocka_run_group_tests_name("metrics_flow", tests, setup, teardown);
}
