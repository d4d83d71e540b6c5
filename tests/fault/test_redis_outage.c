/* Redis outages seen through our own fault proxy (docs/reliability.md).
 *
 * The gateway reaches a TCP redis-server through tools/tcp_fault_proxy.  Signed Telegram
 * webhooks arrive at 50 a second, each on its own thread that retries like the platform
 * (300 ms after any non-2xx) until it gets 200.  After 3 s the proxy stalls for 5 s (a hung
 * server: bytes go nowhere, connections stay open), then resets every connection for 5 s
 * (refused), then passes again.  Meanwhile /readyz is polled.
 *
 * Pass criteria: during the fault every webhook is answered 503 with Retry-After within 2 s;
 * /readyz says 503; after "pass" the gateway answers 200 again within 1 s; at the end every
 * update is in the stream exactly once. */
#include <libgen.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "redis_fixture.h"
#include "testutil.h"

#define RATE_PER_S 50
#define SECRET "outage-secret_1"
#define MAX_ATTEMPTS 60000
#define MAX_PROBES 2000

struct attempt {
    long long start, end;
    int status, retry_after;
};

static struct db_test_redis *R;
static struct db_test_daemon D;
static pid_t proxy_pid;
static int proxy_port;
static char control[256], env_redis[256];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct attempt attempts[MAX_ATTEMPTS];
static size_t n_attempts;
static struct attempt probes[MAX_PROBES];
static size_t n_probes;
static volatile int probing = 1, live_threads;

static void set_mode(const char *mode)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", control);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", mode);
    fclose(f);
    assert_int_equal(rename(tmp, control), 0); /* the proxy never reads half a word */
}

