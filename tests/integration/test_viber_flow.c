/* End to end with Viber through the real parts: the deskbridge binary configured from
 * tests/fixtures/e2e/viber.conf plus the environment, a real redis-server and a fake Viber
 * REST API on loopback.  Callbacks are signed here the way Viber signs them (hex HMAC-SHA256
 * of the raw body under the auth token), so the daemon's check is exercised for real. */
#include <ctype.h>
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
#include "util/crypto.h"

#define ACCOUNT "shop"
#define TOKEN "4a1f7c2e9b3d-vbAuthDoNotLog-5e8f0a6b1c7d2e3f"
#define PLAIN_TOKEN "plain-vb-token-DoNotLog-0987654321" /* from viber.conf */
#define API_TOKEN "api-token-0123456789abcdef"
/* Viber user ids are base64: '+', '/' and '=' must survive conversation ids and JSON. */
#define USER "01234567890A+b/cdefGHi=="
#define SECRET_TEXT "secret-words-of-a-customer"
#define PHONE "380501234567"
#define CONF DB_SOURCE_DIR "/tests/fixtures/e2e/viber.conf"

struct world {
    struct db_test_redis *redis;
    struct db_fake *vb;
    struct db_test_daemon d;
    char env[6][512];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN,
                             "Content-Type: application/json", NULL};

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.vb = db_fake_start();
    assert_non_null(W.redis);
    assert_non_null(W.vb);
    /* Viber answers everything with HTTP 200; {n} keeps tokens distinct between sends. */
    db_fake_default(W.vb, 200,
                    "{\"status\":0,\"status_message\":\"ok\",\"message_token\":54912345600{n},"
                    "\"chat_hostname\":\"SN-CHAT-01_\",\"billing_status\":0}");
    snprintf(W.env[0], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[1], sizeof W.env[1], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[2], sizeof W.env[2], "VIBER_ACCOUNT=%s", ACCOUNT);
    snprintf(W.env[3], sizeof W.env[3], "VIBER_AUTH_TOKEN=%s", TOKEN);
    snprintf(W.env[4], sizeof W.env[4], "VIBER_API_BASE=%s", db_fake_url(W.vb));
    const char *env[] = {W.env[0], W.env[1], W.env[2], W.env[3], W.env[4], NULL};
    const char *args[] = {"--config", CONF, NULL};
    db_test_daemon_start(&W.d, env, args, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Tokens, phone numbers and message texts never reach the log at the default level. */
    static const char *const never[] = {"vbAuthDoNotLog", "plain-vb-token", SECRET_TEXT,
                                        "agent-reply-words", PHONE, NULL};
    db_test_daemon_stop_clean(&W.d, never);
    db_fake_stop(W.vb);
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

enum sig { SIG_OK, SIG_UPPER, SIG_NONE, SIG_WRONG_KEY, SIG_OTHER_BODY, SIG_EMPTY, SIG_QUERY };

/* Hex HMAC-SHA256 of body under key, as Viber computes X-Viber-Content-Signature. */
static void sign(const char *key, const void *body, size_t len, int upper, char out[65])
{
    unsigned char mac[32];
    db_hmac_sha256(key, strlen(key), body, len, mac);
    db_hex_encode(mac, sizeof mac, out);
    for (int i = 0; upper && out[i]; i++) out[i] = (char)toupper((unsigned char)out[i]);
}

/* POSTs body to account's webhook with the signature sig; returns the HTTP status and, when
 * reply is not NULL, the response body (caller frees).  Every error answer must be JSON
 * with an "error" member. */
static int post_cb_to(const char *account, const char *key, const void *body, size_t len,
                      enum sig sig, char **reply)
{
    char hex[65], h[128], path[256];
    if (sig == SIG_OTHER_BODY)
        sign(key, "{}", 2, 0, hex);
    else
        sign(sig == SIG_WRONG_KEY ? TOKEN "x" : key, body, len, sig == SIG_UPPER, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", sig == SIG_EMPTY ? "" : hex);
    const char *headers[] = {"Content-Type: application/json",
                             sig == SIG_NONE || sig == SIG_QUERY ? NULL : h, NULL};
    if (sig == SIG_QUERY)
        snprintf(path, sizeof path, "/webhooks/viber/%s?sig=%s", account, hex);
    else
        snprintf(path, sizeof path, "/webhooks/viber/%s", account);
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, body, len, &r);
    int status = r.status;
    if (status >= 400) {
        json_t *j = json_loads(r.body, 0, NULL);
        if (!j || !json_is_object(json_object_get(j, "error")))
            fail_msg("HTTP %d without a JSON error: %.200s", status, r.body ? r.body : "");
        json_decref(j);
    }
    if (reply) {
        *reply = r.body;
        r.body = NULL;
    }
    db_test_resp_clear(&r);
    return status;
}

static int post_cb(const char *body, enum sig sig)
{
    return post_cb_to(ACCOUNT, TOKEN, body, strlen(body), sig, NULL);
}

/* A text message callback; token is spliced in verbatim (a number or a quoted string). */
static char *message_cb(const char *token, const char *text)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"event\":\"message\",\"timestamp\":1795365000123,"
                         "\"chat_hostname\":\"SN-CHAT-05_\",\"message_token\":%s,"
                         "\"sender\":{\"id\":\"" USER "\",\"name\":\"Olena\","
                         "\"avatar\":\"https://media-direct.cdn.viber.com/a.jpg\","
                         "\"language\":\"uk\",\"country\":\"UA\",\"api_version\":10},"
                         "\"message\":{\"type\":\"text\",\"text\":\"%s\"},"
                         "\"silent\":false}",
                         token, text) > 0);
    return b;
}

