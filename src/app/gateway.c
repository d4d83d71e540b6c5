#include "app/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "app/health.h"
#include "app/memtrim.h"
#include "auto/autoreply.h"
#include "chatwoot/chatwoot.h"
#include "console/console.h"
#include "console/search.h"
#include "dispatch/dispatcher.h"
#include "hookout/hookout.h"
#include "http/router.h"
#include "ingest/webhook.h"
#include "net/httpd.h"
#include "media/blob.h"
#include "media/media.h"
#include "mediastore/mediastore.h"
#include "send/conversation_api.h"
#include "send/messages_api.h"
#include "send/templates.h"
#include "net/http_client.h"
#include "net/netcheck.h"
#include "metrics/metrics.h"
#include "log/log.h"
#include "ingest/poller.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "send/sender.h"
#include "store/store.h"
#include "stream/trim.h"
#include "stream/wake.h"

static void redis_state_cb(int up, void *arg)
{
    struct db_services *svc = arg;
    db_metrics_redis_state(svc->metrics, up);
}

/* Under /v1/ a path no owner registered: 401 without a token like any API route, else 404. */
static void no_api_route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who, (void)arg;
    db_httpd_respond_error(req, 404, "not_found", "no such route");
}

/* Every route owner registers its routes; the order is the order of matching. */
static int register_routes(struct db_services *svc, struct db_err *e)
{
    const struct db_route fallback = {.path = "/v1/", .access = DB_ROUTE_TOKEN,
                                      .handler = no_api_route};
    int rc = db_health_routes(svc, e);
    if (rc == DB_OK) rc = db_metrics_routes(svc, e);
    if (rc == DB_OK) rc = db_webhook_routes(svc, e);
    if (rc == DB_OK) rc = db_messages_api_routes(svc, e);
    if (rc == DB_OK) rc = db_conversation_api_routes(svc, e);
    if (rc == DB_OK) rc = db_templates_routes(svc, e);
    if (rc == DB_OK) rc = db_media_routes(svc, e);
    if (rc == DB_OK) rc = db_dispatch_api_routes(svc, e);
    if (rc == DB_OK) rc = db_chatwoot_routes(svc, e);
    if (rc == DB_OK) rc = db_console_routes(svc, e);
    if (rc == DB_OK && db_router_add(svc->router, &fallback) != DB_OK)
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
    return rc;
}

/* DESKBRIDGE_TEST_ALLOW_FETCH: tests serve the files a webhook names from a fake on
 * 127.0.0.1, which the SSRF guard rightly refuses; this names the one loopback address and
 * port the guarded client may still reach (docs/media.md).  *out is NULL when it is unset
 * or empty.  A value that is not exactly that is refused rather than ignored, and a set one
 * is logged as a warning at every start, so it cannot sit unnoticed in a deployment. */
static int test_allow_fetch(const char **out, struct db_err *e)
{
    const char *v = getenv("DESKBRIDGE_TEST_ALLOW_FETCH");
    struct db_http_allow a;
    *out = NULL;
    if (!v || !*v) return DB_OK;
    if (db_http_allow_parse(v, &a) != 0)
        return db_err_set(e, DB_ECONFIG,
                          "environment: DESKBRIDGE_TEST_ALLOW_FETCH: must be a loopback address "
                          "and port such as 127.0.0.1:8081 (got '%.64s')", v);
    struct db_log_ctx ctx = {"gateway", NULL, NULL, NULL};
    db_log(DB_LOG_WARN, &ctx,
           "DESKBRIDGE_TEST_ALLOW_FETCH=%s: the SSRF guard lets this address through for "
           "tests; never set it in production", v);
    *out = v;
    return DB_OK;
}

int db_gateway_start(struct db_gateway *gw, struct event_base *base, struct db_config *cfg,
                     struct db_err *e)
{
    memset(gw, 0, sizeof *gw);
    gw->svc.base = base;
    gw->svc.automation_off = db_chatwoot_owns_automation;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(gw->svc.consumer, sizeof gw->svc.consumer, "%s-%ld", host, (long)getpid());
    gw->roles = DB_ROLE_INGEST | DB_ROLE_SEND | DB_ROLE_DISPATCH;
    if (cfg->role && strcmp(cfg->role, "ingest") == 0) gw->roles = DB_ROLE_INGEST;
    else if (cfg->role && strcmp(cfg->role, "send") == 0) gw->roles = DB_ROLE_SEND;
    else if (cfg->role && strcmp(cfg->role, "dispatch") == 0) gw->roles = DB_ROLE_DISPATCH;
    if (!cfg->redis_url) {
        db_config_free(cfg);
        return db_err_set(e, DB_ECONFIG, "no Redis configured: set DESKBRIDGE_REDIS_URL");
    }
    gw->svc.cfg = db_cfg_ref_new(cfg);
    if (!gw->svc.cfg) return db_err_set(e, DB_ENOMEM, "out of memory");

