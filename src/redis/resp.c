/* resp.c - commands formatted as RESP arrays of bulk strings, binary-safe.  Done here rather
 * than by hiredis's formatter, which printed each length with sprintf: a tenth of the cost of
 * storing a webhook. */
#include "redis/redis_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/join.h"

char *db_resp_format_argv(int argc, const char **argv, const size_t *argvlen, size_t *len)
{
    size_t total = 1 + 20 + 2;
    for (int i = 0; i < argc; i++)
        total += 1 + 20 + 2 + (argvlen ? argvlen[i] : strlen(argv[i])) + 2;
    char *buf = malloc(total), *p = buf;
    if (!buf) return NULL;
    *p++ = '*';
    p += db_fmt_ll(p, argc);
    *p++ = '\r', *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p += db_fmt_ll(p, (long long)n);
        *p++ = '\r', *p++ = '\n';
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r', *p++ = '\n';
    }
    *len = (size_t)(p - buf);
    return buf;
}
