/* End to end with Telegram through the real parts: the deskbridge binary, a real
 * redis-server, and a fake Bot API on loopback.  Webhook mode, the agent API and the sender
 * in one daemon; long polling in another. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon d;
    char env[8][512];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN,
                             "Content-Type: application/json", NULL};

static void start_daemon(int webhook_mode)
{
    snprintf(W.env[0], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[1], sizeof W.env[1], "TELEGRAM_BOT_TOKEN=%s", TOKEN);
    snprintf(W.env[2], sizeof W.env[2], "TELEGRAM_API_BASE=%s", db_fake_url(W.tg));
    snprintf(W.env[3], sizeof W.env[3], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[4], sizeof W.env[4], "TELEGRAM_WEBHOOK_SECRET=%s", SECRET);
    const char *env[] = {W.env[0], W.env[1], W.env[2], W.env[3],
                         webhook_mode ? W.env[4] : NULL, NULL};
    db_test_daemon_start(&W.d, env, NULL, 0);
}

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.tg = db_fake_start();
    assert_non_null(W.redis);
    assert_non_null(W.tg);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    start_daemon(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Secrets and message texts never reach the log at the default level. */
    static const char *const never[] = {"AAtesttokenDoNotLog", SECRET,
                                        "secret-words-of-a-customer", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    db_fake_stop(W.tg);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

static long long xlen(const char *stream)
{
    return db_test_xlen(db_test_redis_ctx(W.redis), stream);
}

static json_t *last_entry(const char *stream, const char *field)
{
    return db_test_last_entry(db_test_redis_ctx(W.redis), stream, field);
}

static int post_update(const char *body, const char *secret)
{
    char h[256];
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", secret ? secret : "");
    const char *headers[] = {"Content-Type: application/json", secret ? h : NULL, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/telegram/7000000001", headers, body, strlen(body),
                 &r);
    int status = r.status;
    if (status >= 400) {
        /* every error is a JSON body */
        json_t *j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_non_null(json_object_get(j, "error"));
        json_decref(j);
    }
    db_test_resp_clear(&r);
    return status;
}

static char *update(long long update_id, long long chat_id, const char *text)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"Olena\"},"
                         "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"Olena\","
                         "\"language_code\":\"uk\"},\"text\":\"%s\"}}",
                         update_id, update_id, chat_id, chat_id, text) > 0);
    return b;
}

/* ---- inbound ---- */

static void webhook_message_lands_once_in_the_stream(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *body = update(900001, 5012345678LL, "Привіт 👋🏽 secret-words-of-a-customer");
    assert_int_equal(post_update(body, SECRET), 200);
    assert_int_equal(xlen("events"), before + 1);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "message");
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")),
                        "telegram:7000000001:5012345678");
    assert_string_equal(json_string_value(json_object_get(ev, "text")),
                        "Привіт 👋🏽 secret-words-of-a-customer");
    assert_int_equal(json_integer_value(json_object_get(ev, "timestamp")), 1795365000);
    assert_true(json_is_string(json_object_get(ev, "id")));
    assert_true(json_integer_value(json_object_get(ev, "received_at")) > 1700000000000LL);
    json_decref(ev);

    /* Telegram redelivers after a timeout: answered 200, not written again. */
    assert_int_equal(post_update(body, SECRET), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(body);
}

static void webhook_secret_is_required(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *body = update(900002, 42, "hello");
    assert_int_equal(post_update(body, NULL), 401);
    assert_int_equal(post_update(body, "wrong-secret"), 401);
    assert_int_equal(post_update(body, SECRET "x"), 401);
    assert_int_equal(xlen("events"), before);
    free(body);
}

static void hostile_bodies_get_4xx_and_nothing_is_written(void **state)
{
    (void)state;
    long long before = xlen("events");
    assert_int_equal(post_update("{\"update_id\":5,\"message\":{\"message_id\":1,", SECRET), 400);
    assert_int_equal(post_update("not json at all", SECRET), 400);
    assert_int_equal(post_update("[1,2,3]", SECRET), 400);
    assert_int_equal(post_update("{\"update_id\":\"x\",\"message\":{}}", SECRET), 400);
    assert_int_equal(post_update("{\"message\":{\"message_id\":1,\"chat\":{\"id\":1},\"date\":1}}",
                                 SECRET), 400);
    assert_int_equal(post_update("{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,"
                                 "\"chat\":{\"type\":\"private\"},\"text\":\"x\"}}", SECRET), 400);

    size_t deep = 100000;
    char *nest = malloc(2 * deep + 1);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    nest[2 * deep] = '\0';
    assert_int_equal(post_update(nest, SECRET), 400);
    free(nest);

    size_t big = 5 << 20;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    char h[256];
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", SECRET);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/telegram/7000000001", headers, huge, big, &r);
    assert_int_equal(r.status, 413);
    db_test_resp_clear(&r);
    free(huge);

    assert_int_equal(xlen("events"), before);
    assert_true(db_test_daemon_alive(&W.d));
}

