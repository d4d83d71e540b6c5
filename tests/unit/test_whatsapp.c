/* test_whatsapp.c - the WhatsApp Cloud API connector: fixtures for parse, and the signature,
 * handshake, configuration, send and media paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deskbridge/connector.h"
#include "fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define ACC "106540352242922"
#define SECRET "a3f1c2d4e5b6978812345678abcdef01"
#define OLD_SECRET "0ld5ecret0ld5ecret0ld5ecret0ld5e"

static const char *const base_kv[] = {"access_token=EAAGtestTOKEN", "app_secret=" SECRET,
                                      "verify_token=hub-verify-me", NULL};

static void *account(void)
{
    return db_test_account(&db_whatsapp, ACC, base_kv);
}

/* ---------------------------------------------------------------- parse */

static void parse_fixtures_match_expected_events(void **state)
{
    (void)state;
    void *a = account();
    int n = db_test_run_fixtures(&db_whatsapp, a, "whatsapp");
    assert_true(n >= 60);
    db_whatsapp.account_free(a);
}

static int parse_buf(const void *a, const char *body, size_t len, struct db_event_list *out,
                     struct db_err *e)
{
    struct db_headers h = {0};
    struct db_inbound in = {.method = "POST", .path = "/webhooks/whatsapp/" ACC, .headers = &h,
                            .body = (const unsigned char *)body, .body_len = len};
    return db_whatsapp.parse(a, &in, out, e);
}

/* A body over max_body is answered 413 by the daemon before parse; the parser itself must
 * still cope with one (a misconfigured cap), and batch every message it holds. */
static void parse_handles_5mib_batch(void **state)
{
    (void)state;
    void *a = account();
    const size_t target = 5u * 1024 * 1024;
    size_t cap = target + 4096, len = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    len += (size_t)snprintf(b, cap,
                            "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
                            "\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":"
                            "{\"phone_number_id\":\"" ACC "\"},\"messages\":[");
    size_t count = 0;
    while (len < target) {
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"from\":\"16505551234\",\"id\":\"wamid.%08zu\",\"timestamp\":"
                                "\"1749416383\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}",
                                count ? "," : "", count,
                                "padding padding padding padding padding padding padding");
        count++;
    }
    len += (size_t)snprintf(b + len, cap - len, "]}}]}]}");
    assert_true(len > db_whatsapp.max_body);

    struct db_event_list out = {0};
    struct db_err e = {0};
    assert_int_equal(parse_buf(a, b, len, &out, &e), DB_OK);
    assert_int_equal(out.n, count);
    char want[32];
    snprintf(want, sizeof want, "m:wamid.%08zu", count - 1);
    assert_string_equal(out.v[count - 1].dedupe_key, want);
    db_event_list_clear(&out);
    free(b);
    db_whatsapp.account_free(a);
}

static void parse_rejects_100000_deep_nesting_and_keeps_out(void **state)
{
    (void)state;
    void *a = account();
    const size_t depth = 100000;
    const char *head = "{\"object\":\"whatsapp_business_account\",\"entry\":";
    size_t hl = strlen(head), len = hl + 2 * depth + 1;
    char *b = malloc(len + 1);
    assert_non_null(b);
    memcpy(b, head, hl);
    memset(b + hl, '[', depth);
    memset(b + hl + depth, ']', depth);
    b[len - 1] = '}';
    b[len] = '\0';

    /* Events already in out (an earlier body) must survive a failed parse untouched. */
    struct db_event_list out = {0};
    json_t *prior = db_event_new("message", "whatsapp", ACC);
    assert_non_null(prior);
    assert_int_equal(db_event_list_push(&out, prior, strdup("m:prior")), DB_OK);
    struct db_err e = {0};
    assert_int_equal(parse_buf(a, b, len, &out, &e), DB_EINVAL);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0].dedupe_key, "m:prior");
    assert_true(strlen(e.msg) > 0);
    db_event_list_clear(&out);
    free(b);
    db_whatsapp.account_free(a);
}

static void parse_appends_after_existing_events(void **state)
{
    (void)state;
    void *a = account();
    static const char body[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"" ACC "\"},"
        "\"statuses\":[{\"id\":\"wamid.A\",\"status\":\"sent\",\"timestamp\":\"5\","
        "\"recipient_id\":\"1555\"},{\"id\":\"wamid.A\",\"status\":\"delivered\","
        "\"timestamp\":\"6\",\"recipient_id\":\"1555\"}]}}]}]}";
    struct db_event_list out = {0};
    assert_int_equal(db_event_list_push(&out, db_event_new("message", "whatsapp", ACC),
                                        strdup("m:prior")),
                     DB_OK);
    struct db_err e = {0};
    assert_int_equal(parse_buf(a, body, sizeof body - 1, &out, &e), DB_OK);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.v[0].dedupe_key, "m:prior");
    assert_string_equal(out.v[1].dedupe_key, "s:wamid.A:sent");
    assert_string_equal(out.v[2].dedupe_key, "s:wamid.A:delivered");
    db_event_list_clear(&out);
    db_whatsapp.account_free(a);
}

