/* mediastore.h - the media store: every inbound file of every platform fetched shortly after
 * its event arrives, checked and kept (docs/media.md).
 *
 * It is a member of the consumer group "deskbridge-media" on P:events (the one consumer,
 * stream/consumer.h; the group starts at "$": files of events written before the first start
 * are not fetched).  For each event with `media.id` it
 *   - fetches the file as GET /v1/media/... would (media/media.h db_media_collect: the platform's lookup, the
 *     SSRF guard on URLs a platform or a webhook named), at most max_bytes;
 *   - sniffs the content type from the bytes (util/sniff.h) and computes its SHA-256;
 *   - puts it in the store (media/blob.h: a local directory, or an S3 bucket signed by
 *     libcurl) under <platform>/<account>/<sha256 of the media id>;
 *   - records the outcome in P:mediarec:<platform>:<account>:<media id> and appends it to the
 *     stream P:media, once (src/redis/scripts/media_record.lua).
 * A failed attempt is retried with backoff while the entry stays held; after max_deliveries
 * attempts (counted in the record, so they survive restarts) the file is recorded lost with
 * the reason.  A too large file or a platform that has no download is lost at once.
 * Outcomes are counted in deskbridge_media_files_total.  Files older than retention_days are
 * deleted with their records by a sweep every sweep_interval_s. */
#ifndef DB_MEDIASTORE_H
#define DB_MEDIASTORE_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_services;
struct db_mediastore;
struct db_blob;
struct event_base;

/* [media_store] as loaded (mediastore_conf.c).  Strings borrowed from the configuration. */
struct db_mediastore_conf {
    const char *backend;  /* "local" or "s3" */
    const char *dir;
    const char *s3_endpoint, *s3_bucket, *s3_region, *s3_access_key, *s3_secret_key;
    long max_bytes;
    int retention_days;   /* 0: kept until erased */
    int max_deliveries, retry_base_ms, retry_max_ms, concurrency, sweep_interval_s,
        claim_idle_ms;
};
struct db_conf_table;
extern const struct db_conf_table db_mediastore_conf_table;

/* The store's files as the configuration names them (a new db_blob for the gateway's
 * services, also in processes that only serve GET /v1/media); DB_OK with *out NULL when
 * there is no [media_store] section. */
int db_mediastore_blob(struct event_base *base, const struct db_mediastore_conf *c,
                       struct db_blob **out, struct db_err *e) DB_MUST_CHECK;

/* Starts the consumer when the configuration has [media_store] and svc->media_blob is set;
 * DB_OK with *out NULL otherwise. */
int db_mediastore_start(struct db_services *svc, struct db_mediastore **out, struct db_err *e)
    DB_MUST_CHECK;
void db_mediastore_stop_reading(struct db_mediastore *m); /* NULL-safe */
unsigned long db_mediastore_inflight(const struct db_mediastore *m); /* 0 for NULL */
void db_mediastore_free(struct db_mediastore *m); /* NULL-safe */

#endif
