/* The words the search index keeps (src/console/search_words.c): cut at punctuation and
 * spaces, lowered in the scripts agents meet (ASCII, Latin-1, Polish, Cyrillic with the
 * Ukrainian letters), 2 to 40 bytes, emoji dropped, prefixes only when asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "console/search.h"

struct out {
    char buf[2048];
};

static void add(const char *w, size_t n, void *arg)
{
    struct out *o = arg;
    size_t len = strlen(o->buf);
    snprintf(o->buf + len, sizeof o->buf - len, "%s%.*s", len ? "|" : "", (int)n, w);
}

static const char *words(const char *text, int prefixes)
{
    static struct out o;
    o.buf[0] = '\0';
    db_search_words(text, prefixes, add, &o);
    return o.buf;
}

static void cuts_and_lowers(void **state)
{
    (void)state;
    assert_string_equal(words("Hello, World! Where is my ORDER #4521?", 0),
                        "hello|world|where|is|my|order|4521");
    assert_string_equal(words("Де моє ЗАМОВЛЕННЯ? Їжак, Ґанок, Євген, Іван", 0),
                        "де|моє|замовлення|їжак|ґанок|євген|іван");
    assert_string_equal(words("ZAŻÓŁĆ GĘŚLĄ JAŹŃ", 0), "zażółć|gęślą|jaźń");
    assert_string_equal(words("Grüße aus MÜNCHEN", 0), "grüße|aus|münchen");
    assert_string_equal(words("مرحبا، أين طلبي؟", 0), "مرحبا|أين|طلبي");
}

static void drops_what_is_not_a_word(void **state)
{
    (void)state;
    assert_string_equal(words("a 📦 b — ok…  <img src=x onerror=alert(1)>", 0),
                        "ok|img|src|onerror|alert");
    assert_string_equal(words("", 0), "");
    assert_string_equal(words(NULL, 0), "");
    /* Longer than 40 bytes: cut on a character boundary (20 two-byte letters). */
    assert_string_equal(words("ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ", 0), "жжжжжжжжжжжжжжжжжжжж");
}

static void prefixes_of_names(void **state)
{
    (void)state;
    assert_string_equal(words("Taras", 1), "ta|tar|tara|taras");
    assert_string_equal(words("Ян Li", 1), "ян|li");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cuts_and_lowers),
        cmocka_unit_test(drops_what_is_not_a_word),
        cmocka_unit_test(prefixes_of_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
