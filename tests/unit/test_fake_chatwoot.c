/* The fake Chatwoot keeps the parts of Chatwoot's contract the bridge relies on (as read in
 * Chatwoot's source, see tests/support/fake_chatwoot.c): tokens and accounts are checked,
 * identifiers are unique, a conversation without source_id gets a new contact-inbox, and the
 * status PATCH applies only forward-looking, known statuses, keeping external_error with
 * failed only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "daemon.h"
#include "fake_chatwoot.h"

#define TOKEN "fake-cw-token"

static struct db_cw_fake *F;
static int port;

static int setup(void **state)
{
    (void)state;
    F = db_cw_fake_start(5, 9, TOKEN);
    assert_non_null(F);
    assert_int_equal(sscanf(db_cw_fake_url(F), "http://127.0.0.1:%d", &port), 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_cw_fake_stop(F);
    return 0;
}

/* method path body with token (NULL: no header); the status, the JSON answer in *out. */
static int call(const char *method, const char *path, const char *body, const char *token,
                json_t **out)
{
    char th[128];
    snprintf(th, sizeof th, "api_access_token: %s", token ? token : "");
    const char *h[] = {"Content-Type: application/json", token ? th : NULL, NULL};
    struct db_test_resp r;
    db_test_http(port, method, path, h, body, body ? strlen(body) : 0, &r);
    int status = r.status;
    if (out) *out = json_loads(r.body ? r.body : "", 0, NULL);
    db_test_resp_clear(&r);
    return status;
}

static void tokens_and_accounts_are_checked(void **state)
{
    (void)state;
    json_t *j = NULL;
    assert_int_equal(call("GET", "/api/v1/accounts/5/contacts/search?q=x", NULL, NULL, &j), 401);
    json_decref(j);
    assert_int_equal(call("GET", "/api/v1/accounts/5/contacts/search?q=x", NULL, "wrong", &j),
                     401);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "Invalid Access Token");
    json_decref(j);
    assert_int_equal(call("GET", "/api/v1/accounts/6/contacts/search?q=x", NULL, TOKEN, NULL),
                     401);
    assert_int_equal(call("GET", "/api/v1/accounts/5/contacts/search?q=x", NULL, TOKEN, NULL),
                     200);
}

static void contacts_conversations_and_statuses(void **state)
{
    (void)state;
    json_t *j = NULL;
    const char *c = "{\"inbox_id\":9,\"identifier\":\"telegram:a:1\",\"name\":\"N\","
                    "\"phone_number\":\"+380501234567\"}";
    assert_int_equal(call("POST", "/api/v1/accounts/5/contacts", c, TOKEN, &j), 200);
    json_t *contact = json_object_get(json_object_get(j, "payload"), "contact");
    long cid = (long)json_integer_value(json_object_get(contact, "id"));
    const char *sid = json_string_value(json_object_get(
        json_array_get(json_object_get(contact, "contact_inboxes"), 0), "source_id"));
    assert_non_null(sid); /* no source_id given: the API inbox made one */
    json_decref(j);
    assert_int_equal(call("POST", "/api/v1/accounts/5/contacts", c, TOKEN, &j), 422);
    json_decref(j);
    assert_int_equal(call("POST", "/api/v1/accounts/5/contacts",
                          "{\"inbox_id\":9,\"identifier\":\"x\",\"phone_number\":\"0501\"}",
                          TOKEN, NULL),
                     422);
    /* The search is a substring match: "telegram:a" finds "telegram:a:1". */
    assert_int_equal(call("GET", "/api/v1/accounts/5/contacts/search?q=telegram%3Aa", NULL,
                          TOKEN, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "payload")), 1);
    json_decref(j);
    /* Two conversations without source_id: two contact-inboxes. */
    char body[128];
    snprintf(body, sizeof body, "{\"inbox_id\":9,\"contact_id\":%ld}", cid);
    assert_int_equal(call("POST", "/api/v1/accounts/5/conversations", body, TOKEN, &j), 200);
    long conv = (long)json_integer_value(json_object_get(j, "id"));
    const char *s1 = json_string_value(json_object_get(json_object_get(j, "contact_inbox"),
                                                       "source_id"));
    char first[192];
    snprintf(first, sizeof first, "%s", s1);
    json_decref(j);
    assert_int_equal(call("POST", "/api/v1/accounts/5/conversations", body, TOKEN, &j), 200);
    assert_string_not_equal(json_string_value(json_object_get(
                                json_object_get(j, "contact_inbox"), "source_id")),
                            first);
    json_decref(j);
    /* A message, then its statuses. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/accounts/5/conversations/%ld/messages", conv);
    assert_int_equal(call("POST", path, "{\"content\":\"hi\"}", TOKEN, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "message_type")), 1); /* outgoing */
    long mid = (long)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    snprintf(path, sizeof path, "/api/v1/accounts/5/conversations/%ld/messages/%ld", conv, mid);
    struct db_cw_msg m;
    assert_int_equal(call("PATCH", path, "{\"status\":\"read\",\"external_error\":\"x\"}", TOKEN,
                          NULL), 200);
    assert_int_equal(db_cw_fake_message(F, mid, &m), 0);
    assert_string_equal(m.status, "read");
    assert_string_equal(m.external_error, ""); /* kept with failed only */
    assert_int_equal(call("PATCH", path, "{\"status\":\"delivered\"}", TOKEN, NULL), 200);
    assert_int_equal(call("PATCH", path, "{\"status\":\"bogus\"}", TOKEN, NULL), 200);
    assert_int_equal(db_cw_fake_message(F, mid, &m), 0);
    assert_string_equal(m.status, "read"); /* backward and unknown: not applied */
    assert_int_equal(call("PATCH", path, "{\"status\":\"failed\",\"external_error\":\"why\"}",
                          TOKEN, NULL), 200);
    assert_int_equal(db_cw_fake_message(F, mid, &m), 0);
    assert_string_equal(m.status, "failed");
    assert_string_equal(m.external_error, "why");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tokens_and_accounts_are_checked),
        cmocka_unit_test(contacts_conversations_and_statuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
