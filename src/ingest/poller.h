/* poller.h - long polling of the accounts that are not in webhook mode. */
#ifndef DB_POLLER_H
#define DB_POLLER_H

#include <stddef.h>

#include "conf/config.h"
#include "deskbridge/status.h"

struct db_services;
struct db_poller;

/* 1 when acct receives updates by polling (its connector can poll and no webhook secret is
 * configured for it). */
int db_poller_is_polling_account(const struct db_account *acct);

/* Starts one poll loop per polling account of svc's current configuration, with the given
 * long-poll timeout.  DB_OK or DB_ENOMEM. */
int db_poller_start(struct db_services *svc, int timeout_s, struct db_poller **out,
                    struct db_err *e) DB_MUST_CHECK;
/* Accounts being polled. */
size_t db_poller_count(const struct db_poller *p);
/* Cancels polls in flight (their updates are not confirmed, so nothing is lost) and frees
 * p.  NULL-safe. */
void db_poller_free(struct db_poller *p);

#endif
