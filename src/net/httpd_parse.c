/* httpd_parse.c - strict HTTP/1.x request-head parser (RFC 9112 grammar, no leniency that
 * could let a front proxy and us disagree about where a request ends). */
#include "net/httpd_parse.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int fail(struct db_http_head *out, struct db_err *e, int code, int status,
                const char *short_code, const char *msg)
{
    out->err_status = status;
    out->err_code = short_code;
    return db_err_set(e, code, "%s", msg);
}

#define BAD(msg) fail(out, e, DB_EINVAL, 400, "bad_request", (msg))

size_t db_http_head_count_lines(const char *buf, size_t len)
{
    size_t n = 0;
    const char *p = buf, *end = buf + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        n++;
        p++;
    }
    /* request line and the closing blank line are not headers */
    return n >= 2 ? n - 2 : 0;
}

static enum db_http_method method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) return DB_HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0) return DB_HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0) return DB_HTTP_POST;
        if (memcmp(m, "HEAD", 4) == 0) return DB_HTTP_HEAD;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) return DB_HTTP_DELETE;
        break;
    }
    return DB_HTTP_OTHER;
}

/* Decodes %XX in place; refuses %00 (it would cut the C string short and hide the rest of
 * the path from routing) and malformed escapes. */
static int decode_path(char *p)
{
    char *w = p;
    for (char *r = p; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hexval((unsigned char)r[1]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)r[2]);
        if (hi < 0 || lo < 0) return -1;
        if (hi == 0 && lo == 0) return -1;
        *w++ = (char)(hi << 4 | lo);
        r += 2;
    }
    *w = '\0';
    return 0;
}

static int parse_request_line(char *line, size_t n, struct db_http_head *out, struct db_err *e)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i])) i++;
    if (i == 0 || i > 16 || i >= n || line[i] != ' ') return BAD("malformed request line");
    out->method = line;
    out->method_id = method_of(line, i);
    line[i++] = '\0';

    char *target = line + i;
    while (i < n && line[i] != ' ') {
        unsigned char c = (unsigned char)line[i];
        /* non-ASCII and '#' must arrive escaped; control bytes never */
        if (c <= 0x20 || c >= 0x7f || c == '#') return BAD("invalid byte in request target");
        i++;
    }
    if (i >= n || line + i == target) return BAD("malformed request line");
    line[i++] = '\0';

    if (n - i != 8 || memcmp(line + i, "HTTP/", 5) != 0 ||
        line[i + 5] < '0' || line[i + 5] > '9' || line[i + 6] != '.' ||
        line[i + 7] < '0' || line[i + 7] > '9')
        return BAD("malformed HTTP version");
    if (line[i + 5] != '1' || (line[i + 7] != '0' && line[i + 7] != '1'))
        return fail(out, e, DB_EUNSUPPORTED, 505, "version_not_supported",
                    "only HTTP/1.0 and HTTP/1.1 are served");
    out->minor = line[i + 7] - '0';

    if (target[0] != '/') return BAD("request target must be an absolute path");
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        out->query = q + 1;
    }
    if (decode_path(target) != 0) return BAD("invalid percent-encoding in path");
    out->path = target;
    return DB_OK;
}

/* One "name: value" line of n bytes (CRLF excluded). */
static int parse_header_line(char *line, size_t n, struct db_header *h, struct db_http_head *out,
                             struct db_err *e)
{
    if (line[0] == ' ' || line[0] == '\t') return BAD("obsolete line folding");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i])) i++;
    if (i == n) return BAD("header line without ':'");
    if (i == 0 || line[i] != ':') return BAD("invalid header name");
    line[i++] = '\0';
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t vstart = i, vend = n;
    for (size_t k = vstart; k < n; k++) {
        unsigned char c = (unsigned char)line[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return BAD("invalid byte in header value");
    }
    while (vend > vstart && (line[vend - 1] == ' ' || line[vend - 1] == '\t')) vend--;
    line[vend] = '\0';
    h->name = line;
    h->value = line + vstart;
    return DB_OK;
}