static char *receipt_cb(const char *event, const char *token, const char *extra)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"event\":\"%s\",\"timestamp\":1795365100456,"
                         "\"chat_hostname\":\"SN-CHAT-05_\",\"message_token\":%s,"
                         "\"user_id\":\"" USER "\"%s}",
                         event, token, extra ? extra : "") > 0);
    return b;
}

/* ---- inbound ---- */

static void signed_message_lands_once_in_the_stream(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *body = message_cb("5491234567890000001", "Привіт 👋🏽 " SECRET_TEXT);
    assert_int_equal(post_cb(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "message");
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(ev, "platform")), "viber");
    assert_string_equal(json_string_value(json_object_get(ev, "account")), ACCOUNT);
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")),
                        "viber:" ACCOUNT ":" USER);
    assert_string_equal(json_string_value(json_object_get(ev, "external_user_id")), USER);
    assert_string_equal(json_string_value(json_object_get(ev, "external_message_id")),
                        "5491234567890000001");
    assert_string_equal(json_string_value(json_object_get(ev, "text")),
                        "Привіт 👋🏽 " SECRET_TEXT);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "sender"), "name")), "Olena");
    /* 1795365000123 ms */
    assert_int_equal(json_integer_value(json_object_get(ev, "timestamp")), 1795365000);
    assert_true(json_is_string(json_object_get(ev, "id")));
    json_decref(ev);

    /* Viber retries a callback it got no 200 for: answered 200, not written again. */
    assert_int_equal(post_cb(body, SIG_OK), 200);
    assert_int_equal(post_cb(body, SIG_UPPER), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(body);

    /* A shared contact: the phone number reaches the stream (and nothing else). */
    const char *contact =
        "{\"event\":\"message\",\"timestamp\":1795365001000,\"message_token\":5491234567890000004,"
        "\"sender\":{\"id\":\"" USER "\",\"name\":\"Olena\"},"
        "\"message\":{\"type\":\"contact\",\"contact\":{\"name\":\"Taras\","
        "\"phone_number\":\"+" PHONE "\"}}}";
    assert_int_equal(post_cb(contact, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 2);
    ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "contact");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "contact"), "phone_number")),
        "+" PHONE);
    json_decref(ev);
}

