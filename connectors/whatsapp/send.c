/* send.c - one outbound message as a Graph API /messages request (text, media, template,
 * reply context), and what the answer to it means (sent, retry, or failed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/text.h"
#include "whatsapp_internal.h"

/* malloc'd "<api_base>/<a>[/<b>]"; caller frees.  NULL on ENOMEM. */
char *db_wa_graph_url(const struct wa_account *a, const char *seg1, const char *seg2)
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

/* Appends {"type": "text", "text": v} for each string of params to list; DB_EINVAL naming
 * what when one is not a string. */
static int text_params(json_t *list, const json_t *params, const char *what, struct db_err *e)
{
    const json_t *p;
    size_t i;
    if (params && !json_is_array(params))
        return db_err_set(e, DB_EINVAL, "%s must be an array of strings", what);
    json_array_foreach(params, i, p) {
        if (!json_is_string(p)) return db_err_set(e, DB_EINVAL, "%s[%zu] must be a string", what, i);
        if (json_array_append_new(list, json_pack("{s:s, s:O}", "type", "text", "text", p)) != 0)
            return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

/* New reference: the header component for the request's template.header
 * {"type": "text", "text"} or {"type": "image"|"video"|"document", "url"|"id", "file_name"?}.
 * NULL with e set. */
static json_t *template_header(const json_t *h, struct db_err *e)
{
    const char *type = db_json_str(h, "type");
    json_t *param = NULL;
    if (!json_is_object(h) || !type) {
        db_err_set(e, DB_EINVAL, "template.header needs a type");
        return NULL;
    }
    if (strcmp(type, "text") == 0) {
        const char *text = db_json_str(h, "text");
        if (!text) {
            db_err_set(e, DB_EINVAL, "template.header of type text needs a text");
            return NULL;
        }
        param = json_pack("{s:s, s:s}", "type", "text", "text", text);
    } else if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
               strcmp(type, "document") == 0) {
        const char *url = db_json_str(h, "url"), *id = db_json_str(h, "id");
        const char *fname = db_json_str(h, "file_name");
        if (!(id && *id) && !(url && *url)) {
            db_err_set(e, DB_EINVAL, "template.header of type %s needs a url or an id", type);
            return NULL;
        }
        /* An uploaded media id needs no fetch by Meta, so it wins over a link. */
        json_t *media = id && *id ? json_pack("{s:s}", "id", id) : json_pack("{s:s}", "link", url);
        if (media && fname && strcmp(type, "document") == 0)
            json_object_set_new(media, "filename", json_string(fname));
        param = media ? json_pack("{s:s, s:o}", "type", type, type, media) : NULL;
    } else {
        db_err_set(e, DB_EINVAL, "template.header type must be text, image, video or document");
        return NULL;
    }
    json_t *c = param ? json_pack("{s:s, s:[o]}", "type", "header", "parameters", param) : NULL;
    if (!c) db_err_set(e, DB_EINVAL, "template.header has text that is not valid UTF-8");
    return c;
}

/* Appends one button component per entry of the request's template.buttons
 * [{"index", "sub_type": "url"|"quick_reply"|"copy_code" (default url), "parameters"}]. */
static int template_buttons(json_t *comps, const json_t *buttons, struct db_err *e)
{
    const json_t *b;
    size_t i;
    if (buttons && !json_is_array(buttons))
        return db_err_set(e, DB_EINVAL, "template.buttons must be an array");
    json_array_foreach(buttons, i, b) {
        const json_t *idx = json_object_get(b, "index"), *params = json_object_get(b, "parameters");
        const char *sub = db_json_str(b, "sub_type");
        if (!sub) sub = "url";
        if (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 9)
            return db_err_set(e, DB_EINVAL, "template.buttons[%zu].index must be 0-9", i);
        int qr = strcmp(sub, "quick_reply") == 0, code = strcmp(sub, "copy_code") == 0;
        if (!qr && !code && strcmp(sub, "url") != 0)
            return db_err_set(e, DB_EINVAL,
                              "template.buttons[%zu].sub_type must be url, quick_reply or copy_code", i);
        if (!json_is_array(params) || json_array_size(params) != 1 ||
            !json_is_string(json_array_get(params, 0)))
            return db_err_set(e, DB_EINVAL, "template.buttons[%zu].parameters must be one string", i);
        const json_t *v = json_array_get(params, 0);
        /* Meta's button parameter: the URL's end as text, a quick reply's payload, a code. */
        json_t *p = qr     ? json_pack("{s:s, s:O}", "type", "payload", "payload", v)
                    : code ? json_pack("{s:s, s:O}", "type", "coupon_code", "coupon_code", v)
                           : json_pack("{s:s, s:O}", "type", "text", "text", v);
        char index[4];
        snprintf(index, sizeof index, "%d", (int)json_integer_value(idx));
        json_t *c = p ? json_pack("{s:s, s:s, s:s, s:[o]}", "type", "button", "sub_type", sub,
                                  "index", index, "parameters", p)
                      : NULL;
        if (!c || json_array_append_new(comps, c) != 0)
            return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

/* New reference: the "template" object of a send, from the request's extra member
 * {"name", "language": "en_US", "parameters": ["..."] (the body's), "header": {...},
 * "buttons": [...]}, in Meta's component order header, body, buttons.  NULL with e set. */
static json_t *build_template(const json_t *t, struct db_err *e)
{
    const char *name = db_json_str(t, "name"), *lang = db_json_str(t, "language");
    json_t *out = NULL, *comps = NULL, *body = NULL;
    if (!json_is_object(t)) {
        db_err_set(e, DB_EINVAL, "template must be an object");
        goto fail;
    }
    if (!name || !*name || !lang || !*lang) {
        db_err_set(e, DB_EINVAL, "template needs a name and a language code (strings)");
        goto fail;
    }
    out = json_pack("{s:s, s:{s:s}}", "name", name, "language", "code", lang);
    comps = json_array();
    body = json_array();
    if (!out || !comps || !body) {
        db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    const json_t *h = json_object_get(t, "header");
    if (h && !json_is_null(h)) {
        json_t *c = template_header(h, e);
        if (!c || json_array_append_new(comps, c) != 0) goto fail;
    }
    if (text_params(body, json_object_get(t, "parameters"), "template.parameters", e) != DB_OK)
        goto fail;
    if (json_array_size(body) > 0 &&
        json_array_append_new(comps, json_pack("{s:s, s:O}", "type", "body", "parameters", body)) != 0) {
        db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    if (template_buttons(comps, json_object_get(t, "buttons"), e) != DB_OK) goto fail;
    if (json_array_size(comps) > 0 && json_object_set(out, "components", comps) != 0) {
        db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    json_decref(comps);
    json_decref(body);
    return out;
fail:
    json_decref(body);
    json_decref(comps);
    json_decref(out);
    return NULL;
}

/* New reference: the "interactive" object for a text with buttons: reply buttons for up to
 * three, else a list message of one section whose rows are the buttons, opened by a button
 * labelled label.  NULL with e set. */
static json_t *build_interactive(const struct db_outbound *msg, struct db_err *e)
{
    const json_t *b;
    size_t i, n = json_array_size(msg->buttons);
    if (n == 0 || n > WA_MAX_LIST_ROWS) {
        db_err_set(e, DB_EINVAL, "WhatsApp takes 1 to %d buttons", WA_MAX_LIST_ROWS);
        return NULL;
    }
    if (!msg->text || !*msg->text ||
        check_text(msg->text, WA_MAX_INTERACTIVE_BODY, "text with buttons", e) != DB_OK) {
        if (!msg->text || !*msg->text) db_err_set(e, DB_EINVAL, "buttons need a text");
        return NULL;
    }
    json_t *items = json_array(), *action = NULL, *it = NULL;
    if (!items) goto nomem;
    json_array_foreach(msg->buttons, i, b) {
        const json_t *id = json_object_get(b, "id"), *title = json_object_get(b, "title");
        if (!json_is_string(id) || !json_is_string(title)) {
            db_err_set(e, DB_EINVAL, "buttons[%zu] needs a string id and title", i);
            goto fail;
        }
        if (check_text(json_string_value(title), WA_MAX_BUTTON_TITLE, "button title", e) != DB_OK)
            goto fail;
        json_t *item = n <= WA_MAX_REPLY_BUTTONS
                           ? json_pack("{s:s, s:{s:O, s:O}}", "type", "reply", "reply", "id", id,
                                       "title", title)
                           : json_pack("{s:O, s:O}", "id", id, "title", title);
        if (!item || json_array_append_new(items, item) != 0) goto nomem;
    }
    if (n <= WA_MAX_REPLY_BUTTONS) {
        action = json_pack("{s:O}", "buttons", items);
    } else {
        const char *label = db_json_str(msg->extra, "buttons_label");
        /* The list opens with a button of its own; a neutral mark when the sender named none. */
        if (!label || !*label) label = "\xe2\x98\xb0"; /* U+2630, language-neutral */
        if (check_text(label, WA_MAX_BUTTON_TITLE, "buttons_label", e) != DB_OK) goto fail;
        action = json_pack("{s:s, s:[{s:O}]}", "button", label, "sections", "rows", items);
    }
    if (!action) goto nomem;
    it = json_pack("{s:s, s:{s:s}, s:o}", "type", n <= WA_MAX_REPLY_BUTTONS ? "button" : "list",
                   "body", "text", msg->text, "action", action);
    if (!it) goto nomem;
    json_decref(items);
    return it;
nomem:
    db_err_set(e, DB_ENOMEM, "out of memory");
fail:
    json_decref(items);
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

int db_wa_build_send(const void *acct, const struct db_outbound *msg, struct db_http_req *req,
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
    } else if (msg->buttons) {
        json_t *it = build_interactive(msg, e);
        if (!it) {
            rc = e && e->code ? e->code : DB_EINVAL;
            goto fail;
        }
        if (json_object_set_new(body, "interactive", it) != 0 ||
            json_object_set_new(body, "type", json_string("interactive")) != 0)
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
    url = db_wa_graph_url(a, a->phone_number_id, "messages");
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

/* A POST of {"messaging_product":"whatsapp","status":"read","message_id":last_in} to the
 * messages edge, with the typing indicator when typing is set: Meta's read receipt and typing
 * indicator share the request (developers.facebook.com/documentation/business-messaging/
 * whatsapp/messages/mark-message-as-read and .../typing-indicators: the indicator shows until
 * the next message or 25 seconds, and marks the message read). */
static int build_status_read(const struct wa_account *a, const char *last_in, int typing,
                             struct db_http_req *req, struct db_err *e)
{
    if (!last_in || !*last_in)
        return db_err_set(e, DB_ENOTFOUND, "no customer message to mark: WhatsApp needs one");
    json_t *body = json_pack("{s:s, s:s}", "messaging_product", "whatsapp", "status", "read");
    char *url = NULL, *text = NULL;
    int rc = DB_ENOMEM;
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (db_event_set_str(body, "message_id", last_in) != DB_OK) {
        json_decref(body);
        return db_err_set(e, DB_EINVAL, "message id is not valid UTF-8");
    }
    if (typing && json_object_set_new(body, "typing_indicator",
                                      json_pack("{s:s}", "type", "text")) != 0)
        goto done;
    url = db_wa_graph_url(a, a->phone_number_id, "messages");
    text = db_json_dump(body);
    if (!url || !text) goto done;
    if (db_http_req_post_json(req, url, text) != DB_OK ||
        db_headers_add(&req->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(req);
        goto done;
    }
    rc = DB_OK;
done:
    free(url);
    free(text);
    json_decref(body);
    return rc == DB_OK ? DB_OK : db_err_set(e, rc, "out of memory");
}

int db_wa_build_typing(const void *acct, const char *chat, const char *last_in,
                       struct db_http_req *req, struct db_err *e)
{
    (void)chat;
    return build_status_read(acct, last_in, 1, req, e);
}

int db_wa_build_read_mark(const void *acct, const char *chat, const char *last_in,
                          struct db_http_req *req, struct db_err *e)
{
    (void)chat;
    return build_status_read(acct, last_in, 0, req, e);
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

int db_wa_read_send(const void *acct, const struct db_http_resp *resp,
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

/* The recipient "to": a wa_id (digits) or a business-scoped user id (letters, digits and
 * dots); nothing else can name a WhatsApp user. */
int db_wa_chat_id_is_valid(const char *chat)
{
    size_t n = strspn(chat, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    return n > 0 && n <= 64 && !chat[n];
}