static void parse_error_names_the_field(void **state)
{
    (void)state;
    void *a = account();
    static const char body[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"" ACC "\"},"
        "\"messages\":[{\"from\":\"1\",\"id\":\"wamid.1\",\"timestamp\":\"1\",\"type\":\"text\","
        "\"text\":{\"body\":\"ok\"}},{\"from\":\"1\",\"id\":7,\"timestamp\":\"1\"}]}}]}]}";
    struct db_event_list out = {0};
    struct db_err e = {0};
    assert_int_equal(parse_buf(a, body, sizeof body - 1, &out, &e), DB_EINVAL);
    assert_int_equal(out.n, 0);
    assert_non_null(strstr(e.msg, "entry[0].changes[0].value.messages[1].id"));

    /* a syntax error reports where, never the customer's words around it */
    static const char broken[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"x\":"
                                 "\"my card number is 4111\" oops}]}";
    assert_int_equal(parse_buf(a, broken, sizeof broken - 1, &out, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "not JSON"));
    assert_non_null(strstr(e.msg, " at 1:"));
    assert_null(strstr(e.msg, "4111"));
    assert_null(strstr(e.msg, "oops"));
    db_whatsapp.account_free(a);
}

/* ---------------------------------------------------------------- verify */

static int verify_with(const void *a, const char *header, const char *value, const char *body)
{
    struct db_headers h = {0};
    if (header) assert_int_equal(db_headers_add(&h, header, value), DB_OK);
    struct db_inbound in = {.method = "POST", .headers = &h,
                            .body = (const unsigned char *)body, .body_len = strlen(body)};
    struct db_err e = {0};
    int rc = db_whatsapp.verify(a, &in, &e);
    if (rc != DB_OK) assert_int_equal(e.code, rc);
    db_headers_clear(&h);
    return rc;
}

static void sign(const char *secret, const char *body, int upper, char out[80])
{
    unsigned char mac[32];
    char hex[65];
    db_hmac_sha256(secret, strlen(secret), body, strlen(body), mac);
    db_hex_encode(mac, sizeof mac, hex);
    if (upper)
        for (char *p = hex; *p; p++)
            if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    snprintf(out, 80, "sha256=%s", hex);
}

/* As Meta sends it: non-ASCII escaped, "/" escaped. */
static const char signed_body[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[]}],"
    "\"x\":\"\\u0645\\u0631\\u062d\\u0628\\u0627 \\ud83d\\udc4d a\\/b\"}";

static void verify_accepts_good_signature(void **state)
{
    (void)state;
    void *a = account();
    char sig[80];
    sign(SECRET, signed_body, 0, sig);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sig, signed_body), DB_OK);
    /* header names are case-insensitive */
    assert_int_equal(verify_with(a, "x-hub-signature-256", sig, signed_body), DB_OK);
    db_whatsapp.account_free(a);
}

static void verify_accepts_uppercase_hex(void **state)
{
    (void)state;
    void *a = account();
    char sig[80];
    sign(SECRET, signed_body, 1, sig);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sig, signed_body), DB_OK);
    db_whatsapp.account_free(a);
}

static void verify_rejects_tampered_body(void **state)
{
    (void)state;
    void *a = account();
    char sig[80];
    sign(SECRET, signed_body, 0, sig);
    char *tampered = strdup(signed_body);
    tampered[strlen(tampered) - 3] = 'c';
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sig, tampered), DB_EAUTH);
    /* the same text re-serialized with raw UTF-8 is not what Meta signed */
    static const char raw[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[]}],"
        "\"x\":\"مرحبا 👍 a/b\"}";
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sig, raw), DB_EAUTH);
    free(tampered);
    db_whatsapp.account_free(a);
}

static void verify_rejects_wrong_secret(void **state)
{
    (void)state;
    void *a = account();
    char sig[80];
    sign("not-the-secret", signed_body, 0, sig);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sig, signed_body), DB_EAUTH);
    db_whatsapp.account_free(a);
}

static void verify_rejects_missing_and_malformed_headers(void **state)
{
    (void)state;
    void *a = account();
    char sig[80];
    sign(SECRET, signed_body, 0, sig);
    assert_int_equal(verify_with(a, NULL, NULL, signed_body), DB_EAUTH);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", "", signed_body), DB_EAUTH);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sig + 7, signed_body), DB_EAUTH);
    char shortsig[80];
    snprintf(shortsig, sizeof shortsig, "%.70s", sig);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", shortsig, signed_body), DB_EAUTH);
    char nonhex[80];
    snprintf(nonhex, sizeof nonhex, "%s", sig);
    nonhex[10] = 'g';
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", nonhex, signed_body), DB_EAUTH);
    char sha1pfx[80];
    snprintf(sha1pfx, sizeof sha1pfx, "sha1=%s", sig + 7);
    assert_int_equal(verify_with(a, "X-Hub-Signature-256", sha1pfx, signed_body), DB_EAUTH);
    db_whatsapp.account_free(a);
}

