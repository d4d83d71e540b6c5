/* webhook.c - registering the webhook with set_webhook (or removing it with an empty url),
 * and reading Viber's answer to it. */

#include "util/json.h"
#include "viber_internal.h"

int db_vb_build_webhook_setup(const void *acct, const char *public_url,
                              struct db_http_req *req, struct db_err *e)
{
    const struct viber_acct *a = acct;
    json_t *body;
    if (public_url)
        body = json_pack("{s:s, s:[s,s,s,s,s,s], s:b, s:b}", "url", public_url, "event_types",
                         "delivered", "seen", "failed", "subscribed", "unsubscribed",
                         "conversation_started", "send_name", 1, "send_photo", 1);
    else
        body = json_pack("{s:s}", "url", ""); /* an empty url removes the webhook */
    if (!body) return db_err_set(e, DB_EINVAL, "webhook URL is not valid UTF-8");
    int rc = db_vb_post(a, "set_webhook", body, req, e);
    json_decref(body);
    return rc;
}

int db_vb_read_webhook_setup(const void *acct, const struct db_http_resp *resp,
                             struct db_err *e)
{
    json_t *root = NULL;
    json_int_t status;
    (void)acct;
    if (resp->transport_error || resp->status == 0)
        return db_err_set(e, DB_EREJECTED, "set_webhook: no answer from Viber");
    if (resp->status < 200 || resp->status >= 300)
        return db_err_set(e, DB_EREJECTED, "set_webhook: HTTP %ld from Viber", resp->status);
    struct db_err pe = {0};
    if (db_vb_read_status(resp, &root, &status, &pe) != DB_OK)
        return db_err_set(e, DB_EREJECTED, "set_webhook: unreadable answer: %s", pe.msg);
    if (status == 0) {
        json_decref(root);
        return DB_OK;
    }
    char msg[120];
    const char *smsg = db_json_str(root, "status_message");
    db_vb_copy_text(msg, sizeof msg, smsg ? smsg : db_vb_status_name(status));
    json_decref(root);
    return db_err_set(e, DB_EREJECTED, "set_webhook: Viber status %" JSON_INTEGER_FORMAT ": %s",
                      status, msg);
}
