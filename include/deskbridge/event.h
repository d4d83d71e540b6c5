/* event.h - the normalized event model (stream contract v1, docs/stream-contract.md).
 *
 * An event is a jansson object holding exactly the members the contract defines (plus
 * platform extras).  Connectors build events with the helpers below; the store adds `id`
 * and `received_at` when it writes them.  Ids are always JSON strings, never numbers, so
 * 64-bit platform ids survive every consumer.  Events copy every string they keep: nothing
 * here borrows from the parsed webhook body. */
#ifndef DESKBRIDGE_EVENT_H
#define DESKBRIDGE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "deskbridge/status.h"

#define DB_STREAM_CONTRACT_VERSION 1

struct db_event {
    json_t *json;     /* owned reference: the contract object */
    char *dedupe_key; /* owned: unique per (platform, account) across redeliveries, e.g.
                         "u:5012" (Telegram update_id) or "s:wamid.X:read" (a receipt) */
};

struct db_event_list {
    struct db_event *v;
    size_t n, cap;
    /* Optional body to answer the webhook with (Viber's welcome message); owned, NULL when
     * the default empty answer is right. */
    char *reply_body;
};

/* Frees every event, the array and reply_body; the list is empty and reusable.  NULL-safe. */
void db_event_list_clear(struct db_event_list *l);

/* Appends ev to l, taking ownership of ev->json and ev->dedupe_key (also on failure, when
 * they are freed).  DB_OK or DB_ENOMEM. */
int db_event_list_push(struct db_event_list *l, json_t *json, char *dedupe_key) DB_MUST_CHECK;

/* New object with v, kind, platform and account set.  New reference; NULL on ENOMEM.
 * kind: message|edit|callback|reaction|receipt|membership. */
json_t *db_event_new(const char *kind, const char *platform, const char *account);

/* Sets external_chat_id and the derived conversation "<platform>:<account>:<chat>".  The
 * event must already carry platform and account.  DB_OK or DB_ENOMEM. */
int db_event_set_chat(json_t *ev, const char *external_chat_id) DB_MUST_CHECK;

/* Sets member key to a copy of the string s; a NULL s leaves the member unset.  DB_OK or
 * DB_ENOMEM; DB_EINVAL when s is not valid UTF-8. */
int db_event_set_str(json_t *obj, const char *key, const char *s) DB_MUST_CHECK;

/* Sets member key to the integer v.  DB_OK or DB_ENOMEM. */
int db_event_set_int(json_t *obj, const char *key, int64_t v) DB_MUST_CHECK;

/* Checks that ev has the members the contract requires for its kind (v, kind, platform,
 * account, conversation, external_chat_id; type for messages; status and
 * external_message_id for receipts; timestamp an integer), that every id member is a
 * string, and that it has no `id` or `received_at` (the store adds those).  DB_OK or
 * DB_EINVAL with the offending member named in e. */
int db_event_validate(const json_t *ev, struct db_err *e) DB_MUST_CHECK;

/* Writes the decimal text of a JSON id that a platform sends as an integer or a string into
 * buf.  Integers are read as json_int_t (64-bit), never through double.  DB_OK, or
 * DB_EINVAL when v is neither (or a string is empty, too long or not all digits when
 * digits_only is set). */
int db_json_id(const json_t *v, int digits_only, char *buf, size_t bufsz) DB_MUST_CHECK;

/* Reads a Unix time given as integer or digit string (WhatsApp sends strings).  DB_OK or
 * DB_EINVAL. */
int db_json_time(const json_t *v, int64_t *out) DB_MUST_CHECK;

#endif
