/* router.h - one table of HTTP routes, filled by the modules that own them.
 *
 * A route is a method (NULL: any), a path (exact, a prefix when it ends in '/', or a pattern
 * with one '*'), a body cap, who may call it, and a handler.  The router answers 404 for
 * what no route takes (a route with method NULL answers other methods itself, e.g. 405),
 * checks the bearer token of token routes before
 * the handler runs (401 with a JSON body otherwise), and hands the handler the caller: the
 * operator or one tenant, with the configuration the check used.  A handler answers its
 * request exactly once (net/httpd.h), now or later.
 *
 * Session routes are for people signed in with a browser: the router refuses a request
 * that changes state (any method but GET and HEAD) from another origin (403) before
 * anything else, then asks the session owner (db_router_set_session_lookup) who is calling;
 * the lookup may take a Redis round trip and answers with db_router_session_found.  No
 * session, or one whose tenant is no longer configured, answers 401.
 *
 * Routes are matched in the order they were added; an exact path before a prefix that also
 * covers it only when added first.  Registration happens at start-up, before the listener
 * accepts, so the table never changes under a request. */
#ifndef DB_ROUTER_H
#define DB_ROUTER_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_services;
struct db_httpd_req;
struct db_config;
struct db_tenant;
struct db_router;

enum db_route_access {
    DB_ROUTE_OPEN,  /* anyone: health checks, webhooks (they verify their own signatures) */
    DB_ROUTE_TOKEN, /* a bearer token of the operator or of a tenant (docs/config.md) */
    DB_ROUTE_SESSION, /* a signed-in person's session cookie, same-origin writes only */
};

/* A signed-in person (session routes only). */
struct db_session {
    char id_hash[65];  /* hex SHA-256 of the cookie's session id: names it in Redis */
    char agent[72];    /* the agent id */
    char tenant[72];   /* the agent's tenant, "" for an operator's agent */
    int supervisor;    /* role: 1 supervisor, 0 agent */
};

/* Who is calling a token route, for the duration of the handler call: cfg is the
 * configuration the token was checked against (borrowed; take a reference with db_cfg_ref
 * to keep it past the call); tenant is NULL for the operator, else borrowed from cfg. */
struct db_caller {
    const struct db_config *cfg;
    const struct db_tenant *tenant;
    const struct db_session *session; /* session routes only, else NULL; borrowed */
};

typedef void (*db_route_fn)(struct db_httpd_req *req, const struct db_caller *who, void *arg);
/* A body cap that depends on the path (0 = the server's default). */
typedef size_t (*db_route_limit_fn)(const char *path, void *arg);

struct db_route {
    const char *method;       /* "GET", "POST", ...; NULL for any */
    const char *path;         /* exact, or a prefix when it ends in '/', or a pattern whose
                                 one '*' stands for one or more characters, '/' included:
                                 "/v1/conversations/" "*" "/typing" (static string) */
    size_t body_limit;        /* bytes; 0 = the server's default */
    db_route_limit_fn limit;  /* optional: overrides body_limit per path */
    enum db_route_access access;
    db_route_fn handler;
    void *arg;
    int admin;                /* the operator's (like every token route): with admin_listen
                                 set, served only on that listener */
};

/* A router over svc (its configuration is read for the token check).  NULL on ENOMEM.
 * Free with db_router_free. */
struct db_router *db_router_new(struct db_services *svc);
void db_router_free(struct db_router *r); /* NULL-safe */

/* Adds a route (copied; its strings must outlive the router).  DB_OK or DB_ENOMEM. */
int db_router_add(struct db_router *r, const struct db_route *route) DB_MUST_CHECK;

/* The callbacks to give db_httpd_new with the router as arg: the public listener's (with
 * [gateway] admin_listen set, it answers 404 for the operator's routes: token routes and
 * those marked admin) and the admin listener's (every route). */
size_t db_router_body_limit_cb(const char *method, const char *path, void *arg);
void db_router_handle_cb(struct db_httpd_req *req, void *arg);
size_t db_router_admin_body_limit_cb(const char *method, const char *path, void *arg);
void db_router_admin_handle_cb(struct db_httpd_req *req, void *arg);

/* A session route's request waiting for its caller: give it back to
 * db_router_session_found exactly once. */
struct db_router_pending;
/* Finds the session of req (its cookie) and calls db_router_session_found. */
typedef void (*db_session_lookup_fn)(struct db_httpd_req *req, struct db_router_pending *p,
                                     void *arg);
/* Sets who answers session lookups (one per router; session routes answer 401 without). */
void db_router_set_session_lookup(struct db_router *r, db_session_lookup_fn fn, void *arg);
/* Runs the waiting route's handler as s (copied for the call), or answers 401 when s is
 * NULL; frees p. */
void db_router_session_found(struct db_router_pending *p, const struct db_session *s);

/* Answers the waiting request 503 (the session store did not answer); frees p. */
void db_router_session_failed(struct db_router_pending *p);

/* 1 when req comes from the page's own origin: its Origin header names the host of its Host
 * header (http or https), and Sec-Fetch-Site, when the browser sends it, is same-origin.
 * A request without Origin is refused: browsers send it with every write. */
int db_router_same_origin(const struct db_httpd_req *req);

/* Splits the part of path after prefix into exactly n non-empty '/'-separated segments,
 * copied into buf (seg[i] point into it).  1 when path has that shape, else 0. */
int db_route_segments(const char *path, const char *prefix, char *buf, size_t bufsz,
                      char **seg, int n);

#endif
