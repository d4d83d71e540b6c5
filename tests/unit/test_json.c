/* The JSON reader (src/util/json_parse.c) and writer (src/util/json.c) against jansson, whose
 * behaviour they keep: every body of the table is accepted or refused as the table says, and
 * as json_loadb(JSON_REJECT_DUPLICATES) followed by the object check decides, with json_equal
 * values; dumps are byte-equal to json_dumps(JSON_COMPACT); out of memory is DB_ENOMEM with
 * nothing leaked. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/json.h"

/* jansson's verdict on body: 1 when it parses to an object (returned in *v), else 0. */
static int jansson_accepts(const char *body, size_t len, json_t **v)
{
    json_error_t je;
    *v = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (*v && !json_is_object(*v)) {
        json_decref(*v);
        *v = NULL;
    }
    return *v != NULL;
}

/* Parses body with both readers; fails the test unless both say `ok` and agree on the value.
 * Returns the error text of a refusal in msg. */
static void expect(const char *body, size_t len, int ok, char msg[512])
{
    json_t *want, *got = NULL;
    struct db_err e = {0};
    int theirs = jansson_accepts(body, len, &want);
    int rc = db_json_parse_object(body, len, &got, &e);
    if (theirs != ok)
        fail_msg("jansson %s %.60s", theirs ? "accepts" : "refuses", body);
    if ((rc == DB_OK) != ok)
        fail_msg("db_json_parse_object %s %.60s (%s)", rc == DB_OK ? "accepts" : "refuses", body,
                 e.msg);
    if (ok) {
        assert_true(json_equal(want, got));
        char *a = json_dumps(want, JSON_COMPACT), *b = db_json_dump(got);
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a, b);
        free(a);
        free(b);
    } else {
        assert_int_equal(rc, DB_EINVAL);
        assert_null(got);
    }
    if (msg) snprintf(msg, 512, "%s", e.msg);
    json_decref(want);
    json_decref(got);
}

#define ACCEPT(s) expect(s, sizeof(s) - 1, 1, NULL)
#define REFUSE(s) expect(s, sizeof(s) - 1, 0, NULL)

static void grammar_and_whitespace(void **state)
{
    (void)state;
    ACCEPT("{}");
    ACCEPT(" \t\r\n{ \t\r\n} \t\r\n");
    ACCEPT("{\"a\":[true,false,null,{},[],\"\",0]}");
    ACCEPT("{ \"a\" : [ 1 , { \"b\" : null } ] , \"c\" : \"d\" }");
    REFUSE("{\"a\":1,}");
    REFUSE("{,}");
    REFUSE("{\"a\"}");
    REFUSE("{\"a\":}");
    REFUSE("{\"a\" 1}");
    REFUSE("{\"a\":1 \"b\":2}");
    REFUSE("{1:2}");
    REFUSE("{'a':1}");
    REFUSE("{a:1}");
    REFUSE("{\"a\":[1,]}");
    REFUSE("{\"a\":[,1]}");
    REFUSE("{\"a\":[1,,2]}");
    REFUSE("{\"a\":[1 2]}");
    REFUSE("{\"a\":[1}");
    REFUSE("{\"a\":{]}");
    REFUSE("{\"a\":tru}");
    REFUSE("{\"a\":truex}");
    REFUSE("{\"a\":True}");
    REFUSE("{\"a\":nul}");
    REFUSE("{\"a\":undefined}");
    REFUSE("{\"a\":1");
    REFUSE("{\"a\":");
    REFUSE("{\"a\"");
    REFUSE("{");
    /* only space, tab, LF and CR are whitespace */
    REFUSE("\f{}");
    REFUSE("{\v}");
    REFUSE("\xC2\xA0{}");
    REFUSE("{}\x0B");
    /* a byte order mark is not whitespace either */
    REFUSE("\xEF\xBB\xBF{}");
    /* nothing but whitespace after the value */
    REFUSE("{} x");
    REFUSE("{}{}");
    REFUSE("{},");
    REFUSE("{}]");
    expect("{}\0", 3, 0, NULL);
    expect("{} \0", 4, 0, NULL);
    /* the top level must be an object */
    REFUSE("[]");
    REFUSE("[{}]");
    REFUSE("1");
    REFUSE("\"x\"");
    REFUSE("true");
    REFUSE("null");
    REFUSE(" ");
}

