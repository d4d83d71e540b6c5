/* The satisfaction survey end to end through the real parts: the deskbridge binary with two
 * Telegram bots (webhook mode; "t" asks with buttons, "plain" as text), a WhatsApp and a
 * Viber account, a real redis-server and one fake platform API per platform on loopback.
 * Closing asks once in the customer's language; a tap or a text 1-5 and a comment are recorded
 * on the conversation (GET /v1/conversations/{id}), in P:stats:csat and in /metrics, and the
 * conversation stays closed; a customer who writes something else starts over and a later
 * "5" is no answer, and without a comment window the next text is a new conversation; a WhatsApp customer outside the 24-hour window (Meta's message time set
 * by the test) is not asked. */
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

#define API_TOKEN "api-token-survey-0123456789abcdef"
#define TG_TOKEN "7000000031:AAsurveyTokenDoNotLog_abcdefghijk"
#define TG_PLAIN "7000000032:AAplainTokenDoNotLog_abcdefghijkl"
#define TG_SECRET "tg-hook-secret_77"
#define WA_TOKEN "EAAGsurveyTokenDoNotLog0123456789"
#define WA_SECRET "wa-app-secret-DoNotLog"
#define PNID "106540352242977"
#define VB_TOKEN "4a1f7c2e9b3d-vbSurveyDoNotLog-5e8f0a6b"
#define VB_ACCOUNT "shop"
#define VB_USER "01234567890AbcdefGHi=="
#define TG_NIGHT "7000000033:AAnightTokenDoNotLog_abcdefghijk"

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg, *wa, *vb;
    struct db_test_daemon d;
    char dir[64], conf[128];
    char env[2][512];
};

static struct world W;

static void write_config(void)
{
    /* "night" is open one minute a week, three days from now: closed whenever the test runs. */
    static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    time_t later = time(NULL) + 3 * 86400;
    struct tm tm;
    gmtime_r(&later, &tm);
    snprintf(W.dir, sizeof W.dir, "/tmp/db-survey-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    snprintf(W.conf, sizeof W.conf, "%s/deskbridge.conf", W.dir);
    FILE *f = fopen(W.conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[telegram t]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[telegram plain]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[whatsapp %s]\naccess_token = %s\napp_secret = %s\nverify_token = verify-DoNotLog\n"
            "phone_number_id = %s\napi_base = %s\n\n"
            "[viber %s]\nauth_token = %s\napi_base = %s\n\n"
            "[telegram night]\ntoken = %s\nwebhook_secret = %s\napi_base = %s\n\n"
            "[schedule night]\ntimezone = UTC\nhours = %s 03:00-03:01\n"
            "away_message = We are closed now.\naccounts = telegram:night\n\n"
            "[survey main]\naccounts = telegram:t, telegram:night, whatsapp:%s, viber:%s\n"
            "question = How did we do?\nquestion_uk = Як ми впоралися?\n"
            "buttons_label = Rate us\ncomment_window_s = 600\n\n"
            "[survey plain]\naccounts = telegram:plain\nquestion = Rate us.\n"
            "reply_hint = Reply 1-5.\nbuttons = false\ncomment_window_s = 0\n",
            TG_TOKEN, TG_SECRET, db_fake_url(W.tg), TG_PLAIN, TG_SECRET, db_fake_url(W.tg),
            PNID, WA_TOKEN, WA_SECRET, PNID, db_fake_url(W.wa), VB_ACCOUNT, VB_TOKEN,
            db_fake_url(W.vb), TG_NIGHT, TG_SECRET, db_fake_url(W.tg), days[tm.tm_wday], PNID,
            VB_ACCOUNT);
    fclose(f);
}

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
    /* Tokens, the customers' comments and phone numbers stay out of the log. */
    static const char *const never[] = {"DoNotLog", "secret-words", "1650555010", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    unlink(W.conf);
    rmdir(W.dir);
    db_fake_stop(W.tg);
    db_fake_stop(W.wa);
    db_fake_stop(W.vb);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

static int api(const char *method, const char *path, const char *body, json_t **out)
{
    return db_test_api(W.d.port, API_TOKEN, method, path, body, out);
}

static void post_hook(const char *path, const char *header, const char *body)
{
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", path, headers, body, strlen(body), &r);
    if (r.status != 200) fail_msg("%s answered %d %s", path, r.status, r.body ? r.body : "");
    db_test_resp_clear(&r);
}

static void settle(void)
{
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-dispatch", 10000);
}

static long long update_id = 100;

/* A Telegram customer's text to bot account (language lang). */
static void tg_text(const char *account, long long chat, const char *lang, const char *text)
{
    char body[1024], path[128];
    long long u = ++update_id;
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"Olena\"},"
             "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"Olena\","
             "\"language_code\":\"%s\"},\"text\":\"%s\"}}",
             u, u, chat, chat, lang, text);
    snprintf(path, sizeof path, "/webhooks/telegram/%s", account);
    post_hook(path, "X-Telegram-Bot-Api-Secret-Token: " TG_SECRET, body);
    settle();
}

/* A Telegram customer's tap on a button with data under our message msg_id. */
static void tg_tap(long long chat, long long msg_id, const char *data)
{
    char body[1024];
    long long u = ++update_id;
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"callback_query\":{\"id\":\"cq%lld\",\"from\":{\"id\":%lld,"
             "\"is_bot\":false,\"first_name\":\"Olena\"},\"message\":{\"message_id\":%lld,"
             "\"date\":1795365000,\"chat\":{\"id\":%lld,\"type\":\"private\"},\"text\":\"q\"},"
             "\"chat_instance\":\"-1\",\"data\":\"%s\"}}",
             u, u, chat, msg_id, chat, data);
    post_hook("/webhooks/telegram/t", "X-Telegram-Bot-Api-Secret-Token: " TG_SECRET, body);
    settle();
}

