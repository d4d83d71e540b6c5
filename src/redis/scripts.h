/* scripts.h - the Redis scripts, embedded at build time.
 *
 * Each src/redis/scripts/<name>.lua is compiled in as db_lua_<name>: a NUL-terminated string
 * holding the file's bytes exactly (cmake/embed_lua.cmake), so the text Redis runs is the file
 * in the tree, and bench/redis_cost.sh measures those same files.  Static storage; never freed.
 * Each file starts with a comment giving its arguments and its answer. */
#ifndef DB_REDIS_SCRIPTS_H
#define DB_REDIS_SCRIPTS_H

/* The forward-only rule of delivery states; a prelude, run only in front of the scripts that
 * change a state (db_redis_script_new_with). */
extern const char db_lua_status_advance[];

/* The event store (src/store/store.c). */
extern const char db_lua_ingest_plain[]; /* a webhook without receipts or cursor */
extern const char db_lua_ingest[];       /* any webhook; needs status_advance */
extern const char db_lua_enqueue[];      /* a new outbound message; needs status_advance */
extern const char db_lua_set_status[];   /* a send's outcome; needs status_advance */
extern const char db_lua_msg_get[];      /* one outbound message */
extern const char db_lua_customer_seen[]; /* a customer's newest message per conversation */
extern const char db_lua_dedupe[];        /* the redelivery guard, prelude of both ingests */
extern const char db_lua_dedupe_moved[];  /* until when the main database's guard counts */

/* The dispatcher's state machine (src/dispatch/), one script with an operation argument. */
extern const char db_lua_dispatch[];

/* The stream consumer (src/stream/): dead letters of every consumer, the per-conversation
 * order across processes of the sender and the helpdesk webhooks, and trimming that spares
 * what a group has not read. */
extern const char db_lua_stream_dead[];
extern const char db_lua_stream_order[];
extern const char db_lua_stream_trim[];

/* Automatic answers (src/auto/): the once-only key of an answer. */
extern const char db_lua_autoreply_claim[];

/* The media store (src/mediastore/): a file's outcome, and forgetting a deleted file. */
extern const char db_lua_media_record[];
extern const char db_lua_media_forget[];
extern const char db_lua_media_attempt[];

/* Metrics (src/metrics/): conversations per state, read at scrape time. */
extern const char db_lua_metrics_convs[];
/* Per-agent and per-account statistics (src/metrics/agent_stats.c), for /v1/stats too. */
extern const char db_lua_agent_stats[];

/* The agent console (src/console/): sign-in secrets, invitations, sessions, throttling. */
extern const char db_lua_console_auth[];
extern const char db_lua_console_inbox[]; /* what one agent may see, search queries */
extern const char db_lua_console_index[]; /* the search index's writes */

#endif
