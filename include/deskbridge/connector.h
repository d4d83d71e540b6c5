/* connector.h - the contract between the daemon and a messaging platform.
 *
 * A connector is a constant table of pure functions: bytes and configuration in, values
 * out.  It never opens a socket, starts a timer or reads a file; the daemon does all I/O.
 * That keeps every connector unit-testable and fuzzable without a network.
 *
 * Per-account state (token, secret, API base) is built once by account_new from the
 * account's configuration section and passed back as `const void *acct`.
 *
 * The daemon calls only the static inline wrappers at the end of this file, which answer
 * DB_EUNSUPPORTED for optional slots a connector leaves NULL. */
#ifndef DESKBRIDGE_CONNECTOR_H
#define DESKBRIDGE_CONNECTOR_H

#include <stdint.h>

#include <jansson.h>

#include "deskbridge/event.h"
#include "deskbridge/http_msg.h"
#include "deskbridge/status.h"

struct db_conf_table;

/* One configuration section: the keys of one account, with where each came from, so a
 * connector can report "file:line: key: what is wrong".  Borrowed by account_new. */
struct db_conf_kv {
    const char *key;
    const char *value;
    const char *file; /* "environment" for variables */
    int line;         /* 0 for variables */
};

struct db_conf_section {
    const char *platform; /* "telegram", "whatsapp", "viber" */
    const char *account;  /* the account id (URL segment, stream member) */
    const struct db_conf_kv *kv;
    size_t n;
};

/* The entry of key in sec (the last one when repeated, so environment overrides appended
 * after a file's keys win), or NULL when absent.  Borrowed. */
const struct db_conf_kv *db_conf_find(const struct db_conf_section *sec, const char *key);

/* DB_OK, or DB_ECONFIG naming the first key of sec that is not in allowed (a
 * NULL-terminated list), with its file and line. */
int db_conf_check_keys(const struct db_conf_section *sec, const char *const *allowed,
                       struct db_err *e) DB_MUST_CHECK;

/* Records "FILE:LINE: KEY: <message>" in e (kv names where the value came from; with kv
 * NULL, for a missing key, "[PLATFORM ACCOUNT]: KEY: <message>") and returns DB_ECONFIG. */
int db_conf_error(struct db_err *e, const struct db_conf_section *sec,
                  const struct db_conf_kv *kv, const char *key, const char *fmt, ...)
    DB_PRINTF(5, 6);

/* An outbound message as the sender hands it to build_send.  Every pointer is borrowed. */
struct db_outbound {
    const char *id;          /* gateway message id */
    const char *chat_id;     /* external chat/user id the conversation names */
    const char *text;        /* UTF-8 text or media caption; NULL when none.  Already cut to
                                the connector's max_text_chars (max_caption_chars for a
                                caption) by the daemon when split_long_text is set. */
    const char *media_url;   /* NULL when none */
    const char *media_id;    /* a platform media/file id instead of a URL; NULL when none */
    const char *media_type;  /* image|video|audio|voice|document|sticker|animation; NULL */
    const char *file_name;   /* for documents; NULL */
    const char *reply_to;    /* external message id being answered; NULL */
    const json_t *extra;     /* the whole request object (borrowed) for platform-specific
                                members: template, location, contact, keyboard... */
    const json_t *buttons;   /* NULL, or the request's checked "buttons" array: 1 to
                                max_buttons objects {"id", "title"}, ids 1-64 characters of
                                A-Z a-z 0-9 _ . - and unique, titles within
                                max_button_title_chars; only with a text that fits one
                                message and no media (db_outbound_from_json) */
};

/* How a platform answered a send. */
enum db_send_outcome {
    DB_SEND_SENT = 0,   /* accepted; external_id names it */
    DB_SEND_RETRY = 1,  /* transient (429, 5xx, network, platform rate limit): try again */
    DB_SEND_FAILED = 2, /* permanent: the message fails with err_code/err_msg */
};

struct db_send_result {
    int outcome;               /* enum db_send_outcome */
    char external_id[160];     /* platform message id when SENT */
    int64_t retry_after_ms;    /* platform-requested wait when RETRY, 0 when it gave none */
    int per_chat;              /* 1 when retry_after applies to this chat only (Telegram 429) */
    char err_code[48];         /* platform's code ("403", "131047", "5"), "" when none */
    char err_msg[192];         /* platform's title/description, safe to show an agent */
};

