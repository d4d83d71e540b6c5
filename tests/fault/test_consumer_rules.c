/* The consumer rules (docs/ARCHITECTURE.md, "The consumer rules"), run against every stream
 * consumer of the gateway from one table: the sender (P:outbox), the dispatcher, the automatic
 * answers and a helpdesk webhook endpoint (P:events).
 *
 *   - A poison entry (pending under a consumer that is gone, delivered more than
 *     max_deliveries times) is dead-lettered once, with the one documented shape, and
 *     acknowledged, even with two gateway processes deciding at the same time; its consumer
 *     does not run it.
 *   - A killed process's entry (read by a consumer that then never speaks again) is taken
 *     over after claim_idle_ms and run by the live process.
 *   - A live process's held entry is never taken, however long it holds it: the entry stays
 *     under its consumer with one delivery while a second process runs, and is run once.
 *     Only the consumers that wait on something outside Redis can be made to hold an entry
 *     longer than claim_idle_ms from outside (the sender on a slow platform, the endpoint on a
 *     slow receiver); the dispatcher and the automatic answers hold an entry for one Redis
 *     round trip, so for them the rule cannot be exercised and the table says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define CLAIM_IDLE_MS 1000
#define HOLD_MS 3500 /* longer than three claim_idle_ms */

static struct db_test_redis *R;
static struct db_fake *TG, *HOOK;
static struct db_test_daemon D[2];
static char conf_path[256], env_redis[512];
static const char *env[] = {env_redis, NULL};
static const char *args[] = {"--config", conf_path, NULL};
static int serial;

struct rcase {
    const char *name;
    const char *stream, *label, *group, *field;
    const char *mark; /* entry n's text is "<mark> <n>." */
    /* Writes entry n's field value (the JSON) into buf. */
    void (*entry)(int n, char *buf, size_t len);
    /* How often entry n was run by this consumer (0 or more). */
    int (*runs)(int n);
    /* Makes the next run of this consumer take HOLD_MS; NULL when that cannot be done. */
    void (*hold)(void);
};

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(R), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- the four consumers ---- */

static void outbox_entry(int n, char *buf, size_t len)
{
    snprintf(buf, len, "{\"conversation\":\"telegram:tg:%d\",\"text\":\"rules send %d.\","
             "\"id\":\"rules-%d\"}", 8000 + n, n, n);
}

static void event_entry(int n, char *buf, size_t len)
{
    snprintf(buf, len, "{\"v\":1,\"id\":\"01RULES%019d\",\"kind\":\"message\",\"type\":\"text\","
             "\"platform\":\"telegram\",\"account\":\"tg\",\"conversation\":\"telegram:tg:%d\","
             "\"external_chat_id\":\"%d\",\"external_user_id\":\"%d\","
             "\"external_message_id\":\"%d\",\"text\":\"hello rules event %d.\","
             "\"timestamp\":%lld,\"received_at\":%lld}",
             n, 9000 + n, 9000 + n, 9000 + n, n, n, now_ms() / 1000, now_ms());
}

static int fake_runs(struct db_fake *f, const char *path, const char *needle)
{
    int k = 0;
    struct db_fake_request q;
    for (size_t i = 0; db_fake_get(f, i, &q) == 0; i++) {
        if (strstr(q.path, path) && q.body && strstr(q.body, needle)) k++;
        db_fake_request_clear(&q);
    }
    return k;
}

static int sender_runs(int n)
{
    char needle[64];
    snprintf(needle, sizeof needle, "rules send %d.", n);
    return fake_runs(TG, "/sendMessage", needle);
}

static int hook_runs(int n)
{
    char needle[64];
    snprintf(needle, sizeof needle, "hello rules event %d.", n);
    return fake_runs(HOOK, "/hook", needle);
}

/* The conversation's state exists: only the dispatcher writes it. */
static int dispatcher_runs(int n)
{
    redisReply *r = cmd("EXISTS deskbridge:conv:{telegram:tg:%d}", 9000 + n);
    int k = (int)r->integer;
    freeReplyObject(r);
    return k;
}

/* Automatic answers queued to the conversation: only the automatic answers write them. */
static int autoreply_runs(int n)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"conversation\":\"telegram:tg:%d\"", 9000 + n);
    redisReply *r = cmd("XRANGE deskbridge:outbox - +");
    int k = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2)
            if (strcmp(f->element[j]->str, "command") == 0 &&
                strstr(f->element[j + 1]->str, needle) &&
                strstr(f->element[j + 1]->str, "\"automatic\":true"))
                k++;
    }
    freeReplyObject(r);
    return k;
}

static void sender_hold(void)
{
    db_fake_rule(TG, "POST", "/sendMessage", 1, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}",
                 HOLD_MS, 0);
}

static void hook_hold(void) { db_fake_rule(HOOK, "POST", "/hook", 1, 200, "{}", HOLD_MS, 0); }

