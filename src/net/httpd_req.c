/* httpd_req.c - the handler's side of a request (httpd.h): its parts, and the answer written
 * back (status line, headers, body or stream chunks), each answer formatted here whole. */
#include "net/httpd_internal.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Status";
}

/* Handler-supplied header text goes out verbatim, so CR/LF in it would split the response. */
static int header_text_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

/* JSON string body of s into dst (without quotes), truncated to fit cap on a character
 * boundary.  Returns bytes written. */
static size_t json_escape(char *dst, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (w + 6 > cap) {
            while (w > 0 && ((unsigned char)dst[w - 1] & 0xC0) == 0x80) w--;
            if (w > 0 && ((unsigned char)dst[w - 1] & 0x80)) w--;
            break;
        }
        if (*p == '"' || *p == '\\') {
            dst[w++] = '\\';
            dst[w++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(dst + w, "\\u00", 4);
            dst[w + 4] = hex[*p >> 4];
            dst[w + 5] = hex[*p & 15];
            w += 6;
        } else {
            dst[w++] = (char)*p;
        }
    }
    return w;
}

size_t db_httpd_error_body(char *buf, size_t cap, const char *code, const char *message)
{
    size_t n = 0;
    memcpy(buf, "{\"error\":{\"code\":\"", 18);
    n = 18;
    n += json_escape(buf + n, 128, code ? code : "error");
    memcpy(buf + n, "\",\"message\":\"", 13);
    n += 13;
    n += json_escape(buf + n, cap - n - 8, message ? message : "");
    memcpy(buf + n, "\"}}", 3);
    return n + 3;
}

void db_httpd_write_head(struct evbuffer *out, int status, const char *ctype, long long clen,
                         int chunked, int keep, int minor, const char *const *extra)
{
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n", status, reason(status));
    evbuffer_add(out, head, (size_t)n);
    if (header_text_ok(ctype) && strlen(ctype) < 200) {
        n = snprintf(head, sizeof head, "Content-Type: %s\r\n", ctype);
        evbuffer_add(out, head, (size_t)n);
    }
    if (clen >= 0) {
        n = snprintf(head, sizeof head, "Content-Length: %lld\r\n", clen);
        evbuffer_add(out, head, (size_t)n);
    } else if (chunked) {
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        if (!header_text_ok(extra[i]) || !strchr(extra[i], ':')) continue;
        evbuffer_add(out, extra[i], strlen(extra[i]));
        evbuffer_add(out, "\r\n", 2);
    }
    if (!keep) evbuffer_add(out, "Connection: close\r\n\r\n", 21);
    else if (minor == 0) evbuffer_add(out, "Connection: keep-alive\r\n\r\n", 26);
    else evbuffer_add(out, "\r\n", 2);
}

/* ---- public API: request ---- */

const char *db_httpd_req_method(const struct db_httpd_req *r) { return r->h.method; }
const char *db_httpd_req_path(const struct db_httpd_req *r) { return r->h.path; }
const char *db_httpd_req_query(const struct db_httpd_req *r) { return r->h.query; }
const char *db_httpd_req_peer(const struct db_httpd_req *r) { return r->peer; }

const char *db_httpd_req_header(const struct db_httpd_req *r, const char *name)
{
    return db_headers_get(&r->headers, name);
}

const struct db_headers *db_httpd_req_headers(const struct db_httpd_req *r)
{
    return &r->headers;
}

const unsigned char *db_httpd_req_body(const struct db_httpd_req *r, size_t *len)
{
    if (len) *len = r->body_len;
    return r->body ? r->body : (const unsigned char *)"";
}

void db_httpd_req_inbound(const struct db_httpd_req *r, struct db_inbound *in)
{
    in->method = r->h.method;
    in->path = r->h.path;
    in->query = r->h.query;
    in->headers = &r->headers;
    in->body = db_httpd_req_body(r, &in->body_len);
}

void db_httpd_req_set_data(struct db_httpd_req *r, void *data) { r->data = data; }
void *db_httpd_req_data(const struct db_httpd_req *r) { return r->data; }

/* ---- public API: answers ---- */

void db_httpd_respond(struct db_httpd_req *r, int status, const char *ctype, const void *body,
                      size_t len, const char *const *extra_headers)
{
    struct conn *c = r->c;
    int keep = r->h.keepalive && !r->s->draining;
    if (c) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        db_httpd_write_head(out, status, ctype, (long long)len, 0, keep, r->h.minor, extra_headers);
        if (len && r->h.method_id != DB_HTTP_HEAD) evbuffer_add(out, body, len);
        db_httpd_conn_send(c);
    }
    db_httpd_request_done(r, keep);
}

void db_httpd_respond_error(struct db_httpd_req *r, int status, const char *code,
                            const char *message)
{
    char body[1024];
    size_t n = db_httpd_error_body(body, sizeof body, code, message);
    db_httpd_respond(r, status, "application/json", body, n, NULL);
}

void db_httpd_stream_start(struct db_httpd_req *r, int status, const char *ctype,
                           const char *const *extra_headers, db_httpd_gone_fn gone_cb,
                           void *arg)
{
    r->streaming = 1;
    r->gone_cb = gone_cb;
    r->gone_arg = arg;
    /* HTTP/1.0 has no chunked coding: the end of the stream is the end of the connection */
    r->stream_chunked = r->h.minor == 1;
    r->keep = r->stream_chunked && r->h.keepalive && !r->s->draining;
    struct conn *c = r->c;
    if (!c) return;
    db_httpd_write_head(bufferevent_get_output(c->bev), status, ctype, -1, r->stream_chunked, r->keep,
               r->h.minor, extra_headers);
    c->st = ST_STREAM;
    db_httpd_conn_send(c);
}

int db_httpd_stream_chunk(struct db_httpd_req *r, const void *data, size_t len)
{
    struct conn *c = r->c;
    if (!c) return -1;
    if (len == 0 || r->h.method_id == DB_HTTP_HEAD) return 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (r->stream_chunked) {
        char sz[24];
        int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
        evbuffer_add(out, sz, (size_t)n);
    }
    evbuffer_add(out, data, len);
    if (r->stream_chunked) evbuffer_add(out, "\r\n", 2);
    db_httpd_conn_send(c);
    return 0;
}

size_t db_httpd_stream_pending(const struct db_httpd_req *r)
{
    return r->c ? evbuffer_get_length(bufferevent_get_output(r->c->bev)) : 0;
}

void db_httpd_stream_abort(struct db_httpd_req *r)
{
    /* No closing chunk, then close: the client sees the transfer as incomplete. */
    db_httpd_request_done(r, 0);
}

void db_httpd_stream_end(struct db_httpd_req *r)
{
    struct conn *c = r->c;
    if (c && r->stream_chunked && r->h.method_id != DB_HTTP_HEAD) {
        evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
        db_httpd_conn_send(c);
    }
    db_httpd_request_done(r, r->keep);
}
