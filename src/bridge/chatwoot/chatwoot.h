/* chatwoot.h - the Chatwoot bridge: deskbridge as the messenger layer of Chatwoot API inboxes
 * ([chatwoot NAME] sections, docs/chatwoot.md).
 *
 * It promises:
 *   - Customer to Chatwoot: every message, edit and reaction of a carried account becomes one
 *     incoming Chatwoot message in the conversation of its deskbridge conversation (contact and
 *     conversation made once, the mapping kept in Redis), text plus files as attachments, in
 *     order per conversation, at least once and never twice after a timed-out attempt.
 *   - Chatwoot to customer: POST /bridges/chatwoot/NAME takes the inbox's signed callback and
 *     queues an agent's outgoing reply through the store (client id from Chatwoot's message id,
 *     so a repeated callback sends once), answering 2xx once the reply is durable.
 *   - Ticks: every status change of a bridged reply is PATCHed to its Chatwoot message.
 *   - Chatwoot down: requests are retried with backoff and given up to P:dead after
 *     max_attempts; the streams are read through the shared consumer. */
#ifndef DB_CHATWOOT_H
#define DB_CHATWOOT_H

#include "deskbridge/status.h"

struct db_services;
struct db_conf_section;
struct db_config;
struct db_chatwoot;

/* Starts the stream consumers of every [chatwoot NAME] section (dispatch role).  DB_OK also
 * with no section; *out is freed with db_chatwoot_free. */
int db_chatwoot_start(struct db_services *svc, struct db_chatwoot **out, struct db_err *e)
    DB_MUST_CHECK;
void db_chatwoot_stop_reading(struct db_chatwoot *c);
/* Requests and Redis commands in flight (a shutdown waits for 0). */
unsigned long db_chatwoot_inflight(const struct db_chatwoot *c);
void db_chatwoot_free(struct db_chatwoot *c); /* NULL-safe */

/* Registers POST /bridges/chatwoot/ (open: the callback's signature is the check). */
int db_chatwoot_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

/* Config section [chatwoot NAME] check (features.c). */
int db_chatwoot_conf_check(const struct db_conf_section *sec, struct db_err *e);

/* 1 when (platform, account) is carried by a [chatwoot] section that turns deskbridge's own
 * assignment and automatic answers off (deskbridge_automation = false), else 0. */
int db_chatwoot_owns_automation(const struct db_config *cfg, const char *platform,
                                const char *account);

#endif
