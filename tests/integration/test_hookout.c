/* Helpdesk webhooks: the configuration check, then end to end: signed Telegram webhooks into the real daemon, events and
 * statuses out to a receiver (the fake platform server) as signed POSTs.  Each case gets its
 * own redis-server, receiver and daemon, so counts start at zero. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "daemon.h"
#include "deskbridge/connector.h"
#include "hookout/hookout.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define TG_SECRET "tg-hook-secret_77"
#define HOOK_SECRET "helpdesk-shared-secret-DoNotLog-42"
#define API_TOKEN "hook-api-token-0123456789"
#define TEXT "words-of-a-customer-not-for-logs"
#define GOOD_SECRET "0123456789abcdef-s3cr3t"

struct world {
    struct db_test_redis *redis;
    struct db_fake *rx; /* the helpdesk's receiver */
    struct db_fake *tg; /* the Bot API, for sends */
    struct db_test_daemon d, d2; /* d2: a second process sharing the endpoint */
    int running, running2;
    char conf[256];
    char env[512];
};

static struct world W;

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    W.redis = db_test_redis_start(NULL);
    W.rx = db_fake_start();
    W.tg = db_fake_start();
    assert_non_null(W.rx);
    assert_non_null(W.tg);
    db_fake_default(W.rx, 200, "{}");
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(W.conf, sizeof W.conf, "/tmp/deskbridge-hookout-%d.conf", (int)getpid());
    snprintf(W.env, sizeof W.env, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    return 0;
}

/* The outbound webhook's signing secret and the customers' words stay out of the log. */
static const char *const never_logged[] = {HOOK_SECRET, TEXT, NULL};

static int teardown(void **state)
{
    (void)state;
    if (W.running2) db_test_daemon_stop_clean(&W.d2, never_logged);
    if (W.running) db_test_daemon_stop_clean(&W.d, never_logged);
    unlink(W.conf);
    db_fake_stop(W.rx);
    db_fake_stop(W.tg);
    db_test_redis_stop(W.redis);
    return 0;
}

/* Writes the configuration (one Telegram account "one" plus hooks) and starts a daemon. */
static void start_with(struct db_test_daemon *d, const char *hooks)
{
    FILE *f = fopen(W.conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\napi_token = " API_TOKEN "\n"
            "[telegram one]\ntoken = 7000000001:AAhooktest\nwebhook_secret = " TG_SECRET "\n"
            "api_base = %s\n%s",
            db_fake_url(W.tg), hooks);
    fclose(f);
    const char *env[] = {W.env, NULL};
    const char *args[] = {"--config", W.conf, NULL};
    db_test_daemon_start(d, env, args, 0);
}

static void start(const char *hooks)
{
    start_with(&W.d, hooks);
    W.running = 1;
}

/* A hook section for the receiver's path, with extra lines. */
static const char *hook(const char *name, const char *path, const char *extra)
{
    static char buf[4][1024];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof buf[0],
             "[helpdesk_webhook %s]\nurl = %s%s\nsecret = " HOOK_SECRET
             "\nallow_private = true\n%s",
             name, db_fake_url(W.rx), path, extra ? extra : "");
    return b;
}

static void post_update(long long update_id, long long chat_id, int edit)
{
    char body[768];
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"%s\":{\"message_id\":%lld,\"date\":1795365000,%s"
             "\"chat\":{\"id\":%lld,\"type\":\"private\"},\"from\":{\"id\":%lld,"
             "\"is_bot\":false,\"first_name\":\"Olena\"},\"text\":\"%s %lld\"}}",
             update_id, edit ? "edited_message" : "message", update_id,
             edit ? "\"edit_date\":1795365100," : "", chat_id, chat_id, TEXT, update_id);
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " TG_SECRET, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/telegram/one", headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
}

/* Ids of the entries of P:<stream>, oldest first; returns how many (at most max). */
static size_t entry_ids(const char *stream, char ids[][64], size_t max)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:%s - +", stream);
    assert_non_null(r);
    size_t n = 0;
    for (; n < r->elements && n < max; n++)
        snprintf(ids[n], 64, "%s", r->element[n]->element[0]->str);
    freeReplyObject(r);
    return n;
}

