/* resp.c - commands formatted as RESP arrays of bulk strings, binary-safe.  Done here rather
 * than by hiredis's formatter, which printed each length with sprintf: a tenth of the cost of
 * storing a webhook. */
#include "redis/redis_internal.h"

#include <stdlib.h>
#include <string.h>

static size_t put_uint(char *p, size_t v)
{
    char tmp[24];
    size_t n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

char *db_resp_format_argv(int argc, const char **argv, const size_t *argvlen, size_t *len)
{
    size_t total = 1 + 20 + 2;
    for (int i = 0; i < argc; i++)
        total += 1 + 20 + 2 + (argvlen ? argvlen[i] : strlen(argv[i])) + 2;
    char *buf = malloc(total), *p = buf;
    if (!buf) return NULL;
    *p++ = '*';
    p += put_uint(p, (size_t)argc);
    *p++ = '\r', *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p += put_uint(p, n);
        *p++ = '\r', *p++ = '\n';
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r', *p++ = '\n';
    }
    *len = (size_t)(p - buf);
    return buf;
}
