/* Automatic answers end to end: the deskbridge binary with a configuration file of three
 * Telegram bots, a real redis-server and a fake Bot API.
 *   closed: a schedule open one minute a week, three days from now (closed whenever the
 *           test runs), with an away message per language;
 *   open:   [schedule default], open all week, plus a keyword rule;
 *   greet:  open all week with a greeting.
 * Canned responses go through POST /v1/messages. */
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

#define TOK_CLOSED "7000000011:AAclosedTokenDoNotLog_abcdefghij"
#define TOK_OPEN "7000000012:AAopenTokenDoNotLog_abcdefghijkl"
#define TOK_GREET "7000000013:AAgreetTokenDoNotLog_abcdefghijk"
#define SECRET "hook-secret_123"
#define API_TOKEN "api-token-0123456789abcdef"

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon d;
    char dir[64], conf[128];
    char env[4][512];
    char away_day_uk[32];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN,
                             "Content-Type: application/json", NULL};

static void write_config(void)
{
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    static const char *const uk[] = {"неділя", "понеділок", "вівторок", "середа",
                                     "четвер", "пʼятниця",  "субота"};
    time_t later = time(NULL) + 3 * 86400;
    struct tm tm;
    gmtime_r(&later, &tm);
    snprintf(W.away_day_uk, sizeof W.away_day_uk, "%s", uk[tm.tm_wday]);
    snprintf(W.dir, sizeof W.dir, "/tmp/db-autoreply-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    snprintf(W.conf, sizeof W.conf, "%s/deskbridge.conf", W.dir);
    FILE *f = fopen(W.conf, "w");
    assert_non_null(f);
    const char *api = db_fake_url(W.tg);
    fprintf(f,
            "[telegram closed]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[telegram open]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[telegram greet]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[schedule night]\ntimezone = UTC\nhours = %s 03:00-03:01\n"
            "away_message = We are closed. Back {next_open}.\n"
            "away_message_uk = Зачинено. Повернемося: {next_open}.\n"
            "accounts = telegram:closed\n\n"
            "[schedule greeter]\ntimezone = Europe/Kyiv\nhours = mon-sun 00:00-24:00\n"
            "greeting = Hello {customer_name}, an agent will answer soon.\n"
            "away_message = never sent\naccounts = telegram:greet\n\n"
            "[schedule default]\ntimezone = America/New_York\nhours = mon-sun 00:00-24:00\n"
            "away_message = never sent either\n\n"
            "[keyword price]\nmatch = price, ціна\nanswer = Our prices: https://example.com/p\n"
            "resolve = true\naccounts = telegram:open\n\n"
            "[canned thanks]\ntext = Thanks {customer_name}! {agent_name}, support.\n",
            TOK_CLOSED, SECRET, api, TOK_OPEN, SECRET, api, TOK_GREET, SECRET, api,
            days[tm.tm_wday]);
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

static int post_update(const char *account, long long update_id, long long chat_id,
                       const char *text)
{
    char *body = NULL, path[128];
    assert_true(asprintf(&body,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"Olena\"},"
                         "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"Olena\","
                         "\"language_code\":\"uk\"},\"text\":\"%s\"}}",
                         update_id, update_id, chat_id, chat_id, text) > 0);
    snprintf(path, sizeof path, "/webhooks/telegram/%s", account);
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, body, strlen(body), &r);
    int status = r.status;
    db_test_resp_clear(&r);
    free(body);
    return status;
}

/* Requests to the fake for one bot's sendMessage. */
static size_t sends(const char *token)
{
    char path[128];
    snprintf(path, sizeof path, "/bot%s/sendMessage", token);
    return db_fake_count(W.tg, path);
}

/* The text of the n-th (0 = oldest) sendMessage of token (new string). */
static char *sent_text(const char *token, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "/bot%s/sendMessage", token);
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

/* The newest outbox command (new reference). */
static json_t *last_command(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XREVRANGE deskbridge:outbox + - COUNT 1");
    assert_non_null(r);
    assert_int_equal(r->elements, 1);
    redisReply *f = r->element[0]->element[1];
    json_t *cmd = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, "command") == 0) cmd = json_loads(f->element[i + 1]->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(cmd);
    return cmd;
}

