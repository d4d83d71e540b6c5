/* Order of one conversation's replies across sender processes (src/stream/ordering.c).
 *
 * Two gateway processes share the outbox's consumer group.  300 replies to one Telegram chat
 * are XADDed to P:outbox at a steady pace, so both processes read some of them, while a fault
 * thread makes the fake Telegram answer sendMessage with 429 at random moments (most without
 * retry_after, so the sender backs off by retry_base_ms; some with retry_after 1, which holds
 * the chat a second).  The fake records every request with its answer: the successful sends
 * must be exactly the 300 replies, each once, in outbox order.  No process is killed, so the
 * crash window (docs/reliability.md) does not apply: not one duplicate is allowed. */
#include <pthread.h>
#include <setjmp.h>
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
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define N_MSG 300
#define TOKEN "7000000001:AAordertest"
#define CONV "telegram:tg:4242"

static struct db_test_redis *R;
static struct db_fake *TG;
static struct db_test_daemon D[2];
static char conf_path[256], env_redis[512];
static volatile int injecting = 1;

static const char *env[] = {env_redis, NULL};
static const char *args[] = {"--config", conf_path, NULL};

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    TG = db_fake_start();
    assert_non_null(TG);
    db_fake_default(TG, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(conf_path, sizeof conf_path, "/tmp/deskbridge-order-%d.conf", (int)getpid());
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\n"
            "api_token = order-api-token-0123456789\n"
            "claim_idle_ms = 2000\n"
            "retry_base_ms = 20\n"
            "retry_max_ms = 200\n"
            "send_max_attempts = 1000\n"
            "[telegram tg]\n"
            "token = " TOKEN "\n"
            "webhook_secret = order-hook-secret\n"
            "api_base = %s\n",
            db_fake_url(TG));
    fclose(f);
    for (int i = 0; i < 2; i++) db_test_daemon_start(&D[i], env, args, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) db_test_daemon_stop_clean(&D[i], NULL);
    unlink(conf_path);
    db_fake_stop(TG);
    db_test_redis_stop(R);
    return 0;
}

/* Scripts a 429 for one of the next few sendMessage calls, at random, once the previous one
 * was used: about one request in four is refused. */
static void *faults(void *arg)
{
    unsigned seed = 20261206;
    size_t next = 1;
    (void)arg;
    while (injecting) {
        usleep(2000 + rand_r(&seed) % 8000);
        if (db_fake_count(TG, "/sendMessage") < next) continue;
        if (rand_r(&seed) % 12 == 0)
            db_fake_rule(TG, "POST", "/sendMessage", 1, 429,
                         "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: "
                         "retry after 1\",\"parameters\":{\"retry_after\":1}}",
                         0, 0);
        else
            db_fake_rule(TG, "POST", "/sendMessage", 1, 429,
                         "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests\"}",
                         0, 0);
        next = db_fake_count(TG, "/sendMessage") + 1 + rand_r(&seed) % 6;
    }
    return NULL;
}

static int settled(void *arg)
{
    (void)arg;
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XPENDING deskbridge:outbox deskbridge-senders");
    int done = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
               r->element[0]->integer == 0;
    freeReplyObject(r);
    if (!done) return 0;
    r = redisCommand(db_test_redis_ctx(R), "XINFO GROUPS deskbridge:outbox");
    /* [name, ..., "last-delivered-id", id, ...]: every entry was read */
    done = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *g = r->element[i];
        for (size_t k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2)
            if (strcmp(g->element[k]->str, "entries-read") == 0)
                done = g->element[k + 1]->integer == N_MSG;
    }
    freeReplyObject(r);
    return done;
}

static void replies_keep_outbox_order_across_two_senders(void **state)
{
    (void)state;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, faults, NULL), 0);
    for (int i = 0; i < N_MSG; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"conversation\":\"" CONV "\",\"text\":\"reply %03d\","
                 "\"id\":\"ord-%03d\"}", i, i);
        redisReply *r = redisCommand(db_test_redis_ctx(R), "XADD deskbridge:outbox * command %s",
                                     body);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
        usleep(10000); /* a steady pace: both processes read part of the conversation */
    }
    int ok = db_test_wait(settled, NULL, 120000);
    injecting = 0;
    pthread_join(th, NULL);
    assert_true(ok);
    redisReply *dead = redisCommand(db_test_redis_ctx(R), "XLEN deskbridge:dead");
    assert_non_null(dead);
    assert_int_equal(dead->integer, 0);
    freeReplyObject(dead);

    /* The successful sends, in the order the fake received them. */
    int seen[N_MSG] = {0}, last = -1, sent = 0, out_of_order = 0, doubled = 0, refused = 0;
    struct db_fake_request q;
    for (size_t k = 0; db_fake_get(TG, k, &q) == 0; k++) {
        if (strstr(q.path, "/sendMessage")) {
            if (q.answer_status != 200) {
                refused++;
            } else {
                json_t *j = json_loads(q.body, 0, NULL);
                const char *text = json_string_value(json_object_get(j, "text"));
                int n = -1;
                assert_non_null(text);
                assert_int_equal(sscanf(text, "reply %d", &n), 1);
                assert_true(n >= 0 && n < N_MSG);
                if (seen[n]++) doubled++;
                if (n < last) out_of_order++;
                last = n > last ? n : last;
                sent++;
                json_decref(j);
            }
        }
        db_fake_request_clear(&q);
    }
    int by[2];
    for (int i = 0; i < 2; i++) by[i] = db_test_daemon_log_count(&D[i], "sent parts=");
    printf("# %d replies, one conversation, two senders: %d sent (%d and %d per process), "
           "%d answered 429, %d out of order, %d doubled\n",
           N_MSG, sent, by[0], by[1], refused, out_of_order, doubled);
    for (int n = 0; n < N_MSG; n++)
        if (seen[n] != 1) fail_msg("reply %03d sent %d times", n, seen[n]);
    assert_int_equal(out_of_order, 0);
    assert_int_equal(doubled, 0);
    assert_int_equal(sent, N_MSG);
    /* Both processes took part, and the faults were real. */
    assert_true(by[0] > 0 && by[1] > 0);
    assert_true(refused >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies_keep_outbox_order_across_two_senders),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
