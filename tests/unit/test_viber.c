/* test_viber.c - the Viber connector: fixtures for parse, and direct tests of the other
 * operations (verify, account keys, send building and classification, webhook setup). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deskbridge/connector.h"
#include "fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define TOKEN "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"

static const char *const base_kv[] = {"auth_token=" TOKEN, NULL};

static void *account(void)
{
    return db_test_account(&db_viber, "vb1", base_kv);
}

/* ---- account keys ---- */

static int try_account(const char *id, const char *const *kv, void **acct, struct db_err *e)
{
    struct db_conf_kv items[16];
    char keys[16][64];
    size_t n = 0;
    for (; kv[n]; n++) {
        const char *eq = strchr(kv[n], '=');
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)(eq - kv[n]), kv[n]);
        items[n] = (struct db_conf_kv){keys[n], eq + 1, "viber.conf", (int)n + 10};
    }
    struct db_conf_section sec = {"viber", id, items, n};
    return db_viber.account_new(&sec, acct, e);
}

static void account_rejects_missing_token(void **state)
{
    (void)state;
    void *a = NULL;
    struct db_err e = {0};
    const char *const kv[] = {"sender_name=Acme", NULL};
    assert_int_equal(try_account("vb1", kv, &a, &e), DB_ECONFIG);
    assert_null(a);
    assert_non_null(strstr(e.msg, "auth_token"));
}

static void account_rejects_unknown_key(void **state)
{
    (void)state;
    void *a = NULL;
    struct db_err e = {0};
    const char *const kv[] = {"auth_token=" TOKEN, "webhook_secret=x", NULL};
    assert_int_equal(try_account("vb1", kv, &a, &e), DB_ECONFIG);
    assert_null(a);
    assert_string_equal(e.msg, "viber.conf:11: webhook_secret: unknown key in [viber]");
}

/* Every key of [viber ID] is read through the connector's key table: a wrong value is
 * named by key and line and never quoted back (the token is a secret). */
static void account_errors_name_key_and_line(void **state)
{
    (void)state;
    static char long_text[7001 * 2 + 1]; /* one character more than a Viber text holds */
    for (int i = 0; i < 7001; i++) memcpy(long_text + 2 * i, "Ж", 2);
    long_text[7001 * 2] = '\0';
    static const char *const kv[] = {"auth_token=" TOKEN, "sender_name=Acme", NULL};
    const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"auth_token", "two words",
         "test.conf:9: auth_token: must be printable ASCII without spaces"},
        {"auth_token", "", "test.conf:9: auth_token: must not be empty"},
        {"sender_name", "", "test.conf:9: sender_name: must not be empty"},
        {"sender_name", "Acme \xff", "test.conf:9: sender_name: must be non-empty UTF-8"},
        {"sender_avatar", "not a url", "test.conf:9: sender_avatar: must be an http(s) URL"},
        {"api_base", "ftp://x", "test.conf:9: api_base: must start with http:// or https://"},
        {"api_base", "https://chatapi.viber.com/p\xc3\xa4",
         "test.conf:9: api_base: must be ASCII"},
        {"welcome_text", long_text,
         "test.conf:9: welcome_text: must be UTF-8 of at most 7000 characters"},
        {"colour", "blue", "test.conf:9: colour: unknown key in [viber]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        db_test_account_refuses(&db_viber, "vb1", kv, cases[i].key, cases[i].value,
                                cases[i].want);

    void *a = NULL;
    struct db_err e = {0};
    const char *const no_token[] = {"sender_name=Acme", NULL};
    assert_int_equal(try_account("vb1", no_token, &a, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "[viber vb1]: auth_token: is required");
    /* Empty optional texts switch the avatar and the welcome off. */
    const char *const empty_optional[] = {"auth_token=" TOKEN, "sender_avatar=", "welcome_text=",
                                          NULL};
    assert_int_equal(try_account("vb1", empty_optional, &a, &e), DB_OK);
    db_viber.account_free(a);
    assert_non_null(db_viber.account_keys);
}

