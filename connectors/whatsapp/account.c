/* account.c - a WhatsApp account from its configuration section: Graph API token, app
 * secrets (current and previous), verify token, phone number id and API base, read through
 * the section's key table (util/schema.h) and copied into the account, which owns them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "whatsapp_internal.h"
#include "util/schema.h"

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

/* The section as the key table reads it; every string is borrowed from the section. */
struct wa_conf {
    const char *access_token, *app_secret, *app_secret_previous, *verify_token;
    const char *phone_number_id, *api_base, *business_account_id;
};

/* Values end up in HTTP headers and URLs, where a control character is invalid or, as
 * CR/LF, an injection. */
static const char *no_control(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    return has_control_chars(v) ? "contains control characters" : NULL;
}

/* Both ids are URL path segments; the number id is also the routing check of every change. */
static int graph_id_ok(const char *v)
{
    return all_digits(v) && strlen(v) <= 32;
}

static const char *number_id_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    return graph_id_ok(v) ? NULL : "must be the digits of a phone number id";
}

static const char *waba_id_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    /* Empty counts as unset, so an empty variable can switch a file's value off. */
    return !*v || graph_id_ok(v) ? NULL : "must be the digits of a WhatsApp Business Account id";
}

static int wa_conf_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct wa_conf *c = obj;
    if (c->app_secret_previous && !*c->app_secret_previous) c->app_secret_previous = NULL;
    if (c->business_account_id && !*c->business_account_id) c->business_account_id = NULL;
    if (c->phone_number_id) return DB_OK;
    /* Without the key the account id is the number id, so it must be one. */
    if (!sec->account || !graph_id_ok(sec->account))
        return db_conf_error(e, sec, NULL, "phone_number_id",
                             "is required when the account id is not a phone number id");
    c->phone_number_id = sec->account;
    return DB_OK;
}

static const struct db_conf_key wa_keys[] = {
    {.name = "access_token", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = offsetof(struct wa_conf, access_token), .check = no_control,
     .doc = "the Graph API token (system user), sent as `Authorization: Bearer ...`"},
    {.name = "app_secret", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = offsetof(struct wa_conf, app_secret), .check = no_control,
     .doc = "the app secret that signs webhook bodies"},
    {.name = "app_secret_previous", .type = DB_CONF_STR,
     .flags = DB_CONF_SECRET | DB_CONF_EMPTY, .off = offsetof(struct wa_conf, app_secret_previous),
     .check = no_control,
     .doc = "also accepted for signatures while the app secret is being rotated; empty: none"},
    {.name = "verify_token", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = offsetof(struct wa_conf, verify_token), .check = no_control,
     .doc = "the answer to Meta's GET subscription handshake"},
    {.name = "phone_number_id", .type = DB_CONF_STR,
     .off = offsetof(struct wa_conf, phone_number_id), .check = number_id_check,
     .doc = "digits; sends go out from this number. Default: the account id, which must then "
            "be digits"},
    {.name = "api_base", .type = DB_CONF_URL, .def = WA_API_BASE_DEFAULT,
     .off = offsetof(struct wa_conf, api_base),
     .doc = "the Graph API base with its version; a trailing `/` is dropped"},
    {.name = "business_account_id", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY,
     .off = offsetof(struct wa_conf, business_account_id), .check = waba_id_check,
     .doc = "digits: the WhatsApp Business Account whose message templates are listed and "
            "checked; empty: none"},
};

const struct db_conf_table db_wa_account_table = {
    .section = "whatsapp",
    .named = 1,
    .size = sizeof(struct wa_conf),
    .keys = wa_keys,
    .n_keys = sizeof wa_keys / sizeof wa_keys[0],
    .finish = wa_conf_finish,
    .quiet = 1,
};

/* A malloc'd copy of s (NULL stays NULL); 0 when out of memory. */
static int copy(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

int db_wa_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
{
    void *obj = NULL;
    *acct = NULL;
    int rc = db_conf_obj_new(&db_wa_account_table, sec, &obj, e);
    if (rc != DB_OK) return rc;
    const struct wa_conf *c = obj;
    struct wa_account *a = calloc(1, sizeof *a);
    if (!a || !copy(sec->account ? sec->account : "", &a->account) ||
        !copy(c->access_token, &a->access_token) || !copy(c->app_secret, &a->app_secret) ||
        !copy(c->app_secret_previous, &a->app_secret_previous) ||
        !copy(c->verify_token, &a->verify_token) ||
        !copy(c->phone_number_id, &a->phone_number_id) || !copy(c->api_base, &a->api_base) ||
        !copy(c->business_account_id, &a->business_account_id))
        goto oom;
    for (size_t n = strlen(a->api_base); n > 0 && a->api_base[n - 1] == '/'; n--)
        a->api_base[n - 1] = '\0';
    size_t n = strlen(a->access_token) + sizeof "Bearer ";
    if (!(a->bearer = malloc(n))) goto oom;
    snprintf(a->bearer, n, "Bearer %s", a->access_token);
    db_conf_obj_free(&db_wa_account_table, obj);
    *acct = a;
    return DB_OK;
oom:
    db_conf_obj_free(&db_wa_account_table, obj);
    db_wa_account_free(a);
    return db_err_set(e, DB_ENOMEM, "out of memory");
}
