/* test_http_curl_init_fails.c - the HTTP client in a process where curl_global_init fails.
 *
 * The client is compiled into this test with curl_global_init replaced by one that fails and
 * counts its calls (these definitions take the place of db_core's http_client.o at link
 * time), so the production code needs no switch to fake the failure.  Every send must still
 * be answered exactly once, after send returns, with a transport error that says why, and
 * the initialisation is tried once per process. */
#include <curl/curl.h>

static int global_init_calls;
static CURLcode failing_global_init(long flags)
{
    (void)flags;
    global_init_calls++;
    return CURLE_FAILED_INIT;
}
#define curl_global_init failing_global_init
#include "net/http_client.c"
#undef curl_global_init

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

struct result {
    int calls;
    long status;
    char *err;
};

static void done_cb(const struct db_http_resp *resp, void *arg)
{
    struct result *r = arg;
    r->calls++;
    r->status = resp->status;
    free(r->err);
    r->err = resp->transport_error ? strdup(resp->transport_error) : NULL;
}

static void spin(struct event_base *base, const int *counter, int target)
{
    long long end = db_test_now_ms() + 5000;
    while (*counter < target && db_test_now_ms() < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static void assert_init_error(const struct result *r)
{
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->status, 0);
    assert_non_null(r->err);
    assert_string_equal(r->err, "libcurl cannot be initialised (curl_global_init failed)");
}

static void sends_fail_after_returning_with_the_reason(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct db_http_client *c = db_http_client_new(base, NULL);
    assert_non_null(c);
    struct db_http_req req = {.method = "POST", .url = "http://127.0.0.1:9/x", .body = "{}",
                              .body_len = 2};
    struct result r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(db_http_client_send(c, &req, 0, done_cb, NULL, &r[i], NULL), DB_OK);
    assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 0); /* never before send returns */
    assert_int_equal(db_http_client_inflight(c), 3);
    spin(base, &r[2].calls, 1);
    for (int i = 0; i < 3; i++) {
        assert_init_error(&r[i]);
        free(r[i].err);
    }
    assert_int_equal(db_http_client_inflight(c), 0);

    /* Arguments that cannot work are still refused at once. */
    struct result none = {0};
    assert_int_equal(db_http_client_send(c, &req, 0, NULL, NULL, &none, NULL), DB_EINVAL);
    struct db_http_req nobody = {.method = "POST", .url = "http://127.0.0.1:9/x", .body_len = 3};
    assert_int_equal(db_http_client_send(c, &nobody, 0, done_cb, NULL, &none, NULL), DB_EINVAL);
    assert_int_equal(none.calls, 0);
    db_http_client_free(c);
    event_base_free(base);
}

static void a_failing_call_can_be_cancelled_and_the_client_freed(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct db_http_client *c = db_http_client_new(base, NULL);
    struct db_http_req req = {.method = "GET", .url = "http://127.0.0.1:9/x"};
    struct result a = {0}, b = {0};
    struct db_http_call *ha = NULL;
    assert_int_equal(db_http_client_send(c, &req, 0, done_cb, NULL, &a, &ha), DB_OK);
    assert_non_null(ha);
    assert_int_equal(db_http_client_send(c, &req, 0, done_cb, NULL, &b, NULL), DB_OK);
    db_http_call_cancel(ha);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.err, "cancelled");
    db_http_client_free(c); /* b still queued */
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.err, "cancelled");
    free(a.err);
    free(b.err);
    event_base_free(base);
}

/* Runs after the others: several clients and sends, one attempt. */
static void initialisation_is_tried_once(void **state)
{
    (void)state;
    assert_int_equal(global_init_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sends_fail_after_returning_with_the_reason),
        cmocka_unit_test(a_failing_call_can_be_cancelled_and_the_client_freed),
        cmocka_unit_test(initialisation_is_tried_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