static long long redis_int(const char *fmt, const char *a, const char *b)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), fmt, a, b);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                          r->element[0]->type == REDIS_REPLY_INTEGER
                      ? r->element[0]->integer
                      : -1;
    freeReplyObject(r);
    return v;
}

static long long pending(const char *stream, const char *endpoint)
{
    char group[128];
    snprintf(group, sizeof group, "deskbridge-hook-%s", endpoint);
    char key[64];
    snprintf(key, sizeof key, "deskbridge:%s", stream);
    /* XPENDING summary: [count, smallest, greatest, consumers] */
    return redis_int("XPENDING %s %s", key, group);
}

struct delivery {
    char path[128];
    char id[64];       /* X-Deskbridge-Delivery */
    char stream[16];
    char kind[32];     /* data.kind, or "status:<status>" for statuses */
    char text[128];
    int sig_ok;
};

/* Recomputes HMAC-SHA256(secret, "<timestamp>.<body>") independently of the daemon. */
static int signature_matches(const struct db_fake_request *q, const char *secret)
{
    const char *ts = db_headers_get(&q->headers, "X-Deskbridge-Timestamp");
    const char *sig = db_headers_get(&q->headers, "X-Deskbridge-Signature");
    if (!ts || !sig || strncmp(sig, "sha256=", 7) != 0) return 0;
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + 1 + q->body_len);
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, q->body, q->body_len);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tl + 1 + q->body_len, mac, &maclen);
    free(msg);
    char hex[65];
    for (unsigned i = 0; i < maclen; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return maclen == 32 && strcmp(sig + 7, hex) == 0;
}

/* Every recorded request, parsed and checked for the fixed parts of the contract. */
static size_t deliveries(struct delivery *out, size_t max)
{
    size_t n = 0;
    struct db_fake_request q;
    for (size_t i = 0; n < max && db_fake_get(W.rx, i, &q) == 0; i++, n++) {
        struct delivery *d = &out[n];
        memset(d, 0, sizeof *d);
        assert_string_equal(q.method, "POST");
        snprintf(d->path, sizeof d->path, "%s", q.path);
        const char *ct = db_headers_get(&q.headers, "Content-Type");
        assert_non_null(ct);
        assert_string_equal(ct, "application/json");
        const char *ts = db_headers_get(&q.headers, "X-Deskbridge-Timestamp");
        assert_non_null(ts);
        long long t = atoll(ts);
        assert_true(llabs(t - (long long)time(NULL)) < 120);
        d->sig_ok = signature_matches(&q, HOOK_SECRET);
        /* The check can fail: the same request does not verify under another secret. */
        assert_false(signature_matches(&q, HOOK_SECRET "x"));
        const char *del = db_headers_get(&q.headers, "X-Deskbridge-Delivery");
        assert_non_null(del);
        snprintf(d->id, sizeof d->id, "%s", del);
        json_error_t je;
        json_t *body = json_loadb(q.body, q.body_len, 0, &je);
        if (!body) fail_msg("delivery body is not JSON: %s", je.text);
        assert_string_equal(json_string_value(json_object_get(body, "entry_id")), d->id);
        snprintf(d->stream, sizeof d->stream, "%s",
                 json_string_value(json_object_get(body, "stream")));
        json_t *data = json_object_get(body, "data");
        assert_true(json_is_object(data));
        if (strcmp(d->stream, "status") == 0)
            snprintf(d->kind, sizeof d->kind, "status:%s",
                     json_string_value(json_object_get(data, "status")));
        else
            snprintf(d->kind, sizeof d->kind, "%s", json_string_value(json_object_get(data, "kind")));
        const char *text = json_string_value(json_object_get(data, "text"));
        snprintf(d->text, sizeof d->text, "%s", text ? text : "");
        json_decref(body);
        db_fake_request_clear(&q);
    }
    return n;
}

struct dead {
    char endpoint[64], stream[16], entry[64], reason[192];
};

static size_t dead_letters(struct dead *out, size_t max)
{
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:dead - +");
    assert_non_null(r);
    size_t n = 0;
    for (; n < r->elements && n < max; n++) {
        const redisReply *f = r->element[n]->element[1];
        memset(&out[n], 0, sizeof out[n]);
        for (size_t i = 0; i + 1 < f->elements; i += 2) {
            const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
            if (!strcmp(k, "endpoint")) snprintf(out[n].endpoint, 64, "%s", v);
            else if (!strcmp(k, "stream")) snprintf(out[n].stream, 16, "%s", v);
            else if (!strcmp(k, "entry")) snprintf(out[n].entry, 64, "%s", v);
            else if (!strcmp(k, "reason")) snprintf(out[n].reason, 192, "%s", v);
        }
    }
    freeReplyObject(r);
    return n;
}