static const struct rcase CASES[] = {
    {"sender", "deskbridge:outbox", "outbox", "deskbridge-senders", "command", "rules send", outbox_entry,
     sender_runs, sender_hold},
    {"dispatcher", "deskbridge:events", "events", "deskbridge-dispatch", "event", "hello rules event",
     event_entry,
     dispatcher_runs, NULL},
    {"automatic answers", "deskbridge:events", "events", "deskbridge-autoreply", "event",
     "hello rules event", event_entry, autoreply_runs, NULL},
    {"helpdesk webhook", "deskbridge:events", "events", "deskbridge-hook-desk", "event",
     "hello rules event", event_entry, hook_runs, hook_hold},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

/* ---- set-up ---- */

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    TG = db_fake_start();
    HOOK = db_fake_start();
    assert_true(TG && HOOK);
    db_fake_default(TG, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    db_fake_default(HOOK, 200, "{}");
    snprintf(conf_path, sizeof conf_path, "/tmp/deskbridge-rules-%d.conf", (int)getpid());
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\n"
            "api_token = rules-api-token-0123456789\n"
            "claim_idle_ms = %d\n"
            "retry_base_ms = 50\n"
            "retry_max_ms = 200\n"
            "[telegram tg]\n"
            "token = 7000000001:AArulestest\n"
            "webhook_secret = rules-hook-secret\n"
            "api_base = %s\n"
            "[dispatch]\n"
            "claim_idle_ms = %d\n"
            "[keyword hello]\n"
            "match = hello\n"
            "answer = Automatic hello\n"
            "[helpdesk_webhook desk]\n"
            "url = %s/hook\n"
            "secret = rules-hook-secret-0123456789\n"
            "allow_private = true\n"
            "claim_idle_ms = %d\n"
            "timeout_ms = 10000\n"
            "retry_base_ms = 50\n",
            CLAIM_IDLE_MS, db_fake_url(TG), CLAIM_IDLE_MS, db_fake_url(HOOK), CLAIM_IDLE_MS);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    db_fake_stop(TG);
    db_fake_stop(HOOK);
    db_test_redis_stop(R);
    return 0;
}

/* A clean Redis and fakes for the next case. */
static void fresh(void)
{
    freeReplyObject(cmd("FLUSHALL"));
    db_fake_reset(TG);
    db_fake_reset(HOOK);
}

/* Appends entry n to c's stream; writes its id into id. */
static void add_entry(const struct rcase *c, int n, char *id, size_t len)
{
    char body[1024];
    c->entry(n, body, sizeof body);
    redisReply *r = cmd("XADD %s * %s %s", c->stream, c->field, body);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(id, len, "%s", r->str);
    freeReplyObject(r);
}

/* Entry id read by a consumer "ghost" that then says nothing more, as a killed process. */
static void ghost_takes(const struct rcase *c, const char *id)
{
    redisReply *r = cmd("XGROUP CREATE %s %s 0 MKSTREAM", c->stream, c->group);
    freeReplyObject(r);
    r = cmd("XREADGROUP GROUP %s ghost COUNT 10 STREAMS %s >", c->group, c->stream);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    r = cmd("XPENDING %s %s %s %s 1", c->stream, c->group, id, id);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->element[1]->str, "ghost");
    freeReplyObject(r);
}

struct pend {
    const struct rcase *c;
    const char *id;
};

static int not_pending(void *arg)
{
    const struct pend *p = arg;
    redisReply *r = cmd("XPENDING %s %s %s %s 1", p->c->stream, p->c->group, p->id, p->id);
    int gone = r->type == REDIS_REPLY_ARRAY && r->elements == 0;
    freeReplyObject(r);
    return gone;
}

/* The dead letters of c's group for entry id; checks each one's shape. */
static int dead_letters(const struct rcase *c, const char *id, char *entry_field, size_t len)
{
    redisReply *r = cmd("XRANGE deskbridge:dead - +");
    int k = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        const char *group = NULL, *entry = NULL, *stream = NULL, *reason = NULL, *at = NULL,
                   *deliv = NULL, *orig = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const char *name = f->element[j]->str, *v = f->element[j + 1]->str;
            if (strcmp(name, "group") == 0) group = v;
            else if (strcmp(name, "entry") == 0) entry = v;
            else if (strcmp(name, "stream") == 0) stream = v;
            else if (strcmp(name, "reason") == 0) reason = v;
            else if (strcmp(name, "at") == 0) at = v;
            else if (strcmp(name, "deliveries") == 0) deliv = v;
            else if (strcmp(name, c->field) == 0) orig = v;
        }
        if (!group || strcmp(group, c->group) != 0 || !entry || strcmp(entry, id) != 0) continue;
        k++;
        assert_non_null(stream);
        assert_string_equal(stream, c->label);
        assert_true(reason && strstr(reason, "delivered"));
        assert_true(at && atoll(at) > 0);
        assert_true(deliv && atoi(deliv) >= 10);
        assert_non_null(orig);
        snprintf(entry_field, len, "%s", orig);
    }
    freeReplyObject(r);
    return k;
}

/* ---- the rules ---- */

