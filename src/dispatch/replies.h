/* replies.h - the dispatcher learns of replies from P:outbox, its own consumer group
 * "deskbridge-dispatch-replies" (through src/stream/consumer.c).
 *
 * Every outbox entry that the sender would send (a command naming a configured account) is
 * recorded in its conversation: in the history, in the assigned agent's inbox, and, for an
 * agent's reply (not an automatic answer), as the first response with its statistics.  It
 * does not matter who wrote the entry (POST /v1/messages, the automatic answers, a helpdesk's
 * XADD): the entry is the reply.  The script records it and acknowledges the entry in one
 * step, only while the entry is pending, so each reply is recorded exactly once across
 * processes and crashes.  The group starts at "$" when first created: replies written before
 * any dispatcher ran are not recorded. */
#ifndef DB_DISPATCH_REPLIES_H
#define DB_DISPATCH_REPLIES_H

#include "deskbridge/status.h"
#include "redis/keys.h" /* DB_DISPATCH_REPLIES_GROUP */

struct db_services;
struct db_dispatch_replies;

/* Starts reading; claim_idle_ms and max_deliveries as the dispatcher's.  DB_OK or an error in
 * e; *out is freed with db_dispatch_replies_free. */
int db_dispatch_replies_start(struct db_services *svc, int claim_idle_ms, int max_deliveries,
                              struct db_dispatch_replies **out, struct db_err *e) DB_MUST_CHECK;
/* Stops reading; replies being recorded finish. */
void db_dispatch_replies_stop(struct db_dispatch_replies *r);
/* Replies being recorded. */
unsigned long db_dispatch_replies_inflight(const struct db_dispatch_replies *r);
/* NULL-safe; answers still due on the shared connection find it detached. */
void db_dispatch_replies_free(struct db_dispatch_replies *r);

#endif
