/* password.h - agents' sign-in secrets, stored only as a slow salted hash.
 *
 * The stored form is "pbkdf2-sha256$<iterations>$<salt hex>$<key hex>": PBKDF2-HMAC-SHA256
 * from OpenSSL with a 16-byte random salt and a 32-byte key.  The count travels with the
 * hash, so raising it later leaves old hashes verifiable.  A hash costs a few hundred
 * milliseconds of a core by design, so the gateway never computes one on its event loop:
 * db_password_job runs it on a worker thread and answers on the loop. */
#ifndef DB_CONSOLE_PASSWORD_H
#define DB_CONSOLE_PASSWORD_H

#include <stddef.h>

struct event_base;

#define DB_PASSWORD_ITERATIONS 600000 /* the default count of a new hash */
#define DB_PASSWORD_MIN_ITERATIONS 100000
#define DB_PASSWORD_HASH_MAX 160      /* bytes of a stored hash, NUL included */
#define DB_PASSWORD_MIN_LEN 10        /* characters of a secret, at least */
#define DB_PASSWORD_MAX_LEN 1024      /* bytes of a secret, at most */

/* Hashes secret with a fresh salt and iterations rounds into out (DB_PASSWORD_HASH_MAX
 * bytes).  0, or -1 when OpenSSL or the random source failed. */
int db_password_hash(const char *secret, long iterations, char out[DB_PASSWORD_HASH_MAX]);
/* 1 when secret matches stored (constant-time compare of the keys), 0 otherwise, also for a
 * stored value that is not of the form above. */
int db_password_verify(const char *secret, const char *stored);

/* The answer of a job: for a hash, ok = 0/1 and hash the new value; for a verification,
 * ok = 1 when it matched (hash empty).  Called on the loop of base. */
typedef void (*db_password_done_fn)(int ok, const char *hash, void *arg);
/* Queues a hash of secret (stored NULL) or a verification against stored, on the worker
 * thread of this process (started on first use).  The secret is copied and wiped after use.
 * 0, or -1 when the queue is full (a burst of sign-ins: answer 503) or out of memory; cb is
 * then never called. */
int db_password_job(struct event_base *base, const char *secret, const char *stored,
                    long iterations, db_password_done_fn cb, void *arg);

#endif