static void account_counts_sender_name_in_characters(void **state)
{
    (void)state;
    char kv_name[200] = "sender_name=";
    /* 28 Cyrillic letters are 56 bytes and still a valid name; a 29th is one too many. */
    for (int i = 0; i < 28; i++) strcat(kv_name, "Ж");
    const char *const kv[] = {"auth_token=" TOKEN, kv_name, NULL};
    void *a = NULL;
    struct db_err e = {0};
    assert_int_equal(try_account("vb1", kv, &a, &e), DB_OK);
    db_viber.account_free(a);
    a = NULL;

    strcat(kv_name, "Ж");
    assert_int_equal(try_account("vb1", kv, &a, &e), DB_ECONFIG);
    assert_null(a);
    assert_non_null(strstr(e.msg, "viber.conf:11: sender_name: longer than 28 characters"));
}

static void account_default_sender_name_is_checked(void **state)
{
    (void)state;
    void *a = NULL;
    struct db_err e = {0};
    assert_int_equal(try_account("an-account-id-that-is-too-long", base_kv, &a, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "[viber an-account-id-that-is-too-long]: sender_name"));
}

static void account_rejects_bad_values_without_echoing_the_token(void **state)
{
    (void)state;
    void *a = NULL;
    struct db_err e = {0};
    const char *const bad_base[] = {"auth_token=" TOKEN, "api_base=ftp://x", NULL};
    assert_int_equal(try_account("vb1", bad_base, &a, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "api_base"));
    const char *const bad_avatar[] = {"auth_token=" TOKEN, "sender_avatar=not a url", NULL};
    assert_int_equal(try_account("vb1", bad_avatar, &a, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "sender_avatar"));
    const char *const bad_token[] = {"auth_token=secret with\r\nnewline", NULL};
    assert_int_equal(try_account("vb1", bad_token, &a, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "auth_token"));
    assert_null(strstr(e.msg, "secret"));
    assert_null(a);
}

/* ---- parse ---- */

static void parse_fixtures(void **state)
{
    (void)state;
    void *a = account();
    int n = db_test_run_fixtures(&db_viber, a, "viber");
    assert_true(n >= 50);
    db_viber.account_free(a);
}

static void parse_fixtures_with_welcome_text(void **state)
{
    (void)state;
    const char *const kv[] = {"auth_token=" TOKEN, "sender_name=Acme Support",
                              "sender_avatar=https://example.com/bot.png",
                              "welcome_text=Hi! Write us here 👋", NULL};
    void *a = db_test_account(&db_viber, "vb1", kv);
    assert_int_equal(db_test_run_fixtures(&db_viber, a, "viber/welcome"), 3);
    db_viber.account_free(a);
}

static int parse_body(const void *a, const char *body, size_t len, struct db_event_list *out,
                      struct db_err *e)
{
    struct db_headers h = {0};
    struct db_inbound in = {.method = "POST", .path = "/webhooks/viber/vb1", .headers = &h,
                            .body = (const unsigned char *)body, .body_len = len};
    return db_viber.parse(a, &in, out, e);
}

static const char conv_started[] =
    "{\"event\":\"conversation_started\",\"timestamp\":1457764197627,\"message_token\":1,"
    "\"type\":\"open\",\"user\":{\"id\":\"u1\"},\"subscribed\":false}";

static void parse_failure_leaves_list_as_it_was(void **state)
{
    (void)state;
    const char *const kv[] = {"auth_token=" TOKEN, "welcome_text=hello", NULL};
    void *a = db_test_account(&db_viber, "vb1", kv);
    struct db_event_list out = {0};
    struct db_err e = {0};
    assert_int_equal(parse_body(a, conv_started, strlen(conv_started), &out, &e), DB_OK);
    assert_int_equal(out.n, 1);
    char *reply = out.reply_body;
    assert_non_null(reply);

    static const char bad[] = "{\"event\":\"conversation_started\",\"user\":{\"id\":7.5}}";
    assert_int_equal(parse_body(a, bad, strlen(bad), &out, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "user.id"));
    assert_int_equal(out.n, 1);
    assert_ptr_equal(out.reply_body, reply);

    /* A second valid body appends after the first. */
    static const char seen[] =
        "{\"event\":\"seen\",\"timestamp\":1,\"message_token\":42,\"user_id\":\"u1\"}";
    assert_int_equal(parse_body(a, seen, strlen(seen), &out, &e), DB_OK);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.v[1].dedupe_key, "s:42:read");
    db_event_list_clear(&out);
    db_viber.account_free(a);
}

