/* webhook.c - POST/GET /webhooks/{platform}/{account}: verify, parse, store, answer.
 *
 * A webhook is answered 2xx only after its events are in Redis; when Redis cannot take them
 * the answer is 503 with Retry-After so the platform retries, and the dedupe in the store
 * turns those retries into no-ops.  Valid updates the gateway does not use are answered 200
 * (a non-2xx stalls a Telegram chat for up to a day). */
#include <stdlib.h>
#include <string.h>

#include "ingest/webhook.h"

#include "conf/config.h"
#include "deskbridge/connector.h"
#include "services/services.h"
#include "http/respond.h"
#include "http/router.h"
#include "net/httpd.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "ingest/callback_answer.h"
#include "store/store.h"
#include "util/id.h"
#include "util/join.h"

struct wh_req {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct db_cfg_ref *cfg;
    char *reply_body;
    struct db_cb_answers *answers; /* button taps to acknowledge once stored */
    size_t events;
    long kinds[6];       /* events of the batch per kind, for the metrics */
    int64_t started_ms;
    char platform[32];
    char account[72];
    char rid[DB_ID_LEN + 1];
};

static void answer_ok(struct db_httpd_req *req, const char *reply_body)
{
    const char *body = reply_body ? reply_body : "{}";
    db_httpd_respond(req, 200, "application/json", body, strlen(body), NULL);
}

static const char *const kind_names[6] = {"message", "edit",    "callback",
                                          "reaction", "receipt", "membership"};

static void stored_cb(int status, long long written, void *arg)
{
    struct wh_req *w = arg;
    struct db_log_ctx ctx = {"webhook", w->platform, w->account, w->rid};
    struct db_metrics *m = w->svc->metrics;
    db_metrics_store_latency(m, (double)(db_now_ms() - w->started_ms) / 1000.0);
    if (status == DB_OK) {
        db_metrics_webhook(m, w->platform, w->account, written ? "accepted" : "duplicate");
        /* Per kind only when the whole batch was new (the common case); a partly redelivered
         * batch does not say which of its events were written. */
        for (int k = 0; k < 6 && (size_t)written == w->events; k++)
            if (w->kinds[k]) db_metrics_events(m, w->platform, kind_names[k], w->kinds[k]);
        db_log(DB_LOG_INFO, &ctx, "accepted events=%zu written=%lld", w->events, written);
        answer_ok(w->req, w->reply_body);
        db_cb_answers_send(w->svc, w->answers);
        w->answers = NULL;
    } else if (status == DB_EINVAL) {
        /* A connector produced an event that breaks the contract: our bug, not the sender's. */
        db_log(DB_LOG_ERROR, &ctx, "event rejected by the contract check; nothing written");
        db_httpd_respond_error(w->req, 500, "internal", "event failed the contract check");
    } else {
        db_metrics_webhook(m, w->platform, w->account, "unavailable");
        db_log(DB_LOG_WARN, &ctx, "redis unavailable (%s); answered 503", db_strerror(status));
        db_respond_unavailable(w->req);
    }
    db_cb_answers_free(w->answers);
    db_cfg_unref(w->cfg);
    free(w->reply_body);
    free(w);
}

static void handshake(struct db_httpd_req *req, const struct db_account *acct,
                      const struct db_inbound *in, struct db_log_ctx *ctx)
{
    char *body = NULL;
    struct db_err e = {0};
    int rc = db_conn_handshake(acct->conn, acct->state, in, &body, &e);
    if (rc == DB_OK) {
        db_log(DB_LOG_INFO, ctx, "subscription handshake answered");
        db_httpd_respond(req, 200, "text/plain", body, strlen(body), NULL);
    } else if (rc == DB_EUNSUPPORTED) {
        db_httpd_respond_error(req, 405, "method_not_allowed", "use POST");
    } else {
        db_log(DB_LOG_WARN, ctx, "subscription handshake refused: %s", e.msg);
        db_httpd_respond_error(req, 403, "forbidden", "verification failed");
    }
    free(body);
}

