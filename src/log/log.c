#include "log/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

static enum db_log_level min_level = DB_LOG_INFO;
static int as_json;

void db_log_set_level(enum db_log_level level) { min_level = level; }
void db_log_set_json(int json) { as_json = json; }
int db_log_enabled(enum db_log_level level) { return level <= min_level; }

int db_log_parse_level(const char *s, enum db_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum db_log_level)i;
            return DB_OK;
        }
    return DB_EINVAL;
}

/* Appends s escaped as a JSON string body to buf at *n (bounded by cap). */
static void json_escape(char *buf, size_t cap, size_t *n, const char *s)
{
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') *n += (size_t)snprintf(buf + *n, cap - *n, "\\%c", c);
        else if (c < 0x20) *n += (size_t)snprintf(buf + *n, cap - *n, "\\u%04x", c);
        else buf[(*n)++] = (char)c;
    }
}

/* Lines of level info and debug written while the event loop runs its callbacks are gathered
 * and written once at the end of that pass of the loop: a busy gateway logs a line per webhook,
 * and a write per line was a tenth of its time.  Nothing waits on a timer, so a crash loses at
 * most the lines of one pass.  Errors and warnings go out at once, after what was gathered
 * before them, so order is kept.  A write never exceeds PIPE_BUF, so lines of several worker
 * processes sharing one pipe do not interleave. */
static _Thread_local struct {
    char buf[PIPE_BUF];
    size_t len;
    struct event *flush; /* NULL: no loop attached, every line is written at once */
    int scheduled;
} pending;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* stderr gone: nowhere left to report it */
        p += w, n -= (size_t)w;
    }
}

static void flush_pending(void)
{
    write_all(pending.buf, pending.len);
    pending.len = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    pending.scheduled = 0;
    flush_pending();
}

int db_log_attach(struct event_base *base)
{
    db_log_detach();
    pending.flush = event_new(base, -1, 0, flush_cb, NULL);
    return pending.flush ? DB_OK : DB_ENOMEM;
}

void db_log_detach(void)
{
    flush_pending();
    if (pending.flush) event_free(pending.flush);
    pending.flush = NULL;
    pending.scheduled = 0;
}

static void emit(enum db_log_level level, const char *line, size_t n)
{
    if (pending.len + n > sizeof pending.buf) flush_pending();
    memcpy(pending.buf + pending.len, line, n);
    pending.len += n;
    if (!pending.flush || level <= DB_LOG_WARN) {
        flush_pending();
    } else if (!pending.scheduled) {
        pending.scheduled = 1;
        event_active(pending.flush, EV_TIMEOUT, 1);
    }
}

/* The timestamp text, formatted once per second: a busy gateway logs thousands of lines a
 * second and strftime was a visible part of each. */
static void timestamp(char out[48])
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = tv.tv_sec;
    }
    int ms = (int)(tv.tv_usec / 1000);
    size_t n = strlen(cached);
    memcpy(out, cached, n);
    out[n++] = '.';
    out[n++] = (char)('0' + ms / 100);
    out[n++] = (char)('0' + ms / 10 % 10);
    out[n++] = (char)('0' + ms % 10);
    out[n++] = 'Z';
    out[n] = '\0';
}

/* Appends s to buf at *n, cut at cap.  The line is assembled with copies, not snprintf: a
 * busy gateway writes a line per webhook. */
static void put(char *buf, size_t cap, size_t *n, const char *s)
{
    while (*s && *n < cap) buf[(*n)++] = *s++;
}

void db_log_impl(enum db_log_level level, const struct db_log_ctx *ctx, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const char *const padded[] = {"error", "warn ", "info ", "debug"};
    static const char *const keys[] = {"module", "platform", "account", "id"};
    char msg[1024], ts[48], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts);
    const char *vals[] = {ctx ? ctx->module : NULL, ctx ? ctx->platform : NULL,
                          ctx ? ctx->account : NULL, ctx ? ctx->id : NULL};
    size_t n = 0, cap = sizeof line - 2;
    if (as_json) {
        put(line, cap, &n, "{\"ts\":\"");
        put(line, cap, &n, ts);
        put(line, cap, &n, "\",\"level\":\"");
        put(line, cap, &n, names[level]);
        put(line, cap, &n, "\"");
        for (int i = 0; i < 4; i++)
            if (vals[i]) {
                put(line, cap, &n, ",\"");
                put(line, cap, &n, keys[i]);
                put(line, cap, &n, "\":\"");
                json_escape(line, cap, &n, vals[i]);
                put(line, cap, &n, "\"");
            }
        put(line, cap, &n, ",\"msg\":\"");
        json_escape(line, cap, &n, msg);
        if (n + 2 < cap) line[n++] = '"', line[n++] = '}';
    } else {
        put(line, cap, &n, ts);
        put(line, cap, &n, " ");
        put(line, cap, &n, padded[level]);
        for (int i = 0; i < 4; i++)
            if (vals[i]) {
                put(line, cap, &n, " ");
                put(line, cap, &n, keys[i]);
                put(line, cap, &n, "=");
                put(line, cap, &n, vals[i]);
            }
        put(line, cap, &n, " ");
        put(line, cap, &n, msg);
    }
    line[n++] = '\n';
    emit(level, line, n);
}
