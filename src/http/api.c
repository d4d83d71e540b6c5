/* api.c - the agent/helpdesk HTTP API and the health endpoints.
 *
 * Every /v1 call needs "Authorization: Bearer <token>" matching one of the configured API
 * tokens (several during a rotation), compared in constant time.  Without a configured token
 * the API refuses everything: an open API would let anyone write to customers.
 *
 * A [gateway] token is the operator's and reaches everything.  A [tenant NAME] token reaches
 * only that tenant's accounts: a message or conversation of another account answers as if it
 * did not exist (404), a write or download naming another account answers 403, and a route
 * that cannot be scoped answers 403 (docs/config.md, docs/dispatcher.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"
#include "auto/autoreply.h"
#include "dispatch/dispatcher.h"
#include "app/gateway.h"
#include "media/media.h"
#include "metrics/metrics.h"
#include "log/log.h"
#include "send/outbound.h"
#include "redis/redis.h"
#include "store/store.h"
#include "util/crypto.h"
#include "util/id.h"
#include "util/json.h"

void db_respond_json(struct db_httpd_req *req, int status, const json_t *obj)
{
    char *text = db_json_dump(obj);
    if (!text) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    db_httpd_respond(req, status, "application/json", text, strlen(text), NULL);
    free(text);
}

/* Who is calling: nobody (ok 0), the operator (tenant NULL) or one tenant. */
struct caller {
    int ok;
    const struct db_tenant *tenant; /* borrowed from the configuration */
};

static struct caller authorize(const struct db_config *cfg, struct db_httpd_req *req)
{
    struct caller who = {0};
    const char *h = db_httpd_req_header(req, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return who;
    /* Check every token (no early exit) so timing does not tell which one matched.  Tokens
     * are unique across the gateway and the tenants (config check), so at most one does. */
    for (size_t i = 0; i < cfg->n_api_tokens; i++)
        who.ok |= db_ct_streq(h + 7, cfg->api_tokens[i]);
    for (size_t t = 0; t < cfg->n_tenants; t++)
        for (size_t i = 0; i < cfg->tenants[t].n_api_tokens; i++) {
            int hit = db_ct_streq(h + 7, cfg->tenants[t].api_tokens[i]);
            who.ok |= hit;
            if (hit) who.tenant = &cfg->tenants[t];
        }
    return who;
}

/* The log line names the tenant and the kind of route only: the path may hold a customer's
 * id. */
void db_api_refuse(struct db_httpd_req *req, const struct db_tenant *t, int status,
                   const char *code, const char *field, const char *what)
{
    struct db_log_ctx ctx = {"api", NULL, NULL, NULL};
    db_log(DB_LOG_INFO, &ctx, "tenant=%s refused %d %s", t->name, status, code);
    if (!field) {
        db_httpd_respond_error(req, status, code, what);
        return;
    }
    json_t *err = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "field", field,
                            "message", what);
    if (err) db_respond_json(req, status, err);
    else db_httpd_respond_error(req, status, code, what);
    json_decref(err);
}

/* ---- POST /v1/messages ---- */

struct send_req {
    struct db_gateway *gw;
    struct db_httpd_req *req;
    char id[DB_ID_LEN + 1];
    char *conversation;
    char *agent;
};

static void enqueued_cb(int status, const char *id, const char *msg_status, int created,
                        void *arg)
{
    struct send_req *s = arg;
    struct db_log_ctx ctx = {"api", NULL, NULL, s->id};
    if (status == DB_OK) {
        json_t *obj = json_pack("{s:s, s:s}", "id", id, "status", msg_status ? msg_status : "queued");
        if (obj && !created) json_object_set_new(obj, "duplicate", json_true());
        db_log(DB_LOG_INFO, &ctx, created ? "message queued" : "repeated client_id, id=%s", id);
        if (created) db_dispatch_note_reply(s->gw, s->conversation, id, s->agent);
        if (obj) db_respond_json(s->req, 202, obj);
        else db_httpd_respond_error(s->req, 500, "internal", "out of memory");
        json_decref(obj);
    } else {
        db_log(DB_LOG_WARN, &ctx, "could not queue: %s", db_strerror(status));
        static const char *const retry[] = {"Retry-After: 1", NULL};
        static const char body[] =
            "{\"error\":{\"code\":\"unavailable\",\"message\":\"storage unavailable, retry\"}}";
        db_httpd_respond(s->req, 503, "application/json", body, sizeof body - 1, retry);
    }
    free(s->conversation);
    free(s->agent);
    free(s);
}

