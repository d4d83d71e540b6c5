/* Per-agent and per-account statistics end to end: the real binary, a real redis-server and a
 * fake Telegram.  Two agents answer three customers through POST /v1/messages; GET /v1/stats
 * and /metrics must give each agent and the account the conversations handled and the
 * first-response median and p90 that the conversations' own timestamps imply.  Samples written
 * straight into the sets (as the satisfaction survey and older gateways write them) prove the
 * windows, the satisfaction averages and the old member format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "api_client.h"
#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define TOKEN "7000000001:AAtesttokenDoNotLog_abcdefghijkl"
#define SECRET "hook-secret_123"
#define API_TOKEN "api-token-0123456789abcdef"
#define HOOK "/webhooks/telegram/7000000001"
#define ACCT "telegram:7000000001"
#define C1 ACCT ":5012350001"
#define C2 ACCT ":5012350002"
#define C3 ACCT ":5012350003"

static struct {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon d;
    char env[5][512];
} W;

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

/* Unix ms, the clock the gateway stamps samples with (db_test_now_ms is monotonic). */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(W.redis), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis: %s", r->str);
    return r;
}

static long long hget_ll(const char *conv, const char *field)
{
    redisReply *r = cmd("HGET deskbridge:conv:{%s} %s", conv, field);
    long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
    freeReplyObject(r);
    return v;
}

static int api(const char *method, const char *path, const char *body, json_t **out)
{
    return db_test_api(W.d.port, API_TOKEN, method, path, body, out);
}

static void post_chat(long long update_id, long long chat)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"O\"},"
                         "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"O\"},"
                         "\"text\":\"help\"}}",
                         update_id, update_id, chat, chat) > 0);
    char h[128];
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", SECRET);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", HOOK, headers, b, strlen(b), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    free(b);
}

/* A reply through the API; agent NULL: none named (the conversation's agent is credited). */
static void reply(const char *conv, const char *agent)
{
    char json[256];
    if (agent)
        snprintf(json, sizeof json, "{\"conversation\":\"%s\",\"text\":\"on it\",\"agent\":\"%s\"}",
                 conv, agent);
    else snprintf(json, sizeof json, "{\"conversation\":\"%s\",\"text\":\"on it\"}", conv);
    assert_int_equal(api("POST", "/v1/messages", json, NULL), 202);
}

struct field_want {
    const char *conv, *field, *want; /* want NULL: the field just has to exist */
};

static int field_is(void *arg)
{
    const struct field_want *w = arg;
    redisReply *r = cmd("HGET deskbridge:conv:{%s} %s", w->conv, w->field);
    int ok = r->type == REDIS_REPLY_STRING && (!w->want || strcmp(r->str, w->want) == 0);
    freeReplyObject(r);
    return ok;
}

static void wait_field(const char *conv, const char *field, const char *want)
{
    struct field_want w = {conv, field, want};
    if (!db_test_wait(field_is, &w, 10000))
        fail_msg("%s: %s never became %s", conv, field, want ? want : "set");
}

static int handled_members(void *arg)
{
    redisReply *r = cmd("ZCARD deskbridge:stats:handled");
    int ok = r->integer == *(long long *)arg;
    freeReplyObject(r);
    return ok;
}

static json_t *stats(void)
{
    json_t *st = NULL;
    assert_int_equal(api("GET", "/v1/stats", NULL, &st), 200);
    assert_non_null(st);
    return st;
}

