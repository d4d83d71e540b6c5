/* The agent console's sign-in and sessions end to end: the real binary, a real redis-server,
 * two tenants with one Telegram account each (signed webhooks, a fake Bot API), HTTP on
 * 127.0.0.1.
 *
 * The checks: a tenant sets its agent's secret (never another tenant's agent), Redis holds
 * only a PBKDF2 hash of it; sign-in answers a cookie that is HttpOnly, SameSite=Strict and
 * scoped to /console/; the session is stored under the SHA-256 of the cookie with an idle
 * expiry and refused past its absolute end; writes from another origin are refused with the
 * session cookie and all; repeated failures are throttled per agent (429 with Retry-After,
 * even for the right secret) and per address; sign-out ends the session at once; an
 * invitation link signs in once and never again, also when made by `deskbridge agent invite`;
 * an agent sees its own conversations and the queue of its accounts, never another tenant's
 * (404); search finds conversations by name (and its beginning), words of the text and the
 * chat id, within the tenant only; a supervisor's figures per agent and account cover its
 * tenant; no secret, cookie or link reaches the log. */
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

#include "api_client.h"
#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"

#define BOT_A "7100000001"
#define BOT_B "7200000002"
#define SECRET_A "alpha-hook-secret_1"
#define SECRET_B "beta-hook-secret_2"
#define ADMIN "operator-token-ca-0123456789"
#define TOK_A "alpha-token-ca-0123456789"
#define TOK_B "beta-token-ca-0123456789ab"
#define PW_ANN "ann-correct-horse-42"
#define PW_BOB "bob-battery-staple-7"
#define ORIGIN "Origin: http://127.0.0.1"

static struct db_test_redis *R;
static struct db_fake *TG;
static struct db_test_daemon D;
static char conf[256], env_redis[512], env_conf[300];
static char *invite_url_seen; /* the CLI's link, which must not reach the log */

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    TG = db_fake_start();
    assert_non_null(TG);
    db_fake_default(TG, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    snprintf(conf, sizeof conf, "%s/console.conf", db_test_redis_dir(R));
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\napi_token = " ADMIN "\n"
            "[dispatch]\noffline_grace_ms = 0\nsweep_ms = 100\n"
            "[console]\npassword_iterations = 100000\nmax_failures_agent = 3\n"
            "max_failures_addr = 50\nsession_idle_s = 600\n"
            "[telegram " BOT_A "]\ntoken = " BOT_A ":AAalphaBotTokenDoNotLog\n"
            "webhook_secret = " SECRET_A "\napi_base = %s\n"
            "[telegram " BOT_B "]\ntoken = " BOT_B ":AAbetaBotTokenDoNotLog\n"
            "webhook_secret = " SECRET_B "\napi_base = %s\n"
            "[tenant alpha]\naccounts = telegram:" BOT_A "\napi_token = " TOK_A "\n"
            "[tenant beta]\naccounts = telegram:" BOT_B "\napi_token = " TOK_B "\n",
            db_fake_url(TG), db_fake_url(TG));
    fclose(f);
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    snprintf(env_conf, sizeof env_conf, "DESKBRIDGE_CONFIG=%s", conf);
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
    db_test_teardown_assert(db_test_daemon_log_count(&D, "signed in") > 0);
    db_test_teardown_assert(db_test_daemon_log_count(&D, "sign-in refused: too many failures") > 0);
    /* Agent ids appear only as short hashes in refusals. */
    db_test_teardown_assert(db_test_daemon_log_count(&D, "agent=bob") == 0);
    const char *never[] = {TOK_A, TOK_B, ADMIN, PW_ANN, PW_BOB, "pbkdf2",
                           invite_url_seen ? invite_url_seen : "BotTokenDoNotLog", NULL};
    db_test_daemon_assert_log_clean(&D, never);
    unlink(D.log_path);
    free(invite_url_seen);
    db_fake_stop(TG);
    db_test_redis_stop(R);
    return 0;
}

/* ---- helpers ---- */

static int api(const char *token, const char *method, const char *path, const char *body,
               json_t **out)
{
    return db_test_api(D.port, token, method, path, body, out);
}