static void numbers(void **state)
{
    (void)state;
    ACCEPT("{\"a\":0,\"b\":-0,\"c\":1,\"d\":-1,\"e\":1234567890}");
    ACCEPT("{\"a\":-9223372036854775808}");
    ACCEPT("{\"a\":9223372036854775807}");
    REFUSE("{\"a\":9223372036854775808}");
    REFUSE("{\"a\":-9223372036854775809}");
    REFUSE("{\"a\":100000000000000000000000000000}");
    ACCEPT("{\"a\":0.1,\"b\":-0.0,\"c\":5.0,\"d\":1e300,\"e\":1E-3,\"f\":1.5e+3,\"g\":0e0}");
    ACCEPT("{\"a\":2.2250738585072014e-308,\"b\":1.7976931348623157e308}");
    REFUSE("{\"a\":1E400}");
    REFUSE("{\"a\":-1e309}");
    /* underflow is kept as strtod rounds it (0 or a subnormal), as jansson does */
    ACCEPT("{\"a\":1e-400,\"b\":-1e-400,\"c\":4e-320}");
    /* a real longer than the reader's stack buffer */
    ACCEPT("{\"a\":0.000000000000000000000000000000000000000000000000000000000000000000000000000"
           "0000000000000000000000000000000000000000000000000000000000000000000000000000001}");
    REFUSE("{\"a\":01}");
    REFUSE("{\"a\":-01}");
    REFUSE("{\"a\":00}");
    REFUSE("{\"a\":1.}");
    REFUSE("{\"a\":.5}");
    REFUSE("{\"a\":+1}");
    REFUSE("{\"a\":-}");
    REFUSE("{\"a\":1e}");
    REFUSE("{\"a\":1e+}");
    REFUSE("{\"a\":1.e5}");
    REFUSE("{\"a\":0x10}");
    REFUSE("{\"a\":NaN}");
    REFUSE("{\"a\":Infinity}");
    REFUSE("{\"a\":-Infinity}");
    REFUSE("{\"a\":1.5.3}");
    /* jansson reads one byte past a number or literal and a NUL it puts back is lost, so one
     * NUL there is accepted; two are not, nor one after a string or a container. */
    expect("{\"a\":1\0}", 8, 1, NULL);
    expect("{\"a\":true\0,\"b\":2.5\0}", 20, 1, NULL);
    expect("{\"a\":1\0\0}", 9, 0, NULL);
    expect("{\"a\":\"x\"\0}", 10, 0, NULL);
    expect("{\"a\":{}\0}", 9, 0, NULL);
}