/* st.<a>.<b>.<c>.<d>... as a number; NaN when absent or null. */
static double at(const json_t *st, ...)
{
    va_list ap;
    va_start(ap, st);
    const json_t *v = st;
    for (const char *k; (k = va_arg(ap, const char *));) v = json_object_get(v, k);
    va_end(ap);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void expect_num(double got, double want, const char *what)
{
    if (isnan(want) ? !isnan(got) : fabs(got - want) > 1e-9)
        fail_msg("%s: want %.10g, got %.10g", what, want, got);
}

/* Checks who's first_response window: median, p90, count (median NaN: null). */
static void expect_frt(const json_t *who, const char *win, double med, double p90, double n)
{
    char what[128];
    snprintf(what, sizeof what, "first_response.%s", win);
    expect_num(at(who, "first_response", win, "median_ms", NULL), med, what);
    expect_num(at(who, "first_response", win, "p90_ms", NULL), p90, what);
    expect_num(at(who, "first_response", win, "count", NULL), n, what);
}

static char *scrape(void)
{
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    char *body = r.body;
    r.body = NULL;
    db_test_resp_clear(&r);
    return body;
}

/* Value of the sample whose name and labels are exactly series; NaN when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return NAN;
}

static void expect_sample(const char *text, const char *series, double want)
{
    double got = sample(text, series);
    if (isnan(want) ? !isnan(got) : fabs(got - want) > 1e-9)
        fail_msg("%s: want %.10g, got %.10g\n---\n%s", series, want, got, text);
}

static void promtool_check(const char *text)
{
    char dir[] = "/tmp/db-agent-stats-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96], sh[320], out[4096] = "";
    snprintf(path, sizeof path, "%s/scrape.prom", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(sh, sizeof sh, "promtool check metrics < %s/scrape.prom > %s/out 2>&1", dir, dir);
    int st = system(sh);
    snprintf(path, sizeof path, "%s/out", dir);
    if ((f = fopen(path, "r"))) {
        out[fread(out, 1, sizeof out - 1, f)] = '\0';
        fclose(f);
    }
    snprintf(sh, sizeof sh, "rm -rf %s", dir);
    assert_int_equal(system(sh), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("promtool check metrics: status %d (127 = not installed; scripts/deps.sh "
                 "installs it): %s", st, out);
}

/* ---- tests ---- */

/* The first-response times the gateway recorded, read back from the conversations. */
static long long F1, F2, F3;

static void replies_are_counted_per_agent_and_account(void **state)
{
    (void)state;
    /* Nobody online: the three customers wait, so who answers is up to the test. */
    assert_int_equal(api("PUT", "/v1/agents/ag-a", "{\"name\":\"A\",\"capacity\":10}", NULL), 200);
    assert_int_equal(api("PUT", "/v1/agents/ag-b", "{\"name\":\"B\",\"capacity\":10}", NULL), 200);
    assert_int_equal(api("POST", "/v1/agents/ag-b/presence", "{\"presence\":\"away\"}", NULL), 200);
    post_chat(930001, 5012350001);
    post_chat(930002, 5012350002);
    post_chat(930003, 5012350003);
    wait_field(C1, "state", "queued");
    wait_field(C2, "state", "queued");
    wait_field(C3, "state", "queued");
    /* Customers who wrote 30 s, 90 s and 5 min ago: first responses far apart. */
    long long now = wall_ms();
    freeReplyObject(cmd("HSET deskbridge:conv:{%s} first_message_at %lld", C1, now - 30000));
    freeReplyObject(cmd("HSET deskbridge:conv:{%s} first_message_at %lld", C2, now - 90000));
    freeReplyObject(cmd("HSET deskbridge:conv:{%s} first_message_at %lld", C3, now - 300000));
    assert_int_equal(api("POST", "/v1/conversations/" C3 "/assign", "{\"agent\":\"ag-b\"}", NULL),
                     200);
    wait_field(C3, "agent", "ag-b");

    /* ag-a answers C1 first, then C2 and C1 again; ag-b answers C1 too, and C3 with no agent
     * named: C3 is hers, so hers is the answer. */
    reply(C1, "ag-a");
    wait_field(C1, "first_response_at", NULL);
    reply(C2, "ag-a");
    reply(C1, "ag-a");
    reply(C1, "ag-b");
    reply(C3, NULL);
    long long members = 4; /* ag-a C1, ag-a C2, ag-b C1, ag-b C3 */
    if (!db_test_wait(handled_members, &members, 10000)) fail_msg("replies not all recorded");
    wait_field(C2, "first_response_at", NULL);
    wait_field(C3, "first_response_at", NULL);
    F1 = hget_ll(C1, "first_response_at") - (now - 30000);
    F2 = hget_ll(C2, "first_response_at") - (now - 90000);
    F3 = hget_ll(C3, "first_response_at") - (now - 300000);
    assert_true(F1 >= 30000 && F2 >= 90000 && F3 >= 300000);
    assert_true(F3 < 3600000); /* all three within the hour window */

    /* Every first response names its agent and account. */
    redisReply *r = cmd("ZRANGE deskbridge:stats:frt 0 -1");
    assert_int_equal(r->elements, 3);
    char want[3][160];
    snprintf(want[0], sizeof want[0], "%lld|" C1 "|%lld|ag-a|" ACCT, F1,
             hget_ll(C1, "first_response_at"));
    snprintf(want[1], sizeof want[1], "%lld|" C2 "|%lld|ag-a|" ACCT, F2,
             hget_ll(C2, "first_response_at"));
    snprintf(want[2], sizeof want[2], "%lld|" C3 "|%lld|ag-b|" ACCT, F3,
             hget_ll(C3, "first_response_at"));
    for (int i = 0; i < 3; i++) {
        int found = 0;
        for (size_t j = 0; j < r->elements; j++) found |= strcmp(r->element[j]->str, want[i]) == 0;
        if (!found) fail_msg("no sample %s", want[i]);
    }
    freeReplyObject(r);

    json_t *st = stats();
    const json_t *a = json_object_get(json_object_get(st, "agents"), "ag-a");
    const json_t *b = json_object_get(json_object_get(st, "agents"), "ag-b");
    const json_t *acct = json_object_get(json_object_get(st, "accounts"), ACCT);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(acct);
    for (int i = 0; i < 2; i++) {
        const char *win = i ? "day" : "hour";
        expect_num(at(a, "handled", win, NULL), 2, "ag-a handled");
        expect_num(at(b, "handled", win, NULL), 2, "ag-b handled");
        expect_num(at(acct, "handled", win, NULL), 3, "account handled");
        /* of two values the median is the lower, p90 the higher (nearest rank) */
        expect_frt(a, win, (double)(F1 < F2 ? F1 : F2), (double)(F1 < F2 ? F2 : F1), 2);
        expect_frt(b, win, (double)F3, (double)F3, 1);
        expect_frt(acct, win, (double)F2, (double)F3, 3);
        expect_num(at(a, "satisfaction", win, "average", NULL), NAN, "no answers yet");
        expect_num(at(a, "satisfaction", win, "count", NULL), 0, "no answers yet");
    }
    /* the existing members are all still there */
    expect_num(at(st, "first_response", "hour", "count", NULL), 3, "first_response.hour");
    assert_non_null(json_object_get(st, "queue_wait"));
    assert_non_null(json_object_get(st, "open"));
    assert_non_null(json_object_get(st, "agents_online"));
    expect_num(at(st, "satisfaction", "day", "count", NULL), 0, "satisfaction.day");
    json_decref(st);

    char *t = scrape();
    expect_sample(t, "deskbridge_agent_conversations_handled{agent=\"ag-a\",window=\"hour\"}", 2);
    expect_sample(t, "deskbridge_agent_first_response_seconds{agent=\"ag-b\",window=\"day\","
                     "quantile=\"0.9\"}", (double)F3 / 1000.0);
    expect_sample(t, "deskbridge_agent_first_responses{agent=\"ag-a\",window=\"day\"}", 2);
    expect_sample(t, "deskbridge_account_conversations_handled{platform=\"telegram\","
                     "account=\"7000000001\",window=\"day\"}", 3);
    expect_sample(t, "deskbridge_account_first_response_seconds{platform=\"telegram\","
                     "account=\"7000000001\",window=\"hour\",quantile=\"0.5\"}",
                  (double)F2 / 1000.0);
    /* no answers: no average, a count of 0 */
    assert_null(strstr(t, "deskbridge_agent_satisfaction_average{"));
    expect_sample(t, "deskbridge_agent_satisfaction_answers{agent=\"ag-b\",window=\"hour\"}", 0);
    promtool_check(t);
    free(t);
}

/* Satisfaction answers as the survey records them, and samples at known times: the hour and
 * day windows, an older gateway's members and names nobody registered. */
static void windows_satisfaction_and_old_members(void **state)
{
    (void)state;
    long long now = wall_ms(), m = 60000, h = 3600000;
    /* head|<at>|tail, or head|<at> with no tail (the old format); handled has no time */
    struct {
        const char *key, *head, *tail;
        long long ago;
    } add[] = {
        {"csat", "5|" C1, "ag-a|" ACCT, 5 * m},
        {"csat", "4|" C2, "ag-a|" ACCT, 10 * m},
        {"csat", "2|" ACCT ":61", "ag-a|" ACCT, 3 * h},           /* day only */
        {"csat", "3|" C3, "ag-b|" ACCT, 1 * m},
        {"csat", "1|viber:a\"b\\c:9", "ag-b|viber:a\"b\\c", 2 * m}, /* another account */
        {"csat", "9|" ACCT ":62", "ag-a|" ACCT, 2 * m},           /* not 1-5: ignored */
        {"csat", "1|" ACCT ":63", "ag-a|" ACCT, 25 * h},          /* older than a day */
        {"csat", "1|" ACCT ":64", "ghost|" ACCT, 2 * m},          /* nobody registered */
        {"frt", "1000000|" ACCT ":65", "ag-a|" ACCT, 2 * h},      /* day only */
        {"frt", "7|" ACCT ":66", NULL, 10 * m},                   /* before agents were kept */
        {"frt", "8|" ACCT ":67", "ghost|" ACCT, 10 * m},
        {"handled", "ag-b|" ACCT "|" ACCT ":68", NULL, 3 * h},     /* day only */
    };
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
        char member[160];
        if (strcmp(add[i].key, "handled") == 0)
            snprintf(member, sizeof member, "%s", add[i].head);
        else
            snprintf(member, sizeof member, "%s|%lld%s%s", add[i].head, now - add[i].ago,
                     add[i].tail ? "|" : "", add[i].tail ? add[i].tail : "");
        freeReplyObject(cmd("ZADD deskbridge:stats:%s %lld %s", add[i].key, now - add[i].ago,
                            member));
    }

    json_t *st = stats();
    const json_t *ag = json_object_get(st, "agents"), *ac = json_object_get(st, "accounts");
    const json_t *a = json_object_get(ag, "ag-a"), *b = json_object_get(ag, "ag-b");
    const json_t *t1 = json_object_get(ac, ACCT), *v = json_object_get(ac, "viber:a\"b\\c");
    assert_non_null(v);
    assert_null(json_object_get(ag, "ghost"));
    expect_num(at(a, "satisfaction", "hour", "average", NULL), 4.5, "ag-a hour");
    expect_num(at(a, "satisfaction", "hour", "count", NULL), 2, "ag-a hour");
    expect_num(at(a, "satisfaction", "day", "average", NULL), 11.0 / 3, "ag-a day");
    expect_num(at(a, "satisfaction", "day", "count", NULL), 3, "ag-a day");
    expect_num(at(b, "satisfaction", "hour", "average", NULL), 2, "ag-b hour");
    /* ghost's answer is no agent's, but still the account's: 5 4 3 1, then 2 by day */
    expect_num(at(t1, "satisfaction", "hour", "average", NULL), 13.0 / 4, "account hour");
    expect_num(at(t1, "satisfaction", "day", "average", NULL), 3, "account day");
    expect_num(at(t1, "satisfaction", "day", "count", NULL), 5, "account day");
    expect_num(at(v, "satisfaction", "day", "average", NULL), 1, "other account");
    /* every answer in range of the last hour: 5 4 3 1 1(ghost) */
    expect_num(at(st, "satisfaction", "hour", "average", NULL), 14.0 / 5, "overall hour");
    expect_num(at(st, "satisfaction", "day", "count", NULL), 6, "overall day");

    /* ag-a: F1, F2 this hour, and 1000 s two hours ago */
    double lo = (double)(F1 < F2 ? F1 : F2), hi = (double)(F1 < F2 ? F2 : F1);
    expect_frt(a, "hour", lo, hi, 2);
    expect_frt(a, "day", hi, 1000000, 3);
    /* the account: 7, 8 (old member, unregistered agent), F1, F2, F3; and 1000000 by day */
    expect_frt(t1, "hour", lo, (double)F3, 5);
    expect_frt(t1, "day", lo, 1000000, 6); /* nearest rank: the 3rd of 6 */
    expect_num(at(b, "handled", "hour", NULL), 2, "ag-b handled hour");
    expect_num(at(b, "handled", "day", NULL), 3, "ag-b handled day");
    expect_num(at(t1, "handled", "day", NULL), 4, "account handled day");
    json_decref(st);

    char *t = scrape();
    expect_sample(t, "deskbridge_agent_satisfaction_average{agent=\"ag-a\",window=\"hour\"}", 4.5);
    expect_sample(t, "deskbridge_agent_satisfaction_answers{agent=\"ag-a\",window=\"day\"}", 3);
    expect_sample(t, "deskbridge_account_satisfaction_average{platform=\"viber\","
                     "account=\"a\\\"b\\\\c\",window=\"day\"}", 1);
    expect_sample(t, "deskbridge_satisfaction_average{window=\"hour\"}", 2.8);
    expect_sample(t, "deskbridge_satisfaction_answers{window=\"day\"}", 6);
    expect_sample(t, "deskbridge_agent_first_response_seconds{agent=\"ag-a\",window=\"day\","
                     "quantile=\"0.9\"}", 1000);
    expect_sample(t, "deskbridge_agent_conversations_handled{agent=\"ag-b\",window=\"day\"}", 3);
    assert_null(strstr(t, "agent=\"ghost\""));
    promtool_check(t);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies_are_counted_per_agent_and_account),
        cmocka_unit_test(windows_satisfaction_and_old_members),
    };
    return cmocka_run_group_tests_name("agent_stats", tests, setup, teardown);
}
