#include "send/templates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "deskbridge/connector.h"
#include "http/respond.h"
#include "http/router.h"
#include "log/log.h"
#include "net/http_client.h"
#include "net/httpd.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "services/services.h"
#include "util/id.h"
#include "util/json.h"

#define PREFIX "/v1/templates/"
#define FETCH_TIMEOUT_MS 15000
/* Meta's page is 100 templates here; an account has at most a few hundred. */
#define MAX_PAGES 20
/* A template missing from the cache refreshes it at most this often. */
#define MISS_REFRESH_MS 60000

/* One look at an account's templates: cache, then (when needed) every page from the
 * platform, then done(). */
struct look {
    struct db_services *svc;
    struct db_cfg_ref *ref; /* keeps the account's connector state */
    const struct db_account *acct;
    char key[256];
    int refresh;            /* fetch even when cached */
    int fetched;            /* the list came from the platform during this look */
    json_t *list;           /* the templates (owned) */
    int64_t fetched_at;     /* ms */
    char *after;            /* next page's cursor */
    int pages;
    char err[sizeof ((struct db_err *)0)->msg];
    void (*done)(struct look *l, int status); /* DB_OK, DB_EUNSUPPORTED, DB_EREJECTED, DB_EAGAIN */
    /* for the route */
    struct db_httpd_req *req;
    /* for a check */
    json_t *tmpl;
    db_templates_check_fn cb;
    void *arg;
};

static void look_free(struct look *l)
{
    json_decref(l->list);
    json_decref(l->tmpl);
    free(l->after);
    db_cfg_unref(l->ref);
    free(l);
}

static struct look *look_new(struct db_services *svc, const char *platform, const char *account)
{
    struct look *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->svc = svc;
    l->ref = db_cfg_ref(svc);
    l->acct = db_config_account(l->ref->cfg, platform, account);
    if (!l->acct) {
        look_free(l);
        return NULL;
    }
    snprintf(l->key, sizeof l->key, "%s:" DB_KEY_TEMPLATES ":%s:%s", l->ref->cfg->prefix,
             platform, account);
    return l;
}

static void fetch_page(struct look *l);

static void stored_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr, (void)arg;
    /* A list that could not be cached is fetched again next time; nothing else depends on it. */
}

static void page_cb(const struct db_http_resp *resp, void *arg)
{
    struct look *l = arg;
    struct db_err e = {0};
    free(l->after);
    l->after = NULL;
    int rc = l->acct->conn->read_templates(l->acct->state, resp, l->list, &l->after, &e);
    if (rc != DB_OK) {
        snprintf(l->err, sizeof l->err, "%s", e.msg);
        l->done(l, rc == DB_EREJECTED ? DB_EREJECTED : DB_EAGAIN);
        return;
    }
    if (l->after && ++l->pages < MAX_PAGES) {
        fetch_page(l);
        return;
    }
    l->fetched = 1;
    l->fetched_at = db_now_ms();
    json_t *c = json_pack("{s:I, s:O}", "fetched_at", (json_int_t)l->fetched_at, "templates", l->list);
    char *text = c ? db_json_dump(c) : NULL;
    if (text) db_redis_cmd(l->svc->redis, stored_cb, NULL, "SET %s %s", l->key, text);
    free(text);
    json_decref(c);
    l->done(l, DB_OK);
}

static void fetch_page(struct look *l)
{
    struct db_http_req req = {0};
    struct db_err e = {0};
    int rc = l->acct->conn->build_templates
                 ? l->acct->conn->build_templates(l->acct->state, l->after, &req, &e)
                 : db_err_set(&e, DB_EUNSUPPORTED, "%s has no templates", l->acct->platform);
    if (rc == DB_OK)
        rc = db_http_client_send(l->svc->platform_http, &req, FETCH_TIMEOUT_MS, page_cb, NULL, l,
                                 NULL);
    db_http_req_clear(&req);
    if (rc == DB_OK) return;
    snprintf(l->err, sizeof l->err, "%s", e.msg[0] ? e.msg : db_strerror(rc));
    l->done(l, rc == DB_EUNSUPPORTED ? DB_EUNSUPPORTED : DB_EAGAIN);
}

static void fetch(struct look *l)
{
    json_decref(l->list);
    l->list = json_array();
    l->pages = 0;
    free(l->after);
    l->after = NULL;
    if (!l->list) {
        snprintf(l->err, sizeof l->err, "out of memory");
        l->done(l, DB_EAGAIN);
        return;
    }
    fetch_page(l);
}