static void strings(void **state)
{
    (void)state;
    ACCEPT("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}");
    ACCEPT("{\"a\":\"\\u00e9\\u20AC\\uFFFF\\u0001\\u001f\\u007F\"}");
    ACCEPT("{\"a\":\"\\ud800\\udc00\",\"b\":\"\\uD834\\uDD1E\",\"c\":\"\\udbff\\udfff\"}");
    REFUSE("{\"a\":\"\\ud800\"}");
    REFUSE("{\"a\":\"\\udc00\"}");
    REFUSE("{\"a\":\"\\ud800\\u0041\"}");
    REFUSE("{\"a\":\"\\ud800\\ud800\"}");
    REFUSE("{\"a\":\"\\ud800x\"}");
    REFUSE("{\"a\":\"\\udc00\\ud800\"}");
    REFUSE("{\"a\":\"\\u0000\"}");
    REFUSE("{\"a\":\"x\\u0000y\"}");
    REFUSE("{\"\\u0000\":1}");
    REFUSE("{\"a\":[\"\\u0000\"]}");
    REFUSE("{\"a\":\"\\x\"}");
    REFUSE("{\"a\":\"\\'\"}");
    REFUSE("{\"a\":\"\\U0041\"}");
    REFUSE("{\"a\":\"\\u12\"}");
    REFUSE("{\"a\":\"\\u12G4\"}");
    REFUSE("{\"a\":\"\\");
    REFUSE("{\"a\":\"abc");
    /* raw control characters; DEL is not one */
    REFUSE("{\"a\":\"\x01\"}");
    REFUSE("{\"a\":\"\t\"}");
    REFUSE("{\"a\":\"\n\"}");
    REFUSE("{\"a\x1f\":1}");
    expect("{\"a\":\"\0\"}", 9, 0, NULL);
    ACCEPT("{\"a\":\"\x7f\"}");
    /* UTF-8: the shortest form of U+0000..U+10FFFF without surrogates, and nothing else */
    ACCEPT("{\"\xC2\xA2\":\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xE2\x82\xAC\xED\x9F\xBF\xEE\x80\x80"
           "\xEF\xBF\xBF\xF0\x90\x80\x80\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\"}");
    REFUSE("{\"a\":\"\xC0\xAF\"}");         /* overlong '/' */
    REFUSE("{\"a\":\"\xC1\xBF\"}");         /* overlong */
    REFUSE("{\"a\":\"\xE0\x80\xAF\"}");     /* overlong, 3 bytes */
    REFUSE("{\"a\":\"\xE0\x9F\xBF\"}");     /* overlong U+07FF */
    REFUSE("{\"a\":\"\xF0\x80\x80\xAF\"}"); /* overlong, 4 bytes */
    REFUSE("{\"a\":\"\xF0\x8F\xBF\xBF\"}"); /* overlong U+FFFF */
    REFUSE("{\"a\":\"\xED\xA0\x80\"}");     /* U+D800 */
    REFUSE("{\"a\":\"\xED\xBF\xBF\"}");     /* U+DFFF */
    REFUSE("{\"a\":\"\xF4\x90\x80\x80\"}"); /* U+110000 */
    REFUSE("{\"a\":\"\xF5\x80\x80\x80\"}");
    REFUSE("{\"a\":\"\xFF\"}");
    REFUSE("{\"a\":\"\x80\"}");             /* a lone continuation byte */
    REFUSE("{\"a\":\"\xE2\x82\"}");         /* truncated before the quote */
    REFUSE("{\"a\":\"\xC3\"}");
    REFUSE("{\"a\":\"\xF0\x9F\x98");        /* truncated by the end of the body */
    REFUSE("{\"\xE2\x82\":1}");
    REFUSE("{\"a\":1}\xC3\xA9");
    REFUSE("{\"a\":\xC3\xA9}");
}

static void duplicate_keys(void **state)
{
    (void)state;
    REFUSE("{\"a\":1,\"a\":2}");
    REFUSE("{\"a\":1,\"b\":2,\"a\":{}}");
    REFUSE("{\"a\":{\"b\":[{\"c\":1,\"d\":2,\"c\":2}]}}");
    REFUSE("{\"a\":[[[{\"x\":{\"y\":null,\"y\":null}}]]]}");
    REFUSE("{\"a\":1,\"\\u0061\":2}");
    REFUSE("{\"\xC3\xA9\":1,\"\\u00e9\":2}");
    ACCEPT("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":1}}");
    ACCEPT("{\"a\":1,\"A\":2,\"a \":3,\"\":4}");
}

/* "{\"a\":" + n brackets (+ "1") + closers + "}": the value at the bottom is at depth n + 1
 * (+ 1 more for the scalar). */
