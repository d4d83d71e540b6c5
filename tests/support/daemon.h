/* daemon.h - runs the real deskbridge binary for integration tests and talks HTTP to it.
 *
 * The daemon gets a free loopback port, the environment given plus whatever it inherits, and
 * its stderr in a log file the tests can grep (e.g. for secrets that must not appear). */
#ifndef DB_TEST_DAEMON_H
#define DB_TEST_DAEMON_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

struct db_test_daemon {
    pid_t pid;
    int port;
    char log_path[256];
    int keep_log; /* set once started (a start clears it): stop_clean leaves the log */
};

/* A free TCP port on 127.0.0.1 (bound and released; fine for tests). */
int db_test_free_port(void);

/* Starts DB_DAEMON_PATH with env (NULL-terminated "NAME=value" list, added to a clean
 * environment that keeps only PATH) and extra argv (NULL-terminated, may be NULL), on port
 * (0 = a free one), and waits until /healthz answers (10 s deadline).  Fails the test
 * otherwise.  Returns 0. */
int db_test_daemon_start(struct db_test_daemon *d, const char *const *env,
                         const char *const *args, int port);
/* Sends sig and waits for the exit (5 s, then SIGKILL); returns the exit status as
 * waitpid reports it. */
int db_test_daemon_stop(struct db_test_daemon *d, int sig);
/* Fails the test when a line of the daemon's log contains any of never_logged
 * (NULL-terminated, may be NULL: tokens, phone numbers, message texts) or a sanitizer
 * report.  Also in a group teardown: the test program then exits with status 1. */
void db_test_daemon_assert_log_clean(const struct db_test_daemon *d,
                                     const char *const *never_logged);
/* Stops the daemon with SIGTERM and fails the test unless it exited with status 0 and its
 * log is clean (as above).  Removes the log unless KEEP_LOG or d->keep_log is set. */
void db_test_daemon_stop_clean(struct db_test_daemon *d, const char *const *never_logged);
/* 1 when the process is still running. */
/* Makes the test program end with status 1 at exit, whatever cmocka reports: cmocka counts a
 * failed check in a group teardown but still exits 0, so ctest would pass it. */
void db_test_exit_failing(void);
/* A check for a group teardown: when cond is false it says so on stderr, ends the program
 * with status 1 at exit (db_test_exit_failing) and fails like assert_true. */
#define db_test_teardown_assert(cond)                                              \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: teardown check failed: %s\n", __FILE__, __LINE__, #cond); \
            db_test_exit_failing();                                                \
        }                                                                          \
        assert_true(cond);                                                         \
    } while (0)
int db_test_daemon_alive(struct db_test_daemon *d);
/* Counts lines of the daemon's log containing needle. */
int db_test_daemon_log_count(const struct db_test_daemon *d, const char *needle);
/* Writes the last n lines of the daemon's log to out (for a failure's diagnostics). */
void db_test_daemon_log_tail(const struct db_test_daemon *d, int n, FILE *out);

struct db_test_resp {
    int status;           /* 0 when the connection failed */
    char *headers;        /* raw header block, malloc'd */
    char *body;           /* malloc'd, NUL-terminated */
    size_t body_len;
};

/* One HTTP/1.1 request over a fresh connection (Connection: close) to 127.0.0.1:port.
 * headers: NULL-terminated "Name: value" list (may be NULL).  Content-Length is added when
 * body is not NULL.  10 s timeout.  Free the answer with db_test_resp_clear. */
void db_test_http(int port, const char *method, const char *path, const char *const *headers,
                  const void *body, size_t len, struct db_test_resp *out);
void db_test_resp_clear(struct db_test_resp *r);
/* Header value of name in r (case-insensitive), copied into buf; NULL when absent. */
const char *db_test_resp_header(const struct db_test_resp *r, const char *name, char *buf,
                                size_t n);

/* Polls cond(arg) every 20 ms until it returns non-zero or timeout_ms passes; returns the last
 * value of cond. */
int db_test_wait(int (*cond)(void *), void *arg, int timeout_ms);
/* Waits up to timeout_ms for GET /readyz on port to answer 200 (each Redis connection of the
 * daemon reconnects on its own, so one answering again does not make the rest ready).
 * 1 when it did. */
int db_test_wait_ready(int port, int timeout_ms);

#endif
