/* join.h - strings and integers put together without printf's format parsing.
 *
 * Keys, dedupe keys and stored events are built for every webhook and every dispatched
 * event; formatting them with snprintf was about 7% of the gateway's instructions per
 * webhook (docs/performance.md).  These write the same bytes as the "%s" and "%lld" they
 * replace.  db_fmt_ll is also the one integer writer of RESP lengths (redis/resp.c), JSON
 * integers (util/json.c) and answer heads (net/httpd_head.c). */
#ifndef DB_UTIL_JOIN_H
#define DB_UTIL_JOIN_H

#include <stddef.h>

/* Writes the strings given before the NULL one after another into buf (n bytes, n > 0),
 * always terminated and cut like snprintf when they do not fit.  Returns the length of the
 * whole (like snprintf): n or more means buf holds a cut copy.  Use DB_JOIN. */
size_t db_join_(char *buf, size_t n, ...) __attribute__((sentinel));
#define DB_JOIN(buf, n, ...) db_join_((buf), (n), __VA_ARGS__, (const char *)NULL)

/* The strings given before the NULL one after another in a new string: malloc'd, the caller
 * frees it; NULL without memory.  Use DB_JOINED. */
char *db_joined_(const char *first, ...) __attribute__((sentinel));
#define DB_JOINED(...) db_joined_(__VA_ARGS__, (const char *)NULL)

/* The decimal digits of v (a '-' first when negative) into buf, which holds at least
 * DB_LL_MAX bytes, terminated.  Returns their length. */
#define DB_LL_MAX 21
size_t db_fmt_ll(char *buf, long long v);

#endif
