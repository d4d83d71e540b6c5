/* parse.c - one callback body into events: messages, delivered/seen/failed receipts,
 * subscribed/unsubscribed, and conversation_started (whose answer may carry the welcome
 * message). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "viber_internal.h"

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
static int fill_message(json_t *ev, const json_t *m, const char *token, struct db_err *e)
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
        /* A file on Viber's servers gets an id for GET /v1/media/viber/...: the message token,
         * under which the store records the URL this webhook named (a `url` message is a
         * link to a web page, not a file). */
        if (strcmp(type, "url") != 0 && url && (rc = set_str(media, "id", token, e)) != DB_OK)
            goto fail;
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

/* Turns a text message that is the tap of one of our keyboard's buttons (see
 * BUTTONS_TRACKING_PREFIX) into the contract's callback: callback_data = the button id,
 * outbound_id = the gateway id of the message that carried the keyboard. */
static int mark_tap(json_t *ev, struct db_err *e)
{
    const char *track = db_json_str(ev, "tracking_data"), *text = db_json_str(ev, "text");
    const char *type = db_json_str(ev, "type");
    size_t plen = strlen(BUTTONS_TRACKING_PREFIX);
    if (!track || !text || !type || strcmp(type, "text") != 0 ||
        strncmp(track, BUTTONS_TRACKING_PREFIX, plen) != 0)
        return DB_OK;
    const char *mid = track + plen, *ids = strchr(mid, ':');
    size_t tlen = strlen(text);
    if (!ids || ids == mid || (size_t)(ids - mid) >= ID_MAX || tlen == 0) return DB_OK;
    for (const char *p = ids + 1; *p;) {
        size_t n = strcspn(p, ",");
        if (n == tlen && memcmp(p, text, n) == 0) {
            char outbound[ID_MAX];
            memcpy(outbound, mid, (size_t)(ids - mid));
            outbound[ids - mid] = '\0';
            int rc = set_str(ev, "kind", "callback", e);
            if (rc == DB_OK) rc = set_str(ev, "callback_data", text, e);
            if (rc == DB_OK) rc = set_str(ev, "outbound_id", outbound, e);
            return rc;
        }
        p += n + (p[n] == ',');
    }
    return DB_OK;
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
    if ((rc = fill_message(ev, m, token, e)) != DB_OK) goto fail;
    if ((rc = mark_tap(ev, e)) != DB_OK) goto fail;
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

int db_vb_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
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
