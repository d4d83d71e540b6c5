/* fast.h - the dispatcher's plain updates, written as one transaction of plain commands.
 *
 * Most events only add to a conversation that is already queued or assigned: its history
 * grows by one item, a few fields of its hash change, the assigned agent's inbox gets the
 * event, and the entry is acknowledged.  For reads whose every event is such an update, this
 * module writes exactly what the dispatcher's script (dispatch.lua, op_event) writes for the
 * same state, with plain commands in one MULTI/EXEC on a connection of its own, guarded by
 * WATCH on every conversation the events touch.  Redis spends most of a script run in its
 * Lua engine, not in the commands (docs/performance.md), so a plain update costs it about a
 * third as much.
 *
 * Anything else is left to the script, with nothing written here: a new, open or closed
 * conversation, a raised priority, a keyword answer, a field the script would read in a way
 * of its own (docs/dispatcher.md "Plain updates"), an entry of another consumer still pending
 * among or below the events, or a watched conversation changed before EXEC.  Every write and
 * the acknowledgements are in the one transaction, so an event is applied and acknowledged
 * together or not at all; and as with the script, an event at or below a conversation's
 * last_entry changes nothing but is acknowledged. */
#ifndef DB_DISPATCH_FAST_H
#define DB_DISPATCH_FAST_H

#include <stddef.h>

#include "deskbridge/status.h"

struct event_base;
struct db_config;
struct db_dispatch_fast;

/* One event as the script's op_event takes it from ARGV[4] on: v[0] entry, [1] conversation,
 * [2] keyword rules, [3] the history item (flag "i"), [4] flags, [5] kind, [6] platform,
 * [7] account, [8] external chat id, [9] event id, [10] received_at, [11] keyword priority or
 * "", [12...] profile field/value pairs.  Borrowed: valid until the done callback. */
struct db_fast_event {
    const char *const *v;
    const size_t *l;
    int n;
};

/* applied 1: every event was applied (or found applied) and acknowledged; 0: nothing of them
 * was written by this module, the caller applies them with the script. */
typedef void (*db_fast_done_fn)(int applied, void *arg);

/* Called when the run in its first round has sent its EXEC: the next run may start (its
 * first round reaches Redis after that EXEC, so it sees what the EXEC wrote). */
typedef void (*db_fast_ready_fn)(void *arg);

/* A module with its own Redis connection to cfg's redis_url (it connects at once); ready may
 * be NULL.  DB_OK, DB_ECONFIG, DB_ENOMEM (reason in e).  *out is freed with
 * db_dispatch_fast_free. */
int db_dispatch_fast_new(struct event_base *base, const struct db_config *cfg,
                         db_fast_ready_fn ready, void *ready_arg, struct db_dispatch_fast **out,
                         struct db_err *e) DB_MUST_CHECK;
/* 1 when a transaction can start now: connected, and no run in its first round. */
int db_dispatch_fast_ready(const struct db_dispatch_fast *f);
/* 1 while a run is in its first round (the next must wait for the ready callback). */
int db_dispatch_fast_busy(const struct db_dispatch_fast *f);
/* Tries ev[0..n), in ascending entry order (one or more whole reads of the group).  done runs
 * exactly once, possibly before this returns (0 when not ready). */
void db_dispatch_fast_apply(struct db_dispatch_fast *f, size_t n, const struct db_fast_event *ev,
                            db_fast_done_fn done, void *arg);
/* Frees f; a transaction in flight is answered done(0) first.  NULL-safe. */
void db_dispatch_fast_free(struct db_dispatch_fast *f);

#endif
