/* messages_api.h - the message routes of the HTTP API (POST /v1/messages, GET
 * /v1/messages/..., GET /v1/canned); see docs/stream-contract.md for what they store. */
#ifndef DB_MESSAGES_API_H
#define DB_MESSAGES_API_H

#include "deskbridge/status.h"

struct db_services;

/* Registers the routes on svc->router (they use svc's store).  DB_OK or DB_ENOMEM. */
int db_messages_api_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

#endif
