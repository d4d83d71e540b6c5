/* Typing, read marks, WhatsApp's customer-service window and templates end to end through the
 * real parts:
 * the deskbridge binary with a Telegram (webhook mode), a WhatsApp and a Viber account, a real
 * redis-server and one fake platform API per platform on loopback.  Typing and read calls
 * reach each fake in the platform's documented shape (or are refused / no-ops where the
 * platform has none); a reply 23 h 59 min after the customer's message goes out, one at
 * 24 h 01 min is refused at the API and fails on the outbox without Meta being called.  The
 * customer's message time is the one Meta stamps on the webhook, so the test sets it instead
 * of waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "util/crypto.h"

#define API_TOKEN "api-token-btn-0123456789abcdef"
#define TG_TOKEN "7000000001:AAbuttonsTokenDoNotLog_abcdefgh"
#define TG_SECRET "tg-hook-secret_42"
#define WA_TOKEN "EAAGbuttonsTokenDoNotLog0123456789"
#define WA_SECRET "wa-app-secret-DoNotLog"
#define PNID "106540352242922"
#define WABA "102290129340398"
#define VB_TOKEN "4a1f7c2e9b3d-vbButtonsDoNotLog-5e8f0a6b"
#define VB_ACCOUNT "shop"
#define VB_USER "01234567890A+b/cdefGHi=="

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg, *wa, *vb;
    struct db_test_daemon d;
    char env[14][512];
};

static struct world W;

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.tg = db_fake_start();
    W.wa = db_fake_start();
    W.vb = db_fake_start();
    assert_non_null(W.redis);
    assert_true(W.tg && W.wa && W.vb);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    db_fake_default(W.wa, 200, "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.OUT{n}\"}]}");
    db_fake_default(W.vb, 200, "{\"status\":0,\"status_message\":\"ok\",\"message_token\":{n}}");
    const char *fmt[][2] = {{"DESKBRIDGE_REDIS_URL", db_test_redis_url(W.redis)},
                            {"DESKBRIDGE_API_TOKEN", API_TOKEN},
                            {"TELEGRAM_BOT_TOKEN", TG_TOKEN},
                            {"TELEGRAM_API_BASE", db_fake_url(W.tg)},
                            {"TELEGRAM_WEBHOOK_SECRET", TG_SECRET},
                            {"WHATSAPP_ACCESS_TOKEN", WA_TOKEN},
                            {"WHATSAPP_APP_SECRET", WA_SECRET},
                            {"WHATSAPP_VERIFY_TOKEN", "verify-DoNotLog-7"},
                            {"WHATSAPP_PHONE_NUMBER_ID", PNID},
                            {"WHATSAPP_API_BASE", db_fake_url(W.wa)},
                            {"WHATSAPP_BUSINESS_ACCOUNT_ID", WABA},
                            {"VIBER_ACCOUNT", VB_ACCOUNT},
                            {"VIBER_AUTH_TOKEN", VB_TOKEN},
                            {"VIBER_API_BASE", db_fake_url(W.vb)}};
    const char *env[15];
    for (int i = 0; i < 14; i++) {
        snprintf(W.env[i], sizeof W.env[i], "%s=%s", fmt[i][0], fmt[i][1]);
        env[i] = W.env[i];
    }
    env[14] = NULL;
    db_test_daemon_start(&W.d, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const never[] = {"DoNotLog", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    db_fake_stop(W.tg);
    db_fake_stop(W.wa);
    db_fake_stop(W.vb);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

/* Queues cmd, waits until it is sent, returns the gateway id (caller frees). */
static char *send_until_sent(const char *cmd)
{
    int status;
    char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages", cmd, &status);
    if (status != 202) fail_msg("want 202, got %d %s", status, body ? body : "");
    json_t *j = json_loads(body, 0, NULL);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    free(body);
    json_decref(db_test_wait_message(W.d.port, API_TOKEN, id, "sent", 10000));
    return id;
}

