/* dispatcher.h - conversations, agents and assignment (a consumer group on P:events; replies
 * are learnt from P:outbox by a second group, see replies.h).
 *
 * See docs/dispatcher.md.  Several dispatcher processes may share one Redis: every state
 * change is one Lua script, so no conversation is assigned twice and no agent goes over
 * capacity; entries left pending by a crashed dispatcher are claimed by another. */
#ifndef DB_DISPATCHER_H
#define DB_DISPATCHER_H

#include "deskbridge/status.h"
#include "redis/keys.h" /* DB_DISPATCH_GROUP */
#include "redis/redis.h"

struct db_services;
struct db_httpd_req;
struct db_dispatcher;

/* Starts consuming P:events for svc (group "deskbridge-dispatch").  DB_OK or an error in e. */
int db_dispatcher_start(struct db_services *svc, struct db_dispatcher **out, struct db_err *e)
    DB_MUST_CHECK;
/* Stops reading; work in flight finishes. */
void db_dispatcher_stop_reading(struct db_dispatcher *d);
/* Entries being processed. */
unsigned long db_dispatcher_inflight(const struct db_dispatcher *d);
void db_dispatcher_free(struct db_dispatcher *d); /* NULL-safe */

/* Registers the dispatcher's API routes (/v1/agents..., /v1/conversations..., /v1/stats;
 * bearer token) on svc->router.  A tenant's token limits what the caller sees and changes to
 * the tenant's accounts and agents.  DB_OK or DB_ENOMEM. */
int db_dispatch_api_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

/* Serves agent id's inbox as Server-Sent Events on req (docs/dispatcher.md: Last-Event-ID,
 * ?from=now); the caller has checked who may read it.  Used by GET /v1/agents/{id}/stream
 * and the console's live stream. */
struct db_httpd_req;
void db_dispatch_stream(struct db_services *svc, struct db_httpd_req *req, const char *id);

/* The [dispatch] section as loaded (dispatch_conf.c; its key table is in features.c). */
struct db_dispatch_conf {
    long offline_grace_ms, claim_idle_ms, max_deliveries, default_capacity, sweep_ms;
    int claim_idle_set;  /* claim_idle_ms given here; else [gateway]'s applies */
    const char *priority_keyword; /* the last line as written (rules holds them all) */
    char *rules;         /* the priority_keyword lines in the script's form, NULL if none */
};
struct db_conf_table;
extern const struct db_conf_table db_dispatch_conf_table;
/* Builds [dispatch] alone and drops it: DB_OK or DB_ECONFIG naming file, line and key. */
struct db_conf_section;
int db_dispatch_conf_check(const struct db_conf_section *sec, struct db_err *e);

/* ---- shared by the dispatcher's files (dispatcher.c, dispatch_api.c) and the tests ---- */

struct db_config;
/* The [dispatch] options with their defaults (docs/dispatcher.md). */
struct db_dispatch_opts {
    long offline_grace_ms, claim_idle_ms, max_deliveries, default_capacity, sweep_ms;
};
struct db_dispatch_opts db_dispatch_opts_of(const struct db_config *cfg);
/* The priority_keyword rules of cfg in the script's form ("word\tpriority\n"...), compiled
 * when the configuration was loaded; borrowed from cfg, NULL when there are none. */
const char *db_dispatch_rules_of(const struct db_config *cfg);

#endif
