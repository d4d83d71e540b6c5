/* messages_api.c - the agents' and helpdesks' message routes: POST /v1/messages queues a
 * reply on the outbox, GET /v1/messages/{id} and /v1/messages/by-external/... read one back,
 * GET /v1/canned lists the canned responses.
 *
 * A [gateway] token is the operator's and reaches everything.  A [tenant NAME] token reaches
 * only that tenant's accounts: a message of another account answers as if it did not exist
 * (404), a write naming another account answers 403 (docs/config.md). */
#include "send/messages_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "services/services.h"
#include "http/respond.h"
#include "http/router.h"
#include "log/log.h"
#include "net/httpd.h"
#include "send/canned.h"
#include "send/outbound.h"
#include "send/templates.h"
#include "send/window.h"
#include "store/store.h"
#include "util/id.h"
#include "util/json.h"

#define API_BODY_LIMIT (256 * 1024)

/* ---- POST /v1/messages ---- */

struct send_req {
    struct db_services *svc;
    struct db_httpd_req *req;
    char id[DB_ID_LEN + 1];
    /* What the enqueue needs, copied so that a configuration reload while the window is
     * checked changes nothing under it. */
    char *text, *client_id, *conversation;
    char platform[32], account[96];
};

static void send_req_free(struct send_req *s)
{
    free(s->text);
    free(s->client_id);
    free(s->conversation);
    free(s);
}

static void enqueued_cb(int status, const char *id, const char *msg_status, int created,
                        void *arg)
{
    struct send_req *s = arg;
    struct db_log_ctx ctx = {"api", NULL, NULL, s->id};
    if (status == DB_OK) {
        json_t *obj = json_pack("{s:s, s:s}", "id", id, "status", msg_status ? msg_status : "queued");
        if (obj && !created) json_object_set_new(obj, "duplicate", json_true());
        db_log(DB_LOG_INFO, &ctx, created ? "message queued" : "repeated client_id, id=%s", id);
        if (obj) db_respond_json(s->req, 202, obj);
        else db_httpd_respond_error(s->req, 500, "internal", "out of memory");
        json_decref(obj);
    } else {
        db_log(DB_LOG_WARN, &ctx, "could not queue: %s", db_strerror(status));
        db_respond_unavailable(s->req);
    }
    send_req_free(s);
}

static void enqueue(struct send_req *s)
{
    db_store_enqueue(s->svc->store, s->id, s->client_id, s->conversation, s->platform,
                     s->account, s->text, enqueued_cb, s);
}

/* A free-form WhatsApp reply goes on only inside the customer-service window (send/window.h). */
static void window_cb(int status, void *arg)
{
    struct send_req *s = arg;
    if (status == DB_OK) {
        enqueue(s);
        return;
    }
    if (status == DB_EREJECTED)
        db_respond_field_error(s->req, 409, DB_WINDOW_CLOSED_CODE, "text", DB_WINDOW_CLOSED_MSG);
    else
        db_respond_unavailable(s->req);
    send_req_free(s);
}

/* A template is checked against the account's approved templates (send/templates.h). */
static void template_cb(int status, const char *field, const char *msg, void *arg)
{
    struct send_req *s = arg;
    if (status == DB_OK) {
        enqueue(s);
        return;
    }
    db_respond_field_error(s->req, 400, "invalid_field", field, msg);
    send_req_free(s);
}

