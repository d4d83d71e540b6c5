/* Buttons end to end on all three platforms through the real parts: the deskbridge binary
 * with a Telegram (webhook mode), a WhatsApp and a Viber account, a real redis-server and one
 * fake platform API per platform on loopback.  An agent's message with buttons reaches each
 * fake in that platform's shape; the customer's tap, posted as the platform posts it, lands
 * on P:events as a callback with the button id and the message it belongs to; Telegram's
 * tap is acknowledged with answerCallbackQuery; limits are refused at the API. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
#define VB_TOKEN "4a1f7c2e9b3d-vbButtonsDoNotLog-5e8f0a6b"
#define VB_ACCOUNT "shop"
#define VB_USER "01234567890A+b/cdefGHi=="

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg, *wa, *vb;
    struct db_test_daemon d;
    char env[13][512];
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
                            {"VIBER_ACCOUNT", VB_ACCOUNT},
                            {"VIBER_AUTH_TOKEN", VB_TOKEN},
                            {"VIBER_API_BASE", db_fake_url(W.vb)}};
    const char *env[14];
    for (int i = 0; i < 13; i++) {
        snprintf(W.env[i], sizeof W.env[i], "%s=%s", fmt[i][0], fmt[i][1]);
        env[i] = W.env[i];
    }
    env[13] = NULL;
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

/* The newest P:events entry, checked to be the callback we expect. */
static json_t *last_callback(void)
{
    json_t *ev = db_test_last_entry(db_test_redis_ctx(W.redis), "events", "event");
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "callback");
    return ev;
}

/* ---- tests ---- */

static void telegram_inline_keyboard_and_answered_tap(void **state)
{
    (void)state;
    db_fake_reset(W.tg);
    char *id = send_until_sent("{\"conversation\":\"telegram:7000000001:5012345678\","
                               "\"text\":\"Was this helpful?\",\"buttons\":["
                               "{\"id\":\"yes\",\"title\":\"Yes 👍\"},{\"id\":\"no\",\"title\":\"No\"}]}");
    json_t *b = last_body(W.tg, "/sendMessage");
    assert_json(b, "{\"chat_id\":5012345678,\"text\":\"Was this helpful?\",\"reply_markup\":"
                   "{\"inline_keyboard\":[[{\"text\":\"Yes 👍\",\"callback_data\":\"yes\"}],"
                   "[{\"text\":\"No\",\"callback_data\":\"no\"}]]}}");
    json_decref(b);
    free(id);

    /* The customer taps "no" under our message 1 (Bot API callback_query shape). */
    post_hook("/webhooks/telegram/7000000001", "X-Telegram-Bot-Api-Secret-Token: " TG_SECRET,
              "{\"update_id\":9001,\"callback_query\":{\"id\":\"4382bfdwdsb323b2d9\","
              "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Olena\"},"
              "\"message\":{\"message_id\":1,\"date\":1795365000,\"chat\":{\"id\":5012345678,"
              "\"type\":\"private\"},\"text\":\"Was this helpful?\"},"
              "\"chat_instance\":\"-1\",\"data\":\"no\"}}");
    json_t *ev = last_callback();
    assert_string_equal(json_string_value(json_object_get(ev, "callback_data")), "no");
    assert_string_equal(json_string_value(json_object_get(ev, "reply_to")), "1");
    assert_string_equal(json_string_value(json_object_get(ev, "conversation")),
                        "telegram:7000000001:5012345678");
    json_decref(ev);
    /* The spinner on the customer's button stops: answerCallbackQuery with the query id. */
    assert_int_equal(db_fake_wait(W.tg, "/answerCallbackQuery", 1, 10000), 1);
    b = last_body(W.tg, "/answerCallbackQuery");
    assert_json(b, "{\"callback_query_id\":\"4382bfdwdsb323b2d9\"}");
    json_decref(b);
}