static void cached_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct look *l = arg;
    (void)errstr;
    if (status != DB_OK || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        snprintf(l->err, sizeof l->err, "storage unavailable");
        l->done(l, DB_EAGAIN);
        return;
    }
    json_t *c = NULL;
    struct db_err e = {0};
    if (reply->type == REDIS_REPLY_STRING &&
        db_json_parse_object(reply->str, reply->len, &c, &e) == DB_OK &&
        json_is_array(json_object_get(c, "templates"))) {
        l->list = json_incref(json_object_get(c, "templates"));
        l->fetched_at = json_integer_value(json_object_get(c, "fetched_at"));
    }
    json_decref(c);
    if (l->list && !l->refresh) l->done(l, DB_OK);
    else fetch(l);
}

static void look_start(struct look *l)
{
    db_redis_cmd(l->svc->redis, cached_cb, l, "GET %s", l->key);
}

/* ---- GET /v1/templates/{account}[?refresh=1] ---- */

static void listed(struct look *l, int status)
{
    if (status == DB_OK) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:O}", "platform", l->acct->platform,
                              "account", l->acct->id, "fetched_at", (json_int_t)l->fetched_at,
                              "refreshed", l->fetched, "templates", l->list);
        if (o) db_respond_json(l->req, 200, o);
        else db_httpd_respond_error(l->req, 500, "internal", "out of memory");
        json_decref(o);
    } else if (status == DB_EUNSUPPORTED) {
        db_respond_field_error(l->req, 409, "no_business_account", "account", l->err);
    } else if (status == DB_EREJECTED) {
        db_httpd_respond_error(l->req, 502, "upstream_error", l->err);
    } else {
        db_respond_unavailable(l->req);
    }
    look_free(l);
}

static void list_route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    const char *account = db_httpd_req_path(req) + strlen(PREFIX);
    /* Templates are WhatsApp's: the account is a WhatsApp account's id. */
    if (!*account || strchr(account, '/') || !db_tenant_serves(who->tenant, "whatsapp", account)) {
        db_api_refuse(req, who->tenant, 404, "not_found", NULL, "no such account");
        return;
    }
    struct look *l = look_new(svc, "whatsapp", account);
    if (!l || !l->acct->conn->read_templates) {
        if (l) look_free(l);
        db_httpd_respond_error(req, 404, "not_found", "no such account");
        return;
    }
    char *refresh = db_query_param(db_httpd_req_query(req), "refresh");
    l->refresh = refresh && (strcmp(refresh, "1") == 0 || strcmp(refresh, "true") == 0);
    free(refresh);
    l->req = req;
    l->done = listed;
    look_start(l);
}

int db_templates_routes(struct db_services *svc, struct db_err *e)
{
    const struct db_route r = {"GET", PREFIX, 0, NULL, DB_ROUTE_TOKEN, list_route, svc, 0};
    if (db_router_add(svc->router, &r) != DB_OK) return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

/* ---- checking a send ---- */

int db_templates_apply(const struct db_account *acct, const json_t *cmd)
{
    const json_t *t = json_object_get(cmd, "template");
    return t && !json_is_null(t) && acct->conn->check_template && acct->conn->read_templates;
}

static void checked(struct look *l, int status)
{
    if (status != DB_OK) {
        /* Without the list the send goes on unchecked; Meta refuses what is wrong. */
        if (status != DB_EUNSUPPORTED) {
            struct db_log_ctx ctx = {"api", l->acct->platform, l->acct->id, NULL};
            db_log(DB_LOG_WARN, &ctx, "templates unavailable, send not checked: %s", l->err);
        }
        l->cb(DB_OK, NULL, NULL, l->arg);
        look_free(l);
        return;
    }
    const char *field = NULL;
    struct db_err e = {0};
    int rc = l->acct->conn->check_template(l->acct->state, l->list, l->tmpl, &field, &e);
    if (rc == DB_ENOTFOUND && !l->fetched && db_now_ms() - l->fetched_at > MISS_REFRESH_MS) {
        /* Perhaps approved since the list was fetched. */
        fetch(l);
        return;
    }
    if (rc == DB_OK) l->cb(DB_OK, NULL, NULL, l->arg);
    else l->cb(DB_EINVAL, field ? field : "template", e.msg, l->arg);
    look_free(l);
}

void db_templates_check(struct db_services *svc, const struct db_account *acct,
                        const json_t *tmpl, db_templates_check_fn cb, void *arg)
{
    struct look *l = look_new(svc, acct->platform, acct->id);
    if (l) l->tmpl = json_deep_copy(tmpl);
    if (!l || !l->tmpl) {
        if (l) look_free(l);
        cb(DB_OK, NULL, NULL, arg);
        return;
    }
    l->cb = cb;
    l->arg = arg;
    l->done = checked;
    look_start(l);
}