static void parse_rejects_five_mib_body(void **state)
{
    (void)state;
    void *a = account();
    size_t len = 5u << 20;
    char *body = malloc(len + 1);
    assert_non_null(body);
    static const char head[] = "{\"event\":\"message\",\"message_token\":1,\"sender\":{\"id\":\"u\"},"
                               "\"message\":{\"type\":\"text\",\"text\":\"";
    memcpy(body, head, sizeof head - 1);
    memset(body + sizeof head - 1, 'a', len - (sizeof head - 1) - 4);
    memcpy(body + len - 4, "\"}}", 4); /* 3 bytes + NUL: body is len-1 bytes of JSON */
    struct db_event_list out = {0};
    struct db_err e = {0};
    int rc = parse_body(a, body, len - 1, &out, &e);
    assert_int_equal(rc, DB_ETOOBIG);
    assert_int_equal(out.n, 0);

    /* Just under max_body, the same shape is an ordinary (long) message. */
    size_t ok_len = db_viber.max_body;
    memcpy(body + ok_len - 4, "\"}}", 4);
    assert_int_equal(parse_body(a, body, ok_len - 1, &out, &e), DB_OK);
    assert_int_equal(out.n, 1);
    db_event_list_clear(&out);
    free(body);
    db_viber.account_free(a);
}

static void parse_rejects_deep_nesting(void **state)
{
    (void)state;
    void *a = account();
    size_t depth = 100000;
    static const char head[] = "{\"event\":\"message\",\"message_token\":1,\"sender\":{\"id\":\"u\"},"
                               "\"message\":{\"type\":\"text\",\"text\":\"x\",\"deep\":";
    size_t hl = sizeof head - 1, len = hl + 2 * depth + 2;
    char *body = malloc(len);
    assert_non_null(body);
    memcpy(body, head, hl);
    memset(body + hl, '[', depth);
    memset(body + hl + depth, ']', depth);
    memcpy(body + hl + 2 * depth, "}}", 2);
    struct db_event_list out = {0};
    struct db_err e = {0};
    assert_int_equal(parse_body(a, body, len, &out, &e), DB_EINVAL);
    assert_int_equal(out.n, 0);
    free(body);
    db_viber.account_free(a);
}

/* ---- verify ---- */

static const char sig_body[] =
    "{\"event\":\"message\",\"timestamp\":1457764197627,\"message_token\":4912661846655238145,"
    "\"sender\":{\"id\":\"01234567890A=\",\"name\":\"John\"},\"message\":{\"type\":\"text\","
    "\"text\":\"a message\"}}";

static void sign(const char *body, char hex[65])
{
    unsigned char mac[32];
    db_hmac_sha256(TOKEN, strlen(TOKEN), body, strlen(body), mac);
    db_hex_encode(mac, sizeof mac, hex);
}

static int verify_with(const void *a, const char *header, const char *query, const char *body)
{
    struct db_headers h = {0};
    if (header) assert_int_equal(db_headers_add(&h, "X-Viber-Content-Signature", header), DB_OK);
    struct db_inbound in = {.method = "POST", .path = "/webhooks/viber/vb1", .query = query,
                            .headers = &h, .body = (const unsigned char *)body,
                            .body_len = strlen(body)};
    struct db_err e = {0};
    int rc = db_viber.verify(a, &in, &e);
    if (rc != DB_OK) assert_null(strstr(e.msg, TOKEN));
    db_headers_clear(&h);
    return rc;
}

static void verify_accepts_good_signature_any_case(void **state)
{
    (void)state;
    void *a = account();
    char hex[65];
    sign(sig_body, hex);
    assert_int_equal(verify_with(a, hex, NULL, sig_body), DB_OK);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    assert_int_equal(verify_with(a, hex, NULL, sig_body), DB_OK);
    db_viber.account_free(a);
}

