/* httpd_parse.h - the request-head parser of httpd.c, kept apart so it can be fuzzed.
 *
 * Works in place on one contiguous copy of the head (request line, header lines and the
 * blank line): delimiters are overwritten with NULs and the path is percent-decoded inside
 * the same bytes, so a request costs no allocation beyond that copy.  Every violation is
 * reported with the HTTP status and short code the server answers with. */
#ifndef DB_HTTPD_PARSE_H
#define DB_HTTPD_PARSE_H

#include <stddef.h>

#include "deskbridge/http_msg.h"
#include "deskbridge/status.h"

enum db_http_method {
    DB_HTTP_OTHER = 0, /* a valid token we do not serve: 501 */
    DB_HTTP_GET,
    DB_HTTP_HEAD,
    DB_HTTP_POST,
    DB_HTTP_PUT,
    DB_HTTP_DELETE,
};

struct db_http_head {
    const char *method; /* all pointers borrowed from the parsed buffer */
    enum db_http_method method_id;
    char *path;         /* percent-decoded, NUL-terminated */
    char *query;        /* raw text after '?', NULL when the target had none */
    int minor;          /* 0 or 1 (HTTP/1.x) */
    struct db_header *hv; /* the caller's array; name/value point into the buffer */
    size_t nh;
    long long content_length; /* -1 when absent */
    int chunked;        /* Transfer-Encoding: chunked */
    int keepalive;      /* after the version default and any Connection tokens */
    int expect_continue;
    /* on failure: what to answer */
    int err_status;     /* 400, 431, 501, 505 or 417 */
    const char *err_code;
};

/* Number of header lines in a complete head of len bytes (counted by line ends, so it is an
 * upper bound usable to size hv before parsing). */
size_t db_http_head_count_lines(const char *buf, size_t len);

/* Parses buf[0..len), which must end with "\r\n\r\n", writing into buf.  hv has room for
 * hv_cap headers; more than that is answered 431.  Returns DB_OK, or DB_EINVAL /
 * DB_ETOOBIG / DB_EUNSUPPORTED with out->err_status, out->err_code and e->msg set.  Nothing
 * is allocated; all pointers in out live as long as buf. */
int db_http_head_parse(char *buf, size_t len, struct db_header *hv, size_t hv_cap,
                       struct db_http_head *out, struct db_err *e) DB_MUST_CHECK;

#endif