static void signature_is_required(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *body = message_cb("5491234567890000002", "unsigned");
    assert_int_equal(post_cb(body, SIG_NONE), 401);
    assert_int_equal(post_cb(body, SIG_EMPTY), 401);
    assert_int_equal(post_cb(body, SIG_WRONG_KEY), 401);
    assert_int_equal(post_cb(body, SIG_OTHER_BODY), 401);
    /* The other account's token does not sign for this one. */
    assert_int_equal(post_cb_to(ACCOUNT, PLAIN_TOKEN, body, strlen(body), SIG_OK, NULL), 401);
    /* A signature made over the body with one byte changed. */
    char hex[65], h[128];
    sign(TOKEN, body, strlen(body), 0, hex);
    char *tampered = strdup(body);
    tampered[strlen(tampered) - 2] = ' ';
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/viber/" ACCOUNT, headers, tampered,
                 strlen(tampered), &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
    free(tampered);
    assert_int_equal(xlen("events"), before);

    /* Hex case does not matter: uppercase is accepted, and written once. */
    assert_int_equal(post_cb(body, SIG_UPPER), 200);
    assert_int_equal(xlen("events"), before + 1);
    assert_int_equal(post_cb(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(body);

    /* Bots migrated from the node SDK may have registered ?sig= URLs. */
    body = message_cb("5491234567890000003", "query signed");
    assert_int_equal(post_cb(body, SIG_QUERY), 200);
    assert_int_equal(xlen("events"), before + 2);
    free(body);

    /* Unknown accounts are 404 whatever the signature. */
    db_test_http(W.d.port, "POST", "/webhooks/viber/nobody", NULL, "{}", 2, &r);
    assert_int_equal(r.status, 404);
    db_test_resp_clear(&r);
}

static void webhook_check_is_200_and_writes_nothing(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *reply = NULL;
    const char *body = "{\"event\":\"webhook\",\"timestamp\":1795365000999,"
                       "\"chat_hostname\":\"SN-CHAT-01_\",\"message_token\":5491234567890999999}";
    assert_int_equal(post_cb_to(ACCOUNT, TOKEN, body, strlen(body), SIG_OK, &reply), 200);
    json_t *j = json_loads(reply, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    free(reply);
    /* Still signed: an unsigned probe is someone else's. */
    assert_int_equal(post_cb(body, SIG_NONE), 401);
    /* Events the gateway does not use (e.g. "action" of newer API versions) likewise. */
    assert_int_equal(post_cb("{\"event\":\"client_status\",\"timestamp\":1795365000999}", SIG_OK),
                     200);
    assert_int_equal(xlen("events"), before);
}

static void conversation_started_answers_the_welcome_message(void **state)
{
    (void)state;
    long long before = xlen("events");
    const char *body = "{\"event\":\"conversation_started\",\"timestamp\":1795365200777,"
                       "\"chat_hostname\":\"SN-CHAT-05_\",\"message_token\":5491234567891111111,"
                       "\"type\":\"open\",\"context\":\"ad-campaign-7\","
                       "\"user\":{\"id\":\"" USER "\",\"name\":\"Olena\",\"language\":\"uk\","
                       "\"country\":\"UA\",\"api_version\":10},\"subscribed\":false}";
    char *reply = NULL;
    assert_int_equal(post_cb_to(ACCOUNT, TOKEN, body, strlen(body), SIG_OK, &reply), 200);
    json_t *w = json_loads(reply, 0, NULL);
    if (!w) fail_msg("welcome answer is not JSON: %s", reply);
    json_t *sender = json_object_get(w, "sender");
    assert_string_equal(json_string_value(json_object_get(sender, "name")), "Shop Support");
    assert_string_equal(json_string_value(json_object_get(sender, "avatar")),
                        "https://cdn.example.com/shop/avatar.png");
    assert_string_equal(json_string_value(json_object_get(w, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(w, "text")),
                        "Вітаємо! Welcome to Shop support 👋");
    json_decref(w);
    free(reply);
    /* Viber reads the answer as JSON only when it says so. */
    char hex[65], h[128], ct[64];
    sign(TOKEN, body, strlen(body), 0, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/viber/" ACCOUNT, headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    assert_non_null(db_test_resp_header(&r, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "application/json"));
    db_test_resp_clear(&r);

    assert_int_equal(xlen("events"), before + 1);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "membership");
    assert_string_equal(json_string_value(json_object_get(ev, "membership")),
                        "conversation_started");
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")),
                        "viber:" ACCOUNT ":" USER);
    assert_int_equal(json_integer_value(json_object_get(ev, "timestamp")), 1795365200);
    json_decref(ev);

    /* A redelivery still gets the welcome (Viber shows whichever answer arrives) but is not
     * written twice. */
    assert_int_equal(post_cb_to(ACCOUNT, TOKEN, body, strlen(body), SIG_OK, &reply), 200);
    assert_non_null(strstr(reply, "Welcome to Shop support"));
    free(reply);
    assert_int_equal(xlen("events"), before + 1);

    /* The account without welcome_text answers an empty object and still records the event. */
    assert_int_equal(post_cb_to("plain", PLAIN_TOKEN, body, strlen(body), SIG_OK, &reply), 200);
    assert_true(reply[0] == '\0' || strcmp(reply, "{}") == 0);
    free(reply);
    assert_int_equal(xlen("events"), before + 2);
    ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "account")), "plain");
    assert_string_equal(json_string_value(json_object_get(ev, "membership")),
                        "conversation_started");
    json_decref(ev);
}

