/* test_telegram.c - the Telegram connector: fixture cases for parse, plus verify, account
 * configuration, requests it builds and answers it reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "deskbridge/connector.h"
#include "fixture.h"

#define TOKEN "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
#define SECRET "s3cret_Token-2024"
#define OLD_SECRET "old_secret_1"
#define API "https://api.telegram.org/bot" TOKEN "/"

static void *account(const char *const *kv)
{
    return db_test_account(&db_telegram, "7000000001", kv);
}

static void *webhook_account(void)
{
    static const char *const kv[] = {"token=" TOKEN, "webhook_secret=" SECRET, NULL};
    return account(kv);
}

static void *polling_account(void)
{
    static const char *const kv[] = {"token=" TOKEN, NULL};
    return account(kv);
}

/* Asserts req is a JSON POST to API<method> whose body equals want_json. */
static void assert_post(const struct db_http_req *req, const char *url, const char *want_json)
{
    assert_string_equal(req->method, "POST");
    assert_string_equal(req->url, url);
    assert_string_equal(db_headers_get(&req->headers, "Content-Type"), "application/json");
    assert_non_null(req->body);
    json_error_t je;
    json_t *got = json_loadb(req->body, req->body_len, 0, &je);
    json_t *want = json_loads(want_json, 0, &je);
    assert_non_null(got);
    if (!want) fail_msg("bad expectation: %s", je.text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        print_error("got:  %s\nwant: %s\n", g, want_json);
        free(g);
        fail_msg("request body differs");
    }
    json_decref(got);
    json_decref(want);
}

/* ---- parse ------------------------------------------------------------------------ */

static void parse_fixture_cases(void **state)
{
    (void)state;
    void *a = webhook_account();
    int n = db_test_run_fixtures(&db_telegram, a, "telegram");
    assert_true(n >= 50);
    db_telegram.account_free(a);
}

static int parse_body(const void *a, const char *body, size_t len, struct db_event_list *out,
                      struct db_err *e)
{
    struct db_headers h = {0};
    struct db_inbound in = {.method = "POST", .path = "/webhooks/telegram/7000000001",
                            .headers = &h, .body = (const unsigned char *)body, .body_len = len};
    return db_telegram.parse(a, &in, out, e);
}

static void parse_rejects_deep_nesting(void **state)
{
    (void)state;
    void *a = webhook_account();
    const size_t depth = 100000;
    const char *head = "{\"update_id\": 5, \"message\": {\"message_id\": 1, \"chat\": {\"id\": 1},"
                       " \"text\": ";
    size_t hl = strlen(head), len = hl + 2 * depth + 2;
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
    assert_non_null(strstr(e.msg, "not JSON"));
    free(body);
    db_telegram.account_free(a);
}

static void parse_error_leaves_list_as_it_was(void **state)
{
    (void)state;
    void *a = webhook_account();
    struct db_event_list out = {0};
    struct db_err e = {0};
    const char *ok = "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5},"
                     "\"date\":1,\"text\":\"hi\"}}";
    const char *bad = "{\"update_id\":2,\"message\":{\"message_id\":1,\"chat\":{\"id\":\"x\"},"
                      "\"date\":1,\"text\":\"hi\"}}";
    assert_int_equal(parse_body(a, ok, strlen(ok), &out, &e), DB_OK);
    assert_int_equal(out.n, 1);
    assert_int_equal(parse_body(a, bad, strlen(bad), &out, &e), DB_EINVAL);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0].dedupe_key, "u:1");
    /* The message names the offending field so an operator can find it. */
    assert_non_null(strstr(e.msg, "message.chat.id"));
    db_event_list_clear(&out);
    db_telegram.account_free(a);
}

static void parse_error_names_field(void **state)
{
    (void)state;
    void *a = webhook_account();
    struct db_event_list out = {0};
    struct db_err e = {0};
    const char *body = "{\"update_id\":3,\"callback_query\":{\"from\":{\"id\":1}}}";
    assert_int_equal(parse_body(a, body, strlen(body), &out, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "callback_query.id"));
    body = "{\"message\":{}}";
    assert_int_equal(parse_body(a, body, strlen(body), &out, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "update_id"));
    assert_int_equal(out.n, 0);
    db_telegram.account_free(a);
}

/* ---- verify ----------------------------------------------------------------------- */

static int verify_with(const void *a, const char *header_value, struct db_err *e)
{
    struct db_headers h = {0};
    if (header_value)
        assert_int_equal(db_headers_add(&h, "x-telegram-bot-api-secret-token", header_value),
                         DB_OK);
    struct db_inbound in = {.method = "POST", .path = "/", .headers = &h,
                            .body = (const unsigned char *)"{}", .body_len = 2};
    int rc = db_telegram.verify(a, &in, e);
    db_headers_clear(&h);
    return rc;
}

