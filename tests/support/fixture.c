#include "fixture.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

static const char *code_name(int code)
{
    switch (code) {
    case DB_OK: return "OK";
    case DB_EINVAL: return "EINVAL";
    case DB_EAUTH: return "EAUTH";
    case DB_ETOOBIG: return "ETOOBIG";
    default: return db_strerror(code);
    }
}

static void run_case(const struct db_connector *conn, const void *acct, const char *dir,
                     const char *name)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "tests/fixtures/%s/%s.json", dir, name);
    char *body = db_test_read_file(path, &len);
    snprintf(path, sizeof path, "tests/fixtures/%s/%s.expected.json", dir, name);
    char *exp_text = db_test_read_file(path, NULL);
    json_error_t je;
    json_t *expected = json_loads(exp_text, 0, &je);
    if (!expected) fail_msg("%s: unreadable: %s", path, je.text);

    struct db_headers headers = {0};
    const char *hname;
    json_t *hval;
    json_object_foreach(json_object_get(expected, "headers"), hname, hval)
        assert_int_equal(db_headers_add(&headers, hname, json_string_value(hval)), DB_OK);
    struct db_inbound in = {.method = "POST",
                            .path = "/webhooks/fixture",
                            .query = json_string_value(json_object_get(expected, "query")),
                            .headers = &headers,
                            .body = (const unsigned char *)body,
                            .body_len = len};
    struct db_event_list out = {0};
    struct db_err e = {0};
    int rc = conn->parse(acct, &in, &out, &e);

    const char *want_err = json_string_value(json_object_get(expected, "error"));
    if (want_err) {
        if (strcmp(code_name(rc), want_err) != 0)
            fail_msg("%s/%s: want %s, got %s (%s)", dir, name, want_err, code_name(rc), e.msg);
        if (out.n != 0) fail_msg("%s/%s: failed parse appended %zu events", dir, name, out.n);
    } else {
        if (rc != DB_OK) fail_msg("%s/%s: parse failed: %s (%s)", dir, name, code_name(rc), e.msg);
        json_t *want = json_object_get(expected, "events");
        if (json_array_size(want) != out.n)
            fail_msg("%s/%s: want %zu events, got %zu", dir, name, json_array_size(want), out.n);
        for (size_t i = 0; i < out.n; i++) {
            json_t *got = json_deep_copy(out.v[i].json);
            json_object_set_new(got, "_dedupe", json_string(out.v[i].dedupe_key));
            struct db_err ve = {0};
            if (db_event_validate(out.v[i].json, &ve) != DB_OK)
                fail_msg("%s/%s: event %zu breaks the contract: %s", dir, name, i, ve.msg);
            if (!json_equal(got, json_array_get(want, i))) {
                char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
                char *w = json_dumps(json_array_get(want, i), JSON_SORT_KEYS | JSON_COMPACT);
                print_error("%s/%s event %zu\n got: %s\nwant: %s\n", dir, name, i, g, w);
                free(g);
                free(w);
                json_decref(got);
                fail_msg("%s/%s: event %zu differs", dir, name, i);
            }
            json_decref(got);
        }
        json_t *want_reply = json_object_get(expected, "reply_body");
        if (want_reply) {
            json_t *got_reply = out.reply_body ? json_loads(out.reply_body, 0, NULL) : NULL;
            if (!json_equal(got_reply, want_reply))
                fail_msg("%s/%s: reply_body differs: %s", dir, name,
                         out.reply_body ? out.reply_body : "(none)");
            json_decref(got_reply);
        } else if (out.reply_body) {
            fail_msg("%s/%s: unexpected reply_body %s", dir, name, out.reply_body);
        }
    }
    db_event_list_clear(&out);
    db_headers_clear(&headers);
    json_decref(expected);
    free(exp_text);
    free(body);
}

int db_test_run_fixtures(const struct db_connector *conn, const void *acct, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", DB_SOURCE_DIR, dir);
    DIR *d = opendir(path);
    if (!d) fail_msg("no fixture directory %s", path);
    int cases = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
        if (n > 14 && strcmp(de->d_name + n - 14, ".expected.json") == 0) continue;
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), de->d_name);
        run_case(conn, acct, dir, name);
        cases++;
    }
    closedir(d);
    if (cases == 0) fail_msg("no fixture cases in %s", path);
    return cases;
}

void *db_test_account(const struct db_connector *conn, const char *account,
                      const char *const *kv)
{
    struct db_conf_kv items[32];
    char keys[32][64];
    size_t n = 0;
    for (; kv[n]; n++) {
        assert_true(n < 32);
        const char *eq = strchr(kv[n], '=');
        assert_non_null(eq);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)(eq - kv[n]), kv[n]);
        items[n] = (struct db_conf_kv){keys[n], eq + 1, "test", (int)n + 1};
    }
    struct db_conf_section sec = {conn->name, account, items, n};
    void *acct = NULL;
    struct db_err e = {0};
    if (conn->account_new(&sec, &acct, &e) != DB_OK) fail_msg("account_new: %s", e.msg);
    return acct;
}

void db_test_account_refuses(const struct db_connector *conn, const char *account,
                             const char *const *kv, const char *key, const char *value,
                             const char *want)
{
    struct db_conf_kv items[32];
    char keys[32][64];
    size_t n = 0;
    for (size_t i = 0; kv[i]; i++) {
        assert_true(n < 31);
        const char *eq = strchr(kv[i], '=');
        assert_non_null(eq);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)(eq - kv[i]), kv[i]);
        if (strcmp(keys[n], key) == 0) continue;
        items[n] = (struct db_conf_kv){keys[n], eq + 1, "test.conf", (int)i + 1};
        n++;
    }
    items[n++] = (struct db_conf_kv){key, value, "test.conf", 9};
    struct db_conf_section sec = {conn->name, account, items, n};
    void *acct = (void *)&sec; /* account_new must clear it */
    struct db_err e = {0};
    int rc = conn->account_new(&sec, &acct, &e);
    if (rc == DB_OK) {
        conn->account_free(acct);
        fail_msg("%s = %s: accepted, want \"%s\"", key, value, want);
    }
    assert_int_equal(rc, DB_ECONFIG);
    assert_null(acct);
    if (strcmp(e.msg, want) != 0) fail_msg("%s: got \"%s\", want \"%s\"", key, e.msg, want);
    if (strlen(value) > 3 && strstr(e.msg, value))
        fail_msg("%s: the value is echoed: %s", key, e.msg);
}
