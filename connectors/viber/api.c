/* api.c - the REST bot API's envelope, shared by every call: the authorized JSON POST,
 * and reading {"status", "status_message"} out of an answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/text.h"
#include "viber_internal.h"

static int add_auth(const struct viber_acct *a, struct db_http_req *req, struct db_err *e)
{
    if (db_headers_add(&req->headers, "X-Viber-Auth-Token", a->auth_token) != DB_OK) {
        db_http_req_clear(req);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

/* POSTs the JSON of body to <api_base>/<method> with the auth header. */
int db_vb_post(const struct viber_acct *a, const char *method, const json_t *body,
               struct db_http_req *req, struct db_err *e)
{
    char *url = NULL, *text = NULL;
    if (asprintf(&url, "%s/%s", a->api_base, method) < 0) url = NULL;
    if (!url || !(text = db_json_dump(body))) goto fail;
    if (db_http_req_post_json(req, url, text) != DB_OK) goto fail;
    free(url);
    free(text);
    return add_auth(a, req, e);
fail:
    free(url);
    free(text);
    return db_err_set(e, DB_ENOMEM, "out of memory");
}

/* Known codes of Viber's "status" (creators.viber.com/docs/bots-api/errors), for err_msg when
 * the answer carries no status_message. */
const char *db_vb_status_name(json_int_t s)
{
    static const char *const names[] = {
        "ok", "invalidUrl", "invalidAuthToken", "badData", "missingData",
        "receiverNotRegistered", "receiverNotSubscribed", "publicAccountBlocked",
        "publicAccountNotFound", "publicAccountSuspended", "webhookNotSet",
        "receiverNoSuitableDevice", "tooManyRequests", "apiVersionNotSupported",
        "incompatibleWithVersion", "publicAccountNotAuthorized", "inchatReplyMessageNotAllowed",
        "publicAccountIsNotInline", "noPublicChat", "cannotSendBroadcast", "broadcastNotAllowed",
        "unsupportedCountry", "paymentUnsupported", "freeMessagesExceeded", "noBalance"};
    if (s >= 0 && (size_t)s < sizeof names / sizeof names[0]) return names[s];
    return "general error";
}

/* Copies s into dst, cut on a character boundary. */
void db_vb_copy_text(char *dst, size_t dstsz, const char *s)
{
    size_t len = strlen(s);
    if (!db_utf8_valid(s, len)) {
        snprintf(dst, dstsz, "(unreadable status message)");
        return;
    }
    size_t n = len;
    if (n > dstsz - 1) {
        n = dstsz - 1;
        /* Back up to the first byte of the sequence that would be cut. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Reads {"status": N, "status_message": ...} from a 2xx body: DB_OK with *status and *root (new
 * reference), or DB_EINVAL. */
int db_vb_read_status(const struct db_http_resp *resp, json_t **root, json_int_t *status,
                      struct db_err *e)
{
    int rc = db_json_parse_object(resp->body, resp->body_len, root, e);
    if (rc != DB_OK) return rc;
    const json_t *s = json_object_get(*root, "status");
    if (!json_is_integer(s)) {
        json_decref(*root);
        *root = NULL;
        return db_err_set(e, DB_EINVAL, "Viber answer has no integer status");
    }
    *status = json_integer_value(s);
    return DB_OK;
}