static void verify_rejects_legacy_sha1_header_only(void **state)
{
    (void)state;
    void *a = account();
    /* a correct HMAC-SHA1 would not help either: only the SHA-256 header counts */
    assert_int_equal(verify_with(a, "X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567",
                                 signed_body),
                     DB_EAUTH);
    db_whatsapp.account_free(a);
}

static void verify_accepts_previous_secret_during_rotation(void **state)
{
    (void)state;
    static const char *const kv[] = {"access_token=t", "app_secret=" SECRET,
                                     "app_secret_previous=" OLD_SECRET, "verify_token=v", NULL};
    void *rot = db_test_account(&db_whatsapp, ACC, kv);
    void *plain = account();
    char sig_old[80], sig_new[80];
    sign(OLD_SECRET, signed_body, 0, sig_old);
    sign(SECRET, signed_body, 0, sig_new);
    assert_int_equal(verify_with(rot, "X-Hub-Signature-256", sig_old, signed_body), DB_OK);
    assert_int_equal(verify_with(rot, "X-Hub-Signature-256", sig_new, signed_body), DB_OK);
    assert_int_equal(verify_with(plain, "X-Hub-Signature-256", sig_old, signed_body), DB_EAUTH);
    db_whatsapp.account_free(rot);
    db_whatsapp.account_free(plain);
}

/* ---------------------------------------------------------------- handshake */

static int handshake(const void *a, const char *query, char **body)
{
    struct db_headers h = {0};
    struct db_inbound in = {.method = "GET", .query = query, .headers = &h};
    struct db_err e = {0};
    *body = NULL;
    return db_whatsapp.handshake(a, &in, body, &e);
}

static void handshake_echoes_challenge_for_right_token(void **state)
{
    (void)state;
    void *a = account();
    char *body;
    assert_int_equal(
        handshake(a, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=hub-verify-me",
                  &body),
        DB_OK);
    assert_string_equal(body, "1158201444");
    free(body);
    /* percent-encoded token and any parameter order */
    assert_int_equal(
        handshake(a, "hub.verify_token=hub%2Dverify%2Dme&hub.challenge=abc&hub.mode=subscribe",
                  &body),
        DB_OK);
    assert_string_equal(body, "abc");
    free(body);
    db_whatsapp.account_free(a);
}

static void handshake_rejects_wrong_token_mode_or_challenge(void **state)
{
    (void)state;
    void *a = account();
    char *body;
    static const char *const bad[] = {
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=hub-verify-m",
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=hub-verify-me2",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=hub-verify-me",
        "hub.challenge=1&hub.verify_token=hub-verify-me",
        "hub.mode=subscribe&hub.verify_token=hub-verify-me",
        "hub.mode=subscribe&hub.challenge=&hub.verify_token=hub-verify-me",
        "hub.mode=subscribe&hub.challenge=a%0Ab&hub.verify_token=hub-verify-me",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(handshake(a, bad[i], &body), DB_EAUTH);
        assert_null(body);
    }
    db_whatsapp.account_free(a);
}

/* ---------------------------------------------------------------- account_new */

static int try_account(const char *account_id, const struct db_conf_kv *kv, size_t n,
                       struct db_err *e)
{
    struct db_conf_section sec = {"whatsapp", account_id, kv, n};
    void *a = NULL;
    int rc = db_whatsapp.account_new(&sec, &a, e);
    if (rc == DB_OK) {
        assert_non_null(a);
        db_whatsapp.account_free(a);
    } else {
        assert_null(a);
    }
    return rc;
}

#define KV(k, v, line) {k, v, "wa.conf", line}

static void account_new_rejects_bad_configuration(void **state)
{
    (void)state;
    struct db_err e = {0};
    const struct db_conf_kv ok[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                    KV("verify_token", "v", 3)};
    assert_int_equal(try_account(ACC, ok, 3, &e), DB_OK);

    const struct db_conf_kv unknown[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                         KV("verify_token", "v", 3), KV("app_secrett", "x", 4)};
    assert_int_equal(try_account(ACC, unknown, 4, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "wa.conf:4: app_secrett"));

    assert_int_equal(try_account(ACC, ok + 1, 2, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "access_token"));
    assert_non_null(strstr(e.msg, "required"));
    assert_int_equal(try_account(ACC, ok, 2, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "verify_token"));

    const struct db_conf_kv empty_secret[] = {KV("access_token", "t", 1), KV("app_secret", "", 2),
                                              KV("verify_token", "v", 3)};
    assert_int_equal(try_account(ACC, empty_secret, 3, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "wa.conf:2: app_secret"));

    const struct db_conf_kv newline[] = {KV("access_token", "t\r\nX-Evil: 1", 1),
                                         KV("app_secret", "s", 2), KV("verify_token", "v", 3)};
    assert_int_equal(try_account(ACC, newline, 3, &e), DB_ECONFIG);
    assert_null(strstr(e.msg, "X-Evil")); /* the value (a secret) is not echoed */

    /* the account id is not a number id and no phone_number_id says which number */
    assert_int_equal(try_account("support", ok, 3, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "phone_number_id"));
    const struct db_conf_kv named[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                       KV("verify_token", "v", 3),
                                       KV("phone_number_id", "106540352242922", 4)};
    assert_int_equal(try_account("support", named, 4, &e), DB_OK);
    const struct db_conf_kv bad_pnid[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                          KV("verify_token", "v", 3),
                                          KV("phone_number_id", "1065/../me", 4)};
    assert_int_equal(try_account(ACC, bad_pnid, 4, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "wa.conf:4: phone_number_id"));

    const struct db_conf_kv bad_base[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                          KV("verify_token", "v", 3),
                                          KV("api_base", "graph.facebook.com/v21.0", 5)};
    assert_int_equal(try_account(ACC, bad_base, 4, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "wa.conf:5: api_base"));
}

