/* respond.h - JSON answers shared by every route owner. */
#ifndef DB_RESPOND_H
#define DB_RESPOND_H

#include <jansson.h>

struct db_httpd_req;
struct db_tenant;

/* Answers with the JSON text of obj (a borrowed reference); 500 when out of memory. */
void db_respond_json(struct db_httpd_req *req, int status, const json_t *obj);
/* Answers {"error": {code, field, message}} (field may be NULL: then no field member). */
void db_respond_field_error(struct db_httpd_req *req, int status, const char *code,
                            const char *field, const char *message);
/* Answers a tenant's request for something outside its accounts with status and
 * {"error": {code, message, field}} (field may be NULL), and logs the tenant's name, never a
 * token or the path.  A 404 must carry the same code and message as a real miss. */
void db_api_refuse(struct db_httpd_req *req, const struct db_tenant *t, int status,
                   const char *code, const char *field, const char *what);
/* The request's body as a JSON object (new reference, the caller decrefs it), or NULL after
 * answering 400 {"error": {"code": "invalid_json", "field": "body", ...}} saying why. */
json_t *db_respond_body_object(struct db_httpd_req *req);
/* 503 {"error": {"code": "unavailable", ...}} with Retry-After: 1, for a Redis failure. */
void db_respond_unavailable(struct db_httpd_req *req);

#endif