static int dead_has_one(void *arg)
{
    (void)arg;
    struct dead d[2];
    return dead_letters(d, 2) >= 1;
}

/* ---- cases ---- */

static void events_arrive_once_signed_and_in_order(void **state)
{
    (void)state;
    /* A receiver that confirms with a large page: still a confirmation. */
    size_t big = 300 * 1024;
    char *page = malloc(big + 1);
    memset(page, 'x', big);
    page[0] = '"';
    page[big - 1] = '"';
    page[big] = '\0';
    db_fake_default(W.rx, 200, page);
    free(page);
    start(hook("desk", "/hook", NULL));
    post_update(1001, 501, 0);
    post_update(1002, 502, 0);
    post_update(1003, 501, 0);
    assert_int_equal(db_fake_wait(W.rx, "/hook", 3, 10000), 3);
    usleep(500 * 1000); /* anything extra would have come by now */
    struct delivery d[8];
    assert_int_equal(deliveries(d, 8), 3);
    char ids[8][64];
    assert_int_equal(entry_ids("events", ids, 8), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(d[i].sig_ok);
        assert_string_equal(d[i].path, "/hook");
        assert_string_equal(d[i].stream, "events");
        assert_string_equal(d[i].kind, "message");
        /* each entry exactly once */
        int seen = 0;
        for (size_t k = 0; k < 3; k++) seen += strcmp(d[k].id, ids[i]) == 0;
        assert_int_equal(seen, 1);
    }
    /* chat 501: 1001 before 1003 */
    int at1001 = -1, at1003 = -1;
    for (int i = 0; i < 3; i++) {
        if (strstr(d[i].text, " 1001")) at1001 = i;
        if (strstr(d[i].text, " 1003")) at1003 = i;
    }
    assert_true(at1001 >= 0 && at1003 > at1001);
    /* the customer's text reached the helpdesk */
    assert_non_null(strstr(d[0].text, TEXT));
    assert_int_equal(pending("events", "desk"), 0);
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 0);
}

