/* [gateway] admin_listen: the operator's routes (/metrics and every bearer-token route under
 * /v1) move to a second listener, and the public one answers 404 for them, while webhooks,
 * the console and the health checks stay public.  The real binary, a real redis-server,
 * HTTP on 127.0.0.1. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"
#include "redis_fixture.h"

#define TOKEN "operator-token-admin-0123456789"

static struct db_test_redis *R;
static struct db_test_daemon D;
static int admin_port;

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    admin_port = db_test_free_port();
    static char env_redis[512], env_admin[64];
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    snprintf(env_admin, sizeof env_admin, "DESKBRIDGE_ADMIN_LISTEN=127.0.0.1:%d", admin_port);
    const char *env[] = {env_redis, env_admin, "DESKBRIDGE_API_TOKEN=" TOKEN,
                         "TELEGRAM_BOT_TOKEN=7300000003:AAadminListenToken",
                         "TELEGRAM_WEBHOOK_SECRET=admin-listen-hook", NULL};
    db_test_daemon_start(&D, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *never[] = {TOKEN, NULL};
    db_test_daemon_stop_clean(&D, never);
    db_test_redis_stop(R);
    return 0;
}

static int status(int port, const char *method, const char *path, const char *body)
{
    const char *headers[] = {"Authorization: Bearer " TOKEN, "Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: admin-listen-hook", NULL};
    struct db_test_resp r;
    db_test_http(port, method, path, headers, body, body ? strlen(body) : 0, &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

static void public_listener_leaves_the_operators_routes(void **state)
{
    (void)state;
    assert_int_equal(status(D.port, "GET", "/metrics", NULL), 404);
    assert_int_equal(status(D.port, "GET", "/v1/agents", NULL), 404);
    assert_int_equal(status(D.port, "PUT", "/v1/agents/amy", "{}"), 404);
    assert_int_equal(status(D.port, "GET", "/v1/nothing/here", NULL), 404);
    assert_int_equal(status(D.port, "PUT", "/v1/console/agents/amy/secret",
                            "{\"secret\":\"amy-secret-0123\"}"), 404);
    /* What faces the internet stays. */
    assert_int_equal(status(D.port, "GET", "/healthz", NULL), 200);
    assert_int_equal(status(D.port, "GET", "/console/", NULL), 200);
    assert_int_equal(status(D.port, "POST", "/webhooks/telegram/7300000003",
                            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1795365000,"
                            "\"chat\":{\"id\":9,\"type\":\"private\"},\"text\":\"hi\"}}"),
                     200);
}

static void admin_listener_serves_them(void **state)
{
    (void)state;
    assert_int_equal(status(admin_port, "GET", "/metrics", NULL), 200);
    assert_int_equal(status(admin_port, "PUT", "/v1/agents/amy", "{}"), 200);
    assert_int_equal(status(admin_port, "GET", "/v1/agents/amy", NULL), 200);
    assert_int_equal(status(admin_port, "PUT", "/v1/console/agents/amy/secret",
                            "{\"secret\":\"amy-secret-0123\"}"), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(public_listener_leaves_the_operators_routes),
        cmocka_unit_test(admin_listener_serves_them),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
