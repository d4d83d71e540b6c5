/* tenants.c - [tenant NAME] sections: the key table that checks each section alone, and
 * pass 6 of loading, which builds the tenants and checks them against the accounts, each
 * other and the gateway's tokens (a token names its caller, so it is unique). */
#include "conf/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"

#define DB_STR_(x) #x
#define DB_STR(x) DB_STR_(x)

/* Calls fn on each comma- or newline-separated entry of v (blanks around it removed) until
 * fn returns non-zero, which is returned; an empty entry is passed as "" (length 0). */
typedef int (*entry_fn)(const char *s, size_t n, void *arg);
static int each_entry(const char *v, entry_fn fn, void *arg)
{
    for (const char *p = v;;) {
        size_t len = strcspn(p, ",\n");
        const char *s = p, *end = p + len;
        while (s < end && db_cfgl_is_space(*s)) s++;
        while (end > s && db_cfgl_is_space(end[-1])) end--;
        int rc = fn(s, (size_t)(end - s), arg);
        if (rc) return rc;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

/* One entry of a tenant key, checked alone; what is wrong goes to why. */
struct entry_check {
    const char *key;
    const char *why;
};

static int tenant_entry_bad(const char *s, size_t n, void *arg)
{
    struct entry_check *ck = arg;
    if (n == 0) ck->why = "empty entry in the list";
    else if (strcmp(ck->key, "api_token") == 0 && n < DB_CFGL_MIN_API_TOKEN)
        ck->why = "a token must be at least " DB_STR(DB_CFGL_MIN_API_TOKEN) " characters";
    else if (strcmp(ck->key, "accounts") == 0) {
        const char *colon = memchr(s, ':', n);
        char id[DB_CFGL_MAX_ACCOUNT_ID + 1];
        size_t idn = colon ? n - (size_t)(colon - s) - 1 : 0;
        if (!colon || colon == s || idn == 0 || idn > DB_CFGL_MAX_ACCOUNT_ID) {
            ck->why = "want platform:account-id entries";
        } else {
            memcpy(id, colon + 1, idn);
            id[idn] = '\0';
            if (!db_cfgl_valid_id(id)) ck->why = "want platform:account-id entries";
        }
    }
    return ck->why != NULL;
}

/* The check of each key of [tenant NAME]: every entry on its own.  The message never
 * quotes an entry: it may be a token. */
static const char *entries_check(const char *key, const char *v)
{
    struct entry_check ck = {.key = key};
    return each_entry(v, tenant_entry_bad, &ck) ? ck.why : NULL;
}

static const char *accounts_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    return entries_check("accounts", v);
}

static const char *token_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    return entries_check("api_token", v);
}

/* The keys as the table sees them; the lists themselves are built by db_cfgl_build_tenants,
 * which needs every line of the repeated api_token and the accounts built before. */
struct tenant_conf {
    const char *accounts, *api_token;
};

static const struct db_conf_key tenant_keys[] = {
    {.name = "accounts", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED,
     .off = offsetof(struct tenant_conf, accounts), .check = accounts_check,
     .doc = "comma-separated `platform:account-id` entries, each a configured account"},
    {.name = "api_token", .type = DB_CONF_STR,
     .flags = DB_CONF_REQUIRED | DB_CONF_SECRET | DB_CONF_REPEATABLE,
     .off = offsetof(struct tenant_conf, api_token), .check = token_check,
     .doc = "one token of at least 16 characters per line or comma-separated entry"},
};

const struct db_conf_table db_cfgl_tenant_table = {
    .section = "tenant", .named = 1, .size = sizeof(struct tenant_conf), .keys = tenant_keys,
    .n_keys = sizeof tenant_keys / sizeof tenant_keys[0]};

int db_tenant_serves(const struct db_tenant *t, const char *platform, const char *account)
{
    if (!t) return 1;
    size_t pl = strlen(platform);
    for (size_t i = 0; i < t->n_accounts; i++) {
        const char *a = t->accounts[i];
        if (strncmp(a, platform, pl) == 0 && a[pl] == ':' && strcmp(a + pl + 1, account) == 0)
            return 1;
    }
    return 0;
}

/* Where a token was first given, for "already used by ..." */
struct tok_seen {
    const char *tok;
    const char *tenant; /* NULL: [gateway] */
    const struct db_cfgl_origin *gw;
    const struct db_conf_kv *kv;
};

/* The state of building one tenant's lists from its section. */
struct tenant_build {
    struct db_cfgl *L;
    struct db_tenant *t;
    const struct db_conf_section *sec;
    const struct db_conf_kv *kv;
    struct tok_seen *seen; /* every token so far: the gateway's, then the tenants' */
    size_t n_seen;
    int rc;
};

