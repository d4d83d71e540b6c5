/* cw_hook.c - POST /bridges/chatwoot/NAME: the API inbox's callback, Chatwoot to customer.
 *
 * Signed callbacks (Chatwoot 4.13 and later) carry X-Chatwoot-Timestamp and
 * X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>; the
 * signature is checked over the raw bytes in constant time and a timestamp more than 5
 * minutes away from our clock is refused, so a recorded callback cannot be replayed.
 *
 * Only message_created of an outgoing, non-private message is an agent's reply: the
 * bridge's own incoming messages come back here too, and private notes are for agents.  A
 * reply is queued through the store with the client id chatwoot:NAME:<message id>, so a
 * callback delivered twice sends once, and with the message id
 * cw.NAME.<conversation>.<message>, from which the ticks find their Chatwoot message.
 * Chatwoot waits 5 s and does not retry: the answer goes out as soon as the reply is
 * durable.  A reply the gateway cannot send is answered 200 and marked failed in Chatwoot
 * with the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chatwoot/chatwoot.h"
#include "chatwoot/cw_internal.h"
#include "conf/config.h"
#include "services/services.h"
#include "http/respond.h"
#include "http/router.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "net/http_client.h"
#include "net/httpd.h"
#include "send/outbound.h"
#include "store/store.h"
#include "util/crypto.h"
#include "util/json.h"

#define MAX_SKEW_S 300
#define MAX_PARTS 16
#define BODY_LIMIT (1024 * 1024)

struct hook_req {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct db_cfg_ref *cfg;
    const struct db_chatwoot_conf *o; /* borrowed from cfg */
    char bridge[48];
    char conversation[160];
    char platform[32], account[72];
    char *cmds[MAX_PARTS];       /* the outbound commands (JSON), owned */
    char ids[MAX_PARTS][80];
    char client_ids[MAX_PARTS][96];
    size_t n, next;
    long conv, msg;
};

static void hook_free(struct hook_req *h)
{
    for (size_t i = 0; i < h->n; i++) free(h->cmds[i]);
    db_cfg_unref(h->cfg);
    free(h);
}

/* ---- telling Chatwoot a reply failed ---- */

struct patch {
    struct db_metrics *metrics;
    char bridge[48];
};

static void patched_cb(const struct db_http_resp *resp, void *arg)
{
    struct patch *p = arg;
    struct db_log_ctx ctx = {"chatwoot", NULL, NULL, NULL};
    int ok = resp->status >= 200 && resp->status < 300;
    db_metrics_bridge(p->metrics, p->bridge, "status", ok ? "ok" : "failed");
    if (!ok)
        db_log(DB_LOG_WARN, &ctx, "bridge=%s marking a reply failed answered HTTP %ld%s%s",
               p->bridge, resp->status, resp->transport_error ? ": " : "",
               resp->transport_error ? resp->transport_error : "");
    free(p);
}

/* PATCHes message msg of conversation conv to failed with reason: one attempt (the agent
 * sees the message without a tick either way; the log says why). */
static void mark_failed(struct db_services *svc, const struct db_chatwoot_conf *o, const char *bridge,
                        long conv, long msg, const char *reason)
{
    struct db_http_req req;
    struct patch *p = calloc(1, sizeof *p);
    if (!p) return;
    p->metrics = svc->metrics;
    snprintf(p->bridge, sizeof p->bridge, "%s", bridge);
    if (cw_req_status(o, conv, msg, "failed", reason, &req) != DB_OK) {
        free(p);
        return;
    }
    if (db_http_client_send(svc->platform_http, &req, o->timeout_ms, patched_cb, NULL, p, NULL) !=
        DB_OK)
        free(p);
    db_http_req_clear(&req);
}

/* ---- verification ---- */