static void big_message_tokens_are_carried_exactly(void **state)
{
    (void)state;
    long long before = xlen("events");
    /* Above 2^53: a double would turn it into ...123456 +- 512. */
    char *num = message_cb("5491234567890123456", "big token as number");
    assert_int_equal(post_cb(num, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "external_message_id")),
                        "5491234567890123456");
    assert_int_equal(json_integer_value(json_object_get(ev, "timestamp")), 1795365000);
    json_decref(ev);

    /* The same token as a string is the same message: a redelivery, not a second event. */
    char *str = message_cb("\"5491234567890123456\"", "big token as string");
    assert_int_equal(post_cb(str, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(str);

    str = message_cb("\"5491234567890123455\"", "another big token as string");
    assert_int_equal(post_cb(str, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 2);
    ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "external_message_id")),
                        "5491234567890123455");
    json_decref(ev);
    free(str);
    free(num);

    /* A token already turned into a real number has lost its digits: refused. */
    char *real = message_cb("5.491234567890123e18", "real token");
    assert_int_equal(post_cb(real, SIG_OK), 400);
    assert_int_equal(xlen("events"), before + 2);
    free(real);
}

static void hostile_bodies_get_4xx_and_nothing_is_written(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *good = message_cb("5491234567890000009", "Привіт " SECRET_TEXT);
    size_t glen = strlen(good);

    /* Truncated in the middle. */
    assert_int_equal(post_cb_to(ACCOUNT, TOKEN, good, glen / 2, SIG_OK, NULL), 400);
    /* Cut inside the two-byte "П": the body ends with a lone lead byte. */
    size_t at = 0;
    while (at < glen && strncmp(good + at, "Привіт", strlen("Привіт")) != 0) at++;
    assert_true(at < glen);
    assert_int_equal(post_cb_to(ACCOUNT, TOKEN, good, at + 1, SIG_OK, NULL), 400);
    /* Complete JSON with an invalid UTF-8 sequence inside the text. */
    char *bad_utf8 = strdup(good);
    bad_utf8[at + 1] = '\x41'; /* continuation byte replaced: lead byte now unpaired */
    assert_int_equal(post_cb(bad_utf8, SIG_OK), 400);
    free(bad_utf8);
    free(good);

    assert_int_equal(post_cb("not json at all", SIG_OK), 400);
    assert_int_equal(post_cb("", SIG_OK), 400);
    assert_int_equal(post_cb("[1,2,3]", SIG_OK), 400);
    assert_int_equal(post_cb("{\"event\":42}", SIG_OK), 400);
    assert_int_equal(post_cb("{\"event\":\"message\",\"message_token\":1,"
                             "\"message\":{\"type\":\"text\",\"text\":\"no sender\"}}", SIG_OK),
                     400);
    assert_int_equal(post_cb("{\"event\":\"message\",\"message_token\":\"12ab\","
                             "\"sender\":{\"id\":\"x\"},\"message\":{\"type\":\"text\","
                             "\"text\":\"t\"}}", SIG_OK), 400);
    /* A NUL inside a string would cut the text short downstream. */
    assert_int_equal(post_cb("{\"event\":\"message\",\"message_token\":7,\"sender\":{\"id\":\"x\"},"
                             "\"message\":{\"type\":\"text\",\"text\":\"a\\u0000b\"}}", SIG_OK),
                     400);

    size_t deep = 100000;
    char *nest = malloc(2 * deep + 1);
    assert_non_null(nest);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    nest[2 * deep] = '\0';
    assert_int_equal(post_cb(nest, SIG_OK), 400);
    /* Deep nesting inside an otherwise valid callback. */
    char *wrapped = NULL;
    assert_true(asprintf(&wrapped, "{\"event\":\"message\",\"x\":%s}", nest) > 0);
    assert_int_equal(post_cb(wrapped, SIG_OK), 400);
    free(wrapped);
    free(nest);

    size_t big = 5 << 20;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    char *reply = NULL;
    assert_int_equal(post_cb_to(ACCOUNT, TOKEN, huge, big, SIG_OK, &reply), 413);
    free(reply);
    free(huge);

    assert_int_equal(xlen("events"), before);
    assert_true(db_test_daemon_alive(&W.d));
    /* ... and still serving. */
    char *ok = message_cb("5491234567890000010", "after the storm");
    assert_int_equal(post_cb(ok, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(ok);
}

static void redis_stall_answers_503_and_the_retry_is_stored_once(void **state)
{
    (void)state;
    const char *body = "{\"event\":\"conversation_started\",\"timestamp\":1795365300000,"
                       "\"message_token\":5491234567890700001,\"type\":\"open\","
                       "\"user\":{\"id\":\"stall+User/1==\",\"name\":\"Ivan\"}}";
    long long before = xlen("events");
    db_test_redis_kill(W.redis, SIGSTOP);
    char *reply = NULL;
    char hex[65], h[128], ra[32];
    sign(TOKEN, body, strlen(body), 0, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    long long t0 = db_test_now_ms();
    db_test_http(W.d.port, "POST", "/webhooks/viber/" ACCOUNT, headers, body, strlen(body), &r);
    long long took = db_test_now_ms() - t0;
    assert_int_equal(r.status, 503);
    assert_non_null(db_test_resp_header(&r, "Retry-After", ra, sizeof ra));
    /* Not stored, so not welcomed: Viber's retry gets the welcome. */
    assert_null(strstr(r.body, "Welcome"));
    db_test_resp_clear(&r);
    printf("# 503 while Redis stalled answered in %lld ms\n", took);
    assert_true(took < 5000);
    db_test_redis_kill(W.redis, SIGCONT);

    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        free(reply);
        reply = NULL;
        status = post_cb_to(ACCOUNT, TOKEN, body, strlen(body), SIG_OK, &reply);
        if (status != 200) usleep(50000);
    }
    assert_int_equal(status, 200);
    assert_non_null(strstr(reply, "Welcome to Shop support"));
    free(reply);
    /* The script sent before the timeout may have run once Redis woke up: either way the
     * event is there exactly once. */
    assert_int_equal(xlen("events"), before + 1);
    /* the webhook's connection may be back before the others: the tests after this one need
     * them all */
    assert_true(db_test_wait_ready(W.d.port, 5000));
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

/* Queues a text to USER; returns the gateway id (caller frees). */
/* POSTs cmd (taken) to /v1/messages; returns the queued message's id (malloc'd). */
static char *send_cmd(json_t *cmd)
{
    char *json = json_dumps(cmd, 0);
    int status;
    char *body = post_message(json, &status);
    if (status != 202) fail_msg("POST /v1/messages: HTTP %d %s", status, body ? body : "");
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "queued");
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    json_decref(cmd);
    free(json);
    free(body);
    return id;
}

static char *send_text(const char *text)
{
    return send_cmd(json_pack("{s:s, s:s}", "conversation", "viber:" ACCOUNT ":" USER, "text", text));
}

static const char *hdr(const struct db_fake_request *req, const char *name)
{
    return db_headers_get(&req->headers, name);
}

static void reply_reaches_viber_and_is_found_by_its_token(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5491234567890123457,"
                 "\"chat_hostname\":\"SN-CHAT-05_\",\"billing_status\":1}", 0, 0);
    char *id = send_text("Добрий день! 🙂 agent-reply-words");
    json_t *m = wait_status(id, "sent", 10000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")),
                        "5491234567890123457");
    json_t *hist = json_object_get(m, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 1), "status")),
                        "sent");
    json_decref(m);

    assert_int_equal(db_fake_count(W.vb, "/send_message"), 1);
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.vb, 0, &req), 0);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/send_message");
    assert_non_null(hdr(&req, "X-Viber-Auth-Token"));
    assert_string_equal(hdr(&req, "X-Viber-Auth-Token"), TOKEN);
    json_t *sent = json_loads(req.body, 0, NULL);
    assert_non_null(sent);
    assert_string_equal(json_string_value(json_object_get(sent, "receiver")), USER);
    assert_string_equal(json_string_value(json_object_get(sent, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(sent, "text")),
                        "Добрий день! 🙂 agent-reply-words");
    json_t *sender = json_object_get(sent, "sender");
    assert_string_equal(json_string_value(json_object_get(sender, "name")), "Shop Support");
    assert_string_equal(json_string_value(json_object_get(sender, "avatar")),
                        "https://cdn.example.com/shop/avatar.png");
    /* Our id rides along, so Viber's echo on a reply can be tied back to the message. */
    assert_string_equal(json_string_value(json_object_get(sent, "tracking_data")), id);
    json_decref(sent);
    db_fake_request_clear(&req);

    json_t *st = last_entry("status", "status");
    assert_string_equal(json_string_value(json_object_get(st, "id")), id);
    assert_string_equal(json_string_value(json_object_get(st, "status")), "sent");
    assert_string_equal(json_string_value(json_object_get(st, "external_message_id")),
                        "5491234567890123457");
    json_decref(st);

    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/v1/messages/by-external/viber/" ACCOUNT "/5491234567890123457",
                 auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *found = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(found, "id")), id);
    json_decref(found);
    db_test_resp_clear(&r);
    /* The neighbour a double would round to is not it. */
    db_test_http(W.d.port, "GET", "/v1/messages/by-external/viber/" ACCOUNT "/5491234567890123456",
                 auth, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    db_test_resp_clear(&r);
    free(id);
}

