/* Chatwoot down while customers keep writing, and the gateway killed in the middle.
 *
 * The fake Chatwoot answers every API call with 503 for 30 s.  Meanwhile 500 Telegram messages
 * from 50 conversations (10 each, interleaved) reach the gateway; after the first 250 the
 * gateway is killed with SIGKILL and a new process takes over (its entries claimed after
 * claim_idle_ms); it is killed once more just after Chatwoot comes back, while the first 40
 * messages it creates are made but answered only 3 s later (the answers never reach the
 * killed process).  Once Chatwoot is back every message must be in its conversation exactly
 * once and in the order the customer wrote them.  A second case gives up: with Chatwoot down
 * for good an entry goes to P:dead after max_attempts, and /metrics shows the bridge's
 * backlog and failures. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "daemon.h"
#include "fake_chatwoot.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define N_CONV 50
#define PER_CONV 10
#define OUTAGE_MS 30000
#define TG_SECRET "tg-outage-secret_1"
#define CW_TOKEN "cw-outage-token"
#define CW_SECRET "cw-outage-secret-0123456789"

static struct db_test_redis *R;
static struct db_fake *TG;
static struct db_cw_fake *CW;
static struct db_test_daemon D;
static char conf_path[256], env_redis[512];

static void write_conf(const char *knobs)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\napi_token = outage-api-token-0123456789\n"
            "[telegram one]\ntoken = 7000000001:AAoutage\nwebhook_secret = " TG_SECRET
            "\napi_base = %s\n"
            "[chatwoot desk]\nurl = %s\naccount_id = 1\ninbox_id = 1\n"
            "api_access_token = " CW_TOKEN "\nwebhook_secret = " CW_SECRET "\n"
            "accounts = telegram:one\ntimeout_ms = 2000\nclaim_idle_ms = 2000\n%s",
            db_fake_url(TG), db_cw_fake_url(CW), knobs);
    fclose(f);
}

static void start(void)
{
    const char *env[] = {env_redis, NULL};
    const char *args[] = {"--config", conf_path, NULL};
    db_test_daemon_start(&D, env, args, 0);
}

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    TG = db_fake_start();
    CW = db_cw_fake_start(1, 1, CW_TOKEN);
    assert_non_null(TG);
    assert_non_null(CW);
    db_fake_default(TG, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(conf_path, sizeof conf_path, "/tmp/deskbridge-cwout-%d.conf", (int)getpid());
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    db_fake_stop(TG);
    db_cw_fake_stop(CW);
    db_test_redis_stop(R);
    return 0;
}

static void customer(int conv, int i)
{
    char body[512];
    long long update = 100000 + (long long)i * N_CONV + conv;
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":%d,\"type\":\"private\"},\"from\":{\"id\":%d,\"is_bot\":false,"
             "\"first_name\":\"C%d\"},\"text\":\"c%d m%d\"}}",
             update, update, 7000 + conv, 7000 + conv, conv, conv, i);
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " TG_SECRET, NULL};
    struct db_test_resp r;
    db_test_http(D.port, "POST", "/webhooks/telegram/one", headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
}

/* The value of the series named exactly so in a scrape, -1 when absent. */
static double series(const char *body, const char *name)
{
    const char *p = strstr(body, name);
    double v = -1;
    if (p && sscanf(p + strlen(name), " %lf", &v) != 1) v = -1;
    return v;
}

static int all_arrived(void *arg)
{
    (void)arg;
    struct db_cw_msg m[1];
    for (int c = 0; c < N_CONV; c++) {
        char ident[64];
        snprintf(ident, sizeof ident, "telegram:one:%d", 7000 + c);
        long conv = db_cw_fake_conversation_of(CW, ident);
        if (!conv || db_cw_fake_messages(CW, conv, m, 0) < PER_CONV) return 0;
    }
    return 1;
}

