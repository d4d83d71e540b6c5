/* account.c - a WhatsApp account from its configuration section: Graph API token, app
 * secrets (current and previous), verify token, phone number id and API base. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "whatsapp_internal.h"
#include "util/parse.h"

void db_wa_account_free(void *p)
{
    struct wa_account *a = p;
    if (!a) return;
    free(a->account);
    free_secret(a->access_token);
    free_secret(a->app_secret);
    free_secret(a->app_secret_previous);
    free_secret(a->verify_token);
    free(a->phone_number_id);
    free(a->business_account_id);
    free(a->api_base);
    free_secret(a->bearer);
    free(a);
}

/* Copies key's value (or def) into *out (malloc'd, owned by the account).  Control
 * characters are refused everywhere because values end up in HTTP headers and URLs. */
static int conf_copy(const struct db_conf_section *sec, const char *key, int required,
                     const char *def, char **out, struct db_err *e)
{
    const struct db_conf_kv *kv = db_conf_find(sec, key);
    const char *v = kv ? kv->value : def;
    *out = NULL;
    if (!v || !*v) {
        if (!required) return DB_OK;
        return db_conf_error(e, sec, kv, key, kv ? "must not be empty" : "is required");
    }
    if (has_control_chars(v)) return db_conf_error(e, sec, kv, key, "contains control characters");
    *out = strdup(v);
    if (!*out) return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

int db_wa_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
{
    static const char *const keys[] = {"access_token", "app_secret", "app_secret_previous",
                                       "verify_token", "phone_number_id", "api_base",
                                       "business_account_id", NULL};
    struct wa_account *a = NULL;
    int rc;
    *acct = NULL;
    if ((rc = db_conf_check_keys(sec, keys, e)) != DB_OK) return rc;
    a = calloc(1, sizeof *a);
    if (!a) return db_err_set(e, DB_ENOMEM, "out of memory");
    a->account = strdup(sec->account ? sec->account : "");
    if (!a->account) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = conf_copy(sec, "access_token", 1, NULL, &a->access_token, e)) != DB_OK ||
        (rc = conf_copy(sec, "app_secret", 1, NULL, &a->app_secret, e)) != DB_OK ||
        (rc = conf_copy(sec, "app_secret_previous", 0, NULL, &a->app_secret_previous, e)) !=
            DB_OK ||
        (rc = conf_copy(sec, "verify_token", 1, NULL, &a->verify_token, e)) != DB_OK ||
        (rc = conf_copy(sec, "phone_number_id", 1, sec->account, &a->phone_number_id, e)) !=
            DB_OK ||
        (rc = conf_copy(sec, "api_base", 1, WA_API_BASE_DEFAULT, &a->api_base, e)) != DB_OK ||
        (rc = conf_copy(sec, "business_account_id", 0, NULL, &a->business_account_id, e)) !=
            DB_OK)
        goto fail;
    /* The business account id is a URL path segment of the template list. */
    if (a->business_account_id &&
        (!all_digits(a->business_account_id) || strlen(a->business_account_id) > 32)) {
        rc = db_conf_error(e, sec, db_conf_find(sec, "business_account_id"), "business_account_id",
                           "must be the digits of a WhatsApp Business Account id");
        goto fail;
    }

    /* The number id is a URL path segment and the routing check of every change. */
    if (!all_digits(a->phone_number_id) || strlen(a->phone_number_id) > 32) {
        const struct db_conf_kv *kv = db_conf_find(sec, "phone_number_id");
        rc = db_conf_error(e, sec, kv, "phone_number_id",
                           kv ? "must be the digits of a phone number id"
                              : "is required when the account id is not a phone number id");
        goto fail;
    }
    const char *why = NULL;
    if (db_url_check(a->api_base, DB_URL_HTTP, &why) != 0) {
        rc = db_conf_error(e, sec, db_conf_find(sec, "api_base"), "api_base", "%s", why);
        goto fail;
    }
    for (size_t n = strlen(a->api_base); n > 0 && a->api_base[n - 1] == '/'; n--)
        a->api_base[n - 1] = '\0';
    size_t n = strlen(a->access_token) + sizeof "Bearer ";
    a->bearer = malloc(n);
    if (!a->bearer) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(a->bearer, n, "Bearer %s", a->access_token);
    *acct = a;
    return DB_OK;
fail:
    db_wa_account_free(a);
    return rc;
}