static void verify_secret_token(void **state)
{
    (void)state;
    struct db_err e = {0};
    void *a = webhook_account();
    assert_int_equal(verify_with(a, SECRET, &e), DB_OK);
    assert_int_equal(verify_with(a, SECRET "x", &e), DB_EAUTH);
    assert_int_equal(verify_with(a, "s3cret_Token-2023", &e), DB_EAUTH);
    assert_int_equal(verify_with(a, "", &e), DB_EAUTH);
    assert_int_equal(verify_with(a, NULL, &e), DB_EAUTH);
    assert_non_null(strstr(e.msg, "missing"));
    assert_null(strstr(e.msg, SECRET));
    /* Without a previous secret configured the old one is just wrong. */
    assert_int_equal(verify_with(a, OLD_SECRET, &e), DB_EAUTH);
    db_telegram.account_free(a);
}

static void verify_accepts_previous_secret_during_rotation(void **state)
{
    (void)state;
    static const char *const kv[] = {"token=" TOKEN, "webhook_secret=" SECRET,
                                      "webhook_secret_previous=" OLD_SECRET, NULL};
    struct db_err e = {0};
    void *a = account(kv);
    assert_int_equal(verify_with(a, SECRET, &e), DB_OK);
    assert_int_equal(verify_with(a, OLD_SECRET, &e), DB_OK);
    assert_int_equal(verify_with(a, "other", &e), DB_EAUTH);
    db_telegram.account_free(a);
}

static void verify_refuses_all_without_webhook_secret(void **state)
{
    (void)state;
    struct db_err e = {0};
    void *a = polling_account();
    assert_int_equal(verify_with(a, SECRET, &e), DB_EAUTH);
    assert_non_null(strstr(e.msg, "webhook mode not configured"));
    assert_int_equal(verify_with(a, NULL, &e), DB_EAUTH);
    db_telegram.account_free(a);
}

/* ---- account_new ------------------------------------------------------------------ */

static int try_account(const struct db_conf_kv *kv, size_t n, struct db_err *e)
{
    struct db_conf_section sec = {"telegram", "7000000001", kv, n};
    void *a = (void *)1;
    int rc = db_telegram.account_new(&sec, &a, e);
    if (rc == DB_OK)
        db_telegram.account_free(a);
    else
        assert_null(a);
    return rc;
}

static void account_new_rejects_bad_config(void **state)
{
    (void)state;
    struct db_err e = {0};
    struct db_conf_kv only_secret[] = {{"webhook_secret", SECRET, "gw.conf", 3}};
    assert_int_equal(try_account(only_secret, 1, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "token"));
    assert_null(strstr(e.msg, SECRET));

    struct db_conf_kv bad_token[] = {{"token", "notatoken", "gw.conf", 4}};
    assert_int_equal(try_account(bad_token, 1, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "gw.conf:4: token"));
    assert_null(strstr(e.msg, "notatoken"));
    struct db_conf_kv slash_token[] = {{"token", "123:abc/../x", "gw.conf", 4}};
    assert_int_equal(try_account(slash_token, 1, &e), DB_ECONFIG);
    struct db_conf_kv no_id_token[] = {{"token", ":abc", "gw.conf", 4}};
    assert_int_equal(try_account(no_id_token, 1, &e), DB_ECONFIG);

    struct db_conf_kv bad_secret[] = {{"token", TOKEN, "gw.conf", 1},
                                      {"webhook_secret", "has space!", "gw.conf", 2}};
    assert_int_equal(try_account(bad_secret, 2, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "gw.conf:2: webhook_secret"));

    char long_secret[258];
    memset(long_secret, 'a', 257);
    long_secret[257] = '\0';
    struct db_conf_kv too_long[] = {{"token", TOKEN, "gw.conf", 1},
                                    {"webhook_secret", long_secret, "gw.conf", 2}};
    assert_int_equal(try_account(too_long, 2, &e), DB_ECONFIG);
    long_secret[256] = '\0';
    assert_int_equal(try_account(too_long, 2, &e), DB_OK);

    struct db_conf_kv unknown[] = {{"token", TOKEN, "gw.conf", 1},
                                   {"webhook_secrett", SECRET, "gw.conf", 7}};
    assert_int_equal(try_account(unknown, 2, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "gw.conf:7: webhook_secrett"));

    struct db_conf_kv prev_only[] = {{"token", TOKEN, "gw.conf", 1},
                                     {"webhook_secret_previous", OLD_SECRET, "gw.conf", 2}};
    assert_int_equal(try_account(prev_only, 2, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "webhook_secret_previous"));

    struct db_conf_kv bad_base[] = {{"token", TOKEN, "gw.conf", 1},
                                    {"api_base", "ftp://x", "gw.conf", 2}};
    assert_int_equal(try_account(bad_base, 2, &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "api_base"));

    /* The last occurrence wins (environment overrides), so a good token after a bad one is
     * accepted. */
    struct db_conf_kv override[] = {{"token", "bad", "gw.conf", 1},
                                    {"token", TOKEN, "environment", 0}};
    assert_int_equal(try_account(override, 2, &e), DB_OK);
}

/* Every key of [telegram ID] is read through the connector's key table: a wrong value is
 * named by key and line, never quoted back, and a missing token names the section. */
