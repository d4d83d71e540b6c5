/* The dispatcher end to end through the real binary and a real redis-server: Telegram
 * webhooks in, assignment, the agent inbox (stream and SSE), the reply out to a fake Bot API;
 * then two daemons on one Redis racing on the same conversations, and a dispatcher that dies
 * with entries pending. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define TOKEN "7000000001:AAtesttokenDoNotLog_abcdefghijkl"
#define SECRET "hook-secret_123"
#define API_TOKEN "api-token-0123456789abcdef"
#define CONV(chat) "telegram:7000000001:" #chat

struct world {
    struct db_test_redis *redis;
    struct db_fake *tg;
    struct db_test_daemon a, b;
    char env[6][512];
    char conf[256];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN,
                             "Content-Type: application/json", NULL};

static void start_daemon(struct db_test_daemon *d)
{
    snprintf(W.env[0], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[1], sizeof W.env[1], "TELEGRAM_BOT_TOKEN=%s", TOKEN);
    snprintf(W.env[2], sizeof W.env[2], "TELEGRAM_API_BASE=%s", db_fake_url(W.tg));
    snprintf(W.env[3], sizeof W.env[3], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[4], sizeof W.env[4], "TELEGRAM_WEBHOOK_SECRET=%s", SECRET);
    const char *env[] = {W.env[0], W.env[1], W.env[2], W.env[3], W.env[4], NULL};
    const char *args[] = {"-c", W.conf, NULL};
    db_test_daemon_start(d, env, args, 0);
}

static int setup(void **state)
{
    (void)state;
    W.redis = db_test_redis_start(NULL);
    W.tg = db_fake_start();
    assert_non_null(W.tg);
    db_fake_default(W.tg, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(W.conf, sizeof W.conf, "%s/dispatch.conf", db_test_redis_dir(W.redis));
    FILE *f = fopen(W.conf, "w");
    assert_non_null(f);
    fputs("[dispatch]\noffline_grace_ms = 400\nclaim_idle_ms = 600\nsweep_ms = 100\n"
          "max_deliveries = 50\npriority_keyword = urgent,срочно:urgent\n", f);
    fclose(f);
    start_daemon(&W.a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const never[] = {"AAtesttokenDoNotLog", "secret-words", NULL};
    db_test_daemon_stop_clean(&W.a, never);
    /* The second gateway's log is held to the same rules as the first's. */
    if (W.b.pid > 0 && db_test_daemon_alive(&W.b)) {
        db_test_daemon_stop_clean(&W.b, never);
    } else if (W.b.pid > 0) {
        db_test_daemon_assert_log_clean(&W.b, never);
        unlink(W.b.log_path);
    }
    db_fake_stop(W.tg);
    db_test_redis_stop(W.redis);
    return 0;
}

/* ---- helpers ---- */

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(W.redis), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static int api(int port, const char *method, const char *path, const char *body, json_t **out)
{
    struct db_test_resp r;
    db_test_http(port, method, path, auth, body, body ? strlen(body) : 0, &r);
    int status = r.status;
    if (out) *out = json_loads(r.body ? r.body : "", 0, NULL);
    db_test_resp_clear(&r);
    return status;
}

static void agent(const char *id, const char *json, const char *presence)
{
    char path[128], body[64];
    snprintf(path, sizeof path, "/v1/agents/%s", id);
    assert_int_equal(api(W.a.port, "PUT", path, json, NULL), 200);
    snprintf(path, sizeof path, "/v1/agents/%s/presence", id);
    snprintf(body, sizeof body, "{\"presence\":\"%s\"}", presence);
    assert_int_equal(api(W.a.port, "POST", path, body, NULL), 200);
}

