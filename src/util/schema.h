/* schema.h - the one table-driven way a configuration section becomes a typed struct.
 *
 * A module describes its section once: each key's name, type, bounds, default, flags, one
 * doc line and where in the module's struct the value goes (offsetof).  The loader turns
 * every section of that kind into such a struct when the configuration is loaded (unknown
 * keys, bad values and missing required keys are reported as "FILE:LINE: KEY: ..."), runs
 * the table's finish hook (checks across keys, compiling schedules and patterns), and the
 * module reads struct fields from then on: no string lookups or number parsing where the
 * values are used.  The struct and everything finish made live as long as the loaded
 * configuration and are swapped with it on SIGHUP.
 *
 * It lives in src/util, depending on nothing but util and deskbridge/connector.h, so that
 * the connectors read their account sections ([telegram ID], [whatsapp ID], [viber ID])
 * through tables of their own too; it also defines the section helpers that header
 * declares (db_conf_find, db_conf_error, db_conf_check_keys). */
#ifndef DB_UTIL_SCHEMA_H
#define DB_UTIL_SCHEMA_H

#include <stddef.h>

#include "deskbridge/connector.h"
#include "deskbridge/status.h"

enum db_conf_type {
    DB_CONF_STR,  /* const char *, borrowed from the configuration; not empty unless EMPTY */
    DB_CONF_INT,  /* int within [min, max] */
    DB_CONF_LONG, /* long within [min, max] */
    DB_CONF_BOOL, /* int 0/1: true|yes|on|1 or false|no|off|0 (db_parse_bool) */
    DB_CONF_ENUM, /* const char * (or int index with DB_CONF_INDEX), one of values */
    DB_CONF_URL,  /* const char *, an http(s) URL (db_url_check with DB_URL_HTTP) */
    DB_CONF_LIST, /* [gateway] only: a list the loader accumulates itself (api_token) */
};

#define DB_CONF_SECRET 1u     /* never quoted back in an error */
#define DB_CONF_REQUIRED 2u   /* an error when the section lacks it */
#define DB_CONF_REPEATABLE 4u /* may appear on several lines (the last value is stored) */
#define DB_CONF_INDEX 8u      /* ENUM stored as its index in an int */
#define DB_CONF_EMPTY 16u     /* STR may be empty */
#define DB_CONF_LANG 32u      /* key_<lang> variants (2-16 of a-z _ -) are accepted too */

struct db_conf_key {
    const char *name;
    enum db_conf_type type;
    unsigned flags;
    long min, max;             /* INT and LONG bounds */
    const char *def;           /* default as text, read by the same setter; NULL: none */
    const char *doc;           /* one line for docs/config.md (a test keeps them in step) */
    const char *const *values; /* ENUM, NULL-terminated */
    size_t off;                /* offsetof the target in the module's struct (every key has
                                  one: 0 is the first field, not "none") */
    size_t off_set;            /* when not 0: offsetof an int set to 1 when the key is given */
    const char *env;           /* the variable that may set it (messages name it) */
    /* Optional further check of a value that passed the type's: NULL when good, else a
     * phrase (static, or in buf) saying what is wrong. */
    const char *(*check)(const char *v, char *buf, size_t n);
};

struct db_conf_table {
    const char *section;           /* "dispatch": [dispatch] or [dispatch NAME] */
    int named;                     /* 1: [section NAME], 0: one [section] per file */
    size_t size;                   /* of the module's struct */
    const struct db_conf_key *keys;
    size_t n_keys;
    /* Optional: checks across keys and builds the compiled parts once the keys are set.
     * sec stays valid as long as obj. */
    int (*finish)(void *obj, const struct db_conf_section *sec, struct db_err *e);
    void (*release)(void *obj);    /* optional: frees what finish built (not obj) */
    int quiet;                     /* 1: no value is ever quoted back in an error (a
                                      connector's account, where any value may be secret) */
};

/* The key of t called name (or, for DB_CONF_LANG keys, name_<lang>), or NULL. */
const struct db_conf_key *db_conf_key_find(const struct db_conf_table *t, const char *name);

/* Sets the field of k in obj from v (obj NULL: only checks v); NULL when done, else a phrase
 * saying what is wrong ("must be an integer from 1 to 64"), static or in buf.  Strings are borrowed: v must live
 * as long as obj.  The generic setter of every type, used for [gateway] too. */
const char *db_conf_set(const struct db_conf_key *k, const char *v, void *obj, char *buf,
                        size_t n);

/* Builds the struct of sec by t: defaults, each key, the required ones, then finish.  Of a
 * key given on several lines (a variable appended after the file's line) only the last is
 * judged and stored, as db_conf_find reads it; a REPEATABLE key's lines are judged each.
 * DB_OK with *out (free with db_conf_obj_free), or DB_ECONFIG naming file, line and key
 * (values of SECRET and STR keys, and of every key of a quiet table, never quoted), or
 * DB_ENOMEM. */
int db_conf_obj_new(const struct db_conf_table *t, const struct db_conf_section *sec,
                    void **out, struct db_err *e) DB_MUST_CHECK;
void db_conf_obj_free(const struct db_conf_table *t, void *obj); /* NULL-safe */

#endif
