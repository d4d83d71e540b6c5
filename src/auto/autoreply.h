/* autoreply.h - answers the gateway gives by itself: away messages outside business hours,
 * greetings, keyword answers.  Every automatic answer is
 * queued through the normal outbox (rate limits, retries, status tracking) and marked
 * "automatic": true with the rule that sent it.  See docs/business-hours.md. */
#ifndef DB_AUTOREPLY_H
#define DB_AUTOREPLY_H

#include <jansson.h>

#include "deskbridge/status.h"

struct db_services;
struct db_httpd_req;
struct db_autoreply;
struct db_config;

/* Starts consuming P:events (group "deskbridge-autoreply").  DB_OK (also when nothing is
 * configured) or an error in e. */
int db_autoreply_start(struct db_services *svc, struct db_autoreply **out, struct db_err *e)
    DB_MUST_CHECK;
void db_autoreply_stop_reading(struct db_autoreply *a);
unsigned long db_autoreply_inflight(const struct db_autoreply *a);
void db_autoreply_free(struct db_autoreply *a); /* NULL-safe */

/* The keyword rules (db_keyword_rule_for, db_keyword_resolves) are in auto/rules.h. */
#include "auto/rules.h"

#endif
