/* jansson's allocations through the recycling lists: blocks come back by size, large ones
 * bypass the lists, and parsing, building, copying and writing values still work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "deskbridge/status.h"
#include "util/json.h"
#include "util/json_alloc.h"

static int install(void **state)
{
    (void)state;
    db_json_alloc_install();
    db_json_alloc_install(); /* twice is harmless */
    return 0;
}

static void freed_blocks_are_handed_out_again(void **state)
{
    (void)state;
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (!db_json_alloc_recycling()) {
        /* under AddressSanitizer jansson keeps plain malloc */
        assert_ptr_equal(m, malloc);
        skip();
    }
    void *a = m(40), *b = m(60);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 1, 40), memset(b, 2, 60);
    f(a);
    void *c = m(50); /* same size class as 40 (33-64) */
    assert_ptr_equal(c, a);
    void *d = m(20); /* another class: a fresh block */
    assert_ptr_not_equal(d, a);
    void *big = m(100000); /* beyond the lists */
    assert_non_null(big);
    memset(big, 3, 100000);
    f(big);
    f(b), f(c), f(d);
    f(NULL);
}

static void values_work_through_the_lists(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        const char body[] = "{\"a\":[1,2,{\"b\":\"x\\u00e9y\"}],\"long\":\"0123456789012345678901234"
                            "5678901234567890123456789012345678901234567890123456789\",\"n\":null}";
        json_t *v = NULL;
        assert_int_equal(db_json_parse_object(body, sizeof body - 1, &v, NULL), DB_OK);
        json_t *copy = json_deep_copy(v);
        assert_true(json_equal(v, copy));
        assert_int_equal(json_object_set_new(copy, "round", json_integer(round)), 0);
        char *text = db_json_dump(copy);
        assert_non_null(text);
        assert_non_null(strstr(text, "\"b\":\"x\xc3\xa9y\""));
        free(text);
        json_decref(copy);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(freed_blocks_are_handed_out_again),
        cmocka_unit_test(values_work_through_the_lists),
    };
    return cmocka_run_group_tests(tests, install, NULL);
}