/* The body of the newest request f recorded whose path holds path (new reference). */
static json_t *last_body(struct db_fake *f, const char *path)
{
    json_t *found = NULL;
    for (size_t i = 0;; i++) {
        struct db_fake_request r;
        if (db_fake_get(f, i, &r) != DB_OK) break;
        if (strstr(r.path, path)) {
            json_decref(found);
            found = json_loads(r.body, 0, NULL);
        }
        db_fake_request_clear(&r);
    }
    assert_non_null(found);
    return found;
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("got  %s\nwant %s", g, want_text);
    }
    json_decref(want);
}

static void post_hook(const char *path, const char *sig_header, const char *body)
{
    const char *headers[] = {"Content-Type: application/json", sig_header, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, body, strlen(body), &r);
    if (r.status != 200) fail_msg("%s answered %d %s", path, r.status, r.body ? r.body : "");
    db_test_resp_clear(&r);
}

static void hmac_hex(const char *key, const char *body, char hex[65])
{
    unsigned char mac[32];
    db_hmac_sha256(key, strlen(key), body, strlen(body), mac);
    db_hex_encode(mac, 32, hex);
}

/* POSTs to path with the API token and no body; returns the status, *out the JSON answer
 * (new reference, may be NULL). */
static int api_post(const char *path, json_t **out)
{
    const char *headers[] = {"Authorization: Bearer " API_TOKEN, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, NULL, 0, &r);
    int status = r.status;
    if (out) *out = r.body ? json_loads(r.body, 0, NULL) : NULL;
    db_test_resp_clear(&r);
    return status;
}

static const char *error_code(const json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* Posts a signed WhatsApp webhook with one text message from customer, stamped at ts. */
static void wa_customer_writes(const char *customer, const char *wamid, long long ts)
{
    char body[1024], hex[65], h[128];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"
             "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"" PNID "\"},"
             "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%lld\","
             "\"type\":\"text\",\"text\":{\"body\":\"hello\"}}]}}]}]}",
             customer, wamid, ts);
    hmac_hex(WA_SECRET, body, hex);
    snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    post_hook("/webhooks/whatsapp/" PNID, h, body);
}

/* ---- typing and read marks ---- */

static void typing_reaches_each_platform_in_its_shape(void **state)
{
    (void)state;
    json_t *j;
    /* Telegram: sendChatAction "typing" (core.telegram.org/bots/api#sendchataction). */
    db_fake_reset(W.tg);
    assert_int_equal(api_post("/v1/conversations/telegram:7000000001:5012345678/typing", &j), 200);
    assert_true(json_is_true(json_object_get(j, "typing")));
    json_decref(j);
    json_t *b = last_body(W.tg, "/sendChatAction");
    assert_json(b, "{\"chat_id\":5012345678,\"action\":\"typing\"}");
    json_decref(b);

    /* WhatsApp: the indicator hangs on the customer's newest message; without one, 409. */
    db_fake_reset(W.wa);
    assert_int_equal(api_post("/v1/conversations/whatsapp:" PNID ":16505550001/typing", &j), 409);
    assert_string_equal(error_code(j), "no_customer_message");
    json_decref(j);
    assert_int_equal(db_fake_count(W.wa, NULL), 0);
    wa_customer_writes("16505550001", "wamid.T1", (long long)time(NULL));
    assert_int_equal(api_post("/v1/conversations/whatsapp:" PNID ":16505550001/typing", &j), 200);
    json_decref(j);
    b = last_body(W.wa, "/" PNID "/messages");
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":"
                   "\"wamid.T1\",\"typing_indicator\":{\"type\":\"text\"}}");
    json_decref(b);

    /* Viber has no typing indicator for bots: 409 with its own code, nothing sent. */
    db_fake_reset(W.vb);
    assert_int_equal(api_post("/v1/conversations/viber:" VB_ACCOUNT ":01234567890A+b%2FcdefGHi==/typing", &j), 409);
    assert_string_equal(error_code(j), "typing_unsupported");
    json_decref(j);
    assert_int_equal(db_fake_count(W.vb, NULL), 0);

    /* A platform's refusal is the caller's 502; an unknown account 404, a foreign shape 400. */
    db_fake_rule(W.tg, "POST", "/sendChatAction", 1, 400,
                 "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not found\"}", 0, 0);
    assert_int_equal(api_post("/v1/conversations/telegram:7000000001:77/typing", &j), 502);
    assert_string_equal(error_code(j), "upstream_error");
    json_decref(j);
    assert_int_equal(api_post("/v1/conversations/telegram:nobot:1/typing", NULL), 404);
    assert_int_equal(api_post("/v1/conversations/nothing/typing", NULL), 400);
    assert_int_equal(api_post("/v1/conversations/telegram:7000000001:4%202/typing", NULL), 400);
}

