/* account.c - a Telegram account from its configuration section: the token, the webhook
 * secrets (current and previous, for rotation) and the API base, read through the section's
 * key table (util/schema.h) and copied into the account, which owns them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/crypto.h"
#include "util/parse.h"
#include "util/schema.h"

static void wipe_free(char *s)
{
    if (!s) return;
    db_wipe_str(s);
    free(s);
}

void db_tg_account_free(void *p)
{
    struct tg_acct *a = p;
    if (!a) return;
    free(a->account);
    wipe_free(a->token);
    wipe_free(a->secret);
    wipe_free(a->secret_prev);
    free(a->api_base);
    free(a);
}

/* The token is pasted into URL paths, so besides the "<digits>:" shape it may only hold
 * characters that need no escaping there (real tokens are base64url). */
static int token_ok(const char *t)
{
    size_t i = 0;
    while (t[i] >= '0' && t[i] <= '9') i++;
    if (i == 0 || t[i] != ':' || t[i + 1] == '\0') return 0;
    for (i++; t[i]; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '~'))
            return 0;
    }
    return 1;
}

/* Same rule Telegram's setWebhook applies to secret_token: 1-256 of A-Za-z0-9_- . */
static int secret_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TG_SECRET_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The section as the key table reads it; every string is borrowed from the section. */
struct tg_conf {
    const char *token, *secret, *secret_prev, *api_base;
};

static const char *token_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    return token_ok(v) ? NULL : "must look like <bot id digits>:<secret> (value not shown)";
}

static const char *secret_check(const char *v, char *buf, size_t n)
{
    if (secret_ok(v)) return NULL;
    snprintf(buf, n, "must be 1-%d characters of A-Z a-z 0-9 _ -", TG_SECRET_MAX);
    return buf;
}

static const char *api_base_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    /* The bot token is appended to it as a path: no query or fragment. */
    return strpbrk(v, "?#") ? "must not hold a query (?) or fragment (#)" : NULL;
}

static int tg_conf_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    const struct tg_conf *c = obj;
    if (c->secret_prev && !c->secret)
        return db_conf_error(e, sec, db_conf_find(sec, "webhook_secret_previous"),
                             "webhook_secret_previous", "only makes sense next to webhook_secret");
    return DB_OK;
}

static const struct db_conf_key tg_keys[] = {
    {.name = "token", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = offsetof(struct tg_conf, token), .check = token_check,
     .doc = "the bot token from @BotFather, `<bot id digits>:<secret>`, the secret part of "
            "`A-Z a-z 0-9 _ - . ~` (it goes into URL paths)"},
    {.name = "webhook_secret", .type = DB_CONF_STR, .flags = DB_CONF_SECRET,
     .off = offsetof(struct tg_conf, secret), .check = secret_check,
     .doc = "1-256 of `A-Z a-z 0-9 _ -`, the secret Telegram sends with every webhook; "
            "without it the account long-polls"},
    {.name = "webhook_secret_previous", .type = DB_CONF_STR, .flags = DB_CONF_SECRET,
     .off = offsetof(struct tg_conf, secret_prev), .check = secret_check,
     .doc = "the secret before a rotation, accepted too while it lasts; only next to "
            "`webhook_secret`"},
    {.name = "api_base", .type = DB_CONF_URL, .def = TG_DEFAULT_API_BASE,
     .off = offsetof(struct tg_conf, api_base), .check = api_base_check,
     .doc = "the Bot API server, without query or fragment; a trailing `/` is dropped"},
};

const struct db_conf_table db_tg_account_table = {
    .section = "telegram",
    .named = 1,
    .size = sizeof(struct tg_conf),
    .keys = tg_keys,
    .n_keys = sizeof tg_keys / sizeof tg_keys[0],
    .finish = tg_conf_finish,
    .quiet = 1,
};

int db_tg_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
{
    void *obj = NULL;
    *acct = NULL;
    int rc = db_conf_obj_new(&db_tg_account_table, sec, &obj, e);
    if (rc != DB_OK) return rc;
    const struct tg_conf *c = obj;
    struct tg_acct *a = calloc(1, sizeof *a);
    if (!a) goto fail;
    a->account = strdup(sec->account);
    a->token = strdup(c->token);
    a->api_base = strdup(c->api_base);
    if (!a->account || !a->token || !a->api_base) goto fail;
    if (c->secret && !(a->secret = strdup(c->secret))) goto fail;
    if (c->secret_prev && !(a->secret_prev = strdup(c->secret_prev))) goto fail;
    db_conf_obj_free(&db_tg_account_table, obj);
    /* URLs are built as api_base + "/bot...", so a trailing slash would double up. */
    for (size_t n = strlen(a->api_base); n > 0 && a->api_base[n - 1] == '/'; n--)
        a->api_base[n - 1] = '\0';
    if (db_url_check(a->api_base, DB_URL_HTTP, NULL) != 0) {
        db_tg_account_free(a);
        return db_conf_error(e, sec, db_conf_find(sec, "api_base"), "api_base", "has no host");
    }
    *acct = a;
    return DB_OK;
fail:
    db_conf_obj_free(&db_tg_account_table, obj);
    db_tg_account_free(a);
    return db_err_set(e, DB_ENOMEM, "out of memory building telegram account");
}
