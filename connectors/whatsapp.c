/* whatsapp.c - WhatsApp Business Cloud API (Meta Graph API) connector.
 *
 * Pure translator between Meta's webhook/Graph payloads and the stream contract; the daemon
 * does every byte of I/O.  Platform facts this file relies on are in
 * docs/platforms/whatsapp.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "deskbridge/connector.h"
#include "util/crypto.h"
#include "util/json.h"
#include "util/text.h"

/* The Graph API version is pinned here and only here: Meta changes payload shapes between
 * versions and retires each one about two years after release, so moving it is a
 * deliberate change made together with the fixtures (override per account with api_base). */
#define WA_API_BASE_DEFAULT "https://graph.facebook.com/v21.0"

#define WA_PLATFORM "whatsapp"
#define WA_MAX_TEXT_CHARS 4096
#define WA_MAX_CAPTION_CHARS 1024
/* Longest id we copy out of a payload; wamids are about 60 characters. */
#define WA_MAX_ID 159

struct wa_account {
    char *account;             /* section account id, the stream's `account` */
    char *access_token;        /* Graph API system-user token */
    char *app_secret;          /* signs webhook bodies */
    char *app_secret_previous; /* accepted too while a rotation is under way; NULL */
    char *verify_token;        /* answers the GET subscription handshake */
    char *phone_number_id;     /* digits; sends go out from it, changes for others are skipped */
    char *api_base;            /* no trailing slash */
    char *bearer;              /* "Bearer <access_token>", the Authorization header value */
};

/* ---------------------------------------------------------------- accounts */

static void free_secret(char *s)
{
    if (!s) return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static void wa_account_free(void *p)
{
    struct wa_account *a = p;
    if (!a) return;
    free(a->account);
    free_secret(a->access_token);
    free_secret(a->app_secret);
    free_secret(a->app_secret_previous);
    free_secret(a->verify_token);
    free(a->phone_number_id);
    free(a->api_base);
    free_secret(a->bearer);
    free(a);
}

static int has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
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

static int wa_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
{
    static const char *const keys[] = {"access_token", "app_secret", "app_secret_previous",
                                       "verify_token", "phone_number_id", "api_base", NULL};
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
        (rc = conf_copy(sec, "api_base", 1, WA_API_BASE_DEFAULT, &a->api_base, e)) != DB_OK)
        goto fail;

    /* The number id is a URL path segment and the routing check of every change. */
    if (!all_digits(a->phone_number_id) || strlen(a->phone_number_id) > 32) {
        const struct db_conf_kv *kv = db_conf_find(sec, "phone_number_id");
        rc = db_conf_error(e, sec, kv, "phone_number_id",
                           kv ? "must be the digits of a phone number id"
                              : "is required when the account id is not a phone number id");
        goto fail;
    }
    if (strncmp(a->api_base, "https://", 8) != 0 && strncmp(a->api_base, "http://", 7) != 0) {
        rc = db_conf_error(e, sec, db_conf_find(sec, "api_base"), "api_base",
                           "must be an http:// or https:// URL");
        goto fail;
    }
    for (size_t n = strlen(a->api_base); n > 0 && a->api_base[n - 1] == '/'; n--)
        a->api_base[n - 1] = '\0';
    if (strchr(a->api_base, ' ')) {
        rc = db_conf_error(e, sec, db_conf_find(sec, "api_base"), "api_base",
                           "must not contain spaces");
        goto fail;
    }
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
    wa_account_free(a);
    return rc;
}

/* ---------------------------------------------------------------- webhook checks */

static int wa_handshake(const void *acct, const struct db_inbound *in, char **body,
                        struct db_err *e)
{
    const struct wa_account *a = acct;
    char *mode = db_query_param(in->query, "hub.mode");
    char *token = db_query_param(in->query, "hub.verify_token");
    char *challenge = db_query_param(in->query, "hub.challenge");
    int rc = DB_EAUTH;
    *body = NULL;
    /* Evaluate the token compare even when mode is wrong, so timing says nothing. */
    int token_ok = token && db_ct_streq(token, a->verify_token);
    if (!mode || strcmp(mode, "subscribe") != 0 || !token_ok) {
        db_err_set(e, DB_EAUTH, "webhook handshake: wrong mode or verify token");
        goto fail;
    }
    /* The challenge is echoed as text/plain; Meta sends a short number, so anything long
     * or with control characters is not Meta and is not reflected. */
    if (!challenge || !*challenge || strlen(challenge) > 256 || has_control_chars(challenge)) {
        db_err_set(e, DB_EAUTH, "webhook handshake: missing or malformed hub.challenge");
        goto fail;
    }
    *body = challenge;
    challenge = NULL;
    rc = DB_OK;
fail:
    free(mode);
    free_secret(token);
    free(challenge);
    return rc;
}

static int wa_verify(const void *acct, const struct db_inbound *in, struct db_err *e)
{
    const struct wa_account *a = acct;
    const char *sig = in->headers ? db_headers_get(in->headers, "X-Hub-Signature-256") : NULL;
    if (!sig)
        return db_err_set(e, DB_EAUTH, "X-Hub-Signature-256 header missing (sha1 is not accepted)");
    /* Meta signs the bytes it sends (non-ASCII already escaped as \uXXXX), so the HMAC runs
     * over the body exactly as received, never over a re-serialization. */
    int ok = db_hmac_hex_matches(sig, "sha256=", a->app_secret, strlen(a->app_secret), in->body,
                                 in->body_len);
    if (a->app_secret_previous)
        ok |= db_hmac_hex_matches(sig, "sha256=", a->app_secret_previous,
                                  strlen(a->app_secret_previous), in->body, in->body_len);
    return ok ? DB_OK : db_err_set(e, DB_EAUTH, "X-Hub-Signature-256 does not match the body");
}

