/* Webhooks that arrive together are stored by one run of the ingest script, and each still
 * gets its own answer and its own count: through the real binary, a real redis-server and
 * signed WhatsApp webhooks on loopback.  The gateway is stopped (SIGSTOP) while every request
 * is written, so they are all waiting when it resumes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "daemon.h"
#include "redis_fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define APP_SECRET "batch-app-secret-0123"
#define PNID "106540352240001"
#define HOOK "/webhooks/whatsapp/" PNID
#define UNIQUE 50
#define REPEATS 10

static struct db_test_redis *R;
static struct db_test_daemon D;
static char env[6][256];

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    snprintf(env[0], sizeof env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    snprintf(env[1], sizeof env[1], "WHATSAPP_ACCESS_TOKEN=EAAGbatchToken0123456789");
    snprintf(env[2], sizeof env[2], "WHATSAPP_APP_SECRET=%s", APP_SECRET);
    snprintf(env[3], sizeof env[3], "WHATSAPP_VERIFY_TOKEN=batch-verify");
    snprintf(env[4], sizeof env[4], "WHATSAPP_PHONE_NUMBER_ID=%s", PNID);
    snprintf(env[5], sizeof env[5], "DESKBRIDGE_ROLE=ingest");
    const char *e[] = {env[0], env[1], env[2], env[3], env[4], env[5], NULL};
    db_test_daemon_start(&D, e, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_test_daemon_stop(&D, SIGTERM);
    db_test_redis_stop(R);
    return 0;
}

static long long redis_int(const char *cmd)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), cmd);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* calls=N of cmdstat_evalsha plus cmdstat_eval (the first run may load the script). */
static long long script_runs(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "INFO commandstats");
    assert_non_null(r);
    long long n = 0;
    const char *names[] = {"cmdstat_evalsha:calls=", "cmdstat_eval:calls=", NULL};
    for (int i = 0; names[i]; i++) {
        const char *p = strstr(r->str, names[i]);
        if (p) n += atoll(p + strlen(names[i]));
    }
    freeReplyObject(r);
    return n;
}

/* A signed request with message number i, ready to write. */
static char *request(int i)
{
    char body[1024];
    int n = snprintf(body, sizeof body,
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
                     "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
                     "\"display_phone_number\":\"15550001\",\"phone_number_id\":\"" PNID "\"},"
                     "\"contacts\":[{\"profile\":{\"name\":\"C%d\"},\"wa_id\":\"1650555%04d\"}],"
                     "\"messages\":[{\"from\":\"1650555%04d\",\"id\":\"wamid.BATCH%d\","
                     "\"timestamp\":\"1795365000\",\"type\":\"text\",\"text\":{\"body\":\"hi %d\"}}]},"
                     "\"field\":\"messages\"}]}]}",
                     i, i, i, i, i);
    unsigned char mac[32];
    char hex[65];
    assert_int_equal(db_hmac_sha256(APP_SECRET, strlen(APP_SECRET), body, (size_t)n, mac), 0);
    db_hex_encode(mac, sizeof mac, hex);
    char *req = malloc(2048);
    assert_non_null(req);
    snprintf(req, 2048,
             "POST " HOOK " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
             hex, n, body);
    return req;
}

static int connect_gateway(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)D.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int read_status(int fd)
{
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    return status;
}

static void webhooks_arriving_together_share_a_script_run(void **state)
{
    (void)state;
    enum { N = UNIQUE + REPEATS };
    int fds[N];
    /* Connections first (accepted while the gateway runs), then the gateway is paused while
     * every request is written, so all of them are waiting when it resumes. */
    for (int i = 0; i < N; i++) fds[i] = connect_gateway();
    usleep(200 * 1000);
    long long runs_before = script_runs();
    assert_int_equal(kill(D.pid, SIGSTOP), 0);
    for (int i = 0; i < N; i++) {
        /* the last REPEATS repeat messages 0..REPEATS-1: redeliveries inside one batch */
        char *req = request(i < UNIQUE ? i : i - UNIQUE);
        size_t len = strlen(req);
        assert_int_equal(write(fds[i], req, len), (ssize_t)len);
        free(req);
    }
    assert_int_equal(kill(D.pid, SIGCONT), 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += read_status(fds[i]) == 200;
        close(fds[i]);
    }
    long long runs = script_runs() - runs_before;
    printf("# %d webhooks stored by %lld script runs\n", N, runs);
    assert_int_equal(ok, N);
    assert_int_equal(redis_int("XLEN deskbridge:events"), UNIQUE);
    /* Each webhook got its own count: the repeats were answered as duplicates. */
    assert_int_equal(db_test_daemon_log_count(&D, "written=0"), REPEATS);
    assert_int_equal(db_test_daemon_log_count(&D, "written=1"), UNIQUE);
    /* Far fewer runs than webhooks (one per pass of the gateway's loop). */
    assert_true(runs >= 1 && runs <= N / 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhooks_arriving_together_share_a_script_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
