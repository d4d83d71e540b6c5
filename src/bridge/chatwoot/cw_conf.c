/* cw_conf.c - the [chatwoot NAME] section: one Chatwoot API inbox and the deskbridge
 * accounts it carries (docs/config.md, docs/chatwoot.md). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/chatwoot/chatwoot.h"
#include "bridge/chatwoot/cw_internal.h"
#include "conf/config.h"
#include "deskbridge/connector.h"

#define MIN_SECRET 16

static const char *const allowed_keys[] = {
    "url",           "account_id",    "inbox_id",    "api_access_token", "webhook_secret",
    "accounts",      "deskbridge_automation", "allow_unsigned", "max_attempts",
    "retry_base_ms", "retry_max_ms",  "timeout_ms",  "claim_idle_ms",    "concurrency",
    NULL};

static int get_long(const struct db_conf_section *sec, const char *key, long def, long min,
                    long max, long *out, struct db_err *e)
{
    const struct db_conf_kv *kv = db_conf_find(sec, key);
    *out = def;
    if (!kv) return DB_OK;
    char *end = NULL;
    long v = strtol(kv->value, &end, 10);
    if (!*kv->value || *end || v < min || v > max)
        return db_conf_error(e, sec, kv, key, "want an integer %ld-%ld, got '%.40s'", min, max,
                             kv->value);
    *out = v;
    return DB_OK;
}

static int get_int(const struct db_conf_section *sec, const char *key, int def, long min,
                   long max, int *out, struct db_err *e)
{
    long v;
    int rc = get_long(sec, key, def, min, max, &v, e);
    *out = (int)v;
    return rc;
}

static int get_bool(const struct db_conf_section *sec, const char *key, int def, int *out,
                    struct db_err *e)
{
    const struct db_conf_kv *kv = db_conf_find(sec, key);
    *out = def;
    if (!kv) return DB_OK;
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (size_t i = 0; yes[i]; i++)
        if (strcasecmp(kv->value, yes[i]) == 0) return *out = 1, DB_OK;
    for (size_t i = 0; no[i]; i++)
        if (strcasecmp(kv->value, no[i]) == 0) return *out = 0, DB_OK;
    return db_conf_error(e, sec, kv, key, "want true or false, got '%.20s'", kv->value);
}

/* Calls fn for each "platform:account" of the comma list; stops at the first non-zero. */
static int each_account(const char *list, int (*fn)(const char *item, size_t len, void *arg),
                        void *arg)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, ",");
        size_t len = n;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (len) {
            int rc = fn(p, len, arg);
            if (rc) return rc;
        }
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

struct acct_check {
    const struct db_conf_section *sec;
    const struct db_conf_kv *kv;
    struct db_err *e;
    int n;
};

static int check_item(const char *item, size_t len, void *arg)
{
    struct acct_check *c = arg;
    const char *colon = memchr(item, ':', len);
    c->n++;
    if (!colon || colon == item || colon + 1 == item + len || len > 200)
        return db_conf_error(c->e, c->sec, c->kv, "accounts",
                             "'%.*s' is not platform:account", (int)(len > 40 ? 40 : len), item);
    char platform[32];
    size_t pl = (size_t)(colon - item);
    if (pl >= sizeof platform || (memcpy(platform, item, pl), platform[pl] = '\0',
                                  !db_connector_find(platform)))
        return db_conf_error(c->e, c->sec, c->kv, "accounts", "'%.*s': no such platform",
                             (int)(pl > 31 ? 31 : pl), item);
    return 0;
}

static int check_url(const struct db_conf_section *sec, const struct db_conf_kv *kv,
                     struct db_err *e)
{
    const char *u = kv->value;
    size_t skip = strncasecmp(u, "https://", 8) == 0 ? 8 : strncasecmp(u, "http://", 7) == 0 ? 7 : 0;
    if (!skip) return db_conf_error(e, sec, kv, "url", "must start with http:// or https://");
    if (!u[skip] || u[skip] == '/' || u[skip] == ':' || u[skip] == '?')
        return db_conf_error(e, sec, kv, "url", "has no host");
    for (const unsigned char *c = (const unsigned char *)u; *c; c++)
        if (*c <= ' ' || *c == 0x7f || *c == '?' || *c == '#')
            return db_conf_error(e, sec, kv, "url",
                                 "contains a blank, a control character, '?' or '#'");
    return DB_OK;
}

