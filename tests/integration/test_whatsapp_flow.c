/* End to end with WhatsApp through the real parts: the deskbridge binary, a real
 * redis-server and a fake Graph API on loopback.  Webhook bodies are signed here with the app
 * secret exactly as Meta does (HMAC-SHA256 over the bytes sent). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

#define WA_TOKEN "EAAGflowTokenDoNotLog0123456789abcdef"
#define APP_SECRET "app-secret-DoNotLog-42"
#define VERIFY_TOKEN "verify-DoNotLog-7"
#define PNID "106540352242922"
#define OTHER_PNID "106540352249999"
#define CUSTOMER "16505551234"
#define SECRET_TEXT "secret-words-of-a-customer"
#define API_TOKEN "api-token-wa-0123456789abcdef"
#define HOOK "/webhooks/whatsapp/" PNID
#define SENT_OK "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"" CUSTOMER \
                "\",\"wa_id\":\"" CUSTOMER "\"}],\"messages\":[{\"id\":\"wamid.OUT{n}\"}]}"

struct world {
    struct db_test_redis *redis;
    struct db_fake *wa;
    struct db_test_daemon d;
    char env[8][512];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN,
                             "Content-Type: application/json", NULL};

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.wa = db_fake_start();
    assert_non_null(W.wa);
    db_fake_default(W.wa, 200, SENT_OK);
    snprintf(W.env[0], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[1], sizeof W.env[1], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[2], sizeof W.env[2], "WHATSAPP_ACCESS_TOKEN=%s", WA_TOKEN);
    snprintf(W.env[3], sizeof W.env[3], "WHATSAPP_APP_SECRET=%s", APP_SECRET);
    snprintf(W.env[4], sizeof W.env[4], "WHATSAPP_VERIFY_TOKEN=%s", VERIFY_TOKEN);
    snprintf(W.env[5], sizeof W.env[5], "WHATSAPP_PHONE_NUMBER_ID=%s", PNID);
    snprintf(W.env[6], sizeof W.env[6], "WHATSAPP_API_BASE=%s", db_fake_url(W.wa));
    const char *env[] = {W.env[0], W.env[1], W.env[2], W.env[3], W.env[4], W.env[5], W.env[6], NULL};
    db_test_daemon_start(&W.d, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* No token, secret, customer phone number or message text in the log. */
    static const char *const never[] = {"EAAGflowTokenDoNotLog", "DoNotLog", CUSTOMER,
                                        SECRET_TEXT, "Good morning", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    db_fake_stop(W.wa);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

static long long xlen(const char *stream)
{
    return db_test_xlen(db_test_redis_ctx(W.redis), stream);
}

/* The JSON of the entries of a stream after index skip, as an array (new reference). */
static json_t *entries(const char *stream, const char *field, long long skip)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:%s - +", stream);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    json_t *out = json_array();
    for (size_t i = (size_t)skip; i < r->elements; i++) {
        redisReply *fields = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < fields->elements; k += 2)
            if (strcmp(fields->element[k]->str, field) == 0)
                json_array_append_new(out, json_loads(fields->element[k + 1]->str, 0, NULL));
    }
    freeReplyObject(r);
    return out;
}

enum sig { SIG_OK, SIG_NONE, SIG_WRONG, SIG_SHA1 };

static void post_hook(const void *body, size_t len, enum sig sig, struct db_test_resp *r)
{
    unsigned char mac[32];
    char hex[65], h[128];
    const char *key = sig == SIG_WRONG ? APP_SECRET "x" : APP_SECRET;
    db_hmac_sha256(key, strlen(key), body, len, mac);
    db_hex_encode(mac, 32, hex);
    if (sig == SIG_SHA1)
        snprintf(h, sizeof h, "X-Hub-Signature: sha1=%.40s", hex); /* legacy header only */
    else
        snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    const char *headers[] = {"Content-Type: application/json", sig == SIG_NONE ? NULL : h, NULL};
    db_test_http(W.d.port, "POST", HOOK, headers, body, len, r);
}

