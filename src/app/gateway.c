#include "app/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auto/autoreply.h"
#include "dispatch/dispatcher.h"
#include "hookout/hookout.h"
#include "net/http_client.h"
#include "metrics/metrics.h"
#include "log/log.h"
#include "ingest/poller.h"
#include "redis/redis.h"
#include "send/sender.h"
#include "store/store.h"

#define API_BODY_LIMIT (256 * 1024)

struct db_cfg_ref *db_cfg_ref(struct db_gateway *gw)
{
    gw->cfg->refs++;
    return gw->cfg;
}

void db_cfg_unref(struct db_cfg_ref *ref)
{
    if (!ref || --ref->refs > 0) return;
    db_config_free(ref->cfg);
    free(ref);
}

static struct db_cfg_ref *cfg_ref_new(struct db_config *cfg)
{
    struct db_cfg_ref *ref = calloc(1, sizeof *ref);
    if (!ref) {
        db_config_free(cfg);
        return NULL;
    }
    ref->cfg = cfg;
    ref->refs = 1;
    return ref;
}

/* ---- HTTP routing ---- */

static void redis_state_cb(int up, void *arg)
{
    struct db_gateway *gw = arg;
    db_metrics_redis_state(gw->metrics, up);
}

static size_t body_limit_cb(const char *method, const char *path, void *arg)
{
    (void)method;
    if (strncmp(path, "/webhooks/", 10) == 0) return db_webhook_body_limit(arg, path);
    return API_BODY_LIMIT;
}

static void handler_cb(struct db_httpd_req *req, void *arg)
{
    struct db_gateway *gw = arg;
    const char *path = db_httpd_req_path(req);
    if (strncmp(path, "/webhooks/", 10) == 0) {
        /* /webhooks/<platform>/<account> */
        char platform[32], account[72];
        const char *p = path + 10, *slash = strchr(p, '/');
        if (!slash || (size_t)(slash - p) >= sizeof platform || !slash[1] ||
            strlen(slash + 1) >= sizeof account || strchr(slash + 1, '/')) {
            db_httpd_respond_error(req, 404, "not_found",
                                   "webhook URLs are /webhooks/<platform>/<account>");
            return;
        }
        memcpy(platform, p, (size_t)(slash - p));
        platform[slash - p] = '\0';
        snprintf(account, sizeof account, "%s", slash + 1);
        db_webhook_handle(gw, req, platform, account);
        return;
    }
    db_api_handle(gw, req);
}

int db_gateway_start(struct db_gateway *gw, struct event_base *base, struct db_config *cfg,
                     struct db_err *e)
{
    memset(gw, 0, sizeof *gw);
    gw->base = base;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(gw->consumer, sizeof gw->consumer, "%s-%ld", host, (long)getpid());
    gw->roles = DB_ROLE_INGEST | DB_ROLE_SEND | DB_ROLE_DISPATCH;
    if (cfg->role && strcmp(cfg->role, "ingest") == 0) gw->roles = DB_ROLE_INGEST;
    else if (cfg->role && strcmp(cfg->role, "send") == 0) gw->roles = DB_ROLE_SEND;
    else if (cfg->role && strcmp(cfg->role, "dispatch") == 0) gw->roles = DB_ROLE_DISPATCH;
    if (!cfg->redis_url) {
        db_config_free(cfg);
        return db_err_set(e, DB_ECONFIG, "no Redis configured: set DESKBRIDGE_REDIS_URL");
    }
    gw->cfg = cfg_ref_new(cfg);
    if (!gw->cfg) return db_err_set(e, DB_ENOMEM, "out of memory");

