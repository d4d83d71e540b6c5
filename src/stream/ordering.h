/* ordering.h - per-conversation FIFO of stream entries that holds across processes.
 *
 * Several processes share a consumer group, so one conversation's entries can be spread over
 * them.  The promise: the work on an entry of a conversation starts only when every earlier
 * entry of the same conversation in the stream is finished (acknowledged or dead-lettered),
 * except for the cases named below.
 *   - Within a process, one entry per conversation is active at a time; the others wait in a
 *     queue sorted by entry id, so an entry taken over from a process that died (it arrives
 *     after later ones were read) still goes first.
 *   - Before an entry's work starts the first time, one Lua script asks Redis whether an
 *     earlier entry of the same conversation is pending under another consumer of the group
 *     (XPENDING, then XRANGE of those held by others, matched by the `conversation` member of
 *     the entry's JSON field).  While one is, the entry waits and asks again (after 100 ms,
 *     then every 200 ms).  Entries are read in id order, so every earlier entry is then
 *     acknowledged or pending; once none is pending elsewhere the answer cannot change.
 *     The check is skipped where its answer is known: for an entry that follows an ordered
 *     entry of its conversation from the same read, and for every entry of a read that was
 *     delivered before a check found no other consumer holding anything.  An entry of a read
 *     whose check is already in flight for a later or the same read waits for that answer
 *     instead of asking: when it says no other consumer holds anything, it holds for both, so
 *     one process alone asks about once per read, not once per entry; any other answer sends
 *     the entry's own check.
 *   - Not ordered: an entry whose work already started when an earlier one is taken over from
 *     a dead process (after claim_idle_ms); entries after a dead letter go on without it; with
 *     more than 1024 earlier entries pending the script waits as if one were of the same
 *     conversation (the oldest always pass); entries without a conversation.
 *
 * The owner embeds a struct db_order_slot in each unit of work and gets it back through the
 * ready callback when that work may start. */
#ifndef DB_ORDERING_H
#define DB_ORDERING_H

#include <stdint.h>

#include "deskbridge/status.h"

struct event_base;
struct db_redis;
struct db_ordering;
struct db_order_chat;
struct db_order_op;

/* Owned by the owner, managed by the module between db_order_add and db_order_done; zeroed
 * before db_order_add. */
struct db_order_slot {
    struct db_ordering *o;
    struct db_order_chat *chat;  /* NULL: not ordered (no conversation) */
    struct db_order_slot *next;  /* in the chat's queue */
    struct db_order_op *op;      /* order check in flight */
    struct db_order_op *ride;    /* another slot's check in flight whose answer may do */
    struct db_order_slot *ride_next; /* among that check's riders */
    int solo;                    /* a shared answer did not do: asks for itself */
    struct event *timer;         /* next order check */
    int stream;
    int state;                   /* module's */
    int ordered;                 /* no earlier entry is pending elsewhere: final */
    int held_back;               /* checks that said "not yet" */
    unsigned long batch;         /* the read that brought it (db_consumer_batch), 0: unknown */
    char entry[64];
};

/* The work of slot may start now. */
typedef void (*db_order_ready_fn)(struct db_order_slot *slot, void *arg);

struct db_ordering_opts {
    struct db_redis *redis;       /* shared connection */
    const char *who;              /* log component */
    const char *group, *consumer;
    const char *streams[2];       /* the second may be NULL */
    const char *fields[2];        /* the field holding the entry's JSON: "command", "event" */
};

/* DB_OK or DB_ENOMEM; *out is freed with db_ordering_free. */
int db_ordering_new(struct event_base *base, const struct db_ordering_opts *opts,
                    db_order_ready_fn ready, void *arg, struct db_ordering **out,
                    struct db_err *e) DB_MUST_CHECK;

/* Queues slot (entry of streams[stream]) behind the earlier entries of conversation (NULL or
 * "": not ordered).  batch: db_consumer_batch at the entry's take, or 0.  An entry that
 * follows an ordered entry of its conversation from the same read of the same stream needs no
 * check in Redis: nothing between the two went to another consumer.  ready may be called
 * before this returns.  DB_OK or DB_ENOMEM (then the slot is not queued). */
int db_order_add(struct db_ordering *o, struct db_order_slot *slot, int stream,
                 const char *entry, const char *conversation, unsigned long batch);

/* For an owner about to start slot's work again (after a retry wait): returns 1 when an
 * earlier entry of its conversation arrived meanwhile (taken over from a dead process); that
 * one runs first and slot waits in the queue, ready again later.  Else 0. */
int db_order_yield(struct db_order_slot *slot);

/* The conversation must wait until ms (a platform's per-chat rate limit); 0 clears. */
void db_order_wait_until(struct db_order_slot *slot, int64_t ms);
/* When the conversation may go again (0: now). */
int64_t db_order_not_before(const struct db_order_slot *slot);

/* slot's work is over (acknowledged, given up or left pending); the next entry of its
 * conversation may go.  Also for a slot still waiting.  NULL-safe, idempotent. */
void db_order_done(struct db_order_slot *slot);

/* Stops the order checks (shutdown): nothing becomes ready any more. */
void db_ordering_stop(struct db_ordering *o);

/* Frees every chat; the slots are detached (the owner frees them).  NULL-safe. */
void db_ordering_free(struct db_ordering *o);

#endif
