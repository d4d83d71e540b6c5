/* httpd_req.c - the handler's side of a request (httpd.h): its parts, and the answer written
 * back (status line, headers, body or stream chunks), each answer formatted here whole. */
#include "net/httpd_internal.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

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