/* Sends a text answered with token tok; returns the gateway id once sent (caller frees). */
static char *sent_with_token(const char *tok)
{
    char body[256];
    snprintf(body, sizeof body, "{\"status\":0,\"status_message\":\"ok\",\"message_token\":%s}",
             tok);
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200, body, 0, 0);
    char *id = send_text("receipt test agent-reply-words");
    json_t *m = wait_status(id, "sent", 10000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")), tok);
    json_decref(m);
    return id;
}

static void receipts_move_the_status_forward_only(void **state)
{
    (void)state;
    char *id = sent_with_token("5491234567890200001");
    long long before = xlen("events");
    char *delivered = receipt_cb("delivered", "5491234567890200001", NULL);
    char *seen = receipt_cb("seen", "5491234567890200001", NULL);
    assert_int_equal(post_cb(delivered, SIG_OK), 200);
    json_decref(wait_status(id, "delivered", 5000));
    json_t *ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "receipt");
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "delivered");
    assert_string_equal(json_string_value(json_object_get(ev, "external_message_id")),
                        "5491234567890200001");
    assert_int_equal(json_integer_value(json_object_get(ev, "timestamp")), 1795365100);
    json_decref(ev);

    assert_int_equal(post_cb(seen, SIG_OK), 200);
    json_decref(wait_status(id, "read", 5000));
    long long status_len = xlen("status");

    /* Viber's delivered may overtake nothing, but a retried one can arrive after seen. */
    char *late = receipt_cb("delivered", "\"5491234567890200001\"", ",\"late\":1");
    assert_int_equal(post_cb(late, SIG_OK), 200);
    free(late);
    usleep(200000);
    json_t *m = wait_status(id, "read", 1000);
    json_t *hist = json_object_get(m, "history");
    size_t n = json_array_size(hist);
    assert_true(n >= 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, n - 1), "status")),
                        "read");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, n - 2), "status")),
                        "delivered");
    json_decref(m);
    assert_int_equal(xlen("status"), status_len); /* no status entry after read */
    /* Both receipts are facts for the events stream; the token string is the same message,
     * so the late one is a duplicate of the first delivered. */
    assert_int_equal(xlen("events"), before + 2);
    free(delivered);
    free(seen);
    free(id);

    /* The first delivered arriving after seen: a new fact for the events stream, but the
     * message stays read and the status stream hears nothing. */
    id = sent_with_token("5491234567890200003");
    seen = receipt_cb("seen", "5491234567890200003", NULL);
    delivered = receipt_cb("delivered", "5491234567890200003", NULL);
    assert_int_equal(post_cb(seen, SIG_OK), 200);
    json_decref(wait_status(id, "read", 5000));
    status_len = xlen("status");
    before = xlen("events");
    assert_int_equal(post_cb(delivered, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    usleep(200000);
    m = wait_status(id, "read", 1000);
    hist = json_object_get(m, "history");
    n = json_array_size(hist);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, n - 1), "status")),
                        "read");
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(
            json_string_value(json_object_get(json_array_get(hist, i), "status")), "delivered");
    json_decref(m);
    assert_int_equal(xlen("status"), status_len);
    free(delivered);
    free(seen);
    free(id);

    /* failed with desc */
    id = sent_with_token("5491234567890200002");
    char *failed = receipt_cb("failed", "5491234567890200002",
                              ",\"desc\":\"user device not available\"");
    assert_int_equal(post_cb(failed, SIG_OK), 200);
    m = wait_status(id, "failed", 5000);
    json_t *err = json_object_get(m, "error");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")),
                           "user device not available"));
    json_decref(m);
    ev = last_entry("events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "failed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "error"), "message")),
        "user device not available");
    json_decref(ev);
    free(failed);
    free(id);
}