static void whatsapp_reply_buttons_list_and_tap(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    char *id = send_until_sent("{\"conversation\":\"whatsapp:" PNID ":16505551234\","
                               "\"text\":\"Pick one\",\"buttons\":[{\"id\":\"a\",\"title\":\"One\"},"
                               "{\"id\":\"b\",\"title\":\"Two\"}]}");
    json_t *b = last_body(W.wa, "/messages");
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"16505551234\",\"type\":\"interactive\",\"interactive\":{\"type\":\"button\","
                   "\"body\":{\"text\":\"Pick one\"},\"action\":{\"buttons\":["
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"One\"}},"
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"Two\"}}]}}}");
    json_decref(b);
    free(id);

    /* More than three: a list message, rows = the buttons. */
    id = send_until_sent("{\"conversation\":\"whatsapp:" PNID ":16505551234\",\"text\":\"Rate us\","
                         "\"buttons_label\":\"Rate\",\"buttons\":[{\"id\":\"r1\",\"title\":\"1\"},"
                         "{\"id\":\"r2\",\"title\":\"2\"},{\"id\":\"r3\",\"title\":\"3\"},"
                         "{\"id\":\"r4\",\"title\":\"4\"},{\"id\":\"r5\",\"title\":\"5\"}]}");
    b = last_body(W.wa, "/messages");
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"16505551234\",\"type\":\"interactive\",\"interactive\":{\"type\":\"list\","
                   "\"body\":{\"text\":\"Rate us\"},\"action\":{\"button\":\"Rate\",\"sections\":[{\"rows\":["
                   "{\"id\":\"r1\",\"title\":\"1\"},{\"id\":\"r2\",\"title\":\"2\"},{\"id\":\"r3\",\"title\":\"3\"},"
                   "{\"id\":\"r4\",\"title\":\"4\"},{\"id\":\"r5\",\"title\":\"5\"}]}]}}}");
    json_decref(b);
    free(id);

    /* The customer picks row r4 of our message wamid.OUT2 (Meta's list_reply webhook). */
    const char *tap =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
        "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"" PNID "\"},"
        "\"contacts\":[{\"profile\":{\"name\":\"Kerry\"},\"wa_id\":\"16505551234\"}],"
        "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.TAP1\",\"timestamp\":\"1795365000\","
        "\"type\":\"interactive\",\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.OUT2\"},"
        "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"r4\",\"title\":\"4\"}}}]}}]}]}";
    char hex[65], h[128];
    hmac_hex(WA_SECRET, tap, hex);
    snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    post_hook("/webhooks/whatsapp/" PNID, h, tap);
    json_t *ev = last_callback();
    assert_string_equal(json_string_value(json_object_get(ev, "callback_data")), "r4");
    assert_string_equal(json_string_value(json_object_get(ev, "reply_to")), "wamid.OUT2");
    json_decref(ev);
    /* WhatsApp needs no acknowledgement: nothing but the two sends reached Meta. */
    assert_int_equal(db_fake_count(W.wa, NULL), 2);
}

