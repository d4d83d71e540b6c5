/* The contract check the store applies to every connector's event before writing it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include "deskbridge/event.h"
#include "deskbridge/status.h"

static json_t *minimal(void)
{
    json_t *ev = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "v",
                           DB_STREAM_CONTRACT_VERSION, "kind", "message", "type", "text",
                           "platform", "telegram", "account", "support", "conversation",
                           "telegram:support:9", "external_chat_id", "9");
    assert_non_null(ev);
    return ev;
}

static void a_minimal_message_passes(void **state)
{
    (void)state;
    json_t *ev = minimal();
    struct db_err e = {0};
    assert_int_equal(db_event_validate(ev, &e), DB_OK);
    json_decref(ev);
}

static void id_and_received_at_are_the_stores(void **state)
{
    (void)state;
    const char *members[] = {"id", "received_at"};
    for (int i = 0; i < 2; i++) {
        json_t *ev = minimal();
        json_object_set_new(ev, members[i], json_string("x"));
        struct db_err e = {0};
        assert_int_equal(db_event_validate(ev, &e), DB_EINVAL);
        json_decref(ev);
    }
}

static void breaking_the_contract_is_refused(void **state)
{
    (void)state;
    struct db_err e = {0};
    json_t *ev = minimal();
    json_object_set_new(ev, "v", json_integer(DB_STREAM_CONTRACT_VERSION + 1));
    assert_int_equal(db_event_validate(ev, &e), DB_EINVAL);
    json_decref(ev);
    ev = minimal();
    json_object_set_new(ev, "kind", json_string("telepathy"));
    assert_int_equal(db_event_validate(ev, &e), DB_EINVAL);
    json_decref(ev);
    ev = minimal();
    json_object_set_new(ev, "external_chat_id", json_integer(9));
    assert_int_equal(db_event_validate(ev, &e), DB_EINVAL);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_minimal_message_passes),
        cmocka_unit_test(id_and_received_at_are_the_stores),
        cmocka_unit_test(breaking_the_contract_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
