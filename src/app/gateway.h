/* gateway.h - one running gateway process: the event loop and the parts it wires together.
 *
 * The configuration is shared by reference: every request and every send in flight holds a
 * reference to the configuration it started with, so a SIGHUP reload can swap in new
 * accounts while old work finishes against the old ones. */
#ifndef DB_GATEWAY_H
#define DB_GATEWAY_H

#include <stddef.h>

#include "conf/config.h"
#include "deskbridge/status.h"
#include "net/httpd.h"

struct event_base;
struct db_redis;
struct db_store;
struct db_http_client;
struct db_sender;
struct db_poller;
struct db_metrics;
struct db_dispatcher;
struct db_hookout;
struct db_autoreply;

/* A counted reference to one loaded configuration. */
struct db_cfg_ref {
    struct db_config *cfg;
    int refs;
};

enum db_role_bits { DB_ROLE_INGEST = 1, DB_ROLE_SEND = 2, DB_ROLE_DISPATCH = 4 };

struct db_gateway {
    struct event_base *base;
    struct db_cfg_ref *cfg;             /* current configuration */
    int roles;                          /* enum db_role_bits */
    struct db_redis *redis;             /* commands and scripts */
    struct db_store *store;
    struct db_httpd *httpd;
    struct db_http_client *platform_http; /* operator-configured platform URLs */
    struct db_http_client *payload_http;  /* URLs a platform's answer supplies: SSRF guard */
    struct db_sender *sender;
    struct db_poller *poller;
    struct db_dispatcher *dispatcher;
    struct db_hookout *hookout;
    struct db_autoreply *autoreply;
    struct db_metrics *metrics;
    int stopping;                       /* SIGTERM seen: finish in-flight work and exit */
    char consumer[96];                  /* consumer name in Redis groups: host-pid */
};

/* Takes a reference to the current configuration; release with db_cfg_unref. */
struct db_cfg_ref *db_cfg_ref(struct db_gateway *gw);
/* Drops a reference; the configuration is freed with the last one.  NULL-safe. */
void db_cfg_unref(struct db_cfg_ref *ref);

/* Builds every part from cfg (ownership of cfg passes to the gateway) on base and starts
 * listening, polling and sending according to roles.  DB_OK or an error in e. */
int db_gateway_start(struct db_gateway *gw, struct event_base *base, struct db_config *cfg,
                     struct db_err *e) DB_MUST_CHECK;
/* Replaces the configuration (ownership of cfg passes); pollers follow the new accounts. */
void db_gateway_reload(struct db_gateway *gw, struct db_config *cfg);
/* Stops accepting work; returns 1 once nothing is in flight any more. */
int db_gateway_drain(struct db_gateway *gw);
/* Frees every part.  NULL-safe. */
void db_gateway_stop(struct db_gateway *gw);

/* HTTP entry points (webhook.c, api.c). */
void db_webhook_handle(struct db_gateway *gw, struct db_httpd_req *req, const char *platform,
                       const char *account);
size_t db_webhook_body_limit(struct db_gateway *gw, const char *path);
void db_api_handle(struct db_gateway *gw, struct db_httpd_req *req);

/* Answers with the JSON text of obj (a borrowed reference). */
void db_respond_json(struct db_httpd_req *req, int status, const json_t *obj);
/* Answers a tenant's request for something outside its accounts (api.c) with status and
 * {"error": {code, message, field}} (field may be NULL), and logs the tenant's name, never a
 * token or the path.  A 404 must carry the same code and message as a real miss. */
struct db_tenant;
void db_api_refuse(struct db_httpd_req *req, const struct db_tenant *t, int status,
                   const char *code, const char *field, const char *what);

#endif
