#include "http/router.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/config.h"
#include "services/services.h"
#include "net/httpd.h"
#include "util/crypto.h"
#include "util/join.h"

struct db_router {
    struct db_services *svc;
    struct db_route *routes;
    size_t n, cap;
    db_session_lookup_fn session_lookup;
    void *session_arg;
};

struct db_router_pending {
    struct db_httpd_req *req;
    const struct db_route *rt;
    struct db_cfg_ref *ref; /* the configuration the request started with */
};

void db_router_set_session_lookup(struct db_router *r, db_session_lookup_fn fn, void *arg)
{
    r->session_lookup = fn;
    r->session_arg = arg;
}

struct db_router *db_router_new(struct db_services *svc)
{
    struct db_router *r = calloc(1, sizeof *r);
    if (r) r->svc = svc;
    return r;
}

void db_router_free(struct db_router *r)
{
    if (!r) return;
    free(r->routes);
    free(r);
}

int db_router_add(struct db_router *r, const struct db_route *route)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct db_route *grown = realloc(r->routes, cap * sizeof *grown);
        if (!grown) return DB_ENOMEM;
        r->routes = grown;
        r->cap = cap;
    }
    r->routes[r->n++] = *route;
    return DB_OK;
}

static int path_matches(const struct db_route *rt, const char *path)
{
    size_t n = strlen(rt->path);
    const char *star = strchr(rt->path, '*');
    if (star) {
        size_t head = (size_t)(star - rt->path), tail = n - head - 1, pl = strlen(path);
        return pl > head + tail && strncmp(path, rt->path, head) == 0 &&
               strcmp(path + pl - tail, star + 1) == 0;
    }
    if (n && rt->path[n - 1] == '/') return strncmp(path, rt->path, n) == 0;
    return strcmp(path, rt->path) == 0;
}

/* Whether the public listener leaves rt to the admin listener: only when one is configured.
 * Read from the current configuration, which a reload may change (the listeners stay). */
static int admin_only(const struct db_router *r, const struct db_route *rt)
{
    return (rt->admin || rt->access == DB_ROUTE_TOKEN) && r->svc->cfg &&
           r->svc->cfg->cfg->admin_listen;
}

static const struct db_route *find(const struct db_router *r, const char *method, const char *path,
                                   int admin)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct db_route *rt = &r->routes[i];
        if ((!rt->method || strcmp(rt->method, method) == 0) && path_matches(rt, path))
            return admin || !admin_only(r, rt) ? rt : NULL;
    }
    return NULL;
}

static size_t body_limit(const char *method, const char *path, void *arg, int admin)
{
    const struct db_route *rt = find(arg, method, path, admin);
    if (!rt) return 0;
    return rt->limit ? rt->limit(path, rt->arg) : rt->body_limit;
}

size_t db_router_body_limit_cb(const char *method, const char *path, void *arg)
{
    return body_limit(method, path, arg, 0);
}

size_t db_router_admin_body_limit_cb(const char *method, const char *path, void *arg)
{
    return body_limit(method, path, arg, 1);
}

/* Operator (tenant NULL) or one tenant; 0 when the bearer token matches none.  Every token
 * is compared (no early exit) so timing does not tell which one matched; tokens are unique
 * across the gateway and the tenants (config check), so at most one does. */
