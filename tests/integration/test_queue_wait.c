/* Queue position and expected-wait messages end to end: the deskbridge binary, a real
 * redis-server and a fake Bot API.  Two Telegram bots:
 *   q:     [schedule default], open all week, with queue_message (and a Ukrainian one) and a
 *          default wait of two minutes per place;
 *   night: a schedule open one minute a week, three days from now (closed whenever the test
 *          runs), also with a queue_message: outside hours nobody is told a place.
 * No agent exists at first, so every conversation waits in the queue. */
#include <setjmp.h>
#include <signal.h>
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

#define TOK_Q "7000000021:AAqueueTokenDoNotLog_abcdefghijk"
#define TOK_NIGHT "7000000022:AAnightTokenDoNotLog_abcdefghijk"
#define SECRET "hook-secret_123"
#define API_TOKEN "api-token-0123456789abcdef"
#define SEND_Q "/bot" TOK_Q "/sendMessage"

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon d;
    char dir[64], conf[128];
    char env[2][512];
};

static struct world W;

static void write_config(void)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    time_t later = time(NULL) + 3 * 86400;
    struct tm tm;
    gmtime_r(&later, &tm);
    snprintf(W.dir, sizeof W.dir, "/tmp/db-qwait-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    snprintf(W.conf, sizeof W.conf, "%s/deskbridge.conf", W.dir);
    FILE *f = fopen(W.conf, "w");
    assert_non_null(f);
    const char *api = db_fake_url(W.tg);
    fprintf(f,
            "[telegram q]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[telegram night]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[schedule night]\ntimezone = UTC\nhours = %s 03:00-03:01\n"
            "queue_message = never sent\naccounts = telegram:night\n\n"
            "[schedule default]\ntimezone = Europe/Kyiv\nhours = mon-sun 00:00-24:00\n"
            "queue_message = You are number {position} in line, about {wait} min.\n"
            "queue_message_uk = {customer_name}, ви {position}-і в черзі, близько {wait} хв.\n"
            "queue_default_wait_s = 120\n",
            TOK_Q, SECRET, api, TOK_NIGHT, SECRET, api, days[tm.tm_wday]);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.tg = db_fake_start();
    assert_non_null(W.redis);
    assert_non_null(W.tg);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    write_config();
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
    /* Tokens and customers' words stay out of the log. */
    static const char *const never[] = {"TokenDoNotLog", "secret-words", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    unlink(W.conf);
    rmdir(W.dir);
    db_fake_stop(W.tg);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

static void post_update(const char *account, long long update_id, long long chat_id,
                        const char *lang, const char *text)
{
    char *body = NULL, path[128];
    assert_true(asprintf(&body,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"Olena\"},"
                         "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"Olena\","
                         "\"language_code\":\"%s\"},\"text\":\"%s\"}}",
                         update_id, update_id, chat_id, chat_id, lang, text) > 0);
    snprintf(path, sizeof path, "/webhooks/telegram/%s", account);
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    free(body);
}

static int api(const char *method, const char *path, const char *body, json_t **out)
{
    return db_test_api(W.d.port, API_TOKEN, method, path, body, out);
}

/* Waits until every event is dispatched, then a little longer: the position message is
 * decided after the event's acknowledgement, so "nothing was sent" needs that margin. */
static void settle(void)
{
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-dispatch", 10000);
    usleep(700 * 1000);
}

/* The text of the n-th (0 = oldest) sendMessage of the fake to path (new string). */
static char *sent_text(const char *path, size_t n)
{
    for (size_t i = 0, seen = 0;; i++) {
        struct db_fake_request req;
        if (db_fake_get(W.tg, i, &req) != 0) return NULL;
        char *text = NULL;
        if (strstr(req.path, path) && seen++ == n) {
            json_t *j = json_loads(req.body, 0, NULL);
            assert_non_null(j);
            text = strdup(json_string_value(json_object_get(j, "text")));
            json_decref(j);
        }
        db_fake_request_clear(&req);
        if (text) return text;
    }
}

/* The chat id of the n-th sendMessage to path. */
static long long sent_chat(const char *path, size_t n)
{
    for (size_t i = 0, seen = 0;; i++) {
        struct db_fake_request req;
        if (db_fake_get(W.tg, i, &req) != 0) return -1;
        long long chat = -1;
        if (strstr(req.path, path) && seen++ == n) {
            json_t *j = json_loads(req.body, 0, NULL);
            assert_non_null(j);
            json_t *c = json_object_get(j, "chat_id");
            chat = json_is_integer(c) ? json_integer_value(c)
                                      : json_is_string(c) ? atoll(json_string_value(c)) : -1;
            json_decref(j);
        }
        db_fake_request_clear(&req);
        if (chat != -1 || seen > n) return chat;
    }
}

static long long outbox_len(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XLEN deskbridge:outbox");
    long long n = r ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* The newest outbox command (new reference). */
static json_t *last_command(void)
{
    redisReply *r =
        redisCommand(db_test_redis_ctx(W.redis), "XREVRANGE deskbridge:outbox + - COUNT 1");
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    redisReply *f = r->element[0]->element[1];
    json_t *cmd = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, "command") == 0)
            cmd = json_loads(f->element[i + 1]->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(cmd);
    return cmd;
}

struct conv_want {
    const char *id, *state;
};

static int conv_is(void *arg)
{
    const struct conv_want *w = arg;
    char path[256];
    snprintf(path, sizeof path, "/v1/conversations/%s", w->id);
    json_t *o = NULL;
    int ok = api("GET", path, NULL, &o) == 200 &&
             json_is_string(json_object_get(o, "state")) &&
             strcmp(json_string_value(json_object_get(o, "state")), w->state) == 0;
    json_decref(o);
    return ok;
}

static void wait_state(const char *conv, const char *state)
{
    struct conv_want w = {conv, state};
    if (!db_test_wait(conv_is, &w, 8000)) fail_msg("%s never became %s", conv, state);
}

/* ---- the test ---- */

static void queued_customers_are_told_their_place_once(void **state)
{
    (void)state;
    /* The first customer: first in line, the configured default of two minutes. */
    post_update("q", 1, 801, "uk", "hello secret-words");
    assert_int_equal(db_fake_wait(W.tg, SEND_Q, 1, 10000), 1);
    wait_state("telegram:q:801", "queued");
    char *text = sent_text(SEND_Q, 0);
    assert_string_equal(text, "Olena, ви 1-і в черзі, близько 2 хв.");
    free(text);
    assert_int_equal(sent_chat(SEND_Q, 0), 801);
    json_t *cmd = last_command();
    assert_true(json_is_true(json_object_get(cmd, "automatic")));
    assert_string_equal(json_string_value(json_object_get(cmd, "rule")), "queue_wait");
    assert_string_equal(json_string_value(json_object_get(cmd, "conversation")),
                        "telegram:q:801");
    json_decref(cmd);

    /* The second: second in line, twice the wait, in English (no text for its language). */
    post_update("q", 2, 802, "en", "hi there");
    assert_int_equal(db_fake_wait(W.tg, SEND_Q, 2, 10000), 2);
    text = sent_text(SEND_Q, 1);
    assert_string_equal(text, "You are number 2 in line, about 4 min.");
    free(text);
    assert_int_equal(sent_chat(SEND_Q, 1), 802);

    /* The first writes again: same wait, same estimate, no new message. */
    long long before = outbox_len();
    post_update("q", 3, 801, "uk", "still there?");
    settle();
    assert_int_equal(outbox_len(), before);
    assert_int_equal(db_fake_count(W.tg, SEND_Q), 2);

    /* Queue waits of late take ten minutes: the first customer's estimate grows from 2 to 10
     * minutes (at least double), so the next message tells the new one, once. */
    long long now_ms = (long long)time(NULL) * 1000;
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                 "ZADD deskbridge:stats:wait %lld 600000|telegram:q:old|%lld",
                                 now_ms, now_ms);
    assert_non_null(r);
    freeReplyObject(r);
    post_update("q", 4, 801, "uk", "hello?");
    assert_int_equal(db_fake_wait(W.tg, SEND_Q, 3, 10000), 3);
    text = sent_text(SEND_Q, 2);
    assert_string_equal(text, "Olena, ви 1-і в черзі, близько 10 хв.");
    free(text);
    before = outbox_len();
    post_update("q", 5, 801, "uk", "and now?");
    settle();
    assert_int_equal(outbox_len(), before);

    /* An agent comes online and takes both; nothing more is sent to either. */
    assert_int_equal(api("PUT", "/v1/agents/alice", "{\"name\":\"Alice\",\"capacity\":5}", NULL),
                     200);
    assert_int_equal(api("POST", "/v1/agents/alice/presence", "{\"presence\":\"online\"}", NULL),
                     200);
    wait_state("telegram:q:801", "assigned");
    wait_state("telegram:q:802", "assigned");
    post_update("q", 6, 801, "uk", "thanks");
    post_update("q", 7, 802, "en", "ok");
    settle();
    assert_int_equal(outbox_len(), before);
    assert_int_equal(db_fake_count(W.tg, SEND_Q), 3);
}

static void outside_hours_nobody_is_told(void **state)
{
    (void)state;
    long long before = outbox_len();
    post_update("night", 11, 901, "en", "anyone?");
    wait_state("telegram:night:901", "assigned"); /* alice is online and has room */
    /* Queued behind a full agent: still nothing outside hours. */
    assert_int_equal(api("PUT", "/v1/agents/alice", "{\"name\":\"Alice\",\"capacity\":0}", NULL),
                     200);
    post_update("night", 12, 902, "en", "hello?");
    wait_state("telegram:night:902", "queued");
    settle();
    assert_int_equal(outbox_len(), before);
    assert_int_equal(db_fake_count(W.tg, "/bot" TOK_NIGHT "/sendMessage"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queued_customers_are_told_their_place_once),
        cmocka_unit_test(outside_hours_nobody_is_told),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