static void unknown_update_kind_is_accepted_without_writing(void **state)
{
    (void)state;
    long long before = xlen("events");
    assert_int_equal(post_update("{\"update_id\":900003,\"poll\":{\"id\":\"1\",\"question\":\"?\"}}",
                                 SECRET), 200);
    assert_int_equal(xlen("events"), before);
}

static void unknown_account_is_404(void **state)
{
    (void)state;
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/telegram/999", NULL, "{}", 2, &r);
    assert_int_equal(r.status, 404);
    db_test_resp_clear(&r);
}

static void redis_down_answers_503_and_recovers(void **state)
{
    (void)state;
    char *body = update(900004, 77, "while redis is away");
    long long before = xlen("events");
    db_test_redis_kill(W.redis, SIGSTOP); /* a stalled Redis: the worst case for timeouts */
    long long t0 = db_test_now_ms();
    char h[256];
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", SECRET);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/telegram/7000000001", headers, body, strlen(body), &r);
    long long took = db_test_now_ms() - t0;
    assert_int_equal(r.status, 503);
    char ra[32];
    assert_non_null(db_test_resp_header(&r, "Retry-After", ra, sizeof ra));
    db_test_resp_clear(&r);
    printf("# 503 while Redis stalled answered in %lld ms\n", took);
    assert_true(took < 5000);

    db_test_http(W.d.port, "GET", "/readyz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 503);
    db_test_resp_clear(&r);

    db_test_redis_kill(W.redis, SIGCONT);
    /* The script sent before the timeout may still run once Redis wakes up: the platform's
     * retry then finds it written.  Either way the update is in the stream exactly once. */
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        status = post_update(body, SECRET);
        if (status != 200) usleep(50000);
    }
    assert_int_equal(status, 200);
    assert_int_equal(xlen("events"), before + 1);
    assert_true(db_test_wait_ready(W.d.port, 5000));
    free(body);
}

/* ---- outbound ---- */

static char *post_message(const char *json, int *status)
{
    return db_test_post_json(W.d.port, API_TOKEN, "/v1/messages", json, status);
}

static json_t *wait_status(const char *id, const char *want, int timeout_ms)
{
    return db_test_wait_message(W.d.port, API_TOKEN, id, want, timeout_ms);
}

static char *queued_id(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "queued");
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return id;
}

/* Posts cmd to /v1/messages and waits until the message is sent. */
static void send_until_sent(const json_t *cmd)
{
    char *json = json_dumps(cmd, 0);
    int status;
    char *body = post_message(json, &status);
    assert_int_equal(status, 202);
    char *id = queued_id(body);
    json_decref(wait_status(id, "sent", 10000));
    free(id);
    free(body);
    free(json);
}

static void reply_reaches_the_customer_and_is_tracked(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    int status;
    char *body = post_message("{\"conversation\":\"telegram:7000000001:5012345678\","
                              "\"text\":\"Добрий день! 🙂\",\"reply_to\":\"900001\"}", &status);
    assert_int_equal(status, 202);
    char *id = queued_id(body);
    free(body);
    json_t *m = wait_status(id, "sent", 10000);
    const char *ext = json_string_value(json_object_get(m, "external_message_id"));
    assert_non_null(ext);
    json_t *hist = json_object_get(m, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 0), "status")),
                        "queued");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 1), "status")),
                        "sent");

    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1);
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.tg, 0, &req), 0);
    assert_non_null(strstr(req.path, "/bot" TOKEN "/sendMessage"));
    json_t *sent = json_loads(req.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(sent, "chat_id")), 5012345678LL);
    assert_string_equal(json_string_value(json_object_get(sent, "text")), "Добрий день! 🙂");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(sent, "reply_parameters"),
                                                        "message_id")), 900001);
    json_decref(sent);
    db_fake_request_clear(&req);

    /* The status stream tells helpdesks the same. */
    json_t *st = last_entry("status", "status");
    assert_string_equal(json_string_value(json_object_get(st, "id")), id);
    assert_string_equal(json_string_value(json_object_get(st, "status")), "sent");
    assert_string_equal(json_string_value(json_object_get(st, "external_message_id")), ext);
    json_decref(st);

    /* ... and the message is found by the platform's id. */
    char path[256];
    snprintf(path, sizeof path, "/v1/messages/by-external/telegram/7000000001/%s", ext);
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", path, auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, id));
    db_test_resp_clear(&r);
    json_decref(m);
    free(id);
}