/* 1 when the request may be trusted; *why for the log otherwise. */
static int verified(struct db_httpd_req *req, const struct db_chatwoot_conf *o, const char **why)
{
    const char *ts = db_httpd_req_header(req, "X-Chatwoot-Timestamp");
    const char *sig = db_httpd_req_header(req, "X-Chatwoot-Signature");
    if (!sig && !ts) {
        *why = "unsigned callback (Chatwoot before 4.13, or no secret on the inbox)";
        return o->allow_unsigned;
    }
    if (!o->secret) {
        *why = "signed callback but no webhook_secret configured";
        return 0;
    }
    if (!ts || !sig) {
        *why = "signature or timestamp missing";
        return 0;
    }
    char *end = NULL;
    long long t = strtoll(ts, &end, 10);
    long long now = (long long)time(NULL);
    if (!*ts || *end || t < now - MAX_SKEW_S || t > now + MAX_SKEW_S) {
        *why = "timestamp more than 5 minutes away";
        return 0;
    }
    size_t len, tl = strlen(ts);
    const unsigned char *body = db_httpd_req_body(req, &len);
    unsigned char *msg = malloc(tl + 1 + len + 1);
    if (!msg) {
        *why = "out of memory";
        return 0;
    }
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    if (len) memcpy(msg + tl + 1, body, len);
    int ok = db_hmac_hex_matches(sig, "sha256=", o->secret, strlen(o->secret), msg, tl + 1 + len);
    free(msg);
    *why = "signature does not match";
    return ok;
}

/* ---- the reply ---- */

static void answer(struct hook_req *h, int status, const char *outcome)
{
    json_t *b = json_pack("{s:s}", "result", outcome);
    db_respond_json(h->req, status, b);
    json_decref(b);
}

static void enqueue_next(struct hook_req *h);

static void enqueued_cb(int status, const char *id, const char *msg_status, int created,
                        void *arg)
{
    struct hook_req *h = arg;
    (void)msg_status;
    struct db_log_ctx ctx = {"chatwoot", h->platform, h->account, id};
    if (status != DB_OK) {
        /* Chatwoot marks the message failed on a non-2xx; the agent can send it again. */
        db_log(DB_LOG_WARN, &ctx, "bridge=%s reply not queued: %s", h->bridge,
               db_strerror(status));
        db_metrics_bridge(h->svc->metrics, h->bridge, "from_helpdesk", "retry");
        db_respond_unavailable(h->req);
        hook_free(h);
        return;
    }
    db_log(DB_LOG_INFO, &ctx, "bridge=%s reply %s", h->bridge,
           created ? "queued" : "already queued (repeated callback)");
    db_metrics_bridge(h->svc->metrics, h->bridge, "from_helpdesk", created ? "ok" : "duplicate");
    enqueue_next(h);
}

static void enqueue_next(struct hook_req *h)
{
    if (h->next == h->n) {
        answer(h, 200, "queued");
        hook_free(h);
        return;
    }
    size_t i = h->next++;
    db_store_enqueue(h->svc->store, h->ids[i], h->client_ids[i], h->conversation, h->platform,
                     h->account, h->cmds[i], enqueued_cb, h);
}

/* deskbridge's media type of a Chatwoot attachment's file_type, or NULL. */
static const char *media_type(const char *file_type)
{
    static const char *const map[][2] = {
        {"image", "image"}, {"audio", "audio"}, {"video", "video"}, {"file", "document"}};
    for (size_t i = 0; file_type && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(file_type, map[i][0]) == 0) return map[i][1];
    return NULL;
}

