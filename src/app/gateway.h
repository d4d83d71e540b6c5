/* gateway.h - one running gateway process: builds the shared services, registers every
 * route owner's routes on one router, and starts the workers its role asks for.
 *
 * Workers get the services struct (src/services/services.h), never the gateway: nothing below
 * src/app/ knows this struct. */
#ifndef DB_GATEWAY_H
#define DB_GATEWAY_H

#include "conf/config.h"
#include "services/services.h"
#include "deskbridge/status.h"

struct event_base;
struct db_sender;
struct db_poller;
struct db_trim;
struct db_dispatcher;
struct db_hookout;
struct db_autoreply;
struct db_chatwoot;
struct db_search;
struct db_httpd;
struct db_mediastore;
struct db_memtrim;

enum db_role_bits { DB_ROLE_INGEST = 1, DB_ROLE_SEND = 2, DB_ROLE_DISPATCH = 4 };

struct db_gateway {
    struct db_services svc;             /* what the workers are handed */
    int roles;                          /* enum db_role_bits */
    struct db_sender *sender;
    struct db_poller *poller;
    struct db_trim *trim; /* keeps the streams near their caps (role ingest, worker 0) */
    struct db_dispatcher *dispatcher;
    struct db_hookout *hookout;
    struct db_autoreply *autoreply;
    struct db_chatwoot *chatwoot;
    struct db_httpd *admin_httpd; /* [gateway] admin_listen: /metrics and /v1, else NULL */
    struct db_search *search; /* the console's search index (role dispatch, with [console]) */
    struct db_mediastore *mediastore;
    struct db_memtrim *memtrim; /* after a burst of connections (app/memtrim.h); may be NULL */
};

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

#endif