/* A console call with cookie (may be NULL) and origin header (may be NULL); the raw answer. */
static void console(const char *cookie, const char *origin, const char *method,
                    const char *path, const char *body, struct db_test_resp *r)
{
    char c[128] = "";
    if (cookie) snprintf(c, sizeof c, "Cookie: theme=dark; db_session=%s", cookie);
    const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    int n = 1;
    if (cookie) headers[n++] = c;
    if (origin) headers[n++] = origin;
    db_test_http(D.port, method, path, headers, body, body ? strlen(body) : 0, r);
}

static int console_status(const char *cookie, const char *origin, const char *method,
                          const char *path, const char *body)
{
    struct db_test_resp r;
    console(cookie, origin, method, path, body, &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

/* Signs agent in; the session id from Set-Cookie into cookie (65 bytes).  Returns the status. */
static int sign_in(const char *agent, const char *secret, char *cookie, char *set_cookie,
                   size_t n)
{
    char body[256];
    snprintf(body, sizeof body, "{\"agent\":\"%s\",\"secret\":\"%s\"}", agent, secret);
    struct db_test_resp r;
    console(NULL, ORIGIN, "POST", "/console/api/signin", body, &r);
    char sc[512];
    const char *h = db_test_resp_header(&r, "Set-Cookie", sc, sizeof sc);
    if (h && cookie && strncmp(h, "db_session=", 11) == 0) {
        memcpy(cookie, h + 11, 64);
        cookie[64] = '\0';
    }
    if (set_cookie && h) snprintf(set_cookie, n, "%s", h);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

static redisReply *rcmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(R), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static void make_agents(void)
{
    static int done;
    if (done) return;
    done = 1;
    assert_int_equal(api(TOK_A, "PUT", "/v1/agents/ann", "{\"name\":\"Ann\",\"capacity\":2}", NULL), 200);
    assert_int_equal(api(TOK_A, "PUT", "/v1/agents/bob", "{\"name\":\"Bob\"}", NULL), 200);
    assert_int_equal(api(TOK_B, "PUT", "/v1/agents/zoe", "{\"name\":\"Zoe\"}", NULL), 200);
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/ann/secret",
                         "{\"secret\":\"" PW_ANN "\"}", NULL), 200);
}

/* ---- the tests ---- */

static void secret_is_stored_hashed_and_scoped(void **state)
{
    (void)state;
    make_agents();
    redisReply *r = rcmd("HGET deskbridge:agentauth:{ann} secret");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_true(strncmp(r->str, "pbkdf2-sha256$100000$", 21) == 0);
    assert_null(strstr(r->str, PW_ANN));
    assert_int_equal(strlen(r->str), strlen("pbkdf2-sha256$100000$") + 32 + 1 + 64);
    freeReplyObject(r);
    /* Another tenant's agent answers as a missing one, and nothing changes. */
    assert_int_equal(api(TOK_B, "PUT", "/v1/console/agents/ann/secret",
                         "{\"secret\":\"beta-takes-over-ann\"}", NULL), 404);
    assert_int_equal(api(TOK_B, "POST", "/v1/console/agents/ann/invite", "{}", NULL), 404);
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/nobody/secret",
                         "{\"secret\":\"long-enough-secret\"}", NULL), 404);
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/ann/secret", "{\"secret\":\"short\"}",
                         NULL), 400);
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/ann/secret",
                         "{\"secret\":\"long-enough-secret\",\"role\":\"root\"}", NULL), 400);
    assert_int_equal(api("wrong-token-0123456789", "PUT", "/v1/console/agents/ann/secret",
                         "{\"secret\":\"long-enough-secret\"}", NULL), 401);
    /* The operator's token is not a console login. */
    assert_int_equal(api(ADMIN, "GET", "/console/api/me", NULL, NULL), 401);
    char cookie[65];
    assert_int_equal(sign_in("ann", "beta-takes-over-ann", cookie, NULL, 0), 401);
    redisReply *d = rcmd("DEL deskbridge:signinfail:agent:ann");
    freeReplyObject(d);
}