/* Builds h's outbound commands from the message; 0, or -1 with the reason in why. */
static int build(struct hook_req *h, const json_t *m, char *why, size_t wn)
{
    const char *content = db_json_str(m, "content");
    const char *ctype = db_json_str(m, "content_type");
    const json_t *atts = json_object_get(m, "attachments");
    size_t na = json_is_array(atts) ? json_array_size(atts) : 0;
    if (ctype && strcmp(ctype, "text") != 0) {
        snprintf(why, wn, "content type %.40s cannot be sent to a messenger", ctype);
        return -1;
    }
    if (na > MAX_PARTS) {
        snprintf(why, wn, "more than %d attachments", MAX_PARTS);
        return -1;
    }
    if (!na && (!content || !*content)) {
        snprintf(why, wn, "an empty message cannot be sent");
        return -1;
    }
    size_t parts = na ? na : 1;
    for (size_t i = 0; i < parts; i++) {
        json_t *cmd = json_object();
        if (!cmd) return snprintf(why, wn, "out of memory"), -1;
        if (i == 0)
            snprintf(h->ids[i], sizeof h->ids[i], "cw.%s.%ld.%ld", h->o->name, h->conv, h->msg);
        else
            snprintf(h->ids[i], sizeof h->ids[i], "cw.%s.%ld.%ld.%zu", h->o->name, h->conv,
                     h->msg, i);
        if (i == 0)
            snprintf(h->client_ids[i], sizeof h->client_ids[i], "chatwoot:%s:%ld", h->o->name,
                     h->msg);
        else
            snprintf(h->client_ids[i], sizeof h->client_ids[i], "chatwoot:%s:%ld:%zu",
                     h->o->name, h->msg, i);
        json_object_set_new(cmd, "id", json_string(h->ids[i]));
        json_object_set_new(cmd, "conversation", json_string(h->conversation));
        json_object_set_new(cmd, "client_id", json_string(h->client_ids[i]));
        if (i == 0 && content && *content) json_object_set_new(cmd, "text", json_string(content));
        if (na) {
            const json_t *a = json_array_get(atts, i);
            const char *type = media_type(db_json_str(a, "file_type"));
            const char *url = db_json_str(a, "data_url");
            if (!type || !url) {
                json_decref(cmd);
                snprintf(why, wn, "attachment of type %.32s cannot be sent to a messenger",
                         db_json_str(a, "file_type") ? db_json_str(a, "file_type") : "unknown");
                return -1;
            }
            json_t *media = json_pack("{s:s,s:s}", "url", url, "type", type);
            json_object_set_new(cmd, "media", media);
        }
        const struct db_account *acct;
        struct db_outbound msg;
        const char *field = NULL;
        struct db_err e = {0};
        if (db_outbound_from_json(h->cfg->cfg, cmd, &acct, &msg, &field, &e) != DB_OK) {
            snprintf(why, wn, "%.200s", e.msg);
            json_decref(cmd);
            return -1;
        }
        h->cmds[i] = db_json_dump(cmd);
        json_decref(cmd);
        h->n = i + 1;
        if (!h->cmds[i]) return snprintf(why, wn, "out of memory"), -1;
    }
    return 0;
}

/* The deskbridge conversation a Chatwoot conversation belongs to: the contact-inbox's
 * source_id, which the bridge set to it (the contact's identifier as a fallback). */
static const char *conversation_of(const json_t *m)
{
    const json_t *c = json_object_get(m, "conversation");
    const char *sid = db_json_str(json_object_get(c, "contact_inbox"), "source_id");
    if (sid) return sid;
    return db_json_str(json_object_get(json_object_get(c, "meta"), "sender"), "identifier");
}