static int tenant_add_account(const char *s, size_t n, void *arg)
{
    struct tenant_build *b = arg;
    struct db_config *c = b->L->c;
    char *entry = db_cfgl_ndup(b->L->st, s, n);
    if (!entry) return b->rc = db_cfgl_oom(b->L->e);
    char *colon = strchr(entry, ':');
    *colon = '\0';
    int known = db_config_account(c, entry, colon + 1) != NULL;
    *colon = ':';
    if (!known)
        return b->rc = db_conf_error(b->L->e, b->sec, b->kv, "accounts",
                                     "%.100s is not a configured account", entry);
    for (size_t i = 0; i < c->n_tenants; i++)
        for (size_t j = 0; j < c->tenants[i].n_accounts; j++)
            if (strcmp(c->tenants[i].accounts[j], entry) == 0)
                return b->rc = db_conf_error(
                           b->L->e, b->sec, b->kv, "accounts", "%.100s %s [tenant %s]", entry,
                           &c->tenants[i] == b->t ? "is listed twice in" : "already belongs to",
                           c->tenants[i].name);
    b->t->accounts[b->t->n_accounts++] = entry;
    return 0;
}

static int tenant_add_token(const char *s, size_t n, void *arg)
{
    struct tenant_build *b = arg;
    char *tok = db_cfgl_ndup(b->L->st, s, n);
    if (!tok) return b->rc = db_cfgl_oom(b->L->e);
    for (size_t i = 0; i < b->n_seen; i++) {
        const struct tok_seen *p = &b->seen[i];
        if (!db_ct_streq(p->tok, tok)) continue;
        char where[128];
        if (!p->tenant && p->gw->var) snprintf(where, sizeof where, "%s", p->gw->var);
        else if (!p->tenant) snprintf(where, sizeof where, "[gateway] (line %d)", p->gw->line);
        else snprintf(where, sizeof where, "[tenant %s] (line %d)", p->tenant, p->kv->line);
        return b->rc = db_conf_error(b->L->e, b->sec, b->kv, "api_token",
                                     "the same token is already used by %s", where);
    }
    b->seen[b->n_seen++] = (struct tok_seen){.tok = tok, .tenant = b->t->name, .kv = b->kv};
    b->t->api_tokens[b->t->n_api_tokens++] = tok;
    return 0;
}

static size_t count_entries(const char *v)
{
    size_t n = 1;
    for (; *v; v++) n += *v == ',' || *v == '\n';
    return n;
}

/* Builds c->tenants from the [tenant NAME] sections (already checked one by one) and checks
 * them against each other, the accounts and the gateway's tokens. */
int db_cfgl_build_tenants(struct db_cfgl *L)
{
    struct db_config *c = L->c;
    size_t nt = 0, ntok = c->n_api_tokens;
    for (size_t i = 0; i < c->n_sections; i++) {
        const struct db_conf_section *sec = &c->sections[i];
        if (strcmp(sec->platform, "tenant") != 0) continue;
        nt++;
        for (size_t k = 0; k < sec->n; k++)
            if (strcmp(sec->kv[k].key, "api_token") == 0) ntok += count_entries(sec->kv[k].value);
    }
    if (nt == 0) return DB_OK;
    struct tenant_build b = {.L = L};
    c->tenants = calloc(nt, sizeof *c->tenants);
    b.seen = calloc(ntok, sizeof *b.seen);
    if (!c->tenants || !b.seen) {
        free(b.seen);
        return db_cfgl_oom(L->e);
    }
    for (size_t i = 0; i < c->n_api_tokens; i++)
        b.seen[b.n_seen++] = (struct tok_seen){.tok = c->api_tokens[i], .gw = &L->tok_orig[i]};
    for (size_t i = 0; i < c->n_sections && b.rc == DB_OK; i++) {
        const struct db_conf_section *sec = &c->sections[i];
        if (strcmp(sec->platform, "tenant") != 0) continue;
        struct db_tenant *t = &c->tenants[c->n_tenants++];
        t->name = sec->account;
        b.t = t;
        b.sec = sec;
        size_t na = 0, nk = 0;
        for (size_t k = 0; k < sec->n; k++) {
            size_t n = count_entries(sec->kv[k].value);
            if (strcmp(sec->kv[k].key, "accounts") == 0) na += n;
            else nk += n;
        }
        t->accounts = calloc(na, sizeof *t->accounts);
        t->api_tokens = calloc(nk, sizeof *t->api_tokens);
        if (!t->accounts || !t->api_tokens) {
            b.rc = db_cfgl_oom(L->e);
            break;
        }
        for (size_t k = 0; k < sec->n && b.rc == DB_OK; k++) {
            b.kv = &sec->kv[k];
            int accounts = strcmp(b.kv->key, "accounts") == 0;
            (void)each_entry(b.kv->value, accounts ? tenant_add_account : tenant_add_token, &b);
        }
    }
    free(b.seen);
    return b.rc;
}