#define BC "Xq7RbT3nLEm0AQAA4kqVnHCx9aE"
#define BC_CONV "telegram:7000000001:5012345699:biz:" BC

static void business_connection_at(long long update_id, int enabled, long long date)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"update_id\":%lld,\"business_connection\":{\"id\":\"" BC "\","
                         "\"user\":{\"id\":555000111,\"is_bot\":false,\"first_name\":\"Olga\"},"
                         "\"user_chat_id\":555000111,\"date\":%lld,"
                         "\"rights\":{\"can_reply\":true},\"is_enabled\":%s}}",
                         update_id, date, enabled ? "true" : "false") > 0);
    assert_int_equal(post_update(b, SECRET), 200);
    free(b);
}

static void business_connection(long long update_id, int enabled)
{
    business_connection_at(update_id, enabled, 1795360000LL);
}

/* Telegram Business: a customer writing to the business account is a conversation of its
 * own that names the connection; replies (text and media) go out with its id; once the
 * owner disables the connection a reply fails at once with a code saying so. */
static void business_replies_go_through_the_connection(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    business_connection(900100, 1);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "membership")), "joined");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(ev, "business_connection"), "id")), BC);
    json_decref(ev);
    redisReply *rr = redisCommand(db_test_redis_ctx(W.redis),
                                  "HGET deskbridge:grant:telegram:7000000001:" BC " enabled");
    assert_non_null(rr);
    assert_string_equal(rr->str, "1");
    freeReplyObject(rr);

    const char *msg = "{\"update_id\":900101,\"business_message\":{\"business_connection_id\":\"" BC
                      "\",\"message_id\":31,\"date\":1795365100,\"chat\":{\"id\":5012345699,"
                      "\"type\":\"private\",\"first_name\":\"Ivan\"},\"from\":{\"id\":5012345699,"
                      "\"is_bot\":false,\"first_name\":\"Ivan\"},\"text\":\"open on Sunday?\"}}";
    assert_int_equal(post_update(msg, SECRET), 200);
    ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")), BC_CONV);
    assert_string_equal(json_string_value(json_object_get(ev, "external_chat_id")), "5012345699");
    assert_string_equal(json_string_value(json_object_get(ev, "business_connection_id")), BC);
    json_decref(ev);

    json_t *cmd = json_pack("{s:s, s:s}", "conversation", BC_CONV, "text", "yes, 10-16");
    send_until_sent(cmd);
    json_decref(cmd);
    cmd = json_pack("{s:s, s:{s:s, s:s}}", "conversation", BC_CONV, "media", "type", "image",
                    "id", "AgACAgIAAxkBAAIB");
    send_until_sent(cmd);
    json_decref(cmd);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1);
    assert_int_equal(db_fake_count(W.tg, "/sendPhoto"), 1);
    for (int i = 0; i < 2; i++) {
        struct db_fake_request req;
        assert_int_equal(db_fake_get(W.tg, i, &req), 0);
        json_t *sent = json_loads(req.body, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(sent, "chat_id")), 5012345699LL);
        assert_string_equal(json_string_value(json_object_get(sent, "business_connection_id")),
                            BC);
        json_decref(sent);
        db_fake_request_clear(&req);
    }

    /* The owner disables the bot: the next reply fails without reaching Telegram. */
    db_fake_reset(W.tg);
    business_connection(900102, 0);
    int status;
    char *body = post_message("{\"conversation\":\"" BC_CONV "\",\"text\":\"still there?\"}",
                              &status);
    assert_int_equal(status, 202);
    char *id = queued_id(body);
    json_t *m = wait_status(id, "failed", 10000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "error"), "code")),
                        "business_connection_disabled");
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 0);
    json_decref(m);
    free(id);
    free(body);

    /* Enabled again: replies flow again.  A late update about an older establishment of the
     * connection (an earlier date) does not undo that. */
    business_connection(900103, 1);
    business_connection_at(900104, 0, 1795350000LL);
    cmd = json_pack("{s:s, s:s}", "conversation", BC_CONV, "text", "back");
    send_until_sent(cmd);
    json_decref(cmd);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1);
}

