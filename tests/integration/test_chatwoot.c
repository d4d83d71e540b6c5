/* The Chatwoot bridge end to end: the real daemon between fake messengers (Telegram, WhatsApp,
 * Viber) and the fake Chatwoot (tests/support/fake_chatwoot.c, built from Chatwoot's source),
 * over a real redis-server.
 *   - customers' texts and files reach their Chatwoot conversation (contact identifier = the
 *     deskbridge conversation, WhatsApp's phone number), edits and reactions as text;
 *   - a lost mapping is rebuilt without a second contact or conversation;
 *   - a creation whose answer never came is not made twice;
 *   - an agent's reply from the signed callback reaches the messenger, once even when the
 *     callback comes twice; private notes and the bridge's own messages are not sent;
 *   - bad, old and missing signatures are refused;
 *   - unsupported content is answered 200 and marked failed in Chatwoot;
 *   - the reply's status reaches its Chatwoot message. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "fake_chatwoot.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "util/crypto.h"

#define API_TOKEN "cw-test-api-token-0123456789"
#define CW_TOKEN "cwAccessTokenDoNotLog-77"
#define CW_SECRET "cwInboxSecretDoNotLog-0123456789"
#define TG_SECRET "tg-cw-secret_77"
#define WA_TOKEN "EAAGcwTokenDoNotLog"
#define WA_SECRET "wa-app-secret-DoNotLog"
#define WA_PNID "106540352242922"
#define WA_CUSTOMER "16505551234"
#define VB_TOKEN "4a1f7c2e9b3d-vbCwDoNotLog-5e8f0a6b1c7d"
#define VB_USER "01234567890A+b/cdefGHi=="
#define ACCOUNT_ID 3
#define INBOX_ID 7
#define HOOK "/bridges/chatwoot/desk"
#define FILE_BYTES "\x89PNG-fake-image-bytes-0123456789"

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg, *wa, *vb;
    struct db_cw_fake *cw;
    struct db_test_daemon d;
    int running;
    char conf[256], token_file[256], env[512];
    char allow[96]; /* the fake Viber host: the guard's test exception (docs/media.md) */
};

static struct world W;

static const char *const never_logged[] = {CW_TOKEN, CW_SECRET, WA_TOKEN, WA_SECRET, VB_TOKEN,
                                           "customer-words", "agent-words", WA_CUSTOMER, NULL};

static unsigned long sum_of(const char *s, size_t n)
{
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) v += (unsigned char)s[i];
    return v;
}

static void write_conf(const char *extra)
{
    FILE *f = fopen(W.token_file, "w");
    assert_non_null(f);
    fputs(CW_TOKEN "\n", f);
    fclose(f);
    f = fopen(W.conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\napi_token = " API_TOKEN "\nretry_base_ms = 100\nretry_max_ms = 400\n"
            "[telegram one]\ntoken = 7000000001:AAcwtest\nwebhook_secret = " TG_SECRET
            "\napi_base = %s\n"
            "[whatsapp " WA_PNID "]\naccess_token = " WA_TOKEN "\napp_secret = " WA_SECRET
            "\nverify_token = vt-cw\napi_base = %s\n"
            "[telegram two]\ntoken = 7000000002:AAcwtest\nwebhook_secret = " TG_SECRET
            "\napi_base = %s\n"
            "[viber shop]\nauth_token = " VB_TOKEN "\napi_base = %s\n"
            "[schedule always]\ntimezone = UTC\nhours = mon-sun 00:00-24:00\n"
            "greeting = greeting-words {customer_name}\naccounts = telegram:one, telegram:two\n"
            "[chatwoot desk]\nurl = %s\naccount_id = %d\ninbox_id = %d\n"
            "api_access_token_file = %s\nwebhook_secret = " CW_SECRET "\n"
            "accounts = telegram:one, whatsapp:" WA_PNID ", viber:shop\n"
            "deskbridge_automation = false\nretry_base_ms = 100\nretry_max_ms = 1000\n"
            "timeout_ms = 1500\nclaim_idle_ms = 1500\n"
            /* Chatwoot before 4.13 signs nothing: allowed only where the section says so. */
            "[chatwoot legacy]\nurl = %s\naccount_id = %d\ninbox_id = %d\n"
            "api_access_token = " CW_TOKEN "\naccounts = telegram:two\nallow_unsigned = true\n%s",
            db_fake_url(W.tg), db_fake_url(W.wa), db_fake_url(W.tg), db_fake_url(W.vb),
            db_cw_fake_url(W.cw),
            ACCOUNT_ID, INBOX_ID, W.token_file, db_cw_fake_url(W.cw), ACCOUNT_ID, INBOX_ID,
            extra ? extra : "");
    fclose(f);
}

