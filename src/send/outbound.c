#include "send/outbound.h"

#include <string.h>

#include "util/parse.h"
#include "util/text.h"

#define MAX_CLIENT_ID 128

int db_conversation_split(const char *conv, char *platform, size_t pn, char *account, size_t an,
                          const char **chat)
{
    const char *a = conv ? strchr(conv, ':') : NULL;
    const char *c = a ? strchr(a + 1, ':') : NULL;
    if (!a || !c || a == conv || c == a + 1 || !c[1]) return DB_EINVAL;
    if ((size_t)(a - conv) >= pn || (size_t)(c - a - 1) >= an) return DB_EINVAL;
    memcpy(platform, conv, (size_t)(a - conv));
    platform[a - conv] = '\0';
    memcpy(account, a + 1, (size_t)(c - a - 1));
    account[c - a - 1] = '\0';
    *chat = c + 1;
    return DB_OK;
}

static int bad(struct db_err *e, const char **field, const char *name, const char *what)
{
    if (field) *field = name;
    return db_err_set(e, DB_EINVAL, "%s: %s", name, what);
}

/* Optional string member: DB_OK with *out NULL when absent. */
static int opt_str(const json_t *obj, const char *key, const char **out, const char *name,
                   const char **field, struct db_err *e)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return DB_OK;
    if (!json_is_string(v)) return bad(e, field, name, "must be a string");
    if (json_string_length(v) == 0) return bad(e, field, name, "must not be empty");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return bad(e, field, name, "must not contain NUL");
    *out = json_string_value(v);
    return DB_OK;
}

#define MAX_BUTTON_ID 64
#define MAX_BUTTONS_LABEL 20

/* Checks cmd.buttons against the API's rules and conn's limits; *out is the array or NULL.
 * The field is always "buttons"; the message names the button ("buttons[2].title: ..."). */
static int check_buttons(const struct db_connector *conn, const json_t *cmd, const json_t **out,
                         const char **field, struct db_err *e)
{
    const json_t *bs = json_object_get(cmd, "buttons"), *b;
    size_t i;
    *out = NULL;
    if (!bs || json_is_null(bs)) return DB_OK;
    if (field) *field = "buttons";
    if (!json_is_array(bs))
        return db_err_set(e, DB_EINVAL, "buttons: must be an array of {\"id\", \"title\"}");
    if (conn->max_buttons == 0)
        return db_err_set(e, DB_EINVAL, "buttons: %s messages cannot carry buttons", conn->name);
    if (json_array_size(bs) == 0 || json_array_size(bs) > conn->max_buttons)
        return db_err_set(e, DB_EINVAL, "buttons: %s takes 1 to %zu buttons, not %zu", conn->name,
                          conn->max_buttons, json_array_size(bs));
    json_array_foreach(bs, i, b) {
        const char *id = json_string_value(json_object_get(b, "id"));
        const char *title = json_string_value(json_object_get(b, "title"));
        if (!json_is_object(b))
            return db_err_set(e, DB_EINVAL, "buttons[%zu]: must be an object", i);
        /* The id travels as Telegram's callback_data (1-64 bytes) and inside Viber's
         * tracking_data, where ',' and ':' separate ids; a tap hands it back unchanged. */
        if (!id || !*id || strlen(id) > MAX_BUTTON_ID ||
            strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
                strlen(id))
            return db_err_set(e, DB_EINVAL,
                              "buttons[%zu].id: must be 1-64 characters of A-Z a-z 0-9 _ . -", i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(id, json_string_value(json_object_get(json_array_get(bs, k), "id"))) == 0)
                return db_err_set(e, DB_EINVAL, "buttons[%zu].id: repeats buttons[%zu].id", i, k);
        if (!title || !*title || strlen(title) != json_string_length(json_object_get(b, "title")))
            return db_err_set(e, DB_EINVAL, "buttons[%zu].title: must be a non-empty string", i);
        size_t chars = db_utf8_chars(title, strlen(title));
        if (chars > conn->max_button_title_chars)
            return db_err_set(e, DB_EINVAL,
                              "buttons[%zu].title: has %zu characters; %s allows %zu", i, chars,
                              conn->name, conn->max_button_title_chars);
    }
    const char *label;
    if (opt_str(cmd, "buttons_label", &label, "buttons_label", field, e)) return DB_EINVAL;
    if (label && db_utf8_chars(label, strlen(label)) > MAX_BUTTONS_LABEL)
        return bad(e, field, "buttons_label", "must be at most 20 characters");
    if (field) *field = NULL;
    *out = bs;
    return DB_OK;
}

/* With buttons the message is one text send: a split would leave the buttons on one part
 * and media go by other methods on some platforms. */
static int check_buttons_text(const struct db_connector *conn, const struct db_outbound *msg,
                              const json_t *cmd, const char **field, struct db_err *e)
{
    if (msg->media_url || msg->media_id || json_object_get(cmd, "template") ||
        json_object_get(cmd, "location") || json_object_get(cmd, "contact") ||
        json_object_get(cmd, "sticker_id"))
        return bad(e, field, "buttons", "go with a text message only (no media, template, "
                                        "location, contact or sticker)");
    if (!msg->text) return bad(e, field, "text", "is required with buttons");
    size_t max = conn->max_buttons_text_chars ? conn->max_buttons_text_chars : conn->max_text_chars;
    size_t chars = db_utf8_chars(msg->text, strlen(msg->text));
    if (max && chars > max) {
        if (field) *field = "text";
        return db_err_set(e, DB_EINVAL, "text: has %zu characters; %s allows %zu with buttons",
                          chars, conn->name, max);
    }
    return DB_OK;
}

