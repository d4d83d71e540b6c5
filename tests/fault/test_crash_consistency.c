/* Crash consistency of the ingest path (docs/reliability.md).
 *
 * A driver sends signed webhooks of all three platforms (a quarter of the WhatsApp ones also
 * carry a delivery receipt) and retries each until it gets a 2xx, as the platforms do, at
 * 300 updates a second; 10% of accepted ones are sent again (redeliveries).  Meanwhile
 * the gateway is killed with SIGKILL every 1.5-3 s and restarted on the same port, and
 * redis-server (AOF, appendfsync everysec) is killed with SIGKILL every ~6 s and restarted.
 * At the end every message and receipt that got a 2xx is in the stream exactly once, every
 * update was accepted in the end, and the figures are printed. */
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
#include "redis/redis.h"
#include "redis_fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define N_PER_PLATFORM 2000
#define RATE_PER_S 300 /* paced, so the kills land mid-stream */
#define TG_SECRET "fault-secret_1"
#define WA_SECRET "fault-app-secret-0123"
#define VB_TOKEN "fault-viber-token-0123"
#define WA_PNID "1550001"

static struct db_test_redis *R;
static struct db_test_daemon D;
static int port;
static char env_redis[512];
static volatile int driving = 1, checked;
static pthread_mutex_t daemon_lock = PTHREAD_MUTEX_INITIALIZER;
static long long max_recovery_ms, restarts, redis_restarts;

static const char *env[] = {env_redis,
                            "TELEGRAM_BOT_TOKEN=7000000001:AAfault",
                            "TELEGRAM_WEBHOOK_SECRET=" TG_SECRET,
                            "TELEGRAM_API_BASE=http://127.0.0.1:9",
                            "WHATSAPP_ACCESS_TOKEN=fault-access",
                            "WHATSAPP_APP_SECRET=" WA_SECRET,
                            "WHATSAPP_VERIFY_TOKEN=fault-verify",
                            "WHATSAPP_PHONE_NUMBER_ID=" WA_PNID,
                            "WHATSAPP_API_BASE=http://127.0.0.1:9",
                            "VIBER_AUTH_TOKEN=" VB_TOKEN,
                            "VIBER_API_BASE=http://127.0.0.1:9",
                            NULL};

#define RECEIPT_ID_PREFIX "wamid.out."

/* WhatsApp updates (i % 3 == 1) with a receipt besides their message: every fourth. */
static int has_receipt(int i)
{
    return i % 3 == 1 && i / 3 % 4 == 0;
}

/* Body, path and auth header of update i (platform = i % 3). */
static void make(int i, char *body, size_t bn, char *path, size_t pn, char *hdr, size_t hn)
{
    unsigned char mac[32];
    char hex[65];
    switch (i % 3) {
    case 0:
        snprintf(body, bn,
                 "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
                 "\"chat\":{\"id\":%d,\"type\":\"private\"},\"text\":\"tg %d\"}}",
                 i, i, i % 40 + 1, i);
        snprintf(path, pn, "/webhooks/telegram/7000000001");
        snprintf(hdr, hn, "X-Telegram-Bot-Api-Secret-Token: %s", TG_SECRET);
        break;
    case 1: {
        /* A quarter of them also carry a delivery receipt, so the general ingest script is
         * killed mid-stream too, not only the plain one (store.c). */
        char receipt[160] = "";
        if (has_receipt(i))
            snprintf(receipt, sizeof receipt,
                     ",\"statuses\":[{\"id\":\"" RECEIPT_ID_PREFIX "%d\",\"status\":\"delivered\","
                     "\"timestamp\":\"1795365000\",\"recipient_id\":\"1650555%04d\"}]",
                     i, i % 40);
        snprintf(body, bn,
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
                 "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
                 "\"metadata\":{\"display_phone_number\":\"15550001\",\"phone_number_id\":\""
                 WA_PNID "\"},\"contacts\":[{\"profile\":{\"name\":\"W\"},\"wa_id\":\"1650555%04d\"}],"
                 "\"messages\":[{\"from\":\"1650555%04d\",\"id\":\"%d\",\"timestamp\":\"1795365000\","
                 "\"type\":\"text\",\"text\":{\"body\":\"wa %d\"}}]%s}}]}]}",
                 i % 40, i % 40, i, i, receipt);
        snprintf(path, pn, "/webhooks/whatsapp/" WA_PNID);
        db_hmac_sha256(WA_SECRET, strlen(WA_SECRET), body, strlen(body), mac);
        db_hex_encode(mac, 32, hex);
        snprintf(hdr, hn, "X-Hub-Signature-256: sha256=%s", hex);
        break;
    }
    default:
        snprintf(body, bn,
                 "{\"event\":\"message\",\"timestamp\":1795365000000,\"message_token\":%d,"
                 "\"sender\":{\"id\":\"user%d==\",\"name\":\"V\"},\"message\":{\"type\":\"text\","
                 "\"text\":\"vb %d\"}}",
                 i, i % 40, i);
        snprintf(path, pn, "/webhooks/viber/viber");
        db_hmac_sha256(VB_TOKEN, strlen(VB_TOKEN), body, strlen(body), mac);
        db_hex_encode(mac, 32, hex);
        snprintf(hdr, hn, "X-Viber-Content-Signature: %s", hex);
    }
}

/* Sends update i until it is accepted, as a platform would; returns the attempts. */
static int deliver(int i)
{
    char body[1024], path[128], hdr[160];
    make(i, body, sizeof body, path, sizeof path, hdr, sizeof hdr);
    const char *headers[] = {"Content-Type: application/json", hdr, NULL};
    for (int attempt = 1;; attempt++) {
        struct db_test_resp r;
        db_test_http(port, "POST", path, headers, body, strlen(body), &r);
        int st = r.status;
        db_test_resp_clear(&r);
        if (st >= 200 && st < 300) return attempt;
        if (st != 0 && st != 503) fail_msg("update %d: unexpected status %d", i, st);
        usleep(30000); /* a real platform backs off much longer */
    }
}

