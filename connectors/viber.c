/* viber.c - the Viber REST bot API as a pure translator (see docs/platforms/viber.md).
 *
 * Facts this file relies on (Viber's REST bot API documentation; see docs/platforms/viber.md):
 * - callbacks carry no bot id, so the account is the one whose webhook path was hit;
 * - timestamps are Unix milliseconds; message_token is a 64-bit integer, often above 2^53 and
 *   sometimes a string, so it is only ever read through db_json_id, never through double;
 * - errors of send_message and set_webhook arrive inside HTTP 200 as {"status": N}. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"
#include "util/crypto.h"
#include "util/json.h"
#include "util/text.h"

#define PLATFORM "viber"
#define DEFAULT_API_BASE "https://chatapi.viber.com/pa"
/* send_message: "sender.name ... Required. Max 28 characters"
 * (creators.viber.com/docs/bots-api/resources/messaging/send-message). */
#define SENDER_NAME_MAX_CHARS 28
/* "Text messages can contain up to 7,000 characters" (infobip.com/docs/viber/bots/message-types,
 * matching the 7000-character text limit of Viber's REST bot API documentation). */
#define TEXT_MAX_CHARS 7000
/* tracking_data: "Max 4000 characters" (same send-message page). */
#define TRACKING_MAX_CHARS 4000
/* A picture's text: the REST bot API's picture message gave "Max 120 characters"
 * (developers.viber.com/docs/api/rest-bot-api/#picture-message, as quoted in bot framework
 * documentation); later material quotes 768.  The lower bound never has a caption refused:
 * the sender sends what does not fit as text messages after the picture. */
#define CAPTION_MAX_CHARS 120

enum { ID_MAX = 160 };

struct viber_acct {
    char *account;       /* account id: the event's `account` and the default sender name */
    char *auth_token;    /* secret: signs callbacks and authorizes API calls */
    char *sender_name;
    char *sender_avatar; /* NULL when not configured */
    char *api_base;      /* without trailing '/' */
    char *welcome_text;  /* NULL: no welcome message */
};

/* ---- account ---- */

static void acct_free(void *p)
{
    struct viber_acct *a = p;
    if (!a) return;
    free(a->account);
    if (a->auth_token) {
        /* The token is the callback-signing key too; do not leave it in freed heap. */
        memset(a->auth_token, 0, strlen(a->auth_token));
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
    return (strncmp(s, "https://", 8) == 0 && s[8]) || (strncmp(s, "http://", 7) == 0 && s[7]);
}

static int is_token(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 0;
    return *s != '\0';
}

static int acct_new(const struct db_conf_section *sec, void **out, struct db_err *e)
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
    acct_free(a);
    if (rc == DB_ENOMEM) db_err_set(e, DB_ENOMEM, "out of memory");
    return rc;
}

/* ---- verify ---- */

static int viber_verify(const void *acct, const struct db_inbound *in, struct db_err *e)
{
    const struct viber_acct *a = acct;
    const char *sig = in->headers ? db_headers_get(in->headers, "X-Viber-Content-Signature") : NULL;
    char *qsig = NULL;
    /* The official node SDK (lib/middleware.js) also takes the signature from ?sig=, so a
     * bot migrated from it may have registered a webhook URL relying on that.  The header
     * wins when both are present. */
    if (!sig && in->query) sig = qsig = db_query_param(in->query, "sig");
    int ok = db_hmac_hex_matches(sig, NULL, a->auth_token, strlen(a->auth_token), in->body,
                                 in->body_len);
    int missing = sig == NULL;
    free(qsig);
    if (ok) return DB_OK;
    return db_err_set(e, DB_EAUTH, missing ? "X-Viber-Content-Signature missing"
                                           : "X-Viber-Content-Signature does not match");
}

/* ---- parse ---- */

/* Optional string member: *out borrowed (NULL when absent or null); DB_EINVAL naming
 * where.key when present with another type. */
static int opt_str(const json_t *obj, const char *where, const char *key, const char **out,
                   struct db_err *e)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return DB_OK;
    if (!json_is_string(v))
        return db_err_set(e, DB_EINVAL, "%s%s%s must be a string", where, *where ? "." : "",
                          key);
    *out = json_string_value(v);
    return DB_OK;
}

/* Required id member (integer or string, never through double) copied into buf. */
static int req_id(const json_t *obj, const char *where, const char *key, int digits_only,
                  char *buf, size_t bufsz, struct db_err *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return db_err_set(e, DB_EINVAL, "%s%s%s missing", where, *where ? "." : "", key);
    if (db_json_id(v, digits_only, buf, bufsz) != DB_OK)
        return db_err_set(e, DB_EINVAL, "%s%s%s must be %s", where, *where ? "." : "", key,
                          digits_only ? "an integer or a digit string" : "a non-empty string");
    return DB_OK;
}

