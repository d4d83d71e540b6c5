/* hookout.h - helpdesk webhooks: every event POSTed to each configured endpoint
 * ([helpdesk_webhook NAME]: url, secret, events filter), signed with
 * X-Deskbridge-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)> and
 * X-Deskbridge-Timestamp, delivered at least once and in order per conversation, retried
 * with capped backoff and dead-lettered after max_attempts.  Targets resolving to loopback,
 * private or link-local addresses are refused unless allow_private is set. */
#ifndef DB_HOOKOUT_H
#define DB_HOOKOUT_H

#include "deskbridge/status.h"

struct db_services;
struct db_hookout;
struct db_conf_section;

/* Starts one consumer per configured endpoint (group "deskbridge-hook-<name>" on P:events
 * and P:status).  DB_OK (also with no endpoint configured) or an error in e. */
int db_hookout_start(struct db_services *svc, struct db_hookout **out, struct db_err *e)
    DB_MUST_CHECK;
void db_hookout_stop_reading(struct db_hookout *h);
unsigned long db_hookout_inflight(const struct db_hookout *h);
void db_hookout_free(struct db_hookout *h); /* NULL-safe */

/* A [helpdesk_webhook NAME] section as loaded (hookout_conf.c).  Owned by the
 * configuration. */
struct db_hookout_conf {
    const char *url, *secret;
    const char *events;         /* as written; kinds below is what it means */
    int all_kinds;              /* no events key: every kind, also ones added later */
    unsigned kinds;             /* bit i = db_hookout_kinds[i] */
    int max_attempts, retry_base_ms, retry_max_ms, timeout_ms, allow_private, claim_idle_ms,
        concurrency;
};
/* The event kinds an events filter may name, NULL-terminated; "status" (the last) stands for
 * every entry of P:status. */
extern const char *const db_hookout_kinds[];
#define DB_HOOKOUT_KIND_STATUS (1u << 6)
struct db_conf_table;
extern const struct db_conf_table db_hookout_conf_table;
/* Builds the section alone and drops it: DB_OK or DB_ECONFIG naming file, line and key. */
int db_hookout_conf_check(const struct db_conf_section *sec, struct db_err *e);

#endif
