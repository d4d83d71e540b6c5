/* schema.c - sections into typed structs through their key tables (see schema.h). */
#include "util/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

/* ---- the section helpers of deskbridge/connector.h ---- */

const struct db_conf_kv *db_conf_find(const struct db_conf_section *sec, const char *key)
{
    /* The last occurrence wins, so environment overrides appended after the file's keys
     * take effect without rewriting the section. */
    for (size_t i = sec->n; i-- > 0;)
        if (strcmp(sec->kv[i].key, key) == 0) return &sec->kv[i];
    return NULL;
}

int db_conf_error(struct db_err *e, const struct db_conf_section *sec,
                  const struct db_conf_kv *kv, const char *key, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (kv && kv->line > 0)
        return db_err_set(e, DB_ECONFIG, "%s:%d: %s: %s", kv->file, kv->line, key, what);
    if (kv)
        return db_err_set(e, DB_ECONFIG, "%s: %s: %s", kv->file, key, what);
    return db_err_set(e, DB_ECONFIG, "[%s %s]: %s: %s", sec->platform, sec->account, key,
                      what);
}

int db_conf_check_keys(const struct db_conf_section *sec, const char *const *allowed,
                       struct db_err *e)
{
    for (size_t i = 0; i < sec->n; i++) {
        int known = 0;
        for (int j = 0; allowed[j] && !known; j++) known = strcmp(sec->kv[i].key, allowed[j]) == 0;
        if (!known)
            return db_conf_error(e, sec, &sec->kv[i], sec->kv[i].key,
                                 "unknown key for a %s account", sec->platform);
    }
    return DB_OK;
}

static int lang_suffix(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && n <= 16 && strspn(s, "abcdefghijklmnopqrstuvwxyz_-") == n;
}

const struct db_conf_key *db_conf_key_find(const struct db_conf_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_keys; i++) {
        const struct db_conf_key *k = &t->keys[i];
        size_t n = strlen(k->name);
        if (strcmp(k->name, name) == 0) return k;
        if ((k->flags & DB_CONF_LANG) && strncmp(name, k->name, n) == 0 && name[n] == '_' &&
            lang_suffix(name + n + 1))
            return k;
    }
    return NULL;
}

/* Checks v for k and, when obj is not NULL, stores it. */
static const char *set_value(const struct db_conf_key *k, const char *v, void *obj, char *buf,
                             size_t n)
{
    union {
        const char *s;
        int i;
        long l;
    } scratch;
    void *f = obj ? (char *)obj + k->off : (void *)&scratch;
    switch (k->type) {
    case DB_CONF_STR:
        if (!*v && !(k->flags & DB_CONF_EMPTY)) return "must not be empty";
        *(const char **)f = v;
        break;
    case DB_CONF_INT:
    case DB_CONF_LONG: {
        long x;
        if (db_parse_long(v, k->min, k->max, &x) != 0) {
            snprintf(buf, n, "must be an integer from %ld to %ld", k->min, k->max);
            return buf;
        }
        if (k->type == DB_CONF_INT) *(int *)f = (int)x;
        else *(long *)f = x;
        break;
    }
    case DB_CONF_BOOL:
        if (db_parse_bool(v, (int *)f) != 0) return "must be true or false";
        break;
    case DB_CONF_ENUM: {
        int i = 0;
        while (k->values[i] && strcmp(k->values[i], v) != 0) i++;
        if (!k->values[i]) {
            size_t used = (size_t)snprintf(buf, n, "must be ");
            for (int j = 0; k->values[j] && used < n; j++)
                used += (size_t)snprintf(buf + used, n - used, "%s%s", j ? "|" : "",
                                         k->values[j]);
            return buf;
        }
        if (k->flags & DB_CONF_INDEX) *(int *)f = i;
        else *(const char **)f = k->values[i];
        break;
    }
    case DB_CONF_URL: {
        const char *why = NULL;
        if (db_url_check(v, DB_URL_HTTP, &why) != 0) return why;
        *(const char **)f = v;
        break;
    }
    case DB_CONF_LIST:
        return "is a list the loader reads itself";
    }
    return k->check ? k->check(v, buf, n) : NULL;
}

const char *db_conf_set(const struct db_conf_key *k, const char *v, void *obj, char *buf,
                        size_t n)
{
    const char *why = set_value(k, v, obj, buf, n);
    if (!why && obj && k->off_set) *(int *)((char *)obj + k->off_set) = 1;
    return why;
}

/* The name a user wrote: the variable for a value that came from the environment. */
static const char *shown_name(const struct db_conf_key *k, const struct db_conf_kv *kv)
{
    if (k && k->env && kv && kv->line == 0 && strcmp(kv->file, "environment") == 0)
        return k->env;
    return kv ? kv->key : k->name;
}

void db_conf_obj_free(const struct db_conf_table *t, void *obj)
{
    if (!obj) return;
    if (t->release) t->release(obj);
    free(obj);
}

int db_conf_obj_new(const struct db_conf_table *t, const struct db_conf_section *sec,
                    void **out, struct db_err *e)
{
    char buf[160];
    *out = NULL;
    void *obj = calloc(1, t->size);
    if (!obj) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = DB_OK;
    for (size_t i = 0; i < t->n_keys && rc == DB_OK; i++) {
        const struct db_conf_key *k = &t->keys[i];
        /* A default that does not pass its own key's check is a bug of the table. */
        if (k->def && set_value(k, k->def, obj, buf, sizeof buf))
            rc = db_err_set(e, DB_ECONFIG, "[%s]: %s: bad built-in default", t->section,
                            k->name);
    }
    for (size_t i = 0; i < sec->n && rc == DB_OK; i++) {
        const struct db_conf_kv *kv = &sec->kv[i];
        const struct db_conf_key *k = db_conf_key_find(t, kv->key);
        if (!k) {
            rc = db_conf_error(e, sec, kv, kv->key, "unknown key in [%s]", t->section);
            break;
        }
        /* Only the last of a key's lines counts (db_conf_find), so a variable appended
         * after the file's line overrides it, even a wrong one. */
        if (!(k->flags & DB_CONF_REPEATABLE) && db_conf_find(sec, kv->key) != kv) continue;
        /* A key_<lang> text is checked like its key but stays in the section: the
         * module picks the language per message. */
        int variant = strcmp(kv->key, k->name) != 0;
        const char *why = db_conf_set(k, kv->value, variant ? NULL : obj, buf, sizeof buf);
        if (!why) continue;
        /* Free text is not quoted back: it may be long, or a secret in a key the table
         * does not know to be one. */
        if (t->quiet || (k->flags & DB_CONF_SECRET) || k->type == DB_CONF_STR)
            rc = db_conf_error(e, sec, kv, shown_name(k, kv), "%s", why);
        else
            rc = db_conf_error(e, sec, kv, shown_name(k, kv), "%s (got '%.40s')", why,
                               kv->value);
    }
    for (size_t i = 0; i < t->n_keys && rc == DB_OK; i++)
        if ((t->keys[i].flags & DB_CONF_REQUIRED) && !db_conf_find(sec, t->keys[i].name))
            rc = db_conf_error(e, sec, NULL, t->keys[i].name, "is required");
    if (rc == DB_OK && t->finish) rc = t->finish(obj, sec, e);
    if (rc != DB_OK) {
        db_conf_obj_free(t, obj);
        return rc;
    }
    *out = obj;
    return DB_OK;
}
