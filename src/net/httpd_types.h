/* httpd_types.h - the types the HTTP server's interface (httpd.h) and its parts' shared state
 * (httpd_internal.h) both use: its limits and the callbacks a server and a request take.
 * Kept apart so that the internal header need not include the public one. */
#ifndef DB_HTTPD_TYPES_H
#define DB_HTTPD_TYPES_H

#include <stddef.h>

struct db_httpd;
struct db_httpd_req;

struct db_httpd_limits {
    size_t max_header_bytes;    /* request line + headers; over -> 431 (default 16384) */
    size_t max_headers;         /* count; over -> 431 (default 100) */
    size_t max_body;            /* default body cap when the route callback says 0 (1 MiB) */
    int header_timeout_ms;      /* whole head must arrive within (default 10000) */
    int body_timeout_ms;        /* idle time between body reads (default 10000) */
    int body_deadline_ms;       /* whole body must arrive within (default 10000), so a body
                                   trickling a byte at a time cannot hold a connection */
    int keepalive_timeout_ms;   /* idle keep-alive connection closed after (default 30000) */
    int max_connections;        /* accepted at once; more are closed at once (default 1024) */
};

/* Called once the head of a request is read, before its body: returns the body cap for this
 * method and path (0 = limits.max_body). */
typedef size_t (*db_httpd_body_limit_fn)(const char *method, const char *path, void *arg);
/* Called with a complete request. */
typedef void (*db_httpd_handler_fn)(struct db_httpd_req *req, void *arg);

/* Called when a streaming answer's client disconnects (db_httpd_stream_start). */
typedef void (*db_httpd_gone_fn)(struct db_httpd_req *r, void *arg);

#endif
