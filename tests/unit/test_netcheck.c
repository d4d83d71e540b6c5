/* test_netcheck.c - the SSRF guard's test exception as parsed and matched (net/netcheck.h),
 * and that an HTTP client is not made with a wider one.  The guard with the exception in a
 * real client over loopback is in test_http_client.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "net/http_client.h"
#include "net/netcheck.h"

static void test_allow_takes_only_a_loopback_literal_with_a_port(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:8081", "127.9.9.9:1", "[::1]:65535"};
    static const char *const bad[] = {
        "",         "127.0.0.1",      "127.0.0.1:",        "127.0.0.1:0",     "127.0.0.1:65536",
        ":8081",    "127.0.0.1:+80",  "127.0.0.1:80x",     "127.0.0.1: 80",   "localhost:80",
        "::1:80",   "[::1]",          "[::1:80",           "10.0.0.1:80",     "192.168.1.1:80",
        "0.0.0.0:80", "169.254.169.254:80", "8.8.8.8:443", "[::ffff:127.0.0.1]:80",
        "[fe80::1]:80", "127.0.0.1:8081,10.0.0.1:80", "127.1:80",
    };
    struct db_http_allow a;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (db_http_allow_parse(good[i], &a) != 0) fail_msg("refused '%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (db_http_allow_parse(bad[i], &a) == 0) fail_msg("took '%s'", bad[i]);
    assert_int_equal(db_http_allow_parse(NULL, &a), -1);

    assert_int_equal(db_http_allow_parse("127.0.0.1:8081", &a), 0);
    assert_int_equal(db_http_allow_names(&a, "127.0.0.1", 8081), 1);
    assert_int_equal(db_http_allow_names(&a, "127.0.0.1", 8082), 0);
    assert_int_equal(db_http_allow_names(&a, "127.0.0.2", 8081), 0);
    assert_int_equal(db_http_allow_names(&a, "localhost", 8081), 0);
    assert_int_equal(db_http_allow_names(&a, "[::1]", 8081), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8081),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(db_http_allow_matches(&a, (struct sockaddr *)&sin), 1);
    sin.sin_port = htons(8082);
    assert_int_equal(db_http_allow_matches(&a, (struct sockaddr *)&sin), 0);
    assert_int_equal(db_http_allow_matches(&a, NULL), 0);
    assert_int_equal(db_http_allow_parse("[::1]:8081", &a), 0);
    assert_int_equal(db_http_allow_names(&a, "[::1]", 8081), 1);
    assert_int_equal(db_http_allow_names(&a, "::1", 8081), 1);
    assert_int_equal(db_http_allow_names(&a, "127.0.0.1", 8081), 0);

    /* A client is not made with anything else. */
    struct event_base *base = event_base_new();
    struct db_http_client_opts o = {.block_private = 1, .test_allow = "10.0.0.1:80"};
    assert_null(db_http_client_new(base, &o));
    o.test_allow = "127.0.0.1:80";
    struct db_http_client *c = db_http_client_new(base, &o);
    assert_non_null(c);
    db_http_client_free(c);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_takes_only_a_loopback_literal_with_a_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
