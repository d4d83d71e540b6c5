/* sender.h - delivers <prefix>:outbox entries to the platforms.
 *
 * Several gateway processes read the outbox through one consumer group (src/stream/consumer.c),
 * so each entry goes to one of them.  Messages to one conversation are sent one at a time in
 * outbox order, also when they are spread over several processes (src/stream/ordering.c);
 * different conversations go in parallel.  An entry is acknowledged only after its final
 * state (sent or failed) is recorded, so a crash leaves it pending and another process claims
 * it after claim_idle_ms.  That can send a message twice (the platforms offer
 * no idempotent send): at most the sends in flight at the moment of the crash.
 *
 * Retries: platform 429 (retry_after honoured, per chat where the platform says so), 5xx and
 * network errors back off exponentially from retry_base_ms to retry_max_ms with jitter;
 * after send_max_attempts the message fails. */
#ifndef DB_SENDER_H
#define DB_SENDER_H

#include <stddef.h>

#include "deskbridge/status.h"
#include "redis/keys.h" /* DB_SENDER_GROUP */

struct db_services;
struct db_sender;

struct db_sender_opts {
    int max_inflight;   /* entries being worked on at once (default 256) */
    int claim_idle_ms;  /* pending entries idle this long are claimed (default 30000) */
    int max_deliveries; /* an entry delivered more often goes to <prefix>:dead (default 10) */
};

/* Starts reading the outbox of svc (its configuration, store and HTTP client).  DB_OK or an
 * error in e. */
int db_sender_start(struct db_services *svc, const struct db_sender_opts *opts,
                    struct db_sender **out, struct db_err *e) DB_MUST_CHECK;
/* Stops reading new entries; work in flight continues. */
void db_sender_stop_reading(struct db_sender *s);
/* Entries with a platform request or a Redis write in flight (not those asleep before a
 * retry). */
size_t db_sender_inflight(const struct db_sender *s);
/* Frees the sender; entries still in flight stay pending in Redis for another process.
 * NULL-safe. */
void db_sender_free(struct db_sender *s);

#endif
