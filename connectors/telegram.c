/* telegram.c - the Telegram Bot API connector (webhooks with a secret token, or getUpdates
 * long polling).
 *
 * Pure translator: bytes and configuration in, events and request values out.  Telegram
 * queues updates per chat and keeps redelivering a refused one for about 24 h, stalling
 * every later update of that chat, so parse answers DB_OK with zero events for any valid
 * update it does not use and reserves DB_EINVAL for bodies that are really broken.
 * Mapping, keys and limits: docs/platforms/telegram.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "deskbridge/connector.h"
#include "util/crypto.h"
#include "util/json.h"

#define TG_PLATFORM "telegram"
#define TG_DEFAULT_API_BASE "https://api.telegram.org"
#define TG_SECRET_HEADER "X-Telegram-Bot-Api-Secret-Token"
#define TG_SECRET_MAX 256
/* Telegram clamps getUpdates' timeout to 50 s; asking for more only hides our own value. */
#define TG_POLL_TIMEOUT_MAX 50
/* Chat, user and message ids are at most 64-bit: 20 digits and a sign fit comfortably. */
#define TG_ID_MAX 32

struct tg_acct {
    char *account;     /* account id, written into every event */
    char *token;       /* "<bot id>:<secret>"; lives only in request URLs */
    char *secret;      /* webhook_secret, NULL in polling mode */
    char *secret_prev; /* webhook_secret_previous, NULL when not rotating */
    char *api_base;    /* without trailing '/' */
};

/* Update members parse understands; also sent as allowed_updates so Telegram delivers
 * message_reaction (which it leaves out unless asked) and nothing we would drop. */
static const char *const tg_update_kinds[] = {
    "message",        "edited_message", "channel_post",   "edited_channel_post",
    "business_message", "edited_business_message", "callback_query", "my_chat_member",
    "message_reaction", NULL};

/* ------------------------------------------------------------------------------------
 * account */

static void wipe_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void tg_account_free(void *p)
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
    if (strncmp(b, "https://", 8) != 0 && strncmp(b, "http://", 7) != 0) return 0;
    for (const char *p = b; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f) return 0;
    return 1;
}

static int tg_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
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
        tg_account_free(a);
        return db_conf_error(e, sec, base, "api_base", "has no host");
    }
    *acct = a;
    return DB_OK;
fail:
    tg_account_free(a);
    return db_err_set(e, DB_ENOMEM, "out of memory building telegram account");
}

/* ------------------------------------------------------------------------------------
 * verify */

static int tg_verify(const void *acct, const struct db_inbound *in, struct db_err *e)
{
    const struct tg_acct *a = acct;
    if (!a->secret)
        return db_err_set(e, DB_EAUTH, "webhook mode not configured for this account");
    const char *got = db_headers_get(in->headers, TG_SECRET_HEADER);
    if (!got) return db_err_set(e, DB_EAUTH, "missing " TG_SECRET_HEADER " header");
    /* Both comparisons always run so timing does not tell which secret is current. */
    int ok = db_ct_streq(got, a->secret);
    ok |= db_ct_streq(got, a->secret_prev ? a->secret_prev : a->secret);
    if (!ok) return db_err_set(e, DB_EAUTH, "wrong " TG_SECRET_HEADER " header");
    return DB_OK;
}

/* ------------------------------------------------------------------------------------
 * parse helpers.  `where` is the JSON path of the object being read, so errors name the
 * offending field ("message.chat.id"). */

static int set_str(json_t *obj, const char *key, const char *s, struct db_err *e)
{
    int rc = db_event_set_str(obj, key, s);
    if (rc == DB_EINVAL) return db_err_set(e, DB_EINVAL, "%s is not valid UTF-8", key);
    if (rc != DB_OK) return db_err_set(e, rc, "out of memory");
    return DB_OK;
}

