/* redis_fixture.h - a real, private redis-server for a test.
 *
 * Each server lives in its own mkdtemp directory (unix socket, log, AOF files), so test
 * binaries run in parallel (ctest -j) never share or collide.  The plain variant listens
 * on the unix socket only (--port 0); the TCP variant also binds a free 127.0.0.1 port,
 * retrying with another port when the bind races with someone else.  The server is started
 * with PR_SET_PDEATHSIG, so a crashed test does not leave it running.
 *
 * Failures to start abort the test process with a message: there is nothing to test
 * without the server. */
#ifndef DB_TEST_REDIS_FIXTURE_H
#define DB_TEST_REDIS_FIXTURE_H

#include <stdarg.h>

#include <hiredis/hiredis.h>

struct db_test_redis;

/* Starts `redis-server --port 0 --unixsocket DIR/redis.sock --save "" --appendonly no
 * --dir DIR` plus extra_args (split on blanks, may be NULL; later options override earlier
 * ones, e.g. "--appendonly yes") and waits up to 5 s for PING.  Free with
 * db_test_redis_stop. */
struct db_test_redis *db_test_redis_start(const char *extra_args);
/* Same, additionally listening on 127.0.0.1:<free port>. */
struct db_test_redis *db_test_redis_start_tcp(const char *extra_args);

/* "unix:///tmp/.../redis.sock" (plain) or "redis://127.0.0.1:PORT" (TCP); owned by t. */
const char *db_test_redis_url(const struct db_test_redis *t);
/* Always the unix socket form, also for the TCP variant; owned by t. */
const char *db_test_redis_unix_url(const struct db_test_redis *t);
/* The TCP port, 0 for the plain variant. */
int db_test_redis_port(const struct db_test_redis *t);
/* The server's pid (e.g. for SIGSTOP), 0 while it is not running. */
int db_test_redis_pid(const struct db_test_redis *t);
/* The temporary directory; owned by t. */
const char *db_test_redis_dir(const struct db_test_redis *t);

/* A blocking connection over the unix socket for assertions, reconnected when the previous
 * one broke (after a kill/restart) and authenticated when --requirepass was among the extra
 * args.  Owned by t: do not redisFree it. */
redisContext *db_test_redis_ctx(struct db_test_redis *t);

/* A command on db_test_redis_ctx that must succeed: fails the test on no answer or an error
 * answer.  The caller frees the reply (freeReplyObject). */
redisReply *db_test_redis_cmd(struct db_test_redis *t, const char *fmt, ...);
redisReply *db_test_redis_vcmd(struct db_test_redis *t, const char *fmt, va_list ap);
/* The same for a command whose answer does not matter beyond its success (freed here). */
void db_test_redis_run(struct db_test_redis *t, const char *fmt, ...);

/* Fails the test unless a and b are the same answer: type, elements, strings and integers,
 * compared element by element; what names the comparison in the message. */
void db_test_same_reply(const redisReply *a, const redisReply *b, const char *what);

/* Sends sig to the server.  For a terminating signal (anything but SIGSTOP/SIGCONT) waits
 * for the process to exit, so the socket is really gone when this returns. */
void db_test_redis_kill(struct db_test_redis *t, int sig);
/* Starts the server again in the same directory with the same socket, port and args (stops
 * it first if it still runs); for crash tests with AOF. Waits for PING as start does. */
void db_test_redis_restart(struct db_test_redis *t);
/* SIGTERM (SIGKILL after 5 s), waitpid, removes the directory, frees t.  NULL-safe. */
void db_test_redis_stop(struct db_test_redis *t);

#endif
