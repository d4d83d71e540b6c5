/* test_whatsapp_templates.c - the WhatsApp connector's templates: template sends with header
 * and button parameters in Meta's shape, the message_templates list read into summaries, and
 * the check of a send against them. */
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

#define ACC "106540352242922"
#define SECRET "a3f1c2d4e5b6978812345678abcdef01"

static const char *const base_kv[] = {"access_token=EAAGtestTOKEN", "app_secret=" SECRET,
                                      "verify_token=hub-verify-me", NULL};

static void *account(void)
{
    return db_test_account(&db_whatsapp, ACC, base_kv);
}

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


/* Headers (text, image, document, video) and button parameters go in Meta's component order:
 * header, body, buttons. */
static void build_send_template_header_and_buttons(void **state)
{
    (void)state;
    void *a = account();
    struct db_http_req req;
    struct db_err e = {0};
    int rc;
    static const struct {
        const char *req, *components;
    } cases[] = {
        {"{\"header\":{\"type\":\"text\",\"text\":\"Ann\"}}",
         "[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\",\"text\":\"Ann\"}]}]"},
        {"{\"header\":{\"type\":\"document\",\"url\":\"https://x/a.pdf\",\"file_name\":\"a.pdf\"}}",
         "[{\"type\":\"header\",\"parameters\":[{\"type\":\"document\",\"document\":"
         "{\"link\":\"https://x/a.pdf\",\"filename\":\"a.pdf\"}}]}]"},
        {"{\"header\":{\"type\":\"video\",\"id\":\"1234\",\"url\":\"https://x/v.mp4\"}}",
         "[{\"type\":\"header\",\"parameters\":[{\"type\":\"video\",\"video\":{\"id\":\"1234\"}}]}]"},
        {"{\"parameters\":[\"b\"],\"buttons\":[{\"index\":1,\"sub_type\":\"quick_reply\","
         "\"parameters\":[\"p\"]},{\"index\":0,\"parameters\":[\"u\"]}]}",
         "[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"b\"}]},"
         "{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":\"1\",\"parameters\":"
         "[{\"type\":\"payload\",\"payload\":\"p\"}]},{\"type\":\"button\",\"sub_type\":\"url\","
         "\"index\":\"0\",\"parameters\":[{\"type\":\"text\",\"text\":\"u\"}]}]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *t = json_loads(cases[i].req, 0, NULL);
        assert_non_null(t);
        json_object_set_new(t, "name", json_string("n"));
        json_object_set_new(t, "language", json_string("en"));
        json_t *extra = json_pack("{s:o}", "template", t);
        struct db_outbound m = {.chat_id = "48600100200", .extra = extra};
        json_t *b = send_body(a, &m, &req, &rc, &e);
        if (rc != DB_OK) fail_msg("case %zu: %s", i, e.msg);
        assert_json(json_object_get(json_object_get(b, "template"), "components"), cases[i].components);
        json_decref(b);
        db_http_req_clear(&req);
        json_decref(extra);
    }
    static const char *const bad[] = {
        "{\"name\":\"n\",\"language\":\"en\",\"header\":{\"type\":\"audio\",\"url\":\"https://x\"}}",
        "{\"name\":\"n\",\"language\":\"en\",\"header\":{\"type\":\"image\"}}",
        "{\"name\":\"n\",\"language\":\"en\",\"buttons\":[{\"index\":0,\"parameters\":[]}]}",
        "{\"name\":\"n\",\"language\":\"en\",\"buttons\":[{\"index\":12,\"parameters\":[\"x\"]}]}",
        "{\"name\":\"n\",\"language\":\"en\",\"buttons\":[{\"index\":0,\"sub_type\":\"call\",\"parameters\":[\"x\"]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *extra = json_pack("{s:o}", "template", json_loads(bad[i], 0, NULL));
        struct db_outbound m = {.chat_id = "48600100200", .extra = extra};
        memset(&req, 0, sizeof req);
        if (db_whatsapp.build_send(a, &m, &req, &e) != DB_EINVAL) fail_msg("bad case %zu built", i);
        db_http_req_clear(&req);
        json_decref(extra);
    }
    db_whatsapp.account_free(a);
}

/* The template list: approved ones only, with the values a send must supply, pages followed
 * by cursor; a send checked against it names what is wrong. */
static void templates_listed_and_sends_checked(void **state)
{
    (void)state;
    const char *const kv[] = {"access_token=EAAGtestTOKEN", "app_secret=" SECRET,
                              "verify_token=v", "business_account_id=102290129340398", NULL};
    void *a = db_test_account(&db_whatsapp, ACC, kv);
    struct db_http_req req = {0};
    struct db_err e = {0};
    assert_int_equal(db_whatsapp.build_templates(a, NULL, &req, &e), DB_OK);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.url, "https://graph.facebook.com/v21.0/102290129340398/message_templates"
                                 "?fields=name,language,status,category,components&limit=100");
    assert_string_equal(db_headers_get(&req.headers, "Authorization"), "Bearer EAAGtestTOKEN");
    db_http_req_clear(&req);
    assert_int_equal(db_whatsapp.build_templates(a, "QVFIUk5", &req, &e), DB_OK);
    assert_non_null(strstr(req.url, "&after=QVFIUk5"));
    db_http_req_clear(&req);
    /* Whatever the cursor holds, it cannot add a query parameter. */
    assert_int_equal(db_whatsapp.build_templates(a, "a&b=c", &req, &e), DB_OK);
    assert_non_null(strstr(req.url, "&after=a%26b%3Dc"));
    db_http_req_clear(&req);

    const char *body =
        "{\"data\":[{\"name\":\"visit\",\"language\":\"de\",\"status\":\"APPROVED\",\"category\":"
        "\"UTILITY\",\"components\":[{\"type\":\"HEADER\",\"format\":\"TEXT\",\"text\":\"Hallo "
        "{{name}}\"},{\"type\":\"BODY\",\"text\":\"{{1}} um {{2}}, {{1}}!\"},{\"type\":\"BUTTONS\","
        "\"buttons\":[{\"type\":\"PHONE_NUMBER\",\"text\":\"Call\"},{\"type\":\"COPY_CODE\"}]}]},"
        "{\"name\":\"old\",\"language\":\"de\",\"status\":\"PAUSED\",\"components\":[]}],"
        "\"paging\":{\"cursors\":{\"after\":\"NEXT\"},\"next\":\"https://graph/next\"}}";
    struct db_http_resp resp = {.status = 200, .body = body, .body_len = strlen(body)};
    json_t *list = json_array();
    char *after = NULL;
    assert_int_equal(db_whatsapp.read_templates(a, &resp, list, &after, &e), DB_OK);
    assert_string_equal(after, "NEXT");
    free(after);
    assert_json(list, "[{\"name\":\"visit\",\"language\":\"de\",\"category\":\"utility\","
                      "\"header\":{\"format\":\"text\",\"parameters\":1},"
                      "\"body\":{\"text\":\"{{1}} um {{2}}, {{1}}!\",\"parameters\":2},"
                      "\"buttons\":[{\"index\":0,\"type\":\"phone_number\",\"parameters\":0},"
                      "{\"index\":1,\"type\":\"copy_code\",\"parameters\":1}]}]");

    const char *field = NULL;
    json_t *ok = json_loads("{\"name\":\"visit\",\"language\":\"de\",\"header\":{\"type\":\"text\","
                            "\"text\":\"Ann\"},\"parameters\":[\"Mo\",\"9\"],\"buttons\":[{\"index\":1,"
                            "\"sub_type\":\"copy_code\",\"parameters\":[\"C0DE\"]}]}", 0, NULL);
    assert_int_equal(db_whatsapp.check_template(a, list, ok, &field, &e), DB_OK);
    json_array_append_new(json_object_get(ok, "parameters"), json_string("x"));
    assert_int_equal(db_whatsapp.check_template(a, list, ok, &field, &e), DB_EINVAL);
    assert_string_equal(field, "template.parameters");
    assert_non_null(strstr(e.msg, "takes 2 body parameters, not 3"));
    json_array_remove(json_object_get(ok, "parameters"), 2);
    json_object_set_new(ok, "buttons", json_array());
    assert_int_equal(db_whatsapp.check_template(a, list, ok, &field, &e), DB_EINVAL);
    assert_string_equal(field, "template.buttons");
    json_object_set_new(ok, "language", json_string("en"));
    assert_int_equal(db_whatsapp.check_template(a, list, ok, &field, &e), DB_ENOTFOUND);
    json_decref(ok);

    /* Meta's refusal is a refusal, with its message; a body without data is unreadable. */
    const char *err = "{\"error\":{\"message\":\"(#100) Invalid parameter\",\"code\":100}}";
    struct db_http_resp bad = {.status = 400, .body = err, .body_len = strlen(err)};
    assert_int_equal(db_whatsapp.read_templates(a, &bad, list, &after, &e), DB_EREJECTED);
    assert_non_null(strstr(e.msg, "Invalid parameter"));
    struct db_http_resp odd = {.status = 200, .body = "{}", .body_len = 2};
    assert_int_equal(db_whatsapp.read_templates(a, &odd, list, &after, &e), DB_EINVAL);
    json_decref(list);
    db_whatsapp.account_free(a);

    /* Without a business account id templates cannot be listed. */
    a = account();
    assert_int_equal(db_whatsapp.build_templates(a, NULL, &req, &e), DB_EUNSUPPORTED);
    db_http_req_clear(&req);
    db_whatsapp.account_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_send_template_header_and_buttons),
        cmocka_unit_test(templates_listed_and_sends_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