static void post_update(int port, long long update_id, long long chat, const char *lang,
                        const char *text)
{
    char *b = NULL;
    assert_true(asprintf(&b,
                         "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
                         "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"Olena\"},"
                         "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"Olena\","
                         "\"language_code\":\"%s\"},\"text\":\"%s\"}}",
                         update_id, update_id, chat, chat, lang, text) > 0);
    const char *headers[] = {"Content-Type: application/json",
                             "X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    struct db_test_resp r;
    db_test_http(port, "POST", "/webhooks/telegram/7000000001", headers, b, strlen(b), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    free(b);
}

/* The conversation as GET /v1/conversations/{id} shows it (new reference), NULL on 404. */
static json_t *conversation(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/conversations/%s", id);
    json_t *o = NULL;
    int st = api(W.a.port, "GET", path, NULL, &o);
    if (st == 404) {
        json_decref(o);
        return NULL;
    }
    assert_int_equal(st, 200);
    return o;
}

struct want {
    const char *conv, *state, *agent;
};

static int conv_is(void *arg)
{
    const struct want *w = arg;
    json_t *o = conversation(w->conv);
    int ok = o && strcmp(json_string_value(json_object_get(o, "state")), w->state) == 0 &&
             (!w->agent || (json_is_string(json_object_get(o, "agent")) &&
                            strcmp(json_string_value(json_object_get(o, "agent")), w->agent) == 0));
    json_decref(o);
    return ok;
}

static void wait_conv(const char *conv, const char *state, const char *who)
{
    struct want w = {conv, state, who};
    if (!db_test_wait(conv_is, &w, 8000)) {
        json_t *o = conversation(conv);
        char *s = o ? json_dumps(o, 0) : NULL;
        fail_msg("%s: want %s/%s, have %s", conv, state, who ? who : "-", s ? s : "nothing");
    }
}

/* Types of the entries of an agent's inbox for one conversation, joined with ','. */
static void inbox_types(const char *agent_id, const char *conv, char *out, size_t n)
{
    redisReply *r = cmd("XRANGE deskbridge:agent:{%s} - +", agent_id);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        const char *type = NULL, *c = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "type") == 0) type = f->element[k + 1]->str;
            if (strcmp(f->element[k]->str, "conversation") == 0) c = f->element[k + 1]->str;
        }
        if (c && strcmp(c, conv) == 0)
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? "," : "", type);
    }
    freeReplyObject(r);
}

/* The first customer message of conv as stored three times: the P:events entry, the history
 * item and the agent's inbox entry, byte for byte (the dispatcher builds the history item and
 * the script cuts the inbox's copy out of it). */
static void copies_are_verbatim(const char *agent_id, const char *conv)
{
    redisReply *ev = cmd("XRANGE deskbridge:events - +");
    const char *entry = NULL, *raw = NULL;
    for (size_t i = 0; !raw && i < ev->elements; i++) {
        redisReply *f = ev->element[i]->element[1];
        if (f->elements == 2 && strstr(f->element[1]->str, conv) &&
            strstr(f->element[1]->str, "\"kind\":\"message\""))
            entry = ev->element[i]->element[0]->str, raw = f->element[1]->str;
    }
    assert_non_null(raw);
    char want[8192];
    snprintf(want, sizeof want, "{\"dir\":\"in\",\"entry\":\"%s\",\"event\":%s}", entry, raw);
    redisReply *it = cmd("LINDEX deskbridge:conv:{%s}:items 0", conv);
    assert_int_equal(it->type, REDIS_REPLY_STRING);
    assert_string_equal(it->str, want);
    freeReplyObject(it);
    redisReply *in = cmd("XRANGE deskbridge:agent:{%s} - +", agent_id);
    int seen = 0;
    for (size_t i = 0; i < in->elements; i++) {
        redisReply *f = in->element[i]->element[1];
        if (f->elements == 6 && strcmp(f->element[1]->str, "message") == 0 &&
            strcmp(f->element[3]->str, conv) == 0) {
            assert_string_equal(f->element[5]->str, raw);
            seen++;
        }
    }
    assert_int_equal(seen, 1);
    freeReplyObject(in);
    freeReplyObject(ev);
}

