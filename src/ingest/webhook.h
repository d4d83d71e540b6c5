/* webhook.h - POST/GET /webhooks/{platform}/{account}: verify, parse, store, answer.
 *
 * A webhook is answered 2xx only after its events are in Redis (docs/stream-contract.md). */
#ifndef DB_WEBHOOK_H
#define DB_WEBHOOK_H

#include "deskbridge/status.h"

struct db_services;

/* Registers /webhooks/ on svc->router (open: platforms sign their own requests), with each
 * platform's body cap.  DB_OK or DB_ENOMEM. */
int db_webhook_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

#endif
