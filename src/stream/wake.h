/* wake.h - wakes whoever waits on a Redis stream the moment an entry is written to it.
 *
 * One per process: a connection of its own runs one blocking XREAD over every stream someone
 * watches, each after the newest entry seen in it.  When entries arrive, every watcher of
 * that stream is called with them, and the read starts again.  A watch added while the read
 * blocks ends that read at once (CLIENT UNBLOCK on the main connection) so the next read
 * includes it.  Idle, this costs one command per DB_WAKE_BLOCK_MS whatever the number of
 * watchers; a write is seen within one Redis round trip.  After a lost connection the read
 * starts again from the ids it had, so nothing written in between is missed.
 *
 * A watch added while the read blocks must end that read: the process writes one entry to a
 * stream of its own (the kick key, MAXLEN 1, expiring a minute after its last use) that
 * every read includes, so the read ends whether it has reached Redis yet or not. */
#ifndef DB_STREAM_WAKE_H
#define DB_STREAM_WAKE_H

#include <hiredis/hiredis.h>

#include "deskbridge/status.h"

struct event_base;
struct db_redis;
struct db_wake;
struct db_wake_watch;

#define DB_WAKE_BLOCK_MS 10000

/* Called with the new entries of key ([[id, [field, value, ...]], ...], borrowed, at most 256
 * a call: a busy stream calls again at once). */
typedef void (*db_wake_fn)(const char *key, const redisReply *entries, void *arg);

/* A waker on its own connection to url; main is the process's command connection (for the
 * kick), kick_key the process's own kick stream (copied); each read blocks at most block_ms
 * (0: DB_WAKE_BLOCK_MS).  DB_OK or an error in e; free with db_wake_free. */
int db_wake_new(struct event_base *base, const char *url, struct db_redis *main,
                const char *kick_key, int block_ms, int redis_timeout_ms, struct db_wake **out,
                struct db_err *e) DB_MUST_CHECK;
/* Frees w; watches still registered are dropped (their owners must not unwatch after). */
void db_wake_free(struct db_wake *w); /* NULL-safe */

/* Calls cb for every entry of key after from_id ("$" or NULL: after the newest when the read
 * starts).  NULL when out of memory.  Release with db_wake_unwatch, also from within a
 * callback (the watch is then only marked, and dropped after the callbacks). */
struct db_wake_watch *db_wake_watch(struct db_wake *w, const char *key, const char *from_id,
                                    db_wake_fn cb, void *arg);
void db_wake_unwatch(struct db_wake_watch *h); /* NULL-safe */

/* Streams watched now, and reads made since start (for tests and the bench). */
size_t db_wake_keys(const struct db_wake *w);
unsigned long db_wake_reads(const struct db_wake *w);

#endif
