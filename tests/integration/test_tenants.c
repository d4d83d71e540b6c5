/* Tenant-scoped API tokens end to end: the real binary, a real redis-server, two Telegram
 * accounts (one per tenant) fed by signed webhooks, a fake Bot API, and HTTP on 127.0.0.1.
 *
 * Tenant alpha serves telegram:7100000001, tenant beta telegram:7200000002, and the
 * operator's token sees both.  The checks: each tenant reads and writes its own agents,
 * conversations and messages; every route refuses the other tenant's with the documented
 * code (404 where existence must not show, 403 for writes, downloads and unscoped routes);
 * refused requests write nothing (outbox length, conversation hashes and agent hashes are
 * compared in Redis); lists are filtered while scanning so every page but the last is full;
 * assignment never hands one tenant's conversation to the other's agent; no token reaches
 * the log. */
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

#include "api_client.h"
#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define BOT_A "7100000001"
#define BOT_B "7200000002"
#define SECRET_A "alpha-hook-secret_1"
#define SECRET_B "beta-hook-secret_2"
#define ADMIN "operator-token-tn-0123456789"
#define TOK_A "alpha-token-tn-0123456789"
#define TOK_B "beta-token-tn-0123456789ab"
#define CONV_A(chat) "telegram:" BOT_A ":" #chat
#define CONV_B(chat) "telegram:" BOT_B ":" #chat

static struct db_test_redis *R;
static struct db_fake *TG;
static struct db_test_daemon D;
static char conf[256];

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    TG = db_fake_start();
    assert_non_null(TG);
    db_fake_default(TG, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(conf, sizeof conf, "%s/tenants.conf", db_test_redis_dir(R));
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\napi_token = " ADMIN "\n"
            "[dispatch]\noffline_grace_ms = 0\nsweep_ms = 100\n"
            "[telegram " BOT_A "]\ntoken = " BOT_A ":AAalphaBotTokenDoNotLog\n"
            "webhook_secret = " SECRET_A "\napi_base = %s\n"
            "[telegram " BOT_B "]\ntoken = " BOT_B ":AAbetaBotTokenDoNotLog\n"
            "webhook_secret = " SECRET_B "\napi_base = %s\n"
            "[tenant alpha]\naccounts = telegram:" BOT_A "\napi_token = " TOK_A "\n"
            "[tenant beta]\naccounts = telegram:" BOT_B "\napi_token = " TOK_B "\n",
            db_fake_url(TG), db_fake_url(TG));
    fclose(f);
    static char env_redis[512];
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    const char *env[] = {env_redis, NULL};
    const char *args[] = {"--config", conf, NULL};
    db_test_daemon_start(&D, env, args, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = db_test_daemon_stop(&D, SIGTERM);
    db_test_teardown_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Refusals are logged with the tenant's name; no token ever is. */
    db_test_teardown_assert(db_test_daemon_log_count(&D, "tenant=alpha") > 0);
    static const char *const never[] = {TOK_A, TOK_B, ADMIN, "BotTokenDoNotLog", NULL};
    db_test_daemon_assert_log_clean(&D, never);
    unlink(D.log_path);
    db_fake_stop(TG);
    db_test_redis_stop(R);
    return 0;
}

/* ---- helpers ---- */

/* One API call with token; the answer's JSON in *out when out is not NULL (NULL when the
 * body is not JSON).  Returns the HTTP status. */
static int api(const char *token, const char *method, const char *path, const char *body,
               json_t **out)
{
    return db_test_api(D.port, token, method, path, body, out);
}

/* The error code of an answer, "" when there is none. */
static const char *err_code(const json_t *o)
{
    const char *c = json_string_value(json_object_get(json_object_get(o, "error"), "code"));
    return c ? c : "";
}

