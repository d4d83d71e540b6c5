/* http_msg.h - plain HTTP value types that connectors read and build.
 *
 * Connectors never touch a socket: the daemon hands them a struct db_inbound (a webhook as
 * received) or a struct db_http_resp (a platform's answer), and takes from them a
 * struct db_http_req to send.  No libevent, curl or hiredis type appears here. */
#ifndef DESKBRIDGE_HTTP_MSG_H
#define DESKBRIDGE_HTTP_MSG_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_header {
    char *name;  /* owned by the list */
    char *value; /* owned by the list */
};

struct db_headers {
    struct db_header *v;
    size_t n, cap;
};

/* Case-insensitive lookup of the first header called name; borrowed pointer or NULL. */
const char *db_headers_get(const struct db_headers *h, const char *name);
/* Appends copies of name and value.  DB_OK or DB_ENOMEM. */
int db_headers_add(struct db_headers *h, const char *name, const char *value) DB_MUST_CHECK;
/* Frees every entry and the array; h is empty and reusable afterwards.  NULL-safe. */
void db_headers_clear(struct db_headers *h);

/* A request as the daemon received it.  Every pointer is borrowed for the duration of the
 * call it is passed to.  body is the raw bytes as received (signatures are computed over
 * them); it is NOT NUL-terminated. */
struct db_inbound {
    const char *method;  /* "GET", "POST" */
    const char *path;    /* decoded path, e.g. "/webhooks/telegram/7000000001" */
    const char *query;   /* raw query string without '?', NULL when absent */
    const struct db_headers *headers;
    const unsigned char *body;
    size_t body_len;
};

/* Returns a malloc'd, percent-decoded copy of the query parameter `name` from the raw query
 * string q, or NULL when absent (or on ENOMEM).  Caller frees. */
char *db_query_param(const char *q, const char *name);

/* A request a connector asks the daemon to send.  Everything is owned by the struct and
 * released by db_http_req_clear(). */
struct db_http_req {
    char *method;              /* "GET" or "POST" */
    char *url;                 /* absolute; may contain a token: never log it unredacted */
    struct db_headers headers; /* e.g. Content-Type, Authorization */
    char *body;                /* may be NULL */
    size_t body_len;
};

/* Frees what req owns and zeroes it.  NULL-safe. */
void db_http_req_clear(struct db_http_req *req);

/* Convenience for connectors: fills req with a POST of the JSON text of `json_text`
 * (copied) to url (copied) with Content-Type application/json.  DB_OK or DB_ENOMEM; on
 * failure req is cleared. */
int db_http_req_post_json(struct db_http_req *req, const char *url, const char *json_text)
    DB_MUST_CHECK;

/* A platform's answer, borrowed for the duration of the call it is passed to. */
struct db_http_resp {
    long status;                      /* HTTP status; 0 when transport failed */
    const struct db_headers *headers; /* may be NULL */
    const char *body;                 /* not NUL-terminated; may be NULL */
    size_t body_len;
    const char *transport_error;      /* NULL, or why no HTTP answer came (timeout, reset) */
};

#endif