/* Reads an SSE response for up to ms or until n events arrived; malloc'd text. */
static char *sse_read(const char *agent_id, const char *last_id, int n, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.a.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET /v1/agents/%s/stream HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                       API_TOKEN "\r\n%s%s%s\r\n",
                       agent_id, last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
                       last_id ? "\r\n" : "");
    assert_int_equal(write(fd, req, (size_t)len), len);
    size_t cap = 1 << 16, have = 0;
    char *buf = calloc(1, cap);
    long long end = db_test_now_ms() + ms;
    while (db_test_now_ms() < end && have + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t got = read(fd, buf + have, cap - have - 1);
        if (got <= 0) break;
        have += (size_t)got;
        int events = 0;
        for (char *s = buf; (s = strstr(s, "\nid: ")); s++) events++;
        if (events >= n) break;
    }
    close(fd);
    return buf;
}

/* ---- one daemon ---- */

static void webhook_to_agent_to_reply(void **state)
{
    (void)state;
    agent("alice", "{\"name\":\"Alice\",\"capacity\":2,\"languages\":[\"uk\"]}", "online");
    agent("bob", "{\"name\":\"Bob\",\"capacity\":2,\"languages\":[\"en\"]}", "online");

    post_update(W.a.port, 100, 1001, "uk", "Привіт secret-words");
    wait_conv(CONV(1001), "assigned", "alice");
    json_t *c = conversation(CONV(1001));
    json_t *cust = json_object_get(c, "customer");
    assert_string_equal(json_string_value(json_object_get(cust, "name")), "Olena");
    assert_string_equal(json_string_value(json_object_get(cust, "language")), "uk");
    assert_int_equal(json_integer_value(json_object_get(c, "unread")), 1);
    assert_string_equal(json_string_value(json_object_get(c, "priority")), "normal");
    json_decref(c);
    char types[512];
    inbox_types("alice", CONV(1001), types, sizeof types);
    assert_string_equal(types, "assigned,message");
    copies_are_verbatim("alice", CONV(1001));

    /* The same inbox as Server-Sent Events, and resumed after the first one. */
    char *sse = sse_read("alice", NULL, 2, 3000);
    assert_non_null(strstr(sse, "text/event-stream"));
    assert_non_null(strstr(sse, "event: assigned\n"));
    assert_non_null(strstr(sse, "event: message\n"));
    assert_true(strstr(sse, "event: assigned\n") < strstr(sse, "event: message\n"));
    char first[64] = "";
    assert_int_equal(sscanf(strstr(sse, "\nid: ") + 5, "%63s", first), 1);
    free(sse);
    sse = sse_read("alice", first, 1, 1500);
    assert_null(strstr(sse, "event: assigned\n"));
    assert_non_null(strstr(sse, "event: message\n"));
    free(sse);

    /* The agent answers: out to the platform, first response time recorded. */
    size_t sent = db_fake_count(W.tg, "/sendMessage");
    const char *msg = "{\"conversation\":\"" CONV(1001) "\",\"text\":\"Добрий день\",\"agent\":\"alice\"}";
    json_t *r = NULL;
    assert_int_equal(api(W.a.port, "POST", "/v1/messages", msg, &r), 202);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r, "id")));
    json_decref(r);
    assert_true(db_fake_wait(W.tg, "/sendMessage", sent + 1, 5000) >= sent + 1);
    usleep(300 * 1000);
    c = conversation(CONV(1001));
    assert_true(json_integer_value(json_object_get(c, "first_response_at")) >=
                json_integer_value(json_object_get(c, "first_message_at")));
    assert_int_equal(json_integer_value(json_object_get(c, "unread")), 0);
    json_t *msgs = json_object_get(c, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "dir")), "in");
    json_t *out = json_array_get(msgs, 1);
    assert_string_equal(json_string_value(json_object_get(out, "dir")), "out");
    assert_string_equal(json_string_value(json_object_get(out, "id")), id);
    assert_string_equal(json_string_value(json_object_get(out, "status")), "sent");
    json_decref(c);
    inbox_types("alice", CONV(1001), types, sizeof types);
    assert_string_equal(types, "assigned,message,reply");

    json_t *st = NULL;
    assert_int_equal(api(W.a.port, "GET", "/v1/stats", NULL, &st), 200);
    assert_int_equal(json_integer_value(json_object_get(st, "agents_online")), 2);
    assert_int_equal(json_integer_value(json_object_get(st, "assigned")), 1);
    json_t *frt = json_object_get(json_object_get(st, "first_response"), "hour");
    assert_int_equal(json_integer_value(json_object_get(frt, "count")), 1);
    assert_true(json_is_integer(json_object_get(frt, "median_ms")));
    /* Assigned at once (alice was free): one queue-wait sample of 0, as docs/dispatcher.md
     * says, not none. */
    json_t *qw = json_object_get(json_object_get(st, "queue_wait"), "hour");
    assert_int_equal(json_integer_value(json_object_get(qw, "count")), 1);
    assert_true(json_is_integer(json_object_get(qw, "median_ms")));
    assert_int_equal(json_integer_value(json_object_get(qw, "median_ms")), 0);
    json_decref(st);
}