static void account_errors_name_key_and_line(void **state)
{
    (void)state;
    static const char *const kv[] = {"token=" TOKEN, "webhook_secret=" SECRET, NULL};
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"token", "notatoken",
         "test.conf:9: token: must look like <bot id digits>:<secret> (value not shown)"},
        {"token", "", "test.conf:9: token: must not be empty"},
        {"webhook_secret", "has space!",
         "test.conf:9: webhook_secret: must be 1-256 characters of A-Z a-z 0-9 _ -"},
        {"webhook_secret_previous", "old/secret",
         "test.conf:9: webhook_secret_previous: must be 1-256 characters of A-Z a-z 0-9 _ -"},
        {"api_base", "ftp://x", "test.conf:9: api_base: must start with http:// or https://"},
        {"api_base", "https://api.example/x?y=1",
         "test.conf:9: api_base: must not hold a query (?) or fragment (#)"},
        {"api_base", "https://", "test.conf:9: api_base: has no host"},
        {"colour", "blue", "test.conf:9: colour: unknown key in [telegram]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        db_test_account_refuses(&db_telegram, "7000000001", kv, cases[i].key, cases[i].value,
                                cases[i].want);

    struct db_err e = {0};
    struct db_conf_kv none[] = {{"api_base", "https://api.example", "test.conf", 2}};
    assert_int_equal(try_account(none, 1, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "[telegram 7000000001]: token: is required");
    struct db_conf_kv prev_only[] = {{"token", TOKEN, "test.conf", 1},
                                     {"webhook_secret_previous", OLD_SECRET, "test.conf", 4}};
    assert_int_equal(try_account(prev_only, 2, &e), DB_ECONFIG);
    assert_string_equal(e.msg,
                        "test.conf:4: webhook_secret_previous: only makes sense next to "
                        "webhook_secret");
    assert_non_null(db_telegram.account_keys);
}

static void account_api_base_drops_trailing_slash(void **state)
{
    (void)state;
    static const char *const kv[] = {"token=" TOKEN, "api_base=http://127.0.0.1:18700//", NULL};
    void *a = account(kv);
    struct db_outbound m = {.chat_id = "1", .text = "hi"};
    struct db_http_req req = {0};
    struct db_err e = {0};
    assert_int_equal(db_telegram.build_send(a, &m, &req, &e), DB_OK);
    assert_string_equal(req.url, "http://127.0.0.1:18700/bot" TOKEN "/sendMessage");
    db_http_req_clear(&req);
    db_telegram.account_free(a);
}

/* ---- build_send ------------------------------------------------------------------- */

static int send_req(const void *a, const struct db_outbound *m, struct db_http_req *req,
                    struct db_err *e)
{
    memset(req, 0, sizeof *req);
    return db_telegram.build_send(a, m, req, e);
}

static void build_send_text(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_http_req req;
    struct db_err e = {0};
    struct db_outbound m = {.id = "g1", .chat_id = "123456789", .text = "Привет 👩🏽‍💻"};
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendMessage", "{\"chat_id\":123456789,\"text\":\"Привет 👩🏽‍💻\"}");
    db_http_req_clear(&req);

    /* Supergroup ids beyond 2^53 stay exact integers; @usernames stay strings. */
    m.chat_id = "-1009007199254740993";
    m.reply_to = "77";
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_non_null(strstr(req.body, "-1009007199254740993"));
    assert_post(&req, API "sendMessage",
                "{\"chat_id\":-1009007199254740993,\"text\":\"Привет 👩🏽‍💻\","
                "\"reply_parameters\":{\"message_id\":77}}");
    db_http_req_clear(&req);

    m.chat_id = "@acmenews";
    m.reply_to = NULL;
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendMessage", "{\"chat_id\":\"@acmenews\",\"text\":\"Привет 👩🏽‍💻\"}");
    db_http_req_clear(&req);

    /* A chat part Telegram cannot have is refused here too, not sent as a string. */
    m.chat_id = "-";
    assert_int_equal(send_req(a, &m, &req, &e), DB_EINVAL);
    db_http_req_clear(&req);
    db_telegram.account_free(a);
}

/* Conversations of a business account and of forum topics: every send method carries the
 * connection id or the thread id the chat part names (Bot API, sendMessage/sendPhoto). */
