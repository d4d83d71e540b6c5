/* cw_conf.c - the [chatwoot NAME] section: its key table, the checks across its keys, and
 * the look-ups the bridge and the wiring make (docs/config.md, docs/chatwoot.md). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "chatwoot/chatwoot.h"
#include "chatwoot/cw_internal.h"
#include "conf/config.h"
#include "util/schema.h"
#include "deskbridge/connector.h"

#define MIN_SECRET 16

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
    if (pl >= sizeof platform) pl = sizeof platform - 1;
    memcpy(platform, item, pl);
    platform[pl] = '\0';
    if (!db_connector_find(platform))
        return db_conf_error(c->e, c->sec, c->kv, "accounts", "'%.*s': no such platform",
                             (int)pl, item);
    return 0;
}

static int chatwoot_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_chatwoot_conf *o = obj;
    o->name = sec->account;
    /* The name goes into message ids (cw.NAME.conversation.message) and the URL path. */
    size_t nl = o->name ? strlen(o->name) : 0;
    if (!nl || nl > CW_NAME_MAX ||
        strspn(o->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != nl)
        return db_conf_error(e, sec, NULL, "name",
                             "a [chatwoot NAME] name is 1-%d characters of A-Z a-z 0-9 _ -",
                             CW_NAME_MAX);
    if (o->retry_base_ms > o->retry_max_ms)
        return db_conf_error(e, sec, db_conf_find(sec, "retry_base_ms"), "retry_base_ms",
                             "is larger than retry_max_ms (%d)", o->retry_max_ms);
    /* Chatwoot joins "/api/v1/..." to the URL: a query or fragment would swallow it. */
    if (strpbrk(o->url, "?#"))
        return db_conf_error(e, sec, db_conf_find(sec, "url"), "url",
                             "must not hold '?' or '#'");
    if (o->secret && strlen(o->secret) < MIN_SECRET)
        return db_conf_error(e, sec, db_conf_find(sec, "webhook_secret"), "webhook_secret",
                             "must be at least %d characters", MIN_SECRET);
    if (!o->secret && !o->allow_unsigned)
        return db_conf_error(e, sec, NULL, "webhook_secret",
                             "is required (the API inbox's secret; set allow_unsigned = true "
                             "only for Chatwoot before 4.13, which does not sign)");
    struct acct_check c = {sec, db_conf_find(sec, "accounts"), e, 0};
    int rc = each_account(o->accounts, check_item, &c);
    if (rc) return rc;
    if (!c.n) return db_conf_error(e, sec, c.kv, "accounts", "names no account");
    return DB_OK;
}

#define COFF(f) offsetof(struct db_chatwoot_conf, f)
static const struct db_conf_key chatwoot_keys[] = {
    {.name = "url", .type = DB_CONF_URL, .flags = DB_CONF_REQUIRED, .off = COFF(url),
     .doc = "Chatwoot's address as its users open it, e.g. https://chatwoot.example.com"},
    {.name = "account_id", .type = DB_CONF_LONG, .flags = DB_CONF_REQUIRED, .min = 1,
     .max = 2147483647L, .off = COFF(account_id),
     .doc = "the Chatwoot account (`/app/accounts/<id>/` in its URLs)"},
    {.name = "inbox_id", .type = DB_CONF_LONG, .flags = DB_CONF_REQUIRED, .min = 1,
     .max = 2147483647L, .off = COFF(inbox_id),
     .doc = "the API inbox the carried accounts' conversations go to"},
    {.name = "api_access_token", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = COFF(token),
     .doc = "an agent's or agent bot's access token with access to the inbox"},
    {.name = "webhook_secret", .type = DB_CONF_STR, .flags = DB_CONF_SECRET,
     .off = COFF(secret),
     .doc = "the API inbox's secret that signs its callbacks (16+ characters; required unless allow_unsigned)"},
    {.name = "accounts", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED, .off = COFF(accounts),
     .doc = "comma-separated `platform:account-id` entries this inbox carries"},
    {.name = "deskbridge_automation", .type = DB_CONF_BOOL, .def = "true",
     .off = COFF(automation),
     .doc = "`false`: no deskbridge assignment or automatic answers for the carried accounts (Chatwoot does both)"},
    {.name = "allow_unsigned", .type = DB_CONF_BOOL, .def = "false", .off = COFF(allow_unsigned),
     .doc = "`true`: accept callbacks without a signature (Chatwoot before 4.13)"},
    {.name = "max_attempts", .type = DB_CONF_INT, .min = 1, .max = 1000, .def = "10",
     .off = COFF(max_attempts), .doc = "tries of one Chatwoot request before the entry goes to `P:dead`"},
    {.name = "retry_base_ms", .type = DB_CONF_INT, .min = 1, .max = 3600000, .def = "1000",
     .off = COFF(retry_base_ms), .doc = "first retry delay; doubles per attempt"},
    {.name = "retry_max_ms", .type = DB_CONF_INT, .min = 1, .max = 86400000, .def = "60000",
     .off = COFF(retry_max_ms), .doc = "cap of the retry delay"},
    {.name = "timeout_ms", .type = DB_CONF_INT, .min = 100, .max = 600000, .def = "10000",
     .off = COFF(timeout_ms), .doc = "timeout of one request to Chatwoot, connecting included"},
    {.name = "claim_idle_ms", .type = DB_CONF_INT, .min = 100, .max = 86400000,
     .def = "30000", .off = COFF(claim_idle_ms),
     .doc = "entries held this long by a dead process are taken over"},
    {.name = "concurrency", .type = DB_CONF_INT, .min = 1, .max = 256, .def = "16",
     .off = COFF(concurrency), .doc = "Chatwoot requests in flight at once (different conversations)"},
};

const struct db_conf_table db_chatwoot_conf_table = {
    .section = CW_SECTION, .named = 1, .size = sizeof(struct db_chatwoot_conf),
    .keys = chatwoot_keys, .n_keys = sizeof chatwoot_keys / sizeof chatwoot_keys[0],
    .finish = chatwoot_finish};

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

int cw_carries(const struct db_chatwoot_conf *o, const char *platform, const char *account)
{
    if (!platform || !account) return 0;
    struct match m = {platform, account};
    return each_account(o->accounts, match_item, &m) == 1;
}

const struct db_chatwoot_conf *cw_find(const struct db_config *cfg, const char *name)
{
    return db_config_obj(cfg, CW_SECTION, name);
}

int db_chatwoot_owns_automation(const struct db_config *cfg, const char *platform,
                                const char *account)
{
    for (size_t i = 0; cfg && i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, CW_SECTION) != 0) continue;
        const struct db_chatwoot_conf *o = cfg->features[i].obj;
        if (o && !o->automation && cw_carries(o, platform, account)) return 1;
    }
    return 0;
}