/* The last inbox entry of an agent for conv, as "name=value;..." with the conversation, the
 * entry id and the time left out, so two conversations' entries compare. */
static void last_inbox_entry(const char *agent_id, const char *conv, char *out, size_t n)
{
    redisReply *r = cmd("XRANGE deskbridge:agent:{%s} - +", agent_id);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        int mine = 0;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, "conversation") == 0 &&
                strcmp(f->element[k + 1]->str, conv) == 0)
                mine = 1;
        if (!mine) continue;
        out[0] = '\0';
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            snprintf(out + strlen(out), n - strlen(out), "%s;", f->element[k]->str);
    }
    freeReplyObject(r);
}

static long long stats_count(const char *what)
{
    json_t *st = NULL;
    assert_int_equal(api(W.a.port, "GET", "/v1/stats", NULL, &st), 200);
    long long n = json_integer_value(
        json_object_get(json_object_get(json_object_get(st, what), "hour"), "count"));
    json_decref(st);
    return n;
}

static int has_two_messages(void *arg)
{
    json_t *c = conversation(arg);
    int ok = c && json_array_size(json_object_get(c, "messages")) == 2;
    json_decref(c);
    return ok;
}

/* A helpdesk that XADDs its agent's reply to P:outbox gets what POST /v1/messages gets: the
 * reply in the conversation's history, in the agent's inbox, and as the first response. */
static void a_reply_from_the_outbox_is_first_class(void **state)
{
    (void)state;
    /* Room to spare: coming online, she also takes what waits in the queue. */
    agent("dora", "{\"name\":\"Dora\",\"capacity\":100,\"languages\":[\"pl\"]}", "online");
    post_update(W.a.port, 300, 1101, "pl", "Dzien dobry");
    post_update(W.a.port, 301, 1102, "pl", "Dzien dobry");
    wait_conv(CONV(1101), "assigned", "dora");
    wait_conv(CONV(1102), "assigned", "dora");
    long long frt0 = stats_count("first_response");

    /* One through the API, one XADDed by a helpdesk, both naming the agent. */
    const char *msg = "{\"conversation\":\"" CONV(1101) "\",\"text\":\"Witam\",\"agent\":\"dora\"}";
    json_t *r = NULL;
    assert_int_equal(api(W.a.port, "POST", "/v1/messages", msg, &r), 202);
    char api_id[64];
    snprintf(api_id, sizeof api_id, "%s", json_string_value(json_object_get(r, "id")));
    json_decref(r);
    redisReply *x = cmd("XADD deskbridge:outbox * command %s",
                        "{\"conversation\":\"" CONV(1102) "\",\"text\":\"Witam\",\"agent\":\"dora\"}");
    assert_int_equal(x->type, REDIS_REPLY_STRING);
    char outbox_id[80];
    snprintf(outbox_id, sizeof outbox_id, "o-%s", x->str);
    freeReplyObject(x);

    assert_true(db_test_wait(has_two_messages, CONV(1101), 8000));
    assert_true(db_test_wait(has_two_messages, CONV(1102), 8000));
    const char *ids[2] = {api_id, outbox_id}, *convs[2] = {CONV(1101), CONV(1102)};
    char keys[2][256], inbox[2][256], types[2][128];
    for (int i = 0; i < 2; i++) {
        json_t *c = conversation(convs[i]);
        assert_true(json_integer_value(json_object_get(c, "first_response_at")) >=
                    json_integer_value(json_object_get(c, "first_message_at")));
        assert_int_equal(json_integer_value(json_object_get(c, "unread")), 0);
        json_t *out = json_array_get(json_object_get(c, "messages"), 1);
        assert_string_equal(json_string_value(json_object_get(out, "dir")), "out");
        assert_string_equal(json_string_value(json_object_get(out, "id")), ids[i]);
        assert_string_equal(json_string_value(json_object_get(out, "agent")), "dora");
        keys[i][0] = '\0';
        const char *k;
        json_t *v;
        json_object_foreach(out, k, v) snprintf(keys[i] + strlen(keys[i]),
                                                sizeof keys[i] - strlen(keys[i]), "%s;", k);
        json_decref(c);
        inbox_types("dora", convs[i], types[i], sizeof types[i]);
        last_inbox_entry("dora", convs[i], inbox[i], sizeof inbox[i]);
    }
    printf("# reply via the API: %s | inbox %s\n# reply via the outbox: %s | inbox %s\n",
           keys[0], types[0], keys[1], types[1]);
    assert_string_equal(keys[0], keys[1]);
    assert_string_equal(types[0], "assigned,message,reply");
    assert_string_equal(types[1], "assigned,message,reply");
    assert_string_equal(inbox[0], inbox[1]);
    assert_int_equal(stats_count("first_response"), frt0 + 2);
}

