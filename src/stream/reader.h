/* reader.h - a consumer group's read loop over one or two streams.
 *
 * The reader owns a connection of its own: XREADGROUP BLOCK holds a connection for up to
 * READ_BLOCK_MS, which would stall every other command queued behind it on a shared one.
 * It creates the group on each stream when the group is missing (at the start, and again
 * after a NOGROUP error, e.g. when an operator deleted it), then reads new entries with
 * BLOCK, never asking for more than the owner says it has room for, and hands each stream's
 * entries to the owner.  A failed read or creation is logged and tried again after 500 ms.
 *
 * Entries left pending by a process that died are not the reader's business: the stream
 * consumer (consumer.h), its only user, claims, refreshes and dead-letters them. */
#ifndef DB_READER_H
#define DB_READER_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "deskbridge/status.h"

struct event_base;
struct db_reader;

#define DB_READER_BLOCK_MS 2000

struct db_reader_opts {
    const char *redis_url;
    int redis_timeout_ms;    /* the command timeout on top of the BLOCK time */
    const char *conn_name;   /* the connection's CLIENT SETNAME */
    const char *who;         /* log component, e.g. "sender" */
    const char *what;        /* what is read, for log lines, e.g. "outbox" */
    const char *group, *consumer;
    const char *streams[2];  /* the second may be NULL */
    const char *start;       /* where a group created here starts: "0" or "$" */
    int count;               /* entries per read at most */
    int min_room;            /* a read waits until the owner has room for this many entries
                              * (1 when 0; at most count) */
};

/* How many more entries the owner can take now (0: none; the owner calls db_reader_more
 * once it has room again). */
typedef size_t (*db_reader_room_fn)(void *arg);
/* Called after every successful read with what it brought: lists[i] the array of entries of
 * streams[i], NULL when none (both borrowed for the call; a read that BLOCK ended brings
 * none).  Also called for a read that was in flight when db_reader_stop was
 * called: its entries are delivered to this consumer either way (pending), and the owner
 * decides whether to take them now or leave them to a claim. */
typedef void (*db_reader_entries_fn)(const redisReply *const lists[2], void *arg);

/* A reader on base; every string of o is copied.  It does nothing until db_reader_more.
 * DB_OK, DB_ECONFIG (the URL), DB_ENOMEM; *out is freed with db_reader_free. */
int db_reader_new(struct event_base *base, const struct db_reader_opts *o,
                  db_reader_room_fn room, db_reader_entries_fn entries, void *arg,
                  struct db_reader **out, struct db_err *e);

/* Reads (creating the group first when needed) unless a read or creation is in flight, the
 * reader is stopped or the owner has room for fewer than min_room entries.  Call it at the
 * start and whenever the owner has room again. */
void db_reader_more(struct db_reader *r);

/* The answer to an XGROUP CREATE the owner sent on another connection: when it says the group
 * exists (created, or BUSYGROUP), the reader reads without creating it again. */
void db_reader_group_created(struct db_reader *r, int status, const redisReply *reply);

/* 1 once the group is known to exist on every stream. */
int db_reader_group_ready(const struct db_reader *r);

/* No more reads from now on; a read in flight still reports its entries. */
void db_reader_stop(struct db_reader *r);

/* Stops and frees; a read in flight ends without calling the owner.  NULL-safe. */
void db_reader_free(struct db_reader *r);

#endif