static void viber_keyboard_and_tap(void **state)
{
    (void)state;
    db_fake_reset(W.vb);
    char *id = send_until_sent("{\"conversation\":\"viber:" VB_ACCOUNT ":" VB_USER "\","
                               "\"text\":\"Done?\",\"buttons\":[{\"id\":\"yes\",\"title\":\"Yes\"},"
                               "{\"id\":\"no\",\"title\":\"Not yet\"}]}");
    json_t *b = last_body(W.vb, "/send_message");
    char tracking[160];
    snprintf(tracking, sizeof tracking, "db-buttons:%s:yes,no", id);
    assert_string_equal(json_string_value(json_object_get(b, "tracking_data")), tracking);
    assert_json(json_object_get(b, "keyboard"),
                "{\"Type\":\"keyboard\",\"DefaultHeight\":false,\"Buttons\":["
                "{\"Columns\":6,\"Rows\":1,\"ActionType\":\"reply\",\"ActionBody\":\"yes\",\"Text\":\"Yes\"},"
                "{\"Columns\":6,\"Rows\":1,\"ActionType\":\"reply\",\"ActionBody\":\"no\",\"Text\":\"Not yet\"}]}");
    json_decref(b);

    /* The tap comes back as a text message carrying ActionBody and our tracking_data. */
    char tap[768], hex[65], h[160];
    snprintf(tap, sizeof tap,
             "{\"event\":\"message\",\"timestamp\":1795365000123,\"chat_hostname\":\"SN-1\","
             "\"message_token\":5491234567890123499,\"sender\":{\"id\":\"" VB_USER "\","
             "\"name\":\"Ann\",\"language\":\"en\",\"country\":\"GB\",\"api_version\":10},"
             "\"message\":{\"type\":\"text\",\"text\":\"no\",\"tracking_data\":\"%s\"},"
             "\"silent\":false}", tracking);
    hmac_hex(VB_TOKEN, tap, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    post_hook("/webhooks/viber/" VB_ACCOUNT, h, tap);
    json_t *ev = last_callback();
    assert_string_equal(json_string_value(json_object_get(ev, "callback_data")), "no");
    assert_string_equal(json_string_value(json_object_get(ev, "outbound_id")), id);
    json_decref(ev);
    free(id);
}

static void limits_are_400_naming_the_field_and_outbox_commands_fail(void **state)
{
    (void)state;
    static const struct {
        const char *body, *field, *says;
    } cases[] = {
        {"{\"conversation\":\"whatsapp:" PNID ":1\",\"text\":\"x\",\"buttons\":["
         "{\"id\":\"1\",\"title\":\"a\"},{\"id\":\"2\",\"title\":\"a\"},{\"id\":\"3\",\"title\":\"a\"},"
         "{\"id\":\"4\",\"title\":\"a\"},{\"id\":\"5\",\"title\":\"a\"},{\"id\":\"6\",\"title\":\"a\"},"
         "{\"id\":\"7\",\"title\":\"a\"},{\"id\":\"8\",\"title\":\"a\"},{\"id\":\"9\",\"title\":\"a\"},"
         "{\"id\":\"10\",\"title\":\"a\"},{\"id\":\"11\",\"title\":\"a\"}]}",
         "buttons", "1 to 10 buttons"},
        {"{\"conversation\":\"whatsapp:" PNID ":1\",\"text\":\"x\",\"buttons\":["
         "{\"id\":\"1\",\"title\":\"twenty-one characters\"}]}", "buttons", "buttons[0].title"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"text\":\"x\",\"buttons\":["
         "{\"id\":\"a b\",\"title\":\"t\"}]}", "buttons", "buttons[0].id"},
        {"{\"conversation\":\"viber:" VB_ACCOUNT ":" VB_USER "\",\"text\":\"x\",\"buttons\":["
         "{\"id\":\"a\",\"title\":\"t\"},{\"id\":\"a\",\"title\":\"u\"}]}", "buttons", "repeats"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"text\":\"x\",\"buttons\":[]}", "buttons", "1 to 10"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"text\":\"x\",\"buttons\":{}}", "buttons", "array"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"text\":\"x\",\"media\":{\"type\":\"image\","
         "\"url\":\"https://example.com/a.png\"},\"buttons\":[{\"id\":\"a\",\"title\":\"t\"}]}",
         "buttons", "text message only"},
        {"{\"conversation\":\"telegram:7000000001:1\",\"buttons\":[{\"id\":\"a\",\"title\":\"t\"}]}",
         "text", "required"},
        {"{\"conversation\":\"whatsapp:" PNID ":1\",\"text\":\"x\",\"buttons_label\":"
         "\"a label of twenty-one!\",\"buttons\":[{\"id\":\"a\",\"title\":\"t\"}]}",
         "buttons_label", "20"},
    };
    size_t before = db_fake_count(W.tg, NULL) + db_fake_count(W.wa, NULL) + db_fake_count(W.vb, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages", cases[i].body, &status);
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
    /* A WhatsApp text with buttons is an interactive body: 1024 characters at most. */
    char big[1200];
    memset(big, 'x', 1025);
    big[1025] = '\0';
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "{\"conversation\":\"whatsapp:" PNID ":1\",\"text\":\"%s\","
             "\"buttons\":[{\"id\":\"a\",\"title\":\"t\"}]}", big);
    int status;
    char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages", cmd, &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(body, "\"field\":\"text\""));
    free(body);

    /* The same rules hold for a helpdesk's outbox command: like any unusable command it goes
     * to P:dead with the reason (docs/stream-contract.md), never to the platform. */
    redisContext *c = db_test_redis_ctx(W.redis);
    long long dead_before = db_test_xlen(c, "dead");
    redisReply *r = redisCommand(c, "XADD deskbridge:outbox * command %s",
                                 "{\"id\":\"btn-outbox-1\",\"conversation\":\"whatsapp:" PNID
                                 ":1\",\"text\":\"x\",\"buttons\":[{\"id\":\"a\",\"title\":"
                                 "\"twenty-one characters\"}]}");
    assert_non_null(r);
    freeReplyObject(r);
    long long waited = 0;
    while (db_test_xlen(c, "dead") == dead_before && waited < 10000) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        waited += 20;
    }
    r = redisCommand(c, "XREVRANGE deskbridge:dead + - COUNT 1");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    const redisReply *f = r->element[0]->element[1];
    const char *reason = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, "reason") == 0) reason = f->element[i + 1]->str;
    if (!reason || !strstr(reason, "buttons[0].title"))
        fail_msg("dead letter reason: %s", reason ? reason : "none");
    freeReplyObject(r);
    size_t after = db_fake_count(W.tg, NULL) + db_fake_count(W.wa, NULL) + db_fake_count(W.vb, NULL);
    assert_int_equal(after, before);
}