static char *nested(size_t n, int scalar, int closed, size_t *len)
{
    char *b = malloc(2 * n + 16);
    assert_non_null(b);
    size_t k = 0;
    memcpy(b, "{\"a\":", 5);
    k = 5;
    memset(b + k, '[', n);
    k += n;
    if (scalar) b[k++] = '1';
    if (closed) {
        memset(b + k, ']', n);
        k += n;
        b[k++] = '}';
    }
    b[k] = '\0';
    *len = k;
    return b;
}

static void nesting_limit(void **state)
{
    (void)state;
    size_t len;
    char *b;
    /* 2048 levels: the object and 2047 arrays; one more is refused */
    b = nested(2047, 0, 1, &len);
    expect(b, len, 1, NULL);
    free(b);
    b = nested(2048, 0, 1, &len);
    expect(b, len, 0, NULL);
    free(b);
    /* a scalar is a level of its own */
    b = nested(2046, 1, 1, &len);
    expect(b, len, 1, NULL);
    free(b);
    b = nested(2047, 1, 1, &len);
    expect(b, len, 0, NULL);
    free(b);
    /* hostile depth: refused without recursion */
    char msg[512];
    b = nested(100000, 0, 0, &len);
    expect(b, len, 0, msg);
    assert_string_equal(msg, "body is not JSON: nesting too deep at 1:2053");
    free(b);
}

static void error_texts(void **state)
{
    (void)state;
    char msg[512];
#define REFUSED_AS(body, text)                                                                    \
    do {                                                                                         \
        expect(body, sizeof(body) - 1, 0, msg);                                                  \
        assert_string_equal(msg, text);                                                          \
    } while (0)
    struct db_err e = {0};
    json_t *v = (json_t *)1;
    assert_int_equal(db_json_parse_object("", 0, &v, &e), DB_EINVAL);
    assert_null(v);
    assert_string_equal(e.msg, "body is empty");
    assert_int_equal(db_json_parse_object(NULL, 0, &v, &e), DB_EINVAL);
    assert_string_equal(e.msg, "body is empty");
    REFUSED_AS("[1,2]", "top-level value must be an object");
    REFUSED_AS("\"customer secret\"", "top-level value must be an object");
    /* 1-based line and byte column of the offending byte, and never the body's text */
    REFUSED_AS("{\"a\":1,}", "body is not JSON: string key expected at 1:8");
    REFUSED_AS("{\n  \"text\": \"customer secret\",\n  \"x\": secret\n}",
               "body is not JSON: unexpected character at 3:8");
    assert_null(strstr(msg, "secret"));
    REFUSED_AS("{\"a\":1,\"a\":2}", "body is not JSON: duplicate object key at 1:8");
    REFUSED_AS("{\"a\":\"x\xC3\"}", "body is not JSON: invalid UTF-8 in a string at 1:8");
    REFUSED_AS("{\"a\":\"\\ud800\"}", "body is not JSON: unpaired surrogate escape at 1:7");
    REFUSED_AS("{\"a\":\"\\u0000\"}", "body is not JSON: \\u0000 is not allowed at 1:7");
    REFUSED_AS("{\"a\":99999999999999999999}", "body is not JSON: integer out of range at 1:6");
    REFUSED_AS("{\"a\":1e999}", "body is not JSON: real number out of range at 1:6");
    REFUSED_AS("{\"a\":1} x", "body is not JSON: unexpected data after the value at 1:9");
    REFUSED_AS("{\"a\":\"abc",
               "body is not JSON: unexpected end of input in a string at 1:10");
    REFUSED_AS("{\r\n\"a\":1\n", "body is not JSON: unexpected end of input at 3:1");
}

