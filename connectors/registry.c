#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deskbridge/connector.h"

const struct db_connector *const db_connectors[] = {&db_telegram, &db_whatsapp, &db_viber, NULL};

const struct db_connector *db_connector_find(const char *name)
{
    for (int i = 0; db_connectors[i]; i++)
        if (strcmp(db_connectors[i]->name, name) == 0) return db_connectors[i];
    return NULL;
}

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
