/* verify.c - the callback check: X-Viber-Content-Signature, an HMAC-SHA256 of the raw
 * body keyed with the auth token, compared in constant time. */
#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"
#include "viber_internal.h"

int db_vb_verify(const void *acct, const struct db_inbound *in, struct db_err *e)
{
    const struct viber_acct *a = acct;
    const char *sig = in->headers ? db_headers_get(in->headers, "X-Viber-Content-Signature") : NULL;
    char *qsig = NULL;
    /* The official node SDK (lib/middleware.js) also takes the signature from ?sig=, so a
     * bot migrated from it may have registered a webhook URL relying on that.  The header
     * wins when both are present. */
    if (!sig && in->query) sig = qsig = db_query_param(in->query, "sig");
    int ok = db_hmac_hex_matches(sig, NULL, a->auth_token, strlen(a->auth_token), in->body,
                                 in->body_len);
    int missing = sig == NULL;
    free(qsig);
    if (ok) return DB_OK;
    return db_err_set(e, DB_EAUTH, missing ? "X-Viber-Content-Signature missing"
                                           : "X-Viber-Content-Signature does not match");
}
