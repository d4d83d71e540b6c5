/* console.c - the console's settings, its Redis script, and how a request finds its session. */
#include "console/console.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "conf/config.h"
#include "util/schema.h"
#include "console/console_internal.h"
#include "console/password.h"
#include "services/services.h"
#include "http/router.h"
#include "net/httpd.h"
#include "redis/scripts.h"
#include "util/crypto.h"
#include "util/id.h"

#define SESSION_IDLE_S 1800
#define SESSION_MAX_S 43200

const char *const db_console_headers[] = {
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options: nosniff",
    "X-Frame-Options: DENY",
    "Referrer-Policy: no-referrer",
    "Cache-Control: no-store",
    NULL,
};

/* ---- settings: the [console] section ---- */

#define COFF(f) offsetof(struct db_console_opts, f)
static const struct db_conf_key console_keys[] = {
    {.name = "behind_tls", .type = DB_CONF_BOOL, .def = "no", .off = COFF(behind_tls),
     .doc = "people reach the gateway over HTTPS (a proxy ends TLS): session cookies are `Secure`"},
    {.name = "session_idle_s", .type = DB_CONF_LONG, .min = 60, .max = 86400, .def = "1800",
     .off = COFF(session_idle_s), .doc = "a session unused this long ends"},
    {.name = "session_max_s", .type = DB_CONF_LONG, .min = 300, .max = 2592000, .def = "43200",
     .off = COFF(session_max_s), .doc = "a session ends this long after sign-in, used or not"},
    {.name = "password_iterations", .type = DB_CONF_LONG, .min = DB_PASSWORD_MIN_ITERATIONS,
     .max = 10000000, .def = "600000", .off = COFF(password_iterations),
     .doc = "PBKDF2-HMAC-SHA256 rounds of a new sign-in secret's hash"},
    {.name = "invite_ttl_s", .type = DB_CONF_LONG, .min = 60, .max = 2592000, .def = "86400",
     .off = COFF(invite_ttl_s), .doc = "how long a sign-in link is good"},
    {.name = "max_failures_agent", .type = DB_CONF_LONG, .min = 1, .max = 1000, .def = "5",
     .off = COFF(max_failures_agent),
     .doc = "failed sign-ins of one agent within the window, after which sign-in answers 429"},
    {.name = "max_failures_addr", .type = DB_CONF_LONG, .min = 1, .max = 100000, .def = "20",
     .off = COFF(max_failures_addr), .doc = "the same from one address"},
    {.name = "failure_window_s", .type = DB_CONF_LONG, .min = 10, .max = 86400, .def = "900",
     .off = COFF(failure_window_s), .doc = "how long failed sign-ins are counted"},
    {.name = "public_url", .type = DB_CONF_URL, .off = COFF(public_url),
     .doc = "where people reach the gateway (`https://help.example.com`), for sign-in links"},
};

const struct db_conf_table db_console_conf_table = {
    .section = "console", .named = 0, .size = sizeof(struct db_console_opts),
    .keys = console_keys, .n_keys = sizeof console_keys / sizeof console_keys[0]};

/* Without a [console] section: the table's defaults. */
static const struct db_console_opts no_section = {
    .session_idle_s = SESSION_IDLE_S, .session_max_s = SESSION_MAX_S,
    .password_iterations = DB_PASSWORD_ITERATIONS, .invite_ttl_s = 86400,
    .max_failures_agent = 5, .max_failures_addr = 20, .failure_window_s = 900};

struct db_console_opts db_console_opts_of(const struct db_config *cfg)
{
    const struct db_console_opts *o = db_config_obj(cfg, "console", NULL);
    return o ? *o : no_section;
}

/* ---- shared helpers ---- */

void db_console_auth_run(struct db_services *svc, db_redis_cb cb, void *arg, const char *op,
                         int nargs, const char **args)
{
    /* One script object for the process: it lives as long as the process does. */
    static struct db_redis_script *script;
    if (!script) script = db_redis_script_new(db_lua_console_auth);
    const char *argv[16];
    char now[24];
    if (!script || nargs > 13) {
        if (cb) cb(DB_EAGAIN, NULL, "out of memory", arg);
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    argv[0] = op, argv[1] = svc->cfg->cfg->prefix, argv[2] = now;
    for (int i = 0; i < nargs; i++) argv[3 + i] = args[i];
    db_redis_eval(svc->redis, script, cb, arg, 0, NULL, 3 + nargs, argv, NULL);
}

void db_console_name_of(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(md, 0, sizeof md); /* cannot happen with the default provider; names nothing */
    db_hex_encode(md, 32, out);
}

int db_console_cookie_id(const struct db_httpd_req *req, char out[65])
{
    const char *c = db_httpd_req_header(req, "Cookie");
    static const char name[] = DB_CONSOLE_COOKIE "=";
    for (const char *p = c; p && *p;) {
        while (*p == ' ' || *p == ';') p++;
        if (strncmp(p, name, sizeof name - 1) == 0) {
            const char *v = p + sizeof name - 1;
            size_t n = strspn(v, "0123456789abcdef");
            if (n != 64 || (v[n] && v[n] != ';' && v[n] != ' ')) return 0;
            memcpy(out, v, 64);
            out[64] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

void db_console_peer_addr(const struct db_httpd_req *req, char *out, size_t n)
{
    const char *peer = db_httpd_req_peer(req);
    snprintf(out, n, "%s", peer ? peer : "");
    char *colon = strrchr(out, ':');
    if (colon && colon != out) *colon = '\0';
}

/* ---- the router's session lookup ---- */

struct lookup {
    struct db_router_pending *p;
    char name[65];
};

static void session_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct lookup *l = arg;
    (void)errstr;
    struct db_session s = {0};
    int found = status == DB_OK && reply && reply->type == REDIS_REPLY_ARRAY &&
                reply->elements == 3 && reply->element[0]->str && reply->element[1]->str &&
                reply->element[2]->str;
    if (found) {
        snprintf(s.id_hash, sizeof s.id_hash, "%s", l->name);
        snprintf(s.agent, sizeof s.agent, "%s", reply->element[0]->str);
        snprintf(s.tenant, sizeof s.tenant, "%s", reply->element[1]->str);
        s.supervisor = strcmp(reply->element[2]->str, "supervisor") == 0;
    }
    /* Redis down is not a sign-out: the page keeps its state and retries a 503. */
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR)
        db_router_session_failed(l->p);
    else db_router_session_found(l->p, found ? &s : NULL);
    free(l);
}

void db_console_session_lookup(struct db_httpd_req *req, struct db_router_pending *p,
                               void *arg)
{
    struct db_services *svc = arg;
    char id[65];
    struct lookup *l = db_console_cookie_id(req, id) ? calloc(1, sizeof *l) : NULL;
    if (!l) {
        db_router_session_found(p, NULL);
        return;
    }
    l->p = p;
    db_console_name_of(id, l->name);
    char idle[24];
    snprintf(idle, sizeof idle, "%ld", db_console_opts_of(svc->cfg->cfg).session_idle_s);
    const char *args[] = {l->name, idle};
    db_console_auth_run(svc, session_cb, l, "session_get", 2, args);
}