int cw_parse_section(const struct db_conf_section *sec, struct cw_opts *o, struct db_err *e)
{
    memset(o, 0, sizeof *o);
    int rc = db_conf_check_keys(sec, allowed_keys, e);
    if (rc != DB_OK) return rc;
    o->name = sec->account;
    /* The name goes into message ids (cw.NAME.conversation.message) and the URL path. */
    size_t nl = strlen(o->name);
    if (!nl || nl > CW_NAME_MAX || strspn(o->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                                   "OPQRSTUVWXYZ0123456789_-") != nl)
        return db_conf_error(e, sec, NULL, "name",
                             "a [chatwoot NAME] name is 1-%d characters of A-Z a-z 0-9 _ -",
                             CW_NAME_MAX);
    if ((rc = get_long(sec, "account_id", 0, 1, 2147483647L, &o->account_id, e)) ||
        (rc = get_long(sec, "inbox_id", 0, 1, 2147483647L, &o->inbox_id, e)) ||
        (rc = get_bool(sec, "deskbridge_automation", 1, &o->automation, e)) ||
        (rc = get_bool(sec, "allow_unsigned", 0, &o->allow_unsigned, e)) ||
        (rc = get_int(sec, "max_attempts", 10, 1, 1000, &o->max_attempts, e)) ||
        (rc = get_int(sec, "retry_base_ms", 1000, 1, 3600000, &o->retry_base_ms, e)) ||
        (rc = get_int(sec, "retry_max_ms", 60000, 1, 86400000, &o->retry_max_ms, e)) ||
        (rc = get_int(sec, "timeout_ms", 10000, 100, 600000, &o->timeout_ms, e)) ||
        (rc = get_int(sec, "claim_idle_ms", 30000, 100, 86400000, &o->claim_idle_ms, e)) ||
        (rc = get_int(sec, "concurrency", 16, 1, 256, &o->concurrency, e)))
        return rc;
    if (o->retry_base_ms > o->retry_max_ms)
        return db_conf_error(e, sec, db_conf_find(sec, "retry_base_ms"), "retry_base_ms",
                             "is larger than retry_max_ms (%d)", o->retry_max_ms);
    static const char *const required[] = {"url", "account_id", "inbox_id", "api_access_token",
                                           "accounts", NULL};
    for (size_t i = 0; required[i]; i++)
        if (!db_conf_find(sec, required[i]))
            return db_conf_error(e, sec, NULL, required[i], "is required");
    const struct db_conf_kv *url = db_conf_find(sec, "url");
    if ((rc = check_url(sec, url, e)) != DB_OK) return rc;
    o->url = url->value;
    o->token = db_conf_find(sec, "api_access_token")->value;
    if (!*o->token)
        return db_conf_error(e, sec, db_conf_find(sec, "api_access_token"), "api_access_token",
                             "is empty");
    const struct db_conf_kv *secret = db_conf_find(sec, "webhook_secret");
    if (secret && strlen(secret->value) < MIN_SECRET)
        return db_conf_error(e, sec, secret, "webhook_secret", "must be at least %d characters",
                             MIN_SECRET);
    if (!secret && !o->allow_unsigned)
        return db_conf_error(e, sec, NULL, "webhook_secret",
                             "is required (the API inbox's secret; set allow_unsigned = true "
                             "only for Chatwoot before 4.13, which does not sign)");
    o->secret = secret ? secret->value : NULL;
    const struct db_conf_kv *acc = db_conf_find(sec, "accounts");
    struct acct_check c = {sec, acc, e, 0};
    if ((rc = each_account(acc->value, check_item, &c)) != 0) return rc;
    if (!c.n) return db_conf_error(e, sec, acc, "accounts", "names no account");
    o->accounts = acc->value;
    return DB_OK;
}

int db_chatwoot_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    struct cw_opts o;
    return cw_parse_section(sec, &o, e);
}

struct match {
    const char *platform, *account;
};

static int match_item(const char *item, size_t len, void *arg)
{
    const struct match *m = arg;
    size_t pl = strlen(m->platform), al = strlen(m->account);
    return len == pl + 1 + al && memcmp(item, m->platform, pl) == 0 && item[pl] == ':' &&
           memcmp(item + pl + 1, m->account, al) == 0;
}

int cw_carries(const struct cw_opts *o, const char *platform, const char *account)
{
    if (!platform || !account) return 0;
    struct match m = {platform, account};
    return each_account(o->accounts, match_item, &m) == 1;
}

int cw_find(const struct db_config *cfg, const char *name, struct cw_opts *o)
{
    const struct db_conf_section *sec = db_config_section(cfg, CW_SECTION, name);
    struct db_err e = {0};
    return sec && cw_parse_section(sec, o, &e) == DB_OK;
}

int db_chatwoot_owns_automation(const struct db_config *cfg, const char *platform,
                                const char *account)
{
    for (size_t i = 0; cfg && i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, CW_SECTION) != 0) continue;
        struct cw_opts o;
        struct db_err e = {0};
        if (cw_parse_section(&cfg->sections[i], &o, &e) == DB_OK && !o.automation &&
            cw_carries(&o, platform, account))
            return 1;
    }
    return 0;
}
