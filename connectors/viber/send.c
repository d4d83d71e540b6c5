/* send.c - one outbound message as a send_message request (text, picture, video, file,
 * sticker, location, contact, url), and what Viber's answer to it means. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/text.h"
#include "viber_internal.h"

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

/* malloc'd tracking_data for a message with buttons (BUTTONS_TRACKING_PREFIX); NULL on
 * ENOMEM.  Caller frees. */
static char *buttons_tracking(const struct db_outbound *msg)
{
    const char *mid = msg->id ? msg->id : "";
    size_t n = strlen(BUTTONS_TRACKING_PREFIX) + strlen(mid) + 2, i;
    const json_t *b;
    json_array_foreach(msg->buttons, i, b) n += strlen(db_json_str(b, "id") ? db_json_str(b, "id") : "") + 1;
    char *t = malloc(n);
    if (!t) return NULL;
    size_t at = (size_t)snprintf(t, n, "%s%s:", BUTTONS_TRACKING_PREFIX, mid);
    json_array_foreach(msg->buttons, i, b) {
        const char *id = db_json_str(b, "id");
        at += (size_t)snprintf(t + at, n - at, "%s%s", i ? "," : "", id ? id : "");
    }
    return t;
}

/* New reference: a keyboard of reply buttons, one per row of the full width, whose tap
 * sends the button id as the customer's text (creators.viber.com/docs/bots-api/resources/
 * messaging/keyboards: ActionType "reply", ActionBody, Text, Columns 1-6, Rows).  NULL on
 * ENOMEM. */
static json_t *keyboard(const json_t *buttons)
{
    json_t *list = json_array(), *b;
    size_t i;
    if (!list) return NULL;
    json_array_foreach(buttons, i, b) {
        json_t *k = json_pack("{s:i, s:i, s:s, s:O, s:O}", "Columns", 6, "Rows", 1, "ActionType",
                              "reply", "ActionBody", json_object_get(b, "id"), "Text",
                              json_object_get(b, "title"));
        if (!k || json_array_append_new(list, k) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return json_pack("{s:s, s:b, s:o}", "Type", "keyboard", "DefaultHeight", 0, "Buttons", list);
}

int db_vb_build_send(const void *acct, const struct db_outbound *msg,
                     struct db_http_req *req, struct db_err *e)
{
    const struct viber_acct *a = acct;
    json_t *body = NULL;
    int rc;
    if (!msg->chat_id || !msg->chat_id[0])
        return db_err_set(e, DB_EINVAL, "chat_id (the Viber user id) is missing");
    if (msg->media_id)
        return db_err_set(e, DB_EINVAL, "media_id is not a Viber concept: send media_url");
    char *tracked = NULL;
    if (msg->buttons && !(tracked = buttons_tracking(msg)))
        return db_err_set(e, DB_ENOMEM, "out of memory");
    const char *track = tracked ? tracked : msg->id ? msg->id : "";
    if (db_utf8_chars(track, strlen(track)) > TRACKING_MAX_CHARS) {
        free(tracked);
        return db_err_set(e, DB_EINVAL, "message id too long for Viber tracking_data");
    }

    /* tracking_data always a string: the official SDK notes null breaks Viber's side. */
    body = json_pack("{s:s, s:{s:s}, s:s, s:i}", "receiver", msg->chat_id, "sender", "name",
                     a->sender_name, "tracking_data", track, "min_api_version", 1);
    free(tracked);
    if (!body) return db_err_set(e, DB_EINVAL, "chat_id or id is not valid UTF-8");
    if (a->sender_avatar &&
        json_object_set_new(json_object_get(body, "sender"), "avatar",
                            json_string(a->sender_avatar)) != 0) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    /* reply_to has no Viber equivalent and is dropped: quoting is not part of the bot API. */
    if ((rc = fill_send(msg, body, e)) != DB_OK) goto fail;
    if (msg->buttons && (rc = attach(body, "keyboard", keyboard(msg->buttons), e)) != DB_OK)
        goto fail;
    rc = db_vb_post(a, "send_message", body, req, e);
fail:
    json_decref(body);
    return rc;
}

int db_vb_read_send(const void *acct, const struct db_http_resp *resp,
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
    int rc = db_vb_read_status(resp, &root, &status, e);
    if (rc != DB_OK) return DB_EINVAL; /* res says RETRY: the message may not have left */

    snprintf(res->err_code, sizeof res->err_code, "%" JSON_INTEGER_FORMAT, status);
    const char *smsg = db_json_str(root, "status_message");
    db_vb_copy_text(res->err_msg, sizeof res->err_msg, smsg ? smsg : db_vb_status_name(status));
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

/* Viber user ids are base64 text ("01234567890A=" in the REST API docs). */
int db_vb_chat_id_is_valid(const char *chat)
{
    size_t n = strspn(chat, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-");
    return n > 0 && n <= 64 && !chat[n];
}
