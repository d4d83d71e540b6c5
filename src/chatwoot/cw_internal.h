/* cw_internal.h - what the files of the Chatwoot bridge share; never included from outside
 * src/chatwoot/.
 *   cw_conf.c   the [chatwoot NAME] section
 *   cw_api.c    Chatwoot's Application API: requests built and answers read (no I/O)
 *   cw_hook.c   POST /bridges/chatwoot/NAME (Chatwoot to customer)
 *   cw_out.c    P:events consumer (customer to Chatwoot), P:status consumer (ticks), and
 *               the bridge's life cycle */
#ifndef DB_CW_INTERNAL_H
#define DB_CW_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "deskbridge/http_msg.h"
#include "deskbridge/status.h"
#include "chatwoot/chatwoot.h"

struct db_config;

#define CW_SECTION "chatwoot"
#define CW_NAME_MAX 32

/* 1 when the comma list o->accounts names platform:account. */
int cw_carries(const struct db_chatwoot_conf *o, const char *platform, const char *account);
/* The section NAME of cfg (borrowed from cfg), or NULL. */
const struct db_chatwoot_conf *cw_find(const struct db_config *cfg, const char *name);

/* ---- the API (cw_api.c); every request is filled into req (cleared by the caller) ---- */

/* POST /api/v1/accounts/A/contacts {inbox_id, identifier, name, phone_number, source_id}.
 * name and phone may be NULL. */
int cw_req_contact(const struct db_chatwoot_conf *o, const char *identifier, const char *name,
                   const char *phone, const char *source_id, struct db_http_req *req);
/* GET .../contacts/search?q=<identifier>&page=<page> */
int cw_req_contact_search(const struct db_chatwoot_conf *o, const char *identifier, int page,
                          struct db_http_req *req);
/* GET .../contacts/<id>/conversations */
int cw_req_contact_conversations(const struct db_chatwoot_conf *o, long contact, struct db_http_req *req);
/* POST .../conversations {inbox_id, contact_id, source_id} */
int cw_req_conversation(const struct db_chatwoot_conf *o, long contact, const char *source_id,
                        struct db_http_req *req);
/* POST .../conversations/C/messages: JSON, or multipart with one attachments[] part when
 * file is not NULL.  source_id is the deskbridge event id (found again after a timeout). */
int cw_req_message(const struct db_chatwoot_conf *o, long conv, const char *content,
                   const char *source_id, const void *file, size_t file_len,
                   const char *file_name, const char *file_type, struct db_http_req *req);
/* GET .../conversations/C/messages (the latest ones) */
int cw_req_messages(const struct db_chatwoot_conf *o, long conv, struct db_http_req *req);
/* PATCH .../conversations/C/messages/M {status, external_error} (error may be NULL) */
int cw_req_status(const struct db_chatwoot_conf *o, long conv, long msg, const char *status,
                  const char *error, struct db_http_req *req);

/* Answers.  Each returns 0 and the id(s), or -1 when the body does not hold them. */
int cw_read_contact(const struct db_http_resp *r, long *contact, char *source_id, size_t n);
/* The contact of search answer r whose identifier is exactly identifier; 0 found, 1 not on
 * this page (*more: another page may hold it), -1 unreadable. */
int cw_read_search(const struct db_http_resp *r, const char *identifier, long *contact,
                   int *more);
/* The newest conversation of inbox in a contact's conversation list; 0, 1 none, -1. */
int cw_read_contact_conversation(const struct db_http_resp *r, long inbox, long *conv);
int cw_read_id(const struct db_http_resp *r, long *id);
/* 1 when a 422 answer names attribute among the refused ones ({"message","attributes"}). */
int cw_read_refused(const struct db_http_resp *r, const char *attribute);
/* The message of a list answer whose source_id is source_id; 0, 1 none, -1. */
int cw_read_find_message(const struct db_http_resp *r, const char *source_id, long *msg);

/* The readable Chatwoot content of a deskbridge event (text, edit, reaction, location...),
 * malloc'd (caller frees); NULL when out of memory. */
char *cw_event_content(const json_t *ev);

/* cw_event_content followed by note on a line of its own (note may be NULL); malloc'd. */
char *cw_message_content(const json_t *ev, const char *note);
/* The file name of ev's media, or "<type><extension of file_type>" in buf. */
const char *cw_file_name(const json_t *ev, const char *file_type, char *buf, size_t n);

/* 1 for a status code worth trying again (network, 408, 429, 5xx). */
int cw_retryable(long status);

#endif
