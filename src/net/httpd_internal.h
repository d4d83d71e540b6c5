/* httpd_internal.h - the state httpd.c (connections, reading requests, limits) and httpd_req.c
 * (the handler's side of a request: its parts and the answer) share; nothing else includes it. */
#ifndef DB_HTTPD_INTERNAL_H
#define DB_HTTPD_INTERNAL_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/httpd_types.h"
#include "net/httpd_parse.h"

#define PEER_MAX 64

enum cstate {
    ST_HEAD,   /* waiting for / reading a request head */
    ST_BODY,   /* reading the body of c->req */
    ST_HANDLE, /* c->req is with the handler */
    ST_STREAM, /* c->req is answering with a stream */
    ST_FLUSH,  /* last answer queued, closing once written */
    ST_LINGER, /* write side shut, discarding input until EOF or LINGER_MS */
    ST_DEAD,   /* closed; memory released when the current callback unwinds */
};

enum ckstate { CK_SIZE, CK_DATA, CK_DATA_END, CK_TRAILER };

struct conn {
    struct db_httpd *s;
    struct conn *prev, *next;
    struct bufferevent *bev;
    struct event *timer;
    struct db_httpd_req *req; /* being read, handled or streamed; NULL between requests */
    enum cstate st;
    enum ckstate ck;
    size_t ck_left;      /* bytes left in the current chunk */
    size_t trailer_bytes;
    size_t body_cap;     /* from the route callback */
    size_t scanned;      /* input bytes already searched for the end of the head */
    int deadline_armed;  /* the timer is the absolute head deadline (not keep-alive idle) */
    long long body_until_ms; /* monotonic: the whole body must have arrived by then */
    int busy;            /* inside conn_process: frees are deferred to its end */
    char peer[PEER_MAX];
};

struct db_httpd_req {
    struct db_httpd *s;
    struct conn *c; /* NULL once the client is gone */
    struct db_httpd_req *prev, *next; /* s->inflight, once dispatched */
    struct db_http_head h;
    struct db_headers headers; /* v points into this allocation; never db_headers_clear'd */
    unsigned char *body;
    size_t body_len, body_alloc;
    void *data;
    db_httpd_gone_fn gone_cb;
    void *gone_arg;
    unsigned dispatched : 1, streaming : 1, stream_chunked : 1, keep : 1;
    char peer[PEER_MAX];
    /* followed by the header array and the head text */
};

struct db_httpd {
    struct event_base *base;
    struct db_httpd_limits lim;
    db_httpd_body_limit_fn limit_cb;
    db_httpd_handler_fn handler;
    void *arg;
    struct evconnlistener **ls;
    size_t nls;
    int port;
    int draining;
    struct event *accept_retry;
    struct conn *conns;
    size_t nconns;
    size_t peak; /* the most connections open at once since db_httpd_connections_peak_reset */
    struct db_httpd_req *inflight;
    size_t ninflight;
};

/* httpd.c: writes queued answer bytes now when nothing waits before them (else the
 * bufferevent's write event does). */
void db_httpd_conn_send(struct conn *c);
/* httpd.c: r was answered or its stream ended: frees r, then closes the connection or goes
 * back to reading its next request. */
void db_httpd_request_done(struct db_httpd_req *r, int keep);

/* httpd_head.c: the status line and headers of an answer into out.  clen < 0: a stream
 * (chunked when `chunked`); extra: whole header lines, those with CR/LF or no colon dropped. */
void db_httpd_write_head(struct evbuffer *out, int status, const char *ctype, long long clen,
                         int chunked, int keep, int minor, const char *const *extra);
/* httpd_head.c: {"error":{"code":..,"message":..}} into buf (at least 1024 bytes); returns its
 * length. */
size_t db_httpd_error_body(char *buf, size_t cap, const char *code, const char *message);

#endif
