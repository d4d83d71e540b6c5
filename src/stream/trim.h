/* trim.h - keeps <prefix>:events near [gateway] stream_maxlen without losing what a consumer
 * group has not read.
 *
 * The ingest scripts append without a cap; once a second the trimmer runs one script
 * (src/redis/scripts/stream_trim.lua) that removes only entries every group of the stream has
 * read and acknowledged, so a dispatcher or a helpdesk that falls behind the cap (a Redis AOF
 * rewrite, a deploy) finds every event when it catches up.  What groups still need beyond the
 * cap is held, reported in deskbridge_events_trim_held_entries and logged once a minute with
 * the group that holds it; a group nobody reads any more holds the stream for ever, which
 * stream_maxlen_hard bounds (those removals are counted apart and logged as errors).
 * docs/stream-contract.md, "Trimming", is the promise to consumers.
 *
 * Several processes may trim the same stream: each run is one atomic script and removes only
 * what is removable at that moment, so running it twice is harmless. */
#ifndef DB_STREAM_TRIM_H
#define DB_STREAM_TRIM_H

#include "deskbridge/status.h"

struct db_services;
struct db_trim;

/* Starts trimming svc's events stream once a second, to the caps of the configuration current
 * at each run (so a reload applies; stream_maxlen 0 does nothing).  *out is freed with
 * db_trim_free after svc->redis is freed: a run in flight calls back into it.
 * DB_OK or DB_ENOMEM. */
int db_trim_start(struct db_services *svc, struct db_trim **out, struct db_err *e) DB_MUST_CHECK;
/* No further runs; the one in flight, if any, still reports.  NULL-safe. */
void db_trim_stop(struct db_trim *t);
void db_trim_free(struct db_trim *t); /* NULL-safe */

#endif
