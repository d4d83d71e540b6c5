/* sniff.h - the content type of a file from its first bytes, never from its name or from
 * what the sender claimed: the media store keeps and serves files under this type. */
#ifndef DB_UTIL_SNIFF_H
#define DB_UTIL_SNIFF_H

#include <stddef.h>

/* The MIME type the signature at the start of p[0..n) names, or NULL when no known
 * signature matches (the caller then treats the bytes as application/octet-stream).  The
 * string is static. */
const char *db_sniff_type(const unsigned char *p, size_t n);

/* A file extension (without the dot) for a type db_sniff_type returns, else "bin". */
const char *db_sniff_ext(const char *type);

#endif
