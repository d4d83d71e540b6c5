#include "http/respond.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "log/log.h"
#include "net/httpd.h"
#include "util/json.h"

void db_respond_json(struct db_httpd_req *req, int status, const json_t *obj)
{
    char *text = obj ? db_json_dump(obj) : NULL;
    if (!text) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    db_httpd_respond(req, status, "application/json", text, strlen(text), NULL);
    free(text);
}

void db_respond_field_error(struct db_httpd_req *req, int status, const char *code,
                            const char *field, const char *message)
{
    if (!field) {
        db_httpd_respond_error(req, status, code, message);
        return;
    }
    json_t *err = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "field", field,
                            "message", message);
    if (err) db_respond_json(req, status, err);
    else db_httpd_respond_error(req, status, code, message);
    json_decref(err);
}

/* The log line names the tenant and the kind of route only: the path may hold a customer's
 * id. */
void db_api_refuse(struct db_httpd_req *req, const struct db_tenant *t, int status,
                   const char *code, const char *field, const char *what)
{
    struct db_log_ctx ctx = {"api", NULL, NULL, NULL};
    db_log(DB_LOG_INFO, &ctx, "tenant=%s refused %d %s", t->name, status, code);
    db_respond_field_error(req, status, code, field, what);
}

void db_respond_unavailable(struct db_httpd_req *req)
{
    static const char *const retry[] = {"Retry-After: 1", NULL};
    static const char body[] =
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"storage unavailable, retry\"}}";
    db_httpd_respond(req, 503, "application/json", body, sizeof body - 1, retry);
}

json_t *db_respond_body_object(struct db_httpd_req *req)
{
    size_t len;
    const unsigned char *body = db_httpd_req_body(req, &len);
    json_t *obj = NULL;
    struct db_err e = {0};
    if (db_json_parse_object(body, len, &obj, &e) != DB_OK)
        db_respond_field_error(req, 400, "invalid_json", "body", e.msg);
    return obj;
}