static void read_marks_the_newest_customer_message_on_whatsapp_only(void **state)
{
    (void)state;
    json_t *j;
    db_fake_reset(W.wa);
    long long now = (long long)time(NULL);
    wa_customer_writes("16505550002", "wamid.R1", now - 60);
    wa_customer_writes("16505550002", "wamid.R2", now - 30);
    /* Meta delivers out of order: an older message arriving last is not the newest. */
    wa_customer_writes("16505550002", "wamid.R0", now - 90);
    assert_int_equal(api_post("/v1/conversations/whatsapp:" PNID ":16505550002/read", &j), 200);
    assert_true(json_is_true(json_object_get(j, "read")));
    assert_string_equal(json_string_value(json_object_get(j, "message")), "wamid.R2");
    json_decref(j);
    json_t *b = last_body(W.wa, "/" PNID "/messages");
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"wamid.R2\"}");
    json_decref(b);
    assert_int_equal(db_fake_count(W.wa, NULL), 1);

    /* A record of the earlier layout (a hash id, ts, written before an upgrade) is still read,
     * and the customer's next message replaces it. */
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                 "HSET deskbridge:customer:{whatsapp:" PNID ":16505550009} "
                                 "id wamid.H1 ts %lld", now - 30);
    assert_true(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    assert_int_equal(api_post("/v1/conversations/whatsapp:" PNID ":16505550009/read", &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "wamid.H1");
    json_decref(j);
    wa_customer_writes("16505550009", "wamid.H2", now - 10);
    assert_int_equal(api_post("/v1/conversations/whatsapp:" PNID ":16505550009/read", &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "wamid.H2");
    json_decref(j);

    /* Telegram bots and Viber have no read marks: a no-op that says so, nothing sent. */
    db_fake_reset(W.tg);
    db_fake_reset(W.vb);
    assert_int_equal(api_post("/v1/conversations/telegram:7000000001:5012345678/read", &j), 200);
    assert_true(json_is_false(json_object_get(j, "read")));
    assert_non_null(json_object_get(j, "reason"));
    json_decref(j);
    assert_int_equal(api_post("/v1/conversations/viber:" VB_ACCOUNT ":" "01234567890A/read", &j), 200);
    assert_true(json_is_false(json_object_get(j, "read")));
    json_decref(j);
    assert_int_equal(db_fake_count(W.tg, NULL) + db_fake_count(W.vb, NULL), 0);
}

/* ---- WhatsApp's customer-service window ---- */

static void reply_at_23h59_passes_and_at_24h01_is_refused(void **state)
{
    (void)state;
    long long now = (long long)time(NULL);
    db_fake_reset(W.wa);
    wa_customer_writes("16505550003", "wamid.W1", now - (23 * 3600 + 59 * 60));
    wa_customer_writes("16505550004", "wamid.W2", now - (24 * 3600 + 60));

    char *id = send_until_sent("{\"conversation\":\"whatsapp:" PNID ":16505550003\",\"text\":\"in time\"}");
    free(id);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 1);

    int status;
    char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages",
                                   "{\"conversation\":\"whatsapp:" PNID ":16505550004\",\"text\":\"too late\"}",
                                   &status);
    assert_int_equal(status, 409);
    json_t *j = json_loads(body, 0, NULL);
    assert_string_equal(error_code(j), "window_closed");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                           "template"));
    json_decref(j);
    free(body);

    /* A template is what WhatsApp takes outside the window: it goes. */
    id = send_until_sent("{\"conversation\":\"whatsapp:" PNID ":16505550004\",\"template\":"
                         "{\"name\":\"hello_world\",\"language\":\"en_US\"}}");
    free(id);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 2);

    /* A helpdesk's outbox command fails with the same code, unsent. */
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XADD deskbridge:outbox * command %s",
                                 "{\"id\":\"win-outbox-1\",\"conversation\":\"whatsapp:" PNID
                                 ":16505550004\",\"text\":\"late again\"}");
    assert_non_null(r);
    freeReplyObject(r);
    json_t *m = db_test_wait_message(W.d.port, API_TOKEN, "win-outbox-1", "failed", 10000);
    json_t *err = json_object_get(m, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "window_closed");
    json_decref(m);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 2);

    /* A later customer message opens the window again. */
    wa_customer_writes("16505550004", "wamid.W3", now);
    id = send_until_sent("{\"conversation\":\"whatsapp:" PNID ":16505550004\",\"text\":\"now\"}");
    free(id);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 3);
}