static void verify_rejects_wrong_or_missing_signature(void **state)
{
    (void)state;
    void *a = account();
    char hex[65];
    sign(sig_body, hex);
    hex[10] = hex[10] == '0' ? '1' : '0';
    assert_int_equal(verify_with(a, hex, NULL, sig_body), DB_EAUTH);
    assert_int_equal(verify_with(a, NULL, NULL, sig_body), DB_EAUTH);
    assert_int_equal(verify_with(a, "", NULL, sig_body), DB_EAUTH);
    sign(sig_body, hex);
    hex[63] = '\0'; /* truncated */
    assert_int_equal(verify_with(a, hex, NULL, sig_body), DB_EAUTH);
    /* The right signature over a tampered body. */
    sign(sig_body, hex);
    char tampered[sizeof sig_body];
    memcpy(tampered, sig_body, sizeof sig_body);
    tampered[strlen(tampered) - 5] = 'X';
    assert_int_equal(verify_with(a, hex, NULL, tampered), DB_EAUTH);
    /* A signature made with another token. */
    void *other = db_test_account(&db_viber, "vb2",
                                  (const char *const[]){"auth_token=another-token", NULL});
    assert_int_equal(verify_with(other, hex, NULL, sig_body), DB_EAUTH);
    db_viber.account_free(other);
    db_viber.account_free(a);
}

static void verify_accepts_sig_query_parameter(void **state)
{
    (void)state;
    void *a = account();
    char hex[65], q[100];
    sign(sig_body, hex);
    snprintf(q, sizeof q, "x=1&sig=%s", hex);
    assert_int_equal(verify_with(a, NULL, q, sig_body), DB_OK);
    assert_int_equal(verify_with(a, NULL, "sig=00", sig_body), DB_EAUTH);
    assert_int_equal(verify_with(a, NULL, "other=1", sig_body), DB_EAUTH);
    /* The header wins: a wrong header is not rescued by a right query parameter. */
    assert_int_equal(verify_with(a, "00", q, sig_body), DB_EAUTH);
    db_viber.account_free(a);
}

/* ---- build_send ---- */

struct sent {
    json_t *body;
    struct db_http_req req;
};

static int build(const void *a, const struct db_outbound *m, const char *extra_json,
                 struct sent *s, struct db_err *e)
{
    json_t *extra = extra_json ? json_loads(extra_json, 0, NULL) : NULL;
    if (extra_json) assert_non_null(extra);
    struct db_outbound msg = *m;
    msg.extra = extra;
    memset(s, 0, sizeof *s);
    int rc = db_viber.build_send(a, &msg, &s->req, e);
    if (rc == DB_OK) {
        s->body = json_loadb(s->req.body, s->req.body_len, 0, NULL);
        assert_non_null(s->body);
        assert_string_equal(s->req.method, "POST");
        assert_string_equal(db_headers_get(&s->req.headers, "X-Viber-Auth-Token"), TOKEN);
        assert_string_equal(json_string_value(json_object_get(s->body, "receiver")), m->chat_id);
        assert_int_equal(json_integer_value(json_object_get(s->body, "min_api_version")), 1);
        assert_true(json_is_string(json_object_get(s->body, "tracking_data")));
    }
    json_decref(extra);
    return rc;
}

static void sent_clear(struct sent *s)
{
    json_decref(s->body);
    db_http_req_clear(&s->req);
}

