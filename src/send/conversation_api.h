/* conversation_api.h - what an agent shows a customer besides messages:
 * POST /v1/conversations/{id}/typing (the platform's typing indicator) and
 * POST /v1/conversations/{id}/read (the platform's read mark on the customer's newest
 * message).  Both call the platform at once and answer with its verdict; nothing is queued.
 * Registered ahead of the dispatcher's /v1/conversations/ prefix, which keeps every other
 * conversation route. */
#ifndef DB_CONVERSATION_API_H
#define DB_CONVERSATION_API_H

#include "deskbridge/status.h"

struct db_services;

/* Registers both routes on svc->router.  DB_OK or DB_ENOMEM. */
int db_conversation_api_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

#endif