static void wa_post(const char *body)
{
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(WA_SECRET, strlen(WA_SECRET), body, strlen(body), mac);
    db_hex_encode(mac, 32, hex);
    snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    post_hook("/webhooks/whatsapp/" PNID, h, body);
    settle();
}

static void vb_post(const char *body)
{
    unsigned char mac[32];
    char hex[65], h[160];
    db_hmac_sha256(VB_TOKEN, strlen(VB_TOKEN), body, strlen(body), mac);
    db_hex_encode(mac, 32, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    post_hook("/webhooks/viber/" VB_ACCOUNT, h, body);
    settle();
}

/* A WhatsApp customer's text, stamped ts by Meta. */
static void wa_text(const char *customer, const char *wamid, long long ts)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"
             "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
             "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"" PNID "\"},"
             "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%lld\","
             "\"type\":\"text\",\"text\":{\"body\":\"hello\"}}]}}]}]}",
             customer, wamid, ts);
    wa_post(body);
}

/* Closes conv through the API: 200. */
static void close_conv(const char *conv)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/conversations/%s/close", conv);
    assert_int_equal(api("POST", path, NULL, NULL), 200);
}

/* GET /v1/conversations/{conv} (new reference). */
static json_t *conversation(const char *conv)
{
    char path[256];
    json_t *o = NULL;
    snprintf(path, sizeof path, "/v1/conversations/%s", conv);
    assert_int_equal(api("GET", path, NULL, &o), 200);
    assert_non_null(o);
    return o;
}

static const char *state_of(const json_t *o)
{
    return json_string_value(json_object_get(o, "state"));
}

/* Sends an agent's message after everything queued before it for conv and waits until it is
 * sent: the sender keeps a conversation's order, so whatever was queued for conv earlier
 * reached the fake by then. */
