#include "util/json.h"

#include <string.h>

int db_json_parse_object(const void *body, size_t len, json_t **out, struct db_err *e)
{
    json_error_t je;
    *out = NULL;
    if (!body || len == 0) return db_err_set(e, DB_EINVAL, "body is empty");
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        /* jansson quotes the text near the error; that may be a customer's words, which
         * must not reach logs or answers. */
        char *near = strstr(je.text, " near ");
        if (near) *near = '\0';
        return db_err_set(e, DB_EINVAL, "body is not JSON: %s at %d:%d", je.text, je.line,
                          je.column);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return db_err_set(e, DB_EINVAL, "top-level value must be an object");
    }
    *out = v;
    return DB_OK;
}

const char *db_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

char *db_json_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT);
}
