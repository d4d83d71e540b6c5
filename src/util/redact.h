/* redact.h - what of a secret or a personal value may appear in a log line. */
#ifndef DB_UTIL_REDACT_H
#define DB_UTIL_REDACT_H

#include <stddef.h>

/* Copies url into out with any Telegram-style "/bot<token>/" segment and any
 * "access_token=" or "token=" query value replaced by "***".  Always NUL-terminates. */
void db_redact_url(const char *url, char *out, size_t outsz);

/* A short stable fingerprint of a personal value (phone number, user id) for correlating log
 * lines without revealing it: "#" + 8 hex characters of its SHA-256.  Writes into out
 * (>= 10 bytes). */
void db_redact_id(const char *value, char *out, size_t outsz);

#endif