static void barrier(const char *conv)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "{\"conversation\":\"%s\",\"text\":\"barrier\"}", conv);
    int status;
    char *body = db_test_post_json(W.d.port, API_TOKEN, "/v1/messages", cmd, &status);
    assert_int_equal(status, 202);
    json_t *j = json_loads(body, 0, NULL);
    json_decref(db_test_wait_message(W.d.port, API_TOKEN,
                                     json_string_value(json_object_get(j, "id")), "sent", 10000));
    json_decref(j);
    free(body);
}

/* Bodies of the requests f recorded whose path holds path and whose body holds needle, in
 * order (new reference: an array). */
static json_t *bodies(struct db_fake *f, const char *path, const char *needle)
{
    json_t *out = json_array();
    for (size_t i = 0;; i++) {
        struct db_fake_request r;
        if (db_fake_get(f, i, &r) != DB_OK) break;
        if (strstr(r.path, path) && (!needle || strstr(r.body, needle)))
            json_array_append_new(out, json_loads(r.body, 0, NULL));
        db_fake_request_clear(&r);
    }
    return out;
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

/* The members of P:stats:csat that mention conv (new reference: an array of strings). */
static json_t *csat_of(const char *conv)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "ZRANGE deskbridge:stats:csat 0 -1");
    assert_true(r && r->type == REDIS_REPLY_ARRAY);
    json_t *out = json_array();
    char needle[300];
    snprintf(needle, sizeof needle, "|%s|", conv);
    for (size_t i = 0; i < r->elements; i++)
        if (strstr(r->element[i]->str, needle))
            json_array_append_new(out, json_string(r->element[i]->str));
    freeReplyObject(r);
    return out;
}

/* Checks a csat member: "<score>|<conv>|<ms>|<agent>|<platform:account>". */
static void assert_csat(const char *m, const char *score, const char *conv, const char *agent,
                        const char *account)
{
    char head[300], tail[300];
    snprintf(head, sizeof head, "%s|%s|", score, conv);
    snprintf(tail, sizeof tail, "|%s|%s", agent, account);
    if (strncmp(m, head, strlen(head)) != 0 || strlen(m) < strlen(tail) ||
        strcmp(m + strlen(m) - strlen(tail), tail) != 0)
        fail_msg("csat member %s, want %s<ms>%s", m, head, tail);
    const char *ms = m + strlen(head);
    assert_true(strtoll(ms, NULL, 10) > 1700000000000LL);
}

/* ---- Telegram ---- */

#define TG_CONV "telegram:t:501"

