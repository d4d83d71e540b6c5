/* parse.c - numbers, yes/no and URLs from text (see parse.h). */
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>

int db_parse_long(const char *s, long min, long max, long *out)
{
    /* strtol alone would take leading blanks, '+' and an empty tail. */
    if (!s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int db_parse_int(const char *s, int min, int max, int *out)
{
    long v;
    if (db_parse_long(s, min, max, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

int db_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (!s) return -1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

static int fail(const char **why, const char *what)
{
    if (why) *why = what;
    return -1;
}

int db_url_check(const char *u, unsigned flags, const char **why)
{
    size_t skip;
    if (!u) return fail(why, "is empty");
    if (strncasecmp(u, "https://", 8) == 0) skip = 8;
    else if (strncasecmp(u, "http://", 7) == 0 && (flags & DB_URL_HTTP)) skip = 7;
    else if (strncasecmp(u, "http://", 7) == 0) return fail(why, "must use https://");
    else return fail(why, (flags & DB_URL_HTTP) ? "must start with http:// or https://"
                                                 : "must start with https://");
    if (!u[skip] || u[skip] == '/' || u[skip] == ':' || u[skip] == '?' || u[skip] == '#')
        return fail(why, "has no host");
    for (const unsigned char *c = (const unsigned char *)u; *c; c++)
        if (*c <= ' ' || *c == 0x7f) return fail(why, "contains a blank or control character");
    return 0;
}

/* The digits at s as a number (ULLONG_MAX past it); returns where they end.  The dispatcher
 * compares ids several times per event, and strtoull's locale and sign handling were a
 * measurable part of its cost. */
static const char *id_part(const char *s, unsigned long long *v)
{
    unsigned long long n = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        n = n > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : n * 10 + d;
    }
    *v = n;
    return s;
}

int db_stream_id_cmp(const char *a, const char *b)
{
    unsigned long long am, bm, as = 0, bs = 0;
    const char *ea = id_part(a, &am), *eb = id_part(b, &bm);
    if (am != bm) return am < bm ? -1 : 1;
    if (*ea == '-') id_part(ea + 1, &as);
    if (*eb == '-') id_part(eb + 1, &bs);
    return as < bs ? -1 : as > bs;
}