static void unknown_window_goes_to_meta_and_131047_still_fails_it(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", 1, 400,
                 "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"type\":\"OAuthException\","
                 "\"code\":131047,\"fbtrace_id\":\"Az8or\"}}", 0, 0);
    int status;
    char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages",
                                   "{\"conversation\":\"whatsapp:" PNID ":16505559999\",\"text\":\"hi\"}",
                                   &status);
    assert_int_equal(status, 202);
    json_t *j = json_loads(body, 0, NULL);
    json_t *m = db_test_wait_message(W.d.port, API_TOKEN, json_string_value(json_object_get(j, "id")),
                                     "failed", 10000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "error"), "code")), "131047");
    json_decref(m);
    json_decref(j);
    free(body);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 1);
}

/* ---- templates ---- */

/* Meta's message_templates answer (template-management page shape): one approved template with
 * an image header, a body of two parameters and a dynamic URL button, over two pages; a
 * rejected one that must not be listed. */
#define TEMPLATES_PAGE1                                                                          \
    "{\"data\":[{\"name\":\"order_shipped\",\"language\":\"en_US\",\"status\":\"APPROVED\","    \
    "\"category\":\"UTILITY\",\"id\":\"1\",\"components\":[{\"type\":\"HEADER\",\"format\":\"IMAGE\"," \
    "\"example\":{\"header_handle\":[\"4::aW1hZ2U=\"]}},{\"type\":\"BODY\",\"text\":"          \
    "\"Hi {{1}}, order {{2}} is on its way.\",\"example\":{\"body_text\":[[\"Ann\",\"42\"]]}}," \
    "{\"type\":\"FOOTER\",\"text\":\"Acme\"},{\"type\":\"BUTTONS\",\"buttons\":[{\"type\":\"URL\"," \
    "\"text\":\"Track\",\"url\":\"https://acme.example/t/{{1}}\"},{\"type\":\"QUICK_REPLY\","    \
    "\"text\":\"Thanks\"}]}]},{\"name\":\"draft\",\"language\":\"en_US\",\"status\":\"REJECTED\"," \
    "\"category\":\"MARKETING\",\"id\":\"2\",\"components\":[]}],"                               \
    "\"paging\":{\"cursors\":{\"before\":\"QVFI\",\"after\":\"QVFIUk5\"},\"next\":\"https://graph/next\"}}"