static void telegram_close_asks_once_and_tap_and_comment_are_recorded(void **state)
{
    (void)state;
    /* An agent takes the customer's conversation, so the answer names them. */
    assert_int_equal(api("PUT", "/v1/agents/anna", "{\"name\":\"Anna\",\"capacity\":3}", NULL), 200);
    assert_int_equal(api("POST", "/v1/agents/anna/presence", "{\"presence\":\"online\"}", NULL), 200);
    tg_text("t", 501, "uk-UA", "hello");
    json_t *o = conversation(TG_CONV);
    assert_string_equal(json_string_value(json_object_get(o, "agent")), "anna");
    json_decref(o);

    db_fake_reset(W.tg);
    close_conv(TG_CONV);
    close_conv(TG_CONV); /* already closed: asks nothing more */
    barrier(TG_CONV);
    json_t *qs = bodies(W.tg, "/sendMessage", "csat-");
    assert_int_equal(json_array_size(qs), 1);
    /* In the customer's language (uk from uk-UA), five inline buttons. */
    assert_json(json_array_get(qs, 0),
                "{\"chat_id\":501,\"text\":\"Як ми впоралися?\",\"reply_markup\":{\"inline_keyboard\":["
                "[{\"text\":\"1\",\"callback_data\":\"csat-1\"}],[{\"text\":\"2\",\"callback_data\":\"csat-2\"}],"
                "[{\"text\":\"3\",\"callback_data\":\"csat-3\"}],[{\"text\":\"4\",\"callback_data\":\"csat-4\"}],"
                "[{\"text\":\"5\",\"callback_data\":\"csat-5\"}]]}}");
    json_decref(qs);
    o = conversation(TG_CONV);
    assert_string_equal(state_of(o), "closed");
    json_t *sv = json_object_get(o, "survey");
    assert_string_equal(json_string_value(json_object_get(sv, "state")), "pending");
    json_decref(o);

    /* The question is message 1 of the fake; the customer taps 4 under it. */
    tg_tap(501, 1, "csat-4");
    o = conversation(TG_CONV);
    assert_string_equal(state_of(o), "closed");
    assert_null(json_object_get(o, "reopened_at"));
    sv = json_object_get(o, "survey");
    assert_int_equal(json_integer_value(json_object_get(sv, "score")), 4);
    assert_string_equal(json_string_value(json_object_get(sv, "agent")), "anna");
    assert_string_equal(json_string_value(json_object_get(sv, "state")), "answered");
    assert_true(json_integer_value(json_object_get(sv, "answered_at")) > 0);
    json_decref(o);
    json_t *m = csat_of(TG_CONV);
    assert_int_equal(json_array_size(m), 1);
    assert_csat(json_string_value(json_array_get(m, 0)), "4", TG_CONV, "anna", "telegram:t");
    json_decref(m);

    /* A second tap changes nothing; the text after the answer is its comment. */
    tg_tap(501, 1, "csat-2");
    tg_text("t", 501, "uk-UA", "Quick and kind, secret-words");
    o = conversation(TG_CONV);
    assert_string_equal(state_of(o), "closed");
    sv = json_object_get(o, "survey");
    assert_int_equal(json_integer_value(json_object_get(sv, "score")), 4);
    assert_string_equal(json_string_value(json_object_get(sv, "comment")),
                        "Quick and kind, secret-words");
    assert_int_equal(json_integer_value(json_object_get(o, "unread")), 0);
    json_decref(o);
    m = csat_of(TG_CONV);
    assert_int_equal(json_array_size(m), 1);
    json_decref(m);

    /* The agent it was closed from learns the outcome in their inbox. */
    json_t *last = NULL;
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                 "XREVRANGE deskbridge:agent:{anna} + - COUNT 1");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    const redisReply *f = r->element[0]->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, "data") == 0) last = json_loads(f->element[i + 1]->str, 0, NULL);
    freeReplyObject(r);
    assert_non_null(last);
    assert_string_equal(json_string_value(json_object_get(last, "type")), "survey");
    assert_int_equal(json_integer_value(json_object_get(last, "score")), 4);
    json_decref(last);

    /* Past the comment, the customer's next message is a new conversation as before. */
    tg_text("t", 501, "uk-UA", "one more question");
    o = conversation(TG_CONV);
    assert_string_not_equal(state_of(o), "closed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "survey"), "score")), 4);
    json_decref(o);
    /* Nobody takes the conversations of the next tests. */
    assert_int_equal(api("POST", "/v1/agents/anna/presence", "{\"presence\":\"offline\"}", NULL), 200);
}

