/* trim.h - keeps the streams near their configured caps without losing what a consumer group
 * has not read: <prefix>:events ([gateway] stream_maxlen), :status (status_maxlen) and
 * :outbox (outbox_maxlen); :dead is never trimmed.
 *
 * Nothing appends with a cap; once a second the trimmer runs one script per capped stream
 * (src/redis/scripts/stream_trim.lua) that removes only entries every group of the stream has
 * read and acknowledged, so a dispatcher, a sender or a helpdesk that falls behind the cap (a
 * Redis AOF rewrite, a deploy, a helpdesk outage) finds every entry when it catches up.  What
 * groups still need beyond a cap is held, reported in deskbridge_stream_trim_held_entries and
 * logged once a minute with the group that holds it.  A group nobody reads any more holds the
 * stream for ever; for the events stream stream_maxlen_hard bounds that (those removals are
 * counted apart and logged as errors).  docs/stream-contract.md, "Trimming", is the promise to
 * consumers.
 *
 * Several processes may trim the same stream: each run is one atomic script and removes only
 * what is removable at that moment, so running it twice is harmless. */
#ifndef DB_STREAM_TRIM_H
#define DB_STREAM_TRIM_H

#include "deskbridge/status.h"

struct db_services;
struct db_trim;

/* Starts trimming svc's streams once a second, to the caps of the configuration current at
 * each run (so a reload applies; a cap of 0 leaves its stream alone).  *out is freed with
 * db_trim_free after svc->redis is freed: a run in flight calls back into it.
 * DB_OK or DB_ENOMEM. */
int db_trim_start(struct db_services *svc, struct db_trim **out, struct db_err *e) DB_MUST_CHECK;
/* No further runs; the one in flight, if any, still reports.  NULL-safe. */
void db_trim_stop(struct db_trim *t);
void db_trim_free(struct db_trim *t); /* NULL-safe */

#endif
