/* viber_internal.h - what the files of the Viber connector share: the account, the limits,
 * and the functions each file gives the others.  Not for use outside connectors/viber/; the
 * daemon knows the connector only as db_viber. */
#ifndef DESKBRIDGE_CONNECTORS_VIBER_INTERNAL_H
#define DESKBRIDGE_CONNECTORS_VIBER_INTERNAL_H

#include <stdint.h>

#include <jansson.h>

#include "deskbridge/connector.h"

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
/* tracking_data of a message with a keyboard: "db-buttons:<gateway id>:<id>,<id>...".  Viber
 * hands it back with the customer's next message, so a text equal to one of the ids is the
 * tap of that button (a typed text after the keyboard carries it too, hence the list). */
#define BUTTONS_TRACKING_PREFIX "db-buttons:"
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

/* The db_connector slots, one file each (contracts in deskbridge/connector.h). */
int db_vb_account_new(const struct db_conf_section *sec, void **out, struct db_err *e);
extern const struct db_conf_table db_vb_account_table; /* the keys account_new reads */
void db_vb_account_free(void *p);
int db_vb_verify(const void *acct, const struct db_inbound *in, struct db_err *e);
int db_vb_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                struct db_err *e);
int db_vb_build_send(const void *acct, const struct db_outbound *msg, struct db_http_req *req,
                     struct db_err *e);
int db_vb_read_send(const void *acct, const struct db_http_resp *resp,
                    struct db_send_result *res, struct db_err *e);
int db_vb_build_webhook_setup(const void *acct, const char *public_url,
                              struct db_http_req *req, struct db_err *e);
int db_vb_read_webhook_setup(const void *acct, const struct db_http_resp *resp,
                             struct db_err *e);

/* api.c: req = POST of the JSON of body (borrowed) to <api_base>/<method> with the auth
 * header. */
int db_vb_post(const struct viber_acct *a, const char *method, const json_t *body,
               struct db_http_req *req, struct db_err *e);
/* api.c: Viber's name of a status code, for err_msg when the answer has no status_message.
 * Static string. */
const char *db_vb_status_name(json_int_t s);
/* api.c: s copied into dst, cut on a character boundary. */
void db_vb_copy_text(char *dst, size_t dstsz, const char *s);
/* api.c: {"status": N, "status_message": ...} of a 2xx body: DB_OK with *status and *root
 * (new reference), or DB_EINVAL. */
int db_vb_read_status(const struct db_http_resp *resp, json_t **root, json_int_t *status,
                      struct db_err *e);

/* Setters for parse and request bodies: a jansson failure becomes an error in e. */
static inline int set_str(json_t *obj, const char *key, const char *s, struct db_err *e)
{
    int rc = db_event_set_str(obj, key, s);
    if (rc == DB_EINVAL) return db_err_set(e, rc, "%s is not valid UTF-8", key);
    if (rc != DB_OK) return db_err_set(e, rc, "out of memory");
    return DB_OK;
}

static inline int set_int(json_t *obj, const char *key, int64_t v, struct db_err *e)
{
    return db_event_set_int(obj, key, v) == DB_OK ? DB_OK
                                                  : db_err_set(e, DB_ENOMEM, "out of memory");
}

/* Attaches a new object under key, taking it even on failure. */
static inline int attach(json_t *obj, const char *key, json_t *child, struct db_err *e)
{
    if (!child || json_object_set_new(obj, key, child) != 0)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

/* The chat_id_is_valid slot (send.c). */
int db_vb_chat_id_is_valid(const char *chat);

#endif