static void restart_gateway(void)
{
    pthread_mutex_lock(&daemon_lock);
    kill(D.pid, SIGKILL);
    db_test_daemon_stop(&D, SIGKILL);
    unlink(D.log_path);
    long long t0 = db_test_now_ms();
    db_test_daemon_start(&D, env, NULL, port);
    long long took = db_test_now_ms() - t0;
    if (took > max_recovery_ms) max_recovery_ms = took;
    restarts++;
    pthread_mutex_unlock(&daemon_lock);
}

static void *killer(void *arg)
{
    (void)arg;
    long long next_redis = db_test_now_ms() + 6000;
    unsigned seed = 7;
    while (driving) {
        usleep(1500000 + (useconds_t)(rand_r(&seed) % 1500) * 1000);
        if (!driving) break;
        restart_gateway();
        if (db_test_now_ms() >= next_redis) {
            db_test_redis_kill(R, SIGKILL);
            usleep(200000);
            db_test_redis_restart(R);
            redis_restarts++;
            next_redis = db_test_now_ms() + 6000;
        }
    }
    /* The fixture ties redis-server to the thread that started it (PDEATHSIG): stay alive
     * until the stream has been checked. */
    while (!checked) usleep(10000);
    return NULL;
}

static void every_accepted_webhook_is_in_the_stream_exactly_once(void **state)
{
    (void)state;
    R = db_test_redis_start("--appendonly yes --appendfsync everysec");
    assert_non_null(R);
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    port = db_test_free_port();
    db_test_daemon_start(&D, env, NULL, port);

    pthread_t k;
    pthread_create(&k, NULL, killer, NULL);
    int n = 3 * N_PER_PLATFORM;
    long long retries = 0, redeliveries = 0, t0 = db_test_now_ms();
    unsigned seed = 11;
    for (int i = 0; i < n; i++) {
        long long due = t0 + (long long)i * 1000 / RATE_PER_S;
        long long now = db_test_now_ms();
        if (now < due) usleep((useconds_t)(due - now) * 1000);
        retries += deliver(i) - 1;
        if (i > 0 && rand_r(&seed) % 10 == 0) {
            retries += deliver(rand_r(&seed) % i) - 1; /* a redelivery of an accepted one */
            redeliveries++;
        }
    }
    long long took = db_test_now_ms() - t0;
    driving = 0;

    /* Join the stream with what was accepted: every update exactly once. */
    int *count = calloc((size_t)n, sizeof *count), *receipts = calloc((size_t)n, sizeof *receipts);
    assert_true(count && receipts);
    long long entries = 0, phantoms = 0;
    struct db_err err = {0};
    redisContext *c = db_redis_connect_sync(db_test_redis_url(R), 2000, &err); /* after restarts */
    assert_non_null(c);
    redisReply *r = redisCommand(c, "XRANGE deskbridge:events - +");
    if (!r) fail_msg("XRANGE: %s", c->errstr);
    for (size_t e = 0; e < r->elements; e++, entries++) {
        json_t *ev = json_loads(r->element[e]->element[1]->element[1]->str, 0, NULL);
        const char *mid = json_string_value(json_object_get(ev, "external_message_id"));
        const char *kind = json_string_value(json_object_get(ev, "kind"));
        int receipt = kind && strcmp(kind, "receipt") == 0;
        size_t skip = receipt ? strlen(RECEIPT_ID_PREFIX) : 0;
        int id = mid && (!receipt || strncmp(mid, RECEIPT_ID_PREFIX, skip) == 0)
                     ? atoi(mid + skip)
                     : -1;
        if (id >= 0 && id < n && (!receipt || has_receipt(id))) (receipt ? receipts : count)[id]++;
        else phantoms++;
        json_decref(ev);
    }
    freeReplyObject(r);
    redisFree(c);
    pthread_mutex_lock(&daemon_lock);
    db_test_daemon_stop(&D, SIGTERM);
    unlink(D.log_path);
    pthread_mutex_unlock(&daemon_lock);
    db_test_redis_stop(R);
    checked = 1;
    pthread_join(k, NULL);
    long long lost = 0, doubled = 0, n_receipts = 0;
    for (int i = 0; i < n; i++) {
        lost += count[i] == 0;
        doubled += count[i] > 1;
        if (!has_receipt(i)) continue;
        n_receipts++;
        lost += receipts[i] == 0;
        doubled += receipts[i] > 1;
    }
    printf("# crash consistency: %d updates (3 platforms; %lld of them also with a receipt) + "
           "%lld redeliveries in %lld ms; gateway SIGKILLed %lld times, redis %lld times; %lld "
           "retries by the driver\n",
           n, n_receipts, redeliveries, took, restarts, redis_restarts, retries);
    printf("# stream entries %lld: lost %lld, duplicated %lld, phantom %lld; slowest restart "
           "to healthy %lld ms\n", entries, lost, doubled, phantoms, max_recovery_ms);
    assert_int_equal(lost, 0);
    assert_int_equal(doubled, 0);
    assert_int_equal(phantoms, 0);
    assert_true(restarts >= 3);
    assert_true(max_recovery_ms <= 2000);
    free(count);
    free(receipts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_accepted_webhook_is_in_the_stream_exactly_once),
    };
    return cmocka_run_group_tests_name("crash_consistency", tests, NULL, NULL);
}
