/* media.h - GET /v1/media/{platform}/{account}/{media_id}: streams a customer's file through
 * the gateway, so the helpdesk never holds a platform token.  The platform's download URL is
 * resolved on every request (WhatsApp's expire within minutes). */
#ifndef DB_MEDIA_H
#define DB_MEDIA_H

#include "deskbridge/status.h"

struct db_services;

/* Registers GET /v1/media/ (bearer token; a tenant only for its accounts) on svc->router.
 * DB_OK or DB_ENOMEM. */
int db_media_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

struct db_httpd_req;
/* Streams media_id of the account to req (the caller has checked who may see it): what GET
 * /v1/media/ does after its token check, for other routes (the console's) to reuse. */
void db_media_serve(struct db_services *svc, struct db_httpd_req *req, const char *platform,
                    const char *account, const char *media_id);

#endif
