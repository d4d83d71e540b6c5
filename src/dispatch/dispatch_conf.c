/* dispatch_conf.c - the [dispatch] section: its key table, and the options the dispatcher
 * reads from the struct the table built when the configuration was loaded (nothing is
 * parsed on a timer tick or per event).  docs/dispatcher.md. */
#include "dispatch/dispatcher.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "util/schema.h"
#include "dispatch/assign.h"

/* priority_keyword may repeat: every line adds rules, compiled into one string here. */
static int dispatch_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_dispatch_conf *d = obj;
    for (size_t i = 0; i < sec->n; i++) {
        if (strcmp(sec->kv[i].key, "priority_keyword") != 0) continue;
        struct db_err why = {0};
        int rc = db_assign_rules_add(&d->rules, sec->kv[i].value, &why);
        if (rc == DB_ENOMEM) return db_err_set(e, DB_ENOMEM, "out of memory");
        if (rc != DB_OK)
            return db_conf_error(e, sec, &sec->kv[i], "priority_keyword", "%s", why.msg);
    }
    return DB_OK;
}

static void dispatch_release(void *obj)
{
    free(((struct db_dispatch_conf *)obj)->rules);
}

#define DOFF(f) offsetof(struct db_dispatch_conf, f)
static const struct db_conf_key dispatch_keys[] = {
    {.name = "offline_grace_ms", .type = DB_CONF_LONG, .min = 0, .max = 86400000L,
     .def = "60000", .off = DOFF(offline_grace_ms),
     .doc = "how long an offline agent keeps their conversations"},
    {.name = "claim_idle_ms", .type = DB_CONF_LONG, .min = 100, .max = 86400000L,
     .def = "30000", .off = DOFF(claim_idle_ms), .off_set = DOFF(claim_idle_set),
     .doc = "pending entries idle this long are taken over (default: the global `claim_idle_ms`)"},
    {.name = "max_deliveries", .type = DB_CONF_LONG, .min = 1, .max = 1000, .def = "10",
     .off = DOFF(max_deliveries),
     .doc = "deliveries after which an entry goes to `P:dead`"},
    {.name = "default_capacity", .type = DB_CONF_LONG, .min = 0, .max = 10000, .def = "5",
     .off = DOFF(default_capacity),
     .doc = "capacity of an agent created without one"},
    {.name = "sweep_ms", .type = DB_CONF_LONG, .min = 50, .max = 600000, .def = "1000",
     .off = DOFF(sweep_ms), .doc = "how often each process runs the offline sweep"},
    {.name = "priority_keyword", .type = DB_CONF_STR, .flags = DB_CONF_REPEATABLE,
     .off = DOFF(priority_keyword),
     .doc = "`word,word:priority`; a customer message containing a word raises the conversation to that priority"},
};

const struct db_conf_table db_dispatch_conf_table = {
    .section = "dispatch", .named = 0, .size = sizeof(struct db_dispatch_conf),
    .keys = dispatch_keys, .n_keys = sizeof dispatch_keys / sizeof dispatch_keys[0],
    .finish = dispatch_finish, .release = dispatch_release};

int db_dispatch_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    void *obj = NULL;
    int rc = db_conf_obj_new(&db_dispatch_conf_table, sec, &obj, e);
    db_conf_obj_free(&db_dispatch_conf_table, obj);
    return rc;
}

/* Without a [dispatch] section: the table's defaults (test_config checks they agree). */
static const struct db_dispatch_conf no_section = {
    .offline_grace_ms = 60000, .claim_idle_ms = 30000, .max_deliveries = 10,
    .default_capacity = 5, .sweep_ms = 1000};

struct db_dispatch_opts db_dispatch_opts_of(const struct db_config *cfg)
{
    const struct db_dispatch_conf *d = db_config_obj(cfg, "dispatch", NULL);
    if (!d) d = &no_section;
    struct db_dispatch_opts o = {
        .offline_grace_ms = d->offline_grace_ms,
        .claim_idle_ms = d->claim_idle_set ? d->claim_idle_ms : cfg->claim_idle_ms,
        .max_deliveries = d->max_deliveries,
        .default_capacity = d->default_capacity,
        .sweep_ms = d->sweep_ms,
    };
    return o;
}

const char *db_dispatch_rules_of(const struct db_config *cfg)
{
    const struct db_dispatch_conf *d = db_config_obj(cfg, "dispatch", NULL);
    return d ? d->rules : NULL;
}
