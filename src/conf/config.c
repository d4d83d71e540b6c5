/* config.c - a loaded configuration: its accessors and freeing it (loading: load.c). */
#include "conf/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/schema.h"
#include "conf/strings.h"
#include "util/crypto.h"

/* ---- public ---- */

void db_config_free(struct db_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_accounts; i++) {
        struct db_account *a = &c->accounts[i];
        if (a->state && a->conn && a->conn->account_free) a->conn->account_free(a->state);
        free((void *)a->sec.kv);
    }
    free(c->accounts);
    for (size_t i = 0; i < c->n_tenants; i++) {
        free(c->tenants[i].accounts);
        free(c->tenants[i].api_tokens);
    }
    free(c->tenants);
    for (size_t i = 0; i < c->n_sections; i++) {
        if (c->features) db_conf_obj_free(c->features[i].table, c->features[i].obj);
        free((void *)c->sections[i].kv);
    }
    free(c->sections);
    free(c->features);
    free(c->api_tokens);
    db_cfgl_store_free(c->storage);
    free(c);
}

const struct db_account *db_config_account(const struct db_config *c, const char *platform,
                                           const char *id)
{
    if (!c) return NULL;
    for (size_t i = 0; i < c->n_accounts; i++)
        if (strcmp(c->accounts[i].platform, platform) == 0 && strcmp(c->accounts[i].id, id) == 0)
            return &c->accounts[i];
    return NULL;
}

const struct db_account *db_config_sole_account(const struct db_config *c, const char *platform)
{
    const struct db_account *found = NULL;
    for (size_t i = 0; c && i < c->n_accounts; i++) {
        if (strcmp(c->accounts[i].platform, platform) != 0) continue;
        if (found) return NULL;
        found = &c->accounts[i];
    }
    return found;
}

const struct db_conf_section *db_config_section(const struct db_config *c, const char *type,
                                                const char *name)
{
    for (size_t i = 0; i < c->n_sections; i++)
        if (strcmp(c->sections[i].platform, type) == 0 &&
            (!name || strcmp(c->sections[i].account, name) == 0))
            return &c->sections[i];
    return NULL;
}

const void *db_config_obj(const struct db_config *c, const char *type, const char *name)
{
    for (size_t i = 0; i < c->n_sections; i++)
        if (strcmp(c->sections[i].platform, type) == 0 &&
            (!name || strcmp(c->sections[i].account, name) == 0))
            return c->features[i].obj;
    return NULL;
}