static void capacity_queue_close_and_offline_grace(void **state)
{
    (void)state;
    /* alice (uk, capacity 2) has 1001; bob speaks only en. */
    post_update(W.a.port, 101, 1002, "uk", "two");
    wait_conv(CONV(1002), "assigned", "alice");
    post_update(W.a.port, 102, 1003, "uk", "three");
    wait_conv(CONV(1003), "queued", NULL);
    post_update(W.a.port, 103, 1004, "uk", "this is URGENT");
    wait_conv(CONV(1004), "queued", NULL);
    json_t *c = conversation(CONV(1004));
    assert_string_equal(json_string_value(json_object_get(c, "priority")), "urgent");
    json_decref(c);
    post_update(W.a.port, 104, 1005, "en", "hello");
    wait_conv(CONV(1005), "assigned", "bob");

    /* Closing frees capacity: the urgent one, though newer, goes first. */
    assert_int_equal(api(W.a.port, "POST", "/v1/conversations/" CONV(1001) "/close", "", NULL), 200);
    wait_conv(CONV(1004), "assigned", "alice");
    wait_conv(CONV(1003), "queued", NULL);
    wait_conv(CONV(1001), "closed", NULL);

    /* A transfer needs room; manual assignment over capacity is refused. */
    assert_int_equal(api(W.a.port, "POST", "/v1/conversations/" CONV(1003) "/assign",
                         "{\"agent\":\"alice\"}", NULL), 409);
    assert_int_equal(api(W.a.port, "POST", "/v1/conversations/" CONV(1002) "/transfer",
                         "{\"agent\":\"bob\"}", NULL), 200);
    wait_conv(CONV(1002), "assigned", "bob");
    wait_conv(CONV(1003), "assigned", "alice"); /* alice's freed slot */
    char types[512];
    inbox_types("alice", CONV(1002), types, sizeof types);
    assert_string_equal(types, "assigned,message,transferred");
    inbox_types("bob", CONV(1002), types, sizeof types);
    assert_string_equal(types, "transferred");

    /* A message to a closed conversation reopens it, back to alice (sticky). */
    assert_int_equal(api(W.a.port, "POST", "/v1/conversations/" CONV(1004) "/close", "", NULL), 200);
    post_update(W.a.port, 105, 1001, "uk", "again");
    wait_conv(CONV(1001), "assigned", "alice");

    /* alice goes offline: after the grace her conversations wait in the queue. */
    assert_int_equal(api(W.a.port, "POST", "/v1/agents/alice/presence",
                         "{\"presence\":\"offline\"}", NULL), 200);
    c = conversation(CONV(1001));
    assert_string_equal(json_string_value(json_object_get(c, "state")), "assigned");
    json_decref(c);
    wait_conv(CONV(1001), "queued", NULL);
    wait_conv(CONV(1003), "queued", NULL);
    assert_int_equal(cmd_int("SCARD %s", "deskbridge:agentconvs:{alice}"), 0);
    /* Back online: sticky again. */
    assert_int_equal(api(W.a.port, "POST", "/v1/agents/alice/presence",
                         "{\"presence\":\"online\"}", NULL), 200);
    wait_conv(CONV(1001), "assigned", "alice");
    wait_conv(CONV(1003), "assigned", "alice");

    json_t *l = NULL;
    assert_int_equal(api(W.a.port, "GET", "/v1/conversations?state=assigned&agent=alice&limit=1",
                         NULL, &l), 200);
    assert_int_equal(json_array_size(json_object_get(l, "conversations")), 1);
    assert_true(json_is_string(json_object_get(l, "next_cursor")));
    json_decref(l);
    assert_int_equal(api(W.a.port, "GET", "/v1/conversations?agent=nobody", NULL, &l), 200);
    assert_int_equal(json_array_size(json_object_get(l, "conversations")), 0);
    json_decref(l);
}