/* Copies a present integer member (or, for a tolerant read of durations, a real one). */
static int copy_num_as_int(json_t *dst, const char *dkey, const json_t *src, const char *where,
                           const char *skey, struct db_err *e)
{
    const json_t *v = json_object_get(src, skey);
    if (!v || json_is_null(v)) return DB_OK;
    if (!json_is_number(v))
        return db_err_set(e, DB_EINVAL, "%s.%s must be a number", where, skey);
    if (json_is_real(v) && !(json_real_value(v) >= 0 && json_real_value(v) < 9.0e15))
        return db_err_set(e, DB_EINVAL, "%s.%s is out of range", where, skey);
    int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v)
                                   : (int64_t)json_real_value(v);
    return db_event_set_int(dst, dkey, n) == DB_OK ? DB_OK
                                                   : db_err_set(e, DB_ENOMEM, "out of memory");
}

static int set_str(json_t *obj, const char *key, const char *s, struct db_err *e)
{
    int rc = db_event_set_str(obj, key, s);
    if (rc == DB_EINVAL) return db_err_set(e, rc, "%s is not valid UTF-8", key);
    if (rc != DB_OK) return db_err_set(e, rc, "out of memory");
    return DB_OK;
}

static int set_int(json_t *obj, const char *key, int64_t v, struct db_err *e)
{
    return db_event_set_int(obj, key, v) == DB_OK ? DB_OK
                                                  : db_err_set(e, DB_ENOMEM, "out of memory");
}

/* Attaches a new object under key, taking it even on failure. */
static int attach(json_t *obj, const char *key, json_t *child, struct db_err *e)
{
    if (!child || json_object_set_new(obj, key, child) != 0)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

/* Viber timestamps are milliseconds; the stream contract wants seconds.  *ms is -1 when the
 * body has none (the member is then left out, not invented). */
static int read_timestamp(const json_t *root, json_t *ev, int64_t *ms, struct db_err *e)
{
    const json_t *v = json_object_get(root, "timestamp");
    *ms = -1;
    if (!v || json_is_null(v)) return DB_OK;
    if (db_json_time(v, ms) != DB_OK)
        return db_err_set(e, DB_EINVAL, "timestamp must be a non-negative integer (ms)");
    return set_int(ev, "timestamp", *ms / 1000, e);
}

/* The `sender` object of the contract from a Viber user/sender object. */
static int add_sender(json_t *ev, const json_t *user, const char *where, struct db_err *e)
{
    static const char *const keys[] = {"name", "language", "country", "avatar", NULL};
    json_t *s = json_object();
    int rc;
    if (!s) return db_err_set(e, DB_ENOMEM, "out of memory");
    for (int i = 0; keys[i]; i++) {
        const char *v;
        if ((rc = opt_str(user, where, keys[i], &v, e)) != DB_OK) goto fail;
        if ((rc = set_str(s, keys[i], v, e)) != DB_OK) goto fail;
    }
    if (json_object_size(s) == 0) {
        json_decref(s);
        return DB_OK;
    }
    return attach(ev, "sender", s, e);
fail:
    json_decref(s);
    return rc;
}

/* A dedupe key from a printf format; NULL on ENOMEM.  Caller frees. */
static char *make_key(const char *fmt, ...) DB_PRINTF(1, 2);
static char *make_key(const char *fmt, ...)
{
    char *k = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&k, fmt, ap) < 0) k = NULL;
    va_end(ap);
    return k;
}

/* Fills the message-specific members of ev (type, text, media, extras) from Viber's
 * `message` object m. */