/* The shell recipe of docs/helpdesk-webhooks.md, run on a real delivery. */
static void the_documented_openssl_check_verifies_a_delivery(void **state)
{
    (void)state;
    start(hook("desk", "/hook", NULL));
    post_update(1101, 511, 0);
    assert_int_equal(db_fake_wait(W.rx, "/hook", 1, 10000), 1);
    struct db_fake_request q;
    assert_int_equal(db_fake_get(W.rx, 0, &q), 0);
    char dir[] = "/tmp/hookout-sh-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], cmd[1024];
    snprintf(path, sizeof path, "%s/body.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(q.body, 1, q.body_len, f), q.body_len);
    fclose(f);
    const char *ts = db_headers_get(&q.headers, "X-Deskbridge-Timestamp");
    const char *sig = db_headers_get(&q.headers, "X-Deskbridge-Signature");
    assert_non_null(ts);
    assert_non_null(sig);
    const char *secrets[] = {HOOK_SECRET, "another-secret-of-16+"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "cd %s && ts=%s && sig=%s && SECRET='%s' && "
                 "want=$({ printf '%%s.' \"$ts\"; cat body.json; } | "
                 "openssl dgst -sha256 -hmac \"$SECRET\" -r | cut -d' ' -f1) && "
                 "[ \"$want\" = \"$sig\" ] && echo valid || echo forged",
                 dir, ts, sig + 7, secrets[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char out[32] = "";
        assert_non_null(fgets(out, sizeof out, p));
        pclose(p);
        assert_string_equal(out, i == 0 ? "valid\n" : "forged\n");
    }
    unlink(path);
    rmdir(dir);
    db_fake_request_clear(&q);
}

static void failures_are_retried_and_order_kept(void **state)
{
    (void)state;
    db_fake_rule(W.rx, "POST", "/hook", 2, 500, "{\"error\":\"busy\"}", 0, 0);
    start(hook("desk", "/hook", "retry_base_ms = 50\nretry_max_ms = 200\n"));
    post_update(2001, 77, 0);
    post_update(2002, 77, 0);
    post_update(2003, 77, 0);
    assert_int_equal(db_fake_wait(W.rx, "/hook", 5, 10000), 5);
    usleep(300 * 1000);
    struct delivery d[8];
    assert_int_equal(deliveries(d, 8), 5);
    char ids[4][64];
    assert_int_equal(entry_ids("events", ids, 4), 3);
    /* The first entry three times (500, 500, 200); the others waited behind it. */
    assert_string_equal(d[0].id, ids[0]);
    assert_string_equal(d[1].id, ids[0]);
    assert_string_equal(d[2].id, ids[0]);
    assert_string_equal(d[3].id, ids[1]);
    assert_string_equal(d[4].id, ids[2]);
    for (int i = 0; i < 5; i++) assert_true(d[i].sig_ok);
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 0);
    assert_int_equal(pending("events", "desk"), 0);
}

static void a_receiver_that_always_fails_gets_a_dead_letter(void **state)
{
    (void)state;
    db_fake_default(W.rx, 503, "{}");
    start(hook("desk", "/hook", "max_attempts = 3\nretry_base_ms = 20\nretry_max_ms = 50\n"));
    post_update(3001, 88, 0);
    assert_true(db_test_wait(dead_has_one, NULL, 10000));
    usleep(300 * 1000);
    assert_int_equal(db_fake_count(W.rx, "/hook"), 3);
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 1);
    char ids[2][64];
    assert_int_equal(entry_ids("events", ids, 2), 1);
    assert_string_equal(dl[0].endpoint, "desk");
    assert_string_equal(dl[0].stream, "events");
    assert_string_equal(dl[0].entry, ids[0]);
    if (!strstr(dl[0].reason, "gave up after 3 attempts") || !strstr(dl[0].reason, "HTTP 503"))
        fail_msg("reason: %s", dl[0].reason);
    assert_int_equal(pending("events", "desk"), 0);
}

static void a_private_address_is_refused_without_connecting(void **state)
{
    (void)state;
    char sec[512];
    snprintf(sec, sizeof sec,
             "[helpdesk_webhook intranet]\nurl = https://127.0.0.1:%d/hook\nsecret = " HOOK_SECRET
             "\n",
             db_fake_port(W.rx));
    start(sec);
    post_update(4001, 99, 0);
    assert_true(db_test_wait(dead_has_one, NULL, 10000));
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 1);
    assert_string_equal(dl[0].endpoint, "intranet");
    if (!strstr(dl[0].reason, "address not allowed") || !strstr(dl[0].reason, "allow_private"))
        fail_msg("reason: %s", dl[0].reason);
    assert_int_equal(db_fake_connections(W.rx), 0);
    assert_int_equal(db_fake_count(W.rx, NULL), 0);
    assert_int_equal(pending("events", "intranet"), 0);
}

struct want_n {
    const char *path;
    size_t n;
};

static int rx_has(void *arg)
{
    struct want_n *w = arg;
    return db_fake_count(W.rx, w->path) >= w->n;
}

static int sent_status_written(void *arg)
{
    (void)arg;
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:status - +");
    int found = 0;
    for (size_t i = 0; r && i < r->elements; i++)
        found |= strstr(r->element[i]->element[1]->element[1]->str, "\"status\":\"sent\"") != NULL;
    freeReplyObject(r);
    return found;
}