static long long outbox_len(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XLEN deskbridge:outbox");
    long long n = r ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* ---- tests ---- */

static void closed_schedule_answers_once_per_closed_period(void **state)
{
    (void)state;
    assert_int_equal(post_update("closed", 1001, 501, "hello secret-words"), 200);
    assert_int_equal(db_fake_wait(W.tg, "/bot" TOK_CLOSED "/sendMessage", 1, 10000), 1);
    char *text = sent_text(TOK_CLOSED, 0);
    char want[160];
    snprintf(want, sizeof want, "Зачинено. Повернемося: %s 03:00.", W.away_day_uk);
    assert_string_equal(text, want);
    free(text);
    json_t *cmd = last_command();
    assert_true(json_is_true(json_object_get(cmd, "automatic")));
    assert_string_equal(json_string_value(json_object_get(cmd, "rule")), "away");
    json_decref(cmd);

    /* A second message in the same closed period: read and acknowledged, no answer. */
    long long before = outbox_len();
    assert_int_equal(post_update("closed", 1002, 501, "anyone there?"), 200);
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    assert_int_equal(outbox_len(), before);
    usleep(300 * 1000);
    assert_int_equal(sends(TOK_CLOSED), 1);

    /* Another conversation of the same bot gets its own. */
    assert_int_equal(post_update("closed", 1003, 502, "hi"), 200);
    assert_int_equal(db_fake_wait(W.tg, "/bot" TOK_CLOSED "/sendMessage", 2, 10000), 2);
}

static void open_schedule_gets_no_away_message(void **state)
{
    (void)state;
    long long before = outbox_len();
    assert_int_equal(post_update("open", 2001, 601, "just saying hi"), 200);
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    assert_int_equal(outbox_len(), before);
    assert_int_equal(sends(TOK_OPEN), 0);
}

static void greeting_once_per_conversation(void **state)
{
    (void)state;
    assert_int_equal(post_update("greet", 3001, 701, "first"), 200);
    assert_int_equal(db_fake_wait(W.tg, "/bot" TOK_GREET "/sendMessage", 1, 10000), 1);
    char *text = sent_text(TOK_GREET, 0);
    assert_string_equal(text, "Hello Olena, an agent will answer soon.");
    free(text);
    assert_int_equal(post_update("greet", 3002, 701, "second"), 200);
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    usleep(300 * 1000);
    assert_int_equal(sends(TOK_GREET), 1);
}

struct msg_wait {
    const char *id;
    json_t *last;
};

static int message_sent(void *arg)
{
    struct msg_wait *w = arg;
    char path[128];
    snprintf(path, sizeof path, "/v1/messages/%s", w->id);
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", path, auth, NULL, 0, &r);
    json_decref(w->last);
    w->last = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    db_test_resp_clear(&r);
    const char *st = w->last ? json_string_value(json_object_get(w->last, "status")) : NULL;
    return st && strcmp(st, "sent") == 0;
}

static int conversation_has_automatic_answer(void *arg)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/conversations/%s", (const char *)arg);
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", path, auth, NULL, 0, &r);
    json_t *c = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    db_test_resp_clear(&r);
    int found = 0;
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(c, "messages"), i, m) {
        const char *rule = json_string_value(json_object_get(m, "rule"));
        found |= json_is_true(json_object_get(m, "automatic")) && rule &&
                 strcmp(rule, "keyword:price") == 0;
    }
    const char *st = json_string_value(json_object_get(c, "state"));
    int resolved = st && strcmp(st, "open") == 0 &&
                   json_string_value(json_object_get(c, "resolved_by")) &&
                   strcmp(json_string_value(json_object_get(c, "resolved_by")), "keyword") == 0;
    json_decref(c);
    return found && resolved;
}