static void start_daemon(void)
{
    const char *env[] = {W.env, W.allow, NULL};
    const char *args[] = {"--config", W.conf, NULL};
    db_test_daemon_start(&W.d, env, args, 0);
    W.running = 1;
}

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    W.redis = db_test_redis_start(NULL);
    W.tg = db_fake_start();
    W.wa = db_fake_start();
    W.vb = db_fake_start();
    W.cw = db_cw_fake_start(ACCOUNT_ID, INBOX_ID, CW_TOKEN);
    assert_non_null(W.tg);
    assert_non_null(W.wa);
    assert_non_null(W.vb);
    assert_non_null(W.cw);
    /* Files: Telegram's getFile + download, WhatsApp's media lookup + download, Viber's URL. */
    db_fake_rule(W.tg, "POST", "/getFile", -1, 200,
                 "{\"ok\":true,\"result\":{\"file_id\":\"TGFILE1\",\"file_path\":\"photos/p1.jpg\"}}",
                 0, 0);
    db_fake_rule(W.tg, "GET", "/file/bot", -1, 200, FILE_BYTES, 0, 0);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":5{n}}}");
    char lookup[512];
    snprintf(lookup, sizeof lookup,
             "{\"url\":\"%s/dl/4490709327718\",\"mime_type\":\"image/jpeg\",\"file_size\":%zu,"
             "\"id\":\"4490709327718\",\"messaging_product\":\"whatsapp\"}",
             db_fake_url(W.wa), sizeof FILE_BYTES - 1);
    db_fake_rule(W.wa, "GET", "/dl/4490709327718", -1, 200, FILE_BYTES, 0, 0);
    db_fake_rule(W.wa, "GET", "/4490709327718", -1, 200, lookup, 0, 0);
    db_fake_default(W.wa, 200,
                    "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"" WA_CUSTOMER
                    "\",\"wa_id\":\"" WA_CUSTOMER "\"}],\"messages\":[{\"id\":\"wamid.OUT{n}\"}]}");
    db_fake_rule(W.vb, "GET", "/img/p1.jpg", -1, 200, FILE_BYTES, 0, 0);
    db_fake_default(W.vb, 200,
                    "{\"status\":0,\"status_message\":\"ok\",\"message_token\":54912345600{n}}");
    snprintf(W.conf, sizeof W.conf, "/tmp/deskbridge-cw-%d.conf", (int)getpid());
    snprintf(W.token_file, sizeof W.token_file, "/tmp/deskbridge-cw-%d.token", (int)getpid());
    snprintf(W.env, sizeof W.env, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    /* Viber's files are URLs a webhook names, fetched only through the SSRF guard: the fake
     * Viber host on 127.0.0.1 is its one exception. */
    snprintf(W.allow, sizeof W.allow, "DESKBRIDGE_TEST_ALLOW_FETCH=127.0.0.1:%d",
             db_fake_port(W.vb));
    write_conf(NULL);
    start_daemon();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (W.running) db_test_daemon_stop_clean(&W.d, never_logged);
    unlink(W.conf);
    unlink(W.token_file);
    db_fake_stop(W.tg);
    db_fake_stop(W.wa);
    db_fake_stop(W.vb);
    db_cw_fake_stop(W.cw);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- customers ---- */

static void tg_post_to(const char *account, const char *update)
{
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " TG_SECRET, NULL};
    struct db_test_resp r;
    char path[64];
    snprintf(path, sizeof path, "/webhooks/telegram/%s", account);
    db_test_http(W.d.port, "POST", path, headers, update, strlen(update), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
}

static void tg_post(const char *update)
{
    tg_post_to("one", update);
}

static void tg_text(long long update_id, long long chat, const char *text)
{
    char body[768];
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":%lld,\"type\":\"private\"},\"from\":{\"id\":%lld,"
             "\"is_bot\":false,\"first_name\":\"Olena\"},\"text\":\"%s\"}}",
             update_id, update_id, chat, chat, text);
    tg_post(body);
}

static void tg_photo(long long update_id, long long chat, const char *caption)
{
    char body[768];
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":%lld,\"type\":\"private\"},\"from\":{\"id\":%lld,"
             "\"is_bot\":false,\"first_name\":\"Olena\"},\"photo\":[{\"file_id\":\"TGFILE1\","
             "\"file_unique_id\":\"u1\",\"width\":90,\"height\":90,\"file_size\":32}],"
             "\"caption\":\"%s\"}}",
             update_id, update_id, chat, chat, caption);
    tg_post(body);
}

/* A signed WhatsApp webhook whose value holds member (messages or statuses) = array_json. */
static void wa_post_from(const char *customer, const char *member, const char *array_json)
{
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA1\","
                         "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
                         "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881\","
                         "\"phone_number_id\":\"" WA_PNID "\"},\"contacts\":[{\"profile\":"
                         "{\"name\":\"Kerry Fisher\"},\"wa_id\":\"%s\"}],"
                         "\"%s\":[%s]}}]}]}",
                         customer, member, array_json) > 0);
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(WA_SECRET, strlen(WA_SECRET), body, strlen(body), mac);
    db_hex_encode(mac, 32, hex);
    snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/whatsapp/" WA_PNID, headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    free(body);
}

static void vb_post(const char *message_json, const char *token)
{
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"event\":\"message\",\"timestamp\":1795365000123,\"message_token\":%s,"
                         "\"sender\":{\"id\":\"" VB_USER "\",\"name\":\"Taras\",\"language\":\"uk\","
                         "\"country\":\"UA\",\"api_version\":10},\"message\":%s,\"silent\":false}",
                         token, message_json) > 0);
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(VB_TOKEN, strlen(VB_TOKEN), body, strlen(body), mac);
    db_hex_encode(mac, 32, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/viber/shop", headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    free(body);
}