/* Asserts that the call answers status with error code; frees the answer. */
static void expect_refused(const char *token, const char *method, const char *path,
                           const char *body, int status, const char *code)
{
    json_t *o = NULL;
    int st = api(token, method, path, body, &o);
    if (st != status || strcmp(err_code(o), code) != 0)
        fail_msg("%s %s: want %d %s, got %d %s", method, path, status, code, st, err_code(o));
    json_decref(o);
}

static void post_update(const char *bot, const char *secret, long long update_id, long long chat)
{
    char body[512], h[128], path[96];
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"C\"},"
             "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"C\"},\"text\":\"hi\"}}",
             update_id, update_id, chat, chat);
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", secret);
    snprintf(path, sizeof path, "/webhooks/telegram/%s", bot);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(D.port, "POST", path, headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
}

/* Redis helpers: the whole hash as one sorted line, a list's length. */
static char *hash_text(const char *key)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "HGETALL %s", key);
    assert_non_null(r);
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        json_object_set_new(o, r->element[i]->str, json_string(r->element[i + 1]->str));
    freeReplyObject(r);
    char *s = json_dumps(o, JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static long long redis_int(const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), fmt, arg);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

struct want {
    const char *conv, *state, *agent;
};

/* 1 when the operator sees conv in state (and with agent, when given). */
static int conv_is(void *arg)
{
    const struct want *w = arg;
    char path[160];
    snprintf(path, sizeof path, "/v1/conversations/%s", w->conv);
    json_t *o = NULL;
    int ok = api(ADMIN, "GET", path, NULL, &o) == 200;
    const char *state = json_string_value(json_object_get(o, "state"));
    const char *agent = json_string_value(json_object_get(o, "agent"));
    ok = ok && state && strcmp(state, w->state) == 0 &&
         (!w->agent || (agent && strcmp(agent, w->agent) == 0));
    json_decref(o);
    return ok;
}

static void wait_conv(const char *conv, const char *state, const char *agent)
{
    struct want w = {conv, state, agent};
    if (!db_test_wait(conv_is, &w, 8000))
        fail_msg("%s: want %s/%s", conv, state, agent ? agent : "-");
}

/* The first bytes of an agent's SSE stream, read for up to ms. */
static char *stream_head(const char *token, const char *agent, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)D.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[384];
    int len = snprintf(req, sizeof req,
                       "GET /v1/agents/%s/stream HTTP/1.1\r\nHost: t\r\n"
                       "Authorization: Bearer %s\r\n\r\n",
                       agent, token);
    assert_int_equal(write(fd, req, (size_t)len), len);
    char *buf = calloc(1, 4096);
    size_t have = 0;
    long long end = db_test_now_ms() + ms;
    while (db_test_now_ms() < end && have < 4095) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t got = read(fd, buf + have, 4095 - have);
        if (got <= 0) break;
        have += (size_t)got;
        if (strstr(buf, "\r\n\r\n")) break;
    }
    close(fd);
    return buf;
}

/* ---- tests (in order: each builds on the state the previous one left) ---- */