static void status_12_is_retried_and_succeeds(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":12,\"status_message\":\"tooManyRequests\"}", 0, 0);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5491234567890300001}",
                 0, 0);
    char *id = send_text("retry me agent-reply-words");
    json_t *m = wait_status(id, "sent", 15000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")),
                        "5491234567890300001");
    assert_int_equal(json_integer_value(json_object_get(m, "attempt")), 2);
    assert_int_equal(db_fake_count(W.vb, "/send_message"), 2);
    json_decref(m);
    free(id);
}

static void status_5_fails_without_retry(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", -1, 200,
                 "{\"status\":5,\"status_message\":\"receiver not registered\"}", 0, 0);
    char *id = send_text("nobody home agent-reply-words");
    json_t *m = wait_status(id, "failed", 10000);
    json_t *err = json_object_get(m, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "5");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "receiver not registered");
    json_decref(m);
    usleep(600000); /* longer than retry_max_ms: a retry would have happened by now */
    assert_int_equal(db_fake_count(W.vb, "/send_message"), 1);
    free(id);
}

static void http_500_is_retried(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 500, "{\"error\":\"internal\"}", 0, 0);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5491234567890400001}",
                 0, 0);
    char *id = send_text("after a 500 agent-reply-words");
    json_t *m = wait_status(id, "sent", 15000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")),
                        "5491234567890400001");
    assert_int_equal(db_fake_count(W.vb, "/send_message"), 2);
    json_decref(m);
    free(id);
    db_fake_reset(W.vb);
}

