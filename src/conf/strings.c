/* strings.c - the string store of a loaded configuration (conf/strings.h). */
#include "conf/strings.h"

#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"

/* Takes s (malloc'd) into st; on failure frees s.  The result is owned by st. */
char *db_cfgl_keep(struct db_cfgl_store *st, char *s)
{
    if (!s) return NULL;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        char **p = realloc(st->p, cap * sizeof *p);
        if (!p) {
            free(s);
            return NULL;
        }
        st->p = p;
        st->cap = cap;
    }
    st->p[st->n++] = s;
    return s;
}

/* Copy of s[0..n) owned by st, or NULL when out of memory. */
char *db_cfgl_ndup(struct db_cfgl_store *st, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return db_cfgl_keep(st, d);
}

char *db_cfgl_dup(struct db_cfgl_store *st, const char *s)
{
    return db_cfgl_ndup(st, s, strlen(s));
}

void db_cfgl_store_free(struct db_cfgl_store *st)
{
    if (!st) return;
    /* Many of these strings are tokens and passwords. */
    for (size_t i = 0; i < st->n; i++) {
        db_wipe_str(st->p[i]);
        free(st->p[i]);
    }
    free(st->p);
    free(st);
}

