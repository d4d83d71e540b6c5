/* Unit tests of the pure assignment rules (src/dispatch/assign.c): sticky, least loaded, capacity,
 * languages, accounts, ties in turn, queue order, keyword priorities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/assign.h"
#include "deskbridge/connector.h"
#include "dispatch/dispatcher.h"

static const char *const uk[] = {"uk"}, *const en[] = {"en"};
static const char *const tg[] = {"telegram:1"}, *const wa[] = {"whatsapp:2"};

static struct db_assign_agent ag(const char *id, int online, int cap, int load)
{
    return (struct db_assign_agent){.id = id, .online = online, .capacity = cap, .load = load};
}

static void sticky_when_online_with_room(void **state)
{
    (void)state;
    struct db_assign_agent a[] = {ag("a", 1, 5, 0), ag("b", 1, 5, 4)};
    struct db_assign_conv c = {"telegram:1", "uk", "b"};
    assert_int_equal(db_assign_pick(&c, a, 2, 0), 1);
    a[1].load = 5; /* full: the least loaded instead */
    assert_int_equal(db_assign_pick(&c, a, 2, 0), 0);
    a[1].load = 0, a[1].online = 0; /* offline */
    assert_int_equal(db_assign_pick(&c, a, 2, 0), 0);
}

static void least_loaded_and_capacity(void **state)
{
    (void)state;
    struct db_assign_agent a[] = {ag("a", 1, 5, 3), ag("b", 1, 5, 1), ag("c", 1, 1, 0),
                                  ag("d", 0, 9, 0)};
    struct db_assign_conv c = {"telegram:1", NULL, NULL};
    assert_int_equal(db_assign_pick(&c, a, 4, 0), 2);
    a[2].load = 1; /* c full, d offline */
    assert_int_equal(db_assign_pick(&c, a, 4, 0), 1);
    a[0].load = a[1].load = 5;
    assert_int_equal(db_assign_pick(&c, a, 4, 0), -1);
    a[0].capacity = 0, a[0].load = 0; /* capacity 0 takes nothing */
    assert_int_equal(db_assign_pick(&c, a, 1, 0), -1);
}

static void languages_and_accounts(void **state)
{
    (void)state;
    struct db_assign_agent a[] = {ag("a", 1, 5, 0), ag("b", 1, 5, 2), ag("c", 1, 5, 1)};
    a[0].languages = en, a[0].n_languages = 1;
    a[1].languages = uk, a[1].n_languages = 1;
    a[2].accounts = wa, a[2].n_accounts = 1;
    struct db_assign_conv c = {"telegram:1", "uk-UA", NULL};
    assert_int_equal(db_assign_pick(&c, a, 3, 0), 1); /* uk-UA is served by uk */
    c.language = NULL; /* unknown language: anyone */
    assert_int_equal(db_assign_pick(&c, a, 3, 0), 0);
    c.account = "whatsapp:2", c.language = "de";
    assert_int_equal(db_assign_pick(&c, a, 3, 0), 2);
    a[2].accounts = tg;
    assert_int_equal(db_assign_pick(&c, a, 3, 0), -1);
}

static void ties_in_turn_by_id(void **state)
{
    (void)state;
    struct db_assign_agent a[] = {ag("zed", 1, 5, 1), ag("amy", 1, 5, 1), ag("kim", 1, 5, 1)};
    struct db_assign_conv c = {"telegram:1", NULL, NULL};
    assert_int_equal(db_assign_pick(&c, a, 3, 0), 1);
    assert_int_equal(db_assign_pick(&c, a, 3, 1), 2);
    assert_int_equal(db_assign_pick(&c, a, 3, 2), 0);
    assert_int_equal(db_assign_pick(&c, a, 3, 3), 1);
}

static void queue_order_priority_then_age(void **state)
{
    (void)state;
    assert_true(db_queue_score(DB_PRIO_URGENT, 2000) < db_queue_score(DB_PRIO_HIGH, 1000));
    assert_true(db_queue_score(DB_PRIO_HIGH, 1795365000000LL) <
                db_queue_score(DB_PRIO_NORMAL, 1000));
    assert_true(db_queue_score(DB_PRIO_NORMAL, 1000) < db_queue_score(DB_PRIO_NORMAL, 1001));
    assert_true(db_queue_score(DB_PRIO_NORMAL, 1795365000000LL) < db_queue_score(DB_PRIO_LOW, 0));
    assert_int_equal(db_priority_parse("urgent"), DB_PRIO_URGENT);
    assert_int_equal(db_priority_parse("URGENT"), -1);
    assert_int_equal(db_priority_parse(NULL), -1);
    assert_string_equal(db_priority_name(DB_PRIO_LOW), "low");
}

static void keyword_rules(void **state)
{
    (void)state;
    char *rules = NULL;
    struct db_err e = {0};
    assert_int_equal(db_assign_rules_add(&rules, "Urgent, срочно :urgent", &e), DB_OK);
    assert_int_equal(db_assign_rules_add(&rules, "refund:high", &e), DB_OK);
    assert_string_equal(rules, "urgent\turgent\nсрочно\turgent\nrefund\thigh\n");
    assert_int_equal(db_assign_rules_match(rules, "this is URGENT please"), DB_PRIO_URGENT);
    assert_int_equal(db_assign_rules_match(rules, "где мой refund, срочно"), DB_PRIO_URGENT);
    assert_int_equal(db_assign_rules_match(rules, "a Refund?"), DB_PRIO_HIGH);
    assert_int_equal(db_assign_rules_match(rules, "hello"), -1);
    assert_int_equal(db_assign_rules_add(&rules, "x:soon", &e), DB_EINVAL);
    assert_int_equal(db_assign_rules_add(&rules, "nothing", &e), DB_EINVAL);
    assert_int_equal(db_assign_rules_add(&rules, " , :high", &e), DB_EINVAL);
    free(rules);
}

static int check(const char *key, const char *value, struct db_err *e)
{
    struct db_conf_kv kv[] = {{"offline_grace_ms", "1000", "f.conf", 2}, {key, value, "f.conf", 3}};
    struct db_conf_section sec = {"dispatch", NULL, kv, 2};
    return db_dispatch_conf_check(&sec, e);
}

static void dispatch_section_is_checked(void **state)
{
    (void)state;
    struct db_err e = {0};
    assert_int_equal(check("max_deliveries", "5", &e), DB_OK);
    assert_int_equal(check("priority_keyword", "urgent,срочно:urgent", &e), DB_OK);
    assert_int_equal(check("claim_idle_ms", "5", &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "f.conf:3"));
    assert_non_null(strstr(e.msg, "claim_idle_ms"));
    assert_int_equal(check("default_capacity", "five", &e), DB_ECONFIG);
    assert_int_equal(check("offline_grace_ms", "-1", &e), DB_ECONFIG);
    assert_int_equal(check("priority_keyword", "urgent:asap", &e), DB_ECONFIG);
    assert_int_equal(check("colour", "blue", &e), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "colour"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sticky_when_online_with_room),
        cmocka_unit_test(least_loaded_and_capacity),
        cmocka_unit_test(languages_and_accounts),
        cmocka_unit_test(ties_in_turn_by_id),
        cmocka_unit_test(queue_order_priority_then_age),
        cmocka_unit_test(keyword_rules),
        cmocka_unit_test(dispatch_section_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