static void receipt_before_the_send_answer_is_applied(void **state)
{
    (void)state;
    /* Viber may call back "delivered" before its send_message answer reaches us: the answer
     * is held back here while the receipt for the token it will carry arrives. */
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5491234567890500001}",
                 800, 0);
    char *id = send_text("early receipt agent-reply-words");
    assert_int_equal(db_fake_wait(W.vb, "/send_message", 1, 5000), 1);
    char *delivered = receipt_cb("delivered", "5491234567890500001", NULL);
    assert_int_equal(post_cb(delivered, SIG_OK), 200);
    json_t *m = wait_status(id, "delivered", 10000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")),
                        "5491234567890500001");
    json_decref(m);
    free(delivered);
    free(id);
    db_fake_reset(W.vb);
}

static void long_caption_goes_with_the_picture_and_the_rest_follows(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    for (int i = 1; i <= 2; i++) {
        char ok[128];
        snprintf(ok, sizeof ok,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":549123456789070000%d}",
                 i);
        db_fake_rule(W.vb, "POST", "/send_message", 1, 200, ok, 0, 0);
    }
    char text[60 * 5 + 1] = "";
    for (int i = 0; i < 60; i++) strcat(text, "word ");
    char *id = send_cmd(json_pack("{s:s, s:s, s:{s:s, s:s}}", "conversation",
                                  "viber:" ACCOUNT ":" USER, "text", text, "media", "url",
                                  "https://example.com/a.jpg", "type", "image"));
    json_decref(wait_status(id, "sent", 10000));
    assert_int_equal(db_fake_count(W.vb, "/send_message"), 2);
    struct db_fake_request pic, rest;
    assert_int_equal(db_fake_get(W.vb, 0, &pic), 0);
    assert_int_equal(db_fake_get(W.vb, 1, &rest), 0);
    json_t *p = json_loads(pic.body, 0, NULL), *r = json_loads(rest.body, 0, NULL);
    assert_non_null(p);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(p, "type")), "picture");
    assert_string_equal(json_string_value(json_object_get(r, "type")), "text");
    assert_null(json_object_get(r, "media"));
    const char *caption = json_string_value(json_object_get(p, "text"));
    const char *more = json_string_value(json_object_get(r, "text"));
    assert_non_null(caption);
    assert_non_null(more);
    assert_true(strlen(caption) <= 120 && strlen(caption) > 100);
    char joined[sizeof text];
    snprintf(joined, sizeof joined, "%s%s", caption, more);
    assert_string_equal(joined, text);
    json_decref(p);
    json_decref(r);
    db_fake_request_clear(&pic);
    db_fake_request_clear(&rest);
    free(id);
    db_fake_reset(W.vb);
}

static void long_text_is_split_and_every_part_is_indexed(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5491234567890600001}",
                 0, 0);
    db_fake_rule(W.vb, "POST", "/send_message", 1, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"message_token\":5491234567890600002}",
                 0, 0);
    /* 7500 characters of two bytes each: over Viber's 7000-character limit. */
    size_t n = 7500;
    char *text = malloc(2 * n + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++) memcpy(text + 2 * i, "ж", 2);
    text[2 * n] = '\0';
    char *id = send_text(text);
    json_t *m = wait_status(id, "sent", 10000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")),
                        "5491234567890600001");
    json_decref(m);
    assert_int_equal(db_fake_count(W.vb, "/send_message"), 2);
    size_t total = 0;
    for (size_t i = 0; i < 2; i++) {
        struct db_fake_request req;
        assert_int_equal(db_fake_get(W.vb, i, &req), 0);
        json_t *sent = json_loads(req.body, 0, NULL);
        assert_non_null(sent); /* valid JSON: no part ends inside a character */
        size_t bytes = json_string_length(json_object_get(sent, "text"));
        assert_true(bytes % 2 == 0 && bytes / 2 <= 7000);
        total += bytes;
        assert_string_equal(json_string_value(json_object_get(sent, "tracking_data")), id);
        json_decref(sent);
        db_fake_request_clear(&req);
    }
    assert_int_equal(total, 2 * n);
    /* A receipt for the second part finds the message too. */
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/v1/messages/by-external/viber/" ACCOUNT "/5491234567890600002",
                 auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, id));
    db_test_resp_clear(&r);
    char *seen = receipt_cb("seen", "5491234567890600002", NULL);
    assert_int_equal(post_cb(seen, SIG_OK), 200);
    json_decref(wait_status(id, "read", 5000));
    free(seen);
    free(id);
    free(text);
    db_fake_reset(W.vb);
}