/* Posts body signed as sig; every error answer must be a JSON error.  Returns the status. */
static int post_signed(const char *body, enum sig sig)
{
    struct db_test_resp r;
    post_hook(body, strlen(body), sig, &r);
    int status = r.status;
    if (status >= 400) {
        json_t *j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_non_null(json_object_get(j, "error"));
        json_decref(j);
    }
    db_test_resp_clear(&r);
    return status;
}

/* One changes[] element for pnid (new reference); messages/statuses are stolen. */
static json_t *change(const char *pnid, json_t *messages, json_t *statuses)
{
    json_t *value = json_pack("{s:s, s:{s:s, s:s}}", "messaging_product", "whatsapp", "metadata",
                              "display_phone_number", "15550783881", "phone_number_id", pnid);
    json_object_set_new(value, "contacts",
                        json_pack("[{s:{s:s}, s:s}]", "profile", "name", "Kerry Fisher", "wa_id",
                                  CUSTOMER));
    if (messages) json_object_set_new(value, "messages", messages);
    if (statuses) json_object_set_new(value, "statuses", statuses);
    return json_pack("{s:o, s:s}", "value", value, "field", "messages");
}

/* The whole webhook body for entries (stolen), as Meta escapes it (ASCII only).  Caller frees. */
static char *envelope(json_t *entries_arr)
{
    json_t *root = json_pack("{s:s, s:o}", "object", "whatsapp_business_account", "entry",
                             entries_arr);
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    assert_non_null(s);
    return s;
}

static json_t *entry(json_t *changes)
{
    return json_pack("{s:s, s:o}", "id", "102003040506070", "changes", changes);
}

/* Stamped now, as Meta stamps a message it just received: replies to it fall inside the
 * customer-service window (send/window.h). */
static json_t *text_msg(const char *wamid, const char *text)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "from", CUSTOMER, "id", wamid, "timestamp",
                     now, "type", "text", "text", "body", text);
}

static json_t *status_item(const char *wamid, const char *status)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", wamid, "status", status, "timestamp",
                     "1749416400", "recipient_id", CUSTOMER);
}

/* A body with one change carrying statuses (stolen). */
static char *statuses_body(json_t *statuses)
{
    return envelope(json_pack("[o]", entry(json_pack("[o]", change(PNID, NULL, statuses)))));
}

/* ---- inbound ---- */