/* Long polling: a tap that came with getUpdates is answered once the batch is stored, as on
 * the webhook path (the last test: it restarts the daemon without the webhook secret). */
static void polled_tap_is_answered_after_the_store(void **state)
{
    (void)state;
    db_test_daemon_stop(&W.d, SIGTERM);
    db_fake_reset(W.tg);
    db_fake_rule(W.tg, NULL, "/getUpdates", 1, 200,
                 "{\"ok\":true,\"result\":[{\"update_id\":9100,\"callback_query\":{\"id\":\"77aa\","
                 "\"from\":{\"id\":31337,\"is_bot\":false,\"first_name\":\"P\"},\"message\":{"
                 "\"message_id\":5,\"date\":1795365000,\"chat\":{\"id\":31337,\"type\":\"private\"}},"
                 "\"chat_instance\":\"-2\",\"data\":\"yes\"}}]}", 0, 0);
    db_fake_rule(W.tg, NULL, "/getUpdates", -1, 200, "{\"ok\":true,\"result\":[]}", 300, 0);
    const char *env[13];
    int n = 0;
    for (int i = 0; i < 13; i++)
        if (strncmp(W.env[i], "TELEGRAM_WEBHOOK_SECRET=", 24) != 0) env[n++] = W.env[i];
    env[n] = NULL;
    db_test_daemon_start(&W.d, env, NULL, 0);
    assert_int_equal(db_fake_wait(W.tg, "/answerCallbackQuery", 1, 10000), 1);
    json_t *b = last_body(W.tg, "/answerCallbackQuery");
    assert_json(b, "{\"callback_query_id\":\"77aa\"}");
    json_decref(b);
    json_t *ev = last_callback();
    assert_string_equal(json_string_value(json_object_get(ev, "callback_data")), "yes");
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(telegram_inline_keyboard_and_answered_tap),
        cmocka_unit_test(whatsapp_reply_buttons_list_and_tap),
        cmocka_unit_test(viber_keyboard_and_tap),
        cmocka_unit_test(limits_are_400_naming_the_field_and_outbox_commands_fail),
        cmocka_unit_test(polled_tap_is_answered_after_the_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