static void telegram_text_answer_and_a_new_conversation_cancels(void **state)
{
    (void)state;
    /* A text that is only a digit 1-5 is an answer. */
    tg_text("t", 502, "en", "hi");
    db_fake_reset(W.tg);
    close_conv("telegram:t:502");
    barrier("telegram:t:502");
    json_t *qs = bodies(W.tg, "/sendMessage", "csat-");
    assert_int_equal(json_array_size(qs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(qs, 0), "text")),
                        "How did we do?");
    json_decref(qs);
    tg_text("t", 502, "en", " 4 ");
    json_t *o = conversation("telegram:t:502");
    assert_string_equal(state_of(o), "closed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "survey"), "score")), 4);
    /* closed while queued: no agent */
    assert_true(json_is_null(json_object_get(json_object_get(o, "survey"), "agent")));
    json_decref(o);
    json_t *m = csat_of("telegram:t:502");
    assert_int_equal(json_array_size(m), 1);
    assert_csat(json_string_value(json_array_get(m, 0)), "4", "telegram:t:502", "", "telegram:t");
    json_decref(m);

    /* Anything else reopens as before and the survey is over: a later "5" is a message of
     * the new conversation, not an answer. */
    tg_text("t", 503, "en", "hi");
    close_conv("telegram:t:503");
    tg_text("t", 503, "en", "my parcel is still missing");
    o = conversation("telegram:t:503");
    assert_string_not_equal(state_of(o), "closed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "survey"), "state")),
                        "cancelled");
    json_decref(o);
    tg_text("t", 503, "en", "5");
    o = conversation("telegram:t:503");
    assert_string_not_equal(state_of(o), "closed");
    assert_null(json_object_get(json_object_get(o, "survey"), "score"));
    assert_int_equal(json_integer_value(json_object_get(o, "unread")), 2);
    json_decref(o);
    m = csat_of("telegram:t:503");
    assert_int_equal(json_array_size(m), 0);
    json_decref(m);
}

/* Outside business hours the survey's answer and comment get no away message: they are not a
 * customer's new question.  What follows the comment is, and gets one. */
static void the_answer_and_comment_get_no_away_message(void **state)
{
    (void)state;
    const char *conv = "telegram:night:601", *sends = "/bot" TG_NIGHT "/sendMessage";
    redisContext *c = db_test_redis_ctx(W.redis);
    tg_text("night", 601, "en", "hi");
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    barrier(conv);
    json_t *away = bodies(W.tg, sends, "We are closed now.");
    assert_int_equal(json_array_size(away), 1);
    json_decref(away);
    close_conv(conv);
    barrier(conv);
    json_t *qs = bodies(W.tg, sends, "csat-");
    assert_int_equal(json_array_size(qs), 1);
    json_decref(qs);
    /* As if the hours had opened and closed again since: the next away message is due. */
    redisReply *r = redisCommand(c, "EVAL %s 0", "for _, k in ipairs(redis.call('KEYS', "
                                 "'deskbridge:autoreply:away:telegram:night:*')) do "
                                 "redis.call('DEL', k) end");
    assert_non_null(r);
    freeReplyObject(r);

    tg_text("night", 601, "en", "5");
    tg_text("night", 601, "en", "quick and kind");
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    barrier(conv);
    away = bodies(W.tg, sends, "We are closed now.");
    assert_int_equal(json_array_size(away), 1);
    json_decref(away);
    json_t *o = conversation(conv);
    assert_string_equal(state_of(o), "closed");
    json_t *sv = json_object_get(o, "survey");
    assert_int_equal(json_integer_value(json_object_get(sv, "score")), 5);
    assert_string_equal(json_string_value(json_object_get(sv, "comment")), "quick and kind");
    json_decref(o);

    tg_text("night", 601, "en", "one more question");
    db_test_wait_events_read(db_test_redis_ctx(W.redis), "deskbridge-autoreply", 10000);
    barrier(conv);
    away = bodies(W.tg, sends, "We are closed now.");
    assert_int_equal(json_array_size(away), 2);
    json_decref(away);
}