    struct db_redis_opts ro = {.url = cfg->redis_url,
                               .command_timeout_ms = cfg->redis_timeout_ms,
                               .name = "deskbridge"};
    gw->svc.metrics = db_metrics_new();
    int rc = gw->svc.metrics ? db_redis_new(base, &ro, &gw->svc.redis, e)
                         : db_err_set(e, DB_ENOMEM, "out of memory");
    if (rc != DB_OK) goto fail;
    db_redis_set_state_cb(gw->svc.redis, redis_state_cb, &gw->svc);
    /* Live streams (agent inboxes, the console) are woken by one blocking read per process. */
    char kick[256];
    db_key_tagged(kick, sizeof kick, cfg->prefix, DB_KEY_WAKE, gw->svc.consumer);
    rc = db_wake_new(base, cfg->redis_url, gw->svc.redis, kick, 0, cfg->redis_timeout_ms,
                     &gw->svc.wake, e);
    if (rc != DB_OK) goto fail;
    gw->svc.store = db_store_new(gw->svc.redis, cfg->prefix, cfg->dedupe_ttl_s);
    if (gw->svc.store) {
        db_store_set_wait(gw->svc.store, cfg->redis_wait_replicas, cfg->redis_timeout_ms);
        db_store_set_dedupe_db(gw->svc.store, cfg->dedupe_db, db_redis_db(gw->svc.redis));
        if (gw->roles & DB_ROLE_INGEST) {
            rc = db_store_start_tx(gw->svc.store, base, &ro, e);
            if (rc != DB_OK) goto fail;
        }
    }
    struct db_http_client_opts ho = {.timeout_ms = 30000, .max_connections = 256,
                                     .max_per_host = 64};
    gw->svc.platform_http = db_http_client_new(base, &ho);
    ho.block_private = 1;
    rc = test_allow_fetch(&ho.test_allow, e);
    if (rc != DB_OK) goto fail;
    gw->svc.payload_http = db_http_client_new(base, &ho);
    if (!gw->svc.store || !gw->svc.platform_http || !gw->svc.payload_http) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    /* Every role serves /healthz, /readyz and the API; only ingest takes webhooks. */
    struct db_httpd_limits lim = {.max_connections = cfg->max_connections};
    gw->svc.router = db_router_new(&gw->svc);
    gw->svc.httpd = gw->svc.router ? db_httpd_new(base, &lim, db_router_body_limit_cb,
                                                  db_router_handle_cb, gw->svc.router)
                                   : NULL;
    if (!gw->svc.httpd) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    /* Every process that serves GET /v1/media reads the media store's files. */
    rc = db_mediastore_blob(base, db_config_obj(cfg, "media_store", NULL), &gw->svc.media_blob,
                            e);
    if (rc != DB_OK) goto fail;
    rc = register_routes(&gw->svc, e);
    if (rc != DB_OK) goto fail;
    rc = db_httpd_listen(gw->svc.httpd, cfg->listen, cfg->workers > 1, e);
    if (rc != DB_OK) goto fail;
    gw->memtrim = db_memtrim_new(base, gw->svc.httpd, gw->svc.metrics);
    /* The operator's routes on an address of their own; the public one then leaves them. */
    if (cfg->admin_listen) {
        gw->admin_httpd = db_httpd_new(base, &lim, db_router_admin_body_limit_cb,
                                       db_router_admin_handle_cb, gw->svc.router);
        rc = gw->admin_httpd ? db_httpd_listen(gw->admin_httpd, cfg->admin_listen, cfg->workers > 1, e)
                             : db_err_set(e, DB_ENOMEM, "out of memory");
        if (rc != DB_OK) goto fail;
    }
    if ((gw->roles & DB_ROLE_INGEST) && cfg->worker == 0) {
        rc = db_poller_start(&gw->svc, 50, &gw->poller, e);
        if (rc != DB_OK) goto fail;
        /* The processes that write the events stream keep the streams trimmed. */
        rc = db_trim_start(&gw->svc, &gw->trim, e);
        if (rc != DB_OK) goto fail;
    }
    if (gw->roles & DB_ROLE_SEND) {
        struct db_sender_opts so = {.claim_idle_ms = cfg->claim_idle_ms};
        rc = db_sender_start(&gw->svc, &so, &gw->sender, e);
        if (rc != DB_OK) goto fail;
    }
    if (gw->roles & DB_ROLE_DISPATCH) {
        rc = db_dispatcher_start(&gw->svc, &gw->dispatcher, e);
        if (rc == DB_OK) rc = db_hookout_start(&gw->svc, &gw->hookout, e);
        if (rc == DB_OK) rc = db_autoreply_start(&gw->svc, &gw->autoreply, e);
        if (rc == DB_OK) rc = db_chatwoot_start(&gw->svc, &gw->chatwoot, e);
        if (rc == DB_OK) rc = db_mediastore_start(&gw->svc, &gw->mediastore, e);
        if (rc == DB_OK) rc = db_search_start(&gw->svc, &gw->search, e);
        if (rc != DB_OK) goto fail;
    }
    return DB_OK;
fail:
    db_gateway_stop(gw);
    return rc;
}