static void post_message(struct db_gateway *gw, const struct db_config *cfg,
                         struct db_httpd_req *req, const struct db_tenant *tenant)
{
    size_t len;
    const unsigned char *body = db_httpd_req_body(req, &len);
    json_t *cmd = NULL;
    struct db_err e = {0};
    if (db_json_parse_object(body, len, &cmd, &e) != DB_OK) {
        json_t *err = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_json", "field",
                                "body", "message", e.msg);
        db_respond_json(req, 400, err);
        json_decref(err);
        return;
    }
    const struct db_account *acct;
    struct db_outbound msg;
    const char *field = NULL;
    /* Canned responses are the operator's, shared by every account: not for a tenant. */
    if (tenant && json_object_get(cmd, "canned")) {
        db_api_refuse(req, tenant, 403, "forbidden", "canned",
                      "canned responses are not available to a tenant");
        json_decref(cmd);
        return;
    }
    if (db_canned_expand(cfg, cmd, &e) != DB_OK) field = "canned";
    if (field || db_outbound_from_json(cfg, cmd, &acct, &msg, &field, &e) != DB_OK) {
        json_t *err = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_field", "field",
                                field ? field : "body", "message", e.msg);
        db_respond_json(req, 400, err);
        json_decref(err);
        json_decref(cmd);
        return;
    }
    if (!db_tenant_serves(tenant, acct->platform, acct->id)) {
        db_api_refuse(req, tenant, 403, "forbidden", "conversation",
                      "the conversation's account is not the tenant's");
        json_decref(cmd);
        return;
    }
    struct send_req *s = calloc(1, sizeof *s);
    char *text = NULL;
    if (s) {
        const char *given = db_json_str(cmd, "id");
        if (given) snprintf(s->id, sizeof s->id, "%s", given);
        else db_id_new(s->id);
        /* The stored command names its id, so the sender and the record agree. */
        json_object_set_new(cmd, "id", json_string(s->id));
        text = db_json_dump(cmd);
    }
    if (s) {
        s->conversation = strdup(db_json_str(cmd, "conversation"));
        const char *agent = db_json_str(cmd, "agent");
        s->agent = agent ? strdup(agent) : NULL;
    }
    if (!s || !text || !s->conversation) {
        if (s) free(s->conversation), free(s->agent);
        free(s);
        free(text);
        json_decref(cmd);
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    s->req = req;
    s->gw = gw;
    /* A client id is remembered gateway-wide; a tenant's is kept apart from the others', so
     * repeating another tenant's client id neither dedupes against nor reveals its message. */
    const char *client_id = db_json_str(cmd, "client_id");
    char *scoped = NULL;
    if (client_id && tenant && asprintf(&scoped, "tenant:%s:%s", tenant->name, client_id) < 0)
        scoped = NULL;
    if (client_id && tenant && !scoped) {
        free(s->conversation), free(s->agent), free(s), free(text);
        json_decref(cmd);
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    db_store_enqueue(gw->store, s->id, scoped ? scoped : client_id,
                     db_json_str(cmd, "conversation"), acct->platform, acct->id, text,
                     enqueued_cb, s);
    free(scoped);
    free(text);
    json_decref(cmd);
}

/* ---- GET /v1/messages/... ---- */

static void message_cb(int status, json_t *obj, void *arg)
{
    struct db_httpd_req *req = arg;
    if (status == DB_OK) db_respond_json(req, 200, obj);
    else if (status == DB_ENOTFOUND) db_httpd_respond_error(req, 404, "not_found", "no such message");
    else db_httpd_respond_error(req, 503, "unavailable", "storage unavailable, retry");
}

/* A tenant's message read: the configuration stays referenced until the answer, since the
 * tenant's account list is read then. */
struct scoped_get {
    struct db_httpd_req *req;
    struct db_cfg_ref *ref;
    const struct db_tenant *tenant;
};

static void scoped_message_cb(int status, json_t *obj, void *arg)
{
    struct scoped_get *g = arg;
    const char *pl = status == DB_OK ? db_json_str(obj, "platform") : NULL;
    const char *ac = status == DB_OK ? db_json_str(obj, "account") : NULL;
    /* Another tenant's message answers exactly like a missing one. */
    if (status == DB_OK && (!pl || !ac || !db_tenant_serves(g->tenant, pl, ac)))
        db_api_refuse(g->req, g->tenant, 404, "not_found", NULL, "no such message");
    else message_cb(status, obj, g->req);
    db_cfg_unref(g->ref);
    free(g);
}

static void get_message(struct db_gateway *gw, struct db_httpd_req *req,
                        const struct db_tenant *tenant, const char *id)
{
    if (!tenant) {
        db_store_get_message(gw->store, id, message_cb, req);
        return;
    }
    struct scoped_get *g = calloc(1, sizeof *g);
    if (!g) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    *g = (struct scoped_get){.req = req, .ref = db_cfg_ref(gw), .tenant = tenant};
    db_store_get_message(gw->store, id, scoped_message_cb, g);
}

/* Splits path after prefix into exactly n segments (in place in buf). */
static int segments(const char *path, const char *prefix, char *buf, size_t bufsz, char **seg,
                    int n)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0) return 0;
    if (snprintf(buf, bufsz, "%s", path + pl) >= (int)bufsz) return 0;
    char *p = buf;
    for (int i = 0; i < n; i++) {
        seg[i] = p;
        char *slash = strchr(p, '/');
        if (i < n - 1) {
            if (!slash) return 0;
            *slash = '\0';
            p = slash + 1;
        } else if (slash) {
            return 0;
        }
        if (!*seg[i]) return 0;
    }
    return 1;
}

