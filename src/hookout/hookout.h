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
int db_hookout_start(struct db_services *gw, struct db_hookout **out, struct db_err *e)
    DB_MUST_CHECK;
void db_hookout_stop_reading(struct db_hookout *h);
unsigned long db_hookout_inflight(const struct db_hookout *h);
void db_hookout_free(struct db_hookout *h); /* NULL-safe */

/* Config section [helpdesk_webhook NAME] check (features.c). */
int db_hookout_conf_check(const struct db_conf_section *sec, struct db_err *e);

#endif
