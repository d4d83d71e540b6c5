/* parse.c - one Update object (a webhook body or an entry of getUpdates) into at most one
 * event.  Telegram queues updates per chat and keeps redelivering a refused one for about
 * 24 h, stalling every later update of that chat, so parse answers DB_OK with zero events
 * for any valid update it does not use and reserves DB_EINVAL for bodies that are really
 * broken.  `where` is the JSON path of the object being read, so errors name the offending
 * field ("message.chat.id"). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/json.h"

/* Update members parse understands; also sent as allowed_updates so Telegram delivers
 * message_reaction (which it leaves out unless asked) and nothing we would drop. */
static const char *const tg_update_kinds[] = {
    "message",        "edited_message", "channel_post",   "edited_channel_post",
    "business_message", "edited_business_message", "callback_query", "my_chat_member",
    "message_reaction", "business_connection", NULL};

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

/* The conversation of a message sent through a business connection or into a forum topic
 * (docs/platforms/telegram.md, "Conversations"): external_chat_id stays the chat, the
 * conversation's chat part gets the suffix the send path reads back (db_tg_chat_parse).
 * A business chat is independent of a bot chat with the same id (Bot API, Message.
 * business_connection_id), so it is a conversation of its own; so is a forum topic
 * (Message.is_topic_message).  Messages of the general topic carry no thread id and keep the
 * plain chat id. */
static int set_channel(json_t *ev, const json_t *m, const char *where, struct db_err *e)
{
    const char *bc;
    int64_t thread = 0;
    int has_thread, rc;
    if ((rc = opt_str(m, "business_connection_id", where, &bc, e)) != DB_OK) return rc;
    if ((rc = opt_int(m, "message_thread_id", where, &thread, &has_thread, e)) != DB_OK)
        return rc;
    if (bc && *bc && (rc = set_str(ev, "business_connection_id", bc, e)) != DB_OK) return rc;
    if (has_thread && thread > 0 && (rc = set_int(ev, "message_thread_id", thread, e)) != DB_OK)
        return rc;
    int topic = has_thread && thread > 0 && json_is_true(json_object_get(m, "is_topic_message"));
    if (!(bc && *bc) && !topic) return DB_OK;
    const char *conv = json_string_value(json_object_get(ev, "conversation"));
    char suffix[TG_BC_MAX + 8];
    /* An id outside the safe alphabet stays on the event but is not put into the
     * conversation: a reply could not name it. */
    if (bc && *bc) {
        if (!db_tg_bc_is_valid(bc)) return DB_OK;
        snprintf(suffix, sizeof suffix, ":" TG_BC_TAG ":%s", bc);
    } else {
        snprintf(suffix, sizeof suffix, ":%" PRId64, thread);
    }
    char *full = malloc(strlen(conv) + strlen(suffix) + 1);
    if (!full) return db_err_set(e, DB_ENOMEM, "out of memory");
    strcpy(full, conv);
    strcat(full, suffix);
    rc = set_str(ev, "conversation", full, e);
    free(full);
    return rc;
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
    if ((rc = set_channel(ev, m, where, e)) != DB_OK) goto fail;
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
        /* A button under a business or topic message belongs to that conversation. */
        if ((rc = set_channel(ev, msg, "callback_query.message", e)) != DB_OK) goto fail;
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

/* A business_connection update (Bot API, BusinessConnection): a membership event in the
 * private chat of the business account's owner, joined while is_enabled, left otherwise,
 * with a `business_connection` object the store records so replies through a disabled
 * connection fail at once.  can_reply is rights.can_reply (Bot API 9.0) or the older
 * top-level can_reply. */
static int business_event(const struct tg_acct *a, const json_t *bc, json_t **out,
                          struct db_err *e)
{
    const char *where = "business_connection";
    char chat[TG_ID_MAX];
    int64_t date = 0;
    int has_date, rc;
    *out = NULL;
    if (!json_is_object(bc)) return db_err_set(e, DB_EINVAL, "%s must be an object", where);
    const char *id = db_json_str(bc, "id");
    if (!id || !*id) return db_err_set(e, DB_EINVAL, "%s.id missing or not a string", where);
    if ((rc = need_id(bc, "user_chat_id", where, chat, e)) != DB_OK) return rc;
    const json_t *en = json_object_get(bc, "is_enabled");
    if (!json_is_boolean(en))
        return db_err_set(e, DB_EINVAL, "%s.is_enabled missing or not a boolean", where);
    const json_t *rights = json_object_get(bc, "rights");
    const json_t *cr = json_is_object(rights) ? json_object_get(rights, "can_reply")
                                              : json_object_get(bc, "can_reply");
    json_t *ev = db_event_new("membership", TG_PLATFORM, a->account);
    if (!ev) return db_err_set(e, DB_ENOMEM, "out of memory");
    json_t *o = json_pack("{s:s, s:b, s:b, s:s}", "id", id, "enabled", json_is_true(en),
                          "can_reply", json_is_true(cr), "user_chat_id", chat);
    if (!o) {
        rc = db_err_set(e, DB_EINVAL, "%s.id is not valid UTF-8", where);
        goto fail;
    }
    if ((rc = set_new(ev, "business_connection", o, e)) != DB_OK) goto fail;
    if (db_event_set_chat(ev, chat) != DB_OK) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    const json_t *user = json_object_get(bc, "user");
    if (json_is_object(user)) {
        char uid[TG_ID_MAX];
        if ((rc = need_id(user, "id", "business_connection.user", uid, e)) != DB_OK) goto fail;
        if ((rc = set_str(ev, "external_user_id", uid, e)) != DB_OK) goto fail;
        if ((rc = set_sender(ev, user, 0, e)) != DB_OK) goto fail;
    }
    if ((rc = opt_int(bc, "date", where, &date, &has_date, e)) != DB_OK) goto fail;
    if (has_date && (rc = set_int(ev, "timestamp", date, e)) != DB_OK) goto fail;
    if ((rc = set_str(ev, "membership", json_is_true(en) ? "joined" : "left", e)) != DB_OK)
        goto fail;
    *out = ev;
    return DB_OK;
fail:
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
    if ((v = json_object_get(upd, "business_connection"))) return business_event(a, v, ev, e);
    return DB_OK;
}

/* Appends the event of one update to out; nothing on error or for unused kinds. */
int db_tg_push_update(const struct tg_acct *a, const json_t *upd, struct db_event_list *out,
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

int db_tg_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                struct db_err *e)
{
    json_t *upd;
    int64_t update_id;
    int rc = db_json_parse_object(in->body, in->body_len, &upd, e);
    if (rc != DB_OK) return rc;
    rc = db_tg_push_update(acct, upd, out, &update_id, e);
    json_decref(upd);
    return rc;
}

json_t *db_tg_allowed_updates(void)
{
    json_t *arr = json_array();
    for (int i = 0; arr && tg_update_kinds[i]; i++)
        if (json_array_append_new(arr, json_string(tg_update_kinds[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}