static void build_send_business_and_topics(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_outbound m = {.chat_id = "123456789:biz:Xq7RbT3nLEm0AQAA4kqVnHCx9aE",
                            .text = "We are open 10-16"};
    struct db_http_req req = {0};
    struct db_err e = {0};
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendMessage",
                "{\"chat_id\":123456789,\"business_connection_id\":"
                "\"Xq7RbT3nLEm0AQAA4kqVnHCx9aE\",\"text\":\"We are open 10-16\"}");
    db_http_req_clear(&req);

    m.media_id = "AgACAgIAAxkBAAIB";
    m.media_type = "image";
    m.text = "our hours";
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendPhoto",
                "{\"chat_id\":123456789,\"business_connection_id\":"
                "\"Xq7RbT3nLEm0AQAA4kqVnHCx9aE\",\"photo\":\"AgACAgIAAxkBAAIB\","
                "\"caption\":\"our hours\"}");
    db_http_req_clear(&req);

    m = (struct db_outbound){.chat_id = "-1001234567890:42", .text = "in the topic",
                             .reply_to = "900"};
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendMessage",
                "{\"chat_id\":-1001234567890,\"message_thread_id\":42,\"text\":"
                "\"in the topic\",\"reply_parameters\":{\"message_id\":900}}");
    db_http_req_clear(&req);

    static const char *const bad[] = {"-1001234567890:", "-1001234567890:0", "-100:4x",
                                      "-100:-4", "123:biz:", "123:biz:a b", "123:biz:a:b",
                                      ":42", "@chan:biz", "123:42:7", NULL};
    for (int i = 0; bad[i]; i++) {
        m = (struct db_outbound){.chat_id = bad[i], .text = "x"};
        assert_false(db_telegram.chat_id_is_valid(bad[i]));
        assert_int_equal(send_req(a, &m, &req, &e), DB_EINVAL);
        db_http_req_clear(&req);
    }
    static const char *const good[] = {"42", "-1001234567890", "@acmenews", "-1001234567890:42",
                                       "@acmenews:7", "123:biz:Xq7RbT3nLEm0AQAA4kqVnHCx9aE",
                                       NULL};
    for (int i = 0; good[i]; i++) assert_true(db_telegram.chat_id_is_valid(good[i]));

    char grant[160];
    assert_int_equal(db_telegram.send_grant("123:biz:Xq7R-b_T3.n=", grant, sizeof grant), 1);
    assert_string_equal(grant, "Xq7R-b_T3.n=");
    assert_int_equal(db_telegram.send_grant("-1001234567890:42", grant, sizeof grant), 0);
    assert_int_equal(db_telegram.send_grant("123", grant, sizeof grant), 0);

    /* "typing..." shows in the topic, or as the business account. */
    assert_int_equal(db_telegram.build_typing(a, "-1001234567890:42", NULL, &req, &e), DB_OK);
    assert_post(&req, API "sendChatAction",
                "{\"chat_id\":-1001234567890,\"message_thread_id\":42,\"action\":\"typing\"}");
    db_http_req_clear(&req);
    assert_int_equal(db_telegram.build_typing(a, "123:biz:Xq7R", NULL, &req, &e), DB_OK);
    assert_post(&req, API "sendChatAction",
                "{\"chat_id\":123,\"business_connection_id\":\"Xq7R\",\"action\":\"typing\"}");
    db_http_req_clear(&req);
    db_telegram.account_free(a);
}

/* Buttons go as an inline keyboard, one per row, the id as callback_data; a tap's event
 * yields the answerCallbackQuery that stops the customer's spinner. */
static void build_send_buttons_and_callback_answer(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_http_req req;
    struct db_err e = {0};
    json_t *buttons = json_loads("[{\"id\":\"yes\",\"title\":\"Да 👍\"},"
                                 "{\"id\":\"no.1\",\"title\":\"No\"}]", 0, NULL);
    assert_non_null(buttons);
    struct db_outbound m = {.id = "g1", .chat_id = "42", .text = "Решено?", .buttons = buttons};
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendMessage",
                "{\"chat_id\":42,\"text\":\"Решено?\",\"reply_markup\":{\"inline_keyboard\":"
                "[[{\"text\":\"Да 👍\",\"callback_data\":\"yes\"}],"
                "[{\"text\":\"No\",\"callback_data\":\"no.1\"}]]}}");
    db_http_req_clear(&req);
    json_decref(buttons);

    json_t *ev = json_pack("{s:s, s:s}", "kind", "callback", "external_message_id", "4382bfdwdsb323b2d9");
    memset(&req, 0, sizeof req);
    assert_int_equal(db_conn_build_callback_answer(&db_telegram, a, ev, &req, &e), DB_OK);
    assert_post(&req, API "answerCallbackQuery", "{\"callback_query_id\":\"4382bfdwdsb323b2d9\"}");
    db_http_req_clear(&req);
    json_object_set_new(ev, "kind", json_string("message"));
    assert_int_equal(db_conn_build_callback_answer(&db_telegram, a, ev, &req, &e), DB_EINVAL);
    db_http_req_clear(&req);
    json_decref(ev);
    /* Platforms without the slot need no answer. */
    assert_int_equal(db_conn_build_callback_answer(&db_viber, NULL, NULL, &req, &e), DB_ENOTFOUND);
    db_telegram.account_free(a);
}

