/* blob.h - where the media store keeps files: a local directory (the default; a volume in
 * compose and k8s) or an S3-compatible bucket.  S3 requests are signed by libcurl itself
 * (CURLOPT_AWS_SIGV4 through net/http_client.h), path-style: <endpoint>/<bucket>/<key>.
 *
 * Keys are relative paths the caller built from safe characters (A-Z a-z 0-9 _ - . and '/'
 * between parts; no part "." or ".."); db_blob_key_ok checks it.  A local put writes a
 * temporary file, fsyncs it and renames it into place, so a reader never sees half a file.
 * Every callback runs from the event loop, never before the call that started it returns. */
#ifndef DB_MEDIA_BLOB_H
#define DB_MEDIA_BLOB_H

#include <stddef.h>

#include "deskbridge/status.h"

struct event_base;
struct db_blob;

struct db_blob_opts {
    const char *dir;           /* local backend (used when s3_endpoint is NULL) */
    const char *s3_endpoint;   /* http(s)://host[:port], no trailing '/' */
    const char *s3_bucket, *s3_region, *s3_access_key, *s3_secret_key;
    size_t max_bytes;          /* largest file read back */
    long timeout_ms;           /* one S3 request (default 60000) */
};

/* DB_OK, DB_ECONFIG (directory cannot be made, incomplete S3 settings), DB_ENOMEM.  Every
 * string is copied. */
int db_blob_new(struct event_base *base, const struct db_blob_opts *o, struct db_blob **out,
                struct db_err *e) DB_MUST_CHECK;
void db_blob_free(struct db_blob *b); /* NULL-safe; callbacks still due run with DB_EAGAIN */

/* 1 when key may name a blob (see above). */
int db_blob_key_ok(const char *key);

/* status: DB_OK; DB_EAGAIN (store unreachable, 5xx, disk error: try again later);
 * DB_EREJECTED (the store refused: 4xx); DB_ENOTFOUND (get/delete: no such key).  why is a
 * short reason (borrowed for the call), "" on DB_OK. */
typedef void (*db_blob_done_fn)(int status, const char *why, void *arg);
/* data/len borrowed for the call (data NULL unless DB_OK). */
typedef void (*db_blob_get_fn)(int status, const char *why, const char *data, size_t len,
                               void *arg);

/* Stores data[0..len) (copied) under key with the content type ctype. */
void db_blob_put(struct db_blob *b, const char *key, const void *data, size_t len,
                 const char *ctype, db_blob_done_fn cb, void *arg);
/* Reads len bytes from offset off of key (the caller knows the size from its record). */
void db_blob_get(struct db_blob *b, const char *key, size_t off, size_t len, db_blob_get_fn cb,
                 void *arg);
/* Deletes key; a missing key is DB_OK (deleting twice is harmless). */
void db_blob_delete(struct db_blob *b, const char *key, db_blob_done_fn cb, void *arg);

/* "local" or "s3". */
const char *db_blob_backend(const struct db_blob *b);

#endif