static long int_of(const json_t *v)
{
    return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

static void handle(struct db_services *svc, struct db_httpd_req *req, const char *name)
{
    struct db_log_ctx ctx = {"chatwoot", NULL, NULL, NULL};
    struct hook_req *h = calloc(1, sizeof *h);
    if (!h) {
        db_httpd_respond_error(req, 503, "unavailable", "out of memory");
        return;
    }
    h->svc = svc;
    h->req = req;
    h->cfg = db_cfg_ref(svc);
    if (!(h->o = cw_find(h->cfg->cfg, name))) {
        db_httpd_respond_error(req, 404, "not_found", "no such bridge");
        hook_free(h);
        return;
    }
    snprintf(h->bridge, sizeof h->bridge, "chatwoot:%s", h->o->name);
    const char *why = "";
    if (!verified(req, h->o, &why)) {
        db_log(DB_LOG_WARN, &ctx, "bridge=%s callback refused: %s", h->bridge, why);
        db_metrics_bridge(svc->metrics, h->bridge, "from_helpdesk", "refused");
        db_httpd_respond_error(req, 401, "unauthorized", "missing or invalid signature");
        hook_free(h);
        return;
    }
    size_t len;
    const unsigned char *body = db_httpd_req_body(req, &len);
    json_t *m = NULL;
    struct db_err e = {0};
    if (db_json_parse_object(body, len, &m, &e) != DB_OK) {
        db_httpd_respond_error(req, 400, "invalid_json", e.msg);
        hook_free(h);
        return;
    }
    const char *event = db_json_str(m, "event");
    const char *type = db_json_str(m, "message_type");
    const json_t *priv = json_object_get(m, "private");
    long inbox = int_of(json_object_get(json_object_get(m, "inbox"), "id"));
    /* Our own incoming messages and the agents' private notes come back here too. */
    if (!event || strcmp(event, "message_created") != 0 || !type ||
        strcmp(type, "outgoing") != 0 || json_is_true(priv) || (inbox && inbox != h->o->inbox_id)) {
        db_metrics_bridge(svc->metrics, h->bridge, "from_helpdesk", "ignored");
        answer(h, 200, "ignored");
        json_decref(m);
        hook_free(h);
        return;
    }
    h->msg = int_of(json_object_get(m, "id"));
    h->conv = int_of(json_object_get(json_object_get(m, "conversation"), "id"));
    const char *conv = conversation_of(m);
    char reason[256] = "";
    const char *chat = NULL;
    if (!h->msg || !h->conv) {
        json_decref(m);
        db_httpd_respond_error(req, 400, "invalid_body", "message or conversation id missing");
        hook_free(h);
        return;
    }
    if (!conv || strlen(conv) >= sizeof h->conversation ||
        db_conversation_split(conv, h->platform, sizeof h->platform, h->account,
                              sizeof h->account, &chat) != DB_OK ||
        !cw_carries(h->o, h->platform, h->account)) {
        snprintf(reason, sizeof reason,
                 "the conversation is not one of a messenger account this bridge carries");
    } else {
        snprintf(h->conversation, sizeof h->conversation, "%s", conv);
        build(h, m, reason, sizeof reason);
    }
    json_decref(m);
    if (*reason) {
        ctx.platform = *h->platform ? h->platform : NULL;
        ctx.account = *h->account ? h->account : NULL;
        db_log(DB_LOG_INFO, &ctx, "bridge=%s reply %ld not sendable: %s", h->bridge, h->msg,
               reason);
        db_metrics_bridge(svc->metrics, h->bridge, "from_helpdesk", "failed");
        answer(h, 200, "unsupported");
        mark_failed(svc, h->o, h->bridge, h->conv, h->msg, reason);
        hook_free(h);
        return;
    }
    enqueue_next(h);
}

/* /bridges/chatwoot/<NAME> */
static void route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who;
    char buf[128];
    char *seg[1];
    if (!db_route_segments(db_httpd_req_path(req), "/bridges/chatwoot/", buf, sizeof buf, seg, 1))
        db_httpd_respond_error(req, 404, "not_found", "bridge URLs are /bridges/chatwoot/<name>");
    else handle(arg, req, seg[0]);
}

int db_chatwoot_routes(struct db_services *svc, struct db_err *e)
{
    const struct db_route r = {.method = "POST", .path = "/bridges/chatwoot/",
                               .body_limit = BODY_LIMIT, .access = DB_ROUTE_OPEN,
                               .handler = route, .arg = svc};
    return db_router_add(svc->router, &r) == DB_OK ? DB_OK
                                                   : db_err_set(e, DB_ENOMEM, "out of memory");
}