/* Starts the proxy in front of redis and reads the port it prints. */
static void start_proxy(void)
{
    char self[512], tool[600], target[16];
    snprintf(self, sizeof self, "%s", DB_DAEMON_PATH);
    snprintf(tool, sizeof tool, "%s/tools/tcp_fault_proxy", dirname(self));
    snprintf(target, sizeof target, "%d", db_test_redis_port(R));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    proxy_pid = fork();
    assert_true(proxy_pid >= 0);
    if (proxy_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        execl(tool, tool, "0", "127.0.0.1", target, control, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    assert_non_null(f);
    if (fscanf(f, "port %d", &proxy_port) != 1) fail_msg("%s printed no port", tool);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start_tcp(NULL);
    assert_non_null(R);
    snprintf(control, sizeof control, "%s/proxy.mode", db_test_redis_dir(R));
    set_mode("pass");
    start_proxy();
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=redis://127.0.0.1:%d",
             proxy_port);
    const char *env[] = {env_redis, "TELEGRAM_BOT_TOKEN=7000000001:AAoutage",
                         "TELEGRAM_WEBHOOK_SECRET=" SECRET, "TELEGRAM_API_BASE=http://127.0.0.1:9",
                         NULL};
    db_test_daemon_start(&D, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_test_daemon_stop_clean(&D, NULL);
    kill(proxy_pid, SIGTERM);
    waitpid(proxy_pid, NULL, 0);
    db_test_redis_stop(R);
    return 0;
}

static void note(struct attempt *list, size_t *n, size_t cap, const struct attempt *a)
{
    pthread_mutex_lock(&mu);
    if (*n < cap) list[(*n)++] = *a;
    pthread_mutex_unlock(&mu);
}

/* One platform delivery: update i, retried until 200. */
static void *deliver(void *arg)
{
    int i = (int)(long)arg;
    char body[512];
    snprintf(body, sizeof body,
             "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
             "\"chat\":{\"id\":%d,\"type\":\"private\"},\"text\":\"outage %d\"}}",
             i, i, i % 30 + 1, i);
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    long long give_up = db_test_now_ms() + 60000;
    for (;;) {
        struct attempt a = {.start = db_test_now_ms()};
        struct db_test_resp r;
        db_test_http(D.port, "POST", "/webhooks/telegram/7000000001", headers, body,
                     strlen(body), &r);
        a.end = db_test_now_ms();
        a.status = r.status;
        char ra[32];
        a.retry_after = db_test_resp_header(&r, "Retry-After", ra, sizeof ra) != NULL;
        db_test_resp_clear(&r);
        note(attempts, &n_attempts, MAX_ATTEMPTS, &a);
        if (a.status == 200 || db_test_now_ms() > give_up) break;
        usleep(300000);
    }
    __sync_fetch_and_sub(&live_threads, 1);
    return NULL;
}

static void *prober(void *arg)
{
    (void)arg;
    while (probing) {
        struct attempt a = {.start = db_test_now_ms()};
        struct db_test_resp r;
        db_test_http(D.port, "GET", "/readyz", NULL, NULL, 0, &r);
        a.end = db_test_now_ms();
        a.status = r.status;
        db_test_resp_clear(&r);
        note(probes, &n_probes, MAX_PROBES, &a);
        usleep(100000);
    }
    return NULL;
}

static void webhooks_get_503_during_the_outage_and_land_once_after(void **state)
{
    (void)state;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t pr;
    pthread_create(&pr, NULL, prober, NULL);

    /* Phases, in ms from t0: pass, stall, reset, pass, then no new updates. */
    const long long stall_at = 3000, reset_at = 8000, pass_at = 13000, end_at = 16000;
    long long t0 = db_test_now_ms(), t_stall = 0, t_reset = 0, t_pass = 0;
    int n = 0;
    for (;;) {
        long long now = db_test_now_ms() - t0;
        if (!t_stall && now >= stall_at) {
            set_mode("stall");
            t_stall = db_test_now_ms();
        }
        if (!t_reset && now >= reset_at) {
            set_mode("reset");
            t_reset = db_test_now_ms();
        }
        if (!t_pass && now >= pass_at) {
            set_mode("pass");
            t_pass = db_test_now_ms();
        }
        if (now >= end_at) break;
        long long due = (long long)n * 1000 / RATE_PER_S;
        if (now < due) {
            usleep(2000);
            continue;
        }
        pthread_t t;
        __sync_fetch_and_add(&live_threads, 1);
        if (pthread_create(&t, &attr, deliver, (void *)(long)n) != 0)
            fail_msg("thread for update %d", n);
        n++;
    }
    while (live_threads > 0 && db_test_now_ms() - t0 < end_at + 40000) usleep(20000);
    probing = 0;
    pthread_join(pr, NULL);
    pthread_attr_destroy(&attr);
    assert_int_equal(live_threads, 0);

    /* Webhook answers during the fault: every attempt that starts in it is timed; its status
     * is checked after a 200 ms grace (the proxy reads its mode every 100 ms). */
    long long in_fault = 0, wrong = 0, no_retry_after = 0, max_fault_ms = 0, recovery_ms = -1;
    long long late_failures = 0;
    pthread_mutex_lock(&mu);
    for (size_t k = 0; k < n_attempts; k++) {
        const struct attempt *a = &attempts[k];
        long long took = a->end - a->start;
        if (a->start >= t_stall && a->start < t_pass && took > max_fault_ms) max_fault_ms = took;
        if (a->start >= t_stall + 200 && a->start < t_pass && a->end < t_pass) {
            in_fault++;
            if (a->status != 503) wrong++;
            else if (!a->retry_after) no_retry_after++;
        }
        if (a->start >= t_pass && a->status == 200 &&
            (recovery_ms < 0 || a->end - t_pass < recovery_ms))
            recovery_ms = a->end - t_pass;
        if (a->start >= t_pass + 1000 && a->status != 200) late_failures++;
    }
    long long probes_fault = 0, probes_ready = 0, probes_after_ok = 0, probes_after = 0;
    for (size_t k = 0; k < n_probes; k++) {
        const struct attempt *p = &probes[k];
        /* The stall is noticed when a command times out (redis_timeout_ms, 1.5 s). */
        if (p->start >= t_stall + 2000 && p->end < t_pass) {
            probes_fault++;
            probes_ready += p->status != 503;
        }
        if (p->start >= t_pass + 1000) {
            probes_after++;
            probes_after_ok += p->status == 200;
        }
    }
    size_t total_attempts = n_attempts;
    pthread_mutex_unlock(&mu);

    /* Every update exactly once. */
    int *count = calloc((size_t)n, sizeof *count);
    long long phantoms = 0;
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XRANGE deskbridge:events - +");
    assert_non_null(r);
    for (size_t e = 0; e < r->elements; e++) {
        json_t *ev = json_loads(r->element[e]->element[1]->element[1]->str, 0, NULL);
        const char *mid = json_string_value(json_object_get(ev, "external_message_id"));
        int id = mid ? atoi(mid) : -1;
        if (id >= 0 && id < n) count[id]++;
        else phantoms++;
        json_decref(ev);
    }
    freeReplyObject(r);
    long long lost = 0, doubled = 0;
    for (int i = 0; i < n; i++) {
        lost += count[i] == 0;
        doubled += count[i] > 1;
    }
    free(count);

    printf("# redis outage: %d updates, %zu attempts; stall %lld ms then reset %lld ms\n", n,
           total_attempts, t_reset - t_stall, t_pass - t_reset);
    printf("# during the fault: %lld answers, %lld not 503, %lld without Retry-After, slowest "
           "%lld ms; /readyz not 503 in %lld of %lld probes\n",
           in_fault, wrong, no_retry_after, max_fault_ms, probes_ready, probes_fault);
    printf("# after pass: first 200 after %lld ms, %lld failures later than 1 s, /readyz 200 in "
           "%lld of %lld probes\n", recovery_ms, late_failures, probes_after_ok, probes_after);
    printf("# stream: lost %lld, duplicated %lld, phantom %lld\n", lost, doubled, phantoms);
    assert_true(in_fault > 200);
    assert_int_equal(wrong, 0);
    assert_int_equal(no_retry_after, 0);
    assert_true(max_fault_ms <= 2000);
    assert_true(probes_fault > 5);
    assert_int_equal(probes_ready, 0);
    assert_true(recovery_ms >= 0 && recovery_ms <= 1000);
    assert_int_equal(late_failures, 0);
    assert_true(probes_after > 5);
    assert_int_equal(probes_after_ok, probes_after);
    assert_int_equal(lost, 0);
    assert_int_equal(doubled, 0);
    assert_int_equal(phantoms, 0);
    assert_true(db_test_daemon_alive(&D));
}

static int ready(void *arg)
{
    struct db_test_resp r;
    db_test_http(*(int *)arg, "GET", "/readyz", NULL, NULL, 0, &r);
    int ok = r.status == 200;
    db_test_resp_clear(&r);
    return ok;
}

static long long connections_received(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "INFO stats");
    assert_non_null(r);
    const char *p = strstr(r->str, "total_connections_received:");
    assert_non_null(p);
    long long n = atoll(p + strlen("total_connections_received:"));
    freeReplyObject(r);
    return n;
}

/* redis_wait_replicas = 1 with no replica at all (as when the only replica is down): WAIT runs
 * out on the server, every webhook is answered 503 after about half the command timeout, and
 * the connection stays up.  A WAIT as long as the command timeout lost the race to the
 * client's own timer, which then dropped the connection: the first webhook took the whole
 * timeout and the next ones failed at once while the gateway reconnected. */
static void a_missing_replica_gets_503_without_dropping_the_connection(void **state)
{
    (void)state;
    char conf[300], env_url[128];
    snprintf(conf, sizeof conf, "%s/wait.conf", db_test_redis_dir(R));
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[gateway]\nrole = ingest\nprefix = waiting\nredis_wait_replicas = 1\n");
    fclose(f);
    snprintf(env_url, sizeof env_url, "DESKBRIDGE_REDIS_URL=redis://127.0.0.1:%d",
             db_test_redis_port(R));
    const char *env[] = {env_url, "TELEGRAM_BOT_TOKEN=7000000002:AAwait",
                         "TELEGRAM_WEBHOOK_SECRET=" SECRET, "TELEGRAM_API_BASE=http://127.0.0.1:9",
                         NULL};
    const char *args[] = {"--config", conf, NULL};
    struct db_test_daemon d;
    db_test_daemon_start(&d, env, args, 0);
    assert_true(db_test_wait(ready, &d.port, 5000)); /* its connection is up */
    long long conns = connections_received();

    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    long long slowest = 0, fastest = -1;
    for (int k = 0; k < 10; k++) {
        int i = k / 2; /* each update twice: the retry is a dedupe hit and waits the same */
        char body[256];
        snprintf(body, sizeof body,
                 "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
                 "\"chat\":{\"id\":7,\"type\":\"private\"},\"text\":\"waiting %d\"}}",
                 i, i, i);
        long long t = db_test_now_ms();
        struct db_test_resp r;
        db_test_http(d.port, "POST", "/webhooks/telegram/7000000002", headers, body, strlen(body),
                     &r);
        t = db_test_now_ms() - t;
        char ra[32];
        assert_int_equal(r.status, 503);
        assert_non_null(db_test_resp_header(&r, "Retry-After", ra, sizeof ra));
        db_test_resp_clear(&r);
        if (t > slowest) slowest = t;
        if (fastest < 0 || t < fastest) fastest = t;
    }
    long long reconnects = connections_received() - conns;
    redisReply *x = redisCommand(db_test_redis_ctx(R), "XLEN waiting:events");
    long long entries = x->integer;
    freeReplyObject(x);
    printf("# no replica: 10 webhooks (5 updates twice) answered 503 in %lld-%lld ms (WAIT 750 ms "
           "of the 1500 ms command timeout); new connections %lld; stream entries %lld\n",
           fastest, slowest, reconnects, entries);
    int dropped = db_test_daemon_log_count(&d, "command timed out");
    db_test_daemon_stop_clean(&d, NULL);
    unlink(conf);
    assert_true(fastest >= 700); /* the server's WAIT ran out, not a connection error */
    assert_true(slowest <= 1400); /* before the command timeout */
    assert_int_equal(reconnects, 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(entries, 5); /* written once each, just not acknowledged by a replica */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhooks_get_503_during_the_outage_and_land_once_after),
        cmocka_unit_test(a_missing_replica_gets_503_without_dropping_the_connection),
    };
    return cmocka_run_group_tests_name("redis_outage", tests, setup, teardown);
}