static int fill_message(json_t *ev, const json_t *m, struct db_err *e)
{
    const char *vtype, *text, *url, *thumb, *fname, *tracking;
    json_t *media = NULL;
    int rc;
    if ((rc = opt_str(m, "message", "type", &vtype, e)) != DB_OK) return rc;
    if (!vtype) return db_err_set(e, DB_EINVAL, "message.type missing");
    if ((rc = opt_str(m, "message", "text", &text, e)) != DB_OK) return rc;
    if ((rc = opt_str(m, "message", "media", &url, e)) != DB_OK) return rc;
    if ((rc = opt_str(m, "message", "thumbnail", &thumb, e)) != DB_OK) return rc;
    if ((rc = opt_str(m, "message", "file_name", &fname, e)) != DB_OK) return rc;
    if ((rc = opt_str(m, "message", "tracking_data", &tracking, e)) != DB_OK) return rc;
    if ((rc = set_str(ev, "tracking_data", tracking, e)) != DB_OK) return rc;

    const char *type = NULL;
    int has_media = 0;
    if (strcmp(vtype, "text") == 0) {
        if (!text) return db_err_set(e, DB_EINVAL, "message.text missing");
        type = "text";
    } else if (strcmp(vtype, "picture") == 0) {
        type = "image", has_media = 1;
    } else if (strcmp(vtype, "video") == 0) {
        type = "video", has_media = 1;
    } else if (strcmp(vtype, "file") == 0) {
        type = "document", has_media = 1;
    } else if (strcmp(vtype, "url") == 0) {
        type = "url", has_media = 1;
    } else if (strcmp(vtype, "sticker") == 0) {
        type = "sticker";
    } else if (strcmp(vtype, "contact") == 0) {
        type = "contact";
    } else if (strcmp(vtype, "location") == 0) {
        type = "location";
    } else {
        /* rich_media (bot-to-user carousels echoed back) and anything newer: the agent
         * sees that something arrived rather than nothing. */
        type = "unsupported";
    }
    if ((rc = set_str(ev, "type", type, e)) != DB_OK) return rc;
    if (strcmp(type, "unsupported") != 0 && (rc = set_str(ev, "text", text, e)) != DB_OK)
        return rc;

    if (has_media || strcmp(type, "sticker") == 0) {
        if (has_media && !url) return db_err_set(e, DB_EINVAL, "message.media missing");
        if (!(media = json_object())) return db_err_set(e, DB_ENOMEM, "out of memory");
        if ((rc = set_str(media, "url", url, e)) != DB_OK) goto fail;
        if ((rc = set_str(media, "thumbnail", thumb, e)) != DB_OK) goto fail;
        if ((rc = set_str(media, "file_name", fname, e)) != DB_OK) goto fail;
        if ((rc = copy_num_as_int(media, "size", m, "message", "size", e)) != DB_OK) goto fail;
        if ((rc = copy_num_as_int(media, "duration", m, "message", "duration", e)) != DB_OK)
            goto fail;
        if (strcmp(type, "sticker") == 0) {
            char sid[ID_MAX];
            if ((rc = req_id(m, "message", "sticker_id", 1, sid, sizeof sid, e)) != DB_OK)
                goto fail;
            if ((rc = set_str(media, "sticker_id", sid, e)) != DB_OK) goto fail;
        }
        rc = attach(ev, "media", media, e);
        media = NULL;
        if (rc != DB_OK) return rc;
    }

    if (strcmp(type, "contact") == 0) {
        const json_t *c = json_object_get(m, "contact");
        const char *cname, *phone;
        if (!json_is_object(c))
            return db_err_set(e, DB_EINVAL, "message.contact missing or not an object");
        if ((rc = opt_str(c, "message.contact", "name", &cname, e)) != DB_OK) return rc;
        if ((rc = opt_str(c, "message.contact", "phone_number", &phone, e)) != DB_OK) return rc;
        json_t *o = json_object();
        if (!o) return db_err_set(e, DB_ENOMEM, "out of memory");
        if ((rc = set_str(o, "name", cname, e)) != DB_OK ||
            (rc = set_str(o, "phone_number", phone, e)) != DB_OK) {
            json_decref(o);
            return rc;
        }
        if ((rc = attach(ev, "contact", o, e)) != DB_OK) return rc;
    } else if (strcmp(type, "location") == 0) {
        const json_t *l = json_object_get(m, "location");
        if (!json_is_object(l))
            return db_err_set(e, DB_EINVAL, "message.location missing or not an object");
        const json_t *lat = json_object_get(l, "lat"), *lon = json_object_get(l, "lon");
        if (!json_is_number(lat))
            return db_err_set(e, DB_EINVAL, "message.location.lat must be a number");
        if (!json_is_number(lon))
            return db_err_set(e, DB_EINVAL, "message.location.lon must be a number");
        json_t *o = json_pack("{s:f, s:f}", "latitude", json_number_value(lat), "longitude",
                              json_number_value(lon));
        if ((rc = attach(ev, "location", o, e)) != DB_OK) return rc;
    }
    return DB_OK;
fail:
    json_decref(media);
    return rc;
}

