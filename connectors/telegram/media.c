/* media.c - from a file_id to a download request: getFile, then the file URL it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/json.h"

int db_tg_build_media_lookup(const void *acct, const char *media_id,
                             struct db_http_req *req, struct db_err *e)
{
    if (!media_id || !*media_id) return db_err_set(e, DB_EINVAL, "empty media id");
    json_t *body = json_pack("{s:s}", "file_id", media_id);
    if (!body) return db_err_set(e, DB_EINVAL, "media id is not valid UTF-8");
    int rc = db_tg_post_method(acct, "getFile", body, req, e);
    json_decref(body);
    return rc;
}

/* file_path is appended to our URL: refuse anything that could leave the file tree. */
static int file_path_ok(const char *p)
{
    if (!*p || *p == '/' || strstr(p, "..")) return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == '%' || *p == '\\' ||
            *p == 0x7f)
            return 0;
    return 1;
}

int db_tg_read_media_lookup(const void *acct, const struct db_http_resp *resp,
                            struct db_http_req *dl, struct db_err *e)
{
    const struct tg_acct *a = acct;
    if (resp->status == 0)
        return db_err_set(e, DB_EAGAIN, "getFile: transport error: %s",
                          resp->transport_error ? resp->transport_error : "no answer");
    json_t *j = db_tg_answer_json(resp);
    long st = db_tg_answer_status(j, resp->status);
    int rc = DB_OK;
    char *url = NULL;
    if (st == 429 || st >= 500) {
        rc = db_err_set(e, DB_EAGAIN, "getFile: HTTP %ld: %.120s", st,
                        db_tg_answer_description(j, resp->status));
        goto done;
    }
    if (st < 200 || st >= 300 || !json_is_true(json_object_get(j, "ok"))) {
        rc = db_err_set(e, DB_EREJECTED, "getFile: HTTP %ld: %.120s", st,
                        db_tg_answer_description(j, resp->status));
        goto done;
    }
    const char *path = db_json_str(json_object_get(j, "result"), "file_path");
    if (!path) {
        /* Telegram omits file_path when the file cannot be downloaded by bots. */
        rc = db_err_set(e, DB_ENOTFOUND, "getFile: no file_path for this file");
        goto done;
    }
    if (!file_path_ok(path)) {
        rc = db_err_set(e, DB_EREJECTED, "getFile: unusable file_path");
        goto done;
    }
    if (asprintf(&url, "%s/file/bot%s/%s", a->api_base, a->token, path) < 0) {
        url = NULL;
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto done;
    }
    dl->method = strdup("GET");
    dl->url = url;
    url = NULL;
    if (!dl->method) {
        db_http_req_clear(dl);
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
    }
done:
    free(url);
    json_decref(j);
    return rc;
}