static void sign_in_gives_a_strict_cookie_and_a_hashed_session(void **state)
{
    (void)state;
    make_agents();
    char cookie[65] = "", sc[512] = "";
    assert_int_equal(sign_in("ann", PW_ANN, cookie, sc, sizeof sc), 200);
    assert_int_equal(strlen(cookie), 64);
    assert_non_null(strstr(sc, "HttpOnly"));
    assert_non_null(strstr(sc, "SameSite=Strict"));
    assert_non_null(strstr(sc, "Path=/console/"));
    assert_null(strstr(sc, "Secure")); /* not configured as behind TLS */
    /* Redis names the session by the cookie's hash, never the cookie itself. */
    char name[65];
    sha256_hex(cookie, name);
    redisReply *r = rcmd("TTL deskbridge:session:%s", name);
    assert_true(r->integer > 500 && r->integer <= 600);
    freeReplyObject(r);
    r = rcmd("EXISTS deskbridge:session:%s", cookie);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    struct db_test_resp resp;
    console(cookie, NULL, "GET", "/console/api/me", NULL, &resp);
    assert_int_equal(resp.status, 200);
    json_t *me = json_loads(resp.body, 0, NULL);
    char csp[512];
    assert_non_null(db_test_resp_header(&resp, "Content-Security-Policy", csp, sizeof csp));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    db_test_resp_clear(&resp);
    assert_string_equal(json_string_value(json_object_get(me, "agent")), "ann");
    assert_string_equal(json_string_value(json_object_get(me, "role")), "agent");
    assert_string_equal(json_string_value(json_object_get(me, "tenant")), "alpha");
    assert_string_equal(json_string_value(json_object_get(me, "name")), "Ann");
    json_decref(me);

    /* No cookie, a made-up one, a malformed one: signed out. */
    assert_int_equal(console_status(NULL, NULL, "GET", "/console/api/me", NULL), 401);
    assert_int_equal(console_status("00000000000000000000000000000000000000000000000000000000000000aa",
                                    NULL, "GET", "/console/api/me", NULL), 401);
    assert_int_equal(console_status("zz", NULL, "GET", "/console/api/me", NULL), 401);

    /* Past its absolute end a session is refused (and removed), however recently used. */
    r = rcmd("HSET deskbridge:session:%s ends 1000", name);
    freeReplyObject(r);
    assert_int_equal(console_status(cookie, NULL, "GET", "/console/api/me", NULL), 401);
    r = rcmd("EXISTS deskbridge:session:%s", name);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void writes_from_another_origin_are_refused(void **state)
{
    (void)state;
    make_agents();
    char cookie[65];
    assert_int_equal(sign_in("ann", PW_ANN, cookie, NULL, 0), 200);
    const char *p = "{\"presence\":\"online\"}";
    assert_int_equal(console_status(cookie, "Origin: http://evil.example", "POST",
                                    "/console/api/presence", p), 403);
    assert_int_equal(console_status(cookie, NULL, "POST", "/console/api/presence", p), 403);
    assert_int_equal(console_status(cookie, "Origin: null", "POST", "/console/api/presence", p), 403);
    redisReply *r = rcmd("HGET deskbridge:agentinfo:{ann} presence");
    assert_string_equal(r->str, "offline"); /* nothing changed */
    freeReplyObject(r);
    /* The same write from the page's origin goes through. */
    assert_int_equal(console_status(cookie, ORIGIN, "POST", "/console/api/presence", p), 200);
    r = rcmd("HGET deskbridge:agentinfo:{ann} presence");
    assert_string_equal(r->str, "online");
    freeReplyObject(r);
    /* A cross-site sign-in form is refused before any secret is checked. */
    assert_int_equal(console_status(NULL, "Origin: http://evil.example", "POST",
                                    "/console/api/signin",
                                    "{\"agent\":\"ann\",\"secret\":\"" PW_ANN "\"}"), 403);
}

static void failures_are_throttled_per_agent(void **state)
{
    (void)state;
    make_agents();
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/bob/secret",
                         "{\"secret\":\"" PW_BOB "\"}", NULL), 200);
    for (int i = 0; i < 3; i++) assert_int_equal(sign_in("bob", "not-bobs-secret", NULL, NULL, 0), 401);
    /* At the maximum even the right secret waits, and the answer says how long. */
    struct db_test_resp r;
    console(NULL, ORIGIN, "POST", "/console/api/signin",
            "{\"agent\":\"bob\",\"secret\":\"" PW_BOB "\"}", &r);
    assert_int_equal(r.status, 429);
    char ra[32];
    assert_non_null(db_test_resp_header(&r, "Retry-After", ra, sizeof ra));
    assert_true(atoi(ra) > 0 && atoi(ra) <= 900);
    db_test_resp_clear(&r);
    /* Another agent from the same address is not held up by bob's failures. */
    assert_int_equal(sign_in("ann", PW_ANN, NULL, NULL, 0), 200);
    /* An unknown agent fails like a wrong secret. */
    assert_int_equal(sign_in("nobody", "whatever-secret", NULL, NULL, 0), 401);
    /* Setting a new secret clears the counter. */
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/bob/secret",
                         "{\"secret\":\"" PW_BOB "\"}", NULL), 200);
    assert_int_equal(sign_in("bob", PW_BOB, NULL, NULL, 0), 200);
}

