/* api.c - the agent/helpdesk HTTP API and the health endpoints.
 *
 * Every /v1 call needs "Authorization: Bearer <token>" matching one of the configured API
 * tokens (several during a rotation), compared in constant time.  Without a configured token
 * the API refuses everything: an open API would let anyone write to customers. */
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"
#include "autoreply.h"
#include "dispatcher.h"
#include "gateway.h"
#include "media.h"
#include "metrics.h"
#include "log.h"
#include "outbound.h"
#include "redis.h"
#include "store.h"
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

static int authorized(const struct db_config *cfg, struct db_httpd_req *req)
{
    const char *h = db_httpd_req_header(req, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    int ok = 0;
    /* Check every token (no early exit) so timing does not tell which one matched. */
    for (size_t i = 0; i < cfg->n_api_tokens; i++) ok |= db_ct_streq(h + 7, cfg->api_tokens[i]);
    return ok;
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
                         struct db_httpd_req *req)
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
    if (db_canned_expand(cfg, cmd, &e) != DB_OK) field = "canned";
    if (field || db_outbound_from_json(cfg, cmd, &acct, &msg, &field, &e) != DB_OK) {
        json_t *err = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_field", "field",
                                field ? field : "body", "message", e.msg);
        db_respond_json(req, 400, err);
        json_decref(err);
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
    db_store_enqueue(gw->store, s->id, db_json_str(cmd, "client_id"),
                     db_json_str(cmd, "conversation"), acct->platform, acct->id, text,
                     enqueued_cb, s);
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
    if (!authorized(cfg, req)) {
        db_httpd_respond_error(req, 401, "unauthorized",
                               cfg->n_api_tokens ? "missing or wrong bearer token"
                                                 : "the API is disabled: set DESKBRIDGE_API_TOKEN");
    } else if (strcmp(path, "/v1/messages") == 0) {
        if (post) post_message(gw, cfg, req);
        else db_httpd_respond_error(req, 405, "method_not_allowed", "use POST");
    } else if (get && segments(path, "/v1/messages/by-external/", buf, sizeof buf, seg, 3)) {
        db_store_get_by_external(gw->store, seg[0], seg[1], seg[2], message_cb, req);
    } else if (get && segments(path, "/v1/messages/", buf, sizeof buf, seg, 1)) {
        db_store_get_message(gw->store, seg[0], message_cb, req);
    } else if (get && segments(path, "/v1/media/", buf, sizeof buf, seg, 3)) {
        db_media_handle(gw, req, seg[0], seg[1], seg[2]);
    } else if (get && strcmp(path, "/v1/canned") == 0) {
        db_canned_list_handle(gw, req);
    } else if (db_dispatch_api_handle(gw, req)) {
        /* answered by the dispatcher */
    } else {
        db_httpd_respond_error(req, 404, "not_found", "no such route");
    }
    db_cfg_unref(ref);
}