/* Forum topics: a topic is its own conversation "<chat>:<thread>" and a reply lands in it;
 * the general topic keeps the plain chat id and its replies carry no thread id. */
static void forum_topic_is_its_own_conversation(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    const char *topic = "{\"update_id\":900110,\"message\":{\"message_id\":512,"
                        "\"message_thread_id\":77,\"is_topic_message\":true,\"date\":1795365200,"
                        "\"chat\":{\"id\":-1001987654321,\"type\":\"supergroup\",\"is_forum\":true,"
                        "\"title\":\"Acme\"},\"from\":{\"id\":424242,\"is_bot\":false,"
                        "\"first_name\":\"Maria\"},\"text\":\"invoice question\"}}";
    const char *general = "{\"update_id\":900111,\"message\":{\"message_id\":513,"
                          "\"date\":1795365201,\"chat\":{\"id\":-1001987654321,\"type\":"
                          "\"supergroup\",\"is_forum\":true,\"title\":\"Acme\"},\"from\":{\"id\":"
                          "424242,\"is_bot\":false,\"first_name\":\"Maria\"},\"text\":\"hi all\"}}";
    assert_int_equal(post_update(topic, SECRET), 200);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")),
                        "telegram:7000000001:-1001987654321:77");
    assert_int_equal(json_integer_value(json_object_get(ev, "message_thread_id")), 77);
    json_decref(ev);
    assert_int_equal(post_update(general, SECRET), 200);
    ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")),
                        "telegram:7000000001:-1001987654321");
    assert_null(json_object_get(ev, "message_thread_id"));
    json_decref(ev);

    json_t *cmd = json_pack("{s:s, s:s}", "conversation", "telegram:7000000001:-1001987654321:77",
                            "text", "sent you the invoice");
    send_until_sent(cmd);
    json_decref(cmd);
    cmd = json_pack("{s:s, s:s}", "conversation", "telegram:7000000001:-1001987654321", "text",
                    "welcome");
    send_until_sent(cmd);
    json_decref(cmd);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 2);
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.tg, 0, &req), 0);
    json_t *sent = json_loads(req.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(sent, "chat_id")), -1001987654321LL);
    assert_int_equal(json_integer_value(json_object_get(sent, "message_thread_id")), 77);
    json_decref(sent);
    db_fake_request_clear(&req);
    assert_int_equal(db_fake_get(W.tg, 1, &req), 0);
    sent = json_loads(req.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(sent, "chat_id")), -1001987654321LL);
    assert_null(json_object_get(sent, "message_thread_id"));
    json_decref(sent);
    db_fake_request_clear(&req);

    /* A thread id Telegram cannot have is refused by the API before anything is queued. */
    int status;
    char *body = post_message("{\"conversation\":\"telegram:7000000001:-1001987654321:0\","
                              "\"text\":\"x\"}", &status);
    assert_int_equal(status, 400);
    free(body);
}

static void repeated_client_id_sends_once(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    const char *msg = "{\"conversation\":\"telegram:7000000001:42\",\"text\":\"once\","
                      "\"client_id\":\"ticket-17-reply-3\"}";
    int s1, s2;
    char *b1 = post_message(msg, &s1), *b2 = post_message(msg, &s2);
    assert_int_equal(s1, 202);
    assert_int_equal(s2, 202);
    json_t *j1 = json_loads(b1, 0, NULL), *j2 = json_loads(b2, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j1, "id")),
                        json_string_value(json_object_get(j2, "id")));
    json_decref(wait_status(json_string_value(json_object_get(j1, "id")), "sent", 10000));
    usleep(300000);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1);
    json_decref(j1);
    json_decref(j2);
    free(b1);
    free(b2);
}