static void agents_belong_to_the_tenant_that_made_them(void **state)
{
    (void)state;
    json_t *o = NULL;
    assert_int_equal(api(TOK_B, "PUT", "/v1/agents/bea", "{\"name\":\"Bea\",\"capacity\":50}", NULL), 200);
    assert_int_equal(api(TOK_B, "GET", "/v1/agents/bea", NULL, &o), 200);
    json_t *a = json_array_get(json_object_get(o, "agents"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "tenant")), "beta");
    /* Empty accounts: all of the tenant's. */
    json_t *acc = json_object_get(a, "accounts");
    assert_int_equal(json_array_size(acc), 1);
    assert_string_equal(json_string_value(json_array_get(acc, 0)), "telegram:" BOT_B);
    json_decref(o);

    /* Accounts outside the tenant: 403, and no agent was made. */
    expect_refused(TOK_A, "PUT", "/v1/agents/ann",
                   "{\"capacity\":50,\"accounts\":[\"telegram:" BOT_B "\"]}", 403, "forbidden");
    assert_int_equal(redis_int("EXISTS %s", "deskbridge:agentinfo:{ann}"), 0);
    assert_int_equal(api(TOK_A, "PUT", "/v1/agents/ann",
                         "{\"name\":\"Ann\",\"capacity\":50,\"accounts\":[\"telegram:" BOT_A "\"]}",
                         NULL),
                     200);

    /* Another tenant's agent does not exist for alpha: read, update, presence, stream. */
    char *before = hash_text("deskbridge:agentinfo:{bea}");
    expect_refused(TOK_A, "GET", "/v1/agents/bea", NULL, 404, "not_found");
    expect_refused(TOK_A, "PUT", "/v1/agents/bea", "{\"name\":\"Taken\",\"capacity\":1}", 404,
                   "no_agent");
    expect_refused(TOK_A, "POST", "/v1/agents/bea/presence", "{\"presence\":\"online\"}", 404,
                   "not_found");
    char *after = hash_text("deskbridge:agentinfo:{bea}");
    assert_string_equal(before, after);
    free(before), free(after);
    char *head = stream_head(TOK_A, "bea", 2000);
    assert_non_null(strstr(head, "HTTP/1.1 404"));
    free(head);
    head = stream_head(TOK_B, "bea", 2000);
    assert_non_null(strstr(head, "HTTP/1.1 200"));
    assert_non_null(strstr(head, "text/event-stream"));
    free(head);

    /* Lists: each tenant its own, the operator both. */
    const char *tokens[] = {TOK_A, TOK_B, ADMIN};
    const char *want[] = {"ann", "bea", "ann,bea"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(api(tokens[i], "GET", "/v1/agents", NULL, &o), 200);
        char ids[64] = "";
        json_t *list = json_object_get(o, "agents"), *x;
        size_t k;
        json_array_foreach(list, k, x)
            snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", k ? "," : "",
                     json_string_value(json_object_get(x, "id")));
        assert_string_equal(ids, want[i]);
        json_decref(o);
    }
    /* The operator updates a tenant's agent: the tenant and its accounts stay. */
    assert_int_equal(api(ADMIN, "PUT", "/v1/agents/bea", "{\"name\":\"Bea\",\"capacity\":50}", NULL), 200);
    redisReply *r = redisCommand(db_test_redis_ctx(R), "HMGET deskbridge:agentinfo:{bea} tenant accounts");
    assert_string_equal(r->element[0]->str, "beta");
    assert_string_equal(r->element[1]->str, "[\"telegram:" BOT_B "\"]");
    freeReplyObject(r);
}

static void assignment_never_crosses_tenants(void **state)
{
    (void)state;
    /* Only beta's agent is online, with room for everyone. */
    assert_int_equal(api(TOK_B, "POST", "/v1/agents/bea/presence", "{\"presence\":\"online\"}", NULL), 200);
    /* Interleaved: A1 B1 A2 B2 A3 B3 A4 B4 A5. */
    for (int i = 1; i <= 5; i++) {
        post_update(BOT_A, SECRET_A, 1000 + i, i);
        if (i < 5) post_update(BOT_B, SECRET_B, 2000 + i, i);
    }
    wait_conv(CONV_B(1), "assigned", "bea");
    wait_conv(CONV_B(4), "assigned", "bea");
    wait_conv(CONV_A(1), "queued", NULL);
    wait_conv(CONV_A(5), "queued", NULL);
    assert_int_equal(redis_int("SCARD %s", "deskbridge:agentconvs:{bea}"), 4);

    /* Alpha's agent comes online: alpha's queue drains to it, and only to it. */
    assert_int_equal(api(TOK_A, "POST", "/v1/agents/ann/presence", "{\"presence\":\"online\"}", NULL), 200);
    wait_conv(CONV_A(1), "assigned", "ann");
    wait_conv(CONV_A(5), "assigned", "ann");
    redisReply *r = redisCommand(db_test_redis_ctx(R), "SMEMBERS deskbridge:agentconvs:{bea}");
    assert_int_equal(r->elements, 4);
    for (size_t i = 0; i < r->elements; i++)
        assert_non_null(strstr(r->element[i]->str, "telegram:" BOT_B ":"));
    freeReplyObject(r);
    assert_int_equal(redis_int("SCARD %s", "deskbridge:agentconvs:{ann}"), 5);
}