static void handshake_echoes_the_challenge_only_with_the_token(void **state)
{
    (void)state;
    struct db_test_resp r;
    db_test_http(W.d.port, "GET",
                 HOOK "?hub.mode=subscribe&hub.verify_token=" VERIFY_TOKEN "&hub.challenge=1158201444",
                 NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1158201444");
    db_test_resp_clear(&r);
    static const char *const bad[] = {
        HOOK "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444",
        HOOK "?hub.mode=unsubscribe&hub.verify_token=" VERIFY_TOKEN "&hub.challenge=1158201444",
        HOOK "?hub.mode=subscribe&hub.challenge=1158201444",
        HOOK,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        db_test_http(W.d.port, "GET", bad[i], NULL, NULL, 0, &r);
        assert_int_equal(r.status, 403);
        assert_null(strstr(r.body, "1158201444"));
        db_test_resp_clear(&r);
    }
}

static void signed_message_lands_once_with_the_contact_name(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *body = envelope(json_pack(
        "[o]", entry(json_pack("[o]", change(PNID, json_pack("[o]", text_msg("wamid.IN1",
                                                         "Hello \xc3\xa9 " SECRET_TEXT)),
                                             NULL)))));
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    json_t *ev = entries("events", "event", before);
    json_t *e0 = json_array_get(ev, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "kind")), "message");
    assert_string_equal(json_string_value(json_object_get(e0, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(e0, "conversation")),
                        "whatsapp:" PNID ":" CUSTOMER);
    assert_string_equal(json_string_value(json_object_get(e0, "external_message_id")), "wamid.IN1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e0, "sender"), "name")),
                        "Kerry Fisher");
    assert_string_equal(json_string_value(json_object_get(e0, "text")),
                        "Hello \xc3\xa9 " SECRET_TEXT);
    json_decref(ev);

    /* Meta redelivers: answered 200, not written again. */
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(body);

    char *other = envelope(json_pack(
        "[o]", entry(json_pack("[o]", change(PNID, json_pack("[o]", text_msg("wamid.IN2", "x")),
                                             NULL)))));
    assert_int_equal(post_signed(other, SIG_NONE), 401);
    assert_int_equal(post_signed(other, SIG_WRONG), 401);
    assert_int_equal(post_signed(other, SIG_SHA1), 401);
    /* a signature over different bytes */
    struct db_test_resp r;
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(APP_SECRET, strlen(APP_SECRET), "{}", 2, mac);
    db_hex_encode(mac, 32, hex);
    snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    const char *headers[] = {h, NULL};
    db_test_http(W.d.port, "POST", HOOK, headers, other, strlen(other), &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
    assert_int_equal(xlen("events"), before + 1);
    free(other);
}

/* 2 entries; 3 messages and 2 statuses spread over 3 changes. */
static char *batch_body(const char *tag)
{
    char id[6][64];
    for (int i = 0; i < 5; i++) snprintf(id[i], sizeof id[i], "wamid.%s.%d", tag, i);
    json_t *e0 = entry(json_pack(
        "[o, o]", change(PNID, json_pack("[o, o]", text_msg(id[0], "one"), text_msg(id[1], "two")), NULL),
        change(PNID, json_pack("[o]", text_msg(id[2], "three")),
               json_pack("[o]", status_item(id[3], "delivered")))));
    json_t *e1 = entry(json_pack("[o]", change(PNID, NULL, json_pack("[o]", status_item(id[4], "read")))));
    return envelope(json_pack("[o, o]", e0, e1));
}

static void batch_gives_every_event_and_survives_a_redis_stall(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *body = batch_body("B1");
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 5);
    json_t *ev = entries("events", "event", before);
    static const char *const kinds[] = {"message", "message", "message", "receipt", "receipt"};
    for (size_t i = 0; i < 5; i++) {
        json_t *e = json_array_get(ev, i);
        assert_string_equal(json_string_value(json_object_get(e, "kind")), kinds[i]);
        char want[64];
        snprintf(want, sizeof want, "wamid.B1.%zu", i);
        assert_string_equal(json_string_value(json_object_get(e, "external_message_id")), want);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 4), "status")), "read");
    json_decref(ev);
    free(body);

    body = batch_body("B2");
    before = xlen("events");
    db_test_redis_kill(W.redis, SIGSTOP);
    struct db_test_resp r;
    long long t0 = db_test_now_ms();
    post_hook(body, strlen(body), SIG_OK, &r);
    long long took = db_test_now_ms() - t0;
    assert_int_equal(r.status, 503);
    char ra[32];
    assert_non_null(db_test_resp_header(&r, "Retry-After", ra, sizeof ra));
    assert_true(atoi(ra) >= 1);
    db_test_resp_clear(&r);
    printf("# 503 while Redis stalled after %lld ms\n", took);
    db_test_redis_kill(W.redis, SIGCONT);
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        status = post_signed(body, SIG_OK);
        if (status != 200) usleep(50000);
    }
    assert_int_equal(status, 200);
    /* a second retry of Meta's changes nothing either */
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 5);
    ev = entries("events", "event", before);
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "wamid.B2.%zu", i);
        assert_string_equal(json_string_value(json_object_get(json_array_get(ev, i),
                                                               "external_message_id")), want);
    }
    json_decref(ev);
    free(body);
}

/* One change with message msg_id and, unless receipt_id is NULL, a read receipt for it. */
static char *message_body(const char *msg_id, const char *receipt_id)
{
    json_t *statuses = receipt_id ? json_pack("[o]", status_item(receipt_id, "read")) : NULL;
    return envelope(json_pack(
        "[o]", entry(json_pack("[o]", change(PNID, json_pack("[o]", text_msg(msg_id, "m")),
                                             statuses)))));
}

