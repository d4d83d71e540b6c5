#include "deskbridge/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *db_strerror(int code)
{
    switch (code) {
    case DB_OK: return "ok";
    case DB_EINVAL: return "invalid input";
    case DB_EAUTH: return "authentication failed";
    case DB_ETOOBIG: return "too large";
    case DB_EDUP: return "duplicate";
    case DB_EAGAIN: return "temporarily unavailable";
    case DB_EREJECTED: return "rejected";
    case DB_ENOMEM: return "out of memory";
    case DB_EUNSUPPORTED: return "not supported";
    case DB_ECONFIG: return "configuration error";
    case DB_ENOTFOUND: return "not found";
    case DB_EIO: return "I/O error";
    }
    return "unknown error";
}

int db_err_set(struct db_err *e, int code, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
