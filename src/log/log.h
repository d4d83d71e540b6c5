/* log.h - one line per event on stderr, as key=value text or as JSON.
 *
 * Secrets never reach a log line: callers pass tokens, phone numbers and message text only
 * through the db_redact_* helpers (util/redact.h), and the level is tested before any
 * formatting happens. */
#ifndef DB_LOG_H
#define DB_LOG_H

#include "deskbridge/status.h"

enum db_log_level { DB_LOG_ERROR = 0, DB_LOG_WARN = 1, DB_LOG_INFO = 2, DB_LOG_DEBUG = 3 };

/* Context carried into every line; all members optional (NULL is omitted). */
struct db_log_ctx {
    const char *module;   /* "httpd", "store", "sender" */
    const char *platform;
    const char *account;
    const char *id;       /* request, event or message id */
};

struct event_base;

/* Gathers info and debug lines written while base runs its callbacks and writes them at the
 * end of each pass of the loop (errors and warnings are written at once).  Per thread; call
 * db_log_detach (writes what is gathered) before base is freed.  DB_OK or DB_ENOMEM. */
int db_log_attach(struct event_base *base) DB_MUST_CHECK;
void db_log_detach(void);

/* Process-wide settings, set once from main before the loop starts. */
void db_log_set_level(enum db_log_level level);
void db_log_set_json(int json);
/* Parses "error|warn|info|debug" / "text|json"; DB_OK or DB_EINVAL. */
int db_log_parse_level(const char *s, enum db_log_level *out) DB_MUST_CHECK;
int db_log_enabled(enum db_log_level level);

void db_log_impl(enum db_log_level level, const struct db_log_ctx *ctx, const char *fmt, ...)
    DB_PRINTF(3, 4);

#define db_log(level, ctx, ...)                                                                \
    do {                                                                                       \
        if (db_log_enabled(level)) db_log_impl(level, ctx, __VA_ARGS__);                       \
    } while (0)

#endif
