/* join.c - see join.h. */
#include "util/join.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

size_t db_join_(char *buf, size_t n, ...)
{
    va_list ap;
    size_t used = 0;
    va_start(ap, n);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        size_t l = strlen(s);
        if (used < n - 1) memcpy(buf + used, s, l < n - 1 - used ? l : n - 1 - used);
        used += l;
    }
    va_end(ap);
    buf[used < n - 1 ? used : n - 1] = '\0';
    return used;
}

char *db_joined_(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) n += strlen(s);
    va_end(ap);
    char *out = malloc(n + 1), *p = out;
    if (!out) return NULL;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) {
        size_t l = strlen(s);
        memcpy(p, s, l);
        p += l;
    }
    va_end(ap);
    *p = '\0';
    return out;
}

size_t db_fmt_ll(char *buf, long long v)
{
    char d[20];
    size_t n = 0, out = 0;
    /* in unsigned arithmetic, so that LLONG_MIN's magnitude is representable */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do d[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0) buf[out++] = '-';
    while (n) buf[out++] = d[--n];
    buf[out] = '\0';
    return out;
}