static void build_send_media_types(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"image", "sendPhoto", "photo"},        {"video", "sendVideo", "video"},
        {"audio", "sendAudio", "audio"},        {"voice", "sendVoice", "voice"},
        {"document", "sendDocument", "document"}, {"animation", "sendAnimation", "animation"},
    };
    void *a = polling_account();
    struct db_http_req req;
    struct db_err e = {0};
    char url[256], want[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct db_outbound m = {.chat_id = "42", .media_id = "AgAD-file", .media_type = cases[i][0],
                                .text = "see this"};
        assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
        snprintf(url, sizeof url, API "%s", cases[i][1]);
        snprintf(want, sizeof want, "{\"chat_id\":42,\"%s\":\"AgAD-file\",\"caption\":\"see this\"}",
                 cases[i][2]);
        assert_post(&req, url, want);
        db_http_req_clear(&req);

        m.media_id = NULL;
        m.media_url = "https://cdn.example.org/f.bin";
        m.text = NULL;
        m.reply_to = "9";
        assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
        snprintf(want, sizeof want,
                 "{\"chat_id\":42,\"%s\":\"https://cdn.example.org/f.bin\","
                 "\"reply_parameters\":{\"message_id\":9}}",
                 cases[i][2]);
        assert_post(&req, url, want);
        db_http_req_clear(&req);
    }
    struct db_outbound st = {.chat_id = "42", .media_id = "CAAC-st", .media_type = "sticker"};
    assert_int_equal(send_req(a, &st, &req, &e), DB_OK);
    assert_post(&req, API "sendSticker", "{\"chat_id\":42,\"sticker\":\"CAAC-st\"}");
    db_http_req_clear(&req);
    db_telegram.account_free(a);
}

static void build_send_location(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_http_req req;
    struct db_err e = {0};
    json_t *extra = json_loads("{\"location\":{\"latitude\":52.5,\"longitude\":13.25}}", 0, NULL);
    struct db_outbound m = {.chat_id = "42", .extra = extra};
    assert_int_equal(send_req(a, &m, &req, &e), DB_OK);
    assert_post(&req, API "sendLocation",
                "{\"chat_id\":42,\"latitude\":52.5,\"longitude\":13.25}");
    db_http_req_clear(&req);
    json_decref(extra);

    extra = json_loads("{\"location\":{\"latitude\":\"north\"}}", 0, NULL);
    m.extra = extra;
    assert_int_equal(send_req(a, &m, &req, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "latitude"));
    db_http_req_clear(&req);
    json_decref(extra);
    db_telegram.account_free(a);
}

static void build_send_rejects_what_telegram_cannot_express(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_http_req req;
    struct db_err e = {0};
    struct db_outbound m = {.chat_id = "42", .media_id = "x", .media_type = "hologram"};
    assert_int_equal(send_req(a, &m, &req, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "hologram"));
    assert_null(req.url);

    struct db_outbound empty = {.chat_id = "42"};
    assert_int_equal(send_req(a, &empty, &req, &e), DB_EINVAL);
    struct db_outbound no_chat = {.chat_id = "", .text = "x"};
    assert_int_equal(send_req(a, &no_chat, &req, &e), DB_EINVAL);
    struct db_outbound no_type = {.chat_id = "42", .media_url = "https://x/y"};
    assert_int_equal(send_req(a, &no_type, &req, &e), DB_EINVAL);
    struct db_outbound no_media = {.chat_id = "42", .media_type = "image"};
    assert_int_equal(send_req(a, &no_media, &req, &e), DB_EINVAL);
    struct db_outbound bad_reply = {.chat_id = "42", .text = "x", .reply_to = "abc"};
    assert_int_equal(send_req(a, &bad_reply, &req, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "reply_to"));
    struct db_outbound st = {.chat_id = "42", .media_id = "s", .media_type = "sticker",
                             .text = "lost words"};
    assert_int_equal(send_req(a, &st, &req, &e), DB_EINVAL);
    db_http_req_clear(&req);
    db_telegram.account_free(a);
}

/* ---- read_send -------------------------------------------------------------------- */

static int read_send(long status, const char *body, struct db_send_result *res)
{
    struct db_http_resp resp = {.status = status, .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .transport_error = status ? NULL : "connection reset"};
    struct db_err e = {0};
    return db_telegram.read_send(NULL, &resp, res, &e);
}

