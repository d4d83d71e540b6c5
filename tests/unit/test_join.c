/* DB_JOIN, DB_JOINED and db_fmt_ll write what snprintf's "%s%s..." and "%lld" write; DB_JOIN
 * cuts the same way. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/join.h"

static void joins_like_snprintf(void **state)
{
    (void)state;
    const char *a = "deskbridge", *b = "customer", *c = "whatsapp:1065550000:16505550000";
    char want[64], got[64];
    /* every size from 1 up, so each cut point (inside a part, at its end) is met */
    for (size_t n = 1; n <= sizeof got; n++) {
        memset(got, 'x', sizeof got);
        int wl = snprintf(want, n, "%s:%s:{%s}", a, b, c);
        size_t gl = DB_JOIN(got, n, a, ":", b, ":{", c, "}");
        assert_int_equal(gl, (size_t)wl);
        assert_string_equal(got, want);
        if (n < sizeof got) assert_int_equal(got[n], 'x'); /* nothing written past n bytes */
    }
    assert_int_equal(DB_JOIN(got, sizeof got, ""), 0);
    assert_string_equal(got, "");
}

static void joined_is_the_whole_in_a_new_string(void **state)
{
    (void)state;
    char *k = DB_JOINED("deskbridge", ":dedupe:", "whatsapp", ":", "", "1065550000");
    assert_non_null(k);
    assert_string_equal(k, "deskbridge:dedupe:whatsapp:1065550000");
    free(k);
    k = DB_JOINED("");
    assert_non_null(k);
    assert_string_equal(k, "");
    free(k);
}

static void formats_integers_like_printf(void **state)
{
    (void)state;
    const long long v[] = {0,        7,         -7,        10,       1749416383, 1796674698547LL,
                           -1000000, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char want[DB_LL_MAX], got[DB_LL_MAX];
        int wl = snprintf(want, sizeof want, "%lld", v[i]);
        assert_int_equal(db_fmt_ll(got, v[i]), (size_t)wl);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(joins_like_snprintf),
        cmocka_unit_test(joined_is_the_whole_in_a_new_string),
        cmocka_unit_test(formats_integers_like_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
