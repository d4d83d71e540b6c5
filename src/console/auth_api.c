/* auth_api.c - signing in and out of the console, and the operator's side of it.
 *
 * Console (no session yet; each refuses another origin):
 *   POST /console/api/signin  {agent, secret}  -> a session cookie
 *   POST /console/api/invite  {token, secret}  -> the link's agent gets the secret, signed in
 * Console (session):
 *   POST /console/api/signout                  -> the session ends at once
 * Operator or tenant token:
 *   PUT  /v1/console/agents/{id}/secret {secret, role}  -> sets it; the agent's sessions end
 *   POST /v1/console/agents/{id}/invite {role}          -> a one-time sign-in link
 *
 * A secret never reaches a log or Redis: only its PBKDF2 hash, made on the worker thread
 * (password.h).  A sign-in for an unknown agent costs the same hash as a known one, so the
 * answer time does not tell which agents exist.  Failures count per agent and per address;
 * at the maximum the sign-in answers 429 with Retry-After until the window passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf/config.h"
#include "console/console.h"
#include "console/console_internal.h"
#include "console/password.h"
#include "services/services.h"
#include "http/respond.h"
#include "http/router.h"
#include "log/log.h"
#include "net/httpd.h"
#include "util/crypto.h"
#include "util/redact.h"
#include "util/json.h"

#define AUTH_BODY_LIMIT 8192

static int valid_agent_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@") == n;
}

static int valid_secret(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= DB_PASSWORD_MIN_LEN && n <= DB_PASSWORD_MAX_LEN;
}

static void answer_json(struct db_httpd_req *req, int status, json_t *obj, const char *cookie)
{
    const char *hdr[12];
    size_t n = 0;
    for (; db_console_headers[n] && n < 10; n++) hdr[n] = db_console_headers[n];
    if (cookie) hdr[n++] = cookie;
    hdr[n] = NULL;
    char *text = obj ? db_json_dump(obj) : NULL;
    if (text) db_httpd_respond(req, status, "application/json", text, strlen(text), hdr);
    else db_httpd_respond_error(req, 500, "internal", "out of memory");
    free(text);
    json_decref(obj);
}

/* "Set-Cookie: ..." for a session id (NULL: the cookie removed). */
static void cookie_header(const struct db_console_opts *o, const char *id, char *out, size_t n)
{
    snprintf(out, n,
             "Set-Cookie: " DB_CONSOLE_COOKIE "=%s; Path=/console/; HttpOnly; SameSite=Strict%s%s",
             id ? id : "", id ? "" : "; Max-Age=0", o->behind_tls ? "; Secure" : "");
}

static void failed_store(struct db_httpd_req *req)
{
    db_respond_unavailable(req);
}

/* ---- a new session, the end of every way in ---- */

struct signin {
    struct db_services *svc;
    struct db_httpd_req *req;
    char agent[72], tenant[72], role[16], addr[64];
    char id[65];     /* the new session's id (the cookie) */
    char *secret;    /* wiped and freed with the job */
    char *hash;      /* invitation: the new hash to store */
    char token_name[65]; /* invitation: how Redis names its token */
};

static void signin_free(struct signin *s)
{
    if (s->secret) OPENSSL_cleanse(s->secret, strlen(s->secret)), free(s->secret);
    if (s->hash) OPENSSL_cleanse(s->hash, strlen(s->hash)), free(s->hash);
    OPENSSL_cleanse(s->id, sizeof s->id);
    free(s);
}

static void session_made_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct signin *s = arg;
    (void)errstr;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        failed_store(s->req);
    } else {
        struct db_console_opts o = db_console_opts_of(s->svc->cfg->cfg);
        char cookie[256];
        cookie_header(&o, s->id, cookie, sizeof cookie);
        struct db_log_ctx ctx = {"console", NULL, NULL, NULL};
        db_log(DB_LOG_INFO, &ctx, "signed in, tenant=%s role=%s", *s->tenant ? s->tenant : "-",
               s->role);
        answer_json(s->req, 200,
                    json_pack("{s:s, s:s, s:s?}", "agent", s->agent, "role", s->role, "tenant",
                              *s->tenant ? s->tenant : NULL),
                    cookie);
    }
    signin_free(s);
}

