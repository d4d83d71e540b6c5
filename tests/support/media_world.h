/* media_world.h - what the media store tests share: the deskbridge binary with a WhatsApp
 * account on a fake Graph API and a [media_store] section, images that exist only in the
 * fake, an S3-compatible server (s3rver from npm, tests/s3/) to start, stop and restart, and
 * readers of the P:media stream. */
#ifndef DB_TEST_MEDIA_WORLD_H
#define DB_TEST_MEDIA_WORLD_H

#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"

#define MW_PNID "106540352242977"
#define MW_WA_TOKEN "EAAGstoreTokenDoNotLog0123456789"
#define MW_WA_SECRET "wa-app-secret-store"
#define MW_API_TOKEN "api-token-store-0123456789"

struct mw_s3 {
    pid_t pid;
    int port;
    char dir[320];
};

struct media_world {
    struct db_test_redis *redis;
    struct db_fake *wa;
    struct db_test_daemon d;
    char dir[200];     /* scratch: config file, local store */
    char conf[300];
    struct mw_s3 s3;
    char env[8][512];
};

/* Starts redis, the fake Graph API and the daemon with [media_store] holding store_keys
 * (lines "key = value", the section header is added).  "@DIR@" in store_keys becomes the
 * scratch directory; "@S3@" the S3 server's URL (start it first with mw_s3_start). */
void mw_start(struct media_world *w, const char *store_keys);
void mw_stop(struct media_world *w);

/* An image of n bytes that exists only in the fake: the first bytes are sig (sig_len bytes),
 * the rest a pattern of seed without NUL bytes (the fake's bodies are C strings).  The fake
 * answers the media lookup of id and the download.  Returns the bytes (caller frees). */
char *mw_image(struct media_world *w, const char *id, const char *sig, size_t sig_len,
               size_t n, unsigned seed, const char *mime);
/* Posts a signed WhatsApp webhook with one image message naming media id; returns the
 * HTTP status. */
int mw_post_image(struct media_world *w, const char *wamid, const char *id);

/* The entries of P:media (field `media`) as a JSON array (caller frees). */
json_t *mw_media_entries(struct media_world *w);
/* Waits until P:media has at least n entries; returns the count reached. */
size_t mw_wait_media(struct media_world *w, size_t n, int timeout_ms);
/* The P:media entry of media id, or NULL (new reference). */
json_t *mw_media_of(struct media_world *w, const char *id);

/* s3rver on a free port (or on w->s3.port again when it was set), objects in dir. */
void mw_s3_start(struct media_world *w);
void mw_s3_stop(struct media_world *w);

/* SHA-256 hex of data. */
void mw_sha256(const void *data, size_t n, char out[65]);

#endif
