/* send.c - one outbound message as a Bot API send* request, and what Telegram's answer
 * to it means (sent, retry with its retry_after, or failed). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/json.h"
#include "util/parse.h"

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

/* New reference: an InlineKeyboardMarkup with one button per row; tapping one sends a
 * callback_query whose data is the button id (core.telegram.org/bots/api#inlinekeyboardbutton:
 * callback_data is 1-64 bytes, which the API's id rule keeps).  NULL on ENOMEM. */
static json_t *inline_keyboard(const json_t *buttons)
{
    json_t *rows = json_array(), *b;
    size_t i;
    if (!rows) return NULL;
    json_array_foreach(buttons, i, b) {
        json_t *row = json_pack("[{s:O, s:O}]", "text", json_object_get(b, "title"),
                                "callback_data", json_object_get(b, "id"));
        if (!row || json_array_append_new(rows, row) != 0) {
            json_decref(rows);
            return NULL;
        }
    }
    json_t *markup = json_pack("{s:o}", "inline_keyboard", rows);
    return markup;
}

int db_tg_build_send(const void *acct, const struct db_outbound *msg,
                     struct db_http_req *req, struct db_err *e)
{
    const struct tg_acct *a = acct;
    const char *method = NULL;
    int rc;
    char chat[TG_ID_MAX + 40];
    int64_t thread;
    const char *bc;
    if (!msg->chat_id || !*msg->chat_id)
        return db_err_set(e, DB_EINVAL, "outbound message has no chat_id");
    if (db_tg_chat_parse(msg->chat_id, chat, sizeof chat, &thread, &bc) != DB_OK)
        return db_err_set(e, DB_EINVAL, "conversation has a chat id Telegram cannot have");
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if ((rc = set_new(body, "chat_id", chat_id_value(chat), e)) != DB_OK) goto fail;
    /* Every send* method takes both (Bot API, sendMessage): the reply goes out on behalf of
     * the business account, or into the topic the conversation names. */
    if (bc && (rc = set_str(body, "business_connection_id", bc, e)) != DB_OK) goto fail;
    if (thread > 0 && (rc = set_int(body, "message_thread_id", thread, e)) != DB_OK) goto fail;

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
    if (msg->buttons && (rc = set_new(body, "reply_markup", inline_keyboard(msg->buttons), e)) != DB_OK)
        goto fail;
    rc = db_tg_post_method(a, method, body, req, e);
fail:
    json_decref(body);
    return rc;
}

int db_tg_build_typing(const void *acct, const char *chat, const char *last_in,
                       struct db_http_req *req, struct db_err *e)
{
    (void)last_in;
    /* sendChatAction shows "typing..." for 5 seconds or until the bot's next message
     * (core.telegram.org/bots/api#sendchataction). */
    char id[TG_ID_MAX + 40];
    int64_t thread;
    const char *bc;
    if (db_tg_chat_parse(chat, id, sizeof id, &thread, &bc) != DB_OK)
        return db_err_set(e, DB_EINVAL, "conversation has a chat id Telegram cannot have");
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = set_new(body, "chat_id", chat_id_value(id), e);
    /* sendChatAction takes both too: "typing" in the topic, or as the business account. */
    if (rc == DB_OK && bc) rc = set_str(body, "business_connection_id", bc, e);
    if (rc == DB_OK && thread > 0) rc = set_int(body, "message_thread_id", thread, e);
    if (rc == DB_OK) rc = set_str(body, "action", "typing", e);
    if (rc == DB_OK) rc = db_tg_post_method(acct, "sendChatAction", body, req, e);
    json_decref(body);
    return rc;
}