static void new_session(struct signin *s)
{
    unsigned char raw[32];
    char name[65], idle[24], max[24];
    if (db_random_bytes(raw, sizeof raw) != 0) {
        db_httpd_respond_error(s->req, 500, "internal", "no random source");
        signin_free(s);
        return;
    }
    db_hex_encode(raw, sizeof raw, s->id);
    OPENSSL_cleanse(raw, sizeof raw);
    db_console_name_of(s->id, name);
    struct db_console_opts o = db_console_opts_of(s->svc->cfg->cfg);
    snprintf(idle, sizeof idle, "%ld", o.session_idle_s);
    snprintf(max, sizeof max, "%ld", o.session_max_s);
    const char *args[] = {name, s->agent, s->tenant, s->role, idle, max};
    db_console_auth_run(s->svc, session_made_cb, s, "session_new", 6, args);
}

/* ---- POST /console/api/signin ---- */

/* A refused sign-in, logged with the agent's id as a short hash (ids may be e-mail addresses)
 * and never the secret. */
static void log_refused(const struct signin *s, const char *why)
{
    char who[16];
    db_redact_id(s->agent, who, sizeof who);
    struct db_log_ctx ctx = {"console", NULL, NULL, NULL};
    db_log(DB_LOG_INFO, &ctx, "sign-in refused: %s, agent=%s", why, who);
}

static void fail_counted_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct signin *s = arg;
    (void)status, (void)reply, (void)errstr;
    log_refused(s, "wrong secret or unknown agent");
    db_httpd_respond_error(s->req, 401, "wrong_secret", "unknown agent or wrong secret");
    signin_free(s);
}

static void verified_cb(int ok, const char *hash, void *arg)
{
    struct signin *s = arg;
    (void)hash;
    if (ok) {
        new_session(s);
        return;
    }
    char window[24];
    snprintf(window, sizeof window, "%ld", db_console_opts_of(s->svc->cfg->cfg).failure_window_s);
    const char *args[] = {s->agent, s->addr, window};
    db_console_auth_run(s->svc, fail_counted_cb, s, "signin_fail", 3, args);
}

/* A hash nobody's secret matches, of the current count: an unknown agent's sign-in costs the
 * same as a known one's. */
static const char *decoy_hash(long iterations)
{
    static char decoy[DB_PASSWORD_HASH_MAX];
    static long made_for;
    if (made_for != iterations) {
        snprintf(decoy, sizeof decoy, "pbkdf2-sha256$%ld$%032d$%064d", iterations, 0, 0);
        made_for = iterations;
    }
    return decoy;
}

static void checked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct signin *s = arg;
    (void)errstr;
    if (status != DB_OK || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        failed_store(s->req);
        signin_free(s);
        return;
    }
    long long wait = reply->element[0]->integer;
    if (wait > 0) {
        char retry[48];
        snprintf(retry, sizeof retry, "Retry-After: %lld", wait);
        const char *hdr[] = {retry, NULL};
        static const char body[] =
            "{\"error\":{\"code\":\"too_many_failures\",\"message\":\"too many failed "
            "sign-ins: wait and try again\"}}";
        db_httpd_respond(s->req, 429, "application/json", body, sizeof body - 1, hdr);
        log_refused(s, "too many failures");
        signin_free(s);
        return;
    }
    const char *stored = reply->element[1]->str;
    snprintf(s->role, sizeof s->role, "%s",
             strcmp(reply->element[2]->str, "supervisor") == 0 ? "supervisor" : "agent");
    snprintf(s->tenant, sizeof s->tenant, "%s", reply->element[3]->str);
    long iters = db_console_opts_of(s->svc->cfg->cfg).password_iterations;
    if (db_password_job(s->svc->base, s->secret, *stored ? stored : decoy_hash(iters), iters,
                        verified_cb, s) != 0) {
        db_httpd_respond_error(s->req, 503, "busy", "too many sign-ins at once, retry");
        signin_free(s);
    }
}