int db_outbound_from_json(const struct db_config *cfg, const json_t *cmd,
                          const struct db_account **acct, struct db_outbound *msg,
                          const char **field, struct db_err *e)
{
    static const char *const media_types[] = {"image",   "video",   "audio",     "voice",
                                              "document", "sticker", "animation", NULL};
    memset(msg, 0, sizeof *msg);
    *acct = NULL;
    if (!json_is_object(cmd)) return bad(e, field, "body", "must be a JSON object");

    const char *conv;
    if (opt_str(cmd, "conversation", &conv, "conversation", field, e)) return DB_EINVAL;
    if (!conv) return bad(e, field, "conversation", "is required");
    char platform[32], account[96];
    const char *chat;
    if (db_conversation_split(conv, platform, sizeof platform, account, sizeof account, &chat))
        return bad(e, field, "conversation", "must be <platform>:<account>:<chat id>");
    *acct = db_config_account(cfg, platform, account);
    if (!*acct) return bad(e, field, "conversation", "names no configured account");
    /* The chat part goes to the platform as the recipient (in a URL or a JSON body): a
     * shape the platform cannot have is refused here, never sent. */
    if (!db_conn_chat_id_is_valid((*acct)->conn, chat)) {
        *acct = NULL;
        return bad(e, field, "conversation", "has a chat id this platform cannot have");
    }
    msg->chat_id = chat;

    if (opt_str(cmd, "text", &msg->text, "text", field, e) ||
        opt_str(cmd, "reply_to", &msg->reply_to, "reply_to", field, e))
        return DB_EINVAL;
    const char *client_id;
    if (opt_str(cmd, "client_id", &client_id, "client_id", field, e)) return DB_EINVAL;
    if (client_id && strlen(client_id) > MAX_CLIENT_ID)
        return bad(e, field, "client_id", "must be at most 128 characters");
    const char *id;
    if (opt_str(cmd, "id", &id, "id", field, e)) return DB_EINVAL;
    if (id && (strlen(id) > 64 || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                             "0123456789_.-") != strlen(id)))
        return bad(e, field, "id", "must be 1-64 characters of A-Z a-z 0-9 _ . -");

    const json_t *media = json_object_get(cmd, "media");
    if (media && !json_is_null(media)) {
        if (!json_is_object(media)) return bad(e, field, "media", "must be an object");
        if (opt_str(media, "url", &msg->media_url, "media.url", field, e) ||
            opt_str(media, "id", &msg->media_id, "media.id", field, e) ||
            opt_str(media, "type", &msg->media_type, "media.type", field, e) ||
            opt_str(media, "file_name", &msg->file_name, "media.file_name", field, e))
            return DB_EINVAL;
        if (!msg->media_url && !msg->media_id)
            return bad(e, field, "media", "needs url or id");
        if (msg->media_url && db_url_check(msg->media_url, DB_URL_HTTP, NULL) != 0)
            return bad(e, field, "media.url", "must be an http(s) URL");
        if (!msg->media_type) return bad(e, field, "media.type", "is required");
        int known = 0;
        for (int i = 0; media_types[i]; i++) known |= strcmp(msg->media_type, media_types[i]) == 0;
        if (!known)
            return bad(e, field, "media.type",
                       "must be one of image, video, audio, voice, document, sticker, animation");
    }
    /* Platform-specific content (template, location, contact, sticker_id) is checked by the
     * connector when it builds the request. */
    int has_extra = json_object_get(cmd, "template") || json_object_get(cmd, "location") ||
                    json_object_get(cmd, "contact") || json_object_get(cmd, "sticker_id");
    if (!msg->text && !msg->media_url && !msg->media_id && !has_extra)
        return bad(e, field, "text", "is required when there is no media");
    if (msg->text && !(*acct)->conn->split_long_text) {
        size_t max = db_outbound_text_limit((*acct)->conn, msg);
        if (max && db_utf8_chars(msg->text, strlen(msg->text)) > max)
            return bad(e, field, "text",
                       msg->media_url || msg->media_id
                           ? "is longer than the platform allows with media"
                           : "is longer than the platform allows");
    }
    if (check_buttons((*acct)->conn, cmd, &msg->buttons, field, e) != DB_OK) return DB_EINVAL;
    if (msg->buttons && check_buttons_text((*acct)->conn, msg, cmd, field, e) != DB_OK)
        return DB_EINVAL;
    msg->extra = cmd;
    return DB_OK;
}

size_t db_outbound_text_limit(const struct db_connector *conn, const struct db_outbound *msg)
{
    int media = msg->media_url || msg->media_id;
    return media && conn->max_caption_chars ? conn->max_caption_chars : conn->max_text_chars;
}