static void outage_and_kill_lose_and_double_nothing(void **state)
{
    (void)state;
    write_conf("retry_base_ms = 500\nretry_max_ms = 4000\nmax_attempts = 40\nconcurrency = 64\n");
    db_cw_fake_fail_for(CW, 503, OUTAGE_MS);
    long long t0 = db_test_now_ms();
    start();
    for (int i = 0; i < PER_CONV / 2; i++)
        for (int c = 0; c < N_CONV; c++) customer(c, i);
    /* Mid-outage: every conversation's first message is being retried. */
    sleep(5);
    db_test_daemon_stop(&D, SIGKILL);
    start();
    for (int i = PER_CONV / 2; i < PER_CONV; i++)
        for (int c = 0; c < N_CONV; c++) customer(c, i);
    assert_true(db_test_now_ms() - t0 < OUTAGE_MS); /* all 500 arrived during the outage */
    /* /metrics shows the backlog (held plus not yet read) and the failed attempts. */
    struct db_test_resp mr = {0};
    double held, lag, retries;
    for (int tries = 0;; tries++) { /* the new process retries once it took the entries over */
        db_test_http(D.port, "GET", "/metrics", NULL, NULL, 0, &mr);
        assert_int_equal(mr.status, 200);
        retries = series(mr.body, "deskbridge_bridge_calls_total{bridge=\"chatwoot:desk\","
                                  "direction=\"to_helpdesk\",outcome=\"retry\"}");
        if (retries > 0 || tries == 50) break;
        db_test_resp_clear(&mr);
        usleep(200 * 1000);
    }
    held = series(mr.body, "deskbridge_pending_entries{stream=\"events\","
                                  "group=\"deskbridge-chatwoot-desk\"}");
    lag = series(mr.body, "deskbridge_group_lag_entries{stream=\"events\","
                                 "group=\"deskbridge-chatwoot-desk\"}");
    printf("chatwoot outage: /metrics during the outage: %.0f held, %.0f not yet read, %.0f "
           "retries in this process\n", held, lag, retries);
    assert_true(held + lag >= N_CONV * PER_CONV - N_CONV); /* at most the heads were tried */
    assert_true(retries > 0);
    db_test_resp_clear(&mr);
    /* Killed again just after Chatwoot is back, while messages are being created: those
     * whose answer the dead process never read are found by source_id, not posted again. */
    db_cw_fake_stall_creates(CW, 40, 3000); /* created at once, answered late */
    long long left = t0 + OUTAGE_MS + 1500 - db_test_now_ms();
    if (left > 0) usleep((useconds_t)left * 1000);
    size_t before_kill = db_cw_fake_requests(CW, "POST", "/messages");
    db_test_daemon_stop(&D, SIGKILL);
    start();
    assert_true(db_test_wait(all_arrived, NULL, 60000));
    sleep(2); /* anything doubled would show up now */
    long long done = db_test_now_ms() - t0;
    size_t dup = 0, misorder = 0;
    for (int c = 0; c < N_CONV; c++) {
        char ident[64];
        snprintf(ident, sizeof ident, "telegram:one:%d", 7000 + c);
        long conv = db_cw_fake_conversation_of(CW, ident);
        struct db_cw_msg m[PER_CONV * 2];
        size_t n = db_cw_fake_messages(CW, conv, m, PER_CONV * 2);
        if (n != PER_CONV) dup += n - PER_CONV;
        for (size_t i = 0; i < n && i < PER_CONV; i++) {
            char want[32];
            snprintf(want, sizeof want, "c%d m%zu", c, i);
            if (strcmp(m[i].content, want) != 0) misorder++;
        }
    }
    printf("chatwoot outage: %d messages, %d conversations, 503 for %d ms, SIGKILL mid-outage "
           "and again after %zu message creations; all in Chatwoot after %lld ms; %zu extra, "
           "%zu out of order; %zu contacts, %zu conversations\n",
           N_CONV * PER_CONV, N_CONV, OUTAGE_MS, before_kill, done, dup, misorder,
           db_cw_fake_contacts(CW), db_cw_fake_conversations(CW));
    assert_int_equal(dup, 0);
    assert_int_equal(misorder, 0);
    assert_int_equal(db_cw_fake_contacts(CW), N_CONV);
    assert_int_equal(db_cw_fake_conversations(CW), N_CONV);
    db_test_daemon_stop_clean(&D, NULL);
}

static int dead_lettered(void *arg)
{
    (void)arg;
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XLEN deskbridge:dead");
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return n >= 1;
}

static void chatwoot_down_for_good_ends_in_dead_letters(void **state)
{
    (void)state;
    write_conf("retry_base_ms = 100\nretry_max_ms = 200\nmax_attempts = 3\n");
    db_cw_fake_fail_for(CW, 503, 3600 * 1000);
    start();
    customer(49, 99);
    assert_true(db_test_wait(dead_lettered, NULL, 20000));
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XRANGE deskbridge:dead - +");
    assert_non_null(r);
    int found = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        const char *bridge = NULL, *reason = NULL, *payload = NULL; /* the entry's event */
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "bridge") == 0) bridge = f->element[k + 1]->str;
            if (strcmp(f->element[k]->str, "reason") == 0) reason = f->element[k + 1]->str;
            if (strcmp(f->element[k]->str, "event") == 0) payload = f->element[k + 1]->str;
        }
        if (bridge && strcmp(bridge, "chatwoot:desk") == 0 && reason &&
            strstr(reason, "gave up after 3 attempts: HTTP 503") && payload &&
            strstr(payload, "c49 m99"))
            found++;
    }
    freeReplyObject(r);
    assert_int_equal(found, 1);
    struct db_test_resp m;
    db_test_http(D.port, "GET", "/metrics", NULL, NULL, 0, &m);
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.body, "deskbridge_bridge_calls_total{bridge=\"chatwoot:desk\","
                                   "direction=\"to_helpdesk\",outcome=\"retry\"} 2"));
    assert_non_null(strstr(m.body, "deskbridge_bridge_calls_total{bridge=\"chatwoot:desk\","
                                   "direction=\"to_helpdesk\",outcome=\"dead\"} 1"));
    assert_non_null(strstr(m.body, "deskbridge_pending_entries{stream=\"events\","
                                   "group=\"deskbridge-chatwoot-desk\"} 0"));
    assert_non_null(strstr(m.body, "deskbridge_group_lag_entries{stream=\"events\","
                                   "group=\"deskbridge-chatwoot-desk\"} 0"));
    db_test_resp_clear(&m);
    db_test_daemon_stop_clean(&D, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(outage_and_kill_lose_and_double_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(chatwoot_down_for_good_ends_in_dead_letters, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
