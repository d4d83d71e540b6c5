/* Hostile HTTP clients next to legitimate webhooks (docs/reliability.md).
 *
 * One thread sends signed Telegram webhooks at 50 a second and times them.  Meanwhile: 50
 * slowloris connections send their head a byte every 500 ms; 10 slow bodies trickle a byte
 * every 500 ms and 10 more stop halfway; and one thread fires single malformed requests
 * (50 MB Content-Length, 100 KB header, 10 000 headers, 150 small headers, CL+TE, NUL in a
 * header, invalid UTF-8 in the JSON, a wrong secret, a replay).  Pass criteria: the right
 * status for each, the slow heads and the stalled bodies answered 408 by the deadlines
 * (10 s), legitimate p99 under 250 ms, and a few seconds after the attack the daemon's RSS
 * and open descriptors are back near the baseline (+10 MB, +5 fds), and it is alive. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
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

#define SECRET "hostile-secret_1"
#define HOOK "/webhooks/telegram/7000000001"
#define N_SLOWLORIS 50
#define N_TRICKLE 10
#define N_STALLED 10
#define ATTACK_MS 12500
#define MAX_LEGIT 2000

static struct db_test_redis *R;
static struct db_test_daemon D;
static volatile int attacking = 1;
static long long legit_ms[MAX_LEGIT];
static int n_legit, legit_bad;

static const char *hook_headers[] = {"Content-Type: application/json",
                                     "X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    R = db_test_redis_start(NULL);
    assert_non_null(R);
    static char env_redis[512];
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    const char *env[] = {env_redis, "TELEGRAM_BOT_TOKEN=7000000001:AAhostile",
                         "TELEGRAM_WEBHOOK_SECRET=" SECRET, "TELEGRAM_API_BASE=http://127.0.0.1:9",
                         NULL};
    db_test_daemon_start(&D, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_test_daemon_stop_clean(&D, NULL);
    db_test_redis_stop(R);
    return 0;
}

/* ---- measuring the daemon ---- */

static long rss_kb(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)D.pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    fclose(f);
    return kb;
}

static int open_fds(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)D.pid);
    DIR *d = opendir(path);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Entries of the stream whose fields hold needle: exact for a text that only one request sends,
 * while the legitimate traffic running alongside keeps writing. */
static long long entries_with(const char *needle)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XRANGE deskbridge:events - +");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        for (size_t j = 1; j < f->elements; j += 2)
            if (f->element[j]->str && strstr(f->element[j]->str, needle)) n++;
    }
    freeReplyObject(r);
    return n;
}

/* ---- raw sockets ---- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)D.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0) return; /* the server may answer and close before reading it all */
        p += w;
        len -= (size_t)w;
    }
}

/* Status of the answer on fd (0 for none within timeout_ms). */
static int read_status(int fd, int timeout_ms)
{
    char buf[4096];
    size_t got = 0;
    long long deadline = db_test_now_ms() + timeout_ms;
    while (got < 12) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = deadline - db_test_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) return 0;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    return strncmp(buf, "HTTP/1.", 7) == 0 && got >= 12 ? atoi(buf + 9) : 0;
}

/* Sends bytes as one request on a fresh connection; the status, and in *ms the time from the
 * last byte sent to the answer. */
static int raw(const char *data, size_t len, long long *ms)
{
    int fd = dial();
    send_all(fd, data, len);
    long long t = db_test_now_ms();
    int st = read_status(fd, 5000);
    if (ms) *ms = db_test_now_ms() - t;
    close(fd);
    return st;
}

/* ---- the attackers ---- */

struct slow {
    int fd;
    long long opened, closed;
    int status;
    size_t sent;
};

