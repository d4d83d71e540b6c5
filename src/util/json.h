/* json.h - parsing untrusted JSON bodies the same way everywhere. */
#ifndef DB_UTIL_JSON_H
#define DB_UTIL_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "deskbridge/status.h"

/* Parses body[0..len) as one JSON object (duplicate keys rejected, depth bounded by
 * jansson's 2048 limit, NUL escapes rejected).  *out is a new reference on DB_OK.
 * DB_EINVAL with "body is not JSON: <reason> at line:col" or "top-level value must be an
 * object" in e. */
int db_json_parse_object(const void *body, size_t len, json_t **out, struct db_err *e)
    DB_MUST_CHECK;

/* Borrowed string member key of obj, or NULL when absent or not a string. */
const char *db_json_str(const json_t *obj, const char *key);

/* Compact serialization (ensure_ascii off, so Unicode stays raw UTF-8); malloc'd, caller
 * frees; NULL on ENOMEM. */
char *db_json_dump(const json_t *v);

#endif