struct db_connector {
    const char *name;          /* "telegram" */
    size_t max_body;           /* largest webhook body accepted, bytes (413 above) */
    size_t max_text_chars;     /* platform text limit in characters; 0 = none */
    int split_long_text;       /* 1: the daemon splits longer texts into several sends;
                                  0: longer texts are refused with 400 */
    size_t max_caption_chars;  /* limit of the text sent with media, in characters; 0 = the
                                  text limit.  Split or refused as above; with splitting, the
                                  rest follows the media as text. */
    size_t max_buttons;        /* most buttons one message may carry; 0 = no buttons */
    size_t max_button_title_chars; /* longest button title, in characters */
    size_t max_buttons_text_chars; /* longest text that goes with buttons; 0 = the text
                                      limit */

    /* Builds per-account state from sec.  *acct is owned by the caller and released with
     * account_free.  DB_ECONFIG naming file, line and key in e when a value is wrong or a
     * required key is missing. */
    int (*account_new)(const struct db_conf_section *sec, void **acct, struct db_err *e);
    void (*account_free)(void *acct); /* NULL-safe */
    /* The key table (src/util/schema.h) account_new reads sec through: every key's name,
     * type, default and doc line, so the reference (docs/config.md) is checked against it.
     * NULL for a connector without accounts. */
    const struct db_conf_table *account_keys;

    /* Checks a webhook's signature or secret over the raw bytes, before any parsing, in
     * constant time.  DB_OK or DB_EAUTH. */
    int (*verify)(const void *acct, const struct db_inbound *in, struct db_err *e);

    /* Turns one verified webhook body into zero or more events appended to out (which owns
     * them).  DB_OK (also for valid updates the gateway does not use: zero events), or
     * DB_EINVAL with the reason in e; on error out is left as it was on entry. */
    int (*parse)(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                 struct db_err *e);

    /* Optional: 1 when chat can be one of this platform's chat ids (the part of a
     * conversation id after "<platform>:<account>:"), else 0.  The API refuses a
     * conversation whose chat part fails it before anything is queued.  NULL: any chat of
     * 1-128 printable ASCII characters. */
    int (*chat_id_is_valid)(const char *chat);

    /* Builds the platform request for msg into req (which the caller clears).  DB_OK, or
     * DB_EINVAL when msg cannot be expressed on this platform (reason in e). */
    int (*build_send)(const void *acct, const struct db_outbound *msg, struct db_http_req *req,
                      struct db_err *e);

    /* Classifies the platform's answer to a build_send request.  Always fills res; returns
     * DB_OK, or DB_EINVAL when the answer is unreadable (res then says RETRY). */
    int (*read_send)(const void *acct, const struct db_http_resp *resp,
                     struct db_send_result *res, struct db_err *e);

    /* Optional: long polling (Telegram getUpdates).  cursor is NULL before the first poll,
     * then the value read_poll returned.  read_poll appends events to out and sets
     * *next_cursor (malloc'd, caller frees; NULL when unchanged).  The daemon stores the
     * events and only then polls with the new cursor, so nothing is confirmed unwritten. */
    int (*build_poll)(const void *acct, const char *cursor, int timeout_s,
                      struct db_http_req *req, struct db_err *e);
    int (*read_poll)(const void *acct, const struct db_http_resp *resp,
                     struct db_event_list *out, char **next_cursor, struct db_err *e);

    /* Optional: register (public_url != NULL) or remove (public_url == NULL) the webhook. */
    int (*build_webhook_setup)(const void *acct, const char *public_url,
                               struct db_http_req *req, struct db_err *e);
    /* Optional: DB_OK when the platform accepted a webhook setup request, else
     * DB_EREJECTED with the platform's description in e. */
    int (*read_webhook_setup)(const void *acct, const struct db_http_resp *resp,
                              struct db_err *e);

    /* Optional: answers a GET on the webhook URL (WhatsApp's subscription handshake).
     * DB_OK with *body (malloc'd, caller frees) to send as text/plain 200, or DB_EAUTH. */
    int (*handshake)(const void *acct, const struct db_inbound *in, char **body,
                     struct db_err *e);