static void expect_body(struct sent *s, const char *want_json)
{
    json_t *want = json_loads(want_json, 0, NULL);
    assert_non_null(want);
    if (!json_equal(s->body, want)) {
        char *got = json_dumps(s->body, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("body differs: %s", got);
    }
    json_decref(want);
}

static void build_send_text(void **state)
{
    (void)state;
    const char *const kv[] = {"auth_token=" TOKEN, "sender_name=Acme",
                              "sender_avatar=https://example.com/bot.png",
                              "api_base=http://127.0.0.1:9/pa/", NULL};
    void *a = db_test_account(&db_viber, "vb1", kv);
    struct sent s;
    struct db_err e = {0};
    struct db_outbound m = {.id = "1712345678901-0", .chat_id = "01234567890A==",
                            .text = "Здравствуйте 👋", .reply_to = "999"};
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_OK);
    assert_string_equal(s.req.url, "http://127.0.0.1:9/pa/send_message");
    expect_body(&s, "{\"receiver\":\"01234567890A==\",\"sender\":{\"name\":\"Acme\",\"avatar\":"
                    "\"https://example.com/bot.png\"},\"tracking_data\":\"1712345678901-0\","
                    "\"min_api_version\":1,\"type\":\"text\",\"text\":\"Здравствуйте 👋\"}");
    sent_clear(&s);
    db_viber.account_free(a);

    /* Defaults: official base URL, the account id as sender name, "" tracking data. */
    a = account();
    m.id = NULL;
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_OK);
    assert_string_equal(s.req.url, "https://chatapi.viber.com/pa/send_message");
    expect_body(&s, "{\"receiver\":\"01234567890A==\",\"sender\":{\"name\":\"vb1\"},"
                    "\"tracking_data\":\"\",\"min_api_version\":1,\"type\":\"text\","
                    "\"text\":\"Здравствуйте 👋\"}");
    sent_clear(&s);

    m.text = "";
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    m.text = "x";
    m.chat_id = NULL;
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "chat_id"));
    db_viber.account_free(a);
}

#define HEAD "\"receiver\":\"u1\",\"sender\":{\"name\":\"vb1\"},\"tracking_data\":\"g1\"," \
             "\"min_api_version\":1,"

/* Buttons go as a keyboard of reply buttons; tracking_data lists the ids so the tap that
 * comes back (tests/fixtures/viber/message_button_tap*) is recognised. */
static void build_send_buttons_keyboard(void **state)
{
    (void)state;
    void *a = account();
    struct sent s;
    struct db_err e = {0};
    json_t *bs = json_loads("[{\"id\":\"yes\",\"title\":\"Yes\"},{\"id\":\"no\",\"title\":\"No\"}]",
                            0, NULL);
    struct db_outbound m = {.id = "g7", .chat_id = "u1", .text = "Done?", .buttons = bs};
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_OK);
    expect_body(&s, "{\"receiver\":\"u1\",\"sender\":{\"name\":\"vb1\"},"
                    "\"tracking_data\":\"db-buttons:g7:yes,no\",\"min_api_version\":1,"
                    "\"type\":\"text\",\"text\":\"Done?\",\"keyboard\":{\"Type\":\"keyboard\","
                    "\"DefaultHeight\":false,\"Buttons\":["
                    "{\"Columns\":6,\"Rows\":1,\"ActionType\":\"reply\",\"ActionBody\":\"yes\",\"Text\":\"Yes\"},"
                    "{\"Columns\":6,\"Rows\":1,\"ActionType\":\"reply\",\"ActionBody\":\"no\",\"Text\":\"No\"}]}}");
    sent_clear(&s);
    json_decref(bs);
    db_viber.account_free(a);
}