void db_gateway_reload(struct db_gateway *gw, struct db_config *cfg)
{
    cfg->worker = gw->svc.cfg->cfg->worker;
    struct db_cfg_ref *ref = db_cfg_ref_new(cfg);
    if (!ref) return;
    db_cfg_unref(gw->svc.cfg);
    gw->svc.cfg = ref;
    /* Pollers hold the old accounts: restart them on the new ones.  A poll in flight is
     * cancelled unconfirmed, so its updates come again. */
    if ((gw->roles & DB_ROLE_INGEST) && gw->svc.cfg->cfg->worker == 0) {
        db_poller_free(gw->poller);
        gw->poller = NULL;
        struct db_err e = {0};
        if (db_poller_start(&gw->svc, 50, &gw->poller, &e) != DB_OK) {
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
    db_trim_stop(gw->trim);
    db_sender_stop_reading(gw->sender);
    db_dispatcher_stop_reading(gw->dispatcher);
    db_hookout_stop_reading(gw->hookout);
    db_autoreply_stop_reading(gw->autoreply);
    db_chatwoot_stop_reading(gw->chatwoot);
    db_mediastore_stop_reading(gw->mediastore);
    db_search_stop_reading(gw->search);
}

int db_gateway_drain(struct db_gateway *gw)
{
    if (!gw->svc.stopping) {
        gw->svc.stopping = 1;
        db_httpd_stop_accepting(gw->svc.httpd);
        if (gw->admin_httpd) db_httpd_stop_accepting(gw->admin_httpd);
        stop_taking_work(gw);
    }
    return db_httpd_inflight(gw->svc.httpd) == 0 &&
           (!gw->admin_httpd || db_httpd_inflight(gw->admin_httpd) == 0) &&
           db_sender_inflight(gw->sender) == 0 &&
           db_dispatcher_inflight(gw->dispatcher) == 0 && db_hookout_inflight(gw->hookout) == 0 &&
           db_autoreply_inflight(gw->autoreply) == 0 && db_search_inflight(gw->search) == 0 &&
           db_chatwoot_inflight(gw->chatwoot) == 0 &&
           db_mediastore_inflight(gw->mediastore) == 0;
}

void db_gateway_stop(struct db_gateway *gw)
{
    if (!gw) return;
    db_memtrim_free(gw->memtrim);
    gw->memtrim = NULL;
    db_httpd_free(gw->svc.httpd);
    gw->svc.httpd = NULL;
    db_httpd_free(gw->admin_httpd);
    gw->admin_httpd = NULL;
    db_router_free(gw->svc.router);
    gw->svc.router = NULL;
    stop_taking_work(gw);
    /* Cancelling calls runs their callbacks, which may still talk to Redis: free the HTTP
     * client while Redis and the store are alive. */
    db_http_client_free(gw->svc.platform_http);
    gw->svc.platform_http = NULL;
    db_http_client_free(gw->svc.payload_http);
    gw->svc.payload_http = NULL;
    /* Freeing Redis answers every pending command with an error: the modules whose
     * callbacks those are must still be alive, so they go after it. */
    db_redis_free(gw->svc.redis);
    gw->svc.redis = NULL;
    /* After Redis: streams ended by its failed callbacks still drop their watches. */
    db_wake_free(gw->svc.wake);
    gw->svc.wake = NULL;
    db_trim_free(gw->trim);
    gw->trim = NULL;
    db_sender_free(gw->sender);
    gw->sender = NULL;
    db_dispatcher_free(gw->dispatcher);
    gw->dispatcher = NULL;
    db_hookout_free(gw->hookout);
    gw->hookout = NULL;
    db_autoreply_free(gw->autoreply);
    gw->autoreply = NULL;
    db_chatwoot_free(gw->chatwoot);
    gw->chatwoot = NULL;
    db_search_free(gw->search);
    gw->search = NULL;
    db_mediastore_free(gw->mediastore);
    gw->mediastore = NULL;
    db_blob_free(gw->svc.media_blob);
    gw->svc.media_blob = NULL;
    db_store_free(gw->svc.store);
    gw->svc.store = NULL;
    db_cfg_unref(gw->svc.cfg);
    gw->svc.cfg = NULL;
    db_metrics_free(gw->svc.metrics);
    gw->svc.metrics = NULL;
}