static void sign_out_ends_the_session_at_once(void **state)
{
    (void)state;
    make_agents();
    char a[65], b[65];
    assert_int_equal(sign_in("ann", PW_ANN, a, NULL, 0), 200);
    assert_int_equal(sign_in("ann", PW_ANN, b, NULL, 0), 200);
    assert_int_equal(console_status(a, "Origin: http://evil.example", "POST",
                                    "/console/api/signout", "{}"), 403);
    struct db_test_resp r;
    console(a, ORIGIN, "POST", "/console/api/signout", "{}", &r);
    assert_int_equal(r.status, 200);
    char sc[256];
    assert_non_null(db_test_resp_header(&r, "Set-Cookie", sc, sizeof sc));
    assert_non_null(strstr(sc, "Max-Age=0"));
    db_test_resp_clear(&r);
    assert_int_equal(console_status(a, NULL, "GET", "/console/api/me", NULL), 401);
    /* The agent's other session goes on; a new secret ends every one. */
    assert_int_equal(console_status(b, NULL, "GET", "/console/api/me", NULL), 200);
    assert_int_equal(api(TOK_A, "PUT", "/v1/console/agents/ann/secret",
                         "{\"secret\":\"" PW_ANN "\"}", NULL), 200);
    assert_int_equal(console_status(b, NULL, "GET", "/console/api/me", NULL), 401);
}

