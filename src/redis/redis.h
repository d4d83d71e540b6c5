/* redis.h - one asynchronous, self-reconnecting Redis connection on libevent.
 *
 * hiredis 0.14.1 (Debian 12) has no async command timeout, so every command carries its own
 * libevent timer: when it fires the caller gets a timeout error at once and the connection
 * is dropped and re-established (a stalled Redis must turn into 503s within the timeout,
 * never into requests that hang).  While disconnected, commands fail at once with
 * DB_EAGAIN; reconnection is retried every reconnect_ms.
 *
 * Addresses: redis://[user:password@]host:port[/db], unix:///path/to/socket[?db=N],
 * redis+sentinel://[user:password@]host:port,host:port/master-name[/db] (the master is
 * asked of the sentinels on every (re)connect, so a failover is followed). */
#ifndef DB_REDIS_H
#define DB_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "deskbridge/status.h"

struct event_base;
struct db_redis;

/* The command timeout when none is configured (also config.c's redis_timeout_ms default):
 * short enough that a webhook arriving as Redis stalls is answered 503 within 2 s. */
#define DB_REDIS_COMMAND_TIMEOUT_MS 1500

struct db_redis_opts {
    const char *url;         /* required */
    int command_timeout_ms;  /* default DB_REDIS_COMMAND_TIMEOUT_MS */
    int connect_timeout_ms;  /* default 1000 */
    int reconnect_ms;        /* default 250 */
    const char *name;        /* CLIENT SETNAME, optional */
};

/* Callback of a command: reply is borrowed (freed by the module after the callback) and
 * NULL when the command failed; then status is DB_EAGAIN (disconnected, timed out) and
 * errstr says why.  A Redis error reply (REDIS_REPLY_ERROR) comes as a reply with
 * status DB_OK: check reply->type. */
typedef void (*db_redis_cb)(int status, const redisReply *reply, const char *errstr,
                            void *arg);
/* Called on every change of the connection state (1 connected and ready, 0 lost). */
typedef void (*db_redis_state_cb)(int up, void *arg);

/* New connection; starts connecting at once.  DB_OK, DB_ECONFIG for a malformed URL (reason
 * in e), DB_ENOMEM.  *out is freed with db_redis_free. */
int db_redis_new(struct event_base *base, const struct db_redis_opts *opts,
                 struct db_redis **out, struct db_err *e) DB_MUST_CHECK;
void db_redis_set_state_cb(struct db_redis *r, db_redis_state_cb cb, void *arg);

/* Sends a command given as argv (binary-safe with argvlen; argvlen NULL means strlen).
 * cb is always called exactly once, possibly before this returns when the connection is
 * down.  cb may be NULL (fire and forget). */
void db_redis_cmd_argv(struct db_redis *r, db_redis_cb cb, void *arg, int argc,
                       const char **argv, const size_t *argvlen);
/* printf-style as redisAsyncCommand. */
void db_redis_cmd(struct db_redis *r, db_redis_cb cb, void *arg, const char *fmt, ...);

/* The answer to a MULTI/EXEC of what (e.g. "plain updates"), logged under ctx: 1 when the
 * transaction ran; then each command Redis refused inside it is logged as an error (EXEC does
 * not undo: the rest stands).  0 when it did not run (a watched key changed, refused, or no
 * answer; logged at debug level). */
struct db_log_ctx;
int db_redis_exec_ran(int status, const redisReply *reply, const char *errstr,
                      const struct db_log_ctx *ctx, const char *what);

/* 1 when connected (and AUTH/SELECT done). */
int db_redis_is_up(const struct db_redis *r);
/* The logical database of the connection (its URL's /db, 0 when it names none). */
int db_redis_db(const struct db_redis *r);
/* Commands sent and not yet answered. */
size_t db_redis_pending(const struct db_redis *r);

/* Loads a Lua script once per connection and runs it with EVALSHA (reloading it with
 * SCRIPT LOAD transparently after NOSCRIPT, e.g. after a Redis restart).  keys and args as
 * argv vectors (args binary-safe with arglens, NULL = strlen). */
struct db_redis_script;
struct db_redis_script *db_redis_script_new(const char *lua); /* NULL on ENOMEM */
/* The script prelude followed by lua (prelude: shared definitions, e.g. db_lua_status_advance
 * of redis/scripts.h); NULL prelude = db_redis_script_new(lua).  NULL on ENOMEM. */
struct db_redis_script *db_redis_script_new_with(const char *prelude, const char *lua);
void db_redis_script_free(struct db_redis_script *s);         /* NULL-safe */
void db_redis_eval(struct db_redis *r, struct db_redis_script *s, db_redis_cb cb, void *arg,
                   int nkeys, const char **keys, int nargs, const char **args,
                   const size_t *arglens);

/* Frees the connection; pending callbacks are called with DB_EAGAIN "shutting down" before
 * this returns.  Safe to call from inside a callback (the free is deferred). NULL-safe. */
void db_redis_free(struct db_redis *r);

/* Blocking helper for the command-line tools and tests: a connected redisContext for url
 * (same syntax, sentinel resolved), or NULL with the reason in e.  Caller redisFree()s. */
redisContext *db_redis_connect_sync(const char *url, int timeout_ms, struct db_err *e);

#endif