/* A webhook without receipts is stored by a cheaper script than one with them (store.c);
 * a message is a dedupe hit whichever of the two stored it first. */
static void a_redelivery_is_a_dedupe_hit_across_both_ingest_scripts(void **state)
{
    (void)state;
    /* with a receipt first (the general script), then alone (the plain one) */
    long long before = xlen("events");
    char *mixed = message_body("wamid.X1", "wamid.X2"), *alone = message_body("wamid.X1", NULL);
    assert_int_equal(post_signed(mixed, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 2);
    assert_int_equal(post_signed(alone, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 2);
    free(mixed);
    free(alone);

    /* alone first, then with a receipt: only the receipt is new */
    alone = message_body("wamid.X3", NULL);
    mixed = message_body("wamid.X3", "wamid.X4");
    assert_int_equal(post_signed(alone, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 3);
    assert_int_equal(post_signed(mixed, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 4);
    json_t *ev = entries("events", "event", before + 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "kind")), "receipt");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0),
                                                          "external_message_id")), "wamid.X4");
    json_decref(ev);
    free(mixed);
    free(alone);
}

static void other_number_and_hostile_bodies_write_nothing(void **state)
{
    (void)state;
    long long before = xlen("events");
    char *other = envelope(json_pack(
        "[o]", entry(json_pack("[o]", change(OTHER_PNID, json_pack("[o]", text_msg("wamid.OTHER", "x")),
                                             NULL)))));
    int st = post_signed(other, SIG_OK);
    assert_true(st >= 200 && st < 300);
    free(other);

    assert_int_equal(post_signed("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":", SIG_OK),
                     400);
    assert_int_equal(post_signed("not json at all", SIG_OK), 400);
    assert_int_equal(post_signed("[{\"object\":\"whatsapp_business_account\"}]", SIG_OK), 400);
    assert_int_equal(post_signed("{\"object\":\"page\",\"entry\":[]}", SIG_OK), 400);

    size_t deep = 100000;
    char *nest = malloc(2 * deep + 1);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    nest[2 * deep] = '\0';
    st = post_signed(nest, SIG_OK);
    assert_true(st >= 400 && st < 500);
    free(nest);

    size_t big = 5u << 20;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    struct db_test_resp r;
    post_hook(huge, big, SIG_OK, &r);
    assert_int_equal(r.status, 413);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(json_object_get(j, "error"));
    json_decref(j);
    db_test_resp_clear(&r);
    free(huge);

    assert_int_equal(xlen("events"), before);
    assert_true(db_test_daemon_alive(&W.d));
}

/* ---- outbound ---- */

static char *send_cmd(const char *json)
{
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/v1/messages", auth, json, strlen(json), &r);
    assert_int_equal(r.status, 202);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    db_test_resp_clear(&r);
    return id;
}

static json_t *get_message(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/messages/%s", id);
    struct db_test_resp r;
    db_test_http(W.d.port, "GET", path, auth, NULL, 0, &r);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    db_test_resp_clear(&r);
    return j;
}

static json_t *wait_status(const char *id, const char *want, int timeout_ms)
{
    return db_test_wait_message(W.d.port, API_TOKEN, id, want, timeout_ms);
}

/* The statuses of the message's history, comma separated, into buf. */
static const char *history(const json_t *m, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(m, "history"), i, h) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", i ? "," : "", json_string_value(json_object_get(h, "status")));
    }
    return buf;
}

/* The statuses the P:status stream recorded for id, comma separated, into buf. */
static const char *status_stream(const char *id, char *buf, size_t n)
{
    json_t *all = entries("status", "status", 0);
    buf[0] = '\0';
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s) {
        if (strcmp(json_string_value(json_object_get(s, "id")), id) != 0) continue;
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", l ? "," : "", json_string_value(json_object_get(s, "status")));
    }
    json_decref(all);
    return buf;
}