static void wa_post_member(const char *member, const char *array_json)
{
    wa_post_from(WA_CUSTOMER, member, array_json);
}

static void wa_post(const char *message_json)
{
    wa_post_member("messages", message_json);
}

/* A customer's message stamped now, as Meta stamps what it just received: replies to it fall
 * inside WhatsApp's 24-hour window, which the gateway enforces.  message_json has one %lld
 * where the timestamp goes. */
static void wa_post_now(const char *message_json)
{
    char *m = NULL;
    const char *at = strstr(message_json, "%lld");
    assert_non_null(at);
    assert_true(asprintf(&m, "%.*s%lld%s", (int)(at - message_json), message_json,
                         (long long)time(NULL), at + 4) > 0);
    wa_post(m);
    free(m);
}

/* ---- Chatwoot's side ---- */

struct conv_wait {
    const char *identifier;
    size_t n;
};

static int conv_has(void *arg)
{
    struct conv_wait *w = arg;
    long c = db_cw_fake_conversation_of(W.cw, w->identifier);
    struct db_cw_msg m[1];
    return c && db_cw_fake_messages(W.cw, c, m, 0) >= w->n;
}

/* Waits for conversation of identifier to hold n messages; returns its display id. */
static long wait_messages(const char *identifier, size_t n, int timeout_ms)
{
    struct conv_wait w = {identifier, n};
    if (!db_test_wait(conv_has, &w, timeout_ms))
        fail_msg("conversation %s: fewer than %zu messages after %d ms", identifier, n,
                 timeout_ms);
    return db_cw_fake_conversation_of(W.cw, identifier);
}

static int cw_port(void)
{
    int port = 0;
    assert_int_equal(sscanf(db_cw_fake_url(W.cw), "http://127.0.0.1:%d", &port), 1);
    return port;
}

/* A contact and conversation made through the fake's API, as the bridge makes them. */
static long make_conversation(const char *identifier)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"inbox_id\":%d,\"identifier\":\"%s\",\"name\":\"X\",\"source_id\":\"%s\"}",
             INBOX_ID, identifier, identifier);
    const char *h[] = {"Content-Type: application/json", "api_access_token: " CW_TOKEN, NULL};
    struct db_test_resp r;
    char path[64];
    snprintf(path, sizeof path, "/api/v1/accounts/%d/contacts", ACCOUNT_ID);
    db_test_http(cw_port(), "POST", path, h, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    long contact = (long)json_integer_value(
        json_object_get(json_object_get(json_object_get(j, "payload"), "contact"), "id"));
    json_decref(j);
    db_test_resp_clear(&r);
    snprintf(body, sizeof body, "{\"inbox_id\":%d,\"contact_id\":%ld,\"source_id\":\"%s\"}",
             INBOX_ID, contact, identifier);
    snprintf(path, sizeof path, "/api/v1/accounts/%d/conversations", ACCOUNT_ID);
    db_test_http(cw_port(), "POST", path, h, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    long conv = (long)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    db_test_resp_clear(&r);
    return conv;
}

static int callback(long msg, const char *secret, long ts_offset, int bad_sig)
{
    return db_cw_fake_callback(W.cw, msg, W.d.port, HOOK, secret, ts_offset, bad_sig);
}

/* ---- Chatwoot to customer ---- */

static void agent_reply_reaches_telegram_once(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:one:4201");
    long msg = db_cw_fake_agent_message(W.cw, conv, "agent-words hello", 0, NULL, NULL);
    assert_true(msg > 0);
    size_t before = db_fake_count(W.tg, "/sendMessage");
    assert_int_equal(callback(msg, CW_SECRET, 0, 0), 200);
    /* Chatwoot does not retry, but a proxy or a second process may deliver twice. */
    assert_int_equal(callback(msg, CW_SECRET, 0, 0), 200);
    assert_true(db_fake_wait(W.tg, "/sendMessage", before + 1, 5000) >= before + 1);
    usleep(500 * 1000);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), before + 1);
    struct db_fake_request q;
    int found = 0;
    for (size_t i = 0; db_fake_get(W.tg, i, &q) == 0; i++) {
        if (strstr(q.path, "/sendMessage") && strstr(q.body, "agent-words hello")) {
            assert_non_null(strstr(q.body, "4201"));
            found++;
        }
        db_fake_request_clear(&q);
    }
    assert_int_equal(found, 1);
}

static void attachment_goes_out_as_media(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:one:4202");
    long msg = db_cw_fake_agent_message(W.cw, conv, "agent-words see", 0, "image",
                                        "https://chatwoot.example.com/rails/blob/1/a.png");
    size_t before = db_fake_count(W.tg, "/sendPhoto");
    assert_int_equal(callback(msg, CW_SECRET, 0, 0), 200);
    assert_true(db_fake_wait(W.tg, "/sendPhoto", before + 1, 5000) >= before + 1);
    struct db_fake_request q;
    int found = 0;
    for (size_t i = 0; db_fake_get(W.tg, i, &q) == 0; i++) {
        if (strstr(q.path, "/sendPhoto") && strstr(q.body, "rails/blob/1/a.png")) found++;
        db_fake_request_clear(&q);
    }
    assert_int_equal(found, 1);
}