static void api_refuses_bad_requests(void **state)
{
    (void)state;
    json_t *o = NULL;
    assert_int_equal(api(W.a.port, "GET", "/v1/agents", NULL, &o), 200);
    json_t *list = json_object_get(o, "agents");
    assert_int_equal(json_array_size(list), 2);
    json_t *alice = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(alice, "id")), "alice");
    assert_string_equal(json_string_value(json_object_get(alice, "presence")), "online");
    assert_int_equal(json_integer_value(json_object_get(alice, "load")), 2);
    assert_int_equal(json_array_size(json_object_get(alice, "conversations")), 2);
    json_decref(o);
    assert_int_equal(api(W.a.port, "POST", "/v1/agents/nobody/presence",
                         "{\"presence\":\"online\"}", NULL), 404);
    assert_int_equal(api(W.a.port, "POST", "/v1/agents/alice/presence",
                         "{\"presence\":\"asleep\"}", NULL), 400);
    assert_int_equal(api(W.a.port, "PUT", "/v1/agents/alice", "{\"capacity\":-1}", NULL), 400);
    assert_int_equal(api(W.a.port, "PUT", "/v1/agents/alice", "{\"languages\":\"uk\"}", NULL), 400);
    assert_int_equal(api(W.a.port, "PUT", "/v1/agents/bad%20id", "{}", NULL), 400);
    assert_int_equal(api(W.a.port, "GET", "/v1/agents/nobody", NULL, NULL), 404);
    assert_int_equal(api(W.a.port, "GET", "/v1/conversations/telegram:7000000001:404", NULL, NULL), 404);
    assert_int_equal(api(W.a.port, "POST", "/v1/conversations/" CONV(1003) "/priority",
                         "{\"priority\":\"asap\"}", NULL), 400);
    assert_int_equal(api(W.a.port, "POST", "/v1/conversations/" CONV(1003) "/assign",
                         "{\"agent\":\"nobody\"}", NULL), 404);
    assert_int_equal(api(W.a.port, "GET", "/v1/conversations?limit=0", NULL, NULL), 400);
    /* A number is digits only: "5x" was read as 5 before the one number reader. */
    assert_int_equal(api(W.a.port, "GET", "/v1/conversations?limit=5x", NULL, NULL), 400);
    assert_int_equal(api(W.a.port, "GET", "/v1/conversations?cursor=x", NULL, NULL), 400);
    struct db_test_resp r;
    db_test_http(W.a.port, "GET", "/v1/agents", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
}

/* ---- two daemons on one Redis ---- */

static int settled(void *arg)
{
    (void)arg;
    redisReply *r = cmd("XPENDING deskbridge:events deskbridge-dispatch");
    long long pending = r->element[0]->integer;
    freeReplyObject(r);
    r = cmd("XINFO GROUPS deskbridge:events");
    long long lag = -1;
    for (size_t g = 0; g < r->elements; g++) {
        redisReply *grp = r->element[g];
        int ours = 0;
        for (size_t k = 0; k + 1 < grp->elements; k += 2) {
            if (strcmp(grp->element[k]->str, "name") == 0)
                ours = strcmp(grp->element[k + 1]->str, "deskbridge-dispatch") == 0;
            if (ours && strcmp(grp->element[k]->str, "lag") == 0)
                lag = grp->element[k + 1]->integer;
        }
    }
    freeReplyObject(r);
    return pending == 0 && lag == 0;
}

