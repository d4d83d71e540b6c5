/* [chatwoot NAME]: what the section check accepts and refuses, with the key named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "chatwoot/chatwoot.h"
#include "conf/config.h"
#include "util/schema.h"
#include "deskbridge/connector.h"

#define GOOD_SECRET "0123456789abcdef-s3cr3t"

/* Builds the struct of a section of name with the given key/value pairs (NULL-terminated)
 * through the table; returns the status, the message in e, the struct in *out when not NULL
 * (free with db_conf_obj_free). */
static int build(const char *name, const char *const *kv, struct db_err *e, void **out)
{
    struct db_conf_kv v[32];
    size_t n = 0;
    for (; kv[2 * n]; n++)
        v[n] = (struct db_conf_kv){kv[2 * n], kv[2 * n + 1], "test.conf", (int)n + 1};
    struct db_conf_section sec = {"chatwoot", name, v, n};
    memset(e, 0, sizeof *e);
    void *obj = NULL;
    int rc = db_conf_obj_new(&db_chatwoot_conf_table, &sec, &obj, e);
    if (out) *out = obj;
    else db_conf_obj_free(&db_chatwoot_conf_table, obj);
    return rc;
}

static int check(const char *name, const char *const *kv, struct db_err *e)
{
    return build(name, kv, e, NULL);
}

#define BASE "url", "https://chat.example.com", "account_id", "3", "inbox_id", "7", \
             "api_access_token", "tok", "accounts", "telegram:one, viber:shop"

static void a_complete_section_passes(void **state)
{
    (void)state;
    struct db_err e;
    const char *kv[] = {BASE, "webhook_secret", GOOD_SECRET, "deskbridge_automation", "false",
                        NULL};
    void *obj = NULL;
    assert_int_equal(build("desk", kv, &e, &obj), DB_OK);
    const struct db_chatwoot_conf *o = obj;
    assert_string_equal(o->name, "desk");
    assert_int_equal(o->account_id, 3);
    assert_int_equal(o->inbox_id, 7);
    assert_int_equal(o->automation, 0);
    assert_int_equal(o->allow_unsigned, 0);
    assert_int_equal(o->max_attempts, 10);
    assert_int_equal(o->retry_max_ms, 60000);
    assert_string_equal(o->secret, GOOD_SECRET);
    db_conf_obj_free(&db_chatwoot_conf_table, obj);
    const char *unsigned_ok[] = {BASE, "allow_unsigned", "true", NULL};
    assert_int_equal(check("desk", unsigned_ok, &e), DB_OK);
}

static void each_mistake_is_named(void **state)
{
    (void)state;
    struct db_err e;
    const struct {
        const char *name;
        const char *kv[16];
        const char *want;
    } cases[] = {
        {"desk", {BASE, NULL}, "webhook_secret"},
        {"desk", {BASE, "webhook_secret", "short", NULL}, "at least 16"},
        {"desk", {"url", "https://c.example.com", "account_id", "3", "inbox_id", "7",
                  "accounts", "telegram:one", "webhook_secret", GOOD_SECRET, NULL},
         "api_access_token"},
        {"desk", {"url", "ftp://c", "account_id", "3", "inbox_id", "7", "api_access_token",
                  "t", "accounts", "telegram:one", "webhook_secret", GOOD_SECRET, NULL}, "url"},
        {"desk", {"url", "https://c.example.com", "account_id", "x", "inbox_id", "7",
                  "api_access_token", "t", "accounts", "telegram:one", "webhook_secret",
                  GOOD_SECRET, NULL}, "account_id"},
        {"desk", {"url", "https://c.example.com", "account_id", "3", "inbox_id", "7",
                  "api_access_token", "t", "accounts", "icq:one", "webhook_secret", GOOD_SECRET,
                  NULL}, "no such platform"},
        {"desk", {"url", "https://c.example.com", "account_id", "3", "inbox_id", "7",
                  "api_access_token", "t", "accounts", "telegram", "webhook_secret", GOOD_SECRET,
                  NULL}, "platform:account"},
        {"de.sk", {BASE, "webhook_secret", GOOD_SECRET, NULL}, "name"},
        {"desk", {BASE, "webhook_secret", GOOD_SECRET, "colour", "red", NULL}, "colour"},
        {"desk", {BASE, "webhook_secret", GOOD_SECRET, "allow_unsigned", "maybe", NULL},
         "allow_unsigned"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = check(cases[i].name, cases[i].kv, &e);
        if (rc != DB_ECONFIG || !strstr(e.msg, cases[i].want))
            fail_msg("case %zu: rc=%d msg=%s (want %s)", i, rc, e.msg, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_complete_section_passes),
        cmocka_unit_test(each_mistake_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
