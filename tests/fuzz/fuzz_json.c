/* fuzz_json.c - differential target for the JSON reader and writer (src/util/json_parse.c,
 * src/util/json.c) against jansson, whose behaviour they promise to keep: for every input,
 * db_json_parse_object accepts exactly when json_loadb(JSON_REJECT_DUPLICATES) accepts an
 * object, the two values are json_equal, and db_json_dump writes json_dumps's bytes for the
 * value and for each of its members.  A refusal points inside the input (or just past it).
 * Any disagreement aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* db_json_dump(v) must equal json_dumps; scalars are compared with JSON_ENCODE_ANY, which
 * db_json_dump always implies. */
static void same_dump(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *got = db_json_dump(v);
    if (!want || !got || strcmp(want, got) != 0) abort();
    free(want);
    free(got);
}

/* The line:col of a refusal names a byte of the input, or the end of it. */
static void check_position(const uint8_t *data, size_t size, const char *msg)
{
    const char *at = strrchr(msg, ' ');
    size_t line, col;
    if (!at || sscanf(at + 1, "%zu:%zu", &line, &col) != 2 || line < 1 || col < 1) abort();
    size_t off = 0;
    for (size_t l = 1; l < line; l++) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        if (!nl) abort();
        off = (size_t)(nl - data) + 1;
    }
    if (off + col - 1 > size) abort();
    const uint8_t *nl = memchr(data + off, '\n', size - off);
    if (nl && off + col - 1 > (size_t)(nl - data)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *want = size ? json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je) : NULL;
    int want_object = want && json_is_object(want);
    json_t *got = NULL;
    struct db_err e = {0};
    int rc = db_json_parse_object(data, size, &got, &e);
    if ((rc == DB_OK) != want_object) abort();
    if (rc != DB_OK) {
        if (got || rc != DB_EINVAL) abort();
        if (want) {
            if (strcmp(e.msg, "top-level value must be an object") != 0) abort();
            same_dump(want);
        } else if (strncmp(e.msg, "body is not JSON: ", 18) == 0) {
            check_position(data, size, e.msg);
        } else if (strcmp(e.msg, "top-level value must be an object") != 0 &&
                   !(size == 0 && strcmp(e.msg, "body is empty") == 0)) {
            abort();
        }
        json_decref(want);
        return 0;
    }
    if (!json_equal(want, got)) abort();
    same_dump(got);
    const char *key;
    json_t *member;
    json_object_foreach(got, key, member) same_dump(member);
    json_decref(want);
    json_decref(got);
    return 0;
}