static int set_int(json_t *obj, const char *key, int64_t v, struct db_err *e)
{
    if (db_event_set_int(obj, key, v) != DB_OK) return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

static int set_new(json_t *obj, const char *key, json_t *v, struct db_err *e)
{
    if (!v || json_object_set_new(obj, key, v) != 0)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

/* Required integer id obj.key (digit strings accepted too) into buf. */
static int need_id(const json_t *obj, const char *key, const char *where, char *buf,
                   struct db_err *e)
{
    if (db_json_id(json_object_get(obj, key), 1, buf, TG_ID_MAX) != DB_OK)
        return db_err_set(e, DB_EINVAL, "%s.%s missing or not an integer id", where, key);
    return DB_OK;
}

/* Required object obj.key. */
static int need_obj(const json_t *obj, const char *key, const char *where, json_t **out,
                    struct db_err *e)
{
    *out = json_object_get(obj, key);
    if (!json_is_object(*out))
        return db_err_set(e, DB_EINVAL, "%s.%s missing or not an object", where, key);
    return DB_OK;
}

/* Optional string obj.key: *out is NULL when absent; a non-string is an error. */
static int opt_str(const json_t *obj, const char *key, const char *where, const char **out,
                   struct db_err *e)
{
    const json_t *v = json_object_get(obj, key);
    *out = json_string_value(v);
    if (v && !*out) return db_err_set(e, DB_EINVAL, "%s.%s must be a string", where, key);
    return DB_OK;
}

/* Optional integer obj.key; *present says whether it was there. */
static int opt_int(const json_t *obj, const char *key, const char *where, int64_t *out,
                   int *present, struct db_err *e)
{
    const json_t *v = json_object_get(obj, key);
    *present = v != NULL;
    if (!v) return DB_OK;
    if (!json_is_integer(v))
        return db_err_set(e, DB_EINVAL, "%s.%s must be an integer", where, key);
    *out = json_integer_value(v);
    return DB_OK;
}

/* Copies metadata members only when they carry the expected type: they are descriptive,
 * and refusing an update over a malformed width would stall the whole chat. */
static int copy_meta_str(json_t *dst, const char *dkey, const json_t *src, const char *skey,
                         struct db_err *e)
{
    const char *s = db_json_str(src, skey);
    return s ? set_str(dst, dkey, s, e) : DB_OK;
}

static int copy_meta_int(json_t *dst, const char *dkey, const json_t *src, const char *skey,
                         struct db_err *e)
{
    const json_t *v = json_object_get(src, skey);
    return json_is_integer(v) ? set_int(dst, dkey, json_integer_value(v), e) : DB_OK;
}

/* A "sender" object from a User (from) or a Chat (sender_chat); not set when it would be
 * empty. */
static int set_sender(json_t *ev, const json_t *who, int is_chat, struct db_err *e)
{
    char name[512] = "";
    const char *first = db_json_str(who, is_chat ? "title" : "first_name");
    const char *last = is_chat ? NULL : db_json_str(who, "last_name");
    if (first && last)
        snprintf(name, sizeof name, "%s %s", first, last);
    else if (first || last)
        snprintf(name, sizeof name, "%s", first ? first : last);
    json_t *s = json_object();
    if (!s) return db_err_set(e, DB_ENOMEM, "out of memory");
    /* snprintf may cut inside a UTF-8 sequence for absurd names; set_str then refuses, so
     * fall back to the first name alone. */
    int rc = name[0] ? db_event_set_str(s, "name", name) : DB_OK;
    if (rc == DB_EINVAL && first) rc = db_event_set_str(s, "name", first);
    if (rc != DB_OK) rc = db_err_set(e, rc, "sender name unusable");
    if (rc == DB_OK) rc = copy_meta_str(s, "username", who, "username", e);
    if (rc == DB_OK && !is_chat) rc = copy_meta_str(s, "language", who, "language_code", e);
    if (rc != DB_OK || json_object_size(s) == 0) {
        json_decref(s);
        return rc;
    }
    return set_new(ev, "sender", s, e);
}

/* external_user_id and sender from `from`, else from `sender_chat` (channel posts and
 * anonymous admins).  Neither is an error only when allow_none is set. */
static int set_author(json_t *ev, const json_t *m, const char *where, int allow_none,
                      struct db_err *e)
{
    char id[TG_ID_MAX];
    int rc;
    const json_t *from = json_object_get(m, "from");
    const json_t *schat = json_object_get(m, "sender_chat");
    if (from) {
        if (!json_is_object(from))
            return db_err_set(e, DB_EINVAL, "%s.from must be an object", where);
        char path[96];
        snprintf(path, sizeof path, "%s.from", where);
        if ((rc = need_id(from, "id", path, id, e)) != DB_OK) return rc;
        if ((rc = set_str(ev, "external_user_id", id, e)) != DB_OK) return rc;
        return set_sender(ev, from, 0, e);
    }
    if (schat) {
        if (!json_is_object(schat))
            return db_err_set(e, DB_EINVAL, "%s.sender_chat must be an object", where);
        char path[96];
        snprintf(path, sizeof path, "%s.sender_chat", where);
        if ((rc = need_id(schat, "id", path, id, e)) != DB_OK) return rc;
        if ((rc = set_str(ev, "external_user_id", id, e)) != DB_OK) return rc;
        return set_sender(ev, schat, 1, e);
    }
    if (allow_none) return DB_OK;
    return db_err_set(e, DB_EINVAL, "%s.from missing", where);
}

/* Sets the chat of ev from obj.chat.id. */
static int set_chat_from(json_t *ev, const json_t *obj, const char *where,
                         const json_t **chat_out, struct db_err *e)
{
    json_t *chat;
    char id[TG_ID_MAX], path[96];
    int rc = need_obj(obj, "chat", where, &chat, e);
    if (rc != DB_OK) return rc;
    snprintf(path, sizeof path, "%s.chat", where);
    if ((rc = need_id(chat, "id", path, id, e)) != DB_OK) return rc;
    if (chat_out) *chat_out = chat;
    if (db_event_set_chat(ev, id) != DB_OK) return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

/* media object of one file (Video, Audio, Document, a PhotoSize...). */
static int media_object(const json_t *f, const char *path, json_t **out, struct db_err *e)
{
    *out = NULL;
    const char *fid = db_json_str(f, "file_id");
    if (!json_is_object(f) || !fid || !*fid)
        return db_err_set(e, DB_EINVAL, "%s.file_id missing or not a string", path);
    json_t *m = json_object();
    if (!m) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = set_str(m, "id", fid, e);
    if (rc == DB_OK) rc = copy_meta_str(m, "mime_type", f, "mime_type", e);
    if (rc == DB_OK) rc = copy_meta_int(m, "size", f, "file_size", e);
    if (rc == DB_OK) rc = copy_meta_str(m, "file_name", f, "file_name", e);
    if (rc == DB_OK) rc = copy_meta_int(m, "width", f, "width", e);
    if (rc == DB_OK) rc = copy_meta_int(m, "height", f, "height", e);
    if (rc == DB_OK) rc = copy_meta_int(m, "duration", f, "duration", e);
    if (rc == DB_OK) rc = copy_meta_str(m, "emoji", f, "emoji", e); /* stickers */
    if (rc != DB_OK) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return DB_OK;
}

/* Telegram sends every resolution of a photo; agents want the best, which is normally the
 * last, but pick by area (then bytes) rather than trust the order. */
static int largest_photo(const json_t *arr, const char *where, json_t **out, struct db_err *e)
{
    const json_t *best = NULL;
    int64_t best_area = -1, best_size = -1;
    size_t i;
    const json_t *p;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return db_err_set(e, DB_EINVAL, "%s.photo must be a non-empty array", where);
    json_array_foreach(arr, i, p) {
        if (!json_is_object(p) || !db_json_str(p, "file_id"))
            return db_err_set(e, DB_EINVAL, "%s.photo[%zu].file_id missing or not a string",
                              where, i);
        int64_t w = json_integer_value(json_object_get(p, "width"));
        int64_t h = json_integer_value(json_object_get(p, "height"));
        int64_t sz = json_integer_value(json_object_get(p, "file_size"));
        int64_t area = (w > 0 && h > 0 && w < INT32_MAX && h < INT32_MAX) ? w * h : 0;
        if (area > best_area || (area == best_area && sz > best_size)) {
            best = p;
            best_area = area;
            best_size = sz;
        }
    }
    char path[96];
    snprintf(path, sizeof path, "%s.photo[]", where);
    return media_object(best, path, out, e);
}

static int location_object(const json_t *loc, const char *path, json_t **out, struct db_err *e)
{
    *out = NULL;
    const json_t *lat = json_object_get(loc, "latitude");
    const json_t *lon = json_object_get(loc, "longitude");
    if (!json_is_number(lat) || !json_is_number(lon))
        return db_err_set(e, DB_EINVAL, "%s.latitude/longitude missing or not numbers", path);
    *out = json_pack("{s:f, s:f}", "latitude", json_number_value(lat), "longitude",
                     json_number_value(lon));
    return *out ? DB_OK : db_err_set(e, DB_ENOMEM, "out of memory");
}

static int contact_object(const json_t *c, const char *path, json_t **out, struct db_err *e)
{
    *out = NULL;
    const char *phone = db_json_str(c, "phone_number");
    if (!phone) return db_err_set(e, DB_EINVAL, "%s.phone_number missing or not a string", path);
    json_t *o = json_object();
    if (!o) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = set_str(o, "phone_number", phone, e);
    if (rc == DB_OK) rc = copy_meta_str(o, "first_name", c, "first_name", e);
    if (rc == DB_OK) rc = copy_meta_str(o, "last_name", c, "last_name", e);
    const json_t *uid = json_object_get(c, "user_id");
    if (rc == DB_OK && uid) {
        char id[TG_ID_MAX];
        if (db_json_id(uid, 1, id, sizeof id) != DB_OK)
            rc = db_err_set(e, DB_EINVAL, "%s.user_id not an integer id", path);
        else
            rc = set_str(o, "user_id", id, e);
    }
    if (rc != DB_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return DB_OK;
}

struct media_kind {
    const char *field; /* Message member */
    const char *type;  /* contract type */
};

/* animation comes first: Telegram also fills `document` on GIFs for old clients. */
static const struct media_kind tg_media_kinds[] = {
    {"animation", "animation"}, {"video", "video"},       {"video_note", "video"},
    {"voice", "voice"},         {"audio", "audio"},       {"document", "document"},
    {"sticker", "sticker"},     {NULL, NULL}};

/* Sets type, media, location or contact of ev from Message m. */
static int set_content(json_t *ev, const json_t *m, const char *where, struct db_err *e)
{
    char path[96];
    json_t *obj = NULL;
    int rc;
    for (int i = 0; tg_media_kinds[i].field; i++) {
        const json_t *f = json_object_get(m, tg_media_kinds[i].field);
        if (!f) continue;
        snprintf(path, sizeof path, "%s.%s", where, tg_media_kinds[i].field);
        if ((rc = media_object(f, path, &obj, e)) != DB_OK) return rc;
        if ((rc = set_new(ev, "media", obj, e)) != DB_OK) return rc;
        return set_str(ev, "type", tg_media_kinds[i].type, e);
    }
    if (json_object_get(m, "photo")) {
        if ((rc = largest_photo(json_object_get(m, "photo"), where, &obj, e)) != DB_OK)
            return rc;
        if ((rc = set_new(ev, "media", obj, e)) != DB_OK) return rc;
        return set_str(ev, "type", "image", e);
    }
    if (json_object_get(m, "location")) {
        snprintf(path, sizeof path, "%s.location", where);
        if ((rc = location_object(json_object_get(m, "location"), path, &obj, e)) != DB_OK)
            return rc;
        if ((rc = set_new(ev, "location", obj, e)) != DB_OK) return rc;
        return set_str(ev, "type", "location", e);
    }
    if (json_object_get(m, "contact")) {
        snprintf(path, sizeof path, "%s.contact", where);
        if ((rc = contact_object(json_object_get(m, "contact"), path, &obj, e)) != DB_OK)
            return rc;
        if ((rc = set_new(ev, "contact", obj, e)) != DB_OK) return rc;
        return set_str(ev, "type", "contact", e);
    }
    if (json_object_get(m, "text")) return set_str(ev, "type", "text", e);
    return set_str(ev, "type", "unsupported", e);
}

/* message / channel_post / business_message (kind "message") and their edited_* forms
 * (kind "edit").  *out is a new reference. */
static int message_event(const struct tg_acct *a, const char *kind, const char *where,
                         const json_t *m, json_t **out, struct db_err *e)
{
    char id[TG_ID_MAX];
    const char *text, *caption, *group;
    int64_t date = 0, edit_date = 0;
    int has_date, has_edit;
    int rc;
    *out = NULL;
    if (!json_is_object(m)) return db_err_set(e, DB_EINVAL, "%s must be an object", where);
    json_t *ev = db_event_new(kind, TG_PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");

    if ((rc = set_chat_from(ev, m, where, NULL, e)) != DB_OK) goto fail;
    if ((rc = need_id(m, "message_id", where, id, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "external_message_id", id, e)) != DB_OK) goto fail;
    if ((rc = set_author(ev, m, where, 1, e)) != DB_OK) goto fail;
    if ((rc = opt_int(m, "date", where, &date, &has_date, e)) != DB_OK) goto fail;
    if ((rc = opt_int(m, "edit_date", where, &edit_date, &has_edit, e)) != DB_OK) goto fail;
    /* An edit happens at edit_date; date stays the original send time. */
    if (has_edit && strcmp(kind, "edit") == 0) {
        if ((rc = set_int(ev, "timestamp", edit_date, e)) != DB_OK) goto fail;
    } else if (has_date) {
        if ((rc = set_int(ev, "timestamp", date, e)) != DB_OK) goto fail;
    }
    if (has_edit && (rc = set_int(ev, "edit_date", edit_date, e)) != DB_OK) goto fail;

    if ((rc = opt_str(m, "text", where, &text, e)) != DB_OK) goto fail;
    if ((rc = opt_str(m, "caption", where, &caption, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "text", text ? text : caption, e)) != DB_OK) goto fail;
    if ((rc = set_content(ev, m, where, e)) != DB_OK) goto fail;

    if ((rc = opt_str(m, "media_group_id", where, &group, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "media_group_id", group, e)) != DB_OK) goto fail;
    const json_t *reply = json_object_get(m, "reply_to_message");
    if (reply) {
        char path[96];
        snprintf(path, sizeof path, "%s.reply_to_message", where);
        if (!json_is_object(reply)) {
            rc = db_err_set(e, DB_EINVAL, "%s must be an object", path);
            goto fail;
        }
        if ((rc = need_id(reply, "message_id", path, id, e)) != DB_OK) goto fail;
        if ((rc = set_str(ev, "reply_to", id, e)) != DB_OK) goto fail;
    }
    *out = ev;
    return DB_OK;
fail:
    json_decref(ev);
    return rc;
}

static int callback_event(const struct tg_acct *a, const json_t *q, json_t **out,
                          struct db_err *e)
{
    const char *where = "callback_query", *data;
    char id[TG_ID_MAX];
    int rc;
    *out = NULL;
    if (!json_is_object(q)) return db_err_set(e, DB_EINVAL, "%s must be an object", where);
    json_t *ev = db_event_new("callback", TG_PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");

    const char *qid = db_json_str(q, "id");
    if (!qid || !*qid) {
        rc = db_err_set(e, DB_EINVAL, "%s.id missing or not a string", where);
        goto fail;
    }
    if ((rc = set_str(ev, "external_message_id", qid, e)) != DB_OK) goto fail;
    if ((rc = set_author(ev, q, where, 0, e)) != DB_OK) goto fail;
    if ((rc = opt_str(q, "data", where, &data, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "callback_data", data, e)) != DB_OK) goto fail;

    const json_t *msg = json_object_get(q, "message");
    if (msg) {
        /* Also an InaccessibleMessage (date 0) still carries chat and message_id. */
        if (!json_is_object(msg)) {
            rc = db_err_set(e, DB_EINVAL, "%s.message must be an object", where);
            goto fail;
        }
        if ((rc = set_chat_from(ev, msg, "callback_query.message", NULL, e)) != DB_OK)
            goto fail;
        if ((rc = need_id(msg, "message_id", "callback_query.message", id, e)) != DB_OK)
            goto fail;
        if ((rc = set_str(ev, "reply_to", id, e)) != DB_OK) goto fail;
    } else {
        /* Inline-mode buttons have no message: the user's private chat is the best
         * conversation to file the click under. */
        const char *uid = json_string_value(json_object_get(ev, "external_user_id"));
        if (db_event_set_chat(ev, uid) != DB_OK) {
            rc = db_err_set(e, DB_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = ev;
    return DB_OK;
fail:
    json_decref(ev);
    return rc;
}

static int member_is_in(const json_t *cm)
{
    const char *st = db_json_str(cm, "status");
    if (!st) return 0;
    if (strcmp(st, "restricted") == 0) return json_is_true(json_object_get(cm, "is_member"));
    return strcmp(st, "member") == 0 || strcmp(st, "administrator") == 0 ||
           strcmp(st, "creator") == 0;
}

static int membership_event(const struct tg_acct *a, const json_t *u, json_t **out,
                            struct db_err *e)
{
    const char *where = "my_chat_member";
    const json_t *chat = NULL, *oldm, *newm;
    int64_t date = 0;
    int has_date, rc;
    *out = NULL;
    if (!json_is_object(u)) return db_err_set(e, DB_EINVAL, "%s must be an object", where);
    oldm = json_object_get(u, "old_chat_member");
    newm = json_object_get(u, "new_chat_member");
    if (!db_json_str(newm, "status"))
        return db_err_set(e, DB_EINVAL, "%s.new_chat_member.status missing", where);
    json_t *ev = db_event_new("membership", TG_PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");

    if ((rc = set_chat_from(ev, u, where, &chat, e)) != DB_OK) goto fail;
    if ((rc = set_author(ev, u, where, 1, e)) != DB_OK) goto fail;
    if ((rc = opt_int(u, "date", where, &date, &has_date, e)) != DB_OK) goto fail;
    if (has_date && (rc = set_int(ev, "timestamp", date, e)) != DB_OK) goto fail;

    const char *type = db_json_str(chat, "type");
    const char *new_st = db_json_str(newm, "status");
    const char *old_st = db_json_str(oldm, "status");
    int private_chat = type && strcmp(type, "private") == 0;
    const char *what;
    /* In a private chat "kicked" is the user pressing Stop/Block; in groups the same
     * statuses mean the bot was removed or added back. */
    if (private_chat && strcmp(new_st, "kicked") == 0)
        what = "blocked";
    else if (private_chat && old_st && strcmp(old_st, "kicked") == 0 && member_is_in(newm))
        what = "unblocked";
    else if (member_is_in(newm))
        what = "joined";
    else
        what = "left";
    if ((rc = set_str(ev, "membership", what, e)) != DB_OK) goto fail;
    *out = ev;
    return DB_OK;
fail:
    json_decref(ev);
    return rc;
}

static int reaction_event(const struct tg_acct *a, const json_t *r, json_t **out,
                          struct db_err *e)
{
    const char *where = "message_reaction";
    char id[TG_ID_MAX];
    int64_t date = 0;
    int has_date, rc;
    *out = NULL;
    if (!json_is_object(r)) return db_err_set(e, DB_EINVAL, "%s must be an object", where);
    const json_t *nr = json_object_get(r, "new_reaction");
    if (!json_is_array(nr))
        return db_err_set(e, DB_EINVAL, "%s.new_reaction missing or not an array", where);
    json_t *ev = db_event_new("reaction", TG_PLATFORM, a->account);
    json_t *emojis = json_array();
    if (!ev || !emojis) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = set_chat_from(ev, r, where, NULL, e)) != DB_OK) goto fail;
    if ((rc = need_id(r, "message_id", where, id, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "reply_to", id, e)) != DB_OK) goto fail;
    /* The reacting user, or actor_chat for anonymous reactions. */
    const json_t *user = json_object_get(r, "user");
    const json_t *actor = json_object_get(r, "actor_chat");
    if (json_is_object(user) || json_is_object(actor)) {
        const json_t *who = json_is_object(user) ? user : actor;
        if ((rc = need_id(who, "id", json_is_object(user) ? "message_reaction.user"
                                                          : "message_reaction.actor_chat",
                          id, e)) != DB_OK)
            goto fail;
        if ((rc = set_str(ev, "external_user_id", id, e)) != DB_OK) goto fail;
        if ((rc = set_sender(ev, who, who == actor, e)) != DB_OK) goto fail;
    }
    if ((rc = opt_int(r, "date", where, &date, &has_date, e)) != DB_OK) goto fail;
    if (has_date && (rc = set_int(ev, "timestamp", date, e)) != DB_OK) goto fail;
    /* Custom and paid reactions have no emoji an agent could show; only plain emoji are
     * listed.  An empty array means the user took their reaction back. */
    size_t i;
    const json_t *rt;
    json_array_foreach(nr, i, rt) {
        const char *emoji = db_json_str(rt, "emoji");
        const char *rtype = db_json_str(rt, "type");
        if (!emoji || !rtype || strcmp(rtype, "emoji") != 0) continue;
        if (json_array_append_new(emojis, json_string(emoji)) != 0) {
            rc = db_err_set(e, DB_ENOMEM, "out of memory");
            goto fail;
        }
    }
    rc = set_new(ev, "reaction", emojis, e);
    emojis = NULL;
    if (rc != DB_OK) goto fail;
    *out = ev;
    return DB_OK;
fail:
    json_decref(emojis);
    json_decref(ev);
    return rc;
}

/* One Update object -> *ev (new reference), or *ev NULL for a kind we do not use.  Its
 * update_id goes to *update_id. */
static int update_event(const struct tg_acct *a, const json_t *upd, int64_t *update_id,
                        json_t **ev, struct db_err *e)
{
    *ev = NULL;
    const json_t *uid = json_object_get(upd, "update_id");
    /* INT64_MAX is refused too: no offset could confirm it. */
    if (!json_is_integer(uid) || json_integer_value(uid) < 0 ||
        json_integer_value(uid) == INT64_MAX)
        return db_err_set(e, DB_EINVAL, "update_id missing or not a non-negative integer");
    *update_id = json_integer_value(uid);

    static const struct {
        const char *key, *kind;
    } messages[] = {{"message", "message"},
                    {"channel_post", "message"},
                    {"business_message", "message"},
                    {"edited_message", "edit"},
                    {"edited_channel_post", "edit"},
                    {"edited_business_message", "edit"},
                    {NULL, NULL}};
    for (int i = 0; messages[i].key; i++) {
        const json_t *m = json_object_get(upd, messages[i].key);
        if (m) return message_event(a, messages[i].kind, messages[i].key, m, ev, e);
    }
    const json_t *v;
    if ((v = json_object_get(upd, "callback_query"))) return callback_event(a, v, ev, e);
    if ((v = json_object_get(upd, "my_chat_member"))) return membership_event(a, v, ev, e);
    if ((v = json_object_get(upd, "message_reaction"))) return reaction_event(a, v, ev, e);
    return DB_OK;
}

/* Appends the event of one update to out; nothing on error or for unused kinds. */
static int push_update(const struct tg_acct *a, const json_t *upd, struct db_event_list *out,
                       int64_t *update_id, struct db_err *e)
{
    json_t *ev = NULL;
    int rc = update_event(a, upd, update_id, &ev, e);
    if (rc != DB_OK || !ev) return rc;
    char key[TG_ID_MAX + 2];
    snprintf(key, sizeof key, "u:%" PRId64, *update_id);
    char *dk = strdup(key);
    if (!dk) {
        json_decref(ev);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    if (db_event_list_push(out, ev, dk) != DB_OK)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

static int tg_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                    struct db_err *e)
{
    json_t *upd;
    int64_t update_id;
    int rc = db_json_parse_object(in->body, in->body_len, &upd, e);
    if (rc != DB_OK) return rc;
    rc = push_update(acct, upd, out, &update_id, e);
    json_decref(upd);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * requests */

/* "<api_base>/bot<token>/<method>"; malloc'd, caller frees; NULL on ENOMEM. */
static char *method_url(const struct tg_acct *a, const char *method)
{
    char *url = NULL;
    if (asprintf(&url, "%s/bot%s/%s", a->api_base, a->token, method) < 0) return NULL;
    return url;
}

/* POSTs obj (borrowed) as JSON to method. */
static int post_method(const struct tg_acct *a, const char *method, const json_t *obj,
                       struct db_http_req *req, struct db_err *e)
{
    char *url = method_url(a, method);
    char *body = db_json_dump(obj);
    int rc = DB_ENOMEM;
    if (url && body) rc = db_http_req_post_json(req, url, body);
    if (url) explicit_bzero(url, strlen(url));
    free(url);
    free(body);
    if (rc != DB_OK) return db_err_set(e, rc, "out of memory building %s request", method);
    return DB_OK;
}

/* Telegram accepts chat_id as Integer or String (@channelusername); send numbers as
 * numbers so the exact 64-bit value reaches it. */
static json_t *chat_id_value(const char *s)
{
    const char *p = s + (*s == '-');
    int digits = *p != '\0';
    for (; *p && digits; p++) digits = *p >= '0' && *p <= '9';
    if (digits) {
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno == 0 && *end == '\0') return json_integer(v);
    }
    return json_string(s);
}

static const struct {
    const char *type, *method, *field;
} tg_send_media[] = {{"image", "sendPhoto", "photo"},
                     {"video", "sendVideo", "video"},
                     {"audio", "sendAudio", "audio"},
                     {"voice", "sendVoice", "voice"},
                     {"document", "sendDocument", "document"},
                     {"sticker", "sendSticker", "sticker"},
                     {"animation", "sendAnimation", "animation"},
                     {NULL, NULL, NULL}};

static int tg_build_send(const void *acct, const struct db_outbound *msg,
                         struct db_http_req *req, struct db_err *e)
{
    const struct tg_acct *a = acct;
    const char *method = NULL;
    int rc;
    if (!msg->chat_id || !*msg->chat_id)
        return db_err_set(e, DB_EINVAL, "outbound message has no chat_id");
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if ((rc = set_new(body, "chat_id", chat_id_value(msg->chat_id), e)) != DB_OK) goto fail;

    const char *media = msg->media_id ? msg->media_id : msg->media_url;
    const json_t *loc = json_object_get(msg->extra, "location");
    if (loc) {
        const json_t *lat = json_object_get(loc, "latitude");
        const json_t *lon = json_object_get(loc, "longitude");
        if (!json_is_number(lat) || !json_is_number(lon)) {
            rc = db_err_set(e, DB_EINVAL, "location needs numeric latitude and longitude");
            goto fail;
        }
        /* sendLocation has no caption: refuse rather than drop the agent's words. */
        if (msg->text && *msg->text) {
            rc = db_err_set(e, DB_EINVAL, "a location cannot carry text on Telegram");
            goto fail;
        }
        method = "sendLocation";
        if ((rc = set_new(body, "latitude", json_real(json_number_value(lat)), e)) != DB_OK ||
            (rc = set_new(body, "longitude", json_real(json_number_value(lon)), e)) != DB_OK)
            goto fail;
    } else if (media || msg->media_type) {
        if (!media || !*media) {
            rc = db_err_set(e, DB_EINVAL, "media_type given without media_url or media_id");
            goto fail;
        }
        if (!msg->media_type) {
            rc = db_err_set(e, DB_EINVAL, "media_url/media_id given without media_type");
            goto fail;
        }
        int i = 0;
        while (tg_send_media[i].type && strcmp(tg_send_media[i].type, msg->media_type) != 0) i++;
        if (!tg_send_media[i].type) {
            rc = db_err_set(e, DB_EINVAL, "media type '%.40s' cannot be sent to Telegram",
                            msg->media_type);
            goto fail;
        }
        method = tg_send_media[i].method;
        if ((rc = set_str(body, tg_send_media[i].field, media, e)) != DB_OK) goto fail;
        /* sendSticker has no caption: a text with a sticker is refused, not dropped. */
        if (msg->text && *msg->text && strcmp(msg->media_type, "sticker") == 0) {
            rc = db_err_set(e, DB_EINVAL, "a sticker cannot carry text on Telegram");
            goto fail;
        }
        if (msg->text && *msg->text && (rc = set_str(body, "caption", msg->text, e)) != DB_OK)
            goto fail;
    } else {
        if (!msg->text || !*msg->text) {
            rc = db_err_set(e, DB_EINVAL, "outbound message has neither text nor media");
            goto fail;
        }
        method = "sendMessage";
        if ((rc = set_str(body, "text", msg->text, e)) != DB_OK) goto fail;
    }

    if (msg->reply_to) {
        char *end;
        errno = 0;
        long long mid = strtoll(msg->reply_to, &end, 10);
        if (errno || end == msg->reply_to || *end || mid <= 0) {
            rc = db_err_set(e, DB_EINVAL, "reply_to must be a Telegram message id");
            goto fail;
        }
        if ((rc = set_new(body, "reply_parameters", json_pack("{s:I}", "message_id",
                                                              (json_int_t)mid), e)) != DB_OK)
            goto fail;
    }
    rc = post_method(a, method, body, req, e);
fail:
    json_decref(body);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * answers */

/* Parsed answer body (new reference) or NULL when it is not a JSON object. */
static json_t *answer_json(const struct db_http_resp *resp)
{
    json_t *j = NULL;
    if (db_json_parse_object(resp->body, resp->body_len, &j, NULL) != DB_OK) return NULL;
    return j;
}

static const char *answer_description(const json_t *j, long status)
{
    const char *d = db_json_str(j, "description");
    if (d && *d) return d;
    return status == 0 ? "no answer from Telegram" : "Telegram gave no description";
}

/* A seconds value from parameters.retry_after, else the Retry-After header; -1 if none. */
static int64_t retry_after_s(const json_t *j, const struct db_http_resp *resp)
{
    const json_t *ra = json_object_get(json_object_get(j, "parameters"), "retry_after");
    if (json_is_integer(ra) && json_integer_value(ra) >= 0) return json_integer_value(ra);
    const char *h = resp->headers ? db_headers_get(resp->headers, "Retry-After") : NULL;
    if (h && *h) {
        char *end;
        errno = 0;
        long long v = strtoll(h, &end, 10);
        if (!errno && *end == '\0' && v >= 0) return v;
    }
    return -1;
}

/* Telegram's status: the HTTP one, or error_code when a proxy answered 200 around it. */
static long answer_status(const json_t *j, long http)
{
    const json_t *ec = json_object_get(j, "error_code");
    if (json_is_integer(ec) && json_is_false(json_object_get(j, "ok")) &&
        (http < 300 || json_integer_value(ec) == 429))
        return (long)json_integer_value(ec);
    return http;
}

static int tg_read_send(const void *acct, const struct db_http_resp *resp,
                        struct db_send_result *res, struct db_err *e)
{
    (void)acct;
    memset(res, 0, sizeof *res);
    res->outcome = DB_SEND_RETRY;
    if (resp->status == 0) {
        snprintf(res->err_msg, sizeof res->err_msg, "transport error: %s",
                 resp->transport_error ? resp->transport_error : "no answer");
        return DB_OK;
    }
    json_t *j = answer_json(resp);
    long st = answer_status(j, resp->status);
    const char *desc = answer_description(j, resp->status);
    int rc = DB_OK;

    if (st == 429) {
        int64_t s = retry_after_s(j, resp);
        /* A day is longer than any retry_after Telegram hands out; the cap only guards the
         * multiplication against a hostile value. */
        if (s > 86400) s = 86400;
        res->retry_after_ms = s > 0 ? s * 1000 : 0;
        res->per_chat = 1;
        snprintf(res->err_code, sizeof res->err_code, "429");
        snprintf(res->err_msg, sizeof res->err_msg, "%s", desc);
    } else if (st >= 200 && st < 300) {
        const json_t *mid = json_object_get(json_object_get(j, "result"), "message_id");
        if (json_is_true(json_object_get(j, "ok")) &&
            db_json_id(mid, 1, res->external_id, sizeof res->external_id) == DB_OK) {
            res->outcome = DB_SEND_SENT;
        } else {
            res->external_id[0] = '\0';
            snprintf(res->err_msg, sizeof res->err_msg, "unreadable answer to a send");
            rc = db_err_set(e, DB_EINVAL, "Telegram answered %ld without a message_id",
                            resp->status);
        }
    } else if (st >= 500) {
        snprintf(res->err_code, sizeof res->err_code, "%ld", st);
        snprintf(res->err_msg, sizeof res->err_msg, "%s", desc);
    } else {
        /* 4xx and oddities (3xx from a misconfigured api_base): retrying cannot help. */
        res->outcome = DB_SEND_FAILED;
        snprintf(res->err_code, sizeof res->err_code, "%ld", st);
        const json_t *mig =
            json_object_get(json_object_get(j, "parameters"), "migrate_to_chat_id");
        char newid[TG_ID_MAX];
        if (st == 400 && db_json_id(mig, 1, newid, sizeof newid) == DB_OK)
            snprintf(res->err_msg, sizeof res->err_msg,
                     "group became supergroup %s: send to that chat id", newid);
        else
            snprintf(res->err_msg, sizeof res->err_msg, "%s", desc);
    }
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * polling */

static json_t *allowed_updates(void)
{
    json_t *arr = json_array();
    for (int i = 0; arr && tg_update_kinds[i]; i++)
        if (json_array_append_new(arr, json_string(tg_update_kinds[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

static int tg_build_poll(const void *acct, const char *cursor, int timeout_s,
                         struct db_http_req *req, struct db_err *e)
{
    int rc;
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (cursor) {
        char *end;
        errno = 0;
        long long off = strtoll(cursor, &end, 10);
        if (errno || end == cursor || *end) {
            rc = db_err_set(e, DB_EINVAL, "poll cursor is not an update id");
            goto fail;
        }
        if ((rc = set_new(body, "offset", json_integer(off), e)) != DB_OK) goto fail;
    }
    if (timeout_s < 0) timeout_s = 0;
    if (timeout_s > TG_POLL_TIMEOUT_MAX) timeout_s = TG_POLL_TIMEOUT_MAX;
    if ((rc = set_new(body, "timeout", json_integer(timeout_s), e)) != DB_OK) goto fail;
    if ((rc = set_new(body, "allowed_updates", allowed_updates(), e)) != DB_OK) goto fail;
    rc = post_method(acct, "getUpdates", body, req, e);
fail:
    json_decref(body);
    return rc;
}

/* Drops the events appended after the first n. */
static void list_truncate(struct db_event_list *l, size_t n)
{
    while (l->n > n) {
        l->n--;
        json_decref(l->v[l->n].json);
        free(l->v[l->n].dedupe_key);
    }
}

static int tg_read_poll(const void *acct, const struct db_http_resp *resp,
                        struct db_event_list *out, char **next_cursor, struct db_err *e)
{
    *next_cursor = NULL;
    if (resp->status == 0)
        return db_err_set(e, DB_EAGAIN, "getUpdates: transport error: %s",
                          resp->transport_error ? resp->transport_error : "no answer");
    json_t *j = answer_json(resp);
    long st = answer_status(j, resp->status);
    const char *desc = answer_description(j, resp->status);
    const json_t *result = json_object_get(j, "result");
    size_t n0 = out->n;
    int64_t max_id = -1;
    int rc = DB_OK;

    if (st == 429 || st >= 500) {
        rc = db_err_set(e, DB_EAGAIN, "getUpdates: HTTP %ld: %.120s", st, desc);
        goto done;
    }
    if (st >= 300) {
        /* 409 (webhook active, or another poller), 401 (token revoked), 404 (no such bot):
         * polling again will not fix any of them. */
        rc = db_err_set(e, DB_EREJECTED, "getUpdates: HTTP %ld: %.120s", st, desc);
        goto done;
    }
    if (!json_is_true(json_object_get(j, "ok")) || !json_is_array(result)) {
        rc = db_err_set(e, DB_EINVAL, "getUpdates: unreadable answer");
        goto done;
    }
    size_t i;
    const json_t *upd;
    json_array_foreach(result, i, upd) {
        int64_t uid = -1;
        struct db_err ue = {0};
        int urc = json_is_object(upd) ? push_update(acct, upd, out, &uid, &ue) : DB_EINVAL;
        /* A broken update is skipped but still confirmed: keeping the offset would make
         * Telegram hand it back forever and hold up everything behind it. */
        if (urc != DB_OK && urc != DB_EINVAL) {
            rc = db_err_set(e, urc, "getUpdates: %s", ue.msg);
            list_truncate(out, n0);
            goto done;
        }
        if (uid > max_id) max_id = uid;
    }
    if (max_id >= 0) {
        if (asprintf(next_cursor, "%" PRId64, max_id + 1) < 0) {
            *next_cursor = NULL;
            list_truncate(out, n0);
            rc = db_err_set(e, DB_ENOMEM, "out of memory");
        }
    }
done:
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * webhook registration and media */

static int tg_build_webhook_setup(const void *acct, const char *public_url,
                                  struct db_http_req *req, struct db_err *e)
{
    const struct tg_acct *a = acct;
    int rc;
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (!public_url) {
        if ((rc = set_new(body, "drop_pending_updates", json_false(), e)) != DB_OK) goto fail;
        rc = post_method(a, "deleteWebhook", body, req, e);
        goto fail;
    }
    if (!a->secret) {
        rc = db_err_set(e, DB_EINVAL,
                        "a webhook needs webhook_secret in the account configuration");
        goto fail;
    }
    if ((rc = set_str(body, "url", public_url, e)) != DB_OK) goto fail;
    if ((rc = set_str(body, "secret_token", a->secret, e)) != DB_OK) goto fail;
    if ((rc = set_new(body, "allowed_updates", allowed_updates(), e)) != DB_OK) goto fail;
    if ((rc = set_new(body, "drop_pending_updates", json_false(), e)) != DB_OK) goto fail;
    rc = post_method(a, "setWebhook", body, req, e);
fail:
    /* The body held the secret. */
    json_decref(body);
    return rc;
}

static int tg_read_webhook_setup(const void *acct, const struct db_http_resp *resp,
                                 struct db_err *e)
{
    (void)acct;
    if (resp->status == 0)
        return db_err_set(e, DB_EREJECTED, "webhook setup: transport error: %s",
                          resp->transport_error ? resp->transport_error : "no answer");
    json_t *j = answer_json(resp);
    int rc = DB_OK;
    if (resp->status < 200 || resp->status >= 300 || !json_is_true(json_object_get(j, "ok")))
        rc = db_err_set(e, DB_EREJECTED, "webhook setup: HTTP %ld: %.120s", resp->status,
                        answer_description(j, resp->status));
    json_decref(j);
    return rc;
}

static int tg_build_media_lookup(const void *acct, const char *media_id,
                                 struct db_http_req *req, struct db_err *e)
{
    if (!media_id || !*media_id) return db_err_set(e, DB_EINVAL, "empty media id");
    json_t *body = json_pack("{s:s}", "file_id", media_id);
    if (!body) return db_err_set(e, DB_EINVAL, "media id is not valid UTF-8");
    int rc = post_method(acct, "getFile", body, req, e);
    json_decref(body);
    return rc;
}

/* file_path is appended to our URL: refuse anything that could leave the file tree. */
static int file_path_ok(const char *p)
{
    if (!*p || *p == '/' || strstr(p, "..")) return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == '%' || *p == '\\' ||
            *p == 0x7f)
            return 0;
    return 1;
}

static int tg_read_media_lookup(const void *acct, const struct db_http_resp *resp,
                                struct db_http_req *dl, struct db_err *e)
{
    const struct tg_acct *a = acct;
    if (resp->status == 0)
        return db_err_set(e, DB_EAGAIN, "getFile: transport error: %s",
                          resp->transport_error ? resp->transport_error : "no answer");
    json_t *j = answer_json(resp);
    long st = answer_status(j, resp->status);
    int rc = DB_OK;
    char *url = NULL;
    if (st == 429 || st >= 500) {
        rc = db_err_set(e, DB_EAGAIN, "getFile: HTTP %ld: %.120s", st,
                        answer_description(j, resp->status));
        goto done;
    }
    if (st < 200 || st >= 300 || !json_is_true(json_object_get(j, "ok"))) {
        rc = db_err_set(e, DB_EREJECTED, "getFile: HTTP %ld: %.120s", st,
                        answer_description(j, resp->status));
        goto done;
    }
    const char *path = db_json_str(json_object_get(j, "result"), "file_path");
    if (!path) {
        /* Telegram omits file_path when the file cannot be downloaded by bots. */
        rc = db_err_set(e, DB_ENOTFOUND, "getFile: no file_path for this file");
        goto done;
    }
    if (!file_path_ok(path)) {
        rc = db_err_set(e, DB_EREJECTED, "getFile: unusable file_path");
        goto done;
    }
    if (asprintf(&url, "%s/file/bot%s/%s", a->api_base, a->token, path) < 0) {
        url = NULL;
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto done;
    }
    dl->method = strdup("GET");
    dl->url = url;
    url = NULL;
    if (!dl->method) {
        db_http_req_clear(dl);
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
    }
done:
    free(url);
    json_decref(j);
    return rc;
}

const struct db_connector db_telegram = {
    .name = "telegram",
    .max_body = 1024 * 1024,
    .max_text_chars = 4096,
    .split_long_text = 1,
    /* Bot API: a media caption is 0-1024 characters (core.telegram.org/bots/api, sendPhoto). */
    .max_caption_chars = 1024,
    .account_new = tg_account_new,
    .account_free = tg_account_free,
    .verify = tg_verify,
    .parse = tg_parse,
    .build_send = tg_build_send,
    .read_send = tg_read_send,
    .build_poll = tg_build_poll,
    .read_poll = tg_read_poll,
    .build_webhook_setup = tg_build_webhook_setup,
    .read_webhook_setup = tg_read_webhook_setup,
    .handshake = NULL,
    .build_media_lookup = tg_build_media_lookup,
    .read_media_lookup = tg_read_media_lookup,
};
