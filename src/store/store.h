/* store.h - everything the gateway writes to Redis, each write one atomic Lua script (a plain
 * webhook: one MULTI/EXEC guarded by WATCH, store/ingest_tx.h, when db_store_start_tx ran).
 *
 * Key layout (P = the configured prefix; names in redis/keys.h, docs/stream-contract.md):
 *   P:events                      stream, field `event`: inbound facts (contract v1)
 *   P:status                      stream, field `status`: outbound delivery-state changes
 *   P:outbox                      stream, field `command`: messages to send
 *   P:dead                        stream: entries given up on (written by stream/consumer.c)
 *   P:dedupe:<platform>:<account>:<key>   redelivery guard, with a TTL; in database
 *                                 dedupe_db when set (db_store_set_dedupe_db)
 *   P:dedupe_moved                "<time> <db>": until when keys of the main database count
 *   P:msg:{<id>}                  hash: one outbound message's tracked state
 *   P:msg:{<id>}:history          list: its state changes, oldest first
 *   P:client:<client_id>          the id first given to an idempotency key
 *   P:ext:<platform>:<account>:<external id>   -> gateway id of an outbound message
 *   P:early:<platform>:<account>:<external id> receipts that arrived before the send returned
 *   P:cursor:<platform>:<account> long-polling cursor, advanced with the events it confirms
 *   P:mediaurl:<platform>:<account>:<media id> the URL a webhook named for a file (Viber),
 *                                 TTL as the dedupe keys
 *   P:grant:<platform>:<account>:<id> hash: a platform grant's state (Telegram business
 *                                 connections), from events with `business_connection`
 *
 * Status only moves forward (queued < sent < delivered < read; failed is terminal unless a
 * later delivered/read receipt proves delivery); the rule lives in one Lua function
 * (src/redis/scripts/status_advance.lua) shared by every script that changes a status, so
 * concurrent processes cannot break it. */
#ifndef DB_STORE_H
#define DB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "deskbridge/event.h"
#include "deskbridge/status.h"

struct db_redis;
struct db_store;

/* New store writing through r (borrowed; must outlive the store).  prefix is copied.
 * NULL on ENOMEM. */
struct db_store *db_store_new(struct db_redis *r, const char *prefix, int dedupe_ttl_s);
void db_store_free(struct db_store *s); /* NULL-safe */

/* With replicas > 0, an ingest counts as done only once that many replicas acknowledged it
 * (WAIT); otherwise it reports DB_EAGAIN, so a Sentinel failover cannot lose a webhook that
 * was answered 2xx.  command_timeout_ms is the Redis connection's command timeout: WAIT
 * blocks on the server for at most half of it. */
void db_store_set_wait(struct db_store *s, int replicas, int command_timeout_ms);

/* Keeps the dedupe keys in logical database dedupe_db instead of main_db, the one of the
 * connection (dedupe_db < 0 or equal: no change).  Until dedupe_ttl_s after the first process
 * did this (recorded in P:dedupe_moved; nothing to wait for on a prefix that never stored an
 * event), a key found in main_db still marks a redelivery.  Call once, before any ingest. */
void db_store_set_dedupe_db(struct db_store *s, int dedupe_db, int main_db);

/* Writes plain webhooks (no receipt, no cursor, nothing recorded beside the events) as plain
 * commands in one MULTI/EXEC on a connection of its own to opts' Redis (store/ingest_tx.h),
 * falling back to the script whenever that cannot decide exactly as the script would.  Not
 * with replicas to wait for (db_store_set_wait, called first): WAIT covers one connection's
 * writes.  DB_OK, DB_ECONFIG, DB_ENOMEM (reason in e). */
struct event_base;
struct db_redis_opts;
int db_store_start_tx(struct db_store *s, struct event_base *base,
                      const struct db_redis_opts *opts, struct db_err *e) DB_MUST_CHECK;

/* Ingests Redis wrote (or found written) so far, by way: an ingest script, or one
 * transaction (db_store_start_tx). */
void db_store_ingest_ways(const struct db_store *s, unsigned long long *script,
                          unsigned long long *plain);

