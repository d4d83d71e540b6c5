/* templates.h - a WhatsApp account's approved message templates, cached in Redis.
 *
 * GET /v1/templates/{account} answers the account's approved templates with their
 * languages and the parameters a send must supply (the connector's summary, see
 * build_templates / read_templates in deskbridge/connector.h).  The list is fetched from the
 * Graph API (every page) when the cache has none, or when asked with ?refresh=1, and kept in
 * P:templates:<platform>:<account> until the next refresh: templates change when someone
 * edits them at Meta, not by themselves.
 *
 * A send naming a template is checked against the list before it is queued
 * (db_templates_check): a wrong parameter count is refused with 400 naming it.  A template
 * the cached list lacks makes one refresh (at most once a minute per account), since it may
 * be newly approved. */
#ifndef DB_TEMPLATES_H
#define DB_TEMPLATES_H

#include <jansson.h>

#include "deskbridge/status.h"

struct db_services;
struct db_account;

/* Registers GET /v1/templates/ on svc->router.  DB_OK or DB_ENOMEM. */
int db_templates_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

/* 1 when a send to acct with cmd is checked by db_templates_check: cmd has a template and
 * acct's connector can check one. */
int db_templates_apply(const struct db_account *acct, const json_t *cmd);

/* Checks tmpl (the request's "template" member; copied) against acct's cached list.
 * cb(DB_OK, NULL, NULL) lets it go (also when no list can be had: Meta checks then);
 * cb(DB_EINVAL, field, message) refuses it.  field and message are borrowed for the
 * callback only. */
typedef void (*db_templates_check_fn)(int status, const char *field, const char *msg, void *arg);
void db_templates_check(struct db_services *svc, const struct db_account *acct,
                        const json_t *tmpl, db_templates_check_fn cb, void *arg);

#endif