    /* Optional: media download through the gateway.  build_media_lookup makes the request
     * that resolves a media id; read_media_lookup returns the download request (URL and
     * auth headers) in dl.  A connector whose ids resolve in one step may put the download
     * itself in build_media_lookup and leave read_media_lookup NULL. */
    int (*build_media_lookup)(const void *acct, const char *media_id, struct db_http_req *req,
                              struct db_err *e);
    int (*read_media_lookup)(const void *acct, const struct db_http_resp *resp,
                             struct db_http_req *dl, struct db_err *e);

    /* Optional: the id of the platform grant a send to chat goes through (Telegram: the
     * business connection a conversation of a business account names), copied to buf of n
     * bytes; 1 when there is one, 0 when not.  The sender checks the grant's state the
     * store recorded (P:grant:<platform>:<account>:<id>) before the first attempt. */
    int (*send_grant)(const char *chat, char *buf, size_t n);
    /* Optional: the request that acknowledges a button tap (a "callback" event this
     * connector's parse made), for platforms that show the customer a spinner until it comes
     * (Telegram's answerCallbackQuery).  DB_OK with req filled, DB_ENOTFOUND when ev needs no
     * answer, DB_EINVAL when ev is not one of its callbacks. */
    int (*build_callback_answer)(const void *acct, const json_t *ev, struct db_http_req *req,
                                 struct db_err *e);

    /* Optional: show the customer that an agent is typing in chat.  last_in is the platform
     * id of the customer's newest message in the chat, NULL when the gateway knows none (a
     * platform whose indicator hangs on a message answers DB_ENOTFOUND then).  NULL slot: the
     * platform has no typing indicator for bots.  Any 2xx answer means done. */
    int (*build_typing)(const void *acct, const char *chat, const char *last_in,
                        struct db_http_req *req, struct db_err *e);
    /* Optional: mark the customer's messages up to last_in (a platform message id) read.
     * NULL slot: the platform shows bots no read marks, marking is a no-op.  Any 2xx answer
     * means done. */
    int (*build_read_mark)(const void *acct, const char *chat, const char *last_in,
                           struct db_http_req *req, struct db_err *e);

    /* Optional: the account's approved message templates (WhatsApp).  build_templates makes
     * the request for one page (after: the cursor read_templates gave, NULL for the first);
     * DB_EUNSUPPORTED when the account is not set up for it (reason in e).  read_templates
     * appends each approved template of the answer to list as
     *   {"name", "language", "category", "header": {"format", "parameters"}?,
     *    "body": {"text", "parameters"}?, "buttons": [{"index", "type", "parameters"}]?}
     * (parameters = how many values the send must supply) and sets *after (malloc'd, caller
     * frees; NULL on the last page).  DB_OK, DB_EREJECTED (the platform refused: reason in
     * e) or DB_EINVAL (unreadable answer). */
    int (*build_templates)(const void *acct, const char *after, struct db_http_req *req,
                           struct db_err *e);
    int (*read_templates)(const void *acct, const struct db_http_resp *resp, json_t *list,
                          char **after, struct db_err *e);
    /* Optional: checks the "template" member of a send against known, a list as
     * read_templates makes it.  DB_OK; DB_ENOTFOUND when known has no such name and language;
     * DB_EINVAL with *field naming the request member ("template.parameters",
     * "template.header", "template.buttons") and the reason in e. */
    int (*check_template)(const void *acct, const json_t *known, const json_t *tmpl,
                          const char **field, struct db_err *e);
};

extern const struct db_connector db_telegram;
extern const struct db_connector db_whatsapp;
extern const struct db_connector db_viber;

/* The connector called name, or NULL. */
const struct db_connector *db_connector_find(const char *name);
/* NULL-terminated list of every compiled-in connector. */
extern const struct db_connector *const db_connectors[];

/* ---- wrappers: the only way the daemon calls a connector ---- */

/* 1 when chat can be a chat id of c's platform: never empty, longer than 128 bytes or
 * holding a control character, space or non-ASCII byte, and accepted by the connector's own
 * check when it has one. */
static inline int db_conn_chat_id_is_valid(const struct db_connector *c, const char *chat)
{
    size_t n = 0;
    for (; chat[n]; n++)
        if ((unsigned char)chat[n] <= 0x20 || (unsigned char)chat[n] >= 0x7f || n >= 128) return 0;
    return n > 0 && (!c->chat_id_is_valid || c->chat_id_is_valid(chat));
}