/* The full name of a key: "<prefix>:<suffix>", into buf; returns buf. */
const char *db_store_key(const struct db_store *s, const char *suffix, char *buf, size_t n);

/* Called once per operation.  status DB_OK, DB_EAGAIN (Redis unavailable or slow),
 * DB_EINVAL (an event breaks the contract: nothing written). */
typedef void (*db_store_ingest_fn)(int status, long long written, void *arg);

/* Writes every event of events that was not written before (dedupe key per platform and
 * account), all in one atomic step (a script run, or a plain webhook's transaction): all or
 * none.  WhatsApp messages and taps also become their conversation's newest customer message
 * (db_store_customer_last) in the same step.
 * Each event gets `id` and `received_at`.
 * Receipts also move the tracked status of the outbound message they name.  When
 * cursor_name is not NULL, P:cursor:<platform>:<account> is set to cursor_value in the same
 * script.  events is read during the call only (the caller may clear it at once). */
void db_store_ingest(struct db_store *s, const char *platform, const char *account,
                     const struct db_event_list *events, const char *cursor_value,
                     db_store_ingest_fn cb, void *arg);

/* The newest message the customer sent in conversation, as remembered when ingest stored it
 * (WhatsApp messages and button taps only): cb(DB_OK, its platform id, the platform's Unix
 * time of it), cb(DB_ENOTFOUND, NULL, 0) when none is known, or DB_EAGAIN / DB_ENOMEM.
 * msg_id is borrowed for the callback only. */
typedef void (*db_store_customer_fn)(int status, const char *msg_id, int64_t ts, void *arg);
void db_store_customer_last(struct db_store *s, const char *conversation,
                            db_store_customer_fn cb, void *arg);

/* Reads the long-polling cursor; cb gets status and the value (borrowed, NULL when none). */
typedef void (*db_store_str_fn)(int status, const char *value, void *arg);
void db_store_get_cursor(struct db_store *s, const char *platform, const char *account,
                         db_store_str_fn cb, void *arg);

/* Creates outbound message id in state queued and appends command_json to P:outbox, unless
 * client_id (may be NULL) was used before: then nothing is written and cb gets the first
 * id.  cb(status, id, current status, created).  Strings borrowed for the callback only. */
typedef void (*db_store_enqueue_fn)(int status, const char *id, const char *msg_status,
                                    int created, void *arg);
void db_store_enqueue(struct db_store *s, const char *id, const char *client_id,
                      const char *conversation, const char *platform, const char *account,
                      const char *command_json, db_store_enqueue_fn cb, void *arg);

/* Makes sure the record of id exists (state queued) for a command a helpdesk XADDed to the
 * outbox directly; cb(status, id, current status, created). */
void db_store_adopt(struct db_store *s, const char *id, const char *conversation,
                    const char *platform, const char *account, db_store_enqueue_fn cb,
                    void *arg);

/* Moves id to new_status (sent|failed, or a receipt state) if that is forward.  ext_ids (may
 * be empty) are the platform ids of the sent parts: each is indexed to id, the first becomes
 * external_message_id, and receipts that arrived early for any of them are applied.
 * err_code/err_msg may be NULL.  cb(status, id, resulting status, changed). */
void db_store_set_status(struct db_store *s, const char *id, const char *platform,
                         const char *account, const char *new_status,
                         const char *const *ext_ids, size_t n_ext, const char *err_code,
                         const char *err_msg, int attempt, db_store_enqueue_fn cb, void *arg);

/* The tracked state of id as the API shows it: {"id","status","conversation",
 * "external_message_id","error":{code,message}|null,"attempt","history":[...]}.  cb gets a
 * borrowed object (NULL with DB_ENOTFOUND when unknown). */
typedef void (*db_store_json_fn)(int status, json_t *obj, void *arg);
void db_store_get_message(struct db_store *s, const char *id, db_store_json_fn cb, void *arg);
/* Same, found by the platform's message id. */
void db_store_get_by_external(struct db_store *s, const char *platform, const char *account,
                              const char *external_id, db_store_json_fn cb, void *arg);

#endif