static void keyword_answer_is_sent_and_marked_automatic(void **state)
{
    (void)state;
    assert_int_equal(post_update("open", 2002, 602, "Яка ЦІНА доставки?"), 200);
    assert_int_equal(db_fake_wait(W.tg, "/bot" TOK_OPEN "/sendMessage", 1, 10000), 1);
    char *text = sent_text(TOK_OPEN, 0);
    assert_string_equal(text, "Our prices: https://example.com/p");
    free(text);
    json_t *cmd = last_command();
    assert_string_equal(json_string_value(json_object_get(cmd, "rule")), "keyword:price");
    assert_true(json_is_true(json_object_get(cmd, "resolve")));
    struct msg_wait w = {json_string_value(json_object_get(cmd, "id")), NULL};
    assert_true(db_test_wait(message_sent, &w, 10000));
    assert_true(json_is_true(json_object_get(w.last, "automatic")));
    assert_string_equal(json_string_value(json_object_get(w.last, "rule")), "keyword:price");
    assert_string_equal(json_string_value(json_object_get(w.last, "conversation")),
                        "telegram:open:602");
    json_decref(w.last);
    json_decref(cmd);

    /* The answer is in the conversation, marked automatic; the rule resolves the question,
     * so no agent is wanted: the conversation is not queued. */
    assert_true(db_test_wait(conversation_has_automatic_answer, "telegram%3Aopen%3A602", 10000));

    /* A word that only contains the keyword is not a match. */
    long long before = outbox_len();
    assert_int_equal(post_update("open", 2003, 602, "priceless"), 200);
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    assert_int_equal(outbox_len(), before);
}

static void canned_response_through_the_api(void **state)
{
    (void)state;
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/v1/canned", auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *list = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    json_t *item = json_array_get(json_object_get(list, "canned"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "name")), "thanks");
    json_decref(list);

    const char *body = "{\"conversation\":\"telegram:open:603\",\"canned\":\"thanks\","
                       "\"customer_name\":\"Olena\",\"agent_name\":\"Ivan\"}";
    size_t before = sends(TOK_OPEN);
    db_test_http(W.d.port, "POST", "/v1/messages", auth, body, strlen(body), &r);
    assert_int_equal(r.status, 202);
    db_test_resp_clear(&r);
    assert_int_equal(db_fake_wait(W.tg, "/bot" TOK_OPEN "/sendMessage", before + 1, 10000),
                     before + 1);
    char *text = sent_text(TOK_OPEN, before);
    assert_string_equal(text, "Thanks Olena! Ivan, support.");
    free(text);

    body = "{\"conversation\":\"telegram:open:603\",\"canned\":\"nope\"}";
    db_test_http(W.d.port, "POST", "/v1/messages", auth, body, strlen(body), &r);
    assert_int_equal(r.status, 400);
    json_t *err = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(err, "error"), "field")),
                        "canned");
    json_decref(err);
}

/* A week later (the clock hook), the schedule has opened and closed again: the same
 * conversation gets a new away message, once. */
static void next_closed_period_answers_again(void **state)
{
    (void)state;
    int st = db_test_daemon_stop(&W.d, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!getenv("KEEP_LOG")) unlink(W.d.log_path);
    snprintf(W.env[2], sizeof W.env[2], "DESKBRIDGE_CLOCK_OFFSET_S=%d", 7 * 86400);
    const char *env[] = {W.env[0], W.env[1], W.env[2], NULL};
    const char *args[] = {"--config", W.conf, NULL};
    db_test_daemon_start(&W.d, env, args, 0);

    size_t before = sends(TOK_CLOSED);
    assert_int_equal(post_update("closed", 1004, 501, "back again"), 200);
    assert_int_equal(db_fake_wait(W.tg, "/bot" TOK_CLOSED "/sendMessage", before + 1, 10000),
                     before + 1);
    char *text = sent_text(TOK_CLOSED, before);
    char want[160];
    snprintf(want, sizeof want, "Зачинено. Повернемося: %s 03:00.", W.away_day_uk);
    assert_string_equal(text, want);
    free(text);
    assert_int_equal(post_update("closed", 1005, 501, "and again"), 200);
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    usleep(300 * 1000);
    assert_int_equal(sends(TOK_CLOSED), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closed_schedule_answers_once_per_closed_period),
        cmocka_unit_test(open_schedule_gets_no_away_message),
        cmocka_unit_test(greeting_once_per_conversation),
        cmocka_unit_test(keyword_answer_is_sent_and_marked_automatic),
        cmocka_unit_test(canned_response_through_the_api),
        cmocka_unit_test(next_closed_period_answers_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