#define TEMPLATES_PAGE2                                                                          \
    "{\"data\":[{\"name\":\"hello_world\",\"language\":\"en_US\",\"status\":\"APPROVED\","      \
    "\"category\":\"UTILITY\",\"id\":\"3\",\"components\":[{\"type\":\"HEADER\",\"format\":\"TEXT\"," \
    "\"text\":\"Hello World\"},{\"type\":\"BODY\",\"text\":\"Welcome and congratulations!\"}]}]," \
    "\"paging\":{\"cursors\":{\"before\":\"QVFIUk5\",\"after\":\"QVFIUk6\"}}}"

static json_t *api_get(const char *path, int *status)
{
    const char *headers[] = {"Authorization: Bearer " API_TOKEN, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", path, headers, NULL, 0, &r);
    *status = r.status;
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    db_test_resp_clear(&r);
    return j;
}

static void template_list_is_fetched_cached_and_refreshed(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "GET", "after=QVFIUk5", -1, 200, TEMPLATES_PAGE2, 0, 0);
    db_fake_rule(W.wa, "GET", "/" WABA "/message_templates", -1, 200, TEMPLATES_PAGE1, 0, 0);
    int status;
    json_t *j = api_get("/v1/templates/" PNID, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(j, "refreshed")));
    assert_json(json_object_get(j, "templates"),
                "[{\"name\":\"order_shipped\",\"language\":\"en_US\",\"category\":\"utility\","
                "\"header\":{\"format\":\"image\",\"parameters\":1},"
                "\"body\":{\"text\":\"Hi {{1}}, order {{2}} is on its way.\",\"parameters\":2},"
                "\"buttons\":[{\"index\":0,\"type\":\"url\",\"parameters\":1},"
                "{\"index\":1,\"type\":\"quick_reply\",\"parameters\":0}]},"
                "{\"name\":\"hello_world\",\"language\":\"en_US\",\"category\":\"utility\","
                "\"header\":{\"format\":\"text\",\"parameters\":0},"
                "\"body\":{\"text\":\"Welcome and congratulations!\",\"parameters\":0}}]");
    json_decref(j);
    assert_int_equal(db_fake_count(W.wa, "/message_templates"), 2);
    /* The request is Meta's: GET on the business account, with the token. */
    struct db_fake_request r;
    assert_int_equal(db_fake_get(W.wa, 0, &r), DB_OK);
    assert_string_equal(r.method, "GET");
    assert_non_null(strstr(r.path, "/" WABA "/message_templates?fields="));
    assert_string_equal(db_headers_get(&r.headers, "Authorization"), "Bearer " WA_TOKEN);
    db_fake_request_clear(&r);

    /* Cached: Meta is not asked again ... */
    j = api_get("/v1/templates/" PNID, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(j, "refreshed")));
    assert_int_equal(json_array_size(json_object_get(j, "templates")), 2);
    json_decref(j);
    assert_int_equal(db_fake_count(W.wa, "/message_templates"), 2);
    /* ... until asked to refresh. */
    j = api_get("/v1/templates/" PNID "?refresh=1", &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(j, "refreshed")));
    json_decref(j);
    assert_int_equal(db_fake_count(W.wa, "/message_templates"), 4);

    j = api_get("/v1/templates/nope", &status);
    assert_int_equal(status, 404);
    json_decref(j);
}