static void telegram_without_buttons_asks_in_text(void **state)
{
    (void)state;
    tg_text("plain", 601, "en", "hi");
    db_fake_reset(W.tg);
    close_conv("telegram:plain:601");
    barrier("telegram:plain:601");
    json_t *qs = bodies(W.tg, "/sendMessage", "Rate us.");
    assert_int_equal(json_array_size(qs), 1);
    assert_json(json_array_get(qs, 0), "{\"chat_id\":601,\"text\":\"Rate us.\\nReply 1-5.\"}");
    json_decref(qs);
    tg_text("plain", 601, "en", "2");
    json_t *o = conversation("telegram:plain:601");
    assert_string_equal(state_of(o), "closed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "survey"), "score")), 2);
    json_decref(o);
    /* No comment window here: the next text is a new conversation, not a comment. */
    tg_text("plain", 601, "en", "and another thing");
    o = conversation("telegram:plain:601");
    assert_string_not_equal(state_of(o), "closed");
    json_t *sv = json_object_get(o, "survey");
    assert_string_equal(json_string_value(json_object_get(sv, "state")), "done");
    assert_null(json_object_get(sv, "comment"));
    assert_int_equal(json_integer_value(json_object_get(sv, "score")), 2);
    json_decref(o);
}

/* ---- WhatsApp ---- */

static void whatsapp_inside_the_window_asks_outside_skips(void **state)
{
    (void)state;
    long long now = (long long)time(NULL);
    const char *in = "whatsapp:" PNID ":16505550101", *out = "whatsapp:" PNID ":16505550102";
    wa_text("16505550101", "wamid.S1", now - 60);
    /* Meta stamped this one 24 h 01 min ago: the window has closed. */
    wa_text("16505550102", "wamid.S2", now - (24 * 3600 + 60));
    db_fake_reset(W.wa);
    close_conv(in);
    close_conv(out);
    barrier(in);
    json_t *qs = bodies(W.wa, "/messages", "csat-");
    assert_int_equal(json_array_size(qs), 1);
    assert_json(json_array_get(qs, 0),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                "\"to\":\"16505550101\",\"type\":\"interactive\",\"interactive\":{\"type\":\"list\","
                "\"body\":{\"text\":\"How did we do?\"},\"action\":{\"button\":\"Rate us\",\"sections\":[{\"rows\":["
                "{\"id\":\"csat-1\",\"title\":\"1\"},{\"id\":\"csat-2\",\"title\":\"2\"},"
                "{\"id\":\"csat-3\",\"title\":\"3\"},{\"id\":\"csat-4\",\"title\":\"4\"},"
                "{\"id\":\"csat-5\",\"title\":\"5\"}]}]}}}");
    json_decref(qs);
    /* Skipped, recorded and counted; nothing was queued for the late customer. */
    json_t *o = conversation(out);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "survey"), "state")),
                        "skipped");
    json_decref(o);
    qs = bodies(W.wa, "/messages", "16505550102");
    assert_int_equal(json_array_size(qs), 0);
    json_decref(qs);
    assert_int_equal(db_test_daemon_log_count(&W.d, "survey skipped"), 1);

    /* The customer picks row 5 of the list (Meta's list_reply). */
    wa_post("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"
            "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
            "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"" PNID "\"},"
            "\"contacts\":[{\"profile\":{\"name\":\"Kerry\"},\"wa_id\":\"16505550101\"}],"
            "\"messages\":[{\"from\":\"16505550101\",\"id\":\"wamid.TAP9\",\"timestamp\":\"1795365000\","
            "\"type\":\"interactive\",\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.OUT1\"},"
            "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"csat-5\",\"title\":\"5\"}}}]}}]}]}");
    o = conversation(in);
    assert_string_equal(state_of(o), "closed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "survey"), "score")), 5);
    json_decref(o);
}

/* ---- Viber ---- */