static void handle(struct db_services *svc, struct db_httpd_req *req, const char *platform,
                   const char *account)
{
    struct db_cfg_ref *cfg = db_cfg_ref(svc);
    const struct db_account *acct = db_config_account(cfg->cfg, platform, account);
    char rid[DB_ID_LEN + 1];
    db_id_new(rid);
    struct db_log_ctx ctx = {"webhook", platform, account, rid};
    struct db_inbound in;
    struct db_event_list events = {0};
    struct db_err e = {0};

    if (!acct) {
        db_metrics_webhook(svc->metrics, platform, "-", "unknown_account");
        db_log(DB_LOG_WARN, &ctx, "no such account");
        db_httpd_respond_error(req, 404, "unknown_account", "no such platform account");
        goto done;
    }
    db_httpd_req_inbound(req, &in);
    if (strcmp(in.method, "GET") == 0) {
        handshake(req, acct, &in, &ctx);
        goto done;
    }
    if (strcmp(in.method, "POST") != 0) {
        db_httpd_respond_error(req, 405, "method_not_allowed", "use POST");
        goto done;
    }
    /* The signature is checked over the raw bytes before any parsing. */
    if (db_conn_verify(acct->conn, acct->state, &in, &e) != DB_OK) {
        db_metrics_webhook(svc->metrics, platform, account, "unauthorized");
        db_log(DB_LOG_WARN, &ctx, "signature check failed: %s", e.msg);
        db_httpd_respond_error(req, 401, "unauthorized", "missing or invalid signature");
        goto done;
    }
    int rc = db_conn_parse(acct->conn, acct->state, &in, &events, &e);
    if (rc != DB_OK) {
        db_metrics_webhook(svc->metrics, platform, account, "invalid");
        db_log(DB_LOG_WARN, &ctx, "rejected: %s", e.msg);
        db_httpd_respond_error(req, rc == DB_ENOMEM ? 500 : 400,
                               rc == DB_ENOMEM ? "internal" : "invalid_body", e.msg);
        goto done;
    }
    if (events.n == 0) {
        db_metrics_webhook(svc->metrics, platform, account, "ignored");
        db_log(DB_LOG_DEBUG, &ctx, "accepted, nothing to store");
        answer_ok(req, events.reply_body);
        goto done;
    }
    struct wh_req *w = calloc(1, sizeof *w);
    if (!w) {
        db_httpd_respond_error(req, 503, "unavailable", "out of memory");
        goto done;
    }
    w->svc = svc;
    w->req = req;
    w->cfg = cfg;
    w->events = events.n;
    w->started_ms = db_now_ms();
    for (size_t i = 0; i < events.n; i++) {
        const char *kind = json_string_value(json_object_get(events.v[i].json, "kind"));
        for (int k = 0; k < 6 && kind; k++)
            if (strcmp(kind, kind_names[k]) == 0) w->kinds[k]++;
    }
    w->reply_body = events.reply_body;
    events.reply_body = NULL;
    w->answers = db_cb_answers_collect(acct, &events);
    DB_JOIN(w->platform, sizeof w->platform, platform);
    DB_JOIN(w->account, sizeof w->account, account);
    memcpy(w->rid, rid, sizeof rid);
    db_store_ingest(svc->store, platform, account, &events, NULL, stored_cb, w);
    db_event_list_clear(&events);
    return;
done:
    db_event_list_clear(&events);
    db_cfg_unref(cfg);
}

/* The cap of a platform's webhook body, decided from the path before the body is read. */
static size_t body_limit(const char *path, void *arg)
{
    (void)arg;
    /* path is "/webhooks/<platform>/..." */
    const char *p = path + strlen("/webhooks/");
    const char *slash = strchr(p, '/');
    char platform[32];
    if (!slash || (size_t)(slash - p) >= sizeof platform) return 0;
    memcpy(platform, p, (size_t)(slash - p));
    platform[slash - p] = '\0';
    const struct db_connector *c = db_connector_find(platform);
    return c && c->max_body ? c->max_body : 0;
}

/* /webhooks/<platform>/<account> */
static void route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who;
    char platform[32], account[72];
    const char *p = db_httpd_req_path(req) + strlen("/webhooks/"), *slash = strchr(p, '/');
    if (!slash || (size_t)(slash - p) >= sizeof platform || !slash[1] ||
        strlen(slash + 1) >= sizeof account || strchr(slash + 1, '/')) {
        db_httpd_respond_error(req, 404, "not_found",
                               "webhook URLs are /webhooks/<platform>/<account>");
        return;
    }
    memcpy(platform, p, (size_t)(slash - p));
    platform[slash - p] = '\0';
    DB_JOIN(account, sizeof account, slash + 1);
    handle(arg, req, platform, account);
}

int db_webhook_routes(struct db_services *svc, struct db_err *e)
{
    /* Open: each platform's own signature is the check (verify, before parsing). */
    const struct db_route r = {.path = "/webhooks/", .limit = body_limit,
                               .access = DB_ROUTE_OPEN, .handler = route, .arg = svc};
    return db_router_add(svc->router, &r) == DB_OK ? DB_OK
                                                   : db_err_set(e, DB_ENOMEM, "out of memory");
}