/* Pages of GET /v1/conversations?limit=2 for token: the sizes joined by ',' and every
 * conversation's account checked against want_bot. */
static void pages(const char *token, const char *want_bot, char *sizes, size_t n)
{
    char path[128], cursor[32] = "";
    sizes[0] = '\0';
    for (int page = 0; page < 20; page++) {
        snprintf(path, sizeof path, "/v1/conversations?limit=2%s%s", cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *o = NULL;
        assert_int_equal(api(token, "GET", path, NULL, &o), 200);
        json_t *list = json_object_get(o, "conversations"), *x;
        size_t k;
        json_array_foreach(list, k, x)
            if (want_bot)
                assert_string_equal(json_string_value(json_object_get(x, "account")), want_bot);
        snprintf(sizes + strlen(sizes), n - strlen(sizes), "%s%zu", page ? "," : "",
                 json_array_size(list));
        const char *next = json_string_value(json_object_get(o, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(o);
        if (!next) return;
    }
    fail_msg("no last page");
}

static void lists_hold_only_the_tenants_conversations_in_full_pages(void **state)
{
    (void)state;
    char sizes[64];
    pages(TOK_A, BOT_A, sizes, sizeof sizes);
    assert_string_equal(sizes, "2,2,1");
    pages(TOK_B, BOT_B, sizes, sizeof sizes);
    assert_string_equal(sizes, "2,2");
    pages(ADMIN, NULL, sizes, sizeof sizes);
    assert_string_equal(sizes, "2,2,2,2,1");
    /* Asking for the other tenant's account by name finds nothing. */
    json_t *o = NULL;
    assert_int_equal(api(TOK_A, "GET", "/v1/conversations?account=" BOT_B, NULL, &o), 200);
    assert_int_equal(json_array_size(json_object_get(o, "conversations")), 0);
    assert_true(json_is_null(json_object_get(o, "next_cursor")));
    json_decref(o);
}

static void conversations_of_another_tenant_do_not_exist_for_it(void **state)
{
    (void)state;
    json_t *o = NULL;
    assert_int_equal(api(TOK_A, "GET", "/v1/conversations/" CONV_A(1), NULL, &o), 200);
    assert_string_equal(json_string_value(json_object_get(o, "agent")), "ann");
    json_decref(o);

    char *conv_before = hash_text("deskbridge:conv:{" CONV_B(1) "}");
    long long items_before = redis_int("LLEN %s", "deskbridge:conv:{" CONV_B(1) "}:items");
    char *inbox_before = hash_text("deskbridge:agentinfo:{bea}");
    expect_refused(TOK_A, "GET", "/v1/conversations/" CONV_B(1), NULL, 404, "not_found");
    /* The same answer as a conversation that does not exist at all. */
    expect_refused(TOK_A, "GET", "/v1/conversations/" CONV_A(999), NULL, 404, "not_found");
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_B(1) "/assign", "{\"agent\":\"ann\"}",
                   404, "no_conversation");
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_B(1) "/transfer", "{\"agent\":\"ann\"}",
                   404, "no_conversation");
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_B(1) "/priority",
                   "{\"priority\":\"urgent\"}", 404, "no_conversation");
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_B(1) "/close", "", 404,
                   "no_conversation");
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_A(999) "/close", "", 404,
                   "no_conversation");
    /* Alpha's own conversation, beta's agent: the agent does not exist for alpha. */
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_A(1) "/transfer", "{\"agent\":\"bea\"}",
                   404, "no_agent");
    expect_refused(TOK_A, "POST", "/v1/conversations/" CONV_A(1) "/assign", "{\"agent\":\"bea\"}",
                   404, "no_agent");
    char *conv_after = hash_text("deskbridge:conv:{" CONV_B(1) "}");
    char *inbox_after = hash_text("deskbridge:agentinfo:{bea}");
    assert_string_equal(conv_before, conv_after);
    assert_string_equal(inbox_before, inbox_after);
    assert_int_equal(redis_int("LLEN %s", "deskbridge:conv:{" CONV_B(1) "}:items"), items_before);
    free(conv_before), free(conv_after), free(inbox_before), free(inbox_after);
    assert_int_equal(redis_int("SCARD %s", "deskbridge:agentconvs:{bea}"), 4);
    wait_conv(CONV_A(1), "assigned", "ann");

    /* Alpha's own actions go through. */
    assert_int_equal(api(TOK_A, "POST", "/v1/conversations/" CONV_A(1) "/priority",
                         "{\"priority\":\"high\"}", NULL),
                     200);
    assert_int_equal(api(TOK_A, "POST", "/v1/conversations/" CONV_A(5) "/close", "", NULL), 200);
    wait_conv(CONV_A(5), "closed", NULL);
    /* The operator still reaches both tenants. */
    assert_int_equal(api(ADMIN, "GET", "/v1/conversations/" CONV_B(1), NULL, NULL), 200);
    assert_int_equal(api(ADMIN, "POST", "/v1/conversations/" CONV_B(4) "/priority",
                         "{\"priority\":\"low\"}", NULL),
                     200);
}