/* ---- operator commands ---- */

static int run_cli(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env -i PATH=/usr/bin:/bin VIBER_AUTH_TOKEN='%s' VIBER_ACCOUNT='%s' "
             "VIBER_API_BASE='%s' '%s' %s >/dev/null 2>&1",
             TOKEN, ACCOUNT, db_fake_url(W.vb), DB_DAEMON_PATH, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void webhook_set_and_delete(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    db_fake_rule(W.vb, "POST", "/set_webhook", 2, 200,
                 "{\"status\":0,\"status_message\":\"ok\",\"event_types\":[\"delivered\",\"seen\","
                 "\"failed\",\"subscribed\",\"unsubscribed\",\"conversation_started\"]}", 0, 0);
    db_fake_rule(W.vb, "POST", "/set_webhook", 1, 200,
                 "{\"status\":1,\"status_message\":\"Invalid url\"}", 0, 0);
    assert_int_equal(run_cli("webhook set viber --url https://gw.example.com"), 0);
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.vb, 0, &req), 0);
    assert_string_equal(req.path, "/set_webhook");
    assert_string_equal(hdr(&req, "X-Viber-Auth-Token"), TOKEN);
    json_t *body = json_loads(req.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "url")),
                        "https://gw.example.com/webhooks/viber/" ACCOUNT);
    json_t *types = json_object_get(body, "event_types");
    static const char *const want[] = {"delivered", "seen", "failed", "subscribed",
                                       "unsubscribed", "conversation_started"};
    assert_int_equal(json_array_size(types), 6);
    for (size_t i = 0; i < 6; i++) {
        int seen = 0;
        for (size_t k = 0; k < json_array_size(types); k++)
            seen |= strcmp(json_string_value(json_array_get(types, k)), want[i]) == 0;
        if (!seen) fail_msg("event_types lacks %s", want[i]);
    }
    assert_true(json_is_true(json_object_get(body, "send_name")));
    json_decref(body);
    db_fake_request_clear(&req);

    assert_int_equal(run_cli("webhook delete viber"), 0);
    assert_int_equal(db_fake_get(W.vb, 1, &req), 0);
    assert_string_equal(req.path, "/set_webhook");
    body = json_loads(req.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "url")), "");
    json_decref(body);
    db_fake_request_clear(&req);

    /* Viber's refusal comes inside HTTP 200 and must still fail the command. */
    assert_int_not_equal(run_cli("webhook set viber --url https://gw.example.com"), 0);
    assert_int_equal(db_fake_count(W.vb, "/set_webhook"), 3);
    assert_int_not_equal(run_cli("webhook set viber"), 0); /* --url is required */
    assert_int_equal(db_fake_count(W.vb, "/set_webhook"), 3);
    db_fake_reset(W.vb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signed_message_lands_once_in_the_stream),
        cmocka_unit_test(signature_is_required),
        cmocka_unit_test(webhook_check_is_200_and_writes_nothing),
        cmocka_unit_test(conversation_started_answers_the_welcome_message),
        cmocka_unit_test(big_message_tokens_are_carried_exactly),
        cmocka_unit_test(hostile_bodies_get_4xx_and_nothing_is_written),
        cmocka_unit_test(redis_stall_answers_503_and_the_retry_is_stored_once),
        cmocka_unit_test(reply_reaches_viber_and_is_found_by_its_token),
        cmocka_unit_test(receipts_move_the_status_forward_only),
        cmocka_unit_test(status_12_is_retried_and_succeeds),
        cmocka_unit_test(status_5_fails_without_retry),
        cmocka_unit_test(http_500_is_retried),
        cmocka_unit_test(receipt_before_the_send_answer_is_applied),
        cmocka_unit_test(long_caption_goes_with_the_picture_and_the_rest_follows),
        cmocka_unit_test(long_text_is_split_and_every_part_is_indexed),
        cmocka_unit_test(webhook_set_and_delete),
    };
    return cmocka_run_group_tests_name("viber_flow", tests, setup, teardown);
}
