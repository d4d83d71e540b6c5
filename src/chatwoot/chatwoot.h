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
struct db_config;
struct db_conf_table;
struct db_chatwoot;

/* One [chatwoot NAME] section as the configuration holds it (docs/config.md): strings
 * borrowed from the configuration, built once when it is loaded. */
struct db_chatwoot_conf {
    const char *name;            /* the section's NAME (1-32 of A-Z a-z 0-9 _ -) */
    const char *url, *token, *secret;
    const char *accounts;        /* "platform:account, ..." as written */
    long account_id, inbox_id;
    int automation;              /* deskbridge_automation: 1 keeps deskbridge's assignment and
                                    automatic answers for the carried accounts */
    int allow_unsigned;          /* accept callbacks without a signature (Chatwoot < 4.13) */
    int max_attempts, retry_base_ms, retry_max_ms, timeout_ms, claim_idle_ms, concurrency;
};

/* The key table of [chatwoot NAME] (app/features.c hands it to the loader). */
extern const struct db_conf_table db_chatwoot_conf_table;

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

/* 1 when (platform, account) is carried by a [chatwoot] section that turns deskbridge's own
 * assignment and automatic answers off (deskbridge_automation = false), else 0. */
int db_chatwoot_owns_automation(const struct db_config *cfg, const char *platform,
                                const char *account);

#endif
