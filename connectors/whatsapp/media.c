/* media.c - from a media id to a download request: the Graph API lookup, then the URL it
 * answers, fetched with the same token. */
#include <string.h>

#include "util/json.h"
#include "whatsapp_internal.h"
#include "util/parse.h"

int db_wa_build_media_lookup(const void *acct, const char *media_id, struct db_http_req *req,
                             struct db_err *e)
{
    const struct wa_account *a = acct;
    /* The id becomes a path segment: digits only keeps it from naming any other Graph
     * object or endpoint. */
    if (!media_id || !all_digits(media_id) || strlen(media_id) > 64)
        return db_err_set(e, DB_EINVAL, "WhatsApp media ids are digits");
    memset(req, 0, sizeof *req);
    req->method = strdup("GET");
    req->url = db_wa_graph_url(a, media_id, NULL);
    if (!req->method || !req->url ||
        db_headers_add(&req->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(req);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

int db_wa_read_media_lookup(const void *acct, const struct db_http_resp *resp,
                            struct db_http_req *dl, struct db_err *e)
{
    const struct wa_account *a = acct;
    json_t *root = NULL;
    struct db_err pe = {0};
    int rc;
    memset(dl, 0, sizeof *dl);
    if (resp->status == 404)
        return db_err_set(e, DB_ENOTFOUND, "WhatsApp has no such media (expired or unknown id)");
    if (resp->status < 200 || resp->status >= 300)
        return db_err_set(e, DB_EREJECTED, "WhatsApp media lookup answered HTTP %ld", resp->status);
    if (db_json_parse_object(resp->body, resp->body_len, &root, &pe) != DB_OK)
        return db_err_set(e, DB_EREJECTED, "unreadable WhatsApp media lookup answer");
    const char *url = db_json_str(root, "url");
    if (db_url_check(url, DB_URL_HTTP, NULL) != 0 || has_control_chars(url)) {
        rc = db_err_set(e, DB_EREJECTED, "WhatsApp media lookup answer without a url");
        goto fail;
    }
    dl->method = strdup("GET");
    dl->url = strdup(url);
    /* The download URL only works with the same token as the lookup. */
    if (!dl->method || !dl->url || db_headers_add(&dl->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(dl);
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    rc = DB_OK;
fail:
    json_decref(root);
    return rc;
}