static int authorize(const struct db_config *cfg, struct db_httpd_req *req,
                     const struct db_tenant **tenant)
{
    int ok = 0;
    *tenant = NULL;
    const char *h = db_httpd_req_header(req, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    for (size_t i = 0; i < cfg->n_api_tokens; i++) ok |= db_ct_streq(h + 7, cfg->api_tokens[i]);
    for (size_t t = 0; t < cfg->n_tenants; t++)
        for (size_t i = 0; i < cfg->tenants[t].n_api_tokens; i++) {
            int hit = db_ct_streq(h + 7, cfg->tenants[t].api_tokens[i]);
            ok |= hit;
            if (hit) *tenant = &cfg->tenants[t];
        }
    return ok;
}

int db_router_same_origin(const struct db_httpd_req *req)
{
    const char *origin = db_httpd_req_header(req, "Origin");
    const char *host = db_httpd_req_header(req, "Host");
    const char *site = db_httpd_req_header(req, "Sec-Fetch-Site");
    if (!origin || !host || !*host) return 0;
    if (site && strcmp(site, "same-origin") != 0) return 0;
    const char *h = strncmp(origin, "http://", 7) == 0    ? origin + 7
                    : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                          : NULL;
    return h && strcasecmp(h, host) == 0;
}

void db_router_session_found(struct db_router_pending *p, const struct db_session *s)
{
    const struct db_tenant *tenant = NULL;
    int known = s != NULL;
    for (size_t t = 0; s && *s->tenant && t < p->ref->cfg->n_tenants; t++)
        if (strcmp(p->ref->cfg->tenants[t].name, s->tenant) == 0) tenant = &p->ref->cfg->tenants[t];
    /* A session of a tenant that a reload removed reaches nothing. */
    if (s && *s->tenant && !tenant) known = 0;
    if (!known) {
        db_httpd_respond_error(p->req, 401, "signed_out", "sign in again");
    } else {
        struct db_session copy = *s;
        struct db_caller who = {.cfg = p->ref->cfg, .tenant = tenant, .session = &copy};
        p->rt->handler(p->req, &who, p->rt->arg);
    }
    db_cfg_unref(p->ref);
    free(p);
}

void db_router_session_failed(struct db_router_pending *p)
{
    db_httpd_respond_error(p->req, 503, "unavailable", "storage unavailable, retry");
    db_cfg_unref(p->ref);
    free(p);
}

static void start_session_route(struct db_router *r, const struct db_route *rt,
                                struct db_httpd_req *req)
{
    const char *m = db_httpd_req_method(req);
    /* Cookies ride along with cross-site requests; a write must come from the page. */
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && !db_router_same_origin(req)) {
        db_httpd_respond_error(req, 403, "cross_origin", "request from another origin");
        return;
    }
    struct db_router_pending *p = r->session_lookup ? calloc(1, sizeof *p) : NULL;
    if (!p) {
        db_httpd_respond_error(req, 401, "signed_out", "sign in again");
        return;
    }
    *p = (struct db_router_pending){.req = req, .rt = rt, .ref = db_cfg_ref(r->svc)};
    r->session_lookup(req, p, r->session_arg);
}

static void handle(struct db_httpd_req *req, struct db_router *r, int admin)
{
    const struct db_route *rt = find(r, db_httpd_req_method(req), db_httpd_req_path(req), admin);
    if (!rt) {
        db_httpd_respond_error(req, 404, "not_found", "no such route");
        return;
    }
    if (rt->access == DB_ROUTE_SESSION) {
        start_session_route(r, rt, req);
        return;
    }
    /* The handler sees the configuration its token was checked against, even when a reload
     * swaps it during the call. */
    struct db_cfg_ref *ref = db_cfg_ref(r->svc);
    struct db_caller who = {.cfg = ref->cfg};
    if (rt->access == DB_ROUTE_TOKEN && !authorize(ref->cfg, req, &who.tenant))
        db_httpd_respond_error(req, 401, "unauthorized",
                               ref->cfg->n_api_tokens || ref->cfg->n_tenants
                                   ? "missing or wrong bearer token"
                                   : "the API is disabled: set DESKBRIDGE_API_TOKEN");
    else rt->handler(req, &who, rt->arg);
    db_cfg_unref(ref);
}

void db_router_handle_cb(struct db_httpd_req *req, void *arg)
{
    handle(req, arg, 0);
}

void db_router_admin_handle_cb(struct db_httpd_req *req, void *arg)
{
    handle(req, arg, 1);
}

int db_route_segments(const char *path, const char *prefix, char *buf, size_t bufsz,
                      char **seg, int n)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0) return 0;
    if (DB_JOIN(buf, bufsz, path + pl) >= bufsz) return 0;
    char *p = buf;
    for (int i = 0; i < n; i++) {
        seg[i] = p;
        char *slash = strchr(p, '/');
        if (i < n - 1) {
            if (!slash) return 0;
            *slash = '\0';
            p = slash + 1;
        } else if (slash) {
            return 0;
        }
        if (!*seg[i]) return 0;
    }
    return 1;
}