static struct signin *signin_new(struct db_services *svc, struct db_httpd_req *req,
                                 const char *secret)
{
    struct signin *s = calloc(1, sizeof *s);
    if (s && !(s->secret = strdup(secret))) free(s), s = NULL;
    if (!s) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    s->svc = svc;
    s->req = req;
    db_console_peer_addr(req, s->addr, sizeof s->addr);
    return s;
}

static void post_signin(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    (void)who;
    if (!db_router_same_origin(req)) {
        db_httpd_respond_error(req, 403, "cross_origin", "request from another origin");
        return;
    }
    json_t *body = db_respond_body_object(req);
    if (!body) return;
    const char *agent = db_json_str(body, "agent"), *secret = db_json_str(body, "secret");
    if (!valid_agent_id(agent)) {
        db_respond_field_error(req, 400, "invalid_field", "agent", "want an agent id");
    } else if (!secret || !*secret || strlen(secret) > DB_PASSWORD_MAX_LEN) {
        db_respond_field_error(req, 400, "invalid_field", "secret", "want the sign-in secret");
    } else {
        struct signin *s = signin_new(svc, req, secret);
        if (s) {
            struct db_console_opts o = db_console_opts_of(who->cfg);
            char ma[24], mi[24];
            snprintf(s->agent, sizeof s->agent, "%s", agent);
            snprintf(ma, sizeof ma, "%ld", o.max_failures_agent);
            snprintf(mi, sizeof mi, "%ld", o.max_failures_addr);
            const char *args[] = {s->agent, s->addr, ma, mi};
            db_console_auth_run(svc, checked_cb, s, "signin_check", 4, args);
        }
    }
    json_decref(body); /* the secret in it is jansson's copy: freed, not wiped */
}

/* ---- POST /console/api/invite ---- */

/* The link is used up only with the new secret, in one run: a link whose hash could not be
 * made (a burst of sign-ins) still works. */
static void invite_redeemed_cb(int status, const redisReply *reply, const char *errstr,
                               void *arg)
{
    struct signin *s = arg;
    (void)errstr;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        failed_store(s->req);
        signin_free(s);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        /* Used meanwhile by another request. */
        db_httpd_respond_error(s->req, 404, "invalid_link", "the link is used or expired");
        signin_free(s);
    } else {
        snprintf(s->agent, sizeof s->agent, "%s", reply->element[0]->str);
        snprintf(s->role, sizeof s->role, "%s", reply->element[1]->str);
        snprintf(s->tenant, sizeof s->tenant, "%s", reply->element[2]->str);
        new_session(s);
    }
}

static void invite_hashed_cb(int ok, const char *hash, void *arg)
{
    struct signin *s = arg;
    if (!ok || !(s->hash = strdup(hash))) {
        db_httpd_respond_error(s->req, 500, "internal", "could not hash the secret");
        signin_free(s);
        return;
    }
    const char *args[] = {s->token_name, s->hash};
    db_console_auth_run(s->svc, invite_redeemed_cb, s, "invite_redeem", 2, args);
}

static void invite_peeked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct signin *s = arg;
    (void)errstr;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        failed_store(s->req);
        signin_free(s);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        /* A wrong token counts against the address like a wrong secret. */
        char window[24];
        snprintf(window, sizeof window, "%ld",
                 db_console_opts_of(s->svc->cfg->cfg).failure_window_s);
        const char *args[] = {"-invite", s->addr, window};
        db_console_auth_run(s->svc, NULL, NULL, "signin_fail", 3, args);
        db_httpd_respond_error(s->req, 404, "invalid_link", "the link is used or expired");
        signin_free(s);
        return;
    }
    long iters = db_console_opts_of(s->svc->cfg->cfg).password_iterations;
    if (db_password_job(s->svc->base, s->secret, NULL, iters, invite_hashed_cb, s) != 0) {
        db_httpd_respond_error(s->req, 503, "busy", "too many sign-ins at once, retry");
        signin_free(s);
    }
}