static void read_send_classifies_answers(void **state)
{
    (void)state;
    struct db_send_result r;
    assert_int_equal(read_send(200, "{\"ok\":true,\"result\":{\"message_id\":9007199254740993,"
                                    "\"chat\":{\"id\":1},\"date\":1}}", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_SENT);
    assert_string_equal(r.external_id, "9007199254740993");

    assert_int_equal(read_send(429, "{\"ok\":false,\"error_code\":429,\"description\":"
                                    "\"Too Many Requests: retry after 17\",\"parameters\":"
                                    "{\"retry_after\":17}}", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_int_equal(r.retry_after_ms, 17000);
    assert_int_equal(r.per_chat, 1);
    assert_string_equal(r.err_code, "429");

    /* error_code 429 inside a 200 from a proxy counts the same. */
    assert_int_equal(read_send(200, "{\"ok\":false,\"error_code\":429,\"description\":\"x\","
                                    "\"parameters\":{\"retry_after\":3}}", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_int_equal(r.retry_after_ms, 3000);
    assert_int_equal(r.per_chat, 1);

    assert_int_equal(read_send(403, "{\"ok\":false,\"error_code\":403,\"description\":"
                                    "\"Forbidden: bot was blocked by the user\"}", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_FAILED);
    assert_string_equal(r.err_code, "403");
    assert_string_equal(r.err_msg, "Forbidden: bot was blocked by the user");

    assert_int_equal(read_send(400, "{\"ok\":false,\"error_code\":400,\"description\":"
                                    "\"Bad Request: group chat was upgraded to a supergroup chat\","
                                    "\"parameters\":{\"migrate_to_chat_id\":-1001234567890123}}",
                               &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_FAILED);
    assert_string_equal(r.err_code, "400");
    assert_non_null(strstr(r.err_msg, "-1001234567890123"));

    assert_int_equal(read_send(400, "{\"ok\":false,\"error_code\":400,\"description\":"
                                    "\"Bad Request: message text is empty\"}", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_FAILED);
    assert_string_equal(r.err_msg, "Bad Request: message text is empty");

    assert_int_equal(read_send(500, "{\"ok\":false,\"error_code\":500,\"description\":"
                                    "\"Internal Server Error\"}", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_int_equal(r.retry_after_ms, 0);
    assert_int_equal(r.per_chat, 0);

    assert_int_equal(read_send(502, "<html>bad gateway</html>", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_RETRY);

    assert_int_equal(read_send(0, NULL, &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_non_null(strstr(r.err_msg, "connection reset"));

    assert_int_equal(read_send(200, "{\"ok\":tr", &r), DB_EINVAL);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(200, "{\"ok\":true,\"result\":true}", &r), DB_EINVAL);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_int_equal(read_send(200, NULL, &r), DB_EINVAL);
    assert_int_equal(r.outcome, DB_SEND_RETRY);

    /* A 4xx without a body is still permanent and says what happened. */
    assert_int_equal(read_send(404, "", &r), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_FAILED);
    assert_string_equal(r.err_code, "404");
}

static void read_send_uses_retry_after_header_without_parameters(void **state)
{
    (void)state;
    struct db_headers h = {0};
    assert_int_equal(db_headers_add(&h, "Retry-After", "5"), DB_OK);
    struct db_http_resp resp = {.status = 429, .headers = &h, .body = "", .body_len = 0};
    struct db_send_result r;
    struct db_err e = {0};
    assert_int_equal(db_telegram.read_send(NULL, &resp, &r, &e), DB_OK);
    assert_int_equal(r.outcome, DB_SEND_RETRY);
    assert_int_equal(r.retry_after_ms, 5000);
    db_headers_clear(&h);
}

/* ---- polling ---------------------------------------------------------------------- */

static void build_poll_sets_offset_and_kinds(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_http_req req = {0};
    struct db_err e = {0};
    const char *kinds = "[\"message\",\"edited_message\",\"channel_post\",\"edited_channel_post\","
                        "\"business_message\",\"edited_business_message\",\"callback_query\","
                        "\"my_chat_member\",\"message_reaction\",\"business_connection\"]";
    char want[512];
    assert_int_equal(db_telegram.build_poll(a, NULL, 30, &req, &e), DB_OK);
    snprintf(want, sizeof want, "{\"timeout\":30,\"allowed_updates\":%s}", kinds);
    assert_post(&req, API "getUpdates", want);
    db_http_req_clear(&req);

    assert_int_equal(db_telegram.build_poll(a, "9007199254740994", 90, &req, &e), DB_OK);
    snprintf(want, sizeof want,
             "{\"offset\":9007199254740994,\"timeout\":50,\"allowed_updates\":%s}", kinds);
    assert_post(&req, API "getUpdates", want);
    db_http_req_clear(&req);

    assert_int_equal(db_telegram.build_poll(a, "12x", 30, &req, &e), DB_EINVAL);
    db_http_req_clear(&req);
    db_telegram.account_free(a);
}

static int read_poll(const void *a, long status, const char *body, struct db_event_list *out,
                     char **cursor, struct db_err *e)
{
    struct db_http_resp resp = {.status = status, .body = body,
                                .body_len = body ? strlen(body) : 0};
    return db_telegram.read_poll(a, &resp, out, cursor, e);
}

static void read_poll_advances_cursor_and_skips_bad_update(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_event_list out = {0};
    struct db_err e = {0};
    char *cursor = (char *)"stale";
    const char *body =
        "{\"ok\":true,\"result\":["
        "{\"update_id\":500,\"message\":{\"message_id\":1,\"chat\":{\"id\":5,\"type\":\"private\"},"
        "\"from\":{\"id\":5,\"first_name\":\"A\"},\"date\":10,\"text\":\"one\"}},"
        "{\"update_id\":501,\"message\":{\"message_id\":2,\"chat\":{\"id\":\"nope\"},\"text\":\"x\"}},"
        "{\"update_id\":502,\"poll\":{\"id\":\"p\"}},"
        "\"garbage\","
        "{\"update_id\":503,\"message\":{\"message_id\":3,\"chat\":{\"id\":5,\"type\":\"private\"},"
        "\"from\":{\"id\":5,\"first_name\":\"A\"},\"date\":11,\"text\":\"two\"}}]}";
    assert_int_equal(read_poll(a, 200, body, &out, &cursor, &e), DB_OK);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.v[0].dedupe_key, "u:500");
    assert_string_equal(out.v[1].dedupe_key, "u:503");
    assert_string_equal(json_string_value(json_object_get(out.v[1].json, "text")), "two");
    assert_string_equal(cursor, "504");
    free(cursor);
    db_event_list_clear(&out);

    /* Only broken updates: nothing to store, but the offset still moves past them. */
    body = "{\"ok\":true,\"result\":[{\"update_id\":600,\"message\":5}]}";
    assert_int_equal(read_poll(a, 200, body, &out, &cursor, &e), DB_OK);
    assert_int_equal(out.n, 0);
    assert_string_equal(cursor, "601");
    free(cursor);

    body = "{\"ok\":true,\"result\":[]}";
    assert_int_equal(read_poll(a, 200, body, &out, &cursor, &e), DB_OK);
    assert_int_equal(out.n, 0);
    assert_null(cursor);
    db_telegram.account_free(a);
}

static void read_poll_classifies_errors(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_event_list out = {0};
    struct db_err e = {0};
    char *cursor = NULL;
    assert_int_equal(read_poll(a, 409, "{\"ok\":false,\"error_code\":409,\"description\":"
                                       "\"Conflict: can't use getUpdates method while webhook "
                                       "is active; use deleteWebhook to delete the webhook "
                                       "first\"}", &out, &cursor, &e), DB_EREJECTED);
    assert_non_null(strstr(e.msg, "Conflict"));
    assert_null(cursor);
    assert_int_equal(read_poll(a, 401, "{\"ok\":false,\"error_code\":401,\"description\":"
                                       "\"Unauthorized\"}", &out, &cursor, &e), DB_EREJECTED);
    assert_non_null(strstr(e.msg, "Unauthorized"));
    assert_int_equal(read_poll(a, 429, "{\"ok\":false,\"error_code\":429,\"description\":\"x\","
                                       "\"parameters\":{\"retry_after\":2}}", &out, &cursor, &e),
                     DB_EAGAIN);
    assert_int_equal(read_poll(a, 502, "bad gateway", &out, &cursor, &e), DB_EAGAIN);
    assert_int_equal(read_poll(a, 0, NULL, &out, &cursor, &e), DB_EAGAIN);
    assert_int_equal(read_poll(a, 200, "{\"ok\":true,\"result\":{}}", &out, &cursor, &e),
                     DB_EINVAL);
    assert_int_equal(read_poll(a, 200, "[1,2]", &out, &cursor, &e), DB_EINVAL);
    assert_int_equal(out.n, 0);
    assert_null(cursor);
    db_telegram.account_free(a);
}

/* ---- webhook setup and media ------------------------------------------------------ */

static void webhook_setup_requests(void **state)
{
    (void)state;
    void *a = webhook_account();
    struct db_http_req req = {0};
    struct db_err e = {0};
    assert_int_equal(db_telegram.build_webhook_setup(a, "https://gw.example.org/webhooks/telegram/"
                                                        "7000000001", &req, &e), DB_OK);
    assert_post(&req, API "setWebhook",
                "{\"url\":\"https://gw.example.org/webhooks/telegram/7000000001\","
                "\"secret_token\":\"" SECRET "\",\"drop_pending_updates\":false,"
                "\"allowed_updates\":[\"message\",\"edited_message\",\"channel_post\","
                "\"edited_channel_post\",\"business_message\",\"edited_business_message\","
                "\"callback_query\",\"my_chat_member\",\"message_reaction\","
                "\"business_connection\"]}");
    db_http_req_clear(&req);

    assert_int_equal(db_telegram.build_webhook_setup(a, NULL, &req, &e), DB_OK);
    assert_post(&req, API "deleteWebhook", "{\"drop_pending_updates\":false}");
    db_http_req_clear(&req);
    db_telegram.account_free(a);

    a = polling_account();
    assert_int_equal(db_telegram.build_webhook_setup(a, "https://x/y", &req, &e), DB_EINVAL);
    assert_non_null(strstr(e.msg, "webhook_secret"));
    assert_null(req.url);
    db_telegram.account_free(a);

    struct db_http_resp ok = {.status = 200, .body = "{\"ok\":true,\"result\":true,"
                                                     "\"description\":\"Webhook was set\"}"};
    ok.body_len = strlen(ok.body);
    assert_int_equal(db_telegram.read_webhook_setup(NULL, &ok, &e), DB_OK);
    struct db_http_resp bad = {.status = 400, .body = "{\"ok\":false,\"error_code\":400,"
                                                      "\"description\":\"Bad Request: bad "
                                                      "webhook: HTTPS url must be provided\"}"};
    bad.body_len = strlen(bad.body);
    assert_int_equal(db_telegram.read_webhook_setup(NULL, &bad, &e), DB_EREJECTED);
    assert_non_null(strstr(e.msg, "HTTPS url must be provided"));
    struct db_http_resp none = {.status = 0, .transport_error = "timeout"};
    assert_int_equal(db_telegram.read_webhook_setup(NULL, &none, &e), DB_EREJECTED);
}

static int media_lookup(const void *a, long status, const char *body, struct db_http_req *dl,
                        struct db_err *e)
{
    struct db_http_resp resp = {.status = status, .body = body,
                                .body_len = body ? strlen(body) : 0};
    memset(dl, 0, sizeof *dl);
    return db_telegram.read_media_lookup(a, &resp, dl, e);
}

static void media_lookup_resolves_file_path(void **state)
{
    (void)state;
    void *a = polling_account();
    struct db_http_req req = {0}, dl;
    struct db_err e = {0};
    assert_int_equal(db_telegram.build_media_lookup(a, "AgAD-big", &req, &e), DB_OK);
    assert_post(&req, API "getFile", "{\"file_id\":\"AgAD-big\"}");
    db_http_req_clear(&req);
    assert_int_equal(db_telegram.build_media_lookup(a, "", &req, &e), DB_EINVAL);

    assert_int_equal(media_lookup(a, 200, "{\"ok\":true,\"result\":{\"file_id\":\"AgAD-big\","
                                          "\"file_unique_id\":\"u\",\"file_size\":98000,"
                                          "\"file_path\":\"photos/file_12.jpg\"}}", &dl, &e),
                     DB_OK);
    assert_string_equal(dl.method, "GET");
    assert_string_equal(dl.url, "https://api.telegram.org/file/bot" TOKEN "/photos/file_12.jpg");
    db_http_req_clear(&dl);

    assert_int_equal(media_lookup(a, 200, "{\"ok\":true,\"result\":{\"file_id\":\"x\"}}", &dl, &e),
                     DB_ENOTFOUND);
    assert_null(dl.url);
    assert_int_equal(media_lookup(a, 400, "{\"ok\":false,\"error_code\":400,\"description\":"
                                          "\"Bad Request: file is too big\"}", &dl, &e),
                     DB_EREJECTED);
    assert_non_null(strstr(e.msg, "file is too big"));
    assert_int_equal(media_lookup(a, 200, "{\"ok\":true,\"result\":{\"file_path\":"
                                          "\"../../etc/passwd\"}}", &dl, &e), DB_EREJECTED);
    assert_int_equal(media_lookup(a, 200, "{\"ok\":true,\"result\":{\"file_path\":"
                                          "\"a?b=1\"}}", &dl, &e), DB_EREJECTED);
    assert_null(dl.url);
    assert_int_equal(media_lookup(a, 503, "x", &dl, &e), DB_EAGAIN);
    assert_int_equal(media_lookup(a, 200, "not json", &dl, &e), DB_EREJECTED);
    db_telegram.account_free(a);
}

static void connector_table(void **state)
{
    (void)state;
    assert_ptr_equal(db_connector_find("telegram"), &db_telegram);
    assert_int_equal(db_telegram.max_body, 1024 * 1024);
    assert_int_equal(db_telegram.max_text_chars, 4096);
    assert_int_equal(db_telegram.split_long_text, 1);
    assert_null(db_telegram.handshake);
    struct db_err e = {0};
    char *body = NULL;
    assert_int_equal(db_conn_handshake(&db_telegram, NULL, NULL, &body, &e), DB_EUNSUPPORTED);
    db_telegram.account_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_fixture_cases),
        cmocka_unit_test(parse_rejects_deep_nesting),
        cmocka_unit_test(parse_error_leaves_list_as_it_was),
        cmocka_unit_test(parse_error_names_field),
        cmocka_unit_test(verify_secret_token),
        cmocka_unit_test(verify_accepts_previous_secret_during_rotation),
        cmocka_unit_test(verify_refuses_all_without_webhook_secret),
        cmocka_unit_test(account_new_rejects_bad_config),
        cmocka_unit_test(account_errors_name_key_and_line),
        cmocka_unit_test(account_api_base_drops_trailing_slash),
        cmocka_unit_test(build_send_text),
        cmocka_unit_test(build_send_business_and_topics),
        cmocka_unit_test(build_send_buttons_and_callback_answer),
        cmocka_unit_test(build_send_media_types),
        cmocka_unit_test(build_send_location),
        cmocka_unit_test(build_send_rejects_what_telegram_cannot_express),
        cmocka_unit_test(read_send_classifies_answers),
        cmocka_unit_test(read_send_uses_retry_after_header_without_parameters),
        cmocka_unit_test(build_poll_sets_offset_and_kinds),
        cmocka_unit_test(read_poll_advances_cursor_and_skips_bad_update),
        cmocka_unit_test(read_poll_classifies_errors),
        cmocka_unit_test(webhook_setup_requests),
        cmocka_unit_test(media_lookup_resolves_file_path),
        cmocka_unit_test(connector_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