/* Every key of [whatsapp ID] is read through the connector's key table: a wrong value is
 * named by key and line and never quoted back (the tokens and secrets are secrets). */
static void account_errors_name_key_and_line(void **state)
{
    (void)state;
    static const char *const kv[] = {"access_token=EAAGtestTOKEN", "app_secret=s3cr3t",
                                     "verify_token=verify-me", NULL};
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"access_token", "EAAG\r\nX-Evil: 1",
         "test.conf:9: access_token: contains control characters"},
        {"access_token", "", "test.conf:9: access_token: must not be empty"},
        {"app_secret", "abc\tdef", "test.conf:9: app_secret: contains control characters"},
        {"app_secret_previous", "old\nsecret",
         "test.conf:9: app_secret_previous: contains control characters"},
        {"verify_token", "", "test.conf:9: verify_token: must not be empty"},
        {"phone_number_id", "1065/../me",
         "test.conf:9: phone_number_id: must be the digits of a phone number id"},
        {"phone_number_id", "123456789012345678901234567890123",
         "test.conf:9: phone_number_id: must be the digits of a phone number id"},
        {"api_base", "graph.facebook.com/v21.0",
         "test.conf:9: api_base: must start with http:// or https://"},
        {"api_base", "https://graph.example/v 21",
         "test.conf:9: api_base: contains a blank or control character"},
        {"business_account_id", "12ab",
         "test.conf:9: business_account_id: must be the digits of a WhatsApp Business Account id"},
        {"colour", "blue", "test.conf:9: colour: unknown key in [whatsapp]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        db_test_account_refuses(&db_whatsapp, ACC, kv, cases[i].key, cases[i].value,
                                cases[i].want);

    struct db_err e = {0};
    const struct db_conf_kv no_token[] = {KV("app_secret", "s", 2), KV("verify_token", "v", 3)};
    assert_int_equal(try_account(ACC, no_token, 2, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "[whatsapp " ACC "]: access_token: is required");
    const struct db_conf_kv ok[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                    KV("verify_token", "v", 3)};
    assert_int_equal(try_account("support", ok, 3, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "[whatsapp support]: phone_number_id: is required when the "
                               "account id is not a phone number id");
    /* Empty optional keys count as unset. */
    const struct db_conf_kv empty_optional[] = {KV("access_token", "t", 1), KV("app_secret", "s", 2),
                                                KV("verify_token", "v", 3),
                                                KV("app_secret_previous", "", 4),
                                                KV("business_account_id", "", 5)};
    assert_int_equal(try_account(ACC, empty_optional, 5, &e), DB_OK);
    assert_non_null(db_whatsapp.account_keys);
}

/* ---------------------------------------------------------------- build_send */

/* Runs build_send and returns the parsed body (new reference) or NULL on error (rc in *rc). */
static json_t *send_body(const void *a, const struct db_outbound *m, struct db_http_req *req,
                         int *rc, struct db_err *e)
{
    memset(req, 0, sizeof *req);
    *rc = db_whatsapp.build_send(a, m, req, e);
    if (*rc != DB_OK) return NULL;
    assert_string_equal(req->method, "POST");
    assert_string_equal(db_headers_get(&req->headers, "Authorization"), "Bearer EAAGtestTOKEN");
    assert_non_null(strstr(db_headers_get(&req->headers, "Content-Type"), "application/json"));
    json_t *b = json_loadb(req->body, req->body_len, 0, NULL);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "messaging_product")), "whatsapp");
    assert_string_equal(json_string_value(json_object_get(b, "recipient_type")), "individual");
    return b;
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("got %s\nwant %s", g, want_text);
    }
    json_decref(want);
}

static void build_send_text_with_reply(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req;
    struct db_err e = {0};
    int rc;
    struct db_outbound m = {.chat_id = "16505551234", .text = "Zażółć 👍", .reply_to = "wamid.IN"};
    json_t *b = send_body(a, &m, &req, &rc, &e);
    assert_int_equal(rc, DB_OK);
    assert_string_equal(req.url, "https://graph.facebook.com/v21.0/" ACC "/messages");
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"16505551234\",\"type\":\"text\",\"text\":{\"body\":\"Zażółć 👍\","
                   "\"preview_url\":false},\"context\":{\"message_id\":\"wamid.IN\"}}");
    json_decref(b);
    db_http_req_clear(&req);
    db_whatsapp.account_free(a);
}