static char *ext_id(const json_t *m)
{
    const char *s = json_string_value(json_object_get(m, "external_message_id"));
    assert_non_null(s);
    return strdup(s);
}

static void text_reply_is_sent_and_receipts_move_it(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", -1, 200, SENT_OK, 0, 0);
    char *id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\","
                        "\"text\":\"Good morning \xf0\x9f\x99\x82\",\"reply_to\":\"wamid.IN1\"}");
    json_t *m = wait_status(id, "sent", 10000);
    char *ext = ext_id(m);
    assert_int_equal(strncmp(ext, "wamid.OUT", 9), 0);
    json_decref(m);

    assert_int_equal(db_fake_count(W.wa, "/messages"), 1);
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.wa, 0, &req), 0);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/" PNID "/messages");
    assert_string_equal(db_headers_get(&req.headers, "Authorization"), "Bearer " WA_TOKEN);
    json_t *sent = json_loads(req.body, 0, NULL);
    assert_non_null(sent);
    assert_string_equal(json_string_value(json_object_get(sent, "messaging_product")), "whatsapp");
    assert_string_equal(json_string_value(json_object_get(sent, "to")), CUSTOMER);
    assert_string_equal(json_string_value(json_object_get(sent, "type")), "text");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sent, "text"), "body")),
                        "Good morning \xf0\x9f\x99\x82");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sent, "context"),
                                                          "message_id")), "wamid.IN1");
    json_decref(sent);
    db_fake_request_clear(&req);

    char *b = statuses_body(json_pack("[o]", status_item(ext, "delivered")));
    assert_int_equal(post_signed(b, SIG_OK), 200);
    free(b);
    json_decref(wait_status(id, "delivered", 5000));
    b = statuses_body(json_pack("[o]", status_item(ext, "read")));
    assert_int_equal(post_signed(b, SIG_OK), 200);
    free(b);
    m = wait_status(id, "read", 5000);
    char buf[256];
    assert_string_equal(history(m, buf, sizeof buf), "queued,sent,delivered,read");
    assert_string_equal(status_stream(id, buf, sizeof buf), "queued,sent,delivered,read");
    json_decref(m);
    free(ext);
    free(id);

    /* read and delivered in one batch, out of order: read wins, no delivered after it */
    id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"second\"}");
    m = wait_status(id, "sent", 10000);
    ext = ext_id(m);
    json_decref(m);
    b = statuses_body(json_pack("[o, o]", status_item(ext, "read"), status_item(ext, "delivered")));
    assert_int_equal(post_signed(b, SIG_OK), 200);
    free(b);
    m = wait_status(id, "read", 5000);
    assert_string_equal(history(m, buf, sizeof buf), "queued,sent,read");
    assert_string_equal(status_stream(id, buf, sizeof buf), "queued,sent,read");
    json_decref(m);
    free(ext);
    free(id);

    /* an asynchronous failure carries Meta's code and title */
    id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"third\"}");
    m = wait_status(id, "sent", 10000);
    ext = ext_id(m);
    json_decref(m);
    json_t *failed = status_item(ext, "failed");
    json_object_set_new(failed, "errors",
                        json_pack("[{s:i, s:s, s:s, s:{s:s}}]", "code", 131026, "title",
                                  "Message undeliverable", "message", "Message undeliverable",
                                  "error_data", "details", "Message Undeliverable."));
    b = statuses_body(json_pack("[o]", failed));
    assert_int_equal(post_signed(b, SIG_OK), 200);
    free(b);
    m = wait_status(id, "failed", 5000);
    json_t *err = json_object_get(m, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "131026");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "Message undeliverable");
    json_decref(m);
    json_t *st = entries("status", "status", xlen("status") - 1);
    json_t *last = json_array_get(st, 0);
    assert_string_equal(json_string_value(json_object_get(last, "id")), id);
    assert_string_equal(json_string_value(json_object_get(last, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "error"), "code")),
                        "131026");
    json_decref(st);
    free(ext);
    free(id);
}