static void statuses_are_delivered_and_filters_respected(void **state)
{
    (void)state;
    char hooks[4096];
    snprintf(hooks, sizeof hooks, "%s%s%s", hook("all", "/all", NULL),
             hook("msgs", "/msgs", "events = message\n"),
             hook("stat", "/stat", "events = status\n"));
    start(hooks);
    post_update(5001, 42, 0);
    post_update(5002, 42, 1); /* an edit: only "all" wants it */
    const char *json = "{\"conversation\":\"telegram:one:42\",\"text\":\"agent reply\"}";
    const char *auth[] = {"Authorization: Bearer " API_TOKEN, "Content-Type: application/json",
                          NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/v1/messages", auth, json, strlen(json), &r);
    assert_true(r.status == 200 || r.status == 201 || r.status == 202);
    db_test_resp_clear(&r);
    /* the send reached the Bot API, so a "sent" status follows */
    assert_true(db_fake_wait(W.tg, "/sendMessage", 1, 10000) >= 1);

    assert_true(db_test_wait(sent_status_written, NULL, 10000));
    char sts[8][64];
    size_t nstatus = entry_ids("status", sts, 8);
    struct want_n all = {"/all", 2 + nstatus}, stat = {"/stat", nstatus}, msgs = {"/msgs", 1};
    assert_true(db_test_wait(rx_has, &all, 10000));
    assert_true(db_test_wait(rx_has, &stat, 10000));
    assert_true(db_test_wait(rx_has, &msgs, 10000));
    usleep(500 * 1000);

    struct delivery d[32];
    size_t n = deliveries(d, 32);
    size_t n_all = 0, n_msgs = 0, n_stat = 0, all_status = 0, all_edit = 0, sent = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(d[i].sig_ok);
        if (!strcmp(d[i].path, "/all")) {
            n_all++;
            all_status += !strcmp(d[i].stream, "status");
            all_edit += !strcmp(d[i].kind, "edit");
        } else if (!strcmp(d[i].path, "/msgs")) {
            n_msgs++;
            assert_string_equal(d[i].stream, "events");
            assert_string_equal(d[i].kind, "message");
        } else {
            assert_string_equal(d[i].path, "/stat");
            n_stat++;
            assert_string_equal(d[i].stream, "status");
            sent += !strcmp(d[i].kind, "status:sent");
        }
    }
    assert_int_equal(n_all, 2 + nstatus);
    assert_int_equal(all_status, nstatus);
    assert_int_equal(all_edit, 1);
    assert_int_equal(n_msgs, 1);
    assert_int_equal(n_stat, nstatus);
    assert_true(sent >= 1);
    /* Entries an endpoint does not want are acknowledged, not left pending. */
    const char *eps[] = {"all", "msgs", "stat"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pending("events", eps[i]), 0);
        assert_int_equal(pending("status", eps[i]), 0);
    }
}

static void a_killed_daemon_leaves_deliveries_to_the_next(void **state)
{
    (void)state;
    db_fake_default(W.rx, 503, "{}");
    const char *sec = hook("desk", "/hook",
                           "retry_base_ms = 300\nretry_max_ms = 300\nclaim_idle_ms = 600\n");
    start(sec);
    post_update(6001, 61, 0);
    post_update(6002, 61, 0);
    post_update(6003, 62, 0);
    assert_true(db_fake_wait(W.rx, "/hook", 4, 10000) >= 4); /* failing and retrying */
    assert_int_equal(pending("events", "desk"), 3);
    int st = db_test_daemon_stop(&W.d, SIGKILL);
    assert_true(WIFSIGNALED(st));
    W.running = 0;
    db_test_daemon_assert_log_clean(&W.d, never_logged);
    unlink(W.d.log_path);

    db_fake_reset(W.rx);
    db_fake_default(W.rx, 200, "{}");
    start(sec);
    assert_int_equal(db_fake_wait(W.rx, "/hook", 3, 15000), 3);
    usleep(800 * 1000); /* longer than claim_idle_ms: nothing is taken and sent twice */
    struct delivery d[8];
    assert_int_equal(deliveries(d, 8), 3);
    char ids[4][64];
    assert_int_equal(entry_ids("events", ids, 4), 3);
    int at[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(d[i].id, ids[k])) at[k] = i;
    assert_true(at[0] >= 0 && at[1] >= 0 && at[2] >= 0);
    assert_true(at[0] < at[1]); /* chat 61 in order after the takeover */
    for (int i = 0; i < 3; i++) assert_true(d[i].sig_ok);
    assert_int_equal(pending("events", "desk"), 0);
}

/* ---- the [helpdesk_webhook NAME] check (no daemon needed) ---- */