static void rate_limit_is_honoured_and_retried(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    db_fake_rule(W.tg, "POST", "/sendMessage", 1, 429,
                 "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after 1\","
                 "\"parameters\":{\"retry_after\":1}}", 0, 0);
    db_fake_rule(W.tg, "POST", "/sendMessage", 1, 500,
                 "{\"ok\":false,\"error_code\":500,\"description\":\"Internal Server Error\"}", 0, 0);
    int status;
    long long t0 = db_test_now_ms();
    char *body = post_message("{\"conversation\":\"telegram:7000000001:43\",\"text\":\"later\"}",
                              &status);
    assert_int_equal(status, 202);
    char *id = queued_id(body);
    json_t *m = wait_status(id, "sent", 15000);
    long long took = db_test_now_ms() - t0;
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 3);
    printf("# sent after 429 (retry_after 1) and 500 in %lld ms\n", took);
    assert_true(took >= 1000); /* retry_after honoured */
    assert_int_equal(json_integer_value(json_object_get(m, "attempt")), 3);
    json_decref(m);
    free(body);
    free(id);
}

static void blocked_user_fails_permanently(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    db_fake_rule(W.tg, "POST", "/sendMessage", -1, 403,
                 "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was blocked by the user\"}",
                 0, 0);
    int status;
    char *body = post_message("{\"conversation\":\"telegram:7000000001:44\",\"text\":\"hi\"}", &status);
    char *id = queued_id(body);
    json_t *m = wait_status(id, "failed", 10000);
    json_t *err = json_object_get(m, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "403");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "blocked"));
    usleep(300000);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1); /* never retried */
    json_decref(m);
    free(body);
    free(id);
    db_fake_reset(W.tg);
}

static void long_text_is_split_on_character_boundaries(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    /* 5000 characters, each two bytes in UTF-8: the first part must end after exactly 4096
     * characters at the latest, never inside a character. */
    size_t n = 5000;
    char *text = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) memcpy(text + 2 * i, "ж", 2);
    text[2 * n] = '\0';
    json_t *cmd = json_pack("{s:s, s:s}", "conversation", "telegram:7000000001:45", "text", text);
    send_until_sent(cmd);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 2);
    size_t total = 0;
    for (size_t i = 0; i < 2; i++) {
        struct db_fake_request req;
        assert_int_equal(db_fake_get(W.tg, i, &req), 0);
        json_t *sent = json_loads(req.body, 0, NULL);
        assert_non_null(sent); /* valid JSON means valid UTF-8: no cut sequence */
        size_t bytes = json_string_length(json_object_get(sent, "text"));
        assert_true(bytes % 2 == 0 && bytes / 2 <= 4096);
        total += bytes;
        json_decref(sent);
        db_fake_request_clear(&req);
    }
    assert_int_equal(total, 2 * n);
    free(text);
    json_decref(cmd);
}

/* A caption may hold 1024 characters: the photo goes with the first of them, the rest follows
 * as text, and together the parts are the agent's words, unchanged. */
static void long_caption_goes_with_the_media_and_the_rest_follows(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    char text[600 * 5 + 1] = "";
    for (int i = 0; i < 600; i++) strcat(text, "word ");
    json_t *cmd = json_pack("{s:s, s:s, s:{s:s, s:s}}", "conversation", "telegram:7000000001:46",
                            "text", text, "media", "url", "https://example.com/a.png", "type",
                            "image");
    send_until_sent(cmd);
    assert_int_equal(db_fake_count(W.tg, "/sendPhoto"), 1);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1);
    struct db_fake_request photo, rest;
    assert_int_equal(db_fake_get(W.tg, 0, &photo), 0);
    assert_int_equal(db_fake_get(W.tg, 1, &rest), 0);
    assert_non_null(strstr(photo.path, "/sendPhoto")); /* the media first */
    json_t *p = json_loads(photo.body, 0, NULL), *r = json_loads(rest.body, 0, NULL);
    assert_non_null(p);
    assert_non_null(r);
    const char *caption = json_string_value(json_object_get(p, "caption"));
    const char *more = json_string_value(json_object_get(r, "text"));
    assert_non_null(caption);
    assert_non_null(more);
    assert_true(strlen(caption) <= 1024 && strlen(caption) > 900);
    assert_null(json_object_get(r, "photo"));
    char joined[sizeof text];
    snprintf(joined, sizeof joined, "%s%s", caption, more);
    assert_string_equal(joined, text);
    json_decref(p);
    json_decref(r);
    db_fake_request_clear(&photo);
    db_fake_request_clear(&rest);
    json_decref(cmd);
}