static void bad_old_and_missing_signatures_are_refused(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:one:4203");
    long msg = db_cw_fake_agent_message(W.cw, conv, "agent-words forged", 0, NULL, NULL);
    size_t before = db_fake_count(W.tg, "/sendMessage");
    assert_int_equal(callback(msg, CW_SECRET, 0, 1), 401);           /* other body */
    assert_int_equal(callback(msg, CW_SECRET "x", 0, 0), 401);       /* other secret */
    assert_int_equal(callback(msg, CW_SECRET, -301, 0), 401);        /* replayed later */
    assert_int_equal(callback(msg, CW_SECRET, 3600, 0), 401);        /* from the future */
    assert_int_equal(callback(msg, NULL, 0, 0), 401);                /* unsigned */
    usleep(300 * 1000);
    assert_int_equal(db_fake_count(W.tg, "/sendMessage"), before);
    /* The same message, correctly signed, goes: the refusals were about the signature. */
    assert_int_equal(callback(msg, CW_SECRET, -200, 0), 200);
    assert_true(db_fake_wait(W.tg, "/sendMessage", before + 1, 5000) >= before + 1);
}

static void private_notes_and_own_messages_are_not_sent(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:one:4204");
    long note = db_cw_fake_agent_message(W.cw, conv, "agent-words internal", 1, NULL, NULL);
    size_t before = db_fake_count(W.tg, "/send");
    assert_int_equal(callback(note, CW_SECRET, 0, 0), 200);
    /* An incoming message, as the bridge creates them, comes back as message_created too. */
    char body[256];
    snprintf(body, sizeof body, "{\"content\":\"customer-words\",\"message_type\":\"incoming\"}");
    const char *h[] = {"Content-Type: application/json", "api_access_token: " CW_TOKEN, NULL};
    char path[96];
    snprintf(path, sizeof path, "/api/v1/accounts/%d/conversations/%ld/messages", ACCOUNT_ID, conv);
    struct db_test_resp r;
    db_test_http(cw_port(), "POST", path, h, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    long incoming = (long)json_integer_value(json_object_get(j, "id"));
    assert_int_equal(json_integer_value(json_object_get(j, "message_type")), 0);
    json_decref(j);
    db_test_resp_clear(&r);
    assert_int_equal(callback(incoming, CW_SECRET, 0, 0), 200);
    usleep(500 * 1000);
    assert_int_equal(db_fake_count(W.tg, "/send"), before);
}

static int is_failed(void *arg)
{
    struct db_cw_msg m;
    return db_cw_fake_message(W.cw, *(long *)arg, &m) == 0 && strcmp(m.status, "failed") == 0;
}

static void unsupported_reply_is_marked_failed_in_chatwoot(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:one:4205");
    long msg = db_cw_fake_agent_message(W.cw, conv, "", 0, "location", "");
    size_t before = db_fake_count(W.tg, "/send");
    assert_int_equal(callback(msg, CW_SECRET, 0, 0), 200);
    assert_true(db_test_wait(is_failed, &msg, 5000));
    struct db_cw_msg m;
    assert_int_equal(db_cw_fake_message(W.cw, msg, &m), 0);
    assert_non_null(strstr(m.external_error, "location"));
    /* A conversation of an account the bridge does not carry is refused the same way. */
    long other = make_conversation("telegram:another:1");
    long msg2 = db_cw_fake_agent_message(W.cw, other, "agent-words elsewhere", 0, NULL, NULL);
    assert_int_equal(callback(msg2, CW_SECRET, 0, 0), 200);
    assert_true(db_test_wait(is_failed, &msg2, 5000));
    assert_int_equal(db_fake_count(W.tg, "/send"), before);
}

static void unsigned_callbacks_only_where_allowed(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:two:4301");
    long msg = db_cw_fake_agent_message(W.cw, conv, "agent-words legacy", 0, NULL, NULL);
    size_t before = db_fake_count(W.tg, "/sendMessage");
    /* [chatwoot desk] has a secret: unsigned is refused (checked above); [chatwoot legacy]
     * allows it, but a signed callback it cannot check is still refused. */
    assert_int_equal(db_cw_fake_callback(W.cw, msg, W.d.port, "/bridges/chatwoot/legacy",
                                         CW_SECRET, 0, 0), 401);
    assert_int_equal(db_cw_fake_callback(W.cw, msg, W.d.port, "/bridges/chatwoot/legacy", NULL,
                                         0, 0), 200);
    assert_true(db_fake_wait(W.tg, "/sendMessage", before + 1, 5000) >= before + 1);
    /* A conversation of desk's account through legacy's URL: not legacy's to send. */
    long other = make_conversation("telegram:one:4302");
    long msg2 = db_cw_fake_agent_message(W.cw, other, "agent-words wrong door", 0, NULL, NULL);
    assert_int_equal(db_cw_fake_callback(W.cw, msg2, W.d.port, "/bridges/chatwoot/legacy", NULL,
                                         0, 0), 200);
    assert_true(db_test_wait(is_failed, &msg2, 5000));
    assert_int_equal(db_cw_fake_callback(W.cw, msg, W.d.port, "/bridges/chatwoot/nosuch", NULL,
                                         0, 0), 404);
}

/* deskbridge_automation = false: the carried account gets no greeting from deskbridge (its
 * schedule has one), while the same schedule still greets an account Chatwoot does not carry. */
static size_t greetings_to(long long chat)
{
    char needle[32];
    snprintf(needle, sizeof needle, "%lld", chat);
    struct db_fake_request q;
    size_t n = 0;
    for (size_t i = 0; db_fake_get(W.tg, i, &q) == 0; i++) {
        if (strstr(q.path, "/sendMessage") && strstr(q.body, "greeting-words") &&
            strstr(q.body, needle))
            n++;
        db_fake_request_clear(&q);
    }
    return n;
}

static int greeted_9501(void *arg)
{
    (void)arg;
    return greetings_to(9501) > 0;
}

static void carried_accounts_get_no_deskbridge_greeting(void **state)
{
    (void)state;
    tg_text(9500, 9500, "customer-words hi");
    char body[512];
    snprintf(body, sizeof body,
             "{\"update_id\":9501,\"message\":{\"message_id\":9501,\"date\":1795365000,"
             "\"chat\":{\"id\":9501,\"type\":\"private\"},\"from\":{\"id\":9501,"
             "\"is_bot\":false,\"first_name\":\"Olena\"},\"text\":\"customer-words hi\"}}");
    tg_post_to("two", body);
    assert_true(db_test_wait(greeted_9501, NULL, 10000));
    sleep(1);
    assert_int_equal(greetings_to(9500), 0);
}

/* ---- customer to Chatwoot ---- */

static void check_file(const struct db_cw_msg *m, const char *type)
{
    assert_int_equal(m->n_attachments, 1);
    assert_int_equal(m->file_size, sizeof FILE_BYTES - 1);
    assert_int_equal(m->file_sum, sum_of(FILE_BYTES, sizeof FILE_BYTES - 1));
    assert_string_equal(m->file_type, type);
}

static void telegram_customer_reaches_chatwoot(void **state)
{
    (void)state;
    tg_text(9100, 9001, "customer-words one");
    tg_photo(9101, 9001, "customer-words pic");
    long conv = wait_messages("telegram:one:9001", 2, 15000);
    char name[64], phone[32];
    assert_true(db_cw_fake_contact(W.cw, "telegram:one:9001", name, sizeof name, phone,
                                   sizeof phone) > 0);
    assert_string_equal(name, "Olena");
    assert_string_equal(phone, "");
    struct db_cw_msg m[4];
    assert_int_equal(db_cw_fake_messages(W.cw, conv, m, 4), 2);
    assert_string_equal(m[0].content, "customer-words one");
    assert_int_equal(m[0].message_type, 0);
    assert_int_equal(m[0].private_note, 0);
    assert_int_equal(strlen(m[0].source_id), 26); /* the deskbridge event id */
    assert_int_equal(m[0].n_attachments, 0);
    assert_string_equal(m[1].content, "customer-words pic");
    check_file(&m[1], "image/jpeg");
}

static void whatsapp_customer_reaches_chatwoot(void **state)
{
    (void)state;
    wa_post_now("{\"from\":\"" WA_CUSTOMER "\",\"id\":\"wamid.IN1\",\"timestamp\":\"%lld\","
            "\"type\":\"text\",\"text\":{\"body\":\"customer-words wa\"}}");
    wa_post_now("{\"from\":\"" WA_CUSTOMER "\",\"id\":\"wamid.IN2\",\"timestamp\":\"%lld\","
            "\"type\":\"image\",\"image\":{\"id\":\"4490709327718\",\"mime_type\":\"image/jpeg\","
            "\"sha256\":\"x\",\"caption\":\"customer-words wa pic\"}}");
    const char *ident = "whatsapp:" WA_PNID ":" WA_CUSTOMER;
    long conv = wait_messages(ident, 2, 15000);
    char name[64], phone[32];
    assert_true(db_cw_fake_contact(W.cw, ident, name, sizeof name, phone, sizeof phone) > 0);
    assert_string_equal(name, "Kerry Fisher");
    assert_string_equal(phone, "+" WA_CUSTOMER);
    struct db_cw_msg m[4];
    assert_int_equal(db_cw_fake_messages(W.cw, conv, m, 4), 2);
    assert_string_equal(m[0].content, "customer-words wa");
    assert_string_equal(m[1].content, "customer-words wa pic");
    check_file(&m[1], "image/jpeg");
}

static void viber_customer_reaches_chatwoot(void **state)
{
    (void)state;
    vb_post("{\"type\":\"text\",\"text\":\"customer-words vb\"}", "5491234567890001");
    char pic[512];
    snprintf(pic, sizeof pic,
             "{\"type\":\"picture\",\"text\":\"customer-words vb pic\",\"media\":\"%s/img/p1.jpg\","
             "\"thumbnail\":\"%s/img/t.jpg\",\"file_name\":\"p1.jpg\",\"size\":32}",
             db_fake_url(W.vb), db_fake_url(W.vb));
    vb_post(pic, "5491234567890002");
    const char *ident = "viber:shop:" VB_USER;
    long conv = wait_messages(ident, 2, 15000);
    struct db_cw_msg m[4];
    assert_int_equal(db_cw_fake_messages(W.cw, conv, m, 4), 2);
    assert_string_equal(m[0].content, "customer-words vb");
    assert_string_equal(m[1].content, "customer-words vb pic");
    assert_int_equal(m[1].n_attachments, 1);
    assert_int_equal(m[1].file_size, sizeof FILE_BYTES - 1);
    assert_string_equal(m[1].file_name, "p1.jpg");
}

static void edits_and_reactions_are_readable(void **state)
{
    (void)state;
    tg_text(9200, 9002, "customer-words first");
    tg_post("{\"update_id\":9201,\"edited_message\":{\"message_id\":9200,\"date\":1795365000,"
            "\"edit_date\":1795365100,\"chat\":{\"id\":9002,\"type\":\"private\"},\"from\":"
            "{\"id\":9002,\"is_bot\":false,\"first_name\":\"Olena\"},\"text\":\"customer-words fixed\"}}");
    wa_post("{\"from\":\"" WA_CUSTOMER "\",\"id\":\"wamid.IN3\",\"timestamp\":\"1795365002\","
            "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.IN1\",\"emoji\":\"\\ud83d\\udc4d\"}}");
    long conv = wait_messages("telegram:one:9002", 2, 15000);
    struct db_cw_msg m[4];
    assert_int_equal(db_cw_fake_messages(W.cw, conv, m, 4), 2);
    assert_string_equal(m[1].content, "Edited message: customer-words fixed");
    const char *ident = "whatsapp:" WA_PNID ":" WA_CUSTOMER;
    long wconv = wait_messages(ident, 3, 15000);
    assert_int_equal(db_cw_fake_messages(W.cw, wconv, m, 4), 3);
    assert_string_equal(m[2].content, "Reacted \xf0\x9f\x91\x8d");
}

static void lost_mapping_is_rebuilt_not_duplicated(void **state)
{
    (void)state;
    tg_text(9300, 9003, "customer-words before");
    long conv = wait_messages("telegram:one:9003", 1, 15000);
    size_t contacts = db_cw_fake_contacts(W.cw), convs = db_cw_fake_conversations(W.cw);
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis),
                                 "DEL deskbridge:chatwoot:desk:conv:telegram:one:9003");
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    tg_text(9301, 9003, "customer-words after");
    assert_int_equal(wait_messages("telegram:one:9003", 2, 15000), conv);
    assert_int_equal(db_cw_fake_contacts(W.cw), contacts);
    assert_int_equal(db_cw_fake_conversations(W.cw), convs);
    /* The same for WhatsApp, whose contact also holds the phone number: Chatwoot refuses both
     * identifier and number, and the identifier decides. */
    const char *wa = "whatsapp:" WA_PNID ":" WA_CUSTOMER;
    long wconv = db_cw_fake_conversation_of(W.cw, wa);
    assert_true(wconv > 0);
    struct db_cw_msg wm[16];
    size_t wn = db_cw_fake_messages(W.cw, wconv, wm, 0);
    r = redisCommand(db_test_redis_ctx(W.redis), "DEL deskbridge:chatwoot:desk:conv:%s", wa);
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    wa_post_now("{\"from\":\"" WA_CUSTOMER "\",\"id\":\"wamid.IN7\",\"timestamp\":\"%lld\","
            "\"type\":\"text\",\"text\":{\"body\":\"customer-words wa after\"}}");
    assert_int_equal(wait_messages(wa, wn + 1, 15000), wconv);
    assert_int_equal(db_cw_fake_contacts(W.cw), contacts);
    assert_int_equal(db_cw_fake_conversations(W.cw), convs);
    /* A conversation deleted in Chatwoot: the next message opens a new one for the contact. */
    db_cw_fake_delete_conversation(W.cw, conv);
    tg_text(9302, 9003, "customer-words anew");
    long conv2 = wait_messages("telegram:one:9003", 1, 15000);
    assert_true(conv2 != conv);
    assert_int_equal(db_cw_fake_contacts(W.cw), contacts);
}

