/* media.h - GET /v1/media/{platform}/{account}/{media_id}: streams a customer's file through
 * the gateway, so the helpdesk never holds a platform token.  The platform's download URL is
 * resolved on every request (WhatsApp's expire within minutes). */
#ifndef DB_MEDIA_H
#define DB_MEDIA_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_services;

struct db_httpd_req;

/* The result of db_media_collect: status DB_OK with the file (ctype the platform's
 * Content-Type, data/len borrowed for the call); DB_ENOTFOUND (the platform has no such
 * media: expired or unknown), DB_EINVAL (unusable id, or larger than max_bytes),
 * DB_EUNSUPPORTED, DB_EAGAIN (the platform or the network failed: try again).  code and why
 * are the reason (borrowed), "" on DB_OK. */
typedef void (*db_media_collected_fn)(int status, const char *code, const char *why,
                                    const char *ctype, const char *data, size_t len,
                                    void *arg);

/* Fetches media_id of (platform, account) from the platform as GET /v1/media/... would
 * (same resolution, same SSRF guard) into memory, at most max_bytes.  cb runs exactly once,
 * possibly before this returns. */
void db_media_collect(struct db_services *svc, const char *platform, const char *account,
                    const char *media_id, size_t max_bytes, db_media_collected_fn cb, void *arg);

/* Answers req with media_id of the account (the caller has checked who may see it): what
 * GET /v1/media/ does after its token check, for other routes (the console's) to reuse.
 * From the media store when it holds the file (serve.c), else from the platform
 * (db_media_relay). */
void db_media_serve(struct db_services *svc, struct db_httpd_req *req, const char *platform,
                    const char *account, const char *media_id);
void db_media_relay(struct db_services *svc, struct db_httpd_req *req, const char *platform,
                    const char *account, const char *media_id);

/* Registers GET /v1/media/ (bearer token; a tenant only for its accounts) on svc->router.
 * DB_OK or DB_ENOMEM. */
int db_media_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

#endif