static void a_poison_entry_is_dead_lettered_once(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *c = &CASES[i];
        int n = ++serial;
        char id[64], want[64], got[1024] = "";
        fresh();
        add_entry(c, n, id, sizeof id);
        snprintf(want, sizeof want, "%s %d.", c->mark, n);
        ghost_takes(c, id);
        /* Delivered 50 times, idle for ten minutes: every process that touched it died. */
        freeReplyObject(cmd("XCLAIM %s %s ghost 0 %s IDLE 600000 RETRYCOUNT 50 JUSTID", c->stream,
                            c->group, id));
        for (int d = 0; d < 2; d++) db_test_daemon_start(&D[d], env, args, 0);
        struct pend p = {c, id};
        assert_true(db_test_wait(not_pending, &p, 15000));
        usleep(3 * CLAIM_IDLE_MS * 1000); /* time for a second dead letter, which must not come */
        int k = dead_letters(c, id, got, sizeof got);
        int runs = c->runs(n);
        for (int d = 0; d < 2; d++) db_test_daemon_stop_clean(&D[d], NULL);
        printf("# %s: poison entry dead-lettered %d time(s), run %d time(s)\n", c->name, k, runs);
        assert_int_equal(k, 1);
        assert_int_equal(runs, 0);
        /* The dead letter carries the entry's own field. */
        assert_non_null(strstr(got, want));
    }
}

static void a_killed_process_entries_are_taken_over(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *c = &CASES[i];
        int n = ++serial;
        char id[64], got[1024];
        fresh();
        add_entry(c, n, id, sizeof id);
        ghost_takes(c, id);
        db_test_daemon_start(&D[0], env, args, 0);
        struct pend p = {c, id};
        assert_true(db_test_wait(not_pending, &p, 15000));
        /* The run's effects (a send, a POST) may land just after the acknowledgement for the
         * automatic answers' queued reply; the rest are done before it. */
        for (int t = 0; t < 100 && c->runs(n) == 0; t++) usleep(20000);
        int runs = c->runs(n), dead = dead_letters(c, id, got, sizeof got);
        db_test_daemon_stop_clean(&D[0], NULL);
        printf("# %s: a dead consumer's entry taken over and run %d time(s), dead letters %d\n",
               c->name, runs, dead);
        assert_int_equal(runs, 1);
        assert_int_equal(dead, 0);
    }
}

struct holder {
    const struct rcase *c;
    const char *id;
    char consumer[128];
    long long deliveries;
};

/* Who holds the entry now (empty when nobody). */
static void holder_of(struct holder *h)
{
    redisReply *r = cmd("XPENDING %s %s %s %s 1", h->c->stream, h->c->group, h->id, h->id);
    h->consumer[0] = '\0';
    h->deliveries = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        snprintf(h->consumer, sizeof h->consumer, "%s", r->element[0]->element[1]->str);
        h->deliveries = r->element[0]->element[3]->integer;
    }
    freeReplyObject(r);
}

static int held(void *arg)
{
    struct holder *h = arg;
    holder_of(h);
    return h->consumer[0] != '\0';
}

static void a_live_process_held_entries_are_never_taken(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *c = &CASES[i];
        if (!c->hold) {
            printf("# %s: holds an entry for one Redis round trip only; nothing to hold from "
                   "outside\n", c->name);
            continue;
        }
        int n = ++serial;
        char id[64], got[1024];
        fresh();
        for (int d = 0; d < 2; d++) db_test_daemon_start(&D[d], env, args, 0);
        c->hold();
        add_entry(c, n, id, sizeof id);
        struct holder h = {c, id, "", 0};
        assert_true(db_test_wait(held, &h, 10000));
        char first[128];
        snprintf(first, sizeof first, "%s", h.consumer);
        int changes = 0;
        long long max_deliveries = h.deliveries;
        /* While the first process waits for the slow answer, over three claim_idle_ms. */
        for (int t = 0; t < (HOLD_MS - 500) / 50; t++) {
            holder_of(&h);
            if (!h.consumer[0]) break;
            if (strcmp(h.consumer, first) != 0) changes++;
            if (h.deliveries > max_deliveries) max_deliveries = h.deliveries;
            usleep(50000);
        }
        struct pend p = {c, id};
        assert_true(db_test_wait(not_pending, &p, 15000));
        int runs = c->runs(n), dead = dead_letters(c, id, got, sizeof got);
        for (int d = 0; d < 2; d++) db_test_daemon_stop_clean(&D[d], NULL);
        printf("# %s: held %d ms by one live process: taken by another %d time(s), deliveries "
               "%lld, run %d time(s)\n", c->name, HOLD_MS, changes, max_deliveries, runs);
        assert_int_equal(changes, 0);
        assert_int_equal(max_deliveries, 1);
        assert_int_equal(runs, 1);
        assert_int_equal(dead, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_poison_entry_is_dead_lettered_once),
        cmocka_unit_test(a_killed_process_entries_are_taken_over),
        cmocka_unit_test(a_live_process_held_entries_are_never_taken),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