static void messages_and_media_of_another_tenant_are_refused(void **state)
{
    (void)state;
    redisContext *c = db_test_redis_ctx(R);
    long long outbox = db_test_xlen(c, "outbox");
    long long items = redis_int("LLEN %s", "deskbridge:conv:{" CONV_B(2) "}:items");
    expect_refused(TOK_A, "POST", "/v1/messages",
                   "{\"conversation\":\"" CONV_B(2) "\",\"text\":\"not yours\"}", 403, "forbidden");
    expect_refused(TOK_A, "POST", "/v1/messages",
                   "{\"conversation\":\"" CONV_B(77) "\",\"text\":\"new chat, not yours\"}", 403,
                   "forbidden");
    expect_refused(TOK_A, "POST", "/v1/messages",
                   "{\"conversation\":\"" CONV_A(2) "\",\"canned\":\"x\"}", 403, "forbidden");
    assert_int_equal(db_test_xlen(c, "outbox"), outbox);
    assert_int_equal(redis_int("LLEN %s", "deskbridge:conv:{" CONV_B(2) "}:items"), items);
    assert_int_equal(redis_int("EXISTS %s", "deskbridge:conv:{" CONV_B(77) "}"), 0);

    /* Alpha writes to its own conversation; the message is alpha's and the operator's. */
    int st = 0;
    char *body = db_test_post_json(D.port, TOK_A, "/v1/messages",
                                   "{\"conversation\":\"" CONV_A(2) "\",\"text\":\"yours\","
                                   "\"client_id\":\"same-client-id\"}",
                                   &st);
    assert_int_equal(st, 202);
    json_t *o = json_loads(body, 0, NULL);
    free(body);
    char id[64], path[192];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    json_t *rec = db_test_wait_message(D.port, TOK_A, id, "sent", 8000);
    char ext[64];
    snprintf(ext, sizeof ext, "%s", json_string_value(json_object_get(rec, "external_message_id")));
    json_decref(rec);
    assert_int_equal(db_test_xlen(c, "outbox"), outbox + 1);
    snprintf(path, sizeof path, "/v1/messages/%s", id);
    expect_refused(TOK_B, "GET", path, NULL, 404, "not_found");
    expect_refused(TOK_B, "GET", "/v1/messages/no-such-message", NULL, 404, "not_found");
    assert_int_equal(api(ADMIN, "GET", path, NULL, NULL), 200);
    snprintf(path, sizeof path, "/v1/messages/by-external/telegram/" BOT_A "/%s", ext);
    assert_int_equal(api(TOK_A, "GET", path, NULL, NULL), 200);
    expect_refused(TOK_B, "GET", path, NULL, 404, "not_found");
    assert_int_equal(api(ADMIN, "GET", path, NULL, NULL), 200);

    /* A client id is the tenant's own: beta's same id neither dedupes nor shows alpha's. */
    body = db_test_post_json(D.port, TOK_B, "/v1/messages",
                             "{\"conversation\":\"" CONV_B(2) "\",\"text\":\"beta's\","
                             "\"client_id\":\"same-client-id\"}",
                             &st);
    assert_int_equal(st, 202);
    o = json_loads(body, 0, NULL);
    free(body);
    assert_string_not_equal(json_string_value(json_object_get(o, "id")), id);
    assert_null(json_object_get(o, "duplicate"));
    json_decref(o);
    assert_int_equal(db_test_xlen(c, "outbox"), outbox + 2);

    /* Media of another tenant's account: 403 before anything is asked of the platform. */
    size_t files = db_fake_count(TG, "/getFile");
    expect_refused(TOK_A, "GET", "/v1/media/telegram/" BOT_B "/AgADfile", NULL, 403, "forbidden");
    assert_int_equal(db_fake_count(TG, "/getFile"), files);

    /* Routes that are not scoped are the operator's. */
    expect_refused(TOK_A, "GET", "/v1/stats", NULL, 403, "forbidden");
    expect_refused(TOK_A, "GET", "/v1/canned", NULL, 403, "forbidden");
    assert_int_equal(api(ADMIN, "GET", "/v1/stats", NULL, NULL), 200);
    assert_int_equal(api(ADMIN, "GET", "/v1/canned", NULL, NULL), 200);
    /* A wrong token is still 401. */
    expect_refused(TOK_A "x", "GET", "/v1/agents", NULL, 401, "unauthorized");
}

