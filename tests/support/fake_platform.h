/* fake_platform.h - a scriptable stand-in for a platform's HTTP API, for tests.
 *
 * One fake is an evhttp server on 127.0.0.1 (a port the kernel picks), running in its own
 * thread with its own event_base, so a test thread may block (or a daemon in another process
 * may call it) while it answers.  Every function here is safe to call from any thread while
 * the server runs.
 *
 * Answers are scripted with rules, tried in the order they were added: a rule matches when
 * its method equals the request's (NULL or "*" = any) and its path_substr occurs in the
 * request's path + query (NULL or "" = any).  A rule answers `times` requests (-1 = for ever)
 * and is then skipped.  Unmatched requests get the default answer (404 {"error":"no rule"}
 * until db_fake_default() changes it).
 *
 * In a body, every "{n}" is replaced by a counter that grows by one per answer that contains
 * it and is never reset, so a fake Telegram can hand out distinct message ids:
 *   db_fake_rule(f, "POST", "/sendMessage", -1, 200,
 *                "{\"ok\":true,\"result\":{\"message_id\":{n}}}", 0, 0);
 *
 * Every request is recorded (method, path with query exactly as sent, headers, body, and the
 * answer decided for it) before it is answered, including ones answered by a reset or a
 * delay. */
#ifndef DB_FAKE_PLATFORM_H
#define DB_FAKE_PLATFORM_H

#include <stddef.h>

#include "deskbridge/http_msg.h"

struct db_fake;

/* Starts a fake on 127.0.0.1:0.  NULL if the socket or thread could not be set up.  Free with
 * db_fake_stop(). */
struct db_fake *db_fake_start(void);
/* Stops the server thread, answers nothing more, frees everything.  NULL-safe. */
void db_fake_stop(struct db_fake *f);

int db_fake_port(const struct db_fake *f);
/* "http://127.0.0.1:PORT", borrowed, valid until db_fake_stop(). */
const char *db_fake_url(const struct db_fake *f);

/* Appends a rule (see above).  body is copied; NULL = empty.  delay_ms > 0 stalls the answer
 * that long; reset = 1 closes the connection (with RST) instead of answering, after the
 * delay if any.  Bodies are sent with Content-Type application/json. */
void db_fake_rule(struct db_fake *f, const char *method, const char *path_substr, int times,
                  int status, const char *body, int delay_ms, int reset);
/* Adds a header (copied) to every answer of the most recently added rule, e.g.
 * db_fake_rule_header(f, "Retry-After", "3").  No-op when there is no rule. */
void db_fake_rule_header(struct db_fake *f, const char *name, const char *value);
/* Answer for requests no rule matches.  body copied; NULL = empty. */
void db_fake_default(struct db_fake *f, int status, const char *body);

/* Number of recorded requests whose path contains path_substr (NULL = all). */
size_t db_fake_count(struct db_fake *f, const char *path_substr);

struct db_fake_request {
    char *method, *path, *body; /* body is NUL-terminated for convenience; body_len excludes it */
    size_t body_len;
    struct db_headers headers;
    int answer_status; /* the status it is (or was) answered with; 0 for a reset */
    char *answer;      /* that answer's body, NUL-terminated; NULL for a reset */
};
/* Copies the i-th recorded request (0 = oldest) into *out.  DB_OK, DB_ENOTFOUND when there
 * are not that many, DB_ENOMEM.  The caller frees *out with db_fake_request_clear(). */
int db_fake_get(struct db_fake *f, size_t i, struct db_fake_request *out);
/* Frees what r owns and zeroes it.  NULL-safe. */
void db_fake_request_clear(struct db_fake_request *r);

/* Polls until at least n requests whose path contains path_substr (NULL = all) have been
 * recorded or timeout_ms has passed; returns the count reached. */
size_t db_fake_wait(struct db_fake *f, const char *path_substr, size_t n, int timeout_ms);

/* TCP connections accepted so far: lets tests see keep-alive reuse (many requests, few
 * connections) and that a refused call never connected at all. */
size_t db_fake_connections(struct db_fake *f);

/* Forgets rules, recordings and the connection count (the {n} counter and the default answer
 * stay). */
void db_fake_reset(struct db_fake *f);

#endif