static void invitation_links_work_once(void **state)
{
    (void)state;
    make_agents();
    json_t *o = NULL;
    assert_int_equal(api(TOK_A, "POST", "/v1/console/agents/bob/invite",
                         "{\"role\":\"supervisor\"}", &o), 200);
    const char *url = json_string_value(json_object_get(o, "url"));
    const char *token = json_string_value(json_object_get(o, "token"));
    assert_non_null(strstr(url, "/console/#invite="));
    assert_non_null(strstr(url, token));
    char body[256];
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"secret\":\"bob-supervises-now\"}", token);
    json_decref(o);
    struct db_test_resp r;
    console(NULL, "Origin: http://evil.example", "POST", "/console/api/invite", body, &r);
    assert_int_equal(r.status, 403);
    db_test_resp_clear(&r);
    console(NULL, ORIGIN, "POST", "/console/api/invite", body, &r);
    assert_int_equal(r.status, 200);
    char sc[512];
    assert_non_null(db_test_resp_header(&r, "Set-Cookie", sc, sizeof sc));
    char cookie[65];
    memcpy(cookie, sc + 11, 64), cookie[64] = '\0';
    db_test_resp_clear(&r);
    console(cookie, NULL, "GET", "/console/api/me", NULL, &r);
    json_t *me = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    assert_string_equal(json_string_value(json_object_get(me, "role")), "supervisor");
    json_decref(me);
    /* Used once: never again. */
    console(NULL, ORIGIN, "POST", "/console/api/invite", body, &r);
    assert_int_equal(r.status, 404);
    db_test_resp_clear(&r);
    assert_int_equal(sign_in("bob", "bob-supervises-now", NULL, NULL, 0), 200);

    /* The command line makes the same kind of link. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s %s agent invite zoe", env_redis, env_conf, DB_DAEMON_PATH);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    char *tok = strstr(line, "/console/#invite=");
    assert_non_null(tok);
    tok += strlen("/console/#invite=");
    tok[64] = '\0';
    invite_url_seen = strdup(tok);
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"secret\":\"zoe-from-the-cli\"}", tok);
    console(NULL, ORIGIN, "POST", "/console/api/invite", body, &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    snprintf(cmd, sizeof cmd, "%s %s %s agent invite nobody 2>/dev/null", env_redis, env_conf,
             DB_DAEMON_PATH);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
}

static void agents_see_only_their_tenant(void **state)
{
    (void)state;
    make_agents();
    char cookie[65];
    assert_int_equal(sign_in("ann", PW_ANN, cookie, NULL, 0), 200);
    assert_int_equal(console_status(cookie, ORIGIN, "POST", "/console/api/presence",
                                    "{\"presence\":\"online\"}"), 200);
    /* One customer per tenant. */
    for (int t = 0; t < 2; t++) {
        char body[512], h[128], path[96];
        snprintf(body, sizeof body,
                 "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
                 "\"chat\":{\"id\":%d,\"type\":\"private\",\"first_name\":\"C\"},"
                 "\"from\":{\"id\":%d,\"is_bot\":false,\"first_name\":\"C\"},\"text\":\"hi\"}}",
                 900 + t, 900 + t, 55 + t, 55 + t);
        snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", t ? SECRET_B : SECRET_A);
        snprintf(path, sizeof path, "/webhooks/telegram/%s", t ? BOT_B : BOT_A);
        const char *headers[] = {"Content-Type: application/json", h, NULL};
        struct db_test_resp r;
        db_test_http(D.port, "POST", path, headers, body, strlen(body), &r);
        assert_int_equal(r.status, 200);
        db_test_resp_clear(&r);
    }
    /* Ann's conversation reaches her inbox; beta's conversation does not show. */
    json_t *list = NULL;
    for (int i = 0; i < 200; i++) {
        struct db_test_resp r;
        console(cookie, NULL, "GET", "/console/api/conversations?view=mine", NULL, &r);
        json_decref(list);
        list = json_loads(r.body, 0, NULL);
        db_test_resp_clear(&r);
        if (json_array_size(json_object_get(list, "conversations")) > 0) break;
        usleep(20000);
    }
    json_t *convs = json_object_get(list, "conversations");
    assert_int_equal(json_array_size(convs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(convs, 0), "id")),
                        "telegram:" BOT_A ":55");
    json_decref(list);
    assert_int_equal(console_status(cookie, NULL, "GET",
                                    "/console/api/conversations/telegram:" BOT_A ":55", NULL), 200);
    /* Another tenant's conversation, existing or not, answers 404; so does a change. */
    assert_int_equal(console_status(cookie, NULL, "GET",
                                    "/console/api/conversations/telegram:" BOT_B ":56", NULL), 404);
    assert_int_equal(console_status(cookie, ORIGIN, "POST",
                                    "/console/api/conversations/telegram:" BOT_B ":56/close", "{}"),
                     404);
    assert_int_equal(console_status(cookie, NULL, "GET", "/console/api/conversations?view=all",
                                    NULL), 403);
    redisReply *r = rcmd("HGET deskbridge:conv:{telegram:" BOT_B ":56} state");
    assert_string_not_equal(r->str, "closed");
    freeReplyObject(r);
}

