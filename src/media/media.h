/* media.h - GET /v1/media/{platform}/{account}/{media_id}: streams a customer's file through
 * the gateway, so the helpdesk never holds a platform token.  The platform's download URL is
 * resolved on every request (WhatsApp's expire within minutes). */
#ifndef DB_MEDIA_H
#define DB_MEDIA_H

struct db_gateway;
struct db_httpd_req;

/* Answers the request (the bearer token was already checked). */
void db_media_handle(struct db_gateway *gw, struct db_httpd_req *req, const char *platform,
                     const char *account, const char *media_id);

#endif
