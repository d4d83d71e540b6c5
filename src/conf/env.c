/* env.c - the environment: the lookup of NAME and NAME_FILE that every variable goes
 * through, and pass 3 of loading, the quickstart accounts (one per platform) and
 * [schedule default] made from TELEGRAM_*, WHATSAPP_*, VIBER_* and DESKBRIDGE_* schedule
 * variables.  The [gateway] overrides are applied by gateway.c through the same lookup. */
#include "conf/loader.h"

#include <stdio.h>
#include <string.h>

/* ---- quickstart accounts from the environment ---- */

enum id_mode {
    ID_TOKEN_PREFIX, /* the digits before ':' of the id variable (Telegram bot token) */
    ID_REQUIRED,     /* the id variable itself, which must be set */
    ID_DEFAULT,      /* the id variable itself, else id_default */
    ID_FIXED,        /* always id_default (feature sections such as [schedule default]) */
};

struct qs_var {
    const char *var;
    const char *key; /* section key, NULL when the variable only names the account */
};

struct quickstart {
    const char *platform;
    const struct qs_var *vars; /* terminated by {NULL, NULL} */
    size_t id_var;             /* index in vars of the variable the id comes from */
    enum id_mode id_mode;
    const char *id_default;
};

static const struct qs_var tg_vars[] = {
    {"TELEGRAM_BOT_TOKEN", "token"},
    {"TELEGRAM_WEBHOOK_SECRET", "webhook_secret"},
    {"TELEGRAM_API_BASE", "api_base"},
    {NULL, NULL},
};
static const struct qs_var wa_vars[] = {
    {"WHATSAPP_ACCESS_TOKEN", "access_token"},
    {"WHATSAPP_APP_SECRET", "app_secret"},
    {"WHATSAPP_VERIFY_TOKEN", "verify_token"},
    {"WHATSAPP_PHONE_NUMBER_ID", "phone_number_id"},
    {"WHATSAPP_API_BASE", "api_base"},
    {"WHATSAPP_BUSINESS_ACCOUNT_ID", "business_account_id"},
    {NULL, NULL},
};
static const struct qs_var vb_vars[] = {
    {"VIBER_AUTH_TOKEN", "auth_token"},
    {"VIBER_ACCOUNT", NULL},
    {"VIBER_SENDER_NAME", "sender_name"},
    {"VIBER_SENDER_AVATAR", "sender_avatar"},
    {"VIBER_API_BASE", "api_base"},
    {NULL, NULL},
};

static const struct qs_var sched_vars[] = {
    {"DESKBRIDGE_TIMEZONE", "timezone"},
    {"DESKBRIDGE_BUSINESS_HOURS", "hours"},
    {"DESKBRIDGE_HOLIDAYS", "holidays"},
    {"DESKBRIDGE_AWAY_MESSAGE", "away_message"},
    {NULL, NULL},
};

static const struct quickstart quickstarts[] = {
    {.platform = "schedule", .vars = sched_vars, .id_var = 0, .id_mode = ID_FIXED,
     .id_default = "default"},
    {.platform = "telegram", .vars = tg_vars, .id_var = 0, .id_mode = ID_TOKEN_PREFIX},
    {.platform = "whatsapp", .vars = wa_vars, .id_var = 3, .id_mode = ID_REQUIRED},
    {.platform = "viber", .vars = vb_vars, .id_var = 1, .id_mode = ID_DEFAULT,
     .id_default = "viber"},
};

#define N_QUICKSTARTS (sizeof quickstarts / sizeof quickstarts[0])

const char *db_config_env_name(size_t i)
{
    const struct db_conf_table *g = &db_cfgl_gateway_table;
    for (size_t k = 0; k < g->n_keys; k++) {
        if (!g->keys[k].env) continue;
        if (i == 0) return g->keys[k].env;
        i--;
    }
    for (size_t q = 0; q < N_QUICKSTARTS; q++)
        for (const struct qs_var *v = quickstarts[q].vars; v->var; v++) {
            if (i == 0) return v->var;
            i--;
        }
    return NULL;
}

/* ---- the variables ---- */

/* ---- pass 3: quickstart accounts ---- */

static int add_quickstart(struct db_cfgl *L, const struct quickstart *q)
{
    const char *val[8] = {0}, *var[8] = {0};
    int any = 0;
    for (size_t i = 0; q->vars[i].var; i++) {
        int rc = db_cfgl_env_lookup(L, q->vars[i].var, &val[i], &var[i]);
        if (rc < 0) return rc;
        any |= rc;
    }
    if (!any) return DB_OK;
    const char *idvar = q->vars[q->id_var].var;
    struct db_cfgl_origin o = {.var = var[q->id_var] ? var[q->id_var] : idvar};
    const char *id = val[q->id_var];
    char idbuf[DB_CFGL_MAX_ACCOUNT_ID + 1];
    if (q->id_mode == ID_FIXED) {
        id = q->id_default;
    } else if (!id && q->id_mode == ID_DEFAULT) {
        id = q->id_default;
    } else if (!id) {
        return db_cfgl_oerr(L->e, &o, idvar, "required when any %.*s_* variable is set",
                    (int)strcspn(idvar, "_"), idvar);
    } else if (q->id_mode == ID_TOKEN_PREFIX) {
        /* Telegram bot tokens are "<bot id>:<secret>"; the id is public, the rest is not. */
        size_t digits = strspn(id, "0123456789");
        if (digits == 0 || id[digits] != ':' || digits > DB_CFGL_MAX_ACCOUNT_ID)
            return db_cfgl_oerr(L->e, &o, idvar, "no bot id (digits before ':') in the token");
        memcpy(idbuf, id, digits);
        idbuf[digits] = '\0';
        id = idbuf;
    }
    if (!db_cfgl_valid_id(id))
        return db_cfgl_oerr(L->e, &o, idvar, "account id must be 1 to 64 of A-Z a-z 0-9 _ . -");
    const struct db_conf_table *feat = db_cfgl_feature(L, q->platform);
    if (!feat && !L->find(q->platform))
        return db_cfgl_oerr(L->e, &o, idvar, "platform not available");
    struct db_cfgl_sect *s = db_cfgl_sect_find(L, q->platform, id);
    if (!s) {
        char *p = db_cfgl_dup(L->st, q->platform), *sid = db_cfgl_dup(L->st, id);
        if (!p || !sid || !(s = db_cfgl_sect_add(L, p, sid, DB_CFGL_ENV_FILE, 0))) return db_cfgl_oom(L->e);
        s->feature = feat;
    }
    for (size_t i = 0; q->vars[i].var; i++) {
        if (!val[i] || !q->vars[i].key) continue;
        int rc = db_cfgl_kv_add(L, s, q->vars[i].key, val[i], DB_CFGL_ENV_FILE, 0);
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}

int db_cfgl_add_quickstarts(struct db_cfgl *L)
{
    for (size_t i = 0; i < N_QUICKSTARTS; i++) {
        int rc = add_quickstart(L, &quickstarts[i]);
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}