static void tg_post(const char *bot, const char *secret, int id, int chat, const char *name,
                    const char *text)
{
    char body[1024], h[128], path[96];
    snprintf(body, sizeof body,
             "{\"update_id\":%d,\"message\":{\"message_id\":%d,\"date\":1795365000,"
             "\"chat\":{\"id\":%d,\"type\":\"private\",\"first_name\":\"%s\"},"
             "\"from\":{\"id\":%d,\"is_bot\":false,\"first_name\":\"%s\"},\"text\":\"%s\"}}",
             id, id, chat, name, chat, name, text);
    snprintf(h, sizeof h, "X-Telegram-Bot-Api-Secret-Token: %s", secret);
    snprintf(path, sizeof path, "/webhooks/telegram/%s", bot);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(D.port, "POST", path, headers, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
}

/* The ids search answers for q (percent-encoded by the caller), comma-joined. */
static char *found(const char *cookie, const char *q)
{
    char path[256];
    snprintf(path, sizeof path, "/console/api/search?q=%s", q);
    struct db_test_resp r;
    console(cookie, NULL, "GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *o = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    static char out[512];
    out[0] = '\0';
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(o, "conversations"), i, c) {
        size_t len = strlen(out);
        snprintf(out + len, sizeof out - len, "%s%s", len ? "," : "",
                 json_string_value(json_object_get(c, "id")));
    }
    json_decref(o);
    return out;
}

struct search_wait {
    const char *cookie, *q, *want;
};

static int search_is(void *arg)
{
    const struct search_wait *w = arg;
    return strcmp(found(w->cookie, w->q), w->want) == 0;
}

static void search_finds_within_the_tenant(void **state)
{
    (void)state;
    make_agents();
    char ann[65], zoe[65];
    assert_int_equal(sign_in("ann", PW_ANN, ann, NULL, 0), 200);
    assert_int_equal(sign_in("zoe", "zoe-from-the-cli", zoe, NULL, 0), 200);
    tg_post(BOT_A, SECRET_A, 970, 70, "Taras Shevchenko", "parcel number 4521 is delayed");
    tg_post(BOT_B, SECRET_B, 971, 71, "Taras Other", "parcel lost, Посилка загубилась");
    struct search_wait w = {ann, "taras", "telegram:" BOT_A ":70"};
    if (!db_test_wait(search_is, &w, 8000)) fail_msg("ann's search for taras: %s", found(ann, "taras"));
    assert_string_equal(found(ann, "Parcel+4521"), "telegram:" BOT_A ":70");
    assert_string_equal(found(ann, "shev"), "telegram:" BOT_A ":70");
    assert_string_equal(found(ann, "70"), "telegram:" BOT_A ":70");
    assert_string_equal(found(ann, "parcel+lost"), "");      /* beta's words */
    assert_string_equal(found(ann, "delayed+nowhere"), ""); /* every word must match */
    assert_string_equal(found(ann, "%3Cscript%3E"), "");
    struct search_wait z = {zoe, "taras", "telegram:" BOT_B ":71"};
    if (!db_test_wait(search_is, &z, 8000)) fail_msg("zoe's search for taras: %s", found(zoe, "taras"));
    assert_string_equal(found(zoe, "%D0%BF%D0%BE%D1%81%D0%B8%D0%BB%D0%BA%D0%B0"), "telegram:" BOT_B ":71");
    /* The index is per account: one sorted set per word, never the messages scanned. */
    redisReply *r = rcmd("ZSCORE deskbridge:search:telegram:" BOT_A ":4521 telegram:" BOT_A ":70");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

/* A supervisor's counters cover its tenant only; an agent gets none. */
static void supervisors_count_their_tenant(void **state)
{
    (void)state;
    make_agents();
    char ann[65], bob[65];
    assert_int_equal(sign_in("ann", PW_ANN, ann, NULL, 0), 200);
    assert_int_equal(sign_in("bob", "bob-supervises-now", bob, NULL, 0), 200);
    assert_int_equal(console_status(ann, NULL, "GET", "/console/api/stats", NULL), 403);
    struct db_test_resp r;
    console(bob, NULL, "GET", "/console/api/stats", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *st = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    /* alpha: customers 55 and 70, both with ann (online); beta's 56 and 71 are not counted. */
    assert_int_equal(json_integer_value(json_object_get(st, "open")), 2);
    assert_int_equal(json_integer_value(json_object_get(st, "assigned")), 2);
    assert_int_equal(json_integer_value(json_object_get(st, "queued")), 0);
    assert_int_equal(json_integer_value(json_object_get(st, "agents_online")), 1);
    json_decref(st);
    /* The supervisor's All view holds the same two, and nothing of beta's. */
    console(bob, NULL, "GET", "/console/api/conversations?view=all", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *all = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    assert_int_equal(json_array_size(json_object_get(all, "conversations")), 2);
    json_decref(all);

    /* A customer waits (ann is full, bob offline): the supervisor gives the conversation to
     * someone; an agent may not. */
    tg_post(BOT_A, SECRET_A, 972, 72, "Waiting Customer", "hello?");
    for (int i = 0; i < 200; i++) {
        redisReply *q = rcmd("HGET deskbridge:conv:{telegram:" BOT_A ":72} state");
        int queued = q->type == REDIS_REPLY_STRING && strcmp(q->str, "queued") == 0;
        freeReplyObject(q);
        if (queued) break;
        usleep(20000);
    }
    const char *path = "/console/api/conversations/telegram:" BOT_A ":72/transfer";
    assert_int_equal(console_status(ann, ORIGIN, "POST", path, "{\"agent\":\"ann\"}"), 403);
    assert_int_equal(console_status(bob, ORIGIN, "POST", path, "{\"agent\":\"zoe\"}"), 404);
    assert_int_equal(console_status(bob, ORIGIN, "POST", path, "{\"agent\":\"bob\"}"), 200);
    redisReply *a = rcmd("HMGET deskbridge:conv:{telegram:" BOT_A ":72} state agent");
    assert_string_equal(a->element[0]->str, "assigned");
    assert_string_equal(a->element[1]->str, "bob");
    freeReplyObject(a);
}

/* The figures of who (an agent id or "platform:account") in a stats/agents answer. */
static const json_t *fig(const json_t *o, const char *part, const char *who, const char *what,
                         const char *window, const char *key)
{
    const json_t *v = json_object_get(json_object_get(o, part), who);
    if (what) v = json_object_get(v, what);
    if (window) v = json_object_get(v, window);
    return key ? json_object_get(v, key) : v;
}

static json_t *figures(const char *cookie)
{
    struct db_test_resp r;
    console(cookie, NULL, "GET", "/console/api/stats/agents", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *o = json_loads(r.body, 0, NULL);
    db_test_resp_clear(&r);
    assert_non_null(o);
    return o;
}

/* A supervisor's figures per agent and account cover its tenant: its agents (with zeros for
 * one without samples), its accounts, and a satisfaction of its accounts' answers only; an
 * operator's supervisor sees every agent and account; an agent gets 403. */
static void supervisors_see_their_tenants_figures(void **state)
{
    (void)state;
    make_agents();
    assert_int_equal(api(ADMIN, "PUT", "/v1/agents/otto", "{\"name\":\"Otto\"}", NULL), 200);
    assert_int_equal(api(ADMIN, "PUT", "/v1/console/agents/otto/secret",
                         "{\"secret\":\"otto-operates-all\",\"role\":\"supervisor\"}", NULL), 200);
    /* Samples as the dispatcher writes them: ann answered two of alpha's customers, zoe one
     * of beta's; every answer of the last minutes. */
    long long now = (long long)time(NULL) * 1000 - 60000;
    static const struct {
        long frt_ms;
        int score;
        const char *agent, *account, *chat;
    } done[] = {{60000, 5, "ann", "telegram:" BOT_A, "55"},
                {90000, 3, "ann", "telegram:" BOT_A, "70"},
                {5000, 1, "zoe", "telegram:" BOT_B, "56"}};
    for (int i = 0; i < 3; i++) {
        char conv[96], m[192];
        snprintf(conv, sizeof conv, "%s:%s", done[i].account, done[i].chat);
        snprintf(m, sizeof m, "%ld|%s|%lld|%s|%s", done[i].frt_ms, conv, now, done[i].agent,
                 done[i].account);
        freeReplyObject(rcmd("ZADD deskbridge:stats:frt %lld %s", now, m));
        snprintf(m, sizeof m, "%d|%s|%lld|%s|%s", done[i].score, conv, now, done[i].agent,
                 done[i].account);
        freeReplyObject(rcmd("ZADD deskbridge:stats:csat %lld %s", now, m));
        snprintf(m, sizeof m, "%s|%s|%s", done[i].agent, done[i].account, conv);
        freeReplyObject(rcmd("ZADD deskbridge:stats:handled %lld %s", now, m));
    }
    char ann[65], bob[65], otto[65];
    assert_int_equal(sign_in("ann", PW_ANN, ann, NULL, 0), 200);
    assert_int_equal(sign_in("bob", "bob-supervises-now", bob, NULL, 0), 200);
    assert_int_equal(sign_in("otto", "otto-operates-all", otto, NULL, 0), 200);
    assert_int_equal(console_status(ann, NULL, "GET", "/console/api/stats/agents", NULL), 403);
    assert_int_equal(console_status(NULL, NULL, "GET", "/console/api/stats/agents", NULL), 401);

    json_t *o = figures(bob);
    assert_int_equal(json_object_size(json_object_get(o, "agents")), 2); /* ann and bob */
    assert_null(fig(o, "agents", "zoe", NULL, NULL, NULL));
    assert_null(fig(o, "agents", "otto", NULL, NULL, NULL));
    assert_string_equal(json_string_value(fig(o, "agents", "ann", NULL, NULL, "name")), "Ann");
    assert_string_equal(json_string_value(fig(o, "agents", "ann", NULL, NULL, "presence")), "online");
    assert_int_equal(json_integer_value(fig(o, "agents", "ann", "handled", NULL, "day")), 2);
    assert_int_equal(json_integer_value(fig(o, "agents", "ann", "first_response", "day", "median_ms")), 60000);
    assert_int_equal(json_integer_value(fig(o, "agents", "ann", "first_response", "hour", "p90_ms")), 90000);
    assert_true(json_number_value(fig(o, "agents", "ann", "satisfaction", "day", "average")) == 4.0);
    assert_int_equal(json_integer_value(fig(o, "agents", "ann", "satisfaction", "day", "count")), 2);
    /* bob has no sample: listed with zeros and no median */
    assert_int_equal(json_integer_value(fig(o, "agents", "bob", "handled", NULL, "day")), 0);
    assert_true(json_is_null(fig(o, "agents", "bob", "first_response", "day", "median_ms")));
    assert_int_equal(json_object_size(json_object_get(o, "accounts")), 1);
    assert_int_equal(json_integer_value(fig(o, "accounts", "telegram:" BOT_A, "handled", NULL, "day")), 2);
    /* alpha's satisfaction is ann's 5 and 3: beta's 1 is not in it */
    const json_t *day = json_object_get(json_object_get(o, "satisfaction"), "day");
    assert_true(json_number_value(json_object_get(day, "average")) == 4.0);
    assert_int_equal(json_integer_value(json_object_get(day, "count")), 2);
    json_decref(o);

    o = figures(otto);
    for (const char *const *a = (const char *const[]){"ann", "bob", "zoe", "otto", NULL}; *a; a++)
        assert_non_null(fig(o, "agents", *a, NULL, NULL, NULL));
    assert_int_equal(json_integer_value(fig(o, "agents", "zoe", "handled", NULL, "hour")), 1);
    assert_int_equal(json_integer_value(fig(o, "accounts", "telegram:" BOT_B, "first_response", "day", "median_ms")), 5000);
    assert_non_null(fig(o, "accounts", "telegram:" BOT_A, NULL, NULL, NULL));
    day = json_object_get(json_object_get(o, "satisfaction"), "day");
    assert_true(json_number_value(json_object_get(day, "average")) == 3.0);
    assert_int_equal(json_integer_value(json_object_get(day, "count")), 3);
    /* The same figures as the operator's GET /v1/stats. */
    json_t *v1 = NULL;
    assert_int_equal(api(ADMIN, "GET", "/v1/stats", NULL, &v1), 200);
    json_t *zoe = json_deep_copy(fig(o, "agents", "zoe", NULL, NULL, NULL));
    json_object_del(zoe, "name");
    json_object_del(zoe, "presence");
    assert_true(json_equal(json_object_get(json_object_get(v1, "agents"), "zoe"), zoe));
    json_decref(zoe);
    json_decref(v1);
    json_decref(o);
}

/* Last, since it holds up every sign-in from 127.0.0.1: failures spread over many agent ids
 * still count against the address. */
static void failures_are_throttled_per_address(void **state)
{
    (void)state;
    make_agents();
    char id[32];
    int st = 0, tries = 0;
    /* Earlier tests' failures from this address count too: at most 50 in all. */
    while (tries < 50 && (st = sign_in((snprintf(id, sizeof id, "guess%d", tries), id),
                                       "a-guessed-secret", NULL, NULL, 0)) == 401)
        tries++;
    assert_int_equal(st, 429);
    assert_true(tries > 30); /* each guess was a new agent id: the agent limit (3) played no part */
    assert_int_equal(sign_in("ann", PW_ANN, NULL, NULL, 0), 429);
    redisReply *r = rcmd("GET deskbridge:signinfail:addr:127.0.0.1");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_true(atoi(r->str) >= 50);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secret_is_stored_hashed_and_scoped),
        cmocka_unit_test(sign_in_gives_a_strict_cookie_and_a_hashed_session),
        cmocka_unit_test(writes_from_another_origin_are_refused),
        cmocka_unit_test(failures_are_throttled_per_agent),
        cmocka_unit_test(sign_out_ends_the_session_at_once),
        cmocka_unit_test(invitation_links_work_once),
        cmocka_unit_test(agents_see_only_their_tenant),
        cmocka_unit_test(search_finds_within_the_tenant),
        cmocka_unit_test(supervisors_count_their_tenant),
        cmocka_unit_test(supervisors_see_their_tenants_figures),
        cmocka_unit_test(failures_are_throttled_per_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
