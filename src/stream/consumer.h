/* consumer.h - the one life cycle of a stream consumer group member, shared by every part
 * that reads a stream (sender, dispatcher, automatic answers, helpdesk webhooks).
 *
 * It promises, for one group on one or two streams:
 *   - Group creation: XGROUP CREATE ... MKSTREAM on the shared connection at the start (queued
 *     before any write the process makes later, so a group starting at "$" sees the first
 *     entry written after the start), and again by the reader after NOGROUP.
 *   - Reads: XREADGROUP BLOCK on a connection of its own, never more entries than the owner
 *     has room for (max_held minus the entries it holds).
 *   - Held entries: every entry handed to the owner is held until the owner releases it.  A
 *     timer (every claim_idle_ms / 3, 100 ms to 10 s) resets their idle time with
 *     XCLAIM ... JUSTID (which does not count a delivery), so while this process lives no
 *     other process takes them over, however long they wait for a retry or their turn.
 *   - Claims: on the same timer, entries idle longer than claim_idle_ms (left by a process
 *     that died) are taken over, oldest first (XPENDING ... IDLE, then XCLAIM of those ids),
 *     and handed to the owner like read ones; an entry this process still holds is never
 *     handed twice.  A round claims up to count entries and no more than max_held + count
 *     minus the entries held, except that the idle entries older than every entry of their
 *     stream held here are always claimed: entries held here that wait for an earlier one
 *     (ordering.h) never stop its claim.
 *   - Dead letters: an idle entry delivered max_deliveries times or more (its processes keep
 *     dying on it) is moved to <prefix>:dead instead of being claimed again; the owner may
 *     dead-letter an entry itself (db_consumer_dead_letter).  Either way one Lua script
 *     appends the dead letter and acknowledges the entry only while the entry is still
 *     pending in the group, so an entry is dead-lettered once even when several processes
 *     decide together.  The shape of a dead letter is in docs/stream-contract.md.
 *
 * The owner supplies only its per-entry handling (take), and releases each entry it kept
 * once it acknowledged it or gave up on it (left it pending for a later claim). */
#ifndef DB_CONSUMER_H
#define DB_CONSUMER_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "deskbridge/status.h"

struct event_base;
struct db_redis;
struct db_metrics;
struct db_consumer;

struct db_consumer_opts {
    struct db_redis *redis;        /* shared: group creation, claims, refreshes, dead letters */
    struct db_metrics *metrics;    /* counts dead letters; may be NULL */
    const char *redis_url;         /* the reader's own connection */
    int redis_timeout_ms;
    const char *conn_name;         /* the reader connection's CLIENT SETNAME */
    const char *who;               /* log component, e.g. "sender" */
    const char *what;              /* what is read, for log lines, e.g. "outbox" */
    const char *group, *consumer;
    const char *streams[2];        /* the second may be NULL */
    const char *labels[2];         /* the streams' names in dead letters: "events", "outbox" */
    const char *dead_key;          /* <prefix>:dead */
    const char *start;             /* where a group created here starts: "0" or "$" */
    int count;                     /* entries per read or claim at most (default 64) */
    int max_held;                  /* reads stop at this many entries held (default 256);
                                    * claims go beyond it (see Claims above) */
    int min_read;                  /* a read waits until there is room for this many entries
                                    * (default 1, at most count and max_held): an owner that is
                                    * done with its entries quickly sets count, so that reads
                                    * keep their size instead of taking what the last release
                                    * freed, one by one */
    int claim_idle_ms;             /* default 30000 */
    int max_deliveries;            /* default 10 */
};

/* Hands one entry ([id, [field, value, ...]], borrowed for the call) of streams[stream] to
 * the owner; claimed is 1 when it was taken over from another consumer (or this one, after
 * a restart).  Returns 1 when the owner keeps it (and calls db_consumer_release once done
 * with it, possibly before returning), 0 when it does not (left pending). */
typedef int (*db_consumer_take_fn)(int stream, const redisReply *entry, int claimed, void *arg);
/* Called after the entries of one read or claim were handed over (may be NULL): an owner
 * that batches or pumps its work does it here.  whole is 1 when they were one read of one
 * stream and the owner took every entry of it: then no other entry of the stream lies
 * between the first and the last it took, and none of them is pending elsewhere. */
typedef void (*db_consumer_batch_fn)(int whole, void *arg);
/* The answer to db_consumer_dead_letter: status DB_OK and written 1 when the dead letter was
 * written and the entry acknowledged, written 0 when the entry was no longer pending
 * (acknowledged or dead-lettered by someone else); another status when Redis did not
 * answer (the entry stays pending). */
typedef void (*db_consumer_dead_fn)(int status, int written, void *arg);

/* A consumer on base; every string of o is copied.  Nothing happens until db_consumer_start.
 * DB_OK, DB_ECONFIG (the URL), DB_ENOMEM; *out is freed with db_consumer_free. */
int db_consumer_new(struct event_base *base, const struct db_consumer_opts *o,
                    db_consumer_take_fn take, db_consumer_batch_fn batch, void *arg,
                    struct db_consumer **out, struct db_err *e) DB_MUST_CHECK;

/* Creates the group (on the shared connection), starts reading and the claim timer. */
void db_consumer_start(struct db_consumer *c);

/* The owner is done with an entry it kept: acknowledged, dead-lettered, or left pending for
 * a later claim.  Reads resume when there is room again.  NULL-safe; unknown ids are
 * ignored. */
void db_consumer_release(struct db_consumer *c, int stream, const char *entry);

/* 1 while the entry is held (handed to the owner and not released). */
int db_consumer_holds(const struct db_consumer *c, int stream, const char *entry);

/* Entries held now. */
size_t db_consumer_held(const struct db_consumer *c);

/* During a take: the number of the read that brought the entry (1, 2, ...; every XREADGROUP
 * answer has its own), or 0 for a claimed entry.  Entries of one stream with the same read
 * number were delivered together: no other consumer got an entry between them. */
unsigned long db_consumer_batch(const struct db_consumer *c);

/* Moves entry to <prefix>:dead with reason and acknowledges it, in one script, if it is still
 * pending.  extra: NULL or name/value pairs (NULL-terminated) added to the dead letter, e.g.
 * {"endpoint", "desk", "payload", body, NULL}.  cb may be NULL; it is always called once
 * (with DB_EAGAIN when the connection goes away).  The entry stays held: the owner releases
 * it in cb. */
void db_consumer_dead_letter(struct db_consumer *c, int stream, const char *entry,
                             const char *reason, const char *const *extra,
                             db_consumer_dead_fn cb, void *arg);

/* Commands on the shared connection that still hand entries to the owner (claims and the
 * group creation): a shutdown waits for them. */
size_t db_consumer_busy(const struct db_consumer *c);

/* No more reads or claims; a read in flight still hands its entries over. */
void db_consumer_stop(struct db_consumer *c);

/* Stops and frees; answers still due on the shared connection find it detached.  NULL-safe. */
void db_consumer_free(struct db_consumer *c);

#endif
