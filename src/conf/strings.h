/* strings.h - every string of a loaded configuration, owned by one store and freed (and
 * wiped: many are secrets) together with it.  Private to src/conf/; knows nothing of the
 * configuration itself, so both the loader and the loaded configuration use it. */
#ifndef DB_CONF_STRINGS_H
#define DB_CONF_STRINGS_H

#include <stddef.h>

/* Every string of a loaded configuration, freed (and wiped: many are secrets) together. */
struct db_cfgl_store {
    char **p;
    size_t n, cap;
};

/* Take s (malloc'd) into st, or free it when out of memory; the result is owned by st. */
char *db_cfgl_keep(struct db_cfgl_store *st, char *s);
char *db_cfgl_ndup(struct db_cfgl_store *st, const char *s, size_t n);
char *db_cfgl_dup(struct db_cfgl_store *st, const char *s);
void db_cfgl_store_free(struct db_cfgl_store *st); /* NULL-safe */

#endif
