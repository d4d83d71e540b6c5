/* status.h - the one error vocabulary of deskbridge.
 *
 * Fallible functions return DB_OK (0) or a negative enum db_status.  The code carries the
 * decision the caller has to make (answer 400, 401, 413, retry later, dead-letter...); the
 * human detail goes into a caller-provided struct db_err, which never allocates. */
#ifndef DESKBRIDGE_STATUS_H
#define DESKBRIDGE_STATUS_H

#include <stddef.h>

#define DB_MUST_CHECK __attribute__((warn_unused_result))
#define DB_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum db_status {
    DB_OK = 0,
    DB_EINVAL = -1,       /* bad input: answered 400, never written */
    DB_EAUTH = -2,        /* signature / secret / token wrong or missing: 401/403 */
    DB_ETOOBIG = -3,      /* over a size limit: 413 */
    DB_EDUP = -4,         /* already stored / already done: answered as success */
    DB_EAGAIN = -5,       /* try again later: Redis down (503), platform 429/5xx (retry) */
    DB_EREJECTED = -6,    /* permanent refusal by a platform: the message fails */
    DB_ENOMEM = -7,
    DB_EUNSUPPORTED = -8, /* optional operation not offered by this connector */
    DB_ECONFIG = -9,      /* configuration error */
    DB_ENOTFOUND = -10,   /* no such account / message / route: 404 */
    DB_EIO = -11,         /* system call failed */
};

struct db_err {
    int code;       /* an enum db_status, DB_OK when nothing was recorded */
    char msg[512];  /* one line, no secrets, NUL-terminated; room for a long file path */
};

/* Static text for a code; never NULL. */
const char *db_strerror(int code);

/* Records code and a formatted message in e (if e is not NULL); returns code, so that
 * `return db_err_set(e, DB_EINVAL, "...")` reads naturally. */
int db_err_set(struct db_err *e, int code, const char *fmt, ...) DB_PRINTF(3, 4);

#endif