static inline int db_conn_verify(const struct db_connector *c, const void *acct,
                                 const struct db_inbound *in, struct db_err *e)
{
    return c->verify ? c->verify(acct, in, e) : db_err_set(e, DB_EUNSUPPORTED, "no verify");
}

static inline int db_conn_parse(const struct db_connector *c, const void *acct,
                                const struct db_inbound *in, struct db_event_list *out,
                                struct db_err *e)
{
    return c->parse ? c->parse(acct, in, out, e) : db_err_set(e, DB_EUNSUPPORTED, "no parse");
}

static inline int db_conn_build_send(const struct db_connector *c, const void *acct,
                                     const struct db_outbound *m, struct db_http_req *req,
                                     struct db_err *e)
{
    return c->build_send ? c->build_send(acct, m, req, e)
                         : db_err_set(e, DB_EUNSUPPORTED, "%s cannot send", c->name);
}

static inline int db_conn_read_send(const struct db_connector *c, const void *acct,
                                    const struct db_http_resp *r, struct db_send_result *res,
                                    struct db_err *e)
{
    return c->read_send ? c->read_send(acct, r, res, e)
                        : db_err_set(e, DB_EUNSUPPORTED, "%s cannot send", c->name);
}

static inline int db_conn_build_poll(const struct db_connector *c, const void *acct,
                                     const char *cursor, int timeout_s, struct db_http_req *req,
                                     struct db_err *e)
{
    return c->build_poll ? c->build_poll(acct, cursor, timeout_s, req, e)
                         : db_err_set(e, DB_EUNSUPPORTED, "%s cannot poll", c->name);
}

static inline int db_conn_read_poll(const struct db_connector *c, const void *acct,
                                    const struct db_http_resp *r, struct db_event_list *out,
                                    char **next_cursor, struct db_err *e)
{
    return c->read_poll ? c->read_poll(acct, r, out, next_cursor, e)
                        : db_err_set(e, DB_EUNSUPPORTED, "%s cannot poll", c->name);
}

static inline int db_conn_build_webhook_setup(const struct db_connector *c, const void *acct,
                                              const char *url, struct db_http_req *req,
                                              struct db_err *e)
{
    return c->build_webhook_setup
               ? c->build_webhook_setup(acct, url, req, e)
               : db_err_set(e, DB_EUNSUPPORTED, "%s has no webhook registration", c->name);
}

static inline int db_conn_read_webhook_setup(const struct db_connector *c, const void *acct,
                                             const struct db_http_resp *r, struct db_err *e)
{
    return c->read_webhook_setup
               ? c->read_webhook_setup(acct, r, e)
               : db_err_set(e, DB_EUNSUPPORTED, "%s has no webhook registration", c->name);
}

static inline int db_conn_handshake(const struct db_connector *c, const void *acct,
                                    const struct db_inbound *in, char **body, struct db_err *e)
{
    return c->handshake ? c->handshake(acct, in, body, e)
                        : db_err_set(e, DB_EUNSUPPORTED, "%s has no GET handshake", c->name);
}

static inline int db_conn_build_media_lookup(const struct db_connector *c, const void *acct,
                                             const char *media_id, struct db_http_req *req,
                                             struct db_err *e)
{
    return c->build_media_lookup
               ? c->build_media_lookup(acct, media_id, req, e)
               : db_err_set(e, DB_EUNSUPPORTED, "%s has no media download", c->name);
}

static inline int db_conn_build_typing(const struct db_connector *c, const void *acct,
                                       const char *chat, const char *last_in,
                                       struct db_http_req *req, struct db_err *e)
{
    return c->build_typing ? c->build_typing(acct, chat, last_in, req, e)
                           : db_err_set(e, DB_EUNSUPPORTED, "%s has no typing indicator", c->name);
}

static inline int db_conn_build_read_mark(const struct db_connector *c, const void *acct,
                                          const char *chat, const char *last_in,
                                          struct db_http_req *req, struct db_err *e)
{
    return c->build_read_mark ? c->build_read_mark(acct, chat, last_in, req, e)
                              : db_err_set(e, DB_EUNSUPPORTED, "%s has no read marks", c->name);
}

static inline int db_conn_build_callback_answer(const struct db_connector *c, const void *acct,
                                                const json_t *ev, struct db_http_req *req,
                                                struct db_err *e)
{
    return c->build_callback_answer ? c->build_callback_answer(acct, ev, req, e) : DB_ENOTFOUND;
}

#endif
