/* verify.c - the two webhook checks: the GET subscription handshake (hub.verify_token,
 * echoing hub.challenge) and the X-Hub-Signature-256 HMAC over the raw body, both against
 * the current and the previous secret in constant time. */
#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"
#include "whatsapp_internal.h"

int db_wa_handshake(const void *acct, const struct db_inbound *in, char **body,
                    struct db_err *e)
{
    const struct wa_account *a = acct;
    char *mode = db_query_param(in->query, "hub.mode");
    char *token = db_query_param(in->query, "hub.verify_token");
    char *challenge = db_query_param(in->query, "hub.challenge");
    int rc = DB_EAUTH;
    *body = NULL;
    /* Evaluate the token compare even when mode is wrong, so timing says nothing. */
    int token_ok = token && db_ct_streq(token, a->verify_token);
    if (!mode || strcmp(mode, "subscribe") != 0 || !token_ok) {
        db_err_set(e, DB_EAUTH, "webhook handshake: wrong mode or verify token");
        goto fail;
    }
    /* The challenge is echoed as text/plain; Meta sends a short number, so anything long
     * or with control characters is not Meta and is not reflected. */
    if (!challenge || !*challenge || strlen(challenge) > 256 || has_control_chars(challenge)) {
        db_err_set(e, DB_EAUTH, "webhook handshake: missing or malformed hub.challenge");
        goto fail;
    }
    *body = challenge;
    challenge = NULL;
    rc = DB_OK;
fail:
    free(mode);
    free_secret(token);
    free(challenge);
    return rc;
}

int db_wa_verify(const void *acct, const struct db_inbound *in, struct db_err *e)
{
    const struct wa_account *a = acct;
    const char *sig = in->headers ? db_headers_get(in->headers, "X-Hub-Signature-256") : NULL;
    if (!sig)
        return db_err_set(e, DB_EAUTH, "X-Hub-Signature-256 header missing (sha1 is not accepted)");
    /* Meta signs the bytes it sends (non-ASCII already escaped as \uXXXX), so the HMAC runs
     * over the body exactly as received, never over a re-serialization. */
    int ok = db_hmac_hex_matches(sig, "sha256=", a->app_secret, strlen(a->app_secret), in->body,
                                 in->body_len);
    if (a->app_secret_previous)
        ok |= db_hmac_hex_matches(sig, "sha256=", a->app_secret_previous,
                                  strlen(a->app_secret_previous), in->body, in->body_len);
    return ok ? DB_OK : db_err_set(e, DB_EAUTH, "X-Hub-Signature-256 does not match the body");
}