static void build_send_media(void **state)
{
    (void)state;
    void *a = account();
    struct sent s;
    struct db_err e = {0};
    struct db_outbound m = {.id = "g1", .chat_id = "u1", .text = "your receipt",
                            .media_url = "https://example.com/r.jpg", .media_type = "image"};
    assert_int_equal(build(a, &m, "{\"media\":{\"thumbnail\":\"https://example.com/t.jpg\"}}",
                           &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"picture\",\"media\":\"https://example.com/r.jpg\","
                    "\"text\":\"your receipt\",\"thumbnail\":\"https://example.com/t.jpg\"}");
    sent_clear(&s);

    m.text = NULL; /* Viber wants text on pictures even without a caption */
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"picture\",\"media\":\"https://example.com/r.jpg\","
                    "\"text\":\"\"}");
    sent_clear(&s);

    m.media_type = "video";
    m.media_url = "https://example.com/v.mp4";
    assert_int_equal(build(a, &m, "{\"media\":{\"size\":10485760,\"duration\":12}}", &s, &e),
                     DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"video\",\"media\":\"https://example.com/v.mp4\","
                    "\"size\":10485760,\"duration\":12}");
    sent_clear(&s);
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "media.size"));

    m.media_type = "document";
    m.media_url = "https://example.com/i.pdf";
    m.file_name = "invoice.pdf";
    assert_int_equal(build(a, &m, "{\"media\":{\"size\":\"20480\"}}", &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"file\",\"media\":\"https://example.com/i.pdf\","
                    "\"size\":20480,\"file_name\":\"invoice.pdf\"}");
    sent_clear(&s);
    m.file_name = NULL;
    assert_int_equal(build(a, &m, "{\"media\":{\"size\":1}}", &s, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "file_name"));
    m.file_name = "a.pdf";
    m.text = "see attached";
    assert_int_equal(build(a, &m, "{\"media\":{\"size\":1}}", &s, &e), DB_EINVAL);
    m.text = NULL;
    assert_int_equal(build(a, &m, "{\"media\":{\"size\":-1}}", &s, &e), DB_EINVAL);

    m.media_type = "audio";
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "audio"));
    m.media_type = "voice";
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    m.media_type = "image";
    m.media_url = NULL;
    m.media_id = "AgACAgIAAxkBAAIB";
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "media_id"));
    db_viber.account_free(a);
}