static void outbox_entries_from_helpdesks_are_sent(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XADD deskbridge:outbox * command %s",
                                 "{\"conversation\":\"telegram:7000000001:46\",\"text\":\"via redis\","
                                 "\"id\":\"helpdesk-msg-1\"}");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    json_decref(wait_status("helpdesk-msg-1", "sent", 10000));
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), 1);

    /* Garbage goes to the dead-letter stream, not into a retry loop. */
    long long dead = xlen("dead");
    r = redisCommand(db_test_redis_ctx(W.redis), "XADD deskbridge:outbox * command %s", "{not json");
    freeReplyObject(r);
    for (int i = 0; i < 100 && xlen("dead") == dead; i++) usleep(50000);
    assert_int_equal(xlen("dead"), dead + 1);
}

static void bad_api_input_is_400_naming_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"text\":\"no conversation\"}", "conversation"},
        {"{\"conversation\":\"telegram:nope:1\",\"text\":\"x\"}", "conversation"},
        /* A chat part that cannot be a Telegram chat id never reaches the platform. */
        {"{\"conversation\":\"telegram:7000000001:42\\r\\nX: y\",\"text\":\"x\"}", "conversation"},
        {"{\"conversation\":\"telegram:7000000001:42/../getMe\",\"text\":\"x\"}", "conversation"},
        {"{\"conversation\":\"telegram:7000000001:4 2\",\"text\":\"x\"}", "conversation"},
        {"{\"conversation\":\"telegram:7000000001:1\"}", "text"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"text\":5}", "text"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"media\":{\"url\":\"https://x/y.png\","
         "\"type\":\"hologram\"}}", "media.type"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"media\":{\"type\":\"image\"}}", "media"},
        {"[1]", "body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        char *body = post_message(cases[i].body, &status);
        assert_int_equal(status, 400);
        json_t *j = json_loads(body, 0, NULL);
        const char *field = json_string_value(json_object_get(json_object_get(j, "error"), "field"));
        if (!field || strcmp(field, cases[i].field) != 0)
            fail_msg("case %zu: want field %s, got %s", i, cases[i].field, body);
        json_decref(j);
        free(body);
    }
    int status;
    char *body = post_message("{\"conversation\":", &status);
    assert_int_equal(status, 400);
    free(body);
    /* The shapes a Telegram chat id does have are taken, and sent: waited for here, so the
     * sends cannot reach the fake after the next test has reset it. */
    static const char *const fine[] = {"-1001234567890", "@some_channel"};
    size_t sent_before = db_fake_count(W.tg, "/sendMessage");
    for (size_t i = 0; i < 2; i++) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "{\"conversation\":\"telegram:7000000001:%s\",\"text\":\"x\"}",
                 fine[i]);
        body = post_message(cmd, &status);
        if (status != 202) fail_msg("%s: want 202, got %d %s", fine[i], status, body);
        free(body);
    }
    assert_true(db_fake_wait(W.tg, "/sendMessage", sent_before + 2, 10000) >= sent_before + 2);

    struct db_test_resp r;
    const char *noauth[] = {"Content-Type: application/json", NULL};
    db_test_http(W.d.port, "POST", "/v1/messages", noauth, "{}", 2, &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
    const char *wrong[] = {"Authorization: Bearer api-token-0123456789abcdeX", NULL};
    db_test_http(W.d.port, "GET", "/v1/messages/x", wrong, NULL, 0, &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
    db_test_http(W.d.port, "GET", "/v1/messages/does-not-exist", auth, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    db_test_resp_clear(&r);
}

/* ---- long polling ---- */

static void long_polling_stores_updates_and_advances_the_offset_after_the_write(void **state)
{
    (void)state;
    db_test_daemon_stop(&W.d, SIGTERM);
    unlink(W.d.log_path);
    db_fake_reset(W.tg);
    db_fake_rule(W.tg, NULL, "/getUpdates", 1, 200,
                 "{\"ok\":true,\"result\":[{\"update_id\":700,\"message\":{\"message_id\":1,"
                 "\"date\":1795365100,\"chat\":{\"id\":31337,\"type\":\"private\"},"
                 "\"from\":{\"id\":31337,\"is_bot\":false,\"first_name\":\"P\"},\"text\":\"polled\"}},"
                 "{\"update_id\":701,\"edited_message\":{\"message_id\":1,\"date\":1795365100,"
                 "\"edit_date\":1795365160,\"chat\":{\"id\":31337,\"type\":\"private\"},"
                 "\"from\":{\"id\":31337,\"is_bot\":false,\"first_name\":\"P\"},\"text\":\"polled!\"}}]}",
                 0, 0);
    db_fake_rule(W.tg, NULL, "/getUpdates", -1, 200, "{\"ok\":true,\"result\":[]}", 300, 0);
    long long before = xlen("events");
    start_daemon(0);
    assert_true(db_fake_wait(W.tg, "/getUpdates", 3, 10000) >= 3);
    assert_int_equal(xlen("events"), before + 2);
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                 "GET deskbridge:cursor:telegram:7000000001");
    assert_string_equal(r->str, "702");
    freeReplyObject(r);
    /* The poll after the write confirms the batch by asking from offset 702. */
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.tg, 1, &req), 0);
    int asks_702 = (req.body && strstr(req.body, "\"offset\":702")) || strstr(req.path, "offset=702");
    if (!asks_702) fail_msg("second poll does not confirm with offset 702: %s %s", req.path,
                            req.body ? req.body : "");
    db_fake_request_clear(&req);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "edit");
    json_decref(ev);
}

