/* outbound.h - validation of an agent's message, shared by POST /v1/messages and by the
 * sender for commands that helpdesks XADD to the outbox directly, so both paths accept
 * exactly the same input. */
#ifndef DB_OUTBOUND_H
#define DB_OUTBOUND_H

#include <jansson.h>

#include "conf/config.h"
#include "deskbridge/connector.h"

/* Checks cmd against the API contract and the configured accounts.  On DB_OK, *acct is the
 * account the conversation names and *msg points into cmd (borrowed: valid while cmd
 * lives; msg->id is left NULL for the caller).  DB_EINVAL with "<field>: <what is wrong>" in
 * e; *field (when not NULL) names the offending member. */
int db_outbound_from_json(const struct db_config *cfg, const json_t *cmd,
                          const struct db_account **acct, struct db_outbound *msg,
                          const char **field, struct db_err *e) DB_MUST_CHECK;

/* The most characters conn takes for msg's text in one send: its caption limit when the text
 * goes with media and conn has one, else its text limit (0 = none). */
size_t db_outbound_text_limit(const struct db_connector *conn, const struct db_outbound *msg);

/* Splits "<platform>:<account>:<chat>" into its parts (copied into the buffers).  DB_OK or
 * DB_EINVAL. */
int db_conversation_split(const char *conv, char *platform, size_t pn, char *account, size_t an,
                          const char **chat) DB_MUST_CHECK;

#endif