static void build_send_sticker_contact_location_url(void **state)
{
    (void)state;
    void *a = account();
    struct sent s;
    struct db_err e = {0};
    struct db_outbound m = {.id = "g1", .chat_id = "u1", .media_type = "sticker"};
    assert_int_equal(build(a, &m, "{\"sticker_id\":46105}", &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"sticker\",\"sticker_id\":46105}");
    sent_clear(&s);
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "sticker_id"));
    m.media_type = NULL; /* sticker_id alone is enough */
    assert_int_equal(build(a, &m, "{\"sticker_id\":\"46105\"}", &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"sticker\",\"sticker_id\":46105}");
    sent_clear(&s);

    assert_int_equal(build(a, &m, "{\"contact\":{\"name\":\"Support line\","
                                  "\"phone_number\":\"+15550001234\"}}", &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"contact\",\"contact\":{\"name\":\"Support line\","
                    "\"phone_number\":\"+15550001234\"}}");
    sent_clear(&s);
    assert_int_equal(build(a, &m, "{\"contact\":{\"name\":\"x\"}}", &s, &e), DB_EINVAL);

    assert_int_equal(build(a, &m, "{\"location\":{\"latitude\":50.76891,\"longitude\":6.11499}}",
                           &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"location\",\"location\":{\"lat\":50.76891,"
                    "\"lon\":6.11499}}");
    sent_clear(&s);
    assert_int_equal(build(a, &m, "{\"location\":{\"latitude\":\"50\",\"longitude\":6}}", &s, &e),
                     DB_EINVAL);
    m.text = "we are here";
    assert_int_equal(build(a, &m, "{\"location\":{\"latitude\":1.5,\"longitude\":2.5}}", &s, &e),
                     DB_EINVAL);
    m.text = NULL;

    m.media_url = "https://example.com/order/7";
    assert_int_equal(build(a, &m, NULL, &s, &e), DB_OK);
    expect_body(&s, "{" HEAD "\"type\":\"url\",\"media\":\"https://example.com/order/7\"}");
    sent_clear(&s);
    assert_int_equal(build(a, &m, "{\"type\":\"template\"}", &s, &e), DB_EINVAL);
    db_viber.account_free(a);
}

/* ---- read_send ---- */

static int classify(const char *body, long status, const char *transport,
                    struct db_send_result *res)
{
    struct db_http_resp r = {.status = status, .body = body,
                             .body_len = body ? strlen(body) : 0,
                             .transport_error = transport};
    struct db_err e = {0};
    memset(res, 0x5a, sizeof *res); /* read_send must fill every field it reports */
    return db_viber.read_send(NULL, &r, res, &e);
}

static void read_send_classifies_status(void **state)
{
    (void)state;
    struct db_send_result res;
    assert_int_equal(classify("{\"status\":0,\"status_message\":\"ok\",\"message_token\":"
                              "5491234567890123456,\"chat_hostname\":\"SN-CHAT-01_\"}",
                              200, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_SENT);
    assert_string_equal(res.external_id, "5491234567890123456");
    assert_string_equal(res.err_code, "");

    assert_int_equal(classify("{\"status\":0,\"message_token\":\"9223372036854775807\"}", 200,
                              NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_SENT);
    assert_string_equal(res.external_id, "9223372036854775807");

    assert_int_equal(classify("{\"status\":12,\"status_message\":\"Too many requests\","
                              "\"message_token\":\"1234567890\"}", 200, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);

    assert_int_equal(classify("{\"status\":5,\"status_message\":\"receiverNotRegistered\"}", 200,
                              NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "5");
    assert_string_equal(res.err_msg, "receiverNotRegistered");

    assert_int_equal(classify("{\"status\":6,\"status_message\":\"notSubscribed\"}", 200, NULL,
                              &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "6");
    assert_string_equal(res.err_msg, "notSubscribed");

    /* No status_message: the documented name of the code stands in. */
    assert_int_equal(classify("{\"status\":2}", 200, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_msg, "invalidAuthToken");
    assert_int_equal(classify("{\"status\":99}", 200, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "99");
}

static void read_send_retries_transient_and_unreadable(void **state)
{
    (void)state;
    struct db_send_result res;
    assert_int_equal(classify("<html>bad gateway</html>", 502, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(classify(NULL, 500, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(classify(NULL, 0, "connection reset", &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_string_equal(res.external_id, "");

    assert_int_equal(classify("garbage", 200, NULL, &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(classify("{\"status\":\"0\"}", 200, NULL, &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);
    assert_int_equal(classify("{\"status\":0,\"message_token\":1", 200, NULL, &res), DB_EINVAL);
    assert_int_equal(res.outcome, DB_SEND_RETRY);

    assert_int_equal(classify("not found", 404, NULL, &res), DB_OK);
    assert_int_equal(res.outcome, DB_SEND_FAILED);
    assert_string_equal(res.err_code, "404");
}

static void read_send_cuts_long_message_on_character_boundary(void **state)
{
    (void)state;
    char body[1200] = "{\"status\":3,\"status_message\":\"";
    for (int i = 0; i < 150; i++) strcat(body, "Ж"); /* 300 bytes > err_msg */
    strcat(body, "\"}");
    struct db_send_result res;
    assert_int_equal(classify(body, 200, NULL, &res), DB_OK);
    size_t n = strlen(res.err_msg);
    assert_true(n > 0 && n < sizeof res.err_msg);
    assert_int_equal(n % 2, 0); /* whole two-byte letters only */
}

/* ---- webhook setup ---- */

static void webhook_setup_builds_and_reads(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req = {0};
    struct db_err e = {0};
    assert_int_equal(db_viber.build_webhook_setup(a, "https://gw.example.com/webhooks/viber/vb1",
                                                  &req, &e), DB_OK);
    assert_string_equal(req.url, "https://chatapi.viber.com/pa/set_webhook");
    assert_string_equal(db_headers_get(&req.headers, "X-Viber-Auth-Token"), TOKEN);
    json_t *got = json_loadb(req.body, req.body_len, 0, NULL);
    json_t *want = json_loads(
        "{\"url\":\"https://gw.example.com/webhooks/viber/vb1\",\"event_types\":[\"delivered\","
        "\"seen\",\"failed\",\"subscribed\",\"unsubscribed\",\"conversation_started\"],"
        "\"send_name\":true,\"send_photo\":true}", 0, NULL);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    db_http_req_clear(&req);

    assert_int_equal(db_viber.build_webhook_setup(a, NULL, &req, &e), DB_OK);
    got = json_loadb(req.body, req.body_len, 0, NULL);
    want = json_loads("{\"url\":\"\"}", 0, NULL);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    db_http_req_clear(&req);

    static const char ok[] = "{\"status\":0,\"status_message\":\"ok\",\"event_types\":[]}";
    static const char bad[] = "{\"status\":1,\"status_message\":\"Result of webhook validation "
                              "failed\"}";
    struct db_http_resp r = {.status = 200, .body = ok, .body_len = strlen(ok)};
    assert_int_equal(db_viber.read_webhook_setup(a, &r, &e), DB_OK);
    r.body = bad, r.body_len = strlen(bad);
    assert_int_equal(db_viber.read_webhook_setup(a, &r, &e), DB_EREJECTED);
    assert_non_null(strstr(e.msg, "webhook validation failed"));
    r.body = "oops", r.body_len = 4;
    assert_int_equal(db_viber.read_webhook_setup(a, &r, &e), DB_EREJECTED);
    r.status = 0, r.transport_error = "timeout";
    assert_int_equal(db_viber.read_webhook_setup(a, &r, &e), DB_EREJECTED);
    db_viber.account_free(a);
}

static void connector_table(void **state)
{
    (void)state;
    assert_ptr_equal(db_connector_find("viber"), &db_viber);
    assert_int_equal(db_viber.max_body, 1024 * 1024);
    assert_int_equal(db_viber.max_text_chars, 7000);
    assert_int_equal(db_viber.split_long_text, 1);
    assert_null(db_viber.build_poll);
    assert_null(db_viber.read_poll);
    assert_null(db_viber.handshake);
    assert_null(db_viber.build_media_lookup);
    assert_int_equal(db_conn_build_poll(&db_viber, NULL, NULL, 1, NULL, NULL), DB_EUNSUPPORTED);
    db_viber.account_free(NULL);
}

/* `test_viber --verify TOKEN BODYFILE SIG`: runs the connector's verify on a file and a
 * signature made elsewhere (tests/interop/test_viber_signature.sh); exit 0 accepted, 1
 * rejected, 2 usage. */
static int verify_mode(int argc, char **argv)
{
    if (argc != 5) return 2;
    char kv_token[512];
    snprintf(kv_token, sizeof kv_token, "auth_token=%s", argv[2]);
    const char *const kv[] = {kv_token, NULL};
    void *a = NULL;
    struct db_err e = {0};
    if (try_account("interop", kv, &a, &e) != DB_OK) return 2;
    size_t len;
    char *body = db_test_read_file(argv[3], &len);
    struct db_headers h = {0};
    if (db_headers_add(&h, "X-Viber-Content-Signature", argv[4]) != DB_OK) return 2;
    struct db_inbound in = {.method = "POST", .path = "/webhooks/viber/interop", .headers = &h,
                            .body = (const unsigned char *)body, .body_len = len};
    int rc = db_viber.verify(a, &in, &e);
    db_headers_clear(&h);
    free(body);
    db_viber.account_free(a);
    return rc == DB_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--verify") == 0) return verify_mode(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(account_rejects_missing_token),
        cmocka_unit_test(account_rejects_unknown_key),
        cmocka_unit_test(account_errors_name_key_and_line),
        cmocka_unit_test(account_counts_sender_name_in_characters),
        cmocka_unit_test(account_default_sender_name_is_checked),
        cmocka_unit_test(account_rejects_bad_values_without_echoing_the_token),
        cmocka_unit_test(parse_fixtures),
        cmocka_unit_test(parse_fixtures_with_welcome_text),
        cmocka_unit_test(parse_failure_leaves_list_as_it_was),
        cmocka_unit_test(parse_rejects_five_mib_body),
        cmocka_unit_test(parse_rejects_deep_nesting),
        cmocka_unit_test(verify_accepts_good_signature_any_case),
        cmocka_unit_test(verify_rejects_wrong_or_missing_signature),
        cmocka_unit_test(verify_accepts_sig_query_parameter),
        cmocka_unit_test(build_send_text),
        cmocka_unit_test(build_send_buttons_keyboard),
        cmocka_unit_test(build_send_media),
        cmocka_unit_test(build_send_sticker_contact_location_url),
        cmocka_unit_test(read_send_classifies_status),
        cmocka_unit_test(read_send_retries_transient_and_unreadable),
        cmocka_unit_test(read_send_cuts_long_message_on_character_boundary),
        cmocka_unit_test(webhook_setup_builds_and_reads),
        cmocka_unit_test(connector_table),
    };
    return cmocka_run_group_tests_name("viber", tests, NULL, NULL);
}