static char *slow_head_bytes(void)
{
    /* A head that never ends: the request line, Host, then one endless header value. */
    size_t n = 4096;
    char *s = malloc(n + 1);
    int k = snprintf(s, n, "POST " HOOK " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    memset(s + k, 'a', n - (size_t)k);
    s[n] = '\0';
    return s;
}

/* Checks whether the server answered or closed a slow connection. */
static void poll_slow(struct slow *c)
{
    if (c->fd < 0) return;
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return;
    c->status = read_status(c->fd, 100);
    c->closed = db_test_now_ms();
    close(c->fd);
    c->fd = -1;
}

struct slow_report {
    int heads_408, heads_open, trickles_open, stalled_408;
    long long max_head_ms, max_stall_ms;
};

static void *slow_attacker(void *arg)
{
    struct slow_report *rep = arg;
    struct slow heads[N_SLOWLORIS], trickle[N_TRICKLE], stalled[N_STALLED];
    char *head = slow_head_bytes();
    char body_head[256];
    int bh = snprintf(body_head, sizeof body_head,
                      "POST " HOOK " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "X-Telegram-Bot-Api-Secret-Token: " SECRET "\r\nContent-Length: 100000\r\n\r\n{");
    long long t0 = db_test_now_ms();
    for (int i = 0; i < N_SLOWLORIS; i++) heads[i] = (struct slow){dial(), t0, 0, 0, 0};
    for (int i = 0; i < N_TRICKLE; i++) {
        trickle[i] = (struct slow){dial(), t0, 0, 0, 0};
        send_all(trickle[i].fd, body_head, (size_t)bh);
    }
    for (int i = 0; i < N_STALLED; i++) {
        stalled[i] = (struct slow){dial(), t0, 0, 0, 0};
        send_all(stalled[i].fd, body_head, (size_t)bh);
        send_all(stalled[i].fd, "\"update_id\":", 12); /* and never another byte */
    }
    while (db_test_now_ms() - t0 < ATTACK_MS) {
        for (int i = 0; i < N_SLOWLORIS; i++) {
            poll_slow(&heads[i]);
            if (heads[i].fd >= 0 && heads[i].sent < 4096)
                send_all(heads[i].fd, head + heads[i].sent++, 1);
        }
        for (int i = 0; i < N_TRICKLE; i++) {
            poll_slow(&trickle[i]);
            if (trickle[i].fd >= 0) send_all(trickle[i].fd, " ", 1);
        }
        for (int i = 0; i < N_STALLED; i++) poll_slow(&stalled[i]);
        usleep(500000);
    }
    for (int i = 0; i < N_SLOWLORIS; i++) {
        poll_slow(&heads[i]);
        if (heads[i].fd >= 0) {
            rep->heads_open++;
            close(heads[i].fd);
        } else if (heads[i].status == 408) rep->heads_408++;
        if (heads[i].closed && heads[i].closed - heads[i].opened > rep->max_head_ms)
            rep->max_head_ms = heads[i].closed - heads[i].opened;
    }
    for (int i = 0; i < N_TRICKLE; i++) {
        poll_slow(&trickle[i]);
        if (trickle[i].fd >= 0) {
            rep->trickles_open++;
            close(trickle[i].fd);
        }
    }
    for (int i = 0; i < N_STALLED; i++) {
        poll_slow(&stalled[i]);
        if (stalled[i].fd >= 0) {
            close(stalled[i].fd);
        } else if (stalled[i].status == 408) rep->stalled_408++;
        if (stalled[i].closed && stalled[i].closed - stalled[i].opened > rep->max_stall_ms)
            rep->max_stall_ms = stalled[i].closed - stalled[i].opened;
    }
    free(head);
    return NULL;
}

static void *legit(void *arg)
{
    (void)arg;
    long long t0 = db_test_now_ms();
    for (int i = 0; i < MAX_LEGIT && attacking; i++) {
        long long due = t0 + (long long)i * 20, now = db_test_now_ms();
        if (now < due) usleep((useconds_t)(due - now) * 1000);
        char body[384];
        snprintf(body, sizeof body,
                 "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
                 "\"chat\":{\"id\":%d,\"type\":\"private\"},\"text\":\"legit %d\"}}",
                 1000 + i, 1000 + i, i % 20 + 1, i);
        struct db_test_resp r;
        long long s = db_test_now_ms();
        db_test_http(D.port, "POST", HOOK, hook_headers, body, strlen(body), &r);
        legit_ms[n_legit++] = db_test_now_ms() - s;
        legit_bad += r.status != 200;
        db_test_resp_clear(&r);
    }
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* ---- the malformed requests ---- */

static void malformed_requests_get_the_right_status(void)
{
    char *buf = malloc(200000);
    long long ms;
    int n;

    /* 50 MB announced: refused from the head alone, the body never sent. */
    n = snprintf(buf, 4096, "POST " HOOK " HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: "
                 SECRET "\r\nContent-Length: 52428800\r\n\r\n");
    int st = raw(buf, (size_t)n, &ms);
    printf("# 50 MB Content-Length: %d after %lld ms (no body byte sent)\n", st, ms);
    assert_int_equal(st, 413);
    assert_true(ms < 500);

    /* A 100 KB header. */
    n = snprintf(buf, 4096, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(buf + n, 'b', 100 * 1024);
    n += 100 * 1024;
    n += snprintf(buf + n, 64, "\r\n\r\n");
    assert_int_equal(raw(buf, (size_t)n, NULL), 431);

    /* 10 000 headers (also too many bytes), then 150 small ones (only too many). */
    n = snprintf(buf, 4096, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 10000; i++) n += snprintf(buf + n, 32, "X-H%d: v\r\n", i);
    n += snprintf(buf + n, 8, "\r\n");
    assert_int_equal(raw(buf, (size_t)n, NULL), 431);
    n = snprintf(buf, 4096, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 150; i++) n += snprintf(buf + n, 32, "h%d:1\r\n", i);
    n += snprintf(buf + n, 8, "\r\n");
    assert_true(n < 16384);
    assert_int_equal(raw(buf, (size_t)n, NULL), 431);

    /* Content-Length and Transfer-Encoding together: a smuggling attempt. */
    const char clte[] = "POST " HOOK " HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nX";
    assert_int_equal(raw(clte, sizeof clte - 1, NULL), 400);

    /* NUL inside a header value. */
    const char nul[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    assert_int_equal(raw(nul, sizeof nul - 1, NULL), 400);

    const char *once = "\"once\"";
    assert_int_equal(entries_with(once), 0);
    /* Invalid UTF-8 in the JSON body. */
    const char bad_utf8[] = "{\"update_id\":5000001,\"message\":{\"message_id\":1,\"date\":1795365000,"
                            "\"chat\":{\"id\":9,\"type\":\"private\"},\"text\":\"\xff\xfe\xc3\"}}";
    struct db_test_resp r;
    db_test_http(D.port, "POST", HOOK, hook_headers, bad_utf8, sizeof bad_utf8 - 1, &r);
    assert_int_equal(r.status, 400);
    db_test_resp_clear(&r);

    /* A wrong secret. */
    const char good[] = "{\"update_id\":5000002,\"message\":{\"message_id\":2,\"date\":1795365000,"
                        "\"chat\":{\"id\":9,\"type\":\"private\"},\"text\":\"once\"}}";
    const char *wrong[] = {"Content-Type: application/json",
                           "X-Telegram-Bot-Api-Secret-Token: " SECRET "-not", NULL};
    db_test_http(D.port, "POST", HOOK, wrong, good, sizeof good - 1, &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
    assert_int_equal(entries_with(once), 0);

    /* A valid request, then its replay: 200 both times, one entry. */
    db_test_http(D.port, "POST", HOOK, hook_headers, good, sizeof good - 1, &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    assert_int_equal(entries_with(once), 1);
    db_test_http(D.port, "POST", HOOK, hook_headers, good, sizeof good - 1, &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    assert_int_equal(entries_with(once), 1);
    free(buf);
}

static void attack_leaves_legitimate_traffic_and_resources_alone(void **state)
{
    (void)state;
    /* Baseline after some real traffic, so lazily built state is already there. */
    for (int i = 0; i < 50; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
                 "\"chat\":{\"id\":1,\"type\":\"private\"},\"text\":\"warm\"}}", 100 + i, 100 + i);
        struct db_test_resp r;
        db_test_http(D.port, "POST", HOOK, hook_headers, body, strlen(body), &r);
        assert_int_equal(r.status, 200);
        db_test_resp_clear(&r);
    }
    usleep(500000);
    long rss0 = rss_kb();
    int fd0 = open_fds();
    assert_true(rss0 > 0 && fd0 > 0);

    struct slow_report rep = {0};
    pthread_t lt, st;
    pthread_create(&lt, NULL, legit, NULL);
    pthread_create(&st, NULL, slow_attacker, &rep);
    usleep(1000000);
    malformed_requests_get_the_right_status();
    long rss_peak = rss_kb();
    int fd_peak = open_fds();
    pthread_join(st, NULL);
    attacking = 0;
    pthread_join(lt, NULL);

    /* Settle: the server drains closed connections for 500 ms; give it a few seconds. */
    long rss1 = 0;
    int fd1 = 0;
    for (int i = 0; i < 30; i++) {
        usleep(200000);
        rss1 = rss_kb();
        fd1 = open_fds();
        if (i >= 10 && fd1 <= fd0 + 5 && rss1 <= rss0 + 10240) break;
    }

    qsort(legit_ms, (size_t)n_legit, sizeof legit_ms[0], cmp_ll);
    long long p50 = legit_ms[n_legit / 2], p99 = legit_ms[n_legit * 99 / 100];
    printf("# legitimate webhooks during the attack: %d, not 200: %d, p50 %lld ms, p99 %lld ms, "
           "max %lld ms\n", n_legit, legit_bad, p50, p99, legit_ms[n_legit - 1]);
    printf("# slowloris: %d of %d answered 408 (slowest close %lld ms), %d still open; slow "
           "bodies: %d of %d trickling still open, %d of %d stalled answered 408 (%lld ms)\n",
           rep.heads_408, N_SLOWLORIS, rep.max_head_ms, rep.heads_open, rep.trickles_open,
           N_TRICKLE, rep.stalled_408, N_STALLED, rep.max_stall_ms);
    printf("# RSS %ld kB -> peak %ld kB -> %ld kB after; fds %d -> peak %d -> %d after\n", rss0,
           rss_peak, rss1, fd0, fd_peak, fd1);
    /* A body trickling a byte every 500 ms meets the whole-body deadline (10 s). */
    assert_int_equal(rep.trickles_open, 0);
    assert_int_equal(legit_bad, 0);
    assert_true(n_legit > 400);
    assert_true(p99 < 250);
    assert_int_equal(rep.heads_408, N_SLOWLORIS);
    assert_true(rep.max_head_ms <= 11500);
    assert_int_equal(rep.stalled_408, N_STALLED);
    assert_true(rep.max_stall_ms <= 11500);
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's quarantine holds freed memory back from reuse, so RSS says nothing here. */
    printf("# RSS bound not checked: AddressSanitizer build\n");
#else
    assert_true(rss1 <= rss0 + 10240);
#endif
    assert_true(fd1 <= fd0 + 5);
    assert_true(db_test_daemon_alive(&D));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attack_leaves_legitimate_traffic_and_resources_alone),
    };
    return cmocka_run_group_tests_name("hostile_http", tests, setup, teardown);
}