static void status_before_the_send_returns_is_kept_and_applied(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    /* Meta may deliver the status webhook before its answer to the send arrives. */
    db_fake_rule(W.wa, "POST", "/messages", 1, 200,
                 "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.EARLY1\"}]}",
                 1500, 0);
    char *id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"early\"}");
    assert_int_equal(db_fake_wait(W.wa, "/messages", 1, 5000), 1);
    char *b = statuses_body(json_pack("[o]", status_item("wamid.EARLY1", "delivered")));
    long long before = xlen("events");
    assert_int_equal(post_signed(b, SIG_OK), 200);
    free(b);
    b = statuses_body(json_pack("[o]", status_item("wamid.EARLY1", "read")));
    assert_int_equal(post_signed(b, SIG_OK), 200);
    free(b);
    assert_int_equal(xlen("events"), before + 2); /* recorded as receipts at once */
    json_t *m = get_message(id);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "queued");
    json_decref(m);

    m = wait_status(id, "read", 10000);
    assert_string_equal(json_string_value(json_object_get(m, "external_message_id")), "wamid.EARLY1");
    char buf[256];
    assert_string_equal(history(m, buf, sizeof buf), "queued,sent,delivered,read");
    json_decref(m);
    free(id);
}

static void error_classes_fail_or_retry_as_meta_means_them(void **state)
{
    (void)state;
    /* 131047: outside the 24-hour window; only a template gets through. */
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", 1, 400,
                 "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"type\":\"OAuthException\","
                 "\"code\":131047,\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":"
                 "\"Message failed to send because more than 24 hours have passed\"},"
                 "\"fbtrace_id\":\"Az8or2yhqkZfEZ-_4Qn_Bam\"}}", 0, 0);
    char *id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"late\"}");
    json_t *m = wait_status(id, "failed", 10000);
    json_t *err = json_object_get(m, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "131047");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "template"));
    json_decref(m);
    free(id);
    usleep(1500000);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 1);

    /* 130429 once, then success: sent after a retry */
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", 1, 400,
                 "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"type\":\"OAuthException\","
                 "\"code\":130429,\"fbtrace_id\":\"x\"}}", 0, 0);
    db_fake_rule(W.wa, "POST", "/messages", -1, 200, SENT_OK, 0, 0);
    id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"busy\"}");
    m = wait_status(id, "sent", 15000);
    assert_int_equal(json_integer_value(json_object_get(m, "attempt")), 2);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 2);
    json_decref(m);
    free(id);

    /* HTTP 500 once: retried */
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", 1, 500,
                 "{\"error\":{\"message\":\"An unknown error has occurred.\",\"type\":\"OAuthException\","
                 "\"code\":1,\"fbtrace_id\":\"y\"}}", 0, 0);
    db_fake_rule(W.wa, "POST", "/messages", -1, 200, SENT_OK, 0, 0);
    id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"flaky\"}");
    m = wait_status(id, "sent", 15000);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 2);
    json_decref(m);
    free(id);

    /* 131026 undeliverable: failed with code and title, never retried */
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", -1, 400,
                 "{\"error\":{\"message\":\"(#131026) Message Undeliverable.\",\"type\":\"OAuthException\","
                 "\"code\":131026,\"error_user_title\":\"Message Undeliverable\","
                 "\"fbtrace_id\":\"z\"}}", 0, 0);
    id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\",\"text\":\"nobody\"}");
    m = wait_status(id, "failed", 10000);
    err = json_object_get(m, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "131026");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "Undeliverable"));
    json_decref(m);
    free(id);
    usleep(1500000);
    assert_int_equal(db_fake_count(W.wa, "/messages"), 1);
}