/* Builds a section from "key=value" strings (line i+2 of hooks.conf) and checks it. */
static int check(struct db_err *e, const char *const *kvs)
{
    static struct db_conf_kv kv[16];
    static char keys[16][64];
    size_t n = 0;
    for (; kvs[n]; n++) {
        const char *eq = strchr(kvs[n], '=');
        assert_non_null(eq);
        snprintf(keys[n], sizeof keys[n], "%.*s", (int)(eq - kvs[n]), kvs[n]);
        kv[n] = (struct db_conf_kv){keys[n], eq + 1, "hooks.conf", (int)n + 2};
    }
    struct db_conf_section sec = {"helpdesk_webhook", "desk", kv, n};
    memset(e, 0, sizeof *e);
    return db_hookout_conf_check(&sec, e);
}

static void expect_error(const char *const *kvs, const char *key, const char *needle)
{
    struct db_err e;
    assert_int_equal(check(&e, kvs), DB_ECONFIG);
    if (!strstr(e.msg, key) || !strstr(e.msg, needle))
        fail_msg("error '%s' should name '%s' and say '%s'", e.msg, key, needle);
    assert_null(strstr(e.msg, GOOD_SECRET));
}

static void minimal_https_endpoint_is_accepted(void **state)
{
    (void)state;
    struct db_err e;
    const char *kvs[] = {"url=https://desk.example.com/hooks/deskbridge",
                         "secret=" GOOD_SECRET, NULL};
    assert_int_equal(check(&e, kvs), DB_OK);
}

static void every_key_is_accepted_with_good_values(void **state)
{
    (void)state;
    struct db_err e;
    const char *kvs[] = {"url=http://10.0.0.5:8080/in", "secret=" GOOD_SECRET,
                         "events=message, receipt,status", "max_attempts=3",
                         "retry_base_ms=100", "retry_max_ms=2000", "timeout_ms=5000",
                         "allow_private=true", "claim_idle_ms=500", "concurrency=4", NULL};
    assert_int_equal(check(&e, kvs), DB_OK);
}

static void url_is_required_and_checked(void **state)
{
    (void)state;
    const char *none[] = {"secret=" GOOD_SECRET, NULL};
    expect_error(none, "url", "is required");
    const char *ftp[] = {"url=ftp://desk.example.com/", "secret=" GOOD_SECRET, NULL};
    expect_error(ftp, "hooks.conf:2: url", "http:// or https://");
    const char *nohost[] = {"url=https:///path", "secret=" GOOD_SECRET, NULL};
    expect_error(nohost, "url", "no host");
    const char *blank[] = {"url=https://desk.example.com/a b", "secret=" GOOD_SECRET, NULL};
    expect_error(blank, "url", "blank");
    /* The guarded client speaks https only: plain http cannot work without allow_private. */
    const char *plain[] = {"url=http://desk.example.com/", "secret=" GOOD_SECRET, NULL};
    expect_error(plain, "url", "allow_private");
}

static void secret_is_required_and_long_enough(void **state)
{
    (void)state;
    const char *none[] = {"url=https://desk.example.com/", NULL};
    expect_error(none, "secret", "is required");
    struct db_err e;
    /* 15 characters: one too few */
    const char *fifteen[] = {"url=https://desk.example.com/", "secret=123456789012345", NULL};
    assert_int_equal(check(&e, fifteen), DB_ECONFIG);
    assert_non_null(strstr(e.msg, "hooks.conf:3: secret"));
    assert_null(strstr(e.msg, "123456789012345"));
    const char *sixteen[] = {"url=https://desk.example.com/", "secret=1234567890123456", NULL};
    assert_int_equal(check(&e, sixteen), DB_OK);
}

static void events_filter_names_known_kinds_only(void **state)
{
    (void)state;
    const char *bad[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                         "events=message,typing", NULL};
    expect_error(bad, "hooks.conf:4: events", "'typing'");
    const char *empty[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET, "events=", NULL};
    expect_error(empty, "events", "names no kind");
    const char *commas[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET, "events=,,",
                            NULL};
    expect_error(commas, "events", "");
    struct db_err e;
    const char *all[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                         "events=message,edit,callback,reaction,receipt,membership,status",
                         NULL};
    assert_int_equal(check(&e, all), DB_OK);
}

static void numbers_are_bounded(void **state)
{
    (void)state;
    const char *zero[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                          "max_attempts=0", NULL};
    expect_error(zero, "max_attempts", "from 1 to 1000");
    const char *junk[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                          "timeout_ms=10s", NULL};
    expect_error(junk, "timeout_ms", "got '10s'");
    const char *order[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                           "retry_base_ms=5000", "retry_max_ms=1000", NULL};
    expect_error(order, "hooks.conf:4: retry_base_ms", "larger than retry_max_ms");
    const char *conc[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                          "concurrency=1000", NULL};
    expect_error(conc, "concurrency", "from 1 to 256");
}