/* Checks the invariants over every inbox: at most capacity each, every conversation assigned
 * once, message entries of a conversation in stream order. */
static void check_invariants(const char *const *agents, int n, int capacity)
{
    for (int i = 0; i < n; i++) {
        char key[96];
        snprintf(key, sizeof key, "deskbridge:agentconvs:{%s}", agents[i]);
        assert_true(cmd_int("SCARD %s", key) <= capacity);
        redisReply *r = cmd("XRANGE deskbridge:agent:{%s} - +", agents[i]);
        json_t *last = json_object(), *assigned = json_object();
        for (size_t e = 0; e < r->elements; e++) {
            redisReply *f = r->element[e]->element[1];
            const char *type = f->element[1]->str, *conv = f->element[3]->str;
            if (strcmp(type, "assigned") == 0) {
                assert_null(json_object_get(assigned, conv));
                json_object_set_new(assigned, conv, json_true());
            }
            if (strcmp(type, "message") != 0) continue;
            json_t *ev = json_loads(f->element[5]->str, 0, NULL);
            const char *id = json_string_value(json_object_get(ev, "id"));
            const char *prev = json_string_value(json_object_get(last, conv));
            if (prev) assert_true(strcmp(prev, id) < 0);
            json_object_set_new(last, conv, json_string(id));
            json_decref(ev);
        }
        freeReplyObject(r);
        json_decref(last);
        json_decref(assigned);
    }
}

static void two_daemons_race(void **state)
{
    (void)state;
    start_daemon(&W.b);
    static const char *const racers[] = {"r1", "r2", "r3"};
    for (int i = 0; i < 3; i++)
        agent(racers[i], "{\"capacity\":3,\"accounts\":[\"telegram:7000000001\"]}", "online");
    for (const char *a = "alice", *b = "bob"; a; a = b, b = NULL) {
        char path[64];
        snprintf(path, sizeof path, "/v1/agents/%s/presence", a);
        assert_int_equal(api(W.a.port, "POST", path, "{\"presence\":\"away\"}", NULL), 200);
    }
    long long upd = 2000;
    for (int round = 0; round < 3; round++)
        for (int chat = 0; chat < 20; chat++)
            post_update(chat % 2 ? W.a.port : W.b.port, upd++, 5000 + chat, "en", "race");
    assert_true(db_test_wait(settled, NULL, 10000));
    check_invariants(racers, 3, 3);
    int assigned = 0, queued = 0;
    for (int chat = 0; chat < 20; chat++) {
        char id[64];
        snprintf(id, sizeof id, "telegram:7000000001:%d", 5000 + chat);
        json_t *c = conversation(id);
        const char *st = json_string_value(json_object_get(c, "state"));
        assigned += strcmp(st, "assigned") == 0;
        queued += strcmp(st, "queued") == 0;
        assert_int_equal(json_integer_value(json_object_get(c, "unread")), 3);
        json_decref(c);
    }
    assert_int_equal(assigned, 9);
    assert_int_equal(queued, 11);
}