/* Long keys and values with escapes outgrow the reader's own scratch space. */
static void long_escaped_strings(void **state)
{
    (void)state;
    size_t n = 5000, k = 0;
    char *b = malloc(4 * n + 64);
    assert_non_null(b);
    k += (size_t)sprintf(b + k, "{\"");
    for (size_t i = 0; i < n / 6; i++) k += (size_t)sprintf(b + k, "\\u00e9");
    k += (size_t)sprintf(b + k, "\":\"");
    for (size_t i = 0; i < n; i++) b[k++] = i % 7 ? 'x' : '\\', b[k++] = i % 7 ? 'y' : 'n';
    k += (size_t)sprintf(b + k, "\",\"k\":\"\\t%s\"}", "plain after escapes");
    expect(b, k, 1, NULL);
    free(b);
}

/* db_json_dump(v) against json_dumps: JSON_COMPACT for containers, plus JSON_ENCODE_ANY for
 * scalars (db_json_dump takes any value). */
static void same_dump(const json_t *v)
{
    size_t flags = JSON_COMPACT | (json_is_object(v) || json_is_array(v) ? 0 : JSON_ENCODE_ANY);
    char *want = json_dumps(v, flags), *got = db_json_dump(v);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static void dump_reals_and_integers(void **state)
{
    (void)state;
    const double reals[] = {0.1,     1e300,   -0.0,     5.0,      0.0,      1e22,   1e16,
                            1e17,    1e-5,    123.456,  -1.5e20,  DBL_MAX,  DBL_MIN, 4.9e-324,
                            1e-307,  3.0e-320, 2.5,     1.0 / 3,  -2.0 / 3, 100.0,  1e15,
                            9007199254740993.0, 0.000123, 1.7976931348623157e308, 1e-100};
    json_t *arr = json_array();
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *r = json_real(reals[i]);
        same_dump(r);
        json_array_append_new(arr, r);
    }
    const json_int_t ints[] = {0, -1, 1, 9, 10, -10, 1234567890123, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *n = json_integer(ints[i]);
        same_dump(n);
        json_array_append_new(arr, n);
    }
    same_dump(arr);
    json_decref(arr);
    json_t *t = json_true(), *f = json_false(), *z = json_null();
    same_dump(t);
    same_dump(f);
    same_dump(z);
}

static void dump_strings(void **state)
{
    (void)state;
    /* every control character, the two specials, '/', DEL and raw Unicode */
    static const char rest[] = "\"\\/\x7f A \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \xD8\xB3\xD9\x84";
    char all[160];
    size_t k = 0;
    for (int c = 0; c < 0x20; c++) all[k++] = (char)c;
    memcpy(all + k, rest, sizeof rest - 1);
    k += sizeof rest - 1;
    json_t *s = json_stringn(all, k);
    assert_non_null(s);
    same_dump(s);
    json_t *o = json_object();
    json_object_setn(o, all, k, s);          /* the same bytes as a key, NUL and all */
    json_object_set_new(o, "", json_string(""));
    same_dump(o);
    json_decref(o);
    json_decref(s);
    /* a long string that needs escapes late, to grow the buffer mid-string */
    char *big = malloc(70000);
    assert_non_null(big);
    memset(big, 'x', 70000);
    for (size_t i = 65000; i < 70000; i += 3) big[i] = '\n';
    s = json_stringn(big, 70000);
    same_dump(s);
    json_decref(s);
    free(big);
    /* a string json_stringn_nocheck let in that is not UTF-8: json_dumps fails, and so does
     * db_json_dump */
    json_t *bad = json_pack("{s:o}", "a", json_stringn_nocheck("ok \xC3(", 5));
    assert_null(json_dumps(bad, JSON_COMPACT));
    assert_null(db_json_dump(bad));
    json_decref(bad);
    assert_null(db_json_dump(NULL));
}

