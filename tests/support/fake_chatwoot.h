/* fake_chatwoot.h - a stand-in for Chatwoot's Application API and its API-inbox callback,
 * for tests of the Chatwoot bridge.
 *
 * Routes, parameters, answers and callback payloads follow Chatwoot's source as read for the
 * bridge (the files and commits are named in fake_chatwoot.c and docs/chatwoot.md).  The fake
 * keeps its own contacts, contact-inboxes, conversations and messages, checks the
 * api_access_token header (401 without it or with a wrong one) and the account in the path,
 * and can be told to answer every API call with an error for a while, or to apply message
 * creations but answer them late (a timeout on the caller's side).  It sends the signed
 * message_created callback of a message on request.
 *
 * Like fake_platform, it runs evhttp on 127.0.0.1:<kernel's port> in its own thread; every
 * function is safe to call from any thread. */
#ifndef DB_FAKE_CHATWOOT_H
#define DB_FAKE_CHATWOOT_H

#include <stddef.h>

struct db_cw_fake;

/* One account (account_id) with one API inbox (inbox_id) reached with token.  NULL when the
 * server could not start.  Free with db_cw_fake_stop. */
struct db_cw_fake *db_cw_fake_start(long account_id, long inbox_id, const char *token);
void db_cw_fake_stop(struct db_cw_fake *f); /* NULL-safe */
/* "http://127.0.0.1:PORT", borrowed. */
const char *db_cw_fake_url(const struct db_cw_fake *f);

/* Every API call is answered with status (e.g. 503) for the next ms milliseconds, without
 * being applied (0 ms: back to normal). */
void db_cw_fake_fail_for(struct db_cw_fake *f, int status, int ms);
/* The next n message creations are applied and then answered after delay_ms. */
void db_cw_fake_stall_creates(struct db_cw_fake *f, int n, int delay_ms);

/* api 0: the inbox behaves like a non-API one for the status PATCH (403), 1: API (the
 * default). */
void db_cw_fake_set_api_inbox(struct db_cw_fake *f, int api);

/* ---- what it holds ---- */

struct db_cw_msg {
    long id, conversation;   /* conversation: the display id */
    int message_type;        /* 0 incoming, 1 outgoing, 2 activity, 3 template */
    int private_note;
    char content[512];
    char source_id[128];
    char status[16];         /* sent, delivered, read, failed */
    char external_error[256];
    int n_attachments;
    char file_name[128], file_type[64];
    size_t file_size;
    unsigned long file_sum;  /* sum of the attachment's bytes, to compare with what was sent */
};

size_t db_cw_fake_contacts(struct db_cw_fake *f);
size_t db_cw_fake_conversations(struct db_cw_fake *f);
/* The contact with exactly this identifier: its id, name and phone (copied); 0 when none. */
long db_cw_fake_contact(struct db_cw_fake *f, const char *identifier, char *name, size_t nn,
                        char *phone, size_t pn);
/* The display id of the newest conversation of the contact with identifier; 0 when none. */
long db_cw_fake_conversation_of(struct db_cw_fake *f, const char *identifier);
/* Copies up to max messages of conversation (display id), oldest first; returns how many
 * there are. */
size_t db_cw_fake_messages(struct db_cw_fake *f, long conversation, struct db_cw_msg *out,
                           size_t max);
/* Copies message id; 0, or -1 when there is none. */
int db_cw_fake_message(struct db_cw_fake *f, long id, struct db_cw_msg *out);
/* Deletes a conversation and its messages, as an agent can in Chatwoot. */
void db_cw_fake_delete_conversation(struct db_cw_fake *f, long conversation);
/* API requests seen whose method is method (NULL any) and path contains substr (NULL any). */
size_t db_cw_fake_requests(struct db_cw_fake *f, const char *method, const char *substr);

/* ---- the agent's side ---- */

/* An agent's message in conversation, as Chatwoot stores it (outgoing, or a private note),
 * with an optional attachment (file_type image|audio|video|file|location..., data_url).
 * Returns its id, 0 when the conversation does not exist. */
long db_cw_fake_agent_message(struct db_cw_fake *f, long conversation, const char *content,
                              int private_note, const char *file_type, const char *data_url);
/* POSTs the message_created callback of message id to 127.0.0.1:port path, as Chatwoot 4.13+
 * does: JSON body, X-Chatwoot-Delivery, and, when secret is not NULL, X-Chatwoot-Timestamp
 * (now + ts_offset_s) and X-Chatwoot-Signature (sha256=HMAC(secret, "<ts>.<body>")).  With
 * bad_sig the signature is of another body.  Returns the HTTP status (0: no answer). */
int db_cw_fake_callback(struct db_cw_fake *f, long id, int port, const char *path,
                        const char *secret, long ts_offset_s, int bad_sig);

#endif
