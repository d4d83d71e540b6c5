/* test_fake_platform.c - the fake platform server itself, driven by blocking libcurl calls
 * from the test thread while the fake answers from its own thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_platform.h"
#include "testutil.h"

struct got {
    long status;
    CURLcode rc;
    char body[4096];
    size_t len;
    char retry_after[32];
};

static size_t body_cb(char *d, size_t s, size_t n, void *arg)
{
    struct got *g = arg;
    size_t len = s * n;
    if (g->len + len >= sizeof g->body) return 0;
    memcpy(g->body + g->len, d, len);
    g->len += len;
    g->body[g->len] = '\0';
    return len;
}

static size_t hdr_cb(char *d, size_t s, size_t n, void *arg)
{
    struct got *g = arg;
    size_t len = s * n;
    if (len > 13 && strncasecmp(d, "Retry-After: ", 13) == 0)
        snprintf(g->retry_after, sizeof g->retry_after, "%.*s", (int)(len - 15), d + 13);
    return len;
}

/* One blocking request to the fake; body NULL = no body. */
static struct got fetch(struct db_fake *f, const char *method, const char *path, const char *body)
{
    struct got g = {0};
    char url[256];
    snprintf(url, sizeof url, "%s%s", db_fake_url(f), path);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "X-Probe: Yes");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, hdr_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &g);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    g.rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &g.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return g;
}

static int setup(void **state)
{
    *state = db_fake_start();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    db_fake_stop(*state);
    return 0;
}

static void url_names_the_bound_port(void **state)
{
    struct db_fake *f = *state;
    char want[64];
    assert_true(db_fake_port(f) > 0);
    snprintf(want, sizeof want, "http://127.0.0.1:%d", db_fake_port(f));
    assert_string_equal(db_fake_url(f), want);
}

static void rules_match_in_order_and_run_out(void **state)
{
    struct db_fake *f = *state;
    db_fake_rule(f, "POST", "/a", 2, 201, "first", 0, 0);
    db_fake_rule(f, "*", "/a", -1, 202, "second", 0, 0);
    db_fake_default(f, 418, "teapot");

    struct got g = fetch(f, "GET", "/a", NULL);
    assert_int_equal(g.status, 202); /* method mismatch skips rule 1 */
    assert_string_equal(g.body, "second");
    for (int i = 0; i < 2; i++) {
        g = fetch(f, "POST", "/x/a?q=1", "{}");
        assert_int_equal(g.status, 201);
        assert_string_equal(g.body, "first");
    }
    g = fetch(f, "POST", "/a", "{}");
    assert_int_equal(g.status, 202); /* rule 1 used up */
    g = fetch(f, "GET", "/b", NULL);
    assert_int_equal(g.status, 418);
    assert_string_equal(g.body, "teapot");
}

static void counter_placeholder_gives_distinct_ids(void **state)
{
    struct db_fake *f = *state;
    db_fake_rule(f, "POST", "/sendMessage", -1, 200,
                 "{\"ok\":true,\"result\":{\"message_id\":{n}}}", 0, 0);
    db_fake_rule_header(f, "Retry-After", "7");
    struct got a = fetch(f, "POST", "/bot1:x/sendMessage", "{}");
    struct got b = fetch(f, "POST", "/bot1:x/sendMessage", "{}");
    long ia = 0, ib = 0;
    assert_int_equal(sscanf(a.body, "{\"ok\":true,\"result\":{\"message_id\":%ld}}", &ia), 1);
    assert_int_equal(sscanf(b.body, "{\"ok\":true,\"result\":{\"message_id\":%ld}}", &ib), 1);
    assert_int_equal(ib, ia + 1);
    assert_string_equal(a.retry_after, "7");
}

static void requests_are_recorded_exactly(void **state)
{
    struct db_fake *f = *state;
    db_fake_default(f, 200, "{}");
    fetch(f, "POST", "/v1/messages?access_token=abc&x=%20", "{\"text\":\"hi\"}");
    fetch(f, "DELETE", "/v1/other", NULL);
    assert_int_equal(db_fake_count(f, NULL), 2);
    assert_int_equal(db_fake_count(f, "/v1/messages"), 1);
    assert_int_equal(db_fake_count(f, "access_token=abc"), 1);
    assert_int_equal(db_fake_count(f, "/nothing"), 0);

    struct db_fake_request r;
    assert_int_equal(db_fake_get(f, 0, &r), DB_OK);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.path, "/v1/messages?access_token=abc&x=%20");
    assert_string_equal(r.body, "{\"text\":\"hi\"}");
    assert_int_equal(r.body_len, 13);
    assert_string_equal(db_headers_get(&r.headers, "x-probe"), "Yes");
    db_fake_request_clear(&r);
    assert_null(r.method);
    assert_int_equal(db_fake_get(f, 1, &r), DB_OK);
    assert_string_equal(r.method, "DELETE");
    db_fake_request_clear(&r);
    assert_int_equal(db_fake_get(f, 2, &r), DB_ENOTFOUND);
}

static void wait_returns_when_reached_or_at_deadline(void **state)
{
    struct db_fake *f = *state;
    fetch(f, "GET", "/w", NULL);
    long long t0 = db_test_now_ms();
    assert_int_equal(db_fake_wait(f, "/w", 1, 5000), 1);
    assert_true(db_test_now_ms() - t0 < 1000);
    t0 = db_test_now_ms();
    assert_int_equal(db_fake_wait(f, "/w", 2, 150), 1);
    assert_true(db_test_now_ms() - t0 >= 150);
}

static void delay_stalls_and_reset_drops_the_connection(void **state)
{
    struct db_fake *f = *state;
    db_fake_rule(f, "GET", "/slow", 1, 200, "late", 300, 0);
    db_fake_rule(f, "GET", "/drop", 1, 200, "never", 0, 1);
    long long t0 = db_test_now_ms();
    struct got g = fetch(f, "GET", "/slow", NULL);
    assert_true(db_test_now_ms() - t0 >= 290);
    assert_string_equal(g.body, "late");
    g = fetch(f, "GET", "/drop", NULL);
    assert_int_not_equal(g.rc, CURLE_OK);
    assert_int_equal(g.len, 0);
    assert_int_equal(db_fake_count(f, "/drop"), 1);
}

static void reset_forgets_rules_and_recordings(void **state)
{
    struct db_fake *f = *state;
    db_fake_rule(f, "GET", "/r", -1, 201, "x", 0, 0);
    fetch(f, "GET", "/r", NULL);
    assert_true(db_fake_connections(f) >= 1);
    db_fake_reset(f);
    assert_int_equal(db_fake_count(f, NULL), 0);
    assert_int_equal(db_fake_connections(f), 0);
    struct got g = fetch(f, "GET", "/r", NULL);
    assert_int_equal(g.status, 404); /* the built-in default */
    assert_int_equal(db_fake_count(f, NULL), 1);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(url_names_the_bound_port, setup, teardown),
        cmocka_unit_test_setup_teardown(rules_match_in_order_and_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(counter_placeholder_gives_distinct_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(requests_are_recorded_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(wait_returns_when_reached_or_at_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(delay_stalls_and_reset_drops_the_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reset_forgets_rules_and_recordings, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