static void unknown_keys_and_bad_booleans_are_refused(void **state)
{
    (void)state;
    const char *unknown[] = {"url=https://d.example.com/", "secret=" GOOD_SECRET,
                             "retries=3", NULL};
    expect_error(unknown, "retries", "");
    const char *boolean[] = {"url=http://127.0.0.1:9/", "secret=" GOOD_SECRET,
                             "allow_private=maybe", NULL};
    expect_error(boolean, "allow_private", "true or false");
}

static void sigterm_finishes_the_delivery_in_flight_and_leaves_the_rest_pending(void **state)
{
    (void)state;
    /* The first request is answered 200 after 1.5 s; everything else fails and would be
     * retried only after 5 s. */
    db_fake_rule(W.rx, "POST", "/hook", 1, 200, "{}", 1500, 0);
    db_fake_default(W.rx, 503, "{}");
    start(hook("desk", "/hook", "retry_base_ms = 5000\nretry_max_ms = 5000\n"));
    post_update(7001, 71, 0);
    post_update(7002, 72, 0);
    assert_int_equal(db_fake_wait(W.rx, "/hook", 2, 10000), 2);
    long long t0 = db_test_now_ms();
    int st = db_test_daemon_stop(&W.d, SIGTERM);
    W.running = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* It waited for the slow answer, not for the retry. */
    assert_true(db_test_now_ms() - t0 < 4500);
    db_test_daemon_assert_log_clean(&W.d, never_logged);
    unlink(W.d.log_path);
    assert_int_equal(db_fake_count(W.rx, "/hook"), 2);
    assert_int_equal(pending("events", "desk"), 1);
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 0);
}

/* Telegram's text of update u: "<TEXT> <u>"; the number back, or -1. */
static long long update_of(const char *text)
{
    const char *sp = strrchr(text, ' ');
    return sp ? atoll(sp + 1) : -1;
}

static void two_processes_keep_each_conversation_in_order(void **state)
{
    (void)state;
    /* Slow answers, so that both processes hold entries of the same conversations at once;
     * the query says which process sent a request.  One process is answered slower than the
     * other, so without a check across processes the faster one overtakes it every time
     * instead of only when the entries happen to be spread unevenly. */
    db_fake_rule(W.rx, "POST", "via=a", -1, 200, "{}", 250, 0);
    db_fake_rule(W.rx, "POST", "via=b", -1, 200, "{}", 100, 0);
    start(hook("desk", "/hook?via=a", NULL));
    /* The first process has read its configuration: the second gets its own URL. */
    start_with(&W.d2, hook("desk", "/hook?via=b", NULL));
    W.running2 = 1;
    usleep(300 * 1000); /* both read the group before the first entry is written */
    enum { CHATS = 5, PER_CHAT = 8, N = CHATS * PER_CHAT };
    for (int k = 0; k < PER_CHAT; k++)
        for (int c = 0; c < CHATS; c++) post_update(8000 + k * CHATS + c, 900 + c, 0);
    assert_int_equal(db_fake_wait(W.rx, "/hook", N, 30000), N);
    usleep(600 * 1000); /* a duplicate or a late one would have come by now */
    struct delivery d[N + 8];
    assert_int_equal(deliveries(d, N + 8), N);
    char ids[N + 1][64];
    assert_int_equal(entry_ids("events", ids, N + 1), N);
    size_t via_a = 0, via_b = 0;
    long long last[CHATS];
    int count[CHATS] = {0};
    for (int c = 0; c < CHATS; c++) last[c] = -1;
    for (size_t i = 0; i < N; i++) {
        assert_true(d[i].sig_ok);
        via_a += strstr(d[i].path, "via=a") != NULL;
        via_b += strstr(d[i].path, "via=b") != NULL;
        int seen = 0;
        for (size_t k = 0; k < N; k++) seen += strcmp(d[k].id, ids[i]) == 0;
        if (seen != 1) fail_msg("entry %s delivered %d times", ids[i], seen);
        long long u = update_of(d[i].text);
        assert_true(u >= 8000 && u < 8000 + N);
        int c = (int)((u - 8000) % CHATS);
        if (u <= last[c]) {
            for (size_t k = 0; k < N; k++)
                print_message("  %zu: update %lld %s\n", k, update_of(d[k].text), d[k].path);
            fail_msg("conversation %d: update %lld arrived after %lld", c, u, last[c]);
        }
        last[c] = u;
        count[c]++;
    }
    for (int c = 0; c < CHATS; c++) assert_int_equal(count[c], PER_CHAT);
    /* Both processes took part, or the case proves nothing about two of them. */
    if (via_a == 0 || via_b == 0) fail_msg("deliveries: %zu via a, %zu via b", via_a, via_b);
    assert_int_equal(pending("events", "desk"), 0);
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 0);
}