static void viber_keyboard_and_tap(void **state)
{
    (void)state;
    const char *conv = "viber:" VB_ACCOUNT ":" VB_USER;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"event\":\"message\",\"timestamp\":1795365000123,\"chat_hostname\":\"SN-1\","
             "\"message_token\":5491234567890123001,\"sender\":{\"id\":\"" VB_USER "\","
             "\"name\":\"Ann\",\"language\":\"en\",\"country\":\"GB\",\"api_version\":10},"
             "\"message\":{\"type\":\"text\",\"text\":\"hello\"},\"silent\":false}");
    vb_post(body);
    db_fake_reset(W.vb);
    close_conv(conv);
    barrier(conv);
    json_t *qs = bodies(W.vb, "/send_message", "csat-");
    assert_int_equal(json_array_size(qs), 1);
    json_t *q = json_array_get(qs, 0);
    assert_string_equal(json_string_value(json_object_get(q, "text")), "How did we do?");
    json_t *kb = json_object_get(json_object_get(q, "keyboard"), "Buttons");
    assert_int_equal(json_array_size(kb), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(kb, 2), "ActionBody")),
                        "csat-3");
    const char *tracking = json_string_value(json_object_get(q, "tracking_data"));
    assert_non_null(tracking);

    /* The tap: a text carrying ActionBody and our tracking_data. */
    snprintf(body, sizeof body,
             "{\"event\":\"message\",\"timestamp\":1795365000999,\"chat_hostname\":\"SN-1\","
             "\"message_token\":5491234567890123002,\"sender\":{\"id\":\"" VB_USER "\","
             "\"name\":\"Ann\",\"language\":\"en\",\"country\":\"GB\",\"api_version\":10},"
             "\"message\":{\"type\":\"text\",\"text\":\"csat-3\",\"tracking_data\":\"%s\"},"
             "\"silent\":false}", tracking);
    json_decref(qs);
    vb_post(body);
    json_t *o = conversation(conv);
    assert_string_equal(state_of(o), "closed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "survey"), "score")), 3);
    json_decref(o);
}

/* ---- /metrics and /v1/stats (the last test: it counts what the others did) ---- */

static void metrics_and_stats_count_the_surveys(void **state)
{
    (void)state;
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    /* asked: 501, 502, 503, plain 601, night 601, whatsapp in-window, viber; answered: 501,
     * 502, plain 601, night 601 (5), whatsapp, viber; comments on 501 and night 601; one
     * skipped for the window */
    static const char *const want[] = {
        "deskbridge_surveys_total{outcome=\"sent\"} 7\n",
        "deskbridge_surveys_total{outcome=\"answered\"} 6\n",
        "deskbridge_surveys_total{outcome=\"commented\"} 2\n",
        "deskbridge_surveys_total{outcome=\"skipped_window\"} 1\n",
        "deskbridge_survey_score_count 6\n",
        "deskbridge_survey_score_sum 23\n",
        "deskbridge_survey_score_bucket{le=\"4\"} 4\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(r.body, want[i])) fail_msg("/metrics lacks %s", want[i]);
    db_test_resp_clear(&r);

    /* The answers land in the statistics: 4, 4, 2, 5, 3, 5 overall, anna's 4 as hers. */
    json_t *o = NULL;
    assert_int_equal(api("GET", "/v1/stats", NULL, &o), 200);
    json_t *day = json_object_get(json_object_get(o, "satisfaction"), "day");
    assert_int_equal(json_integer_value(json_object_get(day, "count")), 6);
    assert_true(json_number_value(json_object_get(day, "average")) > 3.83 &&
                json_number_value(json_object_get(day, "average")) < 3.84);
    json_t *anna = json_object_get(json_object_get(json_object_get(json_object_get(o, "agents"),
                                                                   "anna"), "satisfaction"), "day");
    assert_int_equal(json_integer_value(json_object_get(anna, "count")), 1);
    assert_true(json_number_value(json_object_get(anna, "average")) == 4.0);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(telegram_close_asks_once_and_tap_and_comment_are_recorded),
        cmocka_unit_test(telegram_text_answer_and_a_new_conversation_cancels),
        cmocka_unit_test(telegram_without_buttons_asks_in_text),
        cmocka_unit_test(the_answer_and_comment_get_no_away_message),
        cmocka_unit_test(whatsapp_inside_the_window_asks_outside_skips),
        cmocka_unit_test(viber_keyboard_and_tap),
        cmocka_unit_test(metrics_and_stats_count_the_surveys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
