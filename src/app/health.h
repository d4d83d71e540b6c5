/* health.h - GET /healthz (the process answers) and GET /readyz (Redis takes writes and the
 * process is not shutting down), open to probes without a token. */
#ifndef DB_HEALTH_H
#define DB_HEALTH_H

#include "deskbridge/status.h"

struct db_services;

/* Registers both routes on svc->router.  DB_OK or DB_ENOMEM. */
int db_health_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

#endif