static void post_message(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    const struct db_config *cfg = who->cfg;
    const struct db_tenant *tenant = who->tenant;
    json_t *cmd = db_respond_body_object(req);
    struct db_err e = {0};
    if (!cmd) return;
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
        db_respond_field_error(req, 400, "invalid_field", field ? field : "body", e.msg);
        json_decref(cmd);
        return;
    }
    if (!db_tenant_serves(tenant, acct->platform, acct->id)) {
        db_api_refuse(req, tenant, 403, "forbidden", "conversation",
                      "the conversation's account is not the tenant's");
        json_decref(cmd);
        return;
    }
    int check_window = db_window_applies(acct, &msg);
    struct send_req *s = calloc(1, sizeof *s);
    if (s) {
        const char *given = db_json_str(cmd, "id");
        if (given) snprintf(s->id, sizeof s->id, "%s", given);
        else db_id_new(s->id);
        /* The stored command names its id, so the sender and the record agree. */
        json_object_set_new(cmd, "id", json_string(s->id));
        s->text = db_json_dump(cmd);
        s->conversation = strdup(db_json_str(cmd, "conversation"));
        snprintf(s->platform, sizeof s->platform, "%s", acct->platform);
        snprintf(s->account, sizeof s->account, "%s", acct->id);
        /* A client id is remembered gateway-wide; a tenant's is kept apart from the others',
         * so repeating another tenant's client id neither dedupes against nor reveals its
         * message. */
        const char *client_id = db_json_str(cmd, "client_id");
        if (client_id && tenant) {
            if (asprintf(&s->client_id, "tenant:%s:%s", tenant->name, client_id) < 0)
                s->client_id = NULL;
        } else if (client_id) {
            s->client_id = strdup(client_id);
        }
        if (!s->text || !s->conversation || (client_id && !s->client_id)) {
            send_req_free(s);
            s = NULL;
        }
    }
    if (!s) {
        json_decref(cmd);
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    s->req = req;
    s->svc = svc;
    if (db_templates_apply(acct, cmd))
        db_templates_check(svc, acct, json_object_get(cmd, "template"), template_cb, s);
    else if (check_window) db_window_check(svc->store, s->conversation, window_cb, s);
    else enqueue(s);
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

static void get_message(struct db_services *svc, struct db_httpd_req *req,
                        const struct db_tenant *tenant, const char *id)
{
    if (!tenant) {
        db_store_get_message(svc->store, id, message_cb, req);
        return;
    }
    struct scoped_get *g = calloc(1, sizeof *g);
    if (!g) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    *g = (struct scoped_get){.req = req, .ref = db_cfg_ref(svc), .tenant = tenant};
    db_store_get_message(svc->store, id, scoped_message_cb, g);
}

static void by_external(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    char buf[1024];
    char *seg[3];
    if (!db_route_segments(db_httpd_req_path(req), "/v1/messages/by-external/", buf, sizeof buf,
                           seg, 3))
        db_httpd_respond_error(req, 404, "not_found", "no such route");
    else if (!db_tenant_serves(who->tenant, seg[0], seg[1]))
        db_api_refuse(req, who->tenant, 404, "not_found", NULL, "no such message");
    else db_store_get_by_external(svc->store, seg[0], seg[1], seg[2], message_cb, req);
}

static void by_id(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    char buf[1024];
    char *seg[1];
    if (!db_route_segments(db_httpd_req_path(req), "/v1/messages/", buf, sizeof buf, seg, 1))
        db_httpd_respond_error(req, 404, "not_found", "no such route");
    else get_message(arg, req, who->tenant, seg[0]);
}

static void wrong_method(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who, (void)arg;
    db_httpd_respond_error(req, 405, "method_not_allowed", "use POST");
}

static void canned_list(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)arg;
    if (who->tenant)
        db_api_refuse(req, who->tenant, 403, "forbidden", "route",
                      "canned responses are not available to a tenant");
    else db_canned_list_or_respond(who->cfg, req);
}

int db_messages_api_routes(struct db_services *svc, struct db_err *e)
{
    const struct db_route routes[] = {
        {"POST", "/v1/messages", API_BODY_LIMIT, NULL, DB_ROUTE_TOKEN, post_message, svc, 0},
        {NULL, "/v1/messages", API_BODY_LIMIT, NULL, DB_ROUTE_TOKEN, wrong_method, svc, 0},
        {"GET", "/v1/messages/by-external/", 0, NULL, DB_ROUTE_TOKEN, by_external, svc, 0},
        {"GET", "/v1/messages/", 0, NULL, DB_ROUTE_TOKEN, by_id, svc, 0},
        {"GET", "/v1/canned", 0, NULL, DB_ROUTE_TOKEN, canned_list, svc, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (db_router_add(svc->router, &routes[i]) != DB_OK)
            return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}
