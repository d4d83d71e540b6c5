/* api.c - the Bot API's envelope, shared by every call: the method URL and JSON POST,
 * and reading {"ok", "error_code", "description"} out of an answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/crypto.h"
#include "util/json.h"

/* "<api_base>/bot<token>/<method>"; malloc'd, caller frees; NULL on ENOMEM. */
static char *method_url(const struct tg_acct *a, const char *method)
{
    char *url = NULL;
    if (asprintf(&url, "%s/bot%s/%s", a->api_base, a->token, method) < 0) return NULL;
    return url;
}

/* POSTs obj (borrowed) as JSON to method. */
int db_tg_post_method(const struct tg_acct *a, const char *method, const json_t *obj,
                      struct db_http_req *req, struct db_err *e)
{
    char *url = method_url(a, method);
    char *body = db_json_dump(obj);
    int rc = DB_ENOMEM;
    if (url && body) rc = db_http_req_post_json(req, url, body);
    db_wipe_str(url); /* it holds the bot token */
    free(url);
    free(body);
    if (rc != DB_OK) return db_err_set(e, rc, "out of memory building %s request", method);
    return DB_OK;
}

/* Parsed answer body (new reference) or NULL when it is not a JSON object. */
json_t *db_tg_answer_json(const struct db_http_resp *resp)
{
    json_t *j = NULL;
    if (db_json_parse_object(resp->body, resp->body_len, &j, NULL) != DB_OK) return NULL;
    return j;
}

const char *db_tg_answer_description(const json_t *j, long status)
{
    const char *d = db_json_str(j, "description");
    if (d && *d) return d;
    return status == 0 ? "no answer from Telegram" : "Telegram gave no description";
}

/* Telegram's status: the HTTP one, or error_code when a proxy answered 200 around it. */
long db_tg_answer_status(const json_t *j, long http)
{
    const json_t *ec = json_object_get(j, "error_code");
    if (json_is_integer(ec) && json_is_false(json_object_get(j, "ok")) &&
        (http < 300 || json_integer_value(ec) == 429))
        return (long)json_integer_value(ec);
    return http;
}