/* Iterates comma-separated tokens of a list value, trimming OWS. */
static const char *next_token(const char *p, const char **tok, size_t *tlen)
{
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!*p) return NULL;
    const char *s = p;
    while (*p && *p != ',') p++;
    const char *t = p;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    *tok = s;
    *tlen = (size_t)(t - s);
    return p;
}

static int token_is(const char *tok, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(tok, word, n) == 0;
}

static int parse_content_length(const char *v, long long *out)
{
    long long x = 0;
    if (!*v) return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        if (x > (9000000000000000000LL - 9) / 10) return -1;
        x = x * 10 + (*p - '0');
    }
    *out = x;
    return 0;
}

static int apply_semantics(struct db_http_head *out, struct db_err *e)
{
    int te_seen = 0, host_seen = 0, conn_close = 0, conn_keep = 0;
    for (size_t i = 0; i < out->nh; i++) {
        const char *name = out->hv[i].name, *v = out->hv[i].value;
        if (strcasecmp(name, "Content-Length") == 0) {
            long long cl;
            if (parse_content_length(v, &cl) != 0) return BAD("invalid Content-Length");
            if (out->content_length >= 0 && out->content_length != cl)
                return BAD("conflicting Content-Length headers");
            out->content_length = cl;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            /* a second TE header means a coding list ("chunked, chunked" at best) */
            if (te_seen) return BAD("repeated Transfer-Encoding");
            te_seen = 1;
            if (strcasecmp(v, "chunked") != 0)
                return fail(out, e, DB_EUNSUPPORTED, 501, "not_implemented",
                            "only the chunked transfer coding is supported");
            out->chunked = 1;
        } else if (strcasecmp(name, "Connection") == 0) {
            const char *tok;
            size_t tl;
            for (const char *p = v; (p = next_token(p, &tok, &tl));) {
                if (token_is(tok, tl, "close")) conn_close = 1;
                else if (token_is(tok, tl, "keep-alive")) conn_keep = 1;
            }
        } else if (strcasecmp(name, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") != 0)
                return fail(out, e, DB_EUNSUPPORTED, 417, "expectation_failed",
                            "only Expect: 100-continue is supported");
            out->expect_continue = 1;
        } else if (strcasecmp(name, "Host") == 0) {
            if (host_seen) return BAD("repeated Host header");
            host_seen = 1;
        }
    }
    /* both framings at once is the classic request-smuggling vector: refuse, do not pick */
    if (te_seen && out->content_length >= 0)
        return BAD("Content-Length together with Transfer-Encoding");
    if (out->minor == 1 && !host_seen) return BAD("missing Host header");
    out->keepalive = out->minor == 1 ? !conn_close : (conn_keep && !conn_close);
    return DB_OK;
}

int db_http_head_parse(char *buf, size_t len, struct db_header *hv, size_t hv_cap,
                       struct db_http_head *out, struct db_err *e)
{
    memset(out, 0, sizeof *out);
    out->content_length = -1;
    out->hv = hv;
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) return BAD("incomplete head");

    char *p = buf, *end = buf + len;
    int first = 1;
    for (;;) {
        char *eol = memchr(p, '\r', (size_t)(end - p));
        /* a CR that does not start CRLF, or an LF on its own, is a smuggling ingredient */
        if (!eol || eol + 1 >= end || eol[1] != '\n') return BAD("bare CR in head");
        size_t n = (size_t)(eol - p);
        if (memchr(p, '\n', n)) return BAD("bare LF in head");
        if (first) {
            if (n == 0) return BAD("empty request line");
            int rc = parse_request_line(p, n, out, e);
            if (rc != DB_OK) return rc;
            *eol = '\0';
            first = 0;
        } else if (n == 0) {
            p = eol + 2;
            break;
        } else {
            if (out->nh >= hv_cap)
                return fail(out, e, DB_ETOOBIG, 431, "headers_too_large", "too many headers");
            int rc = parse_header_line(p, n, &hv[out->nh], out, e);
            if (rc != DB_OK) return rc;
            out->nh++;
        }
        p = eol + 2;
    }
    if (p != end) return BAD("data after the head");
    return apply_semantics(out, e);
}