static void template_reaches_meta_in_its_shape(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "POST", "/messages", -1, 200, SENT_OK, 0, 0);
    char *id = send_cmd("{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\","
                        "\"template\":{\"name\":\"order_update\",\"language\":\"en_US\","
                        "\"parameters\":[\"4711\",\"Friday\"]}}");
    json_decref(wait_status(id, "sent", 10000));
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.wa, 0, &req), 0);
    json_t *sent = json_loads(req.body, 0, NULL);
    assert_non_null(sent);
    json_t *want = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}, s:[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}}",
        "messaging_product", "whatsapp", "recipient_type", "individual", "to", CUSTOMER, "type",
        "template", "template", "name", "order_update", "language", "code", "en_US", "components",
        "type", "body", "parameters", "type", "text", "text", "4711", "type", "text", "text",
        "Friday");
    if (!json_equal(sent, want)) fail_msg("template body: %s", req.body);
    json_decref(want);
    json_decref(sent);
    db_fake_request_clear(&req);
    free(id);
}

/* WhatsApp does not split: a caption over 1024 characters is refused by the API, naming the
 * field, and nothing is queued; the same words as a plain text (up to 4096) are accepted. */
static void long_caption_is_refused_before_it_is_queued(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    char text[1100 + 1];
    memset(text, 'c', 1100);
    text[1100] = '\0';
    long long before = xlen("outbox");
    json_t *cmd = json_pack("{s:s, s:s, s:{s:s, s:s}}", "conversation",
                            "whatsapp:" PNID ":" CUSTOMER, "text", text, "media", "url",
                            "https://example.com/a.png", "type", "image");
    char *json = json_dumps(cmd, 0);
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/v1/messages", auth, json, strlen(json), &r);
    assert_int_equal(r.status, 400);
    json_t *err = json_loads(r.body, 0, NULL);
    assert_non_null(err);
    assert_non_null(strstr(r.body, "text"));
    assert_non_null(strstr(r.body, "with media"));
    json_decref(err);
    db_test_resp_clear(&r);
    assert_int_equal(xlen("outbox"), before);
    json_object_del(cmd, "media");
    free(json);
    json = json_dumps(cmd, 0);
    db_test_http(W.d.port, "POST", "/v1/messages", auth, json, strlen(json), &r);
    assert_int_equal(r.status, 202);
    db_test_resp_clear(&r);
    free(json);
    json_decref(cmd);
}

/* ---- the dedupe keys' database (dedupe_db) ---- */

/* Stops the gateway and starts it again with extra (a NULL-ended list of VAR=value) added to
 * the environment of setup(). */
static void restart_with(const char *const *extra)
{
    static const char *const never[] = {"DoNotLog", CUSTOMER, NULL};
    db_test_daemon_stop_clean(&W.d, never);
    const char *env[16];
    int n = 0;
    for (int i = 0; i < 7; i++) env[n++] = W.env[i];
    for (; *extra && n < 15; extra++) env[n++] = *extra;
    env[n] = NULL;
    db_test_daemon_start(&W.d, env, NULL, 0);
}

static long long exists_in(int db, const char *key)
{
    redisContext *c = db_test_redis_ctx(W.redis);
    redisReply *r = redisCommand(c, "SELECT %d", db);
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(c, "EXISTS %s", key);
    assert_true(r && r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    r = redisCommand(c, "SELECT 0");
    freeReplyObject(r);
    return n;
}

static char *moved_record(const char *prefix)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "GET %s:dedupe_moved", prefix);
    assert_non_null(r);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

#define DKEY(prefix, id) prefix ":dedupe:whatsapp:" PNID ":m:" id

/* With dedupe_db set, the keys go to that database and redeliveries are still dropped, by
 * both ingest scripts.  On a prefix that stored events before, a key left in the main
 * database still counts for dedupe_ttl_s; on a new one it is never asked.  A database Redis
 * refuses is a 503 whose reason is in the log, and nothing is written. */
