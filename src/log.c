#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

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

/* Writes s as a JSON string body (without quotes). */
static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
}

void db_log_impl(enum db_log_level level, const struct db_log_ctx *ctx, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    const char *keys[] = {"module", "platform", "account", "id"};
    const char *vals[] = {ctx ? ctx->module : NULL, ctx ? ctx->platform : NULL,
                          ctx ? ctx->account : NULL, ctx ? ctx->id : NULL};
    /* One fprintf sequence under the stdio lock, so concurrent workers never interleave
     * inside a line. */
    flockfile(stderr);
    if (as_json) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, names[level]);
        for (int i = 0; i < 4; i++)
            if (vals[i]) {
                fprintf(stderr, ",\"%s\":\"", keys[i]);
                json_escape(stderr, vals[i]);
                fputc('"', stderr);
            }
        fputs(",\"msg\":\"", stderr);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %-5s", ts, names[level]);
        for (int i = 0; i < 4; i++)
            if (vals[i]) fprintf(stderr, " %s=%s", keys[i], vals[i]);
        fprintf(stderr, " %s\n", msg);
    }
    funlockfile(stderr);
}