/* Up to three buttons go as interactive reply buttons, more as a list message whose rows are
 * the buttons (Meta's interactive-reply-buttons and interactive-list message shapes). */
static void build_send_buttons_and_list(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req;
    struct db_err e = {0};
    int rc;
    json_t *three = json_loads("[{\"id\":\"a\",\"title\":\"One\"},{\"id\":\"b\",\"title\":\"Two\"},"
                               "{\"id\":\"c\",\"title\":\"Three\"}]", 0, NULL);
    struct db_outbound m = {.chat_id = "16505551234", .text = "Pick", .buttons = three};
    json_t *b = send_body(a, &m, &req, &rc, &e);
    assert_int_equal(rc, DB_OK);
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"16505551234\",\"type\":\"interactive\",\"interactive\":{"
                   "\"type\":\"button\",\"body\":{\"text\":\"Pick\"},\"action\":{\"buttons\":["
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"One\"}},"
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"Two\"}},"
                   "{\"type\":\"reply\",\"reply\":{\"id\":\"c\",\"title\":\"Three\"}}]}}}");
    json_decref(b);
    db_http_req_clear(&req);

    json_array_append_new(three, json_pack("{s:s, s:s}", "id", "d", "title", "Four"));
    json_t *extra = json_pack("{s:s}", "buttons_label", "Menu");
    m.extra = extra;
    b = send_body(a, &m, &req, &rc, &e);
    assert_int_equal(rc, DB_OK);
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"16505551234\",\"type\":\"interactive\",\"interactive\":{"
                   "\"type\":\"list\",\"body\":{\"text\":\"Pick\"},\"action\":{\"button\":\"Menu\","
                   "\"sections\":[{\"rows\":[{\"id\":\"a\",\"title\":\"One\"},{\"id\":\"b\",\"title\":\"Two\"},"
                   "{\"id\":\"c\",\"title\":\"Three\"},{\"id\":\"d\",\"title\":\"Four\"}]}]}}}");
    json_decref(b);
    db_http_req_clear(&req);

    /* What Meta would refuse is refused here too: a title over 20 characters. */
    json_object_set_new(json_array_get(three, 0), "title", json_string("A title far too long!!"));
    b = send_body(a, &m, &req, &rc, &e);
    assert_null(b);
    assert_int_equal(rc, DB_EINVAL);
    assert_non_null(strstr(e.msg, "button title"));
    db_http_req_clear(&req);
    json_decref(extra);
    json_decref(three);
    db_whatsapp.account_free(a);
}