/* ---------------------------------------------------------------- parse helpers */

/* Where in the body the walk is, so every error names its field. */
struct walk {
    const struct wa_account *a;
    struct db_err *e;
    char where[96];
};

static int bad(struct walk *w, const char *field, const char *what)
{
    return db_err_set(w->e, DB_EINVAL, "%s%s%s: %s", w->where, *field && *w->where ? "." : "",
                      field, what);
}

static int nomem(struct walk *w)
{
    return db_err_set(w->e, DB_ENOMEM, "out of memory");
}

/* *out = borrowed string member key of obj; NULL when absent.  DB_EINVAL when present with
 * another type, or absent/empty and required. */
static int get_str(struct walk *w, const json_t *obj, const char *key, int required,
                   const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? bad(w, key, "missing") : DB_OK;
    if (!json_is_string(v)) return bad(w, key, "must be a string");
    if (required && json_string_length(v) == 0) return bad(w, key, "must not be empty");
    *out = json_string_value(v);
    return DB_OK;
}

/* get_str for ids: also bounded, so dedupe keys and external ids stay small. */
static int get_id(struct walk *w, const json_t *obj, const char *key, int required,
                  const char **out)
{
    int rc = get_str(w, obj, key, required, out);
    if (rc == DB_OK && *out && strlen(*out) > WA_MAX_ID) return bad(w, key, "id too long");
    return rc;
}

/* Borrowed member key of obj when it is an object (NULL when absent); DB_EINVAL otherwise. */
static int get_obj(struct walk *w, const json_t *obj, const char *key, int required,
                   const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? bad(w, key, "missing") : DB_OK;
    if (!json_is_object(v)) return bad(w, key, "must be an object");
    *out = v;
    return DB_OK;
}

static int get_arr(struct walk *w, const json_t *obj, const char *key, int required,
                   const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? bad(w, key, "missing") : DB_OK;
    if (!json_is_array(v)) return bad(w, key, "must be an array");
    *out = v;
    return DB_OK;
}

static int get_bool(struct walk *w, const json_t *obj, const char *key, int *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v || json_is_null(v)) return DB_OK;
    if (!json_is_boolean(v)) return bad(w, key, "must be a boolean");
    *out = json_is_true(v);
    return DB_OK;
}

/* Sets dst[key] = copy of s (nothing when s is NULL), mapping jansson failures. */
static int put_str(struct walk *w, json_t *dst, const char *key, const char *s)
{
    int rc = db_event_set_str(dst, key, s);
    if (rc == DB_EINVAL) return bad(w, key, "not valid UTF-8");
    return rc == DB_OK ? DB_OK : nomem(w);
}

/* Copies optional string member key of src into dst under dst_key. */
static int copy_str(struct walk *w, json_t *dst, const char *dst_key, const json_t *src,
                    const char *key)
{
    const char *s;
    int rc = get_str(w, src, key, 0, &s);
    return rc != DB_OK ? rc : put_str(w, dst, dst_key, s);
}

static int put_bool(struct walk *w, json_t *dst, const char *key, int v)
{
    return json_object_set_new(dst, key, json_boolean(v)) == 0 ? DB_OK : nomem(w);
}

/* Takes obj (a new reference) and stores it as dst[key]. */
static int put_new(struct walk *w, json_t *dst, const char *key, json_t *obj)
{
    return obj && json_object_set_new(dst, key, obj) == 0 ? DB_OK : nomem(w);
}

/* Appends at most "%s[%zu]" to w->where; returns the previous length for restoring. */
static size_t enter(struct walk *w, const char *name, size_t i)
{
    /* Built by hand: it runs for every entry of every webhook, and snprintf was a visible
     * part of the parse, while the path is only read when something is wrong. */
    size_t len = strlen(w->where), n = len, cap = sizeof w->where - 1;
    char digits[24];
    size_t nd = 0;
    do digits[nd++] = (char)('0' + i % 10);
    while ((i /= 10) > 0);
    if (len && n < cap) w->where[n++] = '.';
    for (const char *p = name; *p && n < cap; p++) w->where[n++] = *p;
    if (n < cap) w->where[n++] = '[';
    while (nd > 0 && n < cap) w->where[n++] = digits[--nd];
    if (n < cap) w->where[n++] = ']';
    w->where[n] = '\0';
    return len;
}

static void leave(struct walk *w, size_t len)
{
    w->where[len] = '\0';
}

/* contacts[].profile.name of the contact whose wa_id (or business-scoped user_id) names the
 * sender.  Matched by id because Meta does not promise contacts[] follows messages[]
 * order.  Borrowed; NULL when there is none. */
static const char *contact_name(const json_t *contacts, const char *wa_id, const char *user_id)
{
    size_t i;
    const json_t *c;
    json_array_foreach(contacts, i, c) {
        const char *cw = db_json_str(c, "wa_id"), *cu = db_json_str(c, "user_id");
        if ((wa_id && cw && strcmp(cw, wa_id) == 0) ||
            (!wa_id && user_id && cu && strcmp(cu, user_id) == 0))
            return db_json_str(json_object_get(c, "profile"), "name");
    }
    return NULL;
}

/* ---------------------------------------------------------------- message content */

