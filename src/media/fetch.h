/* fetch.h - a customer's file fetched into memory through the platform's media download,
 * for parts of the gateway that pass files on (the Chatwoot bridge uploads them).
 *
 * The same steps as GET /v1/media: the platform's lookup (never cached: WhatsApp's download
 * URLs expire within minutes), then the download.  A URL the platform's answer names is
 * fetched through the SSRF-guarded client unless it is on the lookup's own host; a URL the
 * event names (a webhook chose it) always is. */
#ifndef DB_MEDIA_FETCH_H
#define DB_MEDIA_FETCH_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_services;
struct db_account;
struct db_media_fetch;

/* status DB_OK with the file (body, len; ctype the platform's Content-Type or
 * "application/octet-stream"; all borrowed for the call); DB_ENOTFOUND when the platform
 * has no such file (expired, unknown: trying again does not help); DB_ETOOBIG when the file
 * is over the HTTP client's response cap (4 MiB by default: it is held in memory);
 * DB_EAGAIN for anything worth another try later.  why says
 * what happened, for logs (never a URL). */
typedef void (*db_media_fetch_fn)(int status, const char *body, size_t len, const char *ctype,
                                  const char *why, void *arg);

/* Fetches media_id (or, when media_id is NULL, media_url) of acct.  acct must outlive the
 * fetch (hold a configuration reference).  cb runs once, never before this returns.
 * *out (may be NULL) gets a handle for db_media_fetch_cancel, valid until cb runs.
 * DB_OK, or DB_ENOMEM/DB_EINVAL with nothing started. */
int db_media_fetch(struct db_services *svc, const struct db_account *acct,
                   const char *media_id, const char *media_url, long timeout_ms,
                   db_media_fetch_fn cb, void *arg, struct db_media_fetch **out) DB_MUST_CHECK;
/* Ends a fetch: cb runs with DB_EAGAIN "cancelled" before this returns. */
void db_media_fetch_cancel(struct db_media_fetch *f);

#endif