static void post_invite(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    (void)who;
    if (!db_router_same_origin(req)) {
        db_httpd_respond_error(req, 403, "cross_origin", "request from another origin");
        return;
    }
    json_t *body = db_respond_body_object(req);
    if (!body) return;
    const char *token = db_json_str(body, "token"), *secret = db_json_str(body, "secret");
    if (!token || strlen(token) != 64 || strspn(token, "0123456789abcdef") != 64) {
        db_httpd_respond_error(req, 404, "invalid_link", "the link is used or expired");
    } else if (!valid_secret(secret)) {
        db_respond_field_error(req, 400, "invalid_field", "secret",
                               "a secret is 10 to 1024 characters");
    } else {
        struct signin *s = signin_new(svc, req, secret);
        if (s) {
            db_console_name_of(token, s->token_name);
            const char *args[] = {s->token_name};
            db_console_auth_run(svc, invite_peeked_cb, s, "invite_peek", 1, args);
        }
    }
    json_decref(body);
}

/* ---- POST /console/api/signout ---- */

static void signed_out_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        failed_store(req);
        return;
    }
    /* The answer is made after the session is gone, so the next request is refused. */
    char cookie[256];
    struct db_console_opts o = {0};
    cookie_header(&o, NULL, cookie, sizeof cookie);
    answer_json(req, 200, json_pack("{s:b}", "ok", 1), cookie);
}

static void post_signout(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    const char *args[] = {who->session->id_hash};
    db_console_auth_run(arg, signed_out_cb, req, "session_end", 1, args);
}

/* ---- the operator's routes ---- */

struct op_req {
    struct db_services *svc;
    struct db_httpd_req *req;
    char agent[72], role[16], scope[72];
    char token[65];
    char *hash;
    long ttl;
};

static void op_free(struct op_req *o)
{
    if (o->hash) OPENSSL_cleanse(o->hash, strlen(o->hash)), free(o->hash);
    OPENSSL_cleanse(o->token, sizeof o->token);
    free(o);
}

static int answered_no_agent(struct op_req *o, int status, const redisReply *reply)
{
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        failed_store(o->req);
        return 1;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        db_httpd_respond_error(o->req, 404, "no_agent", "no such agent");
        return 1;
    }
    return 0;
}

static void secret_stored_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op_req *o = arg;
    (void)errstr;
    if (!answered_no_agent(o, status, reply)) {
        static const char ok[] = "{\"ok\":true}";
        db_httpd_respond(o->req, 200, "application/json", ok, sizeof ok - 1, NULL);
    }
    op_free(o);
}

static void secret_hashed_cb(int ok, const char *hash, void *arg)
{
    struct op_req *o = arg;
    if (!ok || !(o->hash = strdup(hash))) {
        db_httpd_respond_error(o->req, 500, "internal", "could not hash the secret");
        op_free(o);
        return;
    }
    const char *args[] = {o->agent, o->hash, o->role, o->scope};
    db_console_auth_run(o->svc, secret_stored_cb, o, "secret_set", 4, args);
}

static void invite_made_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct op_req *o = arg;
    (void)errstr;
    if (!answered_no_agent(o, status, reply)) {
        const char *base = db_console_opts_of(o->svc->cfg->cfg).public_url;
        char url[512];
        /* The token rides in the fragment: browsers send it neither to the server's logs
         * nor in a Referer. */
        snprintf(url, sizeof url, "%s/console/#invite=%s", base ? base : "", o->token);
        json_t *out = json_pack("{s:s, s:s, s:I}", "url", url, "token", o->token, "expires_in",
                                (json_int_t)o->ttl);
        if (out) db_respond_json(o->req, 200, out);
        else db_httpd_respond_error(o->req, 500, "internal", "out of memory");
        json_decref(out);
    }
    op_free(o);
}