static int nothing_pending(void *arg)
{
    (void)arg;
    return pending("events", "desk") == 0;
}

/* One process holds entries it cannot deliver and dies; the other waits for them instead of
 * overtaking, takes them over after claim_idle_ms and delivers the whole conversation in
 * order. */
static void a_takeover_from_a_dead_process_keeps_the_order(void **state)
{
    (void)state;
    db_fake_rule(W.rx, "POST", "via=a", -1, 503, "{}", 0, 0);
    db_fake_rule(W.rx, "POST", "via=b", -1, 200, "{}", 50, 0);
    const char *extra = "retry_base_ms = 5000\nretry_max_ms = 5000\nclaim_idle_ms = 600\n";
    start(hook("desk", "/hook?via=a", extra));
    start_with(&W.d2, hook("desk", "/hook?via=b", extra));
    W.running2 = 1;
    usleep(300 * 1000);
    enum { N = 8 };
    for (int k = 0; k < N; k++) post_update(9000 + k, 950, 0);
    /* The first process got some of the entries and failed on one. */
    assert_true(db_fake_wait(W.rx, "via=a", 1, 10000) >= 1);
    usleep(300 * 1000);
    /* Not all of the conversation got through: the other process waits for the failed one. */
    assert_true(db_fake_count(W.rx, "via=b") < N);
    int st = db_test_daemon_stop(&W.d, SIGKILL);
    assert_true(WIFSIGNALED(st));
    W.running = 0;
    db_test_daemon_assert_log_clean(&W.d, never_logged);
    unlink(W.d.log_path);

    assert_true(db_test_wait(nothing_pending, NULL, 15000));
    usleep(300 * 1000);
    struct delivery d[4 * N];
    size_t n = deliveries(d, 4 * N);
    long long last = -1;
    int count[N] = {0};
    for (size_t i = 0; i < n; i++) {
        if (!strstr(d[i].path, "via=b")) continue; /* refused: not delivered */
        long long u = update_of(d[i].text);
        assert_true(u >= 9000 && u < 9000 + N);
        count[u - 9000]++;
        if (u <= last) {
            for (size_t k = 0; k < n; k++)
                print_message("  %zu: update %lld %s\n", k, update_of(d[k].text), d[k].path);
            fail_msg("update %lld confirmed after %lld", u, last);
        }
        last = u;
    }
    for (int k = 0; k < N; k++) assert_int_equal(count[k], 1);
    struct dead dl[2];
    assert_int_equal(dead_letters(dl, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal_https_endpoint_is_accepted),
        cmocka_unit_test(every_key_is_accepted_with_good_values),
        cmocka_unit_test(url_is_required_and_checked),
        cmocka_unit_test(secret_is_required_and_long_enough),
        cmocka_unit_test(events_filter_names_known_kinds_only),
        cmocka_unit_test(numbers_are_bounded),
        cmocka_unit_test(unknown_keys_and_bad_booleans_are_refused),
        cmocka_unit_test_setup_teardown(events_arrive_once_signed_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(the_documented_openssl_check_verifies_a_delivery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failures_are_retried_and_order_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(a_receiver_that_always_fails_gets_a_dead_letter, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_private_address_is_refused_without_connecting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(statuses_are_delivered_and_filters_respected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_killed_daemon_leaves_deliveries_to_the_next, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            sigterm_finishes_the_delivery_in_flight_and_leaves_the_rest_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(two_processes_keep_each_conversation_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_takeover_from_a_dead_process_keeps_the_order, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
