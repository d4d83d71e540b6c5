/* services.h - what a feature is handed: the shared parts of one gateway process.
 *
 * Workers (sender, dispatcher, automatic answers, helpdesk webhooks, pollers, route owners)
 * get this struct and their own typed options, never the gateway that wires them: they may
 * use the loop, Redis, the store, the metrics registry, the HTTP clients and the router, and
 * read the configuration through a counted reference.  The struct is owned by the gateway
 * (src/app/gateway.c), outlives every worker and is never copied: workers keep its address.
 *
 * The configuration is shared by reference: every request and every send in flight holds a
 * reference to the configuration it started with, so a SIGHUP reload can swap in new
 * accounts while old work finishes against the old ones. */
#ifndef DB_SERVICES_H
#define DB_SERVICES_H

struct event_base;
struct db_config;
struct db_redis;
struct db_blob;
struct db_store;
struct db_metrics;
struct db_http_client;
struct db_httpd;
struct db_router;
struct db_wake;

/* A counted reference to one loaded configuration. */
struct db_cfg_ref {
    struct db_config *cfg;
    int refs;
};

struct db_services {
    struct event_base *base;
    struct db_cfg_ref *cfg;               /* current configuration: db_cfg_ref to keep it */
    struct db_redis *redis;               /* commands and scripts */
    struct db_store *store;               /* the stream and record writes */
    struct db_metrics *metrics;
    struct db_http_client *platform_http; /* operator-configured platform URLs */
    struct db_http_client *payload_http;  /* URLs a platform's answer supplies: SSRF guard */
    struct db_httpd *httpd;               /* the listener (connection gauges) */
    struct db_router *router;             /* where route owners register */
    struct db_wake *wake;                 /* wakes live streams on a write (stream/wake.h) */
    struct db_blob *media_blob;           /* the media store's files ([media_store]), or NULL */
    int stopping;                         /* SIGTERM seen: finish in-flight work and exit */
    char consumer[96];                    /* consumer name in Redis groups: host-pid */
    /* 1 when a helpdesk bridge took over assignment and automatic answers for the account
     * (set by the wiring; NULL: none did).  The dispatcher and the automatic answers ask it,
     * since they sit below the bridges. */
    int (*automation_off)(const struct db_config *cfg, const char *platform,
                          const char *account);
};

/* A new reference to cfg with a count of 1; ownership of cfg passes to it (freed here when
 * out of memory).  NULL when out of memory. */
struct db_cfg_ref *db_cfg_ref_new(struct db_config *cfg);
/* Takes a reference to the current configuration; release with db_cfg_unref. */
struct db_cfg_ref *db_cfg_ref(struct db_services *svc);
/* Drops a reference; the configuration is freed with the last one.  NULL-safe. */
void db_cfg_unref(struct db_cfg_ref *ref);

#endif