static int put_media(struct walk *w, json_t *ev, const char *type, const json_t *m)
{
    const json_t *src;
    const char *id, *caption;
    int rc, voice = 0, animated = 0;
    if ((rc = get_obj(w, m, type, 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".%s", type);
    json_t *media = json_object();
    if (!media) {
        rc = nomem(w);
        goto fail;
    }
    if ((rc = get_id(w, src, "id", 1, &id)) != DB_OK || (rc = put_str(w, media, "id", id)) ||
        (rc = copy_str(w, media, "mime_type", src, "mime_type")) ||
        (rc = copy_str(w, media, "sha256", src, "sha256")) ||
        (rc = copy_str(w, media, "url", src, "url")) ||
        (rc = copy_str(w, media, "file_name", src, "filename")) ||
        (rc = get_str(w, src, "caption", 0, &caption)) || (rc = get_bool(w, src, "voice", &voice)) ||
        (rc = get_bool(w, src, "animated", &animated)))
        goto fail;
    if (animated && (rc = put_bool(w, media, "animated", 1)) != DB_OK) goto fail;
    leave(w, mark);
    if ((rc = put_new(w, ev, "media", media)) != DB_OK) return rc;
    if ((rc = put_str(w, ev, "text", caption)) != DB_OK) return rc;
    /* A voice note is audio recorded in the app; agents handle it differently from a
     * forwarded audio file, so it gets its own type. */
    return put_str(w, ev, "type", strcmp(type, "audio") == 0 && voice ? "voice" : type);
fail:
    leave(w, mark);
    json_decref(media);
    return rc;
}

static int put_location(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src;
    int rc;
    if ((rc = get_obj(w, m, "location", 1, &src)) != DB_OK) return rc;
    const json_t *lat = json_object_get(src, "latitude"), *lon = json_object_get(src, "longitude");
    if (!json_is_number(lat)) return bad(w, "location.latitude", "must be a number");
    if (!json_is_number(lon)) return bad(w, "location.longitude", "must be a number");
    json_t *loc = json_pack("{s:f, s:f}", "latitude", json_number_value(lat), "longitude",
                            json_number_value(lon));
    if (!loc) return nomem(w);
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".location");
    if ((rc = copy_str(w, loc, "name", src, "name")) || (rc = copy_str(w, loc, "address", src, "address")) ||
        (rc = copy_str(w, loc, "url", src, "url"))) {
        leave(w, mark);
        json_decref(loc);
        return rc;
    }
    leave(w, mark);
    if ((rc = put_new(w, ev, "location", loc)) != DB_OK) return rc;
    return put_str(w, ev, "type", "location");
}

static int put_interactive(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src, *reply = NULL;
    const char *itype, *id = NULL, *title = NULL, *desc = NULL;
    int rc;
    if ((rc = get_obj(w, m, "interactive", 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".interactive");
    if ((rc = get_str(w, src, "type", 1, &itype)) != DB_OK) goto done;
    /* Button and list replies carry what the user picked; other kinds (flow replies) are
     * passed on with their type only. */
    if (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0) {
        if ((rc = get_obj(w, src, itype, 1, &reply)) != DB_OK) goto done;
        snprintf(w->where + mark, sizeof w->where - mark, ".interactive.%s", itype);
        if ((rc = get_id(w, reply, "id", 1, &id)) || (rc = get_str(w, reply, "title", 0, &title)) ||
            (rc = get_str(w, reply, "description", 0, &desc)))
            goto done;
    }
    json_t *it = json_object();
    if (!it) {
        rc = nomem(w);
        goto done;
    }
    if ((rc = put_str(w, it, "type", itype)) || (rc = put_str(w, it, "id", id)) ||
        (rc = put_str(w, it, "title", title)) || (rc = put_str(w, it, "description", desc))) {
        json_decref(it);
        goto done;
    }
    if ((rc = put_new(w, ev, "interactive", it)) || (rc = put_str(w, ev, "text", title)))
        goto done;
    rc = put_str(w, ev, "type", "interactive");
done:
    leave(w, mark);
    return rc;
}

static int put_button(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src;
    const char *payload, *text;
    int rc;
    if ((rc = get_obj(w, m, "button", 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".button");
    rc = get_str(w, src, "payload", 0, &payload);
    if (rc == DB_OK) rc = get_str(w, src, "text", 0, &text);
    leave(w, mark);
    if (rc != DB_OK) return rc;
    json_t *b = json_object();
    if (!b) return nomem(w);
    if ((rc = put_str(w, b, "payload", payload)) || (rc = put_str(w, b, "text", text))) {
        json_decref(b);
        return rc;
    }
    if ((rc = put_new(w, ev, "button", b)) || (rc = put_str(w, ev, "text", text))) return rc;
    return put_str(w, ev, "type", "button");
}

/* Fills type and the type's members of ev from the message object m (a message, or the new
 * version inside an edit). */
static int put_content(struct walk *w, json_t *ev, const json_t *m)
{
    const char *type;
    int rc;
    if ((rc = get_str(w, m, "type", 1, &type)) != DB_OK) return rc;
    if (strcmp(type, "text") == 0) {
        const json_t *t;
        const char *body;
        if ((rc = get_obj(w, m, "text", 1, &t)) != DB_OK) return rc;
        if (!json_is_string(json_object_get(t, "body")))
            return bad(w, "text.body", "missing or not a string");
        body = json_string_value(json_object_get(t, "body"));
        if ((rc = put_str(w, ev, "text", body)) != DB_OK) return rc;
        return put_str(w, ev, "type", "text");
    }
    static const char *const media[] = {"image", "video", "audio", "document", "sticker", NULL};
    for (int i = 0; media[i]; i++)
        if (strcmp(type, media[i]) == 0) return put_media(w, ev, type, m);
    if (strcmp(type, "location") == 0) return put_location(w, ev, m);
    if (strcmp(type, "contacts") == 0) {
        const json_t *c;
        if ((rc = get_arr(w, m, "contacts", 1, &c)) != DB_OK) return rc;
        if ((rc = put_new(w, ev, "contacts", json_deep_copy(c))) != DB_OK) return rc;
        return put_str(w, ev, "type", "contact");
    }
    if (strcmp(type, "interactive") == 0) return put_interactive(w, ev, m);
    if (strcmp(type, "button") == 0) return put_button(w, ev, m);
    /* unsupported, order, system, referral and types newer than this code: the agent still
     * sees that the customer wrote something. */
    return put_str(w, ev, "type", "unsupported");
}

static int put_reaction(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src;
    const char *target, *emoji;
    int rc;
    if ((rc = get_obj(w, m, "reaction", 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".reaction");
    rc = get_id(w, src, "message_id", 1, &target);
    if (rc == DB_OK) rc = get_str(w, src, "emoji", 0, &emoji);
    leave(w, mark);
    if (rc != DB_OK) return rc;
    json_t *r = json_object();
    if (!r) return nomem(w);
    /* Meta reports a removed reaction as one without (or with an empty) emoji. */
    int removed = !emoji || !*emoji;
    if ((rc = put_str(w, r, "emoji", removed ? NULL : emoji)) ||
        (rc = put_str(w, r, "message_id", target)) || (rc = put_bool(w, r, "removed", removed))) {
        json_decref(r);
        return rc;
    }
    if ((rc = put_new(w, ev, "reaction", r)) != DB_OK) return rc;
    return put_str(w, ev, "type", "reaction");
}

static int put_edit(struct walk *w, json_t *ev, const json_t *m, int revoke)
{
    const char *key = revoke ? "revoke" : "edit";
    const json_t *src, *inner = NULL;
    const char *orig;
    int rc;
    if ((rc = get_obj(w, m, key, 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".%s", key);
    if ((rc = get_id(w, src, "original_message_id", 1, &orig)) != DB_OK) goto done;
    if ((rc = put_str(w, ev, "edit_of", orig)) != DB_OK) goto done;
    if (revoke) {
        rc = put_bool(w, ev, "revoked", 1);
        goto done;
    }
    if ((rc = get_obj(w, src, "message", 1, &inner)) != DB_OK) goto done;
    snprintf(w->where + mark, sizeof w->where - mark, ".edit.message");
    rc = put_content(w, ev, inner);
done:
    leave(w, mark);
    return rc;
}

/* ---------------------------------------------------------------- messages and statuses */

static char *dedupe_key(const char *prefix, const char *id, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(id) + (suffix ? strlen(suffix) + 1 : 0) + 1;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s%s%s%s", prefix, id, suffix ? ":" : "", suffix ? suffix : "");
    return k;
}

static int parse_message(struct walk *w, const json_t *m, const json_t *contacts,
                         struct db_event_list *list)
{
    const char *id, *from, *from_uid, *type;
    const json_t *ctx;
    json_t *ev = NULL;
    int64_t ts;
    int rc, fwd = 0, ffwd = 0;
    if (!json_is_object(m)) return bad(w, "", "must be an object");
    if ((rc = get_id(w, m, "id", 1, &id)) || (rc = get_id(w, m, "from", 0, &from)) ||
        (rc = get_id(w, m, "from_user_id", 0, &from_uid)) ||
        (rc = get_str(w, m, "type", 1, &type)) || (rc = get_obj(w, m, "context", 0, &ctx)))
        return rc;
    /* Business-scoped user ids ("from_user_id") may come without a phone number; the id the
     * customer can be answered on is then the only one there is. */
    const char *chat = from && *from ? from : from_uid;
    if (!chat || !*chat) return bad(w, "from", "missing (and no from_user_id)");
    if (db_json_time(json_object_get(m, "timestamp"), &ts) != DB_OK)
        return bad(w, "timestamp", "missing or not a Unix time");

    int is_reaction = strcmp(type, "reaction") == 0;
    int is_edit = strcmp(type, "edit") == 0, is_revoke = strcmp(type, "revoke") == 0;
    ev = db_event_new(is_reaction ? "reaction" : is_edit || is_revoke ? "edit" : "message",
                      WA_PLATFORM, w->a->account);
    if (!ev) return nomem(w);
    if (db_event_set_chat(ev, chat) != DB_OK) {
        rc = nomem(w);
        goto fail;
    }
    if ((rc = put_str(w, ev, "external_user_id", chat)) ||
        (rc = put_str(w, ev, "external_message_id", id)) ||
        (rc = db_event_set_int(ev, "timestamp", ts) == DB_OK ? DB_OK : nomem(w)))
        goto fail;
    const char *name = contact_name(contacts, from && *from ? from : NULL, from_uid);
    if (name) {
        json_t *sender = json_object();
        if (!sender) {
            rc = nomem(w);
            goto fail;
        }
        if ((rc = put_str(w, sender, "name", name)) != DB_OK) {
            json_decref(sender);
            goto fail;
        }
        if ((rc = put_new(w, ev, "sender", sender)) != DB_OK) goto fail;
    }
    if (ctx) {
        size_t mark = strlen(w->where);
        snprintf(w->where + mark, sizeof w->where - mark, ".context");
        const char *reply_to;
        rc = get_id(w, ctx, "id", 0, &reply_to);
        if (rc == DB_OK) rc = get_bool(w, ctx, "forwarded", &fwd);
        if (rc == DB_OK) rc = get_bool(w, ctx, "frequently_forwarded", &ffwd);
        leave(w, mark);
        if (rc != DB_OK) goto fail;
        if ((rc = put_str(w, ev, "reply_to", reply_to)) != DB_OK) goto fail;
        if (fwd && (rc = put_bool(w, ev, "forwarded", 1)) != DB_OK) goto fail;
        if (ffwd && (rc = put_bool(w, ev, "frequently_forwarded", 1)) != DB_OK) goto fail;
    }
    if (is_reaction)
        rc = put_reaction(w, ev, m);
    else if (is_edit || is_revoke)
        rc = put_edit(w, ev, m, is_revoke);
    else
        rc = put_content(w, ev, m);
    if (rc != DB_OK) goto fail;

    char *key = dedupe_key("m:", id, NULL);
    if (!key) {
        rc = nomem(w);
        goto fail;
    }
    rc = db_event_list_push(list, ev, key);
    return rc == DB_OK ? DB_OK : nomem(w);
fail:
    json_decref(ev);
    return rc;
}

/* The contract's receipt status for Meta's, or NULL for statuses the gateway ignores
 * ("deleted", and any added after this code). */
static const char *receipt_status(const char *s)
{
    if (strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 || strcmp(s, "read") == 0 ||
        strcmp(s, "failed") == 0)
        return s;
    /* A voice note that was played has necessarily been read. */
    if (strcmp(s, "played") == 0) return "read";
    return NULL;
}

static int put_status_error(struct walk *w, json_t *ev, const json_t *st)
{
    const json_t *errors, *first;
    int rc;
    if ((rc = get_arr(w, st, "errors", 0, &errors)) != DB_OK) return rc;
    first = json_array_get(errors, 0);
    if (!first) return DB_OK;
    if (!json_is_object(first)) return bad(w, "errors[0]", "must be an object");
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".errors[0]");
    char code[32] = "";
    const json_t *jc = json_object_get(first, "code");
    const char *title, *msg;
    if (jc && db_json_id(jc, 0, code, sizeof code) != DB_OK) {
        rc = bad(w, "code", "must be an integer or a string");
        goto done;
    }
    if ((rc = get_str(w, first, "title", 0, &title)) || (rc = get_str(w, first, "message", 0, &msg)))
        goto done;
    if (!msg) msg = db_json_str(json_object_get(first, "error_data"), "details");
    json_t *err = json_object();
    if (!err) {
        rc = nomem(w);
        goto done;
    }
    if ((rc = put_str(w, err, "code", *code ? code : NULL)) || (rc = put_str(w, err, "title", title)) ||
        (rc = put_str(w, err, "message", msg))) {
        json_decref(err);
        goto done;
    }
    rc = put_new(w, ev, "error", err);
done:
    leave(w, mark);
    return rc;
}

static int parse_status(struct walk *w, const json_t *st, struct db_event_list *list)
{
    const char *id, *status, *recipient;
    json_t *ev = NULL;
    int64_t ts;
    int rc;
    if (!json_is_object(st)) return bad(w, "", "must be an object");
    if ((rc = get_id(w, st, "id", 1, &id)) || (rc = get_str(w, st, "status", 1, &status)) ||
        (rc = get_id(w, st, "recipient_id", 1, &recipient)))
        return rc;
    if (db_json_time(json_object_get(st, "timestamp"), &ts) != DB_OK)
        return bad(w, "timestamp", "missing or not a Unix time");
    const char *mapped = receipt_status(status);
    if (!mapped) return DB_OK;

    ev = db_event_new("receipt", WA_PLATFORM, w->a->account);
    if (!ev) return nomem(w);
    if (db_event_set_chat(ev, recipient) != DB_OK) {
        rc = nomem(w);
        goto fail;
    }
    if ((rc = put_str(w, ev, "external_message_id", id)) || (rc = put_str(w, ev, "status", mapped)) ||
        (rc = put_str(w, ev, "recipient_id", recipient)) ||
        (rc = db_event_set_int(ev, "timestamp", ts) == DB_OK ? DB_OK : nomem(w)))
        goto fail;
    if (strcmp(mapped, "failed") == 0 && (rc = put_status_error(w, ev, st)) != DB_OK) goto fail;
    char *key = dedupe_key("s:", id, mapped);
    if (!key) {
        rc = nomem(w);
        goto fail;
    }
    rc = db_event_list_push(list, ev, key);
    return rc == DB_OK ? DB_OK : nomem(w);
fail:
    json_decref(ev);
    return rc;
}

/* One entry[].changes[] element. */
static int parse_change(struct walk *w, const json_t *ch, struct db_event_list *list)
{
    const char *field, *pnid_s;
    const json_t *value, *meta, *contacts, *messages, *statuses, *item;
    char pnid[40];
    size_t i;
    int rc;
    if (!json_is_object(ch)) return bad(w, "", "must be an object");
    if ((rc = get_str(w, ch, "field", 1, &field)) != DB_OK) return rc;
    /* The same app may subscribe to template, account and call updates: valid, unused. */
    if (strcmp(field, "messages") != 0) return DB_OK;
    if ((rc = get_obj(w, ch, "value", 1, &value)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".value");
    if ((rc = get_obj(w, value, "metadata", 1, &meta)) != DB_OK) goto done;
    if (db_json_id(json_object_get(meta, "phone_number_id"), 1, pnid, sizeof pnid) != DB_OK) {
        rc = bad(w, "metadata.phone_number_id", "missing or not a number id");
        goto done;
    }
    pnid_s = pnid;
    /* One app may serve several numbers and Meta sends every number's changes to the
     * callback URL; only this account's number is ours to store. */
    if (strcmp(pnid_s, w->a->phone_number_id) != 0) goto done;
    if ((rc = get_arr(w, value, "contacts", 0, &contacts)) ||
        (rc = get_arr(w, value, "messages", 0, &messages)) ||
        (rc = get_arr(w, value, "statuses", 0, &statuses)))
        goto done;
    json_array_foreach(messages, i, item) {
        size_t m2 = enter(w, "messages", i);
        rc = parse_message(w, item, contacts, list);
        leave(w, m2);
        if (rc != DB_OK) goto done;
    }
    json_array_foreach(statuses, i, item) {
        size_t m2 = enter(w, "statuses", i);
        rc = parse_status(w, item, list);
        leave(w, m2);
        if (rc != DB_OK) goto done;
    }
done:
    leave(w, mark);
    return rc;
}

/* Moves every event of from to the end of to without a partial state: the space is made
 * first, so either all move or none. */
static int move_events(struct db_event_list *from, struct db_event_list *to, struct db_err *e)
{
    if (from->n == 0) return DB_OK;
    if (to->cap - to->n < from->n) {
        size_t cap = to->n + from->n;
        struct db_event *v = realloc(to->v, cap * sizeof *v);
        if (!v) return db_err_set(e, DB_ENOMEM, "out of memory");
        to->v = v;
        to->cap = cap;
    }
    memcpy(to->v + to->n, from->v, from->n * sizeof *from->v);
    to->n += from->n;
    from->n = 0;
    return DB_OK;
}

/* jansson's parse errors quote the body near the fault ("near '<text>'"), which may be
 * customer message text; the error ends up in logs, so only reason and position stay. */
static void drop_quoted_body(struct db_err *e)
{
    if (!e) return;
    char *near = strstr(e->msg, " near ");
    char *at = near ? strrchr(near, ' ') : NULL;
    if (!near || !at || at == near || at - near < 4 || strncmp(at - 3, " at", 3) != 0) return;
    memmove(near, at - 3, strlen(at - 3) + 1);
}

static int wa_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                    struct db_err *e)
{
    struct walk w = {.a = acct, .e = e};
    struct db_event_list local = {0};
    json_t *root = NULL;
    const json_t *entries, *entry, *changes, *change;
    const char *object;
    size_t i, j;
    int rc;
    if ((rc = db_json_parse_object(in->body, in->body_len, &root, e)) != DB_OK) {
        drop_quoted_body(e);
        return rc;
    }
    if ((rc = get_str(&w, root, "object", 1, &object)) != DB_OK) goto fail;
    if (strcmp(object, "whatsapp_business_account") != 0) {
        rc = bad(&w, "object", "is not whatsapp_business_account");
        goto fail;
    }
    if ((rc = get_arr(&w, root, "entry", 1, &entries)) != DB_OK) goto fail;
    json_array_foreach(entries, i, entry) {
        size_t m1 = enter(&w, "entry", i);
        if (!json_is_object(entry)) {
            rc = bad(&w, "", "must be an object");
            goto fail;
        }
        if ((rc = get_arr(&w, entry, "changes", 1, &changes)) != DB_OK) goto fail;
        json_array_foreach(changes, j, change) {
            size_t m2 = enter(&w, "changes", j);
            rc = parse_change(&w, change, &local);
            leave(&w, m2);
            if (rc != DB_OK) goto fail;
        }
        leave(&w, m1);
    }
    if ((rc = move_events(&local, out, e)) != DB_OK) goto fail;
fail:
    db_event_list_clear(&local);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- sending */

/* malloc'd "<api_base>/<a>[/<b>]"; caller frees.  NULL on ENOMEM. */
static char *graph_url(const struct wa_account *a, const char *seg1, const char *seg2)
{
    size_t n = strlen(a->api_base) + strlen(seg1) + (seg2 ? strlen(seg2) + 1 : 0) + 2;
    char *url = malloc(n);
    if (url) snprintf(url, n, "%s/%s%s%s", a->api_base, seg1, seg2 ? "/" : "", seg2 ? seg2 : "");
    return url;
}

/* Checks that s is sendable text of at most max characters. */
static int check_text(const char *s, size_t max, const char *what, struct db_err *e)
{
    size_t len = strlen(s);
    if (!db_utf8_valid(s, len)) return db_err_set(e, DB_EINVAL, "%s is not valid UTF-8", what);
    size_t chars = db_utf8_chars(s, len);
    if (chars > max)
        return db_err_set(e, DB_EINVAL, "%s has %zu characters; WhatsApp accepts at most %zu",
                          what, chars, max);
    return DB_OK;
}

/* New reference: the "template" object of a send, from the request's extra member
 * {"name", "language": "en_US", "parameters": ["..."]}.  NULL with e set on error. */
static json_t *build_template(const json_t *t, struct db_err *e)
{
    const char *name = db_json_str(t, "name"), *lang = db_json_str(t, "language");
    const json_t *params = json_object_get(t, "parameters"), *p;
    json_t *out = NULL, *list = NULL;
    size_t i;
    if (!json_is_object(t)) {
        db_err_set(e, DB_EINVAL, "template must be an object");
        goto fail;
    }
    if (!name || !*name || !lang || !*lang) {
        db_err_set(e, DB_EINVAL, "template needs a name and a language code (strings)");
        goto fail;
    }
    if (params && !json_is_array(params)) {
        db_err_set(e, DB_EINVAL, "template.parameters must be an array of strings");
        goto fail;
    }
    out = json_pack("{s:s, s:{s:s}}", "name", name, "language", "code", lang);
    list = json_array();
    if (!out || !list) goto nomem;
    json_array_foreach(params, i, p) {
        if (!json_is_string(p)) {
            db_err_set(e, DB_EINVAL, "template.parameters[%zu] must be a string", i);
            goto fail;
        }
        if (json_array_append_new(list, json_pack("{s:s, s:O}", "type", "text", "text", p)) != 0)
            goto nomem;
    }
    if (json_array_size(list) > 0) {
        json_t *comps = json_pack("[{s:s, s:O}]", "type", "body", "parameters", list);
        if (!comps || json_object_set_new(out, "components", comps) != 0) goto nomem;
    }
    json_decref(list);
    return out;
nomem:
    db_err_set(e, DB_ENOMEM, "out of memory");
fail:
    json_decref(list);
    json_decref(out);
    return NULL;
}

/* Sets body.type and body[<type>] for a media send. */
static int build_media(json_t *body, const struct db_outbound *msg, struct db_err *e)
{
    const char *type = msg->media_type;
    /* WhatsApp has one audio type; a voice note is audio it plays inline. */
    if (strcmp(type, "voice") == 0) type = "audio";
    static const char *const ok[] = {"image", "video", "audio", "document", "sticker", NULL};
    int known = 0;
    for (int i = 0; ok[i]; i++) known |= strcmp(type, ok[i]) == 0;
    if (!known)
        return db_err_set(e, DB_EINVAL, "WhatsApp cannot send media of type %s", msg->media_type);
    int captioned = strcmp(type, "audio") != 0 && strcmp(type, "sticker") != 0;
    if (msg->text && *msg->text && !captioned)
        return db_err_set(e, DB_EINVAL, "WhatsApp %s messages cannot carry a caption; send the text separately", type);
    if (msg->text && captioned) {
        int rc = check_text(msg->text, WA_MAX_CAPTION_CHARS, "caption", e);
        if (rc != DB_OK) return rc;
    }
    json_t *m = json_object();
    if (!m) return db_err_set(e, DB_ENOMEM, "out of memory");
    int bad_str = 0;
    /* An uploaded media id needs no fetch by Meta, so it wins over a link. */
    if (msg->media_id && *msg->media_id)
        bad_str |= db_event_set_str(m, "id", msg->media_id);
    else if (msg->media_url && *msg->media_url)
        bad_str |= db_event_set_str(m, "link", msg->media_url);
    else {
        json_decref(m);
        return db_err_set(e, DB_EINVAL, "media message without media_url or media_id");
    }
    if (captioned && msg->text && *msg->text) bad_str |= db_event_set_str(m, "caption", msg->text);
    if (strcmp(type, "document") == 0 && msg->file_name && *msg->file_name)
        bad_str |= db_event_set_str(m, "filename", msg->file_name);
    if (bad_str) {
        json_decref(m);
        return db_err_set(e, DB_EINVAL, "media fields must be valid UTF-8");
    }
    if (json_object_set_new(body, type, m) != 0 ||
        json_object_set_new(body, "type", json_string(type)) != 0)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

static int wa_build_send(const void *acct, const struct db_outbound *msg, struct db_http_req *req,
                         struct db_err *e)
{
    const struct wa_account *a = acct;
    json_t *body = NULL;
    char *url = NULL, *text = NULL;
    int rc;
    if (!msg->chat_id || !*msg->chat_id)
        return db_err_set(e, DB_EINVAL, "outbound message without a chat id");
    const json_t *tmpl = json_object_get(msg->extra, "template");
    body = json_pack("{s:s, s:s}", "messaging_product", "whatsapp", "recipient_type",
                     "individual");
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (db_event_set_str(body, "to", msg->chat_id) != DB_OK) {
        rc = db_err_set(e, DB_EINVAL, "chat id is not valid UTF-8");
        goto fail;
    }
    if (tmpl && !json_is_null(tmpl)) {
        /* Outside the 24-hour window only templates get through; their text lives at Meta,
         * so any text of the request is not sent. */
        json_t *t = build_template(tmpl, e);
        if (!t) {
            rc = e && e->code ? e->code : DB_EINVAL;
            goto fail;
        }
        if (json_object_set_new(body, "template", t) != 0 ||
            json_object_set_new(body, "type", json_string("template")) != 0)
            goto nomem;
    } else if (msg->media_type || msg->media_url || msg->media_id) {
        if (!msg->media_type) {
            rc = db_err_set(e, DB_EINVAL, "media message without media_type");
            goto fail;
        }
        if ((rc = build_media(body, msg, e)) != DB_OK) goto fail;
    } else {
        if (!msg->text || !*msg->text) {
            rc = db_err_set(e, DB_EINVAL, "nothing to send: no text, media or template");
            goto fail;
        }
        if ((rc = check_text(msg->text, WA_MAX_TEXT_CHARS, "text", e)) != DB_OK) goto fail;
        /* preview_url stays off: a link preview makes Meta fetch the URL, which an agent
         * pasting an internal link does not expect. */
        json_t *t = json_pack("{s:s, s:b}", "body", msg->text, "preview_url", 0);
        if (!t || json_object_set_new(body, "text", t) != 0 ||
            json_object_set_new(body, "type", json_string("text")) != 0)
            goto nomem;
    }
    if (msg->reply_to && *msg->reply_to) {
        json_t *c = json_object();
        if (!c || json_object_set_new(body, "context", c) != 0) goto nomem;
        if (db_event_set_str(c, "message_id", msg->reply_to) != DB_OK) {
            rc = db_err_set(e, DB_EINVAL, "reply_to is not valid UTF-8");
            goto fail;
        }
    }
    url = graph_url(a, a->phone_number_id, "messages");
    text = db_json_dump(body);
    if (!url || !text) goto nomem;
    if (db_http_req_post_json(req, url, text) != DB_OK ||
        db_headers_add(&req->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(req);
        goto nomem;
    }
    rc = DB_OK;
    goto fail;
nomem:
    rc = db_err_set(e, DB_ENOMEM, "out of memory");
fail:
    free(text);
    free(url);
    json_decref(body);
    return rc;
}

/* Copies s into dst (size n), cut on a character boundary. */
static void copy_cut(char *dst, size_t n, const char *s)
{
    size_t len = strlen(s);
    if (!db_utf8_valid(s, len)) {
        snprintf(dst, n, "(unreadable platform message)");
        return;
    }
    size_t keep = len < n ? len : n - 1;
    /* Step back over continuation bytes so the cut never splits a sequence. */
    if (keep < len)
        while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80) keep--;
    memcpy(dst, s, keep);
    dst[keep] = '\0';
}

static int is_retry_code(const char *code)
{
    /* 130429 throughput, 131056 pair rate, 4 app request limit, 80007 WABA rate limit:
     * all clear with time (Meta's error-code reference). */
    static const char *const retry[] = {"130429", "131056", "4", "80007", NULL};
    for (int i = 0; retry[i]; i++)
        if (strcmp(code, retry[i]) == 0) return 1;
    return 0;
}

static int wa_read_send(const void *acct, const struct db_http_resp *resp,
                        struct db_send_result *res, struct db_err *e)
{
    json_t *root = NULL;
    struct db_err pe = {0};
    int rc = DB_OK;
    (void)acct;
    memset(res, 0, sizeof *res);
    res->outcome = DB_SEND_RETRY;
    if (resp->status == 0) {
        snprintf(res->err_msg, sizeof res->err_msg, "no answer from WhatsApp: %s",
                 resp->transport_error ? resp->transport_error : "transport failure");
        return DB_OK;
    }
    int parsed = db_json_parse_object(resp->body, resp->body_len, &root, &pe) == DB_OK;
    if (resp->status >= 200 && resp->status < 300) {
        const char *id = parsed ? db_json_str(json_array_get(json_object_get(root, "messages"), 0), "id") : NULL;
        if (!id || !*id || strlen(id) >= sizeof res->external_id) {
            snprintf(res->err_msg, sizeof res->err_msg, "unreadable WhatsApp answer");
            rc = db_err_set(e, DB_EINVAL, "WhatsApp %ld answer without messages[0].id", resp->status);
            goto done;
        }
        res->outcome = DB_SEND_SENT;
        snprintf(res->external_id, sizeof res->external_id, "%s", id);
        goto done;
    }
    const json_t *err = json_object_get(root, "error");
    char code[32] = "";
    if (!json_is_object(err) || db_json_id(json_object_get(err, "code"), 0, code, sizeof code) != DB_OK) {
        snprintf(res->err_code, sizeof res->err_code, "%ld", resp->status);
        snprintf(res->err_msg, sizeof res->err_msg, "WhatsApp answered HTTP %ld", resp->status);
        if (resp->status >= 500 || resp->status == 429) goto done;
        rc = db_err_set(e, DB_EINVAL, "WhatsApp %ld answer without error.code", resp->status);
        goto done;
    }
    snprintf(res->err_code, sizeof res->err_code, "%s", code);
    const char *msg = db_json_str(err, "message");
    if (!msg || !*msg) msg = db_json_str(err, "error_user_title");
    if (!msg || !*msg) msg = db_json_str(json_object_get(err, "error_data"), "details");
    copy_cut(res->err_msg, sizeof res->err_msg, msg && *msg ? msg : "WhatsApp refused the message");
    if (strcmp(code, "131047") == 0) {
        res->outcome = DB_SEND_FAILED;
        snprintf(res->err_msg, sizeof res->err_msg,
                 "the 24-hour customer service window is closed: send a template message");
    } else if (is_retry_code(code) || resp->status >= 500 || resp->status == 429) {
        /* The pair limit is about one customer: other chats may go on. */
        if (strcmp(code, "131056") == 0) res->per_chat = 1;
    } else {
        res->outcome = DB_SEND_FAILED;
    }
done:
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- media */

static int wa_build_media_lookup(const void *acct, const char *media_id, struct db_http_req *req,
                                 struct db_err *e)
{
    const struct wa_account *a = acct;
    /* The id becomes a path segment: digits only keeps it from naming any other Graph
     * object or endpoint. */
    if (!media_id || !all_digits(media_id) || strlen(media_id) > 64)
        return db_err_set(e, DB_EINVAL, "WhatsApp media ids are digits");
    memset(req, 0, sizeof *req);
    req->method = strdup("GET");
    req->url = graph_url(a, media_id, NULL);
    if (!req->method || !req->url ||
        db_headers_add(&req->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(req);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

static int wa_read_media_lookup(const void *acct, const struct db_http_resp *resp,
                                struct db_http_req *dl, struct db_err *e)
{
    const struct wa_account *a = acct;
    json_t *root = NULL;
    struct db_err pe = {0};
    int rc;
    memset(dl, 0, sizeof *dl);
    if (resp->status == 404)
        return db_err_set(e, DB_ENOTFOUND, "WhatsApp has no such media (expired or unknown id)");
    if (resp->status < 200 || resp->status >= 300)
        return db_err_set(e, DB_EREJECTED, "WhatsApp media lookup answered HTTP %ld", resp->status);
    if (db_json_parse_object(resp->body, resp->body_len, &root, &pe) != DB_OK)
        return db_err_set(e, DB_EREJECTED, "unreadable WhatsApp media lookup answer");
    const char *url = db_json_str(root, "url");
    if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
        has_control_chars(url)) {
        rc = db_err_set(e, DB_EREJECTED, "WhatsApp media lookup answer without a url");
        goto fail;
    }
    dl->method = strdup("GET");
    dl->url = strdup(url);
    /* The download URL only works with the same token as the lookup. */
    if (!dl->method || !dl->url || db_headers_add(&dl->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(dl);
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    rc = DB_OK;
fail:
    json_decref(root);
    return rc;
}

const struct db_connector db_whatsapp = {
    .name = WA_PLATFORM,
    /* Meta documents bodies of up to about 3 MB; batches of media metadata get close. */
    .max_body = 4u * 1024 * 1024,
    .max_text_chars = WA_MAX_TEXT_CHARS,
    /* The Cloud API answers 400 to longer texts, and a split message reads badly on a phone. */
    .split_long_text = 0,
    .max_caption_chars = WA_MAX_CAPTION_CHARS,
    .account_new = wa_account_new,
    .account_free = wa_account_free,
    .verify = wa_verify,
    .parse = wa_parse,
    .build_send = wa_build_send,
    .read_send = wa_read_send,
    .build_poll = NULL,
    .read_poll = NULL,
    /* Webhooks are set up in Meta's app dashboard; there is no API call for it. */
    .build_webhook_setup = NULL,
    .read_webhook_setup = NULL,
    .handshake = wa_handshake,
    .build_media_lookup = wa_build_media_lookup,
    .read_media_lookup = wa_read_media_lookup,
};