/* ---- operator commands ---- */

static int run_cli(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env -i PATH=/usr/bin:/bin TELEGRAM_BOT_TOKEN='%s' TELEGRAM_WEBHOOK_SECRET='%s' "
             "TELEGRAM_API_BASE='%s' '%s' %s >/dev/null 2>&1",
             TOKEN, SECRET, db_fake_url(W.tg), DB_DAEMON_PATH, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void webhook_set_and_delete_register_with_the_secret(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    db_fake_rule(W.tg, NULL, "/setWebhook", 1, 200,
                 "{\"ok\":true,\"result\":true,\"description\":\"Webhook was set\"}", 0, 0);
    db_fake_rule(W.tg, NULL, "/deleteWebhook", 1, 200,
                 "{\"ok\":true,\"result\":true,\"description\":\"Webhook was deleted\"}", 0, 0);
    db_fake_rule(W.tg, NULL, "/setWebhook", 1, 400,
                 "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: bad webhook\"}",
                 0, 0);
    assert_int_equal(run_cli("webhook set telegram --url https://gw.example.com"), 0);
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.tg, 0, &req), 0);
    assert_non_null(strstr(req.path, "/setWebhook"));
    json_t *body = json_loads(req.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "url")),
                        "https://gw.example.com/webhooks/telegram/7000000001");
    assert_string_equal(json_string_value(json_object_get(body, "secret_token")), SECRET);
    json_decref(body);
    db_fake_request_clear(&req);
    assert_int_equal(run_cli("webhook delete telegram"), 0);
    assert_int_equal(db_fake_count(W.tg, "/deleteWebhook"), 1);
    /* A refusal is reported and the exit status says so. */
    assert_int_not_equal(run_cli("webhook set telegram --url https://gw.example.com"), 0);
    assert_int_not_equal(run_cli("webhook set telegram"), 0); /* --url is required */
    db_fake_reset(W.tg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhook_message_lands_once_in_the_stream),
        cmocka_unit_test(webhook_secret_is_required),
        cmocka_unit_test(hostile_bodies_get_4xx_and_nothing_is_written),
        cmocka_unit_test(unknown_update_kind_is_accepted_without_writing),
        cmocka_unit_test(unknown_account_is_404),
        cmocka_unit_test(reply_reaches_the_customer_and_is_tracked),
        cmocka_unit_test(business_replies_go_through_the_connection),
        cmocka_unit_test(forum_topic_is_its_own_conversation),
        cmocka_unit_test(repeated_client_id_sends_once),
        cmocka_unit_test(rate_limit_is_honoured_and_retried),
        cmocka_unit_test(blocked_user_fails_permanently),
        cmocka_unit_test(long_text_is_split_on_character_boundaries),
        cmocka_unit_test(long_caption_goes_with_the_media_and_the_rest_follows),
        cmocka_unit_test(outbox_entries_from_helpdesks_are_sent),
        cmocka_unit_test(bad_api_input_is_400_naming_the_field),
        cmocka_unit_test(webhook_set_and_delete_register_with_the_secret),
        cmocka_unit_test(redis_down_answers_503_and_recovers),
        cmocka_unit_test(long_polling_stores_updates_and_advances_the_offset_after_the_write),
    };
    return cmocka_run_group_tests_name("telegram_flow", tests, setup, teardown);
}
