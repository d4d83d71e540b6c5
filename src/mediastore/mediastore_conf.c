/* mediastore_conf.c - the [media_store] section: its keys and the checks across them
 * (docs/media.md, docs/config.md). */
#include "mediastore/mediastore.h"

#include <stddef.h>
#include <string.h>

#include "conf/config.h"
#include "util/schema.h"
#include "media/blob.h"

static const char *const backends[] = {"local", "s3", NULL};

static int finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_mediastore_conf *c = obj;
    if (strcmp(c->backend, "s3") == 0) {
        static const char *const need[] = {"s3_endpoint", "s3_bucket", "s3_access_key",
                                           "s3_secret_key", NULL};
        const char *const have[] = {c->s3_endpoint, c->s3_bucket, c->s3_access_key,
                                    c->s3_secret_key};
        for (int i = 0; need[i]; i++)
            if (!have[i] || !*have[i])
                return db_conf_error(e, sec, db_conf_find(sec, "backend"), "backend",
                                     "s3 needs %s", need[i]);
    }
    if (c->retry_base_ms > c->retry_max_ms)
        return db_conf_error(e, sec, db_conf_find(sec, "retry_base_ms"), "retry_base_ms",
                             "is larger than retry_max_ms (%d)", c->retry_max_ms);
    return DB_OK;
}

#define OFF(f) offsetof(struct db_mediastore_conf, f)
static const struct db_conf_key keys[] = {
    {.name = "backend", .type = DB_CONF_ENUM, .values = backends, .def = "local",
     .off = OFF(backend), .doc = "where files are kept: local (a directory) or s3 (a bucket)"},
    {.name = "dir", .type = DB_CONF_STR, .def = "var/media", .off = OFF(dir),
     .doc = "the local backend's directory (made when missing; a volume in compose and k8s)"},
    {.name = "s3_endpoint", .type = DB_CONF_URL, .off = OFF(s3_endpoint),
     .doc = "the S3-compatible endpoint, e.g. https://s3.eu-central-1.amazonaws.com (path-style requests)"},
    {.name = "s3_bucket", .type = DB_CONF_STR, .off = OFF(s3_bucket), .doc = "the bucket"},
    {.name = "s3_region", .type = DB_CONF_STR, .def = "us-east-1", .off = OFF(s3_region),
     .doc = "the region the requests are signed for (AWS Signature V4)"},
    {.name = "s3_access_key", .type = DB_CONF_STR, .off = OFF(s3_access_key),
     .doc = "the access key id"},
    {.name = "s3_secret_key", .type = DB_CONF_STR, .flags = DB_CONF_SECRET,
     .off = OFF(s3_secret_key), .doc = "the secret access key"},
    {.name = "max_bytes", .type = DB_CONF_LONG, .min = 1024, .max = 1073741824L,
     .def = "26214400", .off = OFF(max_bytes),
     .doc = "largest file kept; a larger one is recorded lost (too_big)"},
    {.name = "retention_days", .type = DB_CONF_INT, .min = 0, .max = 36500, .def = "90",
     .off = OFF(retention_days), .doc = "days a file is kept; 0 = until erased"},
    {.name = "max_deliveries", .type = DB_CONF_INT, .min = 1, .max = 1000, .def = "10",
     .off = OFF(max_deliveries), .doc = "attempts at a file before it is recorded lost"},
    {.name = "retry_base_ms", .type = DB_CONF_INT, .min = 10, .max = 3600000, .def = "2000",
     .off = OFF(retry_base_ms), .doc = "wait before the second attempt; doubles per attempt"},
    {.name = "retry_max_ms", .type = DB_CONF_INT, .min = 10, .max = 86400000, .def = "60000",
     .off = OFF(retry_max_ms), .doc = "cap of the wait between attempts"},
    {.name = "concurrency", .type = DB_CONF_INT, .min = 1, .max = 256, .def = "8",
     .off = OFF(concurrency), .doc = "files fetched at once per process"},
    {.name = "sweep_interval_s", .type = DB_CONF_INT, .min = 1, .max = 86400, .def = "3600",
     .off = OFF(sweep_interval_s), .doc = "how often files past retention_days are deleted"},
    {.name = "claim_idle_ms", .type = DB_CONF_INT, .min = 100, .max = 86400000,
     .def = "30000", .off = OFF(claim_idle_ms),
     .doc = "events held this long by a dead process are taken over"},
};

const struct db_conf_table db_mediastore_conf_table = {
    .section = "media_store", .named = 0, .size = sizeof(struct db_mediastore_conf),
    .keys = keys, .n_keys = sizeof keys / sizeof keys[0], .finish = finish};

int db_mediastore_blob(struct event_base *base, const struct db_mediastore_conf *c,
                       struct db_blob **out, struct db_err *e)
{
    *out = NULL;
    if (!c) return DB_OK;
    int s3 = strcmp(c->backend, "s3") == 0;
    struct db_blob_opts o = {.dir = c->dir,
                             .s3_endpoint = s3 ? c->s3_endpoint : NULL,
                             .s3_bucket = c->s3_bucket,
                             .s3_region = c->s3_region,
                             .s3_access_key = c->s3_access_key,
                             .s3_secret_key = c->s3_secret_key,
                             .max_bytes = (size_t)c->max_bytes};
    return db_blob_new(base, &o, out, e);
}
