/* fuzz_whatsapp_templates.c - Graph API message_templates answers on arbitrary bodies (the
 * first byte picks a 2xx or an error status).  read_templates must classify every answer and
 * produce only well-formed summaries; for each summary, a send that supplies exactly the
 * counted values must pass check_template and one with a body value too many must be refused
 * naming template.parameters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* New reference: the "template" member of a send that fits summary s, with extra body
 * values beyond the counted ones. */
static json_t *fitting(const json_t *s, int extra)
{
    json_t *t = json_pack("{s:O, s:O}", "name", json_object_get(s, "name"), "language",
                          json_object_get(s, "language"));
    json_t *params = json_array();
    json_int_t n = json_integer_value(json_object_get(json_object_get(s, "body"), "parameters"));
    for (json_int_t i = 0; i < n + extra; i++) json_array_append_new(params, json_string("v"));
    json_object_set_new(t, "parameters", params);
    const json_t *h = json_object_get(s, "header");
    if (json_integer_value(json_object_get(h, "parameters")) > 0)
        json_object_set_new(t, "header", json_pack("{s:O, s:s, s:s}", "type",
                                                   json_object_get(h, "format"), "text", "v", "url",
                                                   "https://example.com/a"));
    json_t *buttons = json_array();
    const json_t *b;
    size_t i;
    json_array_foreach(json_object_get(s, "buttons"), i, b)
        if (json_integer_value(json_object_get(b, "parameters")) > 0)
            json_array_append_new(buttons, json_pack("{s:O, s:[s]}", "index",
                                                     json_object_get(b, "index"), "parameters", "v"));
    json_object_set_new(t, "buttons", buttons);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct db_conf_kv kv[] = {{"access_token", "t", "fuzz", 1},
                                    {"app_secret", "s", "fuzz", 2},
                                    {"verify_token", "v", "fuzz", 3},
                                    {"business_account_id", "1022", "fuzz", 4}};
    const struct db_conf_section sec = {"whatsapp", "106540352242922", kv, 4};
    void *acct = NULL;
    struct db_err e = {0};
    if (size < 1) return 0;
    if (db_whatsapp.account_new(&sec, &acct, &e) != DB_OK) abort();
    static const long statuses[] = {200, 200, 200, 400, 500, 0};
    long status = statuses[data[0] % 6];
    struct db_http_resp resp = {.status = status, .body = (const char *)data + 1,
                                .body_len = size - 1,
                                .transport_error = status == 0 ? "fuzz" : NULL};
    json_t *list = json_array();
    char *after = NULL;
    int rc = db_whatsapp.read_templates(acct, &resp, list, &after, &e);
    if (rc != DB_OK && rc != DB_EINVAL && rc != DB_EREJECTED && rc != DB_ENOMEM) abort();
    if (rc == DB_OK && (status < 200 || status > 299)) abort();
    if (after) {
        /* The cursor must build the next page's request. */
        struct db_http_req req = {0};
        if (db_whatsapp.build_templates(acct, after, &req, &e) != DB_OK) abort();
        db_http_req_clear(&req);
    }
    const json_t *s;
    size_t i;
    json_array_foreach(list, i, s) {
        if (!json_is_string(json_object_get(s, "name")) ||
            !json_is_string(json_object_get(s, "language")))
            abort();
        const char *field = NULL;
        json_t *ok = fitting(s, 0), *bad = fitting(s, 1);
        /* The first summary of that name and language is the one checked against. */
        int first = 1;
        for (size_t k = 0; k < i; k++) {
            const json_t *o = json_array_get(list, k);
            if (json_equal(json_object_get(o, "name"), json_object_get(s, "name")) &&
                json_equal(json_object_get(o, "language"), json_object_get(s, "language")))
                first = 0;
        }
        if (first) {
            if (db_whatsapp.check_template(acct, list, ok, &field, &e) != DB_OK) abort();
            if (db_whatsapp.check_template(acct, list, bad, &field, &e) != DB_EINVAL ||
                strcmp(field, "template.parameters") != 0)
                abort();
        }
        json_decref(ok);
        json_decref(bad);
    }
    free(after);
    json_decref(list);
    db_whatsapp.account_free(acct);
    return 0;
}
