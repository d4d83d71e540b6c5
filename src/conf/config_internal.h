/* config_internal.h - the seams of config.c that tests and the fuzz target use.  Not part
 * of the daemon's contract: only config.c, tests/unit/test_config.c and
 * tests/fuzz/fuzz_config.c include it. */
#ifndef DB_CONFIG_INTERNAL_H
#define DB_CONFIG_INTERNAL_H

#include <stddef.h>

#include "conf/config.h"

typedef const struct db_connector *(*db_config_find_fn)(const char *name);

struct db_config_opts {
    /* When text is not NULL it is parsed instead of reading the file; file then only names
     * the text in error messages (and may be NULL, then "config" is used).  Borrowed. */
    const char *text;
    size_t text_len;
    /* How platform names are resolved, both to accept a [<platform> <id>] section and to
     * build its state; NULL means db_connector_find.  Tests pass their own connector. */
    db_config_find_fn find;
    /* 1: stop after the check pass; accounts carry conn and sec, state stays NULL and
     * account_new is never called (so placeholders without account_new pass). */
    int skip_accounts;
    /* 1: every *_file key or NAME_FILE variable is an error instead of a file read (the
     * fuzz target must not open whatever path the input names). */
    int no_secret_files;
    /* The feature sections' key tables, NULL-terminated; NULL: no feature section. */
    const struct db_conf_table *const *features;
};

/* db_config_load with the knobs above.  Same ownership: *out is freed with
 * db_config_free. */
int db_config_load_opts(const char *file, char *const *env, const struct db_config_opts *o,
                        struct db_config **out, struct db_err *e) DB_MUST_CHECK;

/* Name of the i-th [gateway] key of the table, NULL past the end (static strings). */
const char *db_config_key_name(size_t i);
/* Name of the i-th fixed environment variable (gateway overrides and quickstart accounts),
 * NULL past the end (static strings). */
const char *db_config_env_name(size_t i);

/* The [gateway] key table (test_config checks docs/config.md against it). */
struct db_conf_table;
const struct db_conf_table *db_config_gateway_table(void);

#endif
