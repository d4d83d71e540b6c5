/* metrics.h - counters, gauges and histograms of one gateway process, exposed at
 * GET /metrics in the Prometheus text format (clean under `promtool check metrics`).
 *
 * Calls are cheap (no allocation after a label set was first seen) and never fail the
 * caller: a label set that cannot be recorded is dropped.  Label values are bounded by the
 * configuration (platforms, accounts) or by fixed vocabularies (outcomes, kinds), so the
 * series count stays bounded.  Gauges that live in Redis (queue lengths, oldest pending
 * entry, conversations by state) are read when /metrics is scraped. */
#ifndef DB_METRICS_H
#define DB_METRICS_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_metrics;
struct db_services;
struct db_httpd_req;

/* NULL on ENOMEM; free with db_metrics_free (NULL-safe). */
struct db_metrics *db_metrics_new(void);
void db_metrics_free(struct db_metrics *m);

/* deskbridge_webhooks_total{platform,account,outcome}; outcome: accepted, duplicate,
 * ignored (valid, nothing to store), unauthorized, invalid, too_large, unknown_account,
 * unavailable. */
void db_metrics_webhook(struct db_metrics *m, const char *platform, const char *account,
                        const char *outcome);
/* deskbridge_stream_write_seconds histogram (one ingest script round trip). */
void db_metrics_store_latency(struct db_metrics *m, double seconds);
/* deskbridge_events_total{platform,kind}: events written to the stream. */
void db_metrics_events(struct db_metrics *m, const char *platform, const char *kind, long n);
/* deskbridge_sends_total{platform,outcome,error_class}; outcome sent|failed|retry;
 * error_class "" when none, else the platform's code ("429", "131047", "12"...). */
void db_metrics_send(struct db_metrics *m, const char *platform, const char *outcome,
                     const char *error_class);
/* deskbridge_bridge_calls_total{bridge,direction,outcome}: a helpdesk bridge's calls (bridge
 * "chatwoot:NAME" from the configuration; direction to_helpdesk|from_helpdesk|status; outcome
 * ok|retry|failed|refused|ignored|duplicate). */
void db_metrics_bridge(struct db_metrics *m, const char *bridge, const char *direction,
                       const char *outcome);
/* deskbridge_stream_trimmed_total{stream} (entries removed), deskbridge_stream_trimmed_unread_
 * total{stream} (of them removed by a hard cap before a group read them) and the gauge
 * deskbridge_stream_trim_held_entries{stream} (entries over the cap that groups still need),
 * from one run of the trimmer (stream/trim.h); stream is a key suffix of redis/keys.h
 * (events, status, outbox; others are dropped). */
void db_metrics_stream_trimmed(struct db_metrics *m, const char *stream, long long removed,
                               long long unread, long long held);
/* deskbridge_dead_letters_total */
/* The media store: a file stored, lost (reason: the code of why) or retried. */
void db_metrics_media(struct db_metrics *m, const char *platform, const char *outcome,
                      const char *reason);
void db_metrics_dead_letter(struct db_metrics *m);
/* n events applied by the dispatcher: plain 1 by plain updates (dispatch/fast.h), 0 by its
 * script. */
void db_metrics_dispatched(struct db_metrics *m, int plain, size_t n);
/* deskbridge_memory_trims_total (app/memtrim.h). */
void db_metrics_memory_trim(struct db_metrics *m);
/* deskbridge_redis_up gauge (1/0) and deskbridge_redis_reconnects_total. */
void db_metrics_redis_state(struct db_metrics *m, int up);
/* deskbridge_first_response_seconds histogram (agent's first reply in a conversation). */
void db_metrics_first_response(struct db_metrics *m, double seconds);
/* deskbridge_surveys_total{outcome}: sent, skipped_window, answered, commented. */
void db_metrics_survey(struct db_metrics *m, const char *outcome);
/* deskbridge_survey_score histogram: one recorded answer, 1 to 5 (others are ignored). */
void db_metrics_survey_score(struct db_metrics *m, int score);

/* The process's own series (no Redis gauges) in the text format into *out (malloc'd,
 * caller frees; NUL-terminated, *len without the NUL).  DB_OK or DB_ENOMEM. */
int db_metrics_render(const struct db_metrics *m, char **out, size_t *len);

/* Registers GET /metrics on svc->router: the process's own series plus the Redis gauges
 * (deskbridge_queue_length{stream}, deskbridge_pending_entries{stream,group},
 * deskbridge_group_lag_entries{stream,group}, deskbridge_pending_oldest_seconds{stream,group},
 * deskbridge_conversations{state}), read asynchronously; if Redis does not answer, the
 * Redis gauges are left out and deskbridge_redis_up says 0.  DB_OK or DB_ENOMEM. */
int db_metrics_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

#endif
