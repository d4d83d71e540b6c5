/* account.c - a Viber account from its configuration section: auth token, sender name and
 * avatar, API base and the optional welcome text, read through the section's key table
 * (util/schema.h) and copied into the account, which owns them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"
#include "viber_internal.h"
#include "util/crypto.h"
#include "util/parse.h"
#include "util/schema.h"

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

/* These values end up in a request line or header, where a control character or a byte
 * above 0x7e would be invalid or, as CR/LF, an injection. */
static int printable_ascii(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 0;
    return 1;
}

/* The section as the key table reads it; every string is borrowed from the section. */
struct vb_conf {
    const char *auth_token, *sender_name, *sender_avatar, *api_base, *welcome_text;
};

static const char *token_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    /* Said without the word for what it is: the message must not hint at the value. */
    return printable_ascii(v) ? NULL : "must be printable ASCII without spaces";
}

/* NULL when name can be the sender name, else why not (in buf). */
static const char *name_check(const char *v, char *buf, size_t n)
{
    size_t len = strlen(v);
    if (!len || !db_utf8_valid(v, len)) return "must be non-empty UTF-8";
    /* Counted in characters, as Viber counts them. */
    if (db_utf8_chars(v, len) > SENDER_NAME_MAX_CHARS) {
        snprintf(buf, n, "longer than %d characters", SENDER_NAME_MAX_CHARS);
        return buf;
    }
    return NULL;
}

static const char *avatar_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    if (!*v) return NULL; /* empty: no avatar */
    return printable_ascii(v) && db_url_check(v, DB_URL_HTTP, NULL) == 0
               ? NULL
               : "must be an http(s) URL";
}

static const char *api_base_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    return printable_ascii(v) ? NULL : "must be ASCII";
}

static const char *welcome_check(const char *v, char *buf, size_t n)
{
    size_t len = strlen(v);
    if (db_utf8_valid(v, len) && db_utf8_chars(v, len) <= TEXT_MAX_CHARS) return NULL;
    snprintf(buf, n, "must be UTF-8 of at most %d characters", TEXT_MAX_CHARS);
    return buf;
}

static int vb_conf_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct vb_conf *c = obj;
    /* An empty value switches the avatar or the welcome off, so an environment override can
     * disable one set in the file. */
    if (c->sender_avatar && !*c->sender_avatar) c->sender_avatar = NULL;
    if (c->welcome_text && !*c->welcome_text) c->welcome_text = NULL;
    if (c->sender_name) return DB_OK;
    /* Without the key the account id is the name; say so rather than blaming a key the user
     * never wrote. */
    char buf[64];
    const char *why = name_check(sec->account ? sec->account : "", buf, sizeof buf);
    if (why)
        return db_conf_error(e, sec, NULL, "sender_name",
                             "%s (defaults to the account id; set it explicitly)", why);
    c->sender_name = sec->account;
    return DB_OK;
}

static const struct db_conf_key vb_keys[] = {
    {.name = "auth_token", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = offsetof(struct vb_conf, auth_token), .check = token_check,
     .doc = "the bot's token from the Viber admin panel: printable ASCII without spaces; it "
            "also signs the callbacks"},
    {.name = "sender_name", .type = DB_CONF_STR, .off = offsetof(struct vb_conf, sender_name),
     .check = name_check,
     .doc = "1-28 characters of UTF-8 (counted in characters), the name customers see. "
            "Default: the account id"},
    {.name = "sender_avatar", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY,
     .off = offsetof(struct vb_conf, sender_avatar), .check = avatar_check,
     .doc = "an http(s) URL of the sender's picture; empty: none"},
    {.name = "api_base", .type = DB_CONF_URL, .def = DEFAULT_API_BASE,
     .off = offsetof(struct vb_conf, api_base), .check = api_base_check,
     .doc = "the Viber REST API base; a trailing `/` is dropped"},
    {.name = "welcome_text", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY,
     .off = offsetof(struct vb_conf, welcome_text), .check = welcome_check,
     .doc = "UTF-8 of at most 7000 characters, answered to a `conversation_started` "
            "callback; empty: none"},
};

const struct db_conf_table db_vb_account_table = {
    .section = "viber",
    .named = 1,
    .size = sizeof(struct vb_conf),
    .keys = vb_keys,
    .n_keys = sizeof vb_keys / sizeof vb_keys[0],
    .finish = vb_conf_finish,
    .quiet = 1,
};

/* A malloc'd copy of s (NULL stays NULL); 0 when out of memory. */
static int copy(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

int db_vb_account_new(const struct db_conf_section *sec, void **out, struct db_err *e)
{
    void *obj = NULL;
    *out = NULL;
    int rc = db_conf_obj_new(&db_vb_account_table, sec, &obj, e);
    if (rc != DB_OK) return rc;
    const struct vb_conf *c = obj;
    struct viber_acct *a = calloc(1, sizeof *a);
    if (!a || !copy(sec->account, &a->account) || !copy(c->auth_token, &a->auth_token) ||
        !copy(c->sender_name, &a->sender_name) || !copy(c->sender_avatar, &a->sender_avatar) ||
        !copy(c->welcome_text, &a->welcome_text)) {
        rc = DB_ENOMEM;
        goto done;
    }
    size_t blen = strlen(c->api_base);
    while (blen > 0 && c->api_base[blen - 1] == '/') blen--;
    if (!(a->api_base = strndup(c->api_base, blen))) {
        rc = DB_ENOMEM;
        goto done;
    }
    *out = a;
    a = NULL;
done:
    db_conf_obj_free(&db_vb_account_table, obj);
    db_vb_account_free(a);
    if (rc == DB_ENOMEM) return db_err_set(e, DB_ENOMEM, "out of memory");
    return rc;
}