static void unanswered_creation_is_not_made_twice(void **state)
{
    (void)state;
    tg_text(9400, 9004, "customer-words first");
    long conv = wait_messages("telegram:one:9004", 1, 15000);
    /* Applied at once, answered after the bridge's 1.5 s timeout. */
    db_cw_fake_stall_creates(W.cw, 1, 2500);
    size_t posts = db_cw_fake_requests(W.cw, "POST", "/messages");
    tg_text(9401, 9004, "customer-words slow");
    tg_text(9402, 9004, "customer-words next");
    wait_messages("telegram:one:9004", 3, 20000);
    sleep(2);
    struct db_cw_msg m[8];
    assert_int_equal(db_cw_fake_messages(W.cw, conv, m, 8), 3);
    assert_string_equal(m[1].content, "customer-words slow");
    assert_string_equal(m[2].content, "customer-words next");
    /* The slow one was posted once: its retry found it by source_id instead. */
    assert_int_equal(db_cw_fake_requests(W.cw, "POST", "/messages"), posts + 2);
    assert_true(db_cw_fake_requests(W.cw, "GET", "/messages") >= 1);
}

/* ---- ticks ---- */

struct status_wait {
    long msg;
    const char *status;
};

static int has_status(void *arg)
{
    struct status_wait *w = arg;
    struct db_cw_msg m;
    return db_cw_fake_message(W.cw, w->msg, &m) == 0 && strcmp(m.status, w->status) == 0;
}

