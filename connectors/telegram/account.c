/* account.c - a Telegram account from its configuration section: the token, the webhook
 * secrets (current and previous, for rotation) and the API base, each checked before use. */
#include <stdlib.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/crypto.h"
#include "util/parse.h"

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

static int api_base_ok(const char *b)
{
    /* The bot token is appended to it as a path: no query or fragment. */
    return db_url_check(b, DB_URL_HTTP, NULL) == 0 && !strpbrk(b, "?#");
}

int db_tg_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
{
    static const char *const allowed[] = {"token", "webhook_secret", "webhook_secret_previous",
                                          "api_base", NULL};
    *acct = NULL;
    int rc = db_conf_check_keys(sec, allowed, e);
    if (rc != DB_OK) return rc;

    const struct db_conf_kv *tok = db_conf_find(sec, "token");
    const struct db_conf_kv *sec1 = db_conf_find(sec, "webhook_secret");
    const struct db_conf_kv *sec0 = db_conf_find(sec, "webhook_secret_previous");
    const struct db_conf_kv *base = db_conf_find(sec, "api_base");
    if (!tok) return db_conf_error(e, sec, NULL, "token", "required");
    if (!token_ok(tok->value))
        return db_conf_error(e, sec, tok, "token",
                             "must look like <bot id digits>:<secret> (value not shown)");
    if (sec1 && !secret_ok(sec1->value))
        return db_conf_error(e, sec, sec1, "webhook_secret",
                             "must be 1-%d characters of A-Z a-z 0-9 _ -", TG_SECRET_MAX);
    if (sec0 && !secret_ok(sec0->value))
        return db_conf_error(e, sec, sec0, "webhook_secret_previous",
                             "must be 1-%d characters of A-Z a-z 0-9 _ -", TG_SECRET_MAX);
    if (sec0 && !sec1)
        return db_conf_error(e, sec, sec0, "webhook_secret_previous",
                             "only makes sense next to webhook_secret");
    if (base && !api_base_ok(base->value))
        return db_conf_error(e, sec, base, "api_base",
                             "must be an http:// or https:// URL without query or spaces");

    struct tg_acct *a = calloc(1, sizeof *a);
    if (!a) goto fail;
    a->account = strdup(sec->account);
    a->token = strdup(tok->value);
    a->api_base = strdup(base ? base->value : TG_DEFAULT_API_BASE);
    if (!a->account || !a->token || !a->api_base) goto fail;
    if (sec1 && !(a->secret = strdup(sec1->value))) goto fail;
    if (sec0 && !(a->secret_prev = strdup(sec0->value))) goto fail;
    /* URLs are built as api_base + "/bot...", so a trailing slash would double up. */
    for (size_t n = strlen(a->api_base); n > 0 && a->api_base[n - 1] == '/'; n--)
        a->api_base[n - 1] = '\0';
    if (!api_base_ok(a->api_base)) {
        db_tg_account_free(a);
        return db_conf_error(e, sec, base, "api_base", "has no host");
    }
    *acct = a;
    return DB_OK;
fail:
    db_tg_account_free(a);
    return db_err_set(e, DB_ENOMEM, "out of memory building telegram account");
}