static void template_with_image_header_reaches_meta_and_wrong_counts_are_400(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "GET", "after=QVFIUk5", -1, 200, TEMPLATES_PAGE2, 0, 0);
    db_fake_rule(W.wa, "GET", "/message_templates", -1, 200, TEMPLATES_PAGE1, 0, 0);
    db_fake_rule(W.wa, "POST", "/messages", -1, 200,
                 "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.TPL{n}\"}]}", 0, 0);
    char *id = send_until_sent(
        "{\"conversation\":\"whatsapp:" PNID ":16505550005\",\"template\":{\"name\":\"order_shipped\","
        "\"language\":\"en_US\",\"header\":{\"type\":\"image\",\"url\":\"https://acme.example/box.jpg\"},"
        "\"parameters\":[\"Ann\",\"42\"],\"buttons\":[{\"index\":0,\"parameters\":[\"42\"]}]}}");
    free(id);
    /* Meta's send-message-templates shape: components header, body, button. */
    json_t *b = last_body(W.wa, "/" PNID "/messages");
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"16505550005\",\"type\":\"template\",\"template\":{\"name\":\"order_shipped\","
                   "\"language\":{\"code\":\"en_US\"},\"components\":["
                   "{\"type\":\"header\",\"parameters\":[{\"type\":\"image\",\"image\":"
                   "{\"link\":\"https://acme.example/box.jpg\"}}]},"
                   "{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Ann\"},"
                   "{\"type\":\"text\",\"text\":\"42\"}]},"
                   "{\"type\":\"button\",\"sub_type\":\"url\",\"index\":\"0\",\"parameters\":"
                   "[{\"type\":\"text\",\"text\":\"42\"}]}]}}");
    json_decref(b);
    size_t sends = db_fake_count(W.wa, "/messages");

    static const struct {
        const char *tmpl, *field, *says;
    } cases[] = {
        {"{\"name\":\"order_shipped\",\"language\":\"en_US\",\"header\":{\"type\":\"image\",\"url\":"
         "\"https://acme.example/a.jpg\"},\"parameters\":[\"Ann\"],\"buttons\":[{\"index\":0,"
         "\"parameters\":[\"1\"]}]}", "template.parameters", "takes 2 body parameters, not 1"},
        {"{\"name\":\"order_shipped\",\"language\":\"en_US\",\"parameters\":[\"Ann\",\"42\"],"
         "\"buttons\":[{\"index\":0,\"parameters\":[\"1\"]}]}", "template.header", "takes 1 header"},
        {"{\"name\":\"order_shipped\",\"language\":\"en_US\",\"header\":{\"type\":\"video\",\"url\":"
         "\"https://acme.example/a.mp4\"},\"parameters\":[\"Ann\",\"42\"],\"buttons\":[{\"index\":0,"
         "\"parameters\":[\"1\"]}]}", "template.header", "image header"},
        {"{\"name\":\"order_shipped\",\"language\":\"en_US\",\"header\":{\"type\":\"image\",\"url\":"
         "\"https://acme.example/a.jpg\"},\"parameters\":[\"Ann\",\"42\"]}", "template.buttons", "button 0"},
        {"{\"name\":\"hello_world\",\"language\":\"en_US\",\"parameters\":[\"x\"]}",
         "template.parameters", "takes 0 body parameters, not 1"},
        {"{\"name\":\"no_such\",\"language\":\"en_US\"}", "template", "no approved template"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "{\"conversation\":\"whatsapp:" PNID ":16505550005\",\"template\":%s}",
                 cases[i].tmpl);
        int status;
        char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages", cmd, &status);
        json_t *j = json_loads(body, 0, NULL);
        json_t *err = json_object_get(j, "error");
        const char *field = json_string_value(json_object_get(err, "field"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (status != 400 || !field || strcmp(field, cases[i].field) != 0 || !msg ||
            !strstr(msg, cases[i].says))
            fail_msg("case %zu: want 400 %s (%s), got %d %s", i, cases[i].field, cases[i].says,
                     status, body ? body : "");
        json_decref(j);
        free(body);
    }
    assert_int_equal(db_fake_count(W.wa, "/messages"), sends);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(typing_reaches_each_platform_in_its_shape),
        cmocka_unit_test(read_marks_the_newest_customer_message_on_whatsapp_only),
        cmocka_unit_test(reply_at_23h59_passes_and_at_24h01_is_refused),
        cmocka_unit_test(unknown_window_goes_to_meta_and_131047_still_fails_it),
        cmocka_unit_test(template_list_is_fetched_cached_and_refreshed),
        cmocka_unit_test(template_with_image_header_reaches_meta_and_wrong_counts_are_400),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