static void operator_route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    char buf[256];
    char *seg[2];
    const char *m = db_httpd_req_method(req);
    if (!db_route_segments(db_httpd_req_path(req), "/v1/console/agents/", buf, sizeof buf, seg,
                           2) ||
        (strcmp(seg[1], "secret") && strcmp(seg[1], "invite"))) {
        db_httpd_respond_error(req, 404, "not_found", "no such route");
        return;
    }
    int setting = strcmp(seg[1], "secret") == 0; /* else an invitation */
    const char *want = setting ? "PUT" : "POST";
    if (strcmp(m, want) != 0) {
        db_httpd_respond_error(req, 405, "method_not_allowed",
                               setting ? "use PUT" : "use POST");
        return;
    }
    if (!valid_agent_id(seg[0])) {
        db_respond_field_error(req, 400, "invalid_field", "agent", "want an agent id");
        return;
    }
    json_t *body = db_respond_body_object(req);
    if (!body) return;
    const char *role = db_json_str(body, "role") ? db_json_str(body, "role") : "agent";
    const char *pw = db_json_str(body, "secret");
    struct op_req *o = NULL;
    if (strcmp(role, "agent") && strcmp(role, "supervisor")) {
        db_respond_field_error(req, 400, "invalid_field", "role", "want agent or supervisor");
    } else if (setting && !valid_secret(pw)) {
        db_respond_field_error(req, 400, "invalid_field", "secret",
                               "a secret is 10 to 1024 characters");
    } else if (!(o = calloc(1, sizeof *o))) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
    } else {
        struct db_console_opts opts = db_console_opts_of(who->cfg);
        o->svc = svc;
        o->req = req;
        o->ttl = opts.invite_ttl_s;
        snprintf(o->agent, sizeof o->agent, "%s", seg[0]);
        snprintf(o->role, sizeof o->role, "%s", role);
        snprintf(o->scope, sizeof o->scope, "%s", who->tenant ? who->tenant->name : "");
        if (setting) {
            if (db_password_job(svc->base, pw, NULL, opts.password_iterations, secret_hashed_cb,
                                o) != 0) {
                db_httpd_respond_error(req, 503, "busy", "too many hashes at once, retry");
                op_free(o);
            }
        } else {
            unsigned char raw[32];
            char name[65], ttl[24];
            if (db_random_bytes(raw, sizeof raw) != 0) {
                db_httpd_respond_error(req, 500, "internal", "no random source");
                op_free(o);
            } else {
                db_hex_encode(raw, sizeof raw, o->token);
                db_console_name_of(o->token, name);
                snprintf(ttl, sizeof ttl, "%ld", o->ttl);
                const char *args[] = {o->agent, name, o->role, ttl, o->scope};
                db_console_auth_run(svc, invite_made_cb, o, "invite_new", 5, args);
            }
        }
    }
    json_decref(body);
}

int db_console_auth_routes(struct db_services *svc)
{
    const struct db_route routes[] = {
        {"POST", "/console/api/signin", AUTH_BODY_LIMIT, NULL, DB_ROUTE_OPEN, post_signin, svc, 0},
        {"POST", "/console/api/invite", AUTH_BODY_LIMIT, NULL, DB_ROUTE_OPEN, post_invite, svc, 0},
        {"POST", "/console/api/signout", 1024, NULL, DB_ROUTE_SESSION, post_signout, svc, 0},
        {NULL, "/v1/console/agents/", AUTH_BODY_LIMIT, NULL, DB_ROUTE_TOKEN, operator_route, svc, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (db_router_add(svc->router, &routes[i]) != DB_OK) return DB_ENOMEM;
    return DB_OK;
}