static void killed_dispatcher_entries_are_claimed(void **state)
{
    (void)state;
    /* A consumer that read entries and died without acknowledging them... */
    long long now = db_test_now_ms();
    /* In one transaction, so the running dispatchers cannot read them first. */
    freeReplyObject(cmd("MULTI"));
    for (int i = 0; i < 60; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"v\":1,\"id\":\"01KILL%020d\",\"kind\":\"message\",\"type\":\"text\","
                 "\"platform\":\"telegram\",\"account\":\"7000000001\",\"conversation\":"
                 "\"telegram:7000000001:%d\",\"external_chat_id\":\"%d\",\"text\":\"k\","
                 "\"timestamp\":1795365000,\"received_at\":%lld}",
                 i, 7000 + i % 6, 7000 + i % 6, now);
        freeReplyObject(cmd("XADD deskbridge:events * event %s", ev));
    }
    freeReplyObject(cmd("XREADGROUP GROUP deskbridge-dispatch ghost COUNT 60 STREAMS "
                        "deskbridge:events >"));
    redisReply *x = cmd("EXEC");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->element[60]->element[0]->element[1]->elements, 60);
    freeReplyObject(x);
    /* ...and a real one killed mid-stream, with more entries arriving. */
    assert_true(db_test_daemon_alive(&W.b));
    kill(W.b.pid, SIGKILL);
    waitpid(W.b.pid, NULL, 0);
    W.b.pid = 0;
    for (int i = 0; i < 6; i++) post_update(W.a.port, 9000 + i, 7000 + i, "en", "after");
    assert_true(db_test_wait(settled, NULL, 15000));
    for (int chat = 0; chat < 6; chat++) {
        char id[64];
        snprintf(id, sizeof id, "telegram:7000000001:%d", 7000 + chat);
        json_t *c = conversation(id);
        assert_non_null(c);
        /* Ten entries written directly plus one webhook each, every one applied once. */
        assert_int_equal(json_integer_value(json_object_get(c, "unread")), 11);
        json_decref(c);
    }
    static const char *const racers[] = {"r1", "r2", "r3"};
    check_invariants(racers, 3, 3);
}

/* The entries of one read are applied by one run of the script, each on its own: an event
 * the script cannot apply (its conversation's key holds the wrong type) stays pending alone,
 * and the events around it in the same run are applied and acknowledged. */
static int only_poison_pending(void *arg)
{
    redisReply *r = cmd("XPENDING deskbridge:events deskbridge-dispatch - + 10");
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
             strcmp(r->element[0]->element[0]->str, (const char *)arg) == 0;
    freeReplyObject(r);
    return ok;
}

static void one_failing_event_does_not_hold_back_its_run(void **state)
{
    (void)state;
    freeReplyObject(cmd("SET deskbridge:conv:{telegram:7000000001:7777} not-a-hash"));
    long long now = db_test_now_ms();
    char poison[64] = "";
    freeReplyObject(cmd("MULTI"));
    for (int i = 0; i < 9; i++) {
        int chat = i == 4 ? 7777 : 7700 + i;
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"v\":1,\"id\":\"01RUN%021d\",\"kind\":\"message\",\"type\":\"text\","
                 "\"platform\":\"telegram\",\"account\":\"7000000001\",\"conversation\":"
                 "\"telegram:7000000001:%d\",\"external_chat_id\":\"%d\",\"text\":\"r\","
                 "\"timestamp\":1795365000,\"received_at\":%lld}",
                 i, chat, chat, now);
        freeReplyObject(cmd("XADD deskbridge:events * event %s", ev));
    }
    redisReply *x = cmd("EXEC");
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    snprintf(poison, sizeof poison, "%s", x->element[4]->str);
    freeReplyObject(x);
    assert_true(db_test_wait(only_poison_pending, poison, 15000));
    for (int i = 0; i < 9; i++) {
        if (i == 4) continue;
        char id[64];
        snprintf(id, sizeof id, "telegram:7000000001:%d", 7700 + i);
        json_t *c = conversation(id);
        assert_non_null(c);
        json_decref(c);
    }
    /* Mended, the entry is applied when it is claimed again (as any failed one is). */
    freeReplyObject(cmd("DEL deskbridge:conv:{telegram:7000000001:7777}"));
    assert_true(db_test_wait(settled, NULL, 20000));
    json_t *c = conversation("telegram:7000000001:7777");
    assert_non_null(c);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(webhook_to_agent_to_reply),
        cmocka_unit_test(capacity_queue_close_and_offline_grace),
        cmocka_unit_test(api_refuses_bad_requests),
        cmocka_unit_test(two_daemons_race),
        cmocka_unit_test(killed_dispatcher_entries_are_claimed),
        cmocka_unit_test(one_failing_event_does_not_hold_back_its_run),
        cmocka_unit_test(a_reply_from_the_outbox_is_first_class),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
