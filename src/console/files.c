/* files.c - serves the console's files: GET /console/ is index.html, GET /console/<name> a
 * file of the table, each with the console's security headers (console.c): a strict
 * Content-Security-Policy (default-src 'self', no inline script, frame-ancestors 'none'),
 * nosniff, no framing, no referrer. */
#include <stdio.h>
#include <string.h>

#include "console/console_internal.h"
#include "console/files.h"
#include "services/services.h"
#include "http/router.h"
#include "net/httpd.h"

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0) return "image/svg+xml";
    return "application/octet-stream";
}

static void serve(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who, (void)arg;
    const char *path = db_httpd_req_path(req);
    const char *name = strcmp(path, "/console/") == 0 ? "index.html" : path + strlen("/console/");
    for (const struct db_console_file *f = db_console_files; f->name; f++)
        if (strcmp(f->name, name) == 0) {
            db_httpd_respond(req, 200, type_of(name), f->data, f->len, db_console_headers);
            return;
        }
    db_httpd_respond_error(req, 404, "not_found", "no such file");
}

static void to_slash(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who, (void)arg;
    const char *hdr[] = {"Location: /console/", NULL};
    db_httpd_respond(req, 301, "text/plain", "", 0, hdr);
}

int db_console_file_routes(struct db_services *svc)
{
    const struct db_route routes[] = {
        {"GET", "/console", 0, NULL, DB_ROUTE_OPEN, to_slash, svc, 0},
        {"GET", "/console/", 0, NULL, DB_ROUTE_OPEN, serve, svc, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (db_router_add(svc->router, &routes[i]) != DB_OK) return DB_ENOMEM;
    return DB_OK;
}
