/* conversation_api.c - POST /v1/conversations/{id}/typing and /read.
 *
 * The conversation id is the one of the stream contract, <platform>:<account>:<chat>
 * (percent-encoded in the path where the chat id has a '/').  The customer's newest message
 * comes from the store (db_store_customer_last): WhatsApp's typing indicator and read mark
 * both name it.  Answers:
 *   200 {"conversation", "typing": true} / {"conversation", "read": true, "message"}
 *   200 {"conversation", "read": false, "reason"}     platform without read marks for bots
 *   409 typing_unsupported                          platform without a typing indicator
 *   409 no_customer_message                         WhatsApp, no customer message known
 *   400 / 403 / 404 for a bad, foreign or unknown conversation, 502 when the platform refused,
 *   503 when Redis could not answer. */
#include "send/conversation_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "http/respond.h"
#include "http/router.h"
#include "log/log.h"
#include "net/http_client.h"
#include "net/httpd.h"
#include "send/outbound.h"
#include "services/services.h"
#include "store/store.h"

#define PREFIX "/v1/conversations/"
#define PLATFORM_TIMEOUT_MS 10000

enum action { TYPING, READ };

struct call {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct db_cfg_ref *ref; /* keeps the account's state while the platform answers */
    const struct db_account *acct;
    enum action what;
    char conv[320];
    const char *chat; /* into conv */
    char last_in[160];
};

static void call_free(struct call *c)
{
    db_cfg_unref(c->ref);
    free(c);
}

static void answer(struct call *c)
{
    json_t *o = json_pack("{s:s}", "conversation", c->conv);
    if (o && c->what == TYPING) json_object_set_new(o, "typing", json_true());
    if (o && c->what == READ) {
        json_object_set_new(o, "read", json_true());
        if (c->last_in[0]) json_object_set_new(o, "message", json_string(c->last_in));
    }
    if (o) db_respond_json(c->req, 200, o);
    else db_httpd_respond_error(c->req, 500, "internal", "out of memory");
    json_decref(o);
}

static void platform_cb(const struct db_http_resp *resp, void *arg)
{
    struct call *c = arg;
    if (resp->status >= 200 && resp->status < 300) {
        answer(c);
    } else {
        struct db_log_ctx ctx = {"api", c->acct->platform, c->acct->id, NULL};
        db_log(DB_LOG_WARN, &ctx, "%s refused by the platform: HTTP %ld%s%s",
               c->what == TYPING ? "typing" : "read mark", resp->status,
               resp->transport_error ? " " : "", resp->transport_error ? resp->transport_error : "");
        char msg[128];
        snprintf(msg, sizeof msg, "%s answered HTTP %ld", c->acct->platform, resp->status);
        db_httpd_respond_error(c->req, 502, "upstream_error", msg);
    }
    call_free(c);
}

static void last_cb(int status, const char *msg_id, int64_t ts, void *arg)
{
    struct call *c = arg;
    (void)ts;
    if (status != DB_OK && status != DB_ENOTFOUND) {
        db_respond_unavailable(c->req);
        call_free(c);
        return;
    }
    if (msg_id) snprintf(c->last_in, sizeof c->last_in, "%s", msg_id);
    struct db_http_req hr = {0};
    struct db_err e = {0};
    const char *last = c->last_in[0] ? c->last_in : NULL;
    int rc = c->what == TYPING
                 ? db_conn_build_typing(c->acct->conn, c->acct->state, c->chat, last, &hr, &e)
                 : db_conn_build_read_mark(c->acct->conn, c->acct->state, c->chat, last, &hr, &e);
    if (rc == DB_OK)
        rc = db_http_client_send(c->svc->platform_http, &hr, PLATFORM_TIMEOUT_MS, platform_cb,
                                 NULL, c, NULL);
    db_http_req_clear(&hr);
    if (rc == DB_OK) return;
    if (rc == DB_ENOTFOUND)
        db_respond_field_error(c->req, 409, "no_customer_message", "conversation",
                               "the customer has written nothing the gateway knows of to mark");
    else if (rc == DB_EINVAL)
        db_respond_field_error(c->req, 400, "invalid_field", "conversation", e.msg);
    else
        db_httpd_respond_error(c->req, 500, "internal", "could not build the platform request");
    call_free(c);
}

static void handle(struct db_httpd_req *req, const struct db_caller *who, void *arg,
                   enum action what, const char *suffix)
{
    struct db_services *svc = arg;
    const char *path = db_httpd_req_path(req);
    size_t n = strlen(path) - strlen(PREFIX) - strlen(suffix);
    struct call *c = calloc(1, sizeof *c);
    if (!c) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    *c = (struct call){.svc = svc, .req = req, .ref = db_cfg_ref(svc), .what = what};
    char platform[32], account[96];
    if (n >= sizeof c->conv) {
        db_respond_field_error(req, 400, "invalid_field", "conversation", "too long");
        goto done;
    }
    memcpy(c->conv, path + strlen(PREFIX), n);
    c->conv[n] = '\0';
    if (db_conversation_split(c->conv, platform, sizeof platform, account, sizeof account,
                              &c->chat) != DB_OK) {
        db_respond_field_error(req, 400, "invalid_field", "conversation",
                               "must be <platform>:<account>:<chat id>");
        goto done;
    }
    if (!db_tenant_serves(who->tenant, platform, account)) {
        db_api_refuse(req, who->tenant, 404, "not_found", NULL, "no such conversation");
        goto done;
    }
    c->acct = db_config_account(c->ref->cfg, platform, account);
    if (!c->acct) {
        db_httpd_respond_error(req, 404, "not_found", "no such conversation");
        goto done;
    }
    if (!db_conn_chat_id_is_valid(c->acct->conn, c->chat)) {
        db_respond_field_error(req, 400, "invalid_field", "conversation",
                               "has a chat id this platform cannot have");
        goto done;
    }
    if (what == TYPING && !c->acct->conn->build_typing) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s has no typing indicator for bots", platform);
        db_respond_field_error(req, 409, "typing_unsupported", "conversation", msg);
        goto done;
    }
    if (what == READ && !c->acct->conn->build_read_mark) {
        /* Nothing to do, and nothing wrong: the agent's client may call this for every
         * conversation it opens. */
        char why[128];
        snprintf(why, sizeof why, "%s shows bots no read marks", platform);
        json_t *o = json_pack("{s:s, s:b, s:s}", "conversation", c->conv, "read", 0, "reason", why);
        if (o) db_respond_json(req, 200, o);
        else db_httpd_respond_error(req, 500, "internal", "out of memory");
        json_decref(o);
        goto done;
    }
    db_store_customer_last(svc->store, c->conv, last_cb, c);
    return;
done:
    call_free(c);
}

static void typing(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    handle(req, who, arg, TYPING, "/typing");
}

static void read_mark(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    handle(req, who, arg, READ, "/read");
}

int db_conversation_api_routes(struct db_services *svc, struct db_err *e)
{
    /* Small bodies: both take none. */
    const struct db_route routes[] = {
        {"POST", PREFIX "*/typing", 1024, NULL, DB_ROUTE_TOKEN, typing, svc, 0},
        {"POST", PREFIX "*/read", 1024, NULL, DB_ROUTE_TOKEN, read_mark, svc, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (db_router_add(svc->router, &routes[i]) != DB_OK)
            return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}
