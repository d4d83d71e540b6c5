/* json.h - parsing untrusted JSON bodies the same way everywhere. */
#ifndef DB_UTIL_JSON_H
#define DB_UTIL_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "deskbridge/status.h"

/* Parses body[0..len) as one JSON object (json_parse.c).  Accepts exactly what
 * json_loadb(JSON_REJECT_DUPLICATES) accepts, then requires an object: strict RFC 8259,
 * UTF-8 only, duplicate keys and \u0000 rejected, integers within json_int_t, reals that do
 * not overflow, depth bounded by jansson's 2048 limit.  *out is a new reference (caller
 * decrefs) on DB_OK, NULL otherwise.  DB_EINVAL with "body is empty", "body is not JSON:
 * <reason> at line:col" (1-based line and byte column of the offending byte; no body text)
 * or "top-level value must be an object" in e; DB_ENOMEM with nothing leaked. */
int db_json_parse_object(const void *body, size_t len, json_t **out, struct db_err *e)
    DB_MUST_CHECK;

/* Borrowed string member key of obj, or NULL when absent or not a string. */
const char *db_json_str(const json_t *obj, const char *key);

/* Compact serialization, byte for byte what json_dumps(v, JSON_COMPACT) writes (Unicode
 * stays raw UTF-8); any value, scalars too (as with JSON_ENCODE_ANY).  Returns a malloc'd
 * string the caller frees; NULL when v is NULL, on ENOMEM, and where json_dumps fails too (a
 * string that is not UTF-8, a container inside itself). */
char *db_json_dump(const json_t *v);

#endif
