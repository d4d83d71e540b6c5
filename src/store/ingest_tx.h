/* ingest_tx.h - plain webhooks written as one transaction of plain commands.
 *
 * Nearly every webhook only adds events to P:events behind their dedupe keys (and, on
 * WhatsApp, moves its customers' newest messages on).  ingest_plain.lua does that in one
 * script run, but Redis spends about half of such a run in its Lua engine
 * (docs/performance.md).  This module writes exactly what that script writes, with plain
 * commands in one MULTI/EXEC on a connection of its own, guarded by WATCH on every dedupe and
 * customer key: the dedupe check and the writes stay one atomic step.  Webhooks that come in
 * while a transaction is in its first round go together into the next one.
 *
 * Anything it cannot decide exactly as the script would is left to the script, with nothing
 * written here: a dedupe or customer key of another type, a remembered customer record of a
 * shape the script reads its own way, dedupe keys that must still be looked for in the main
 * database (dedupe_moved), or a watched key changed before EXEC. */
#ifndef DB_STORE_INGEST_TX_H
#define DB_STORE_INGEST_TX_H

#include <stddef.h>

#include "deskbridge/status.h"

struct event_base;
struct db_redis_opts;
struct db_ingest_tx;

/* One webhook's arguments in ingest_plain.lua's layout: ttl, events stream, dedupe spec, then
 * per event its dedupe key and stored JSON, then optionally '', the customer ttl and per
 * customer message its key, message id and time.  Borrowed until the done callback. */
struct db_ingest_tx_item {
    const char *const *v;
    const size_t *l;
    size_t n;
};

/* applied 1: the webhook is written, written of its events were new; 0: nothing of it was
 * written here, the caller runs the script. */
typedef void (*db_ingest_tx_done_fn)(int applied, long long written, void *arg);

/* A module with its own connection (opts, copied; the name is set by the module).  DB_OK,
 * DB_ECONFIG, DB_ENOMEM (reason in e).  *out is freed with db_ingest_tx_free. */
int db_ingest_tx_new(struct event_base *base, const struct db_redis_opts *opts,
                     struct db_ingest_tx **out, struct db_err *e) DB_MUST_CHECK;
/* 1 when connected: an item given now is tried (else it is answered done(0) at once). */
int db_ingest_tx_up(const struct db_ingest_tx *t);
/* Writes item, alone or with others given while a transaction is in its first round.  done
 * runs exactly once, possibly before this returns. */
void db_ingest_tx_apply(struct db_ingest_tx *t, const struct db_ingest_tx_item *item,
                        db_ingest_tx_done_fn done, void *arg);
/* Frees t; items in flight or waiting are answered done(0) first.  NULL-safe. */
void db_ingest_tx_free(struct db_ingest_tx *t);

#endif