static void dedupe_db_moves_the_guard_and_keeps_the_old_one(void **state)
{
    (void)state;
    redisContext *c = db_test_redis_ctx(W.redis);
    /* a key as a gateway without dedupe_db wrote it */
    redisReply *r = redisCommand(c, "SET " DKEY("deskbridge", "wamid.OLD1") " 1 EX 600");
    freeReplyObject(r);
    static const char *const in3[] = {"DESKBRIDGE_DEDUPE_DB=3", NULL};
    restart_with(in3);
    long long before = xlen("events");
    time_t t0 = time(NULL);

    char *body = message_body("wamid.OLD1", NULL);
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before); /* the old key still guards */
    free(body);
    char *rec = moved_record("deskbridge");
    assert_non_null(rec);
    long long until = atoll(rec);
    assert_true(until >= t0 + 691200 && until <= time(NULL) + 691200);
    assert_non_null(strstr(rec, " 3"));
    free(rec);

    body = message_body("wamid.NEW1", NULL);
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    assert_int_equal(exists_in(3, DKEY("deskbridge", "wamid.NEW1")), 1);
    assert_int_equal(exists_in(0, DKEY("deskbridge", "wamid.NEW1")), 0);
    assert_int_equal(post_signed(body, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 1);
    free(body);
    /* the general script (a receipt in the webhook) */
    char *mixed = message_body("wamid.NEW2", "wamid.NEW3");
    assert_int_equal(post_signed(mixed, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 3);
    assert_int_equal(post_signed(mixed, SIG_OK), 200);
    assert_int_equal(xlen("events"), before + 3);
    assert_int_equal(exists_in(3, DKEY("deskbridge", "wamid.NEW2")), 1);
    free(mixed);

    /* a prefix that never stored an event: the main database is not asked */
    r = redisCommand(c, "SET " DKEY("fresh", "wamid.OLD2") " 1 EX 600");
    freeReplyObject(r);
    static const char *const fresh[] = {"DESKBRIDGE_DEDUPE_DB=3", "DESKBRIDGE_PREFIX=fresh", NULL};
    restart_with(fresh);
    /* the first webhook asks (and, until the answer, is checked against both databases) */
    body = message_body("wamid.NEWF", NULL);
    assert_int_equal(post_signed(body, SIG_OK), 200);
    free(body);
    rec = moved_record("fresh");
    assert_non_null(rec);
    assert_string_equal(rec, "0 3");
    free(rec);
    body = message_body("wamid.OLD2", NULL);
    assert_int_equal(post_signed(body, SIG_OK), 200);
    r = redisCommand(c, "XLEN fresh:events");
    assert_true(r && r->type == REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 2); /* the main database's key was not asked */
    freeReplyObject(r);
    free(body);

    /* Redis has 16 databases */
    static const char *const bad[] = {"DESKBRIDGE_DEDUPE_DB=99", NULL};
    restart_with(bad);
    before = xlen("events");
    body = message_body("wamid.NEW4", NULL);
    assert_int_equal(post_signed(body, SIG_OK), 503);
    assert_int_equal(xlen("events"), before);
    assert_int_equal(exists_in(0, DKEY("deskbridge", "wamid.NEW4")), 0);
    free(body);
    assert_true(db_test_daemon_log_count(&W.d, "dedupe_db 99 cannot be selected") >= 1);

    static const char *const none[] = {NULL};
    restart_with(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_echoes_the_challenge_only_with_the_token),
        cmocka_unit_test(signed_message_lands_once_with_the_contact_name),
        cmocka_unit_test(batch_gives_every_event_and_survives_a_redis_stall),
        cmocka_unit_test(a_redelivery_is_a_dedupe_hit_across_both_ingest_scripts),
        cmocka_unit_test(other_number_and_hostile_bodies_write_nothing),
        cmocka_unit_test(text_reply_is_sent_and_receipts_move_it),
        cmocka_unit_test(status_before_the_send_returns_is_kept_and_applied),
        cmocka_unit_test(error_classes_fail_or_retry_as_meta_means_them),
        cmocka_unit_test(template_reaches_meta_in_its_shape),
        cmocka_unit_test(long_caption_is_refused_before_it_is_queued),
        cmocka_unit_test(dedupe_db_moves_the_guard_and_keeps_the_old_one),
    };
    return cmocka_run_group_tests_name("whatsapp_flow", tests, setup, teardown);
}
