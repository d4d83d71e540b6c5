/* load.c - loading a configuration: the passes in order.
 *
 * Loading runs in passes over a fresh struct db_config, so a failure at any point leaves the
 * caller's running configuration untouched (SIGHUP reload):
 *   1. parse the file into sections (syntax, duplicates, unknown sections and [gateway]
 *      keys, *_file secrets resolved; file.c);
 *   2. apply [gateway] through its key table, then the DESKBRIDGE_* variables (gateway.c);
 *   3. add the quickstart accounts from TELEGRAM_*, WHATSAPP_*, VIBER_* (env.c);
 *   4. check cross-field rules (gateway.c);
 *   5. turn each feature section into its module's struct through the module's key table
 *      (util/schema.c: schedules and keyword patterns are compiled here, once per load),
 *      then hand each account section to its connector's account_new, which reads it
 *      through the connector's own key table;
 *   6. build the tenants and check them against the accounts, each other and the gateway's
 *      tokens (a token names its caller, so it is unique; tenants.c).
 * Values are never echoed for keys flagged SECRET, and account values never at all: a
 * connector's keys are all potentially secret, so its key table is quiet. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "conf/loader.h"

/* ---- pass 5: feature sections into their structs, then the accounts ---- */

static int build_accounts(struct db_cfgl *L)
{
    struct db_config *c = L->c;
    size_t n = 0;
    size_t nf = 0;
    for (size_t i = 0; i < L->n_secs; i++) {
        n += L->secs[i].platform && !L->secs[i].feature;
        nf += L->secs[i].feature != NULL;
    }
    if (nf) {
        c->sections = calloc(nf, sizeof *c->sections);
        c->features = calloc(nf, sizeof *c->features);
        if (!c->sections || !c->features) return db_cfgl_oom(L->e);
        for (size_t i = 0; i < L->n_secs; i++) {
            struct db_cfgl_sect *s = &L->secs[i];
            if (!s->feature) continue;
            struct db_conf_section *sec = &c->sections[c->n_sections++];
            *sec = (struct db_conf_section){
                .platform = s->platform, .account = s->id, .kv = s->kv, .n = s->n};
            s->kv = NULL; /* the configuration owns it now */
            struct db_config_feature *f = &c->features[c->n_sections - 1];
            f->table = s->feature;
            int rc = db_conf_obj_new(s->feature, sec, &f->obj, L->e);
            if (rc != DB_OK) return rc;
        }
    }
    if (n == 0) return DB_OK;
    c->accounts = calloc(n, sizeof *c->accounts);
    if (!c->accounts) return db_cfgl_oom(L->e);
    for (size_t i = 0; i < L->n_secs; i++) {
        struct db_cfgl_sect *s = &L->secs[i];
        if (!s->platform || s->feature) continue;
        const struct db_connector *conn = L->find(s->platform);
        if (!conn || (!L->o->skip_accounts && !conn->account_new)) {
            if (s->line > 0)
                return db_err_set(L->e, DB_ECONFIG, "%s:%d: [%s %s]: platform not available",
                                  s->file, s->line, s->platform, s->id);
            return db_err_set(L->e, DB_ECONFIG, DB_CFGL_ENV_FILE ": [%s %s]: platform not available",
                              s->platform, s->id);
        }
        struct db_account *a = &c->accounts[c->n_accounts++];
        a->conn = conn;
        a->platform = conn->name;
        a->id = s->id;
        a->sec = (struct db_conf_section){
            .platform = s->platform, .account = s->id, .kv = s->kv, .n = s->n};
        s->kv = NULL; /* the account owns it now */
        /* Platforms that can poll take webhooks instead once a webhook secret is set. */
        a->polls = conn->build_poll && conn->read_poll && !db_conf_find(&a->sec, "webhook_secret");
        if (L->o->skip_accounts) continue;
        void *state = NULL;
        int rc = conn->account_new(&a->sec, &state, L->e);
        if (rc != DB_OK) {
            if (conn->account_free) conn->account_free(state);
            return rc;
        }
        a->state = state;
    }
    return DB_OK;
}

static int load(struct db_cfgl *L, const char *file)
{
    const struct db_config_opts *o = L->o;
    int rc = db_cfgl_apply_defaults(L);
    if (rc != DB_OK) return rc;
    if (o->text || file) {
        L->file = db_cfgl_dup(L->st, file ? file : "config");
        if (!L->file) return db_cfgl_oom(L->e);
        if (file) {
            L->c->file = db_cfgl_dup(L->st, file);
            const char *slash = strrchr(file, '/');
            if (slash) L->dir = db_cfgl_ndup(L->st, file, slash == file ? 1 : (size_t)(slash - file));
            if (!L->c->file || (slash && !L->dir)) return db_cfgl_oom(L->e);
        }
        if (o->text) {
            if (o->text_len > DB_CFGL_MAX_CONFIG_BYTES)
                return db_err_set(L->e, DB_ECONFIG, "%s: file too large", L->file);
            rc = db_cfgl_parse_text(L, o->text, o->text_len);
        } else {
            char *buf = NULL;
            size_t len = 0;
            if (db_cfgl_slurp(file, DB_CFGL_MAX_CONFIG_BYTES, &buf, &len) != 0)
                return errno == ENOMEM ? db_cfgl_oom(L->e)
                                       : db_err_set(L->e, DB_ECONFIG, "%s: cannot read: %s",
                                                    L->file, db_cfgl_errstr(errno));
            rc = db_cfgl_parse_text(L, buf, len);
            free(buf);
        }
        if (rc != DB_OK) return rc;
    }
    if ((rc = db_cfgl_apply_gateway(L)) != DB_OK) return rc;
    if ((rc = db_cfgl_add_quickstarts(L)) != DB_OK) return rc;
    if ((rc = db_cfgl_check(L)) != DB_OK) return rc;
    if ((rc = build_accounts(L)) != DB_OK) return rc;
    return db_cfgl_build_tenants(L);
}

int db_config_load_opts(const char *file, char *const *env, const struct db_config_opts *o,
                        struct db_config **out, struct db_err *e)
{
    static const struct db_config_opts none = {0};
    struct db_cfgl L = {.o = o ? o : &none, .env = env, .gw = SIZE_MAX, .e = e};
    L.find = L.o->find ? L.o->find : db_connector_find;
    *out = NULL;
    int rc = DB_ENOMEM;
    L.c = calloc(1, sizeof *L.c);
    L.st = calloc(1, sizeof *L.st);
    if (!L.c || !L.st) {
        rc = db_cfgl_oom(e);
        goto fail;
    }
    L.c->storage = L.st;
    rc = load(&L, file);
    if (rc != DB_OK) goto fail;
    for (size_t i = 0; i < L.n_secs; i++) free(L.secs[i].kv);
    free(L.secs);
    free(L.tok_orig);
    free(L.gw_from_file);
    *out = L.c;
    return DB_OK;
fail:
    for (size_t i = 0; i < L.n_secs; i++) free(L.secs[i].kv);
    free(L.secs);
    free(L.tok_orig);
    free(L.gw_from_file);
    if (L.c) db_config_free(L.c); /* owns L.st once attached */
    else db_cfgl_store_free(L.st);
    return rc;
}

int db_config_load(const char *file, char *const *env,
                   const struct db_conf_table *const *features, struct db_config **out,
                   struct db_err *e)
{
    const struct db_config_opts o = {.features = features};
    return db_config_load_opts(file, env, &o, out, e);
}
