/* webhook.c - registering (setWebhook) or removing (deleteWebhook) the webhook, and
 * reading Telegram's answer to it. */

#include "telegram_internal.h"

int db_tg_build_webhook_setup(const void *acct, const char *public_url,
                              struct db_http_req *req, struct db_err *e)
{
    const struct tg_acct *a = acct;
    int rc;
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (!public_url) {
        if ((rc = set_new(body, "drop_pending_updates", json_false(), e)) != DB_OK) goto fail;
        rc = db_tg_post_method(a, "deleteWebhook", body, req, e);
        goto fail;
    }
    if (!a->secret) {
        rc = db_err_set(e, DB_EINVAL,
                        "a webhook needs webhook_secret in the account configuration");
        goto fail;
    }
    if ((rc = set_str(body, "url", public_url, e)) != DB_OK) goto fail;
    if ((rc = set_str(body, "secret_token", a->secret, e)) != DB_OK) goto fail;
    if ((rc = set_new(body, "allowed_updates", db_tg_allowed_updates(), e)) != DB_OK) goto fail;
    if ((rc = set_new(body, "drop_pending_updates", json_false(), e)) != DB_OK) goto fail;
    rc = db_tg_post_method(a, "setWebhook", body, req, e);
fail:
    /* The body held the secret. */
    json_decref(body);
    return rc;
}

int db_tg_read_webhook_setup(const void *acct, const struct db_http_resp *resp,
                             struct db_err *e)
{
    (void)acct;
    if (resp->status == 0)
        return db_err_set(e, DB_EREJECTED, "webhook setup: transport error: %s",
                          resp->transport_error ? resp->transport_error : "no answer");
    json_t *j = db_tg_answer_json(resp);
    int rc = DB_OK;
    if (resp->status < 200 || resp->status >= 300 || !json_is_true(json_object_get(j, "ok")))
        rc = db_err_set(e, DB_EREJECTED, "webhook setup: HTTP %ld: %.120s", resp->status,
                        db_tg_answer_description(j, resp->status));
    json_decref(j);
    return rc;
}
