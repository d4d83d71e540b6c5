/* test_curl_lib.c - libcurl is loaded at run time: not by creating a client, only by the first
 * send; the loader reports a missing library or symbol by name.  The order of the tests
 * matters: the first ones check that libcurl is not mapped yet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/curl_lib.h"
#include "fake_platform.h"
#include "net/http_client.h"
#include "testutil.h"

/* 1 when a file whose name contains "libcurl" is mapped into this process. */
static int libcurl_mapped(void)
{
    /* Read line by line: /proc files report size 0, so a whole-file read by size sees
     * nothing. */
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "libcurl") != NULL;
    fclose(f);
    return found;
}

static void done_cb(const struct db_http_resp *resp, void *arg)
{
    long *status = arg;
    *status = resp->transport_error ? -1 : resp->status;
}

static void linking_does_not_map_libcurl(void **state)
{
    (void)state;
    assert_false(libcurl_mapped());
}

static void creating_and_freeing_a_client_does_not_load_libcurl(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct db_http_client *c = db_http_client_new(base, NULL);
    assert_non_null(c);
    assert_int_equal(db_http_client_inflight(c), 0);
    db_http_client_free(c);
    event_base_free(base);
    assert_false(libcurl_mapped());
}

static void a_missing_library_is_named_with_the_loader_reason(void **state)
{
    (void)state;
    struct db_curl_lib t;
    char err[512];
    memset(&t, 0xff, sizeof t);
    assert_int_equal(db_curl_lib_load_from("libdeskbridge-no-such-curl.so.4", &t, err, sizeof err),
                     DB_ENOTFOUND);
    assert_non_null(strstr(err, "libcurl could not be loaded (libdeskbridge-no-such-curl.so.4: "));
    assert_non_null(strstr(err, "cannot open shared object file")); /* dlerror()'s words */
    /* Named once, although dlerror() names it too. */
    assert_null(strstr(strstr(err, "libdeskbridge") + 1, "libdeskbridge"));
    assert_null(t.easy_init);
    assert_null(t.free);
    assert_false(libcurl_mapped());
}

static void a_library_without_curl_is_named_with_the_missing_symbol(void **state)
{
    (void)state;
    struct db_curl_lib t;
    char err[512];
    assert_int_equal(db_curl_lib_load_from("libc.so.6", &t, err, sizeof err), DB_ENOTFOUND);
    assert_string_equal(err, "libcurl could not be loaded (libc.so.6: no symbol curl_global_init)");
    assert_null(t.global_init);
}

static void a_short_error_buffer_is_cut_not_overrun(void **state)
{
    (void)state;
    struct db_curl_lib t;
    char err[24];
    assert_int_equal(db_curl_lib_load_from("libdeskbridge-no-such-curl.so.4", &t, err, sizeof err),
                     DB_ENOTFOUND);
    assert_int_equal(strlen(err), sizeof err - 1);
}

static void the_first_send_loads_libcurl_once(void **state)
{
    (void)state;
    assert_false(libcurl_mapped());
    struct event_base *base = event_base_new();
    struct db_fake *fake = db_fake_start();
    assert_non_null(fake);
    db_fake_default(fake, 200, "{\"ok\":true}");
    struct db_http_client *c = db_http_client_new(base, NULL);
    assert_non_null(c);
    assert_false(libcurl_mapped());

    char url[256];
    snprintf(url, sizeof url, "%s/ping", db_fake_url(fake));
    struct db_http_req req = {.method = "GET", .url = url};
    long status = 0;
    assert_int_equal(db_http_client_send(c, &req, 5000, done_cb, NULL, &status, NULL), DB_OK);
    assert_true(libcurl_mapped());
    long long end = db_test_now_ms() + 10000;
    while (status == 0 && db_test_now_ms() < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    assert_int_equal(status, 200);

    /* The same table for every caller; loading is not repeated. */
    const char *err = NULL;
    const struct db_curl_lib *a = db_curl_lib(&err), *b = db_curl_lib(&err);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_null(err);
    assert_non_null(strstr(db_curl_lib_soname(), "libcurl"));

    db_http_client_free(c);
    db_fake_stop(fake);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linking_does_not_map_libcurl),
        cmocka_unit_test(creating_and_freeing_a_client_does_not_load_libcurl),
        cmocka_unit_test(a_missing_library_is_named_with_the_loader_reason),
        cmocka_unit_test(a_library_without_curl_is_named_with_the_missing_symbol),
        cmocka_unit_test(a_short_error_buffer_is_cut_not_overrun),
        cmocka_unit_test(the_first_send_loads_libcurl_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
