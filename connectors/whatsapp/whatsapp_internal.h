/* whatsapp_internal.h - what the files of the WhatsApp connector share: the account, the
 * limits, and the functions each file gives the others.  Not for use outside
 * connectors/whatsapp/; the daemon knows the connector only as db_whatsapp. */
#ifndef DESKBRIDGE_CONNECTORS_WHATSAPP_INTERNAL_H
#define DESKBRIDGE_CONNECTORS_WHATSAPP_INTERNAL_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include "util/crypto.h"

#include "deskbridge/connector.h"

/* The Graph API version is pinned here and only here: Meta changes payload shapes between
 * versions and retires each one about two years after release, so moving it is a
 * deliberate change made together with the fixtures (override per account with api_base). */
#define WA_API_BASE_DEFAULT "https://graph.facebook.com/v21.0"

#define WA_PLATFORM "whatsapp"
#define WA_MAX_TEXT_CHARS 4096
#define WA_MAX_CAPTION_CHARS 1024
/* Interactive messages (developers.facebook.com/documentation/business-messaging/whatsapp/
 * messages/interactive-reply-buttons-messages and .../interactive-list-messages): at most 3
 * reply buttons with titles of at most 20 characters, a list of at most 10 rows (titles up
 * to 24), a body of at most 1024 characters. */
#define WA_MAX_REPLY_BUTTONS 3
#define WA_MAX_LIST_ROWS 10
#define WA_MAX_BUTTON_TITLE 20
#define WA_MAX_INTERACTIVE_BODY 1024
/* Longest id we copy out of a payload; wamids are about 60 characters. */
#define WA_MAX_ID 159

struct wa_account {
    char *account;             /* section account id, the stream's `account` */
    char *access_token;        /* Graph API system-user token */
    char *app_secret;          /* signs webhook bodies */
    char *app_secret_previous; /* accepted too while a rotation is under way; NULL */
    char *verify_token;        /* answers the GET subscription handshake */
    char *phone_number_id;     /* digits; sends go out from it, changes for others are skipped */
    char *api_base;            /* no trailing slash */
    char *business_account_id; /* digits (WABA id): its message_templates; NULL when unset */
    char *bearer;              /* "Bearer <access_token>", the Authorization header value */
};

/* The db_connector slots, one file each (contracts in deskbridge/connector.h). */
int db_wa_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e);
extern const struct db_conf_table db_wa_account_table; /* the keys account_new reads */
void db_wa_account_free(void *p);
int db_wa_handshake(const void *acct, const struct db_inbound *in, char **body,
                    struct db_err *e);
int db_wa_verify(const void *acct, const struct db_inbound *in, struct db_err *e);
int db_wa_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                struct db_err *e);
int db_wa_build_typing(const void *acct, const char *chat, const char *last_in,
                       struct db_http_req *req, struct db_err *e);
int db_wa_build_read_mark(const void *acct, const char *chat, const char *last_in,
                          struct db_http_req *req, struct db_err *e);
int db_wa_build_templates(const void *acct, const char *after, struct db_http_req *req,
                          struct db_err *e);
int db_wa_read_templates(const void *acct, const struct db_http_resp *resp, json_t *list,
                         char **after, struct db_err *e);
int db_wa_check_template(const void *acct, const json_t *known, const json_t *tmpl,
                         const char **field, struct db_err *e);
int db_wa_build_send(const void *acct, const struct db_outbound *msg, struct db_http_req *req,
                     struct db_err *e);
int db_wa_read_send(const void *acct, const struct db_http_resp *resp,
                    struct db_send_result *res, struct db_err *e);
int db_wa_build_media_lookup(const void *acct, const char *media_id, struct db_http_req *req,
                             struct db_err *e);
int db_wa_read_media_lookup(const void *acct, const struct db_http_resp *resp,
                            struct db_http_req *dl, struct db_err *e);

/* send.c: malloc'd "<api_base>/<seg1>[/<seg2>]"; caller frees.  NULL on ENOMEM. */
char *db_wa_graph_url(const struct wa_account *a, const char *seg1, const char *seg2);

/* Small checks the account, the webhook checks and the media lookup all use. */
static inline void free_secret(char *s)
{
    if (!s) return;
    db_wipe_str(s);
    free(s);
}

static inline int has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static inline int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* The chat_id_is_valid slot (send.c). */
int db_wa_chat_id_is_valid(const char *chat);

#endif