int db_tg_build_callback_answer(const void *acct, const json_t *ev, struct db_http_req *req,
                                struct db_err *e)
{
    const char *kind = db_json_str(ev, "kind"), *qid = db_json_str(ev, "external_message_id");
    if (!kind || strcmp(kind, "callback") != 0 || !qid || !*qid)
        return db_err_set(e, DB_EINVAL, "not a Telegram callback event");
    /* Without an answer the customer's client shows a spinner on the button until it times
     * out (core.telegram.org/bots/api#answercallbackquery); an empty answer stops it. */
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = set_str(body, "callback_query_id", qid, e);
    if (rc == DB_OK) rc = db_tg_post_method(acct, "answerCallbackQuery", body, req, e);
    json_decref(body);
    return rc;
}

/* A seconds value from parameters.retry_after, else the Retry-After header; -1 if none. */
static int64_t retry_after_s(const json_t *j, const struct db_http_resp *resp)
{
    const json_t *ra = json_object_get(json_object_get(j, "parameters"), "retry_after");
    if (json_is_integer(ra) && json_integer_value(ra) >= 0) return json_integer_value(ra);
    const char *h = resp->headers ? db_headers_get(resp->headers, "Retry-After") : NULL;
    long v;
    if (db_parse_long(h, 0, LONG_MAX, &v) == 0) return v;
    return -1;
}

int db_tg_read_send(const void *acct, const struct db_http_resp *resp,
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
    json_t *j = db_tg_answer_json(resp);
    long st = db_tg_answer_status(j, resp->status);
    const char *desc = db_tg_answer_description(j, resp->status);
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

/* Bot API chat_id: an integer (negative for groups and channels, up to 52 significant bits)
 * or "@channelusername" (core.telegram.org/bots/api#sendmessage); len bytes of s. */
static int chat_id_ok(const char *s, size_t len)
{
    if (len > 0 && s[0] == '@') {
        size_t n = strspn(s + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
        if (n > len - 1) n = len - 1;
        return n > 0 && n <= 32 && n == len - 1;
    }
    const char *d = s + (len > 0 && s[0] == '-');
    size_t dl = len - (size_t)(d - s);
    size_t n = strspn(d, "0123456789");
    if (n > dl) n = dl;
    return n > 0 && n <= 20 && n == dl;
}

int db_tg_bc_is_valid(const char *bc)
{
    size_t n = strspn(bc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.=");
    return n > 0 && n <= TG_BC_MAX && !bc[n];
}

int db_tg_chat_parse(const char *chat, char *id, size_t n, int64_t *thread, const char **bc)
{
    *thread = 0;
    *bc = NULL;
    const char *colon = strchr(chat, ':');
    size_t len = colon ? (size_t)(colon - chat) : strlen(chat);
    if (!chat_id_ok(chat, len) || len >= n) return DB_EINVAL;
    memcpy(id, chat, len);
    id[len] = '\0';
    if (!colon) return DB_OK;
    const char *rest = colon + 1;
    if (strncmp(rest, TG_BC_TAG ":", sizeof TG_BC_TAG) == 0) {
        *bc = rest + sizeof TG_BC_TAG;
        return db_tg_bc_is_valid(*bc) ? DB_OK : DB_EINVAL;
    }
    /* A message_thread_id: a positive integer (Bot API, Message.message_thread_id). */
    long v;
    if (strspn(rest, "0123456789") != strlen(rest) || strlen(rest) > 18 ||
        db_parse_long(rest, 1, LONG_MAX, &v) != 0)
        return DB_EINVAL;
    *thread = v;
    return DB_OK;
}

int db_tg_chat_id_is_valid(const char *chat)
{
    char id[TG_ID_MAX + 40];
    int64_t thread;
    const char *bc;
    return db_tg_chat_parse(chat, id, sizeof id, &thread, &bc) == DB_OK;
}

int db_tg_send_grant(const char *chat, char *buf, size_t n)
{
    char id[TG_ID_MAX + 40];
    int64_t thread;
    const char *bc;
    if (db_tg_chat_parse(chat, id, sizeof id, &thread, &bc) != DB_OK || !bc) return 0;
    if (strlen(bc) >= n) return 0;
    memcpy(buf, bc, strlen(bc) + 1);
    return 1;
}