/* The wamid the fake WhatsApp gave the send whose body contains needle. */
static void wamid_of(const char *needle, char *out, size_t n)
{
    struct db_fake_request q;
    *out = '\0';
    for (size_t i = 0; db_fake_get(W.wa, i, &q) == 0; i++) {
        if (strstr(q.body, needle) && q.answer) {
            const char *p = strstr(q.answer, "wamid.OUT");
            if (p) snprintf(out, n, "%.*s", (int)strcspn(p, "\""), p);
        }
        db_fake_request_clear(&q);
    }
}

static void ticks_reach_the_chatwoot_message(void **state)
{
    (void)state;
    const char *ident = "whatsapp:" WA_PNID ":" WA_CUSTOMER;
    long conv = db_cw_fake_conversation_of(W.cw, ident);
    assert_true(conv > 0);
    long msg = db_cw_fake_agent_message(W.cw, conv, "agent-words tick", 0, NULL, NULL);
    assert_int_equal(callback(msg, CW_SECRET, 0, 0), 200);
    char wamid[64] = "";
    for (int i = 0; i < 100 && !*wamid; i++) {
        wamid_of("agent-words tick", wamid, sizeof wamid);
        if (!*wamid) usleep(50 * 1000);
    }
    assert_true(*wamid);
    char st[256];
    snprintf(st, sizeof st, "{\"id\":\"%s\",\"status\":\"delivered\",\"timestamp\":\"1795365100\","
             "\"recipient_id\":\"" WA_CUSTOMER "\"}", wamid);
    wa_post_member("statuses", st);
    struct status_wait w = {msg, "delivered"};
    assert_true(db_test_wait(has_status, &w, 10000));
    snprintf(st, sizeof st, "{\"id\":\"%s\",\"status\":\"read\",\"timestamp\":\"1795365200\","
             "\"recipient_id\":\"" WA_CUSTOMER "\"}", wamid);
    wa_post_member("statuses", st);
    w.status = "read";
    assert_true(db_test_wait(has_status, &w, 10000));
    /* A send the platform refuses: failed, with the platform's reason. */
    db_fake_rule(W.wa, "POST", "/messages", 1, 400,
                 "{\"error\":{\"message\":\"Recipient not in allowed list\",\"type\":"
                 "\"OAuthException\",\"code\":131030,\"fbtrace_id\":\"x\"}}", 0, 0);
    long bad = db_cw_fake_agent_message(W.cw, conv, "agent-words refused", 0, NULL, NULL);
    assert_int_equal(callback(bad, CW_SECRET, 0, 0), 200);
    struct status_wait wf = {bad, "failed"};
    assert_true(db_test_wait(has_status, &wf, 10000));
    struct db_cw_msg m;
    assert_int_equal(db_cw_fake_message(W.cw, bad, &m), 0);
    assert_non_null(strstr(m.external_error, "131030"));
}

