/* telegram_internal.h - what the files of the Telegram connector share: the account, the
 * limits, and the functions each file gives the others.  Not for use outside
 * connectors/telegram/; the daemon knows the connector only as db_telegram. */
#ifndef DESKBRIDGE_CONNECTORS_TELEGRAM_INTERNAL_H
#define DESKBRIDGE_CONNECTORS_TELEGRAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "deskbridge/connector.h"

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

/* The db_connector slots, one file each (contracts in deskbridge/connector.h). */
int db_tg_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e);
extern const struct db_conf_table db_tg_account_table; /* the keys account_new reads */
void db_tg_account_free(void *p);
int db_tg_verify(const void *acct, const struct db_inbound *in, struct db_err *e);
int db_tg_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                struct db_err *e);
int db_tg_build_send(const void *acct, const struct db_outbound *msg, struct db_http_req *req,
                     struct db_err *e);
int db_tg_read_send(const void *acct, const struct db_http_resp *resp,
                    struct db_send_result *res, struct db_err *e);
int db_tg_build_typing(const void *acct, const char *chat, const char *last_in,
                       struct db_http_req *req, struct db_err *e);
int db_tg_build_callback_answer(const void *acct, const json_t *ev, struct db_http_req *req,
                                struct db_err *e);
int db_tg_build_poll(const void *acct, const char *cursor, int timeout_s,
                     struct db_http_req *req, struct db_err *e);
int db_tg_read_poll(const void *acct, const struct db_http_resp *resp,
                    struct db_event_list *out, char **next_cursor, struct db_err *e);
int db_tg_build_webhook_setup(const void *acct, const char *public_url,
                              struct db_http_req *req, struct db_err *e);
int db_tg_read_webhook_setup(const void *acct, const struct db_http_resp *resp,
                             struct db_err *e);
int db_tg_build_media_lookup(const void *acct, const char *media_id, struct db_http_req *req,
                             struct db_err *e);
int db_tg_read_media_lookup(const void *acct, const struct db_http_resp *resp,
                            struct db_http_req *dl, struct db_err *e);

/* parse.c: appends the event of one update to out (nothing on error or for a kind that is
 * not used) and reports its update_id. */
int db_tg_push_update(const struct tg_acct *a, const json_t *upd, struct db_event_list *out,
                      int64_t *update_id, struct db_err *e);
/* parse.c: the update kinds parse understands, as allowed_updates.  New reference; NULL on
 * ENOMEM. */
json_t *db_tg_allowed_updates(void);

/* api.c: req = POST of obj (borrowed) as JSON to api_base/bot<token>/<method>. */
int db_tg_post_method(const struct tg_acct *a, const char *method, const json_t *obj,
                      struct db_http_req *req, struct db_err *e);
/* api.c: the answer body as a JSON object (new reference), NULL when it is not one. */
json_t *db_tg_answer_json(const struct db_http_resp *resp);
/* api.c: the answer's description, or a stand-in; borrowed from j or static. */
const char *db_tg_answer_description(const json_t *j, long status);
/* api.c: the HTTP status, or error_code when a proxy answered 200 around an error. */
long db_tg_answer_status(const json_t *j, long http);

/* Setters for parse and request bodies: a jansson failure becomes an error in e. */
static inline int set_str(json_t *obj, const char *key, const char *s, struct db_err *e)
{
    int rc = db_event_set_str(obj, key, s);
    if (rc == DB_EINVAL) return db_err_set(e, DB_EINVAL, "%s is not valid UTF-8", key);
    if (rc != DB_OK) return db_err_set(e, rc, "out of memory");
    return DB_OK;
}

static inline int set_int(json_t *obj, const char *key, int64_t v, struct db_err *e)
{
    if (db_event_set_int(obj, key, v) != DB_OK) return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

static inline int set_new(json_t *obj, const char *key, json_t *v, struct db_err *e)
{
    if (!v || json_object_set_new(obj, key, v) != 0)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

/* The chat_id_is_valid slot (send.c): a conversation's chat part in any of the forms
 * db_tg_chat_parse reads. */
int db_tg_chat_id_is_valid(const char *chat);

/* A conversation's chat part (docs/platforms/telegram.md, "Conversations"): "<chat>" (a
 * chat id or @channel), "<chat>:<thread>" (a forum topic) or "<chat>:biz:<connection id>"
 * (a chat of a business account).  Splits chat into the chat id (copied to id, n bytes),
 * *thread (0 when none) and *bc (pointing into chat, NULL when none).  DB_EINVAL when the
 * chat part has none of these forms. */
#define TG_BC_TAG "biz"
#define TG_BC_MAX 96
int db_tg_chat_parse(const char *chat, char *id, size_t n, int64_t *thread, const char **bc);
/* 1 when a business_connection_id can be carried in a conversation id: 1-96 characters of
 * A-Z a-z 0-9 _ - . = (send.c). */
int db_tg_bc_is_valid(const char *bc);
/* The send_grant slot (send.c): the business connection id of a "<chat>:biz:<id>" chat. */
int db_tg_send_grant(const char *chat, char *buf, size_t n);

#endif
