/* Redis Sentinel failover under a steady trickle of webhooks.
 *
 * A master, a replica and a sentinel on loopback; the gateway finds the master through the
 * sentinel (redis+sentinel://) and answers a webhook 2xx only once a replica holds it
 * (redis_wait_replicas = 1).  A driver sends 40 signed Telegram updates a second and retries
 * every non-2xx as Telegram would.  Meanwhile the sentinel fails the master over, and later
 * both Redis servers are frozen for 2 s (no master reachable).  At the end every update that
 * got a 2xx is in the new master's stream exactly once, and the 503s while no master was
 * reachable are counted. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "redis_fixture.h"
#include "sentinel_fixture.h"
#include "testutil.h"

#define SECRET "sentinel-secret_9"
#define N_UPDATES 480
#define RATE_PER_S 40

static struct db_test_redis *master, *replica;
static struct db_test_sentinel sentinel;
static volatile long long phase_503, paused_from, paused_until, failover_ms;

static int master_port_now(void)
{
    redisReply *addr =
        db_test_redis_port_cmd(sentinel.port, "SENTINEL get-master-addr-by-name mymaster");
    int port = addr && addr->type == REDIS_REPLY_ARRAY && addr->elements == 2
                   ? atoi(addr->element[1]->str)
                   : 0;
    if (addr) freeReplyObject(addr);
    return port;
}

static void *faults(void *arg)
{
    (void)arg;
    usleep(3000 * 1000);
    long long t = db_test_now_ms();
    db_test_sentinel_failover(&sentinel, 20000);
    /* The freeze below is meant for after the failover; on a loaded machine (the sanitizer
     * pass) the promotion can take seconds, and a freeze in the middle of it makes the
     * sentinel give the failover up. */
    while (master_port_now() == db_test_redis_port(master) && db_test_now_ms() - t < 8000)
        usleep(50 * 1000);
    failover_ms = db_test_now_ms() - t;
    usleep(1000 * 1000);
    /* No master reachable: both servers frozen. */
    paused_from = db_test_now_ms();
    kill(db_test_redis_pid(master), SIGSTOP);
    kill(db_test_redis_pid(replica), SIGSTOP);
    usleep(2000 * 1000);
    kill(db_test_redis_pid(master), SIGCONT);
    kill(db_test_redis_pid(replica), SIGCONT);
    paused_until = db_test_now_ms();
    return NULL;
}

static int deliver(int port, int i)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
             "\"chat\":{\"id\":%d,\"type\":\"private\"},\"text\":\"trickle\"}}",
             i, i, i % 20 + 1);
    const char *headers[] = {"X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    for (int attempt = 1;; attempt++) {
        struct db_test_resp r;
        long long t = db_test_now_ms();
        db_test_http(port, "POST", "/webhooks/telegram/7000000001", headers, body, strlen(body),
                     &r);
        int st = r.status;
        db_test_resp_clear(&r);
        if (st == 200) return attempt;
        if (st != 503 && st != 0) fail_msg("update %d: status %d", i, st);
        if (paused_from && t >= paused_from && !paused_until) phase_503++;
        usleep(50000);
    }
}

static void accepted_webhooks_survive_a_failover(void **state)
{
    (void)state;
    /* No diskless-sync delay, so the replica is in sync before the sentinel first looks. */
    const char *fast = "--repl-diskless-sync-delay 0 --appendonly yes";
    master = db_test_redis_start_tcp(fast);
    assert_non_null(master);
    char extra[200];
    snprintf(extra, sizeof extra, "%s --replicaof 127.0.0.1 %d", fast, db_test_redis_port(master));
    replica = db_test_redis_start_tcp(extra);
    assert_non_null(replica);
    long long deadline = db_test_now_ms() + 10000;
    int linked = 0;
    while (!linked && db_test_now_ms() < deadline) {
        redisReply *rep = db_test_redis_port_cmd(db_test_redis_port(replica), "INFO replication");
        linked = rep && rep->str && strstr(rep->str, "master_link_status:up");
        if (rep) freeReplyObject(rep);
        if (!linked) usleep(20000);
    }
    assert_true(linked);
    db_test_sentinel_start(&sentinel, db_test_redis_port(master));

    char conf[256], url[256];
    snprintf(conf, sizeof conf, "/tmp/deskbridge-sentinel-%d.conf", (int)getpid());
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[gateway]\nredis_wait_replicas = 1\nredis_timeout_ms = 1000\n");
    fclose(f);
    snprintf(url, sizeof url, "DESKBRIDGE_REDIS_URL=redis+sentinel://127.0.0.1:%d/mymaster",
             sentinel.port);
    const char *env[] = {url, "TELEGRAM_BOT_TOKEN=7000000001:AAsentinel",
                         "TELEGRAM_WEBHOOK_SECRET=" SECRET, "TELEGRAM_API_BASE=http://127.0.0.1:9",
                         NULL};
    const char *args[] = {"--config", conf, NULL};
    struct db_test_daemon d;
    db_test_daemon_start(&d, env, args, 0);

    pthread_t t;
    pthread_create(&t, NULL, faults, NULL);
    long long t0 = db_test_now_ms(), retries = 0;
    for (int i = 0; i < N_UPDATES; i++) {
        long long due = t0 + (long long)i * 1000 / RATE_PER_S;
        long long now = db_test_now_ms();
        if (now < due) usleep((useconds_t)(due - now) * 1000);
        retries += deliver(d.port, i) - 1;
    }
    pthread_join(t, NULL);

    /* The master now is whichever the sentinel names. */
    int now_master = master_port_now();
    assert_true(now_master > 0);
    redisReply *r = db_test_redis_port_cmd(now_master, "XRANGE deskbridge:events - +");
    assert_non_null(r);
    int *count = calloc(N_UPDATES, sizeof *count);
    for (size_t e = 0; e < r->elements; e++) {
        json_t *ev = json_loads(r->element[e]->element[1]->element[1]->str, 0, NULL);
        int id = atoi(json_string_value(json_object_get(ev, "external_message_id")));
        if (id >= 0 && id < N_UPDATES) count[id]++;
        json_decref(ev);
    }
    long long lost = 0, doubled = 0;
    for (int i = 0; i < N_UPDATES; i++) {
        lost += count[i] == 0;
        doubled += count[i] > 1;
    }
    printf("# sentinel failover: %d updates at %d/s, master moved %d -> %d (%lld ms after "
           "SENTINEL FAILOVER); %lld retries by the driver, %lld answers 503 while no master was "
           "reachable; stream: %zu entries, lost %lld, doubled %lld\n",
           N_UPDATES, RATE_PER_S, db_test_redis_port(master), now_master, failover_ms, retries,
           phase_503, r->elements, lost, doubled);
    assert_int_not_equal(now_master, db_test_redis_port(master));
    assert_int_equal(lost, 0);
    assert_int_equal(doubled, 0);
    assert_true(phase_503 > 0);
    freeReplyObject(r);
    free(count);
    db_test_daemon_stop_clean(&d, NULL);
    unlink(conf);
    db_test_sentinel_stop(&sentinel);
    db_test_redis_stop(replica);
    db_test_redis_stop(master);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_webhooks_survive_a_failover),
    };
    return cmocka_run_group_tests_name("sentinel_failover", tests, NULL, NULL);
}
