/* account.c - a Viber account from its configuration section: auth token, sender name and
 * avatar, API base and the optional welcome text, each checked before use. */
#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "viber_internal.h"
#include "util/crypto.h"
#include "util/parse.h"

void db_vb_account_free(void *p)
{
    struct viber_acct *a = p;
    if (!a) return;
    free(a->account);
    if (a->auth_token) {
        /* The token is the callback-signing key too; do not leave it in freed heap. */
        db_wipe_str(a->auth_token);
        free(a->auth_token);
    }
    free(a->sender_name);
    free(a->sender_avatar);
    free(a->api_base);
    free(a->welcome_text);
    free(a);
}

/* Also refuses control characters and bytes above 0x7e: these values end up in a request
 * line or header, where they would be invalid or, with CR/LF, an injection. */
static int is_http_url(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 0;
    return db_url_check(s, DB_URL_HTTP, NULL) == 0;
}

static int is_token(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 0;
    return *s != '\0';
}

int db_vb_account_new(const struct db_conf_section *sec, void **out, struct db_err *e)
{
    static const char *const allowed[] = {"auth_token", "sender_name", "sender_avatar",
                                          "api_base", "welcome_text", NULL};
    struct viber_acct *a = NULL;
    int rc;
    *out = NULL;
    if ((rc = db_conf_check_keys(sec, allowed, e)) != DB_OK) return rc;

    a = calloc(1, sizeof *a);
    if (!a) return db_err_set(e, DB_ENOMEM, "out of memory");
    rc = DB_ENOMEM;
    if (!(a->account = strdup(sec->account))) goto fail;

    const struct db_conf_kv *kv = db_conf_find(sec, "auth_token");
    if (!kv || !kv->value[0]) {
        rc = db_conf_error(e, sec, kv, "auth_token", "required (the bot's token from the "
                                                      "Viber admin panel)");
        goto fail;
    }
    if (!is_token(kv->value)) {
        /* The value itself is never echoed: it is a secret. */
        rc = db_conf_error(e, sec, kv, "auth_token", "must be printable ASCII without spaces");
        goto fail;
    }
    rc = DB_ENOMEM;
    if (!(a->auth_token = strdup(kv->value))) goto fail;

    kv = db_conf_find(sec, "sender_name");
    const char *name = kv ? kv->value : sec->account;
    size_t nlen = strlen(name);
    if (!nlen || !db_utf8_valid(name, nlen)) {
        rc = db_conf_error(e, sec, kv, "sender_name", "must be non-empty UTF-8");
        goto fail;
    }
    if (db_utf8_chars(name, nlen) > SENDER_NAME_MAX_CHARS) {
        /* Counted in characters, as Viber counts them; without the key the account id is the
         * name, so say so rather than blaming a key the user never wrote. */
        rc = db_conf_error(e, sec, kv, "sender_name", "longer than %d characters%s",
                           SENDER_NAME_MAX_CHARS,
                           kv ? "" : " (defaults to the account id; set it explicitly)");
        goto fail;
    }
    rc = DB_ENOMEM;
    if (!(a->sender_name = strdup(name))) goto fail;

    kv = db_conf_find(sec, "sender_avatar");
    if (kv && kv->value[0]) {
        if (!is_http_url(kv->value)) {
            rc = db_conf_error(e, sec, kv, "sender_avatar", "must be an http(s) URL");
            goto fail;
        }
        rc = DB_ENOMEM;
        if (!(a->sender_avatar = strdup(kv->value))) goto fail;
    }

    kv = db_conf_find(sec, "api_base");
    const char *base = kv ? kv->value : DEFAULT_API_BASE;
    if (!is_http_url(base)) {
        rc = db_conf_error(e, sec, kv, "api_base", "must be an http(s) URL");
        goto fail;
    }
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;
    rc = DB_ENOMEM;
    if (!(a->api_base = strndup(base, blen))) goto fail;

    kv = db_conf_find(sec, "welcome_text");
    /* An empty value switches the welcome off, so an environment override can disable one
     * set in the file. */
    if (kv && kv->value[0]) {
        size_t wlen = strlen(kv->value);
        if (!db_utf8_valid(kv->value, wlen) || db_utf8_chars(kv->value, wlen) > TEXT_MAX_CHARS) {
            rc = db_conf_error(e, sec, kv, "welcome_text", "must be UTF-8 of at most %d characters",
                               TEXT_MAX_CHARS);
            goto fail;
        }
        rc = DB_ENOMEM;
        if (!(a->welcome_text = strdup(kv->value))) goto fail;
    }

    *out = a;
    return DB_OK;
fail:
    db_vb_account_free(a);
    if (rc == DB_ENOMEM) db_err_set(e, DB_ENOMEM, "out of memory");
    return rc;
}