    struct db_redis_opts ro = {.url = cfg->redis_url,
                               .command_timeout_ms = cfg->redis_timeout_ms,
                               .name = "deskbridge"};
    gw->metrics = db_metrics_new();
    int rc = gw->metrics ? db_redis_new(base, &ro, &gw->redis, e)
                         : db_err_set(e, DB_ENOMEM, "out of memory");
    if (rc != DB_OK) goto fail;
    db_redis_set_state_cb(gw->redis, redis_state_cb, gw);
    gw->store = db_store_new(gw->redis, cfg->prefix, cfg->dedupe_ttl_s, cfg->stream_maxlen);
    if (gw->store) db_store_set_wait(gw->store, cfg->redis_wait_replicas, cfg->redis_timeout_ms);
    struct db_http_client_opts ho = {.timeout_ms = 30000, .max_connections = 256,
                                     .max_per_host = 64};
    gw->platform_http = db_http_client_new(base, &ho);
    ho.block_private = 1;
    gw->payload_http = db_http_client_new(base, &ho);
    if (!gw->store || !gw->platform_http || !gw->payload_http) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    /* Every role serves /healthz, /readyz and the API; only ingest takes webhooks. */
    struct db_httpd_limits lim = {.max_connections = cfg->max_connections};
    gw->httpd = db_httpd_new(base, &lim, body_limit_cb, handler_cb, gw);
    if (!gw->httpd) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    rc = db_httpd_listen(gw->httpd, cfg->listen, cfg->workers > 1, e);
    if (rc != DB_OK) goto fail;
    if ((gw->roles & DB_ROLE_INGEST) && cfg->worker == 0) {
        rc = db_poller_start(gw, 50, &gw->poller, e);
        if (rc != DB_OK) goto fail;
    }
    if (gw->roles & DB_ROLE_SEND) {
        struct db_sender_opts so = {.claim_idle_ms = cfg->claim_idle_ms};
        rc = db_sender_start(gw, &so, &gw->sender, e);
        if (rc != DB_OK) goto fail;
    }
    if (gw->roles & DB_ROLE_DISPATCH) {
        rc = db_dispatcher_start(gw, &gw->dispatcher, e);
        if (rc == DB_OK) rc = db_hookout_start(gw, &gw->hookout, e);
        if (rc == DB_OK) rc = db_autoreply_start(gw, &gw->autoreply, e);
        if (rc != DB_OK) goto fail;
    }
    return DB_OK;
fail:
    db_gateway_stop(gw);
    return rc;
}

void db_gateway_reload(struct db_gateway *gw, struct db_config *cfg)
{
    cfg->worker = gw->cfg->cfg->worker;
    struct db_cfg_ref *ref = cfg_ref_new(cfg);
    if (!ref) return;
    db_cfg_unref(gw->cfg);
    gw->cfg = ref;
    /* Pollers hold the old accounts: restart them on the new ones.  A poll in flight is
     * cancelled unconfirmed, so its updates come again. */
    if ((gw->roles & DB_ROLE_INGEST) && gw->cfg->cfg->worker == 0) {
        db_poller_free(gw->poller);
        gw->poller = NULL;
        struct db_err e = {0};
        if (db_poller_start(gw, 50, &gw->poller, &e) != DB_OK) {
            struct db_log_ctx ctx = {"gateway", NULL, NULL, NULL};
            db_log(DB_LOG_ERROR, &ctx, "pollers not restarted: %s", e.msg);
        }
    }
}

/* Takes no new work: pollers end (their updates stay unconfirmed), stream readers stop. */
static void stop_taking_work(struct db_gateway *gw)
{
    db_poller_free(gw->poller);
    gw->poller = NULL;
    db_sender_stop_reading(gw->sender);
    db_dispatcher_stop_reading(gw->dispatcher);
    db_hookout_stop_reading(gw->hookout);
    db_autoreply_stop_reading(gw->autoreply);
}

int db_gateway_drain(struct db_gateway *gw)
{
    if (!gw->stopping) {
        gw->stopping = 1;
        db_httpd_stop_accepting(gw->httpd);
        stop_taking_work(gw);
    }
    return db_httpd_inflight(gw->httpd) == 0 && db_sender_inflight(gw->sender) == 0 &&
           db_dispatcher_inflight(gw->dispatcher) == 0 && db_hookout_inflight(gw->hookout) == 0 &&
           db_autoreply_inflight(gw->autoreply) == 0;
}

void db_gateway_stop(struct db_gateway *gw)
{
    if (!gw) return;
    db_httpd_free(gw->httpd);
    gw->httpd = NULL;
    stop_taking_work(gw);
    /* Cancelling calls runs their callbacks, which may still talk to Redis: free the HTTP
     * client while Redis and the store are alive. */
    db_http_client_free(gw->platform_http);
    gw->platform_http = NULL;
    db_http_client_free(gw->payload_http);
    gw->payload_http = NULL;
    /* Freeing Redis answers every pending command with an error: the modules whose
     * callbacks those are must still be alive, so they go after it. */
    db_redis_free(gw->redis);
    gw->redis = NULL;
    db_sender_free(gw->sender);
    gw->sender = NULL;
    db_dispatcher_free(gw->dispatcher);
    gw->dispatcher = NULL;
    db_hookout_free(gw->hookout);
    gw->hookout = NULL;
    db_autoreply_free(gw->autoreply);
    gw->autoreply = NULL;
    db_store_free(gw->store);
    gw->store = NULL;
    db_cfg_unref(gw->cfg);
    gw->cfg = NULL;
    db_metrics_free(gw->metrics);
    gw->metrics = NULL;
}
