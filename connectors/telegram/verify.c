/* verify.c - the webhook check: Telegram echoes the configured secret_token in a header,
 * compared in constant time against the current and the previous secret. */

#include "telegram_internal.h"
#include "util/crypto.h"

int db_tg_verify(const void *acct, const struct db_inbound *in, struct db_err *e)
{
    const struct tg_acct *a = acct;
    if (!a->secret)
        return db_err_set(e, DB_EAUTH, "webhook mode not configured for this account");
    const char *got = db_headers_get(in->headers, TG_SECRET_HEADER);
    if (!got) return db_err_set(e, DB_EAUTH, "missing " TG_SECRET_HEADER " header");
    /* Both comparisons always run so timing does not tell which secret is current. */
    int ok = db_ct_streq(got, a->secret);
    ok |= db_ct_streq(got, a->secret_prev ? a->secret_prev : a->secret);
    if (!ok) return db_err_set(e, DB_EAUTH, "wrong " TG_SECRET_HEADER " header");
    return DB_OK;
}