/* A status PATCH refused for good (an inbox that is not an API inbox answers 403) goes to
 * P:dead with the reason, instead of being tried for ever. */
static int status_dead_letter(void *arg)
{
    (void)arg;
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:dead - +");
    int found = 0;
    for (size_t i = 0; r && i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        int bridge = 0, reason = 0, stream = 0;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            const char *n = f->element[k]->str, *v = f->element[k + 1]->str;
            bridge |= strcmp(n, "bridge") == 0 && strcmp(v, "chatwoot:desk") == 0;
            stream |= strcmp(n, "stream") == 0 && strcmp(v, "status") == 0;
            reason |= strcmp(n, "reason") == 0 && strstr(v, "HTTP 403") != NULL;
        }
        found |= bridge && stream && reason;
    }
    freeReplyObject(r);
    return found;
}

static void refused_tick_is_dead_lettered(void **state)
{
    (void)state;
    long conv = make_conversation("telegram:one:4401");
    db_cw_fake_set_api_inbox(W.cw, 0);
    long msg = db_cw_fake_agent_message(W.cw, conv, "agent-words not api", 0, NULL, NULL);
    assert_int_equal(callback(msg, CW_SECRET, 0, 0), 200);
    int ok = db_test_wait(status_dead_letter, NULL, 10000);
    db_cw_fake_set_api_inbox(W.cw, 1);
    assert_true(ok);
}