static void build_send_media_types(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req;
    struct db_err e = {0};
    int rc;
    struct {
        struct db_outbound m;
        const char *want;
    } cases[] = {
        {{.chat_id = "1", .media_type = "image", .media_url = "https://x.test/a.png", .text = "cap"},
         "{\"type\":\"image\",\"image\":{\"link\":\"https://x.test/a.png\",\"caption\":\"cap\"}}"},
        {{.chat_id = "1", .media_type = "video", .media_id = "123", .media_url = "https://x.test/v"},
         "{\"type\":\"video\",\"video\":{\"id\":\"123\"}}"},
        {{.chat_id = "1", .media_type = "document", .media_id = "9", .file_name = "a.pdf", .text = "see"},
         "{\"type\":\"document\",\"document\":{\"id\":\"9\",\"caption\":\"see\",\"filename\":\"a.pdf\"}}"},
        {{.chat_id = "1", .media_type = "audio", .media_url = "https://x.test/a.mp3"},
         "{\"type\":\"audio\",\"audio\":{\"link\":\"https://x.test/a.mp3\"}}"},
        {{.chat_id = "1", .media_type = "voice", .media_id = "77"},
         "{\"type\":\"audio\",\"audio\":{\"id\":\"77\"}}"},
        {{.chat_id = "1", .media_type = "sticker", .media_id = "5", .file_name = "ignored.webp"},
         "{\"type\":\"sticker\",\"sticker\":{\"id\":\"5\"}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *b = send_body(a, &cases[i].m, &req, &rc, &e);
        assert_int_equal(rc, DB_OK);
        json_object_del(b, "messaging_product");
        json_object_del(b, "recipient_type");
        json_object_del(b, "to");
        assert_json(b, cases[i].want);
        json_decref(b);
        db_http_req_clear(&req);
    }
    db_whatsapp.account_free(a);
}

static void build_send_template(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req;
    struct db_err e = {0};
    int rc;
    json_t *extra = json_loads("{\"template\":{\"name\":\"ticket_update\",\"language\":\"pl\","
                               "\"parameters\":[\"Anna\",\"#4521\"]}}",
                               0, NULL);
    struct db_outbound m = {.chat_id = "48600100200", .text = "ignored", .extra = extra};
    json_t *b = send_body(a, &m, &req, &rc, &e);
    assert_int_equal(rc, DB_OK);
    assert_json(b, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                   "\"to\":\"48600100200\",\"type\":\"template\",\"template\":{\"name\":"
                   "\"ticket_update\",\"language\":{\"code\":\"pl\"},\"components\":[{\"type\":"
                   "\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Anna\"},{\"type\":"
                   "\"text\",\"text\":\"#4521\"}]}]}}");
    json_decref(b);
    db_http_req_clear(&req);
    json_decref(extra);

    extra = json_loads("{\"template\":{\"name\":\"hello_world\",\"language\":\"en_US\"}}", 0, NULL);
    m.extra = extra;
    b = send_body(a, &m, &req, &rc, &e);
    assert_int_equal(rc, DB_OK);
    assert_json(json_object_get(b, "template"),
                "{\"name\":\"hello_world\",\"language\":{\"code\":\"en_US\"}}");
    json_decref(b);
    db_http_req_clear(&req);
    json_decref(extra);

    static const char *const bad[] = {
        "{\"template\":{\"language\":\"en\"}}",
        "{\"template\":{\"name\":\"x\"}}",
        "{\"template\":{\"name\":\"x\",\"language\":{\"code\":\"en\"}}}",
        "{\"template\":{\"name\":\"x\",\"language\":\"en\",\"parameters\":[1]}}",
        "{\"template\":{\"name\":\"x\",\"language\":\"en\",\"parameters\":\"a\"}}",
        "{\"template\":\"hello_world\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        extra = json_loads(bad[i], 0, NULL);
        assert_non_null(extra);
        m.extra = extra;
        memset(&req, 0, sizeof req);
        assert_int_equal(db_whatsapp.build_send(a, &m, &req, &e), DB_EINVAL);
        assert_null(req.url);
        json_decref(extra);
    }
    db_whatsapp.account_free(a);
}

static void build_send_rejects_what_whatsapp_refuses(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req;
    struct db_err e = {0};
    /* 4096 characters of two bytes each pass; 4097 do not */
    char *t = malloc(2 * 4097 + 1);
    for (int i = 0; i < 4097; i++) memcpy(t + 2 * i, "ż", 2);
    t[2 * 4096] = '\0';
    struct db_outbound ok = {.chat_id = "1", .text = t};
    memset(&req, 0, sizeof req);
    assert_int_equal(db_whatsapp.build_send(a, &ok, &req, &e), DB_OK);
    db_http_req_clear(&req);
    t[2 * 4097] = '\0';
    memcpy(t + 2 * 4096, "ż", 2);
    struct db_outbound too_long = {.chat_id = "1", .text = t};
    assert_int_equal(db_whatsapp.build_send(a, &too_long, &req, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "4096"));
    assert_null(req.url);
    free(t);

    const struct db_outbound bad[] = {
        {.chat_id = NULL, .text = "x"},
        {.chat_id = "", .text = "x"},
        {.chat_id = "1"},
        {.chat_id = "1", .text = ""},
        {.chat_id = "1", .media_type = "image"},
        {.chat_id = "1", .media_url = "https://x.test/a"},
        {.chat_id = "1", .media_type = "animation", .media_url = "https://x.test/a.gif"},
        {.chat_id = "1", .media_type = "audio", .media_id = "1", .text = "caption"},
        {.chat_id = "1", .media_type = "sticker", .media_id = "1", .text = "caption"},
        {.chat_id = "1", .text = "\xc5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&req, 0, sizeof req);
        e.code = 0;
        assert_int_equal(db_whatsapp.build_send(a, &bad[i], &req, &e), DB_EINVAL);
        assert_int_equal(e.code, DB_EINVAL);
        assert_null(req.url);
    }
    db_whatsapp.account_free(a);
}

static void build_send_uses_configured_base_and_number(void **state)
{
    (void)state;
    static const char *const kv[] = {"access_token=tok", "app_secret=s", "verify_token=v",
                                     "phone_number_id=555000111",
                                     "api_base=http://127.0.0.1:8099/v99.0/", NULL};
    void *a = db_test_account(&db_whatsapp, "support", kv);
    struct db_http_req req = {0};
    struct db_err e = {0};
    struct db_outbound m = {.chat_id = "1", .text = "hi"};
    assert_int_equal(db_whatsapp.build_send(a, &m, &req, &e), DB_OK);
    assert_string_equal(req.url, "http://127.0.0.1:8099/v99.0/555000111/messages");
    assert_string_equal(db_headers_get(&req.headers, "Authorization"), "Bearer tok");
    db_http_req_clear(&req);
    db_whatsapp.account_free(a);
}

/* ---------------------------------------------------------------- read_send */

static int read_send(long status, const char *body, struct db_send_result *res)
{
    struct db_http_resp r = {.status = status, .body = body, .body_len = body ? strlen(body) : 0,
                             .transport_error = status ? NULL : "timeout"};
    struct db_err e = {0};
    return db_whatsapp.read_send(NULL, &r, res, &e);
}

#define META_ERR(code, msg)                                                                     \
    "{\"error\":{\"message\":\"" msg "\",\"type\":\"OAuthException\",\"code\":" code             \
    ",\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":\"d\"},\"fbtrace_id\":"     \
    "\"Az8or2yhqkZfEZ-_4Qn_Bam\"}}"

static void read_send_classifies_answers(void **state)
{
    (void)state;
    struct db_send_result res;
    assert_int_equal(read_send(200, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":"
                                    "\"16505551234\",\"wa_id\":\"16505551234\"}],\"messages\":[{\"id\":"
                                    "\"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3AA==\"}]}",
                               &res),
                     DB_OK);
    assert_int_equal(res.outcome, DB_SEND_SENT);
    assert_string_equal(res.external_id, "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3AA==");

    assert_int_equal(read_send(400, META_ERR("131047", "Re-engagement message"), &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "131047");
    assert_non_null(strstr(res.err_msg, "24-hour"));
    assert_non_null(strstr(res.err_msg, "template"));

    static const char *const retry_codes[] = {"130429", "131056", "4", "80007"};
    for (size_t i = 0; i < 4; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"error\":{\"message\":\"limit\",\"code\":%s,\"fbtrace_id\":\"x\"}}",
                 retry_codes[i]);
        assert_int_equal(read_send(i == 2 ? 403 : 400, body, &res), DB_OK);
        assert_int_equal(res.outcome, DB_SEND_RETRY);
        assert_string_equal(res.err_code, retry_codes[i]);
        assert_int_equal(res.per_chat, strcmp(retry_codes[i], "131056") == 0);
    }

    assert_int_equal(read_send(400, META_ERR("131026", "Message undeliverable"), &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "131026");
    assert_string_equal(res.err_msg, "Message undeliverable");

    assert_int_equal(read_send(401, META_ERR("190", "Error validating access token"), &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "190");

    /* error code given as a string is still a code */
    assert_int_equal(read_send(400, "{\"error\":{\"code\":\"100\",\"error_data\":{\"details\":"
                                    "\"Invalid parameter\"}}}",
                               &res),
                     DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "100");
    assert_string_equal(res.err_msg, "Invalid parameter");

    assert_int_equal(read_send(500, META_ERR("1", "An unknown error occurred"), &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(429, META_ERR("131048", "Spam rate limit hit"), &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_string_equal(res.err_code, "131048");
    assert_int_equal(read_send(503, "<html>Service Unavailable</html>", &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(0, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);

    /* unreadable answers: RETRY, and the caller learns it was unreadable */
    assert_int_equal(read_send(200, "{\"messages\":[]}", &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(200, "not json", &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(200, NULL, &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(400, "{\"oops\":1}", &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
}

static void read_send_cuts_long_messages_on_a_character(void **state)
{
    (void)state;
    char body[2048];
    char msg[700] = "";
    for (int i = 0; i < 300; i++) strcat(msg, "ż");
    snprintf(body, sizeof body, "{\"error\":{\"code\":100,\"message\":\"%s\"}}", msg);
    struct db_send_result res;
    assert_int_equal(read_send(400, body, &res), DB_OK);
    size_t n = strlen(res.err_msg);
    assert_true(n > 100 && n < sizeof res.err_msg);
    assert_int_equal(n % 2, 0); /* whole two-byte characters only */
}

/* ---------------------------------------------------------------- media */

static void media_lookup_then_download_with_token(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req = {0}, dl = {0};
    struct db_err e = {0};
    assert_int_equal(db_whatsapp.build_media_lookup(a, "1479537139650973", &req, &e), DB_OK);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.url, "https://graph.facebook.com/v21.0/1479537139650973");
    assert_string_equal(db_headers_get(&req.headers, "Authorization"), "Bearer EAAGtestTOKEN");
    db_http_req_clear(&req);
    assert_int_equal(db_whatsapp.build_media_lookup(a, "../me", &req, &e), DB_EINVAL);
    assert_int_equal(db_whatsapp.build_media_lookup(a, "", &req, &e), DB_EINVAL);

    static const char ok[] =
        "{\"messaging_product\":\"whatsapp\",\"url\":\"https://lookaside.fbsbx.com/whatsapp_"
        "business/attachments/?mid=1479537139650973&ext=1\",\"mime_type\":\"image/jpeg\","
        "\"sha256\":\"x\",\"file_size\":303833,\"id\":\"1479537139650973\"}";
    struct db_http_resp r = {.status = 200, .body = ok, .body_len = sizeof ok - 1};
    assert_int_equal(db_whatsapp.read_media_lookup(a, &r, &dl, &e), DB_OK);
    assert_string_equal(dl.method, "GET");
    assert_string_equal(dl.url, "https://lookaside.fbsbx.com/whatsapp_business/attachments/"
                                "?mid=1479537139650973&ext=1");
    assert_string_equal(db_headers_get(&dl.headers, "Authorization"), "Bearer EAAGtestTOKEN");
    db_http_req_clear(&dl);

    static const char nf[] = META_ERR("100", "Unsupported get request");
    r = (struct db_http_resp){.status = 404, .body = nf, .body_len = sizeof nf - 1};
    assert_int_equal(db_whatsapp.read_media_lookup(a, &r, &dl, &e), DB_ENOTFOUND);
    r.status = 400;
    assert_int_equal(db_whatsapp.read_media_lookup(a, &r, &dl, &e), DB_EREJECTED);
    r = (struct db_http_resp){.status = 200, .body = "{}", .body_len = 2};
    assert_int_equal(db_whatsapp.read_media_lookup(a, &r, &dl, &e), DB_EREJECTED);
    r = (struct db_http_resp){.status = 200, .body = "{\"url\":\"file:///etc/passwd\"}",
                              .body_len = 28};
    assert_int_equal(db_whatsapp.read_media_lookup(a, &r, &dl, &e), DB_EREJECTED);
    assert_null(dl.url);
    db_whatsapp.account_free(a);
}

static void connector_table_is_as_documented(void **state)
{
    (void)state;
    assert_string_equal(db_whatsapp.name, "whatsapp");
    assert_int_equal(db_whatsapp.max_body, 4u * 1024 * 1024);
    assert_int_equal(db_whatsapp.max_text_chars, 4096);
    assert_int_equal(db_whatsapp.split_long_text, 0);
    assert_null(db_whatsapp.build_poll);
    assert_null(db_whatsapp.read_poll);
    assert_null(db_whatsapp.build_webhook_setup);
    assert_non_null(db_whatsapp.handshake);
    assert_ptr_equal(db_connector_find("whatsapp"), &db_whatsapp);
}

/* `test_whatsapp --verify SECRET FILE HEADER`: runs the connector's verify over FILE's bytes
 * with X-Hub-Signature-256: HEADER, for the interop script.  Exit 0 when accepted, 1 when
 * refused, 2 on usage errors. */
static int verify_cli(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_whatsapp --verify SECRET FILE HEADER\n");
        return 2;
    }
    char secret_kv[512];
    snprintf(secret_kv, sizeof secret_kv, "app_secret=%s", argv[2]);
    struct db_conf_kv kv[] = {{"access_token", "t", "cli", 1},
                              {"app_secret", secret_kv + 11, "cli", 2},
                              {"verify_token", "v", "cli", 3}};
    struct db_conf_section sec = {"whatsapp", ACC, kv, 3};
    void *a = NULL;
    struct db_err e = {0};
    if (db_whatsapp.account_new(&sec, &a, &e) != DB_OK) {
        fprintf(stderr, "account: %s\n", e.msg);
        return 2;
    }
    size_t len;
    char *body = db_test_read_file(argv[3], &len);
    struct db_headers h = {0};
    if (db_headers_add(&h, "X-Hub-Signature-256", argv[4]) != DB_OK) return 2;
    struct db_inbound in = {.method = "POST", .headers = &h,
                            .body = (const unsigned char *)body, .body_len = len};
    int rc = db_whatsapp.verify(a, &in, &e);
    db_headers_clear(&h);
    free(body);
    db_whatsapp.account_free(a);
    printf("%s\n", rc == DB_OK ? "accepted" : "refused");
    return rc == DB_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--verify") == 0) return verify_cli(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_fixtures_match_expected_events),
        cmocka_unit_test(parse_handles_5mib_batch),
        cmocka_unit_test(parse_rejects_100000_deep_nesting_and_keeps_out),
        cmocka_unit_test(parse_appends_after_existing_events),
        cmocka_unit_test(parse_error_names_the_field),
        cmocka_unit_test(verify_accepts_good_signature),
        cmocka_unit_test(verify_accepts_uppercase_hex),
        cmocka_unit_test(verify_rejects_tampered_body),
        cmocka_unit_test(verify_rejects_wrong_secret),
        cmocka_unit_test(verify_rejects_missing_and_malformed_headers),
        cmocka_unit_test(verify_rejects_legacy_sha1_header_only),
        cmocka_unit_test(verify_accepts_previous_secret_during_rotation),
        cmocka_unit_test(handshake_echoes_challenge_for_right_token),
        cmocka_unit_test(handshake_rejects_wrong_token_mode_or_challenge),
        cmocka_unit_test(account_new_rejects_bad_configuration),
        cmocka_unit_test(account_errors_name_key_and_line),
        cmocka_unit_test(build_send_text_with_reply),
        cmocka_unit_test(build_send_buttons_and_list),
        cmocka_unit_test(build_send_media_types),
        cmocka_unit_test(build_send_template),
        cmocka_unit_test(build_send_rejects_what_whatsapp_refuses),
        cmocka_unit_test(build_send_uses_configured_base_and_number),
        cmocka_unit_test(read_send_classifies_answers),
        cmocka_unit_test(read_send_cuts_long_messages_on_a_character),
        cmocka_unit_test(media_lookup_then_download_with_token),
        cmocka_unit_test(connector_table_is_as_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