static void dump_containers(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:[i,f,{},[],[[]],{s:{s:n}}],s:b,s:s}", "list", 1, 2.5, "x", "y",
                          "ok", 1, "text", "h\xC3\xA9llo \"you\"");
    assert_non_null(v);
    same_dump(v);
    /* insertion order survives deletes and re-adds */
    json_t *o = json_object();
    const char *keys[] = {"z", "a", "m", "b", "y"};
    for (int i = 0; i < 5; i++) json_object_set_new(o, keys[i], json_integer(i));
    json_object_del(o, "a");
    json_object_set_new(o, "a", json_integer(9));
    json_object_set_new(o, "m", json_string("replaced"));
    same_dump(o);
    json_object_set(v, "ordered", o);
    same_dump(v);
    json_decref(o);
    json_decref(v);
    /* a container inside itself: json_dumps fails, db_json_dump too, without looping */
    json_t *a = json_array(), *b = json_array();
    json_array_append(a, b);
    json_array_append(b, a);
    assert_null(json_dumps(a, JSON_COMPACT));
    assert_null(db_json_dump(a));
    json_array_clear(b);
    json_decref(a);
    json_decref(b);
    /* the same container twice side by side is no cycle */
    json_t *leaf = json_pack("{s:i}", "k", 1);
    json_t *two = json_pack("[O,O]", leaf, leaf);
    same_dump(two);
    json_decref(two);
    json_decref(leaf);
}

/* Every fixture body of the connectors: the same verdict as jansson, equal values and dumps. */
static void fixture_bodies(void **state)
{
    (void)state;
    const char *dirs[] = {"whatsapp", "telegram", "viber"};
    char cmd[512];
    int seen = 0;
    for (int d = 0; d < 3; d++) {
        snprintf(cmd, sizeof cmd, "ls %s/tests/fixtures/%s/*.json", DB_SOURCE_DIR, dirs[d]);
        FILE *ls = popen(cmd, "r");
        assert_non_null(ls);
        char path[512];
        while (fgets(path, sizeof path, ls)) {
            path[strcspn(path, "\n")] = '\0';
            FILE *f = fopen(path, "rb");
            assert_non_null(f);
            static char body[1 << 16];
            size_t len = fread(body, 1, sizeof body, f);
            fclose(f);
            json_t *want;
            expect(body, len, jansson_accepts(body, len, &want), NULL);
            json_decref(want);
            seen++;
        }
        pclose(ls);
    }
    assert_true(seen > 100);
}

/* Allocation through jansson fails at the n-th call: DB_ENOMEM, and every block handed out is
 * given back. */
static long live_blocks, fail_at, calls;
static void *counting_malloc(size_t n)
{
    if (++calls == fail_at) return NULL;
    void *p = malloc(n);
    if (p) live_blocks++;
    return p;
}
static void counting_free(void *p)
{
    if (p) live_blocks--;
    free(p);
}

static void out_of_memory(void **state)
{
    (void)state;
    const char *body = "{\"a\":[1,2.5,\"x\",{\"b\":\"\\u00e9\"},true,null],\"c\":{\"d\":[]},"
                       "\"e\":\"long enough to be a string of its own\",\"f\":-7}";
    json_set_alloc_funcs(counting_malloc, counting_free);
    int nomem = 0;
    for (fail_at = 1;; fail_at++) {
        calls = 0;
        live_blocks = 0;
        json_t *v = NULL;
        struct db_err e = {0};
        int rc = db_json_parse_object(body, strlen(body), &v, &e);
        if (rc == DB_OK) {
            json_decref(v);
            assert_int_equal(live_blocks, 0);
            break;
        }
        assert_int_equal(rc, DB_ENOMEM);
        assert_null(v);
        assert_int_equal(live_blocks, 0);
        nomem++;
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(nomem > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grammar_and_whitespace),
        cmocka_unit_test(numbers),
        cmocka_unit_test(strings),
        cmocka_unit_test(duplicate_keys),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(error_texts),
        cmocka_unit_test(long_escaped_strings),
        cmocka_unit_test(dump_reals_and_integers),
        cmocka_unit_test(dump_strings),
        cmocka_unit_test(dump_containers),
        cmocka_unit_test(fixture_bodies),
        cmocka_unit_test(out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