/* A file the platform no longer has: the message still arrives, saying so, not retried. */
static void missing_file_becomes_a_note(void **state)
{
    (void)state;
    db_fake_rule(W.vb, "GET", "/img/gone.jpg", -1, 404, "{}", 0, 0);
    char pic[512];
    snprintf(pic, sizeof pic,
             "{\"type\":\"picture\",\"text\":\"customer-words lost pic\",\"media\":"
             "\"%s/img/gone.jpg\",\"file_name\":\"gone.jpg\",\"size\":32}",
             db_fake_url(W.vb));
    const char *ident = "viber:shop:" VB_USER;
    long conv = db_cw_fake_conversation_of(W.cw, ident);
    struct db_cw_msg m[8];
    size_t before = conv ? db_cw_fake_messages(W.cw, conv, m, 0) : 0;
    vb_post(pic, "5491234567890009");
    conv = wait_messages(ident, before + 1, 15000);
    size_t n = db_cw_fake_messages(W.cw, conv, m, 8);
    assert_true(n >= 1 && n <= 8);
    assert_int_equal(m[n - 1].n_attachments, 0);
    assert_string_equal(m[n - 1].content, "customer-words lost pic\n(the customer's file could "
                                          "not be fetched from the messenger)");
}

/* A Viber file URL on the API base's host but another port (a listener that never answers)
 * is not fetched: a URL a webhook names goes through the SSRF guard whatever host it names,
 * and the guard's test exception is the fake's own port only.  The message arrives saying
 * so, and nothing connected to the listener. */
static void viber_file_url_is_guarded_even_on_the_api_host(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char pic[512];
    snprintf(pic, sizeof pic,
             "{\"type\":\"picture\",\"text\":\"customer-words guarded pic\",\"media\":"
             "\"http://127.0.0.1:%d/img/p1.jpg\",\"file_name\":\"p1.jpg\",\"size\":32}",
             ntohs(sa.sin_port));
    const char *ident = "viber:shop:" VB_USER;
    long conv = db_cw_fake_conversation_of(W.cw, ident);
    struct db_cw_msg m[8];
    size_t before = conv ? db_cw_fake_messages(W.cw, conv, m, 0) : 0;
    vb_post(pic, "5491234567890010");
    conv = wait_messages(ident, before + 1, 15000);
    size_t n = db_cw_fake_messages(W.cw, conv, m, 8);
    assert_true(n >= 1 && n <= 8);
    assert_int_equal(m[n - 1].n_attachments, 0);
    assert_string_equal(m[n - 1].content, "customer-words guarded pic\n(the customer sent a file "
                                          "this messenger does not let us fetch)");
    int c = accept(fd, NULL, NULL);
    if (c >= 0) close(c);
    assert_true(c < 0); /* no connection reached the listener */
    close(fd);
}

/* Chatwoot keeps a phone number on one contact per account: a customer whose number another
 * contact holds (the same person on a second WhatsApp number) gets a contact without it. */
static void taken_phone_number_is_left_out(void **state)
{
    (void)state;
    char body[256];
    snprintf(body, sizeof body, "{\"inbox_id\":%d,\"identifier\":\"elsewhere\",\"name\":\"Y\","
             "\"phone_number\":\"+16505559999\"}", INBOX_ID);
    const char *h[] = {"Content-Type: application/json", "api_access_token: " CW_TOKEN, NULL};
    char path[64];
    snprintf(path, sizeof path, "/api/v1/accounts/%d/contacts", ACCOUNT_ID);
    struct db_test_resp r;
    db_test_http(cw_port(), "POST", path, h, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    wa_post_from("16505559999", "messages",
                 "{\"from\":\"16505559999\",\"id\":\"wamid.IN9\",\"timestamp\":\"1795365003\","
                 "\"type\":\"text\",\"text\":{\"body\":\"customer-words second number\"}}");
    const char *ident = "whatsapp:" WA_PNID ":16505559999";
    long conv = wait_messages(ident, 1, 15000);
    char name[64], phone[32];
    assert_true(db_cw_fake_contact(W.cw, ident, name, sizeof name, phone, sizeof phone) > 0);
    assert_string_equal(phone, "");
    struct db_cw_msg m[2];
    assert_int_equal(db_cw_fake_messages(W.cw, conv, m, 2), 1);
    assert_string_equal(m[0].content, "customer-words second number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agent_reply_reaches_telegram_once),
        cmocka_unit_test(attachment_goes_out_as_media),
        cmocka_unit_test(bad_old_and_missing_signatures_are_refused),
        cmocka_unit_test(private_notes_and_own_messages_are_not_sent),
        cmocka_unit_test(unsupported_reply_is_marked_failed_in_chatwoot),
        cmocka_unit_test(carried_accounts_get_no_deskbridge_greeting),
        cmocka_unit_test(unsigned_callbacks_only_where_allowed),
        cmocka_unit_test(telegram_customer_reaches_chatwoot),
        cmocka_unit_test(whatsapp_customer_reaches_chatwoot),
        cmocka_unit_test(viber_customer_reaches_chatwoot),
        cmocka_unit_test(viber_file_url_is_guarded_even_on_the_api_host),
        cmocka_unit_test(edits_and_reactions_are_readable),
        cmocka_unit_test(lost_mapping_is_rebuilt_not_duplicated),
        cmocka_unit_test(unanswered_creation_is_not_made_twice),
        cmocka_unit_test(ticks_reach_the_chatwoot_message),
        cmocka_unit_test(refused_tick_is_dead_lettered),
        cmocka_unit_test(missing_file_becomes_a_note),
        cmocka_unit_test(taken_phone_number_is_left_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