/* ---- health ---- */

static void ready_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (status == DB_OK && reply->type == REDIS_REPLY_STATUS) {
        static const char ok[] = "{\"status\":\"ready\"}";
        db_httpd_respond(req, 200, "application/json", ok, sizeof ok - 1, NULL);
    } else {
        static const char down[] =
            "{\"status\":\"not ready\",\"error\":{\"code\":\"redis\",\"message\":\"redis not writable\"}}";
        db_httpd_respond(req, 503, "application/json", down, sizeof down - 1, NULL);
    }
}

void db_api_handle(struct db_gateway *gw, struct db_httpd_req *req)
{
    const char *method = db_httpd_req_method(req), *path = db_httpd_req_path(req);
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

    if (strcmp(path, "/healthz") == 0 && get) {
        static const char ok[] = "{\"status\":\"ok\"}";
        db_httpd_respond(req, 200, "application/json", ok, sizeof ok - 1, NULL);
        return;
    }
    if (strcmp(path, "/readyz") == 0 && get) {
        if (gw->stopping) {
            db_httpd_respond_error(req, 503, "stopping", "shutting down");
            return;
        }
        /* Ready means writable: a replica or a full Redis answers PING but not SET. */
        db_redis_cmd(gw->redis, ready_cb, req, "SET %s:ready:%s 1 PX 10000",
                     gw->cfg->cfg->prefix, gw->consumer);
        return;
    }
    if (strcmp(path, "/metrics") == 0 && get) {
        db_metrics_handle(gw, req);
        return;
    }
    if (strncmp(path, "/v1/", 4) != 0) {
        db_httpd_respond_error(req, 404, "not_found", "no such route");
        return;
    }

    struct db_cfg_ref *ref = db_cfg_ref(gw);
    const struct db_config *cfg = ref->cfg;
    char buf[1024];
    char *seg[3];
    struct caller who = authorize(cfg, req);
    const struct db_tenant *t = who.tenant;
    if (!who.ok) {
        db_httpd_respond_error(req, 401, "unauthorized",
                               cfg->n_api_tokens || cfg->n_tenants
                                   ? "missing or wrong bearer token"
                                   : "the API is disabled: set DESKBRIDGE_API_TOKEN");
    } else if (strcmp(path, "/v1/messages") == 0) {
        if (post) post_message(gw, cfg, req, t);
        else db_httpd_respond_error(req, 405, "method_not_allowed", "use POST");
    } else if (get && segments(path, "/v1/messages/by-external/", buf, sizeof buf, seg, 3)) {
        if (!db_tenant_serves(t, seg[0], seg[1]))
            db_api_refuse(req, t, 404, "not_found", NULL, "no such message");
        else db_store_get_by_external(gw->store, seg[0], seg[1], seg[2], message_cb, req);
    } else if (get && segments(path, "/v1/messages/", buf, sizeof buf, seg, 1)) {
        get_message(gw, req, t, seg[0]);
    } else if (get && segments(path, "/v1/media/", buf, sizeof buf, seg, 3)) {
        if (!db_tenant_serves(t, seg[0], seg[1]))
            db_api_refuse(req, t, 403, "forbidden", "account", "the account is not the tenant's");
        else db_media_handle(gw, req, seg[0], seg[1], seg[2]);
    } else if (get && strcmp(path, "/v1/canned") == 0) {
        if (t)
            db_api_refuse(req, t, 403, "forbidden", "route",
                          "canned responses are not available to a tenant");
        else db_canned_list_handle(gw, req);
    } else if (db_dispatch_api_handle(gw, req, t)) {
        /* answered by the dispatcher */
    } else {
        db_httpd_respond_error(req, 404, "not_found", "no such route");
    }
    db_cfg_unref(ref);
}