/* Every route that takes a JSON body refuses one that is not an object the same way: 400
 * invalid_json naming the body, whichever module owns the route. */
static void a_body_that_is_not_a_json_object_is_refused_alike_everywhere(void **state)
{
    (void)state;
    static const char *const routes[][2] = {
        {"POST", "/v1/messages"},
        {"PUT", "/v1/agents/nobody"},
        {"POST", "/v1/agents/nobody/presence"},
        {"POST", "/v1/conversations/telegram:" BOT_A ":1/assign"},
    };
    static const char *const bodies[] = {"not json", "[1,2]", "{\"a\":", ""};
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        for (size_t j = 0; j < sizeof bodies / sizeof *bodies; j++) {
            json_t *o = NULL;
            int st = api(ADMIN, routes[i][0], routes[i][1], bodies[j], &o);
            const char *field =
                json_string_value(json_object_get(json_object_get(o, "error"), "field"));
            if (st != 400 || strcmp(err_code(o), "invalid_json") || !field || strcmp(field, "body"))
                fail_msg("%s %s with body '%s': %d %s", routes[i][0], routes[i][1], bodies[j],
                         st, err_code(o));
            json_decref(o);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agents_belong_to_the_tenant_that_made_them),
        cmocka_unit_test(assignment_never_crosses_tenants),
        cmocka_unit_test(lists_hold_only_the_tenants_conversations_in_full_pages),
        cmocka_unit_test(conversations_of_another_tenant_do_not_exist_for_it),
        cmocka_unit_test(messages_and_media_of_another_tenant_are_refused),
        cmocka_unit_test(a_body_that_is_not_a_json_object_is_refused_alike_everywhere),
    };
    return cmocka_run_group_tests_name("tenants", tests, setup, teardown);
}