static int parse_message(const struct viber_acct *a, const json_t *root, json_t **ev_out,
                         char **key_out, struct db_err *e)
{
    char token[ID_MAX], uid[ID_MAX];
    int64_t ms;
    int rc;
    const json_t *sender = json_object_get(root, "sender");
    const json_t *m = json_object_get(root, "message");
    if ((rc = req_id(root, "", "message_token", 1, token, sizeof token, e)) != DB_OK) return rc;
    if (!json_is_object(sender)) return db_err_set(e, DB_EINVAL, "sender missing or not an object");
    if ((rc = req_id(sender, "sender", "id", 0, uid, sizeof uid, e)) != DB_OK) return rc;
    if (!json_is_object(m)) return db_err_set(e, DB_EINVAL, "message missing or not an object");

    json_t *ev = db_event_new("message", PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (db_event_set_chat(ev, uid) != DB_OK) {
        rc = db_err_set(e, DB_EINVAL, "sender.id is not usable as a chat id");
        goto fail;
    }
    if ((rc = set_str(ev, "external_user_id", uid, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "external_message_id", token, e)) != DB_OK) goto fail;
    if ((rc = read_timestamp(root, ev, &ms, e)) != DB_OK) goto fail;
    if ((rc = add_sender(ev, sender, "sender", e)) != DB_OK) goto fail;
    if ((rc = fill_message(ev, m, e)) != DB_OK) goto fail;
    if (!(*key_out = make_key("m:%s", token))) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    *ev_out = ev;
    return DB_OK;
fail:
    json_decref(ev);
    return rc;
}

static int parse_receipt(const struct viber_acct *a, const json_t *root, const char *status,
                         json_t **ev_out, char **key_out, struct db_err *e)
{
    char token[ID_MAX], uid[ID_MAX];
    int64_t ms;
    int rc;
    if ((rc = req_id(root, "", "message_token", 1, token, sizeof token, e)) != DB_OK) return rc;
    if ((rc = req_id(root, "", "user_id", 0, uid, sizeof uid, e)) != DB_OK) return rc;

    json_t *ev = db_event_new("receipt", PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (db_event_set_chat(ev, uid) != DB_OK) {
        rc = db_err_set(e, DB_EINVAL, "user_id is not usable as a chat id");
        goto fail;
    }
    if ((rc = set_str(ev, "external_user_id", uid, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "external_message_id", token, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "status", status, e)) != DB_OK) goto fail;
    if ((rc = read_timestamp(root, ev, &ms, e)) != DB_OK) goto fail;
    if (strcmp(status, "failed") == 0) {
        const char *desc;
        if ((rc = opt_str(root, "", "desc", &desc, e)) != DB_OK) goto fail;
        if (desc) {
            json_t *err = json_object();
            if (!err) {
                rc = db_err_set(e, DB_ENOMEM, "out of memory");
                goto fail;
            }
            if ((rc = set_str(err, "message", desc, e)) != DB_OK) {
                json_decref(err);
                goto fail;
            }
            if ((rc = attach(ev, "error", err, e)) != DB_OK) goto fail;
        }
    }
    if (!(*key_out = make_key("s:%s:%s", token, status))) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    *ev_out = ev;
    return DB_OK;
fail:
    json_decref(ev);
    return rc;
}

/* {"sender":{"name","avatar"?},"type":"text","text":welcome}: the one message Viber lets a bot
 * send before the user subscribes, as the answer to conversation_started.  Caller frees. */
static char *welcome_body(const struct viber_acct *a)
{
    json_t *o = json_pack("{s:{s:s}, s:s, s:s}", "sender", "name", a->sender_name, "type",
                          "text", "text", a->welcome_text);
    char *s = NULL;
    if (!o) return NULL;
    if (a->sender_avatar &&
        json_object_set_new(json_object_get(o, "sender"), "avatar",
                            json_string(a->sender_avatar)) != 0)
        goto done;
    s = db_json_dump(o);
done:
    json_decref(o);
    return s;
}

static int parse_membership(const struct viber_acct *a, const json_t *root, const char *event,
                            json_t **ev_out, char **key_out, struct db_err *e)
{
    char uid[ID_MAX], token[ID_MAX], msbuf[32];
    const json_t *user = NULL;
    int64_t ms;
    int rc;
    if (strcmp(event, "unsubscribed") == 0) {
        if ((rc = req_id(root, "", "user_id", 0, uid, sizeof uid, e)) != DB_OK) return rc;
    } else {
        user = json_object_get(root, "user");
        if (!json_is_object(user)) return db_err_set(e, DB_EINVAL, "user missing or not an object");
        if ((rc = req_id(user, "user", "id", 0, uid, sizeof uid, e)) != DB_OK) return rc;
    }
    /* The token is optional here: it only sharpens the dedupe key. */
    const json_t *tv = json_object_get(root, "message_token");
    if (tv && !json_is_null(tv)) {
        if (db_json_id(tv, 1, token, sizeof token) != DB_OK)
            return db_err_set(e, DB_EINVAL, "message_token must be an integer or a digit string");
    } else {
        snprintf(token, sizeof token, "%s", uid);
    }

    json_t *ev = db_event_new("membership", PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (db_event_set_chat(ev, uid) != DB_OK) {
        rc = db_err_set(e, DB_EINVAL, "user id is not usable as a chat id");
        goto fail;
    }
    if ((rc = set_str(ev, "external_user_id", uid, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "membership", event, e)) != DB_OK) goto fail;
    if ((rc = read_timestamp(root, ev, &ms, e)) != DB_OK) goto fail;
    if (user && (rc = add_sender(ev, user, "user", e)) != DB_OK) goto fail;
    if (ms >= 0)
        snprintf(msbuf, sizeof msbuf, "%" PRId64, ms);
    else
        snprintf(msbuf, sizeof msbuf, "-");
    if (!(*key_out = make_key("c:%s:%s:%s", event, token, msbuf))) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    *ev_out = ev;
    return DB_OK;
fail:
    json_decref(ev);
    return rc;
}

static int viber_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                       struct db_err *e)
{
    const struct viber_acct *a = acct;
    json_t *root = NULL, *ev = NULL;
    char *key = NULL, *reply = NULL;
    int rc;
    /* The daemon caps bodies at max_body already; this keeps the function safe on its own
     * (fuzzers, other callers). */
    if (in->body_len > db_viber.max_body)
        return db_err_set(e, DB_ETOOBIG, "body of %zu bytes is over %zu", in->body_len,
                          db_viber.max_body);
    if ((rc = db_json_parse_object(in->body, in->body_len, &root, e)) != DB_OK) return rc;

    const char *event;
    if ((rc = opt_str(root, "", "event", &event, e)) != DB_OK) goto fail;
    if (!event) {
        rc = db_err_set(e, DB_EINVAL, "event missing");
        goto fail;
    }
    if (strcmp(event, "message") == 0) {
        rc = parse_message(a, root, &ev, &key, e);
    } else if (strcmp(event, "delivered") == 0) {
        rc = parse_receipt(a, root, "delivered", &ev, &key, e);
    } else if (strcmp(event, "seen") == 0) {
        rc = parse_receipt(a, root, "read", &ev, &key, e);
    } else if (strcmp(event, "failed") == 0) {
        rc = parse_receipt(a, root, "failed", &ev, &key, e);
    } else if (strcmp(event, "subscribed") == 0 || strcmp(event, "unsubscribed") == 0 ||
               strcmp(event, "conversation_started") == 0) {
        rc = parse_membership(a, root, event, &ev, &key, e);
        if (rc == DB_OK && a->welcome_text && strcmp(event, "conversation_started") == 0 &&
            !(reply = welcome_body(a)))
            rc = db_err_set(e, DB_ENOMEM, "out of memory");
    } else {
        /* "webhook" (set_webhook's probe, which must get 200) and events the gateway does not
         * use: valid, zero events. */
        rc = DB_OK;
    }
    if (rc != DB_OK) goto fail;
    if (ev) {
        rc = db_event_list_push(out, ev, key);
        ev = NULL, key = NULL; /* taken by the list, also on failure */
        if (rc != DB_OK) {
            rc = db_err_set(e, DB_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (reply) {
        free(out->reply_body);
        out->reply_body = reply;
        reply = NULL;
    }
    json_decref(root);
    return DB_OK;
fail:
    free(reply);
    free(key);
    json_decref(ev);
    json_decref(root);
    return rc;
}

/* ---- send ---- */

static int add_auth(const struct viber_acct *a, struct db_http_req *req, struct db_err *e)
{
    if (db_headers_add(&req->headers, "X-Viber-Auth-Token", a->auth_token) != DB_OK) {
        db_http_req_clear(req);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

/* POSTs the JSON of body to <api_base>/<method> with the auth header. */
static int post(const struct viber_acct *a, const char *method, const json_t *body,
                struct db_http_req *req, struct db_err *e)
{
    char *url = NULL, *text = NULL;
    if (asprintf(&url, "%s/%s", a->api_base, method) < 0) url = NULL;
    if (!url || !(text = db_json_dump(body))) goto fail;
    if (db_http_req_post_json(req, url, text) != DB_OK) goto fail;
    free(url);
    free(text);
    return add_auth(a, req, e);
fail:
    free(url);
    free(text);
    return db_err_set(e, DB_ENOMEM, "out of memory");
}

/* The object member key of extra (the whole API request), or NULL. */
static const json_t *extra_obj(const json_t *extra, const char *key)
{
    const json_t *v = json_object_get(extra, key);
    return json_is_object(v) ? v : NULL;
}

/* A non-negative integer from extra.media.<key> (also as digit string); DB_EINVAL when
 * present but unusable; *present tells whether it was there. */
static int media_int(const json_t *extra, const char *key, int64_t *out, int *present,
                     struct db_err *e)
{
    const json_t *v = json_object_get(extra_obj(extra, "media"), key);
    *present = 0;
    if (!v || json_is_null(v)) return DB_OK;
    if (db_json_time(v, out) != DB_OK)
        return db_err_set(e, DB_EINVAL, "media.%s must be a non-negative integer", key);
    *present = 1;
    return DB_OK;
}

static int add_size(json_t *body, const json_t *extra, const char *what, struct db_err *e)
{
    int64_t size;
    int present, rc;
    if ((rc = media_int(extra, "size", &size, &present, e)) != DB_OK) return rc;
    /* Viber marks size Required for video and file messages (developers.viber.com REST
     * "Video message" / "File message"); the gateway cannot HEAD the URL from here, so the
     * sender must say it rather than have Viber answer badData later. */
    if (!present)
        return db_err_set(e, DB_EINVAL, "a Viber %s needs media.size (bytes)", what);
    return set_int(body, "size", size, e);
}

static int no_text(const struct db_outbound *msg, const char *what, struct db_err *e)
{
    /* Viber carries captions on pictures only; dropping an agent's words silently would be
     * worse than refusing. */
    if (msg->text && msg->text[0])
        return db_err_set(e, DB_EINVAL, "a Viber %s message cannot carry text; send it separately",
                          what);
    return DB_OK;
}

static int fill_sticker(const struct db_outbound *msg, json_t *body, struct db_err *e)
{
    char sid[ID_MAX];
    const json_t *v = json_object_get(msg->extra, "sticker_id");
    int rc;
    if (!v) v = json_object_get(extra_obj(msg->extra, "media"), "sticker_id");
    if (!v || db_json_id(v, 1, sid, sizeof sid) != DB_OK || sid[0] == '-')
        return db_err_set(e, DB_EINVAL, "a Viber sticker needs an integer sticker_id");
    if ((rc = no_text(msg, "sticker", e)) != DB_OK) return rc;
    if ((rc = set_str(body, "type", "sticker", e)) != DB_OK) return rc;
    /* Viber's sticker_id is a JSON integer; db_json_id bounded it to digits, and strtoll
     * saturates rather than overflows on absurd values. */
    return attach(body, "sticker_id", json_integer(strtoll(sid, NULL, 10)), e);
}

static int fill_send(const struct db_outbound *msg, json_t *body, struct db_err *e)
{
    const json_t *extra = msg->extra;
    const json_t *jmedia = extra_obj(extra, "media");
    const char *thumb = json_string_value(json_object_get(jmedia, "thumbnail"));
    const char *mt = msg->media_type;
    const char *xtype = json_string_value(json_object_get(extra, "type"));
    int rc;

    if (mt) {
        if (strcmp(mt, "image") == 0 || strcmp(mt, "video") == 0 || strcmp(mt, "document") == 0) {
            if (!msg->media_url)
                return db_err_set(e, DB_EINVAL, "media_type %s needs media_url", mt);
            if ((rc = set_str(body, "media", msg->media_url, e)) != DB_OK) return rc;
            if ((rc = set_str(body, "thumbnail", thumb, e)) != DB_OK) return rc;
        }
        if (strcmp(mt, "image") == 0) {
            /* Viber requires "text" on pictures, empty when there is no caption. */
            if ((rc = set_str(body, "type", "picture", e)) != DB_OK) return rc;
            return set_str(body, "text", msg->text ? msg->text : "", e);
        }
        if (strcmp(mt, "video") == 0) {
            int64_t dur;
            int present;
            if ((rc = no_text(msg, "video", e)) != DB_OK) return rc;
            if ((rc = set_str(body, "type", "video", e)) != DB_OK) return rc;
            if ((rc = add_size(body, extra, "video", e)) != DB_OK) return rc;
            if ((rc = media_int(extra, "duration", &dur, &present, e)) != DB_OK) return rc;
            return present ? set_int(body, "duration", dur, e) : DB_OK;
        }
        if (strcmp(mt, "document") == 0) {
            const char *fname = msg->file_name;
            if (!fname) fname = json_string_value(json_object_get(jmedia, "file_name"));
            if ((rc = no_text(msg, "file", e)) != DB_OK) return rc;
            if (!fname || !fname[0])
                return db_err_set(e, DB_EINVAL, "a Viber file message needs file_name");
            if ((rc = set_str(body, "type", "file", e)) != DB_OK) return rc;
            if ((rc = add_size(body, extra, "file", e)) != DB_OK) return rc;
            return set_str(body, "file_name", fname, e);
        }
        if (strcmp(mt, "sticker") == 0) return fill_sticker(msg, body, e);
        return db_err_set(e, DB_EINVAL, "media_type %.40s is not supported on Viber", mt);
    }

    if ((xtype && strcmp(xtype, "sticker") == 0) ||
        (!xtype && json_object_get(extra, "sticker_id")))
        return fill_sticker(msg, body, e);

    if (extra_obj(extra, "location") && (!xtype || strcmp(xtype, "location") == 0)) {
        const json_t *l = extra_obj(extra, "location");
        const json_t *lat = json_object_get(l, "latitude"), *lon = json_object_get(l, "longitude");
        if (!json_is_number(lat) || !json_is_number(lon))
            return db_err_set(e, DB_EINVAL, "location needs numeric latitude and longitude");
        if ((rc = no_text(msg, "location", e)) != DB_OK) return rc;
        if ((rc = set_str(body, "type", "location", e)) != DB_OK) return rc;
        return attach(body, "location",
                      json_pack("{s:f, s:f}", "lat", json_number_value(lat), "lon",
                                json_number_value(lon)),
                      e);
    }
    if (extra_obj(extra, "contact") && (!xtype || strcmp(xtype, "contact") == 0)) {
        const json_t *c = extra_obj(extra, "contact");
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *phone = json_string_value(json_object_get(c, "phone_number"));
        if (!name || !phone)
            return db_err_set(e, DB_EINVAL, "contact needs string name and phone_number");
        if ((rc = no_text(msg, "contact", e)) != DB_OK) return rc;
        if ((rc = set_str(body, "type", "contact", e)) != DB_OK) return rc;
        json_t *o = json_object();
        if (!o) return db_err_set(e, DB_ENOMEM, "out of memory");
        if ((rc = set_str(o, "name", name, e)) != DB_OK ||
            (rc = set_str(o, "phone_number", phone, e)) != DB_OK) {
            json_decref(o);
            return rc;
        }
        return attach(body, "contact", o, e);
    }
    if (xtype && strcmp(xtype, "text") != 0 && strcmp(xtype, "url") != 0)
        return db_err_set(e, DB_EINVAL, "type %.40s cannot be sent on Viber", xtype);
    if (msg->media_url) {
        /* A URL without a media type is a link message: Viber renders it with a preview. */
        if ((rc = no_text(msg, "url", e)) != DB_OK) return rc;
        if ((rc = set_str(body, "type", "url", e)) != DB_OK) return rc;
        return set_str(body, "media", msg->media_url, e);
    }
    if (!msg->text || !msg->text[0])
        return db_err_set(e, DB_EINVAL, "nothing to send: text is empty");
    if ((rc = set_str(body, "type", "text", e)) != DB_OK) return rc;
    return set_str(body, "text", msg->text, e);
}

static int viber_build_send(const void *acct, const struct db_outbound *msg,
                            struct db_http_req *req, struct db_err *e)
{
    const struct viber_acct *a = acct;
    json_t *body = NULL;
    int rc;
    if (!msg->chat_id || !msg->chat_id[0])
        return db_err_set(e, DB_EINVAL, "chat_id (the Viber user id) is missing");
    if (msg->media_id)
        return db_err_set(e, DB_EINVAL, "media_id is not a Viber concept: send media_url");
    const char *track = msg->id ? msg->id : "";
    if (db_utf8_chars(track, strlen(track)) > TRACKING_MAX_CHARS)
        return db_err_set(e, DB_EINVAL, "message id too long for Viber tracking_data");

    /* tracking_data always a string: the official SDK notes null breaks Viber's side. */
    body = json_pack("{s:s, s:{s:s}, s:s, s:i}", "receiver", msg->chat_id, "sender", "name",
                     a->sender_name, "tracking_data", track, "min_api_version", 1);
    if (!body) return db_err_set(e, DB_EINVAL, "chat_id or id is not valid UTF-8");
    if (a->sender_avatar &&
        json_object_set_new(json_object_get(body, "sender"), "avatar",
                            json_string(a->sender_avatar)) != 0) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    /* reply_to has no Viber equivalent and is dropped: quoting is not part of the bot API. */
    if ((rc = fill_send(msg, body, e)) != DB_OK) goto fail;
    rc = post(a, "send_message", body, req, e);
fail:
    json_decref(body);
    return rc;
}

/* Known codes of Viber's "status" (creators.viber.com/docs/bots-api/errors), for err_msg when
 * the answer carries no status_message. */
static const char *status_name(json_int_t s)
{
    static const char *const names[] = {
        "ok", "invalidUrl", "invalidAuthToken", "badData", "missingData",
        "receiverNotRegistered", "receiverNotSubscribed", "publicAccountBlocked",
        "publicAccountNotFound", "publicAccountSuspended", "webhookNotSet",
        "receiverNoSuitableDevice", "tooManyRequests", "apiVersionNotSupported",
        "incompatibleWithVersion", "publicAccountNotAuthorized", "inchatReplyMessageNotAllowed",
        "publicAccountIsNotInline", "noPublicChat", "cannotSendBroadcast", "broadcastNotAllowed",
        "unsupportedCountry", "paymentUnsupported", "freeMessagesExceeded", "noBalance"};
    if (s >= 0 && (size_t)s < sizeof names / sizeof names[0]) return names[s];
    return "general error";
}

/* Copies s into dst, cut on a character boundary. */
static void copy_text(char *dst, size_t dstsz, const char *s)
{
    size_t len = strlen(s);
    if (!db_utf8_valid(s, len)) {
        snprintf(dst, dstsz, "(unreadable status message)");
        return;
    }
    size_t n = len;
    if (n > dstsz - 1) {
        n = dstsz - 1;
        /* Back up to the first byte of the sequence that would be cut. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Reads {"status": N, "status_message": ...} from a 2xx body: DB_OK with *status and *root (new
 * reference), or DB_EINVAL. */
static int read_status(const struct db_http_resp *resp, json_t **root, json_int_t *status,
                       struct db_err *e)
{
    int rc = db_json_parse_object(resp->body, resp->body_len, root, e);
    if (rc != DB_OK) return rc;
    const json_t *s = json_object_get(*root, "status");
    if (!json_is_integer(s)) {
        json_decref(*root);
        *root = NULL;
        return db_err_set(e, DB_EINVAL, "Viber answer has no integer status");
    }
    *status = json_integer_value(s);
    return DB_OK;
}

static int viber_read_send(const void *acct, const struct db_http_resp *resp,
                           struct db_send_result *res, struct db_err *e)
{
    json_t *root = NULL;
    json_int_t status;
    (void)acct;
    memset(res, 0, sizeof *res);
    res->outcome = DB_SEND_RETRY;
    if (resp->transport_error || resp->status == 0) return DB_OK;
    if (resp->status >= 500 || resp->status == 429 || resp->status == 408) {
        snprintf(res->err_code, sizeof res->err_code, "%ld", resp->status);
        snprintf(res->err_msg, sizeof res->err_msg, "HTTP %ld from Viber", resp->status);
        return DB_OK;
    }
    if (resp->status < 200 || resp->status >= 300) {
        /* Viber reports its errors inside 200; another status means a proxy or a wrong
         * api_base, which retrying will not fix. */
        res->outcome = DB_SEND_FAILED;
        snprintf(res->err_code, sizeof res->err_code, "%ld", resp->status);
        snprintf(res->err_msg, sizeof res->err_msg, "HTTP %ld from Viber", resp->status);
        return DB_OK;
    }
    int rc = read_status(resp, &root, &status, e);
    if (rc != DB_OK) return DB_EINVAL; /* res says RETRY: the message may not have left */

    snprintf(res->err_code, sizeof res->err_code, "%" JSON_INTEGER_FORMAT, status);
    const char *smsg = db_json_str(root, "status_message");
    copy_text(res->err_msg, sizeof res->err_msg, smsg ? smsg : status_name(status));
    if (status == 0) {
        res->outcome = DB_SEND_SENT;
        res->err_code[0] = res->err_msg[0] = '\0';
        /* A success without a token still went out; retrying would send it twice.  The
         * message just cannot be matched to receipts then. */
        if (db_json_id(json_object_get(root, "message_token"), 1, res->external_id,
                       sizeof res->external_id) != DB_OK)
            res->external_id[0] = '\0';
    } else if (status == 12) {
        res->outcome = DB_SEND_RETRY; /* tooManyRequests: 100 unanswered messages per hour */
    } else {
        res->outcome = DB_SEND_FAILED;
    }
    json_decref(root);
    return DB_OK;
}

/* ---- webhook registration ---- */

static int viber_build_webhook_setup(const void *acct, const char *public_url,
                                     struct db_http_req *req, struct db_err *e)
{
    const struct viber_acct *a = acct;
    json_t *body;
    if (public_url)
        body = json_pack("{s:s, s:[s,s,s,s,s,s], s:b, s:b}", "url", public_url, "event_types",
                         "delivered", "seen", "failed", "subscribed", "unsubscribed",
                         "conversation_started", "send_name", 1, "send_photo", 1);
    else
        body = json_pack("{s:s}", "url", ""); /* an empty url removes the webhook */
    if (!body) return db_err_set(e, DB_EINVAL, "webhook URL is not valid UTF-8");
    int rc = post(a, "set_webhook", body, req, e);
    json_decref(body);
    return rc;
}

static int viber_read_webhook_setup(const void *acct, const struct db_http_resp *resp,
                                    struct db_err *e)
{
    json_t *root = NULL;
    json_int_t status;
    (void)acct;
    if (resp->transport_error || resp->status == 0)
        return db_err_set(e, DB_EREJECTED, "set_webhook: no answer from Viber");
    if (resp->status < 200 || resp->status >= 300)
        return db_err_set(e, DB_EREJECTED, "set_webhook: HTTP %ld from Viber", resp->status);
    struct db_err pe = {0};
    if (read_status(resp, &root, &status, &pe) != DB_OK)
        return db_err_set(e, DB_EREJECTED, "set_webhook: unreadable answer: %s", pe.msg);
    if (status == 0) {
        json_decref(root);
        return DB_OK;
    }
    char msg[120];
    const char *smsg = db_json_str(root, "status_message");
    copy_text(msg, sizeof msg, smsg ? smsg : status_name(status));
    json_decref(root);
    return db_err_set(e, DB_EREJECTED, "set_webhook: Viber status %" JSON_INTEGER_FORMAT ": %s",
                      status, msg);
}

const struct db_connector db_viber = {
    .name = PLATFORM,
    .max_body = 1024 * 1024,
    .max_text_chars = TEXT_MAX_CHARS,
    .max_caption_chars = CAPTION_MAX_CHARS,
    .split_long_text = 1,
    .account_new = acct_new,
    .account_free = acct_free,
    .verify = viber_verify,
    .parse = viber_parse,
    .build_send = viber_build_send,
    .read_send = viber_read_send,
    .build_webhook_setup = viber_build_webhook_setup,
    .read_webhook_setup = viber_read_webhook_setup,
};
