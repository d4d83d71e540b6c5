/* httpd.c - HTTP/1.1 server on evconnlistener + bufferevent (see httpd.h for the contract,
 * docs/internals/httpd.md for the limits and answers).
 *
 * One struct conn per socket runs a small state machine; one struct db_httpd_req per
 * request is a single allocation holding the request object, its header array and its own
 * copy of the head (parsed in place), plus one allocation for a body.  A request that was
 * handed to the handler lives in s->inflight until it is answered, whether or not its
 * connection is still there.
 *
 * Here: listening and accepting (connection cap, accept back-off), each connection's state
 * machine and timers, reading heads and bodies within the limits, and closing.  The request
 * as the handler sees it and the answers written back are httpd_req.c; the head parser is
 * httpd_parse.c. */
#include "net/httpd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "net/httpd_internal.h"
#include "log/log.h"

/* While more than this is queued to a client, pipelined requests are left unparsed: a client
 * that sends requests without reading answers must not make us buffer without bound. */
#define OUT_HIGH (256 * 1024)
/* After the last answer and shutdown(SHUT_WR) we keep reading (and discarding) this long, so
 * unread request bytes do not turn our close into a RST that destroys the answer in flight. */
#define LINGER_MS 500
#define CHUNK_LINE_MAX 256
#define BUSY_BODY "{\"error\":{\"code\":\"overloaded\",\"message\":\"too many connections\"}}"

static const struct db_log_ctx log_ctx = {.module = "httpd"};

static void conn_process(struct conn *c);

/* ---- small helpers ---- */

static void arm_ms(struct event *ev, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- requests ---- */

static void req_free(struct db_httpd_req *r)
{
    if (!r) return;
    free(r->body);
    free(r);
}

static void inflight_unlink(struct db_httpd_req *r)
{
    struct db_httpd *s = r->s;
    if (r->prev) r->prev->next = r->next;
    else s->inflight = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    s->ninflight--;
}

/* ---- connections ---- */

static void conn_destroy(struct conn *c)
{
    event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

/* Closes the socket side at once.  The request being read is freed; a dispatched one is
 * orphaned (kept for its answer) and, if streaming, told through gone_cb.  Memory is
 * released now, or by conn_process when we are inside it. */
static void conn_close(struct conn *c)
{
    if (c->st == ST_DEAD) return;
    struct db_httpd *s = c->s;
    c->st = ST_DEAD;
    evtimer_del(c->timer);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;

    struct db_httpd_req *r = c->req;
    db_httpd_gone_fn gone = NULL;
    void *garg = NULL;
    c->req = NULL;
    if (r) {
        r->c = NULL;
        if (!r->dispatched) {
            req_free(r);
            r = NULL;
        } else if (r->streaming && r->gone_cb) {
            gone = r->gone_cb;
            garg = r->gone_arg;
            r->gone_cb = NULL;
        }
    }
    if (!c->busy) conn_destroy(c);
    /* last: the callback may end the stream, which frees r */
    if (gone) gone(r, garg);
}

/* Queued answer bytes are written at once when nothing is waiting before them; only what the
 * socket does not take goes through the bufferevent's write event (and its write timeout).
 * Arming and disarming that event for every answer cost two epoll_ctl calls per request. */
void db_httpd_conn_send(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->st == ST_DEAD || (bufferevent_get_enabled(c->bev) & EV_WRITE) ||
        evbuffer_get_length(out) == 0)
        return;
    /* A socket bufferevent keeps the front of its output frozen so that only it drains it;
     * it is idle here (write disabled), so the bytes may be taken as it would take them. */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    /* A short write or an error: the bufferevent retries, times out or reports the error */
    if (n < 0 || evbuffer_get_length(out) > 0) bufferevent_enable(c->bev, EV_WRITE);
}

static void conn_linger(struct conn *c)
{
    c->st = ST_LINGER;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    bufferevent_enable(c->bev, EV_READ);
    arm_ms(c->timer, LINGER_MS);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The body timer: the idle timeout, but never past the whole-body deadline. */
static void arm_body_timer(struct conn *c)
{
    long long left = c->body_until_ms - mono_ms();
    int ms = c->s->lim.body_timeout_ms;
    if (left < ms) ms = left > 0 ? (int)left : 0;
    arm_ms(c->timer, ms);
}

/* The answer that ends this connection is queued: close once it is written. */
static void conn_begin_close(struct conn *c)
{
    if (c->st == ST_DEAD || c->st == ST_FLUSH || c->st == ST_LINGER) return;
    c->st = ST_FLUSH;
    arm_ms(c->timer, c->s->lim.body_timeout_ms);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) conn_linger(c);
}

/* Error answered by the server itself (no handler involved), then close. */
static void conn_fail(struct conn *c, int status, const char *code, const char *message)
{
    if (c->req && !c->req->dispatched) {
        req_free(c->req);
        c->req = NULL;
    }
    char body[1024];
    size_t n = db_httpd_error_body(body, sizeof body, code, message);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    db_httpd_write_head(out, status, "application/json", (long long)n, 0, 0, 1, NULL);
    evbuffer_add(out, body, n);
    db_httpd_conn_send(c);
    conn_begin_close(c);
}

/* Called when r was answered (or its stream ended): frees r, then either closes the
 * connection or goes back to reading the next request. */
void db_httpd_request_done(struct db_httpd_req *r, int keep)
{
    struct conn *c = r->c;
    inflight_unlink(r);
    req_free(r);
    if (!c) return;
    c->req = NULL;
    if (!keep || c->s->draining) {
        conn_begin_close(c);
        return;
    }
    c->st = ST_HEAD;
    c->scanned = 0;
    c->deadline_armed = 0;
    arm_ms(c->timer, c->s->lim.keepalive_timeout_ms);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) conn_process(c);
}

static void dispatch(struct conn *c)
{
    struct db_httpd *s = c->s;
    struct db_httpd_req *r = c->req;
    evtimer_del(c->timer);
    c->deadline_armed = 0;
    c->st = ST_HANDLE;
    r->dispatched = 1;
    r->next = s->inflight;
    if (s->inflight) s->inflight->prev = r;
    s->inflight = r;
    s->ninflight++;
    s->handler(r, s->arg);
}

/* Returns 1 when the state machine moved on (call again), 0 when waiting for input. */
static int head_step(struct conn *c)
{
    struct db_httpd *s = c->s;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH) return 0;

    /* empty lines before a request are allowed (RFC 9112 2.2), e.g. after a POST body */
    size_t len = evbuffer_get_length(in);
    while (len >= 2 && c->scanned == 0) {
        unsigned char *p = evbuffer_pullup(in, 2);
        if (p[0] != '\r' || p[1] != '\n') break;
        evbuffer_drain(in, 2);
        len -= 2;
    }
    if (len == 0) return 0;
    if (!c->deadline_armed) {
        arm_ms(c->timer, s->lim.header_timeout_ms);
        c->deadline_armed = 1;
    }

    size_t lim = s->lim.max_header_bytes;
    size_t n = len < lim ? len : lim;
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    unsigned char *end = from < n ? memmem(p + from, n - from, "\r\n\r\n", 4) : NULL;
    if (!end) {
        if (len >= lim) {
            conn_fail(c, 431, "headers_too_large", "request head too large");
            return 0;
        }
        c->scanned = n;
        return 0;
    }
    size_t hl = (size_t)(end - p) + 4;
    size_t nh = db_http_head_count_lines((const char *)p, hl);
    if (nh > s->lim.max_headers) {
        conn_fail(c, 431, "headers_too_large", "too many headers");
        return 0;
    }

    struct db_httpd_req *r = malloc(sizeof *r + nh * sizeof(struct db_header) + hl + 1);
    if (!r) {
        conn_fail(c, 503, "overloaded", "out of memory");
        return 0;
    }
    memset(r, 0, sizeof *r);
    struct db_header *hv = (struct db_header *)(r + 1);
    char *text = (char *)(hv + nh);
    memcpy(text, p, hl);
    text[hl] = '\0';
    evbuffer_drain(in, hl);
    c->scanned = 0;
    r->s = s;
    r->c = c;
    memcpy(r->peer, c->peer, sizeof r->peer);
    c->req = r;

    struct db_err e = {0};
    if (db_http_head_parse(text, hl, hv, nh, &r->h, &e) != DB_OK) {
        db_log(DB_LOG_DEBUG, &log_ctx, "rejected request from %s: %d %s", c->peer,
               r->h.err_status, e.msg);
        conn_fail(c, r->h.err_status, r->h.err_code, e.msg);
        return 0;
    }
    r->headers.v = hv;
    r->headers.n = r->headers.cap = r->h.nh;
    if (r->h.method_id == DB_HTTP_OTHER) {
        conn_fail(c, 501, "not_implemented", "method not implemented");
        return 0;
    }

    size_t cap = s->limit_cb ? s->limit_cb(r->h.method, r->h.path, s->arg) : 0;
    if (cap == 0) cap = s->lim.max_body;
    /* decided on the head alone: the body is never read, so its size costs us nothing */
    if (r->h.content_length > 0 && (unsigned long long)r->h.content_length > cap) {
        conn_fail(c, 413, "body_too_large", "request body exceeds the limit for this route");
        return 0;
    }
    if (r->h.content_length <= 0 && !r->h.chunked) {
        dispatch(c);
        return 1;
    }
    if (r->h.content_length > 0) {
        r->body = malloc((size_t)r->h.content_length);
        if (!r->body) {
            conn_fail(c, 503, "overloaded", "out of memory");
            return 0;
        }
        r->body_alloc = (size_t)r->h.content_length;
    }
    if (r->h.expect_continue && r->h.minor == 1 && evbuffer_get_length(in) == 0) {
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        db_httpd_conn_send(c);
    }
    c->body_cap = cap;
    c->ck = CK_SIZE;
    c->st = ST_BODY;
    c->body_until_ms = mono_ms() + s->lim.body_deadline_ms;
    arm_body_timer(c);
    return 1;
}

/* Chunk-size line "HEX[;ext]" -> size, or -1. */
static long long chunk_size(const char *line)
{
    long long v = 0;
    int digits = 0;
    const char *p = line;
    for (; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9') d = *p - '0';
        else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
        else break;
        if (++digits > 15) return -1;
        v = v * 16 + d;
    }
    if (!digits) return -1;
    while (*p == ' ' || *p == '\t') p++;
    if (*p && *p != ';') return -1;
    return v;
}

/* Reads one CRLF-terminated line of at most max bytes into line (NUL-terminated).
 * 1: got it (length in *n), 0: need more input, -1: too long. */
static int take_line(struct evbuffer *in, char *line, size_t max, size_t *n)
{
    size_t eol_len;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos < 0) return evbuffer_get_length(in) > max + 1 ? -1 : 0;
    if ((size_t)eol.pos > max) return -1;
    evbuffer_remove(in, line, (size_t)eol.pos);
    evbuffer_drain(in, eol_len);
    line[eol.pos] = '\0';
    *n = (size_t)eol.pos;
    return 1;
}

static int body_step_chunked(struct conn *c, struct evbuffer *in)
{
    struct db_httpd_req *r = c->req;
    char line[CHUNK_LINE_MAX + 1];
    size_t n;
    for (;;) {
        switch (c->ck) {
        case CK_SIZE: {
            int got = take_line(in, line, CHUNK_LINE_MAX, &n);
            if (got == 0) return 0;
            long long sz = got < 0 ? -1 : chunk_size(line);
            if (sz < 0) {
                conn_fail(c, 400, "bad_request", "malformed chunk size");
                return 0;
            }
            if ((unsigned long long)sz > c->body_cap - r->body_len) {
                conn_fail(c, 413, "body_too_large",
                          "request body exceeds the limit for this route");
                return 0;
            }
            if (sz == 0) {
                c->ck = CK_TRAILER;
                c->trailer_bytes = 0;
                break;
            }
            size_t need = r->body_len + (size_t)sz;
            if (need > r->body_alloc) {
                size_t na = r->body_alloc * 2;
                if (na < need) na = need;
                if (na > c->body_cap) na = c->body_cap;
                unsigned char *nb = realloc(r->body, na);
                if (!nb) {
                    conn_fail(c, 503, "overloaded", "out of memory");
                    return 0;
                }
                r->body = nb;
                r->body_alloc = na;
            }
            c->ck_left = (size_t)sz;
            c->ck = CK_DATA;
            break;
        }
        case CK_DATA: {
            int got = evbuffer_remove(in, r->body + r->body_len, c->ck_left);
            if (got <= 0) return 0;
            r->body_len += (size_t)got;
            c->ck_left -= (size_t)got;
            if (c->ck_left) return 0;
            c->ck = CK_DATA_END;
            break;
        }
        case CK_DATA_END: {
            if (evbuffer_get_length(in) < 2) return 0;
            unsigned char *p = evbuffer_pullup(in, 2);
            if (p[0] != '\r' || p[1] != '\n') {
                conn_fail(c, 400, "bad_request", "chunk not followed by CRLF");
                return 0;
            }
            evbuffer_drain(in, 2);
            c->ck = CK_SIZE;
            break;
        }
        case CK_TRAILER: {
            /* trailers are read and dropped: merging them would let a body smuggle headers */
            int got = take_line(in, line, CHUNK_LINE_MAX, &n);
            if (got == 0) return 0;
            c->trailer_bytes += n + 2;
            if (got < 0 || c->trailer_bytes > c->s->lim.max_header_bytes) {
                conn_fail(c, 431, "headers_too_large", "trailer section too large");
                return 0;
            }
            if (n == 0) {
                dispatch(c);
                return 1;
            }
            break;
        }
        }
    }
}

static int body_step(struct conn *c)
{
    struct db_httpd_req *r = c->req;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t before = evbuffer_get_length(in);
    int more;
    if (r->h.chunked) {
        more = body_step_chunked(c, in);
    } else {
        size_t want = (size_t)r->h.content_length - r->body_len;
        int got = evbuffer_remove(in, r->body + r->body_len, want);
        if (got > 0) r->body_len += (size_t)got;
        more = r->body_len == (size_t)r->h.content_length;
        if (more) dispatch(c);
    }
    /* an idle timeout, so every byte of progress restarts it, within the whole-body deadline */
    if (c->st == ST_BODY && evbuffer_get_length(in) < before) arm_body_timer(c);
    return more;
}

static void conn_process(struct conn *c)
{
    if (c->busy) return; /* the running loop picks up the new state */
    c->busy = 1;
    for (;;) {
        int more = 0;
        if (c->st == ST_HEAD) more = head_step(c);
        else if (c->st == ST_BODY) more = body_step(c);
        if (!more) break;
    }
    c->busy = 0;
    if (c->st == ST_DEAD) conn_destroy(c);
}

/* ---- libevent callbacks ---- */

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    switch (c->st) {
    case ST_HEAD:
    case ST_BODY:
        conn_process(c);
        break;
    case ST_FLUSH:
    case ST_LINGER:
        evbuffer_drain(in, evbuffer_get_length(in));
        break;
    default:
        /* pipelined bytes wait; the read watermark bounds how many */
        break;
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    /* drained: the next answer is written directly again (conn_send) */
    bufferevent_disable(bev, EV_WRITE);
    if (c->st == ST_FLUSH) conn_linger(c);
    else if (c->st == ST_HEAD && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        conn_process(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        /* a client that half-closes after its request still gets what is already queued */
        if (c->st == ST_FLUSH) return;
        if (c->st == ST_HEAD && evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
            conn_begin_close(c);
            return;
        }
    }
    /* otherwise (reset, write timeout, EOF while a request is open) the client is gone */
    conn_close(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    switch (c->st) {
    case ST_HEAD:
        if (c->deadline_armed) conn_fail(c, 408, "timeout", "request head not received in time");
        else conn_close(c); /* idle keep-alive: nothing to answer */
        break;
    case ST_BODY:
        conn_fail(c, 408, "timeout", "request body not received in time");
        break;
    default:
        conn_close(c);
        break;
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: application/json\r\nContent-Length: 64\r\n"
                               "Connection: close\r\n\r\n" BUSY_BODY;
    struct db_httpd *s = arg;
    struct conn *c = NULL;
    if (s->nconns >= (size_t)s->lim.max_connections) {
        /* best effort: the socket is fresh, so its send buffer is empty */
        ssize_t w = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        close(fd);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c) goto fail;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) goto fail;
    fd = -1; /* owned by the bufferevent now */
    c->timer = evtimer_new(s->base, timer_cb, c);
    if (!c->timer) goto fail;
    c->s = s;

    int one = 1;
    setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        port = ntohs(in4->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", host, port);
    } else {
        snprintf(c->peer, sizeof c->peer, "unknown");
    }

    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, s->lim.max_header_bytes * 2 + 16384);
    struct timeval wt = {.tv_sec = s->lim.body_timeout_ms / 1000,
                         .tv_usec = (s->lim.body_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    if (bufferevent_enable(c->bev, EV_READ) != 0) goto fail;

    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (++s->nconns > s->peak) s->peak = s->nconns;
    c->st = ST_HEAD;
    c->deadline_armed = 1;
    arm_ms(c->timer, s->lim.header_timeout_ms);
    return;
fail:
    if (c) {
        if (c->timer) event_free(c->timer);
        if (c->bev) bufferevent_free(c->bev);
        free(c);
    }
    if (fd >= 0) close(fd);
    db_log(DB_LOG_WARN, &log_ctx, "dropped a connection: out of memory");
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db_httpd *s = arg;
    if (s->draining) return;
    for (size_t i = 0; i < s->nls; i++) evconnlistener_enable(s->ls[i]);
}

/* accept() failing for lack of descriptors would otherwise spin: pause all listeners. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct db_httpd *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    db_log(DB_LOG_WARN, &log_ctx, "accept failed: %s; pausing 200 ms",
           evutil_socket_error_to_string(err));
    for (size_t i = 0; i < s->nls; i++) evconnlistener_disable(s->ls[i]);
    arm_ms(s->accept_retry, 200);
}

/* ---- public API: server ---- */

struct db_httpd *db_httpd_new(struct event_base *base, const struct db_httpd_limits *limits,
                              db_httpd_body_limit_fn limit_cb, db_httpd_handler_fn handler,
                              void *arg)
{
    struct db_httpd *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (limits) s->lim = *limits;
    if (!s->lim.max_header_bytes) s->lim.max_header_bytes = 16384;
    if (!s->lim.max_headers) s->lim.max_headers = 100;
    if (!s->lim.max_body) s->lim.max_body = 1024 * 1024;
    if (s->lim.header_timeout_ms <= 0) s->lim.header_timeout_ms = 10000;
    if (s->lim.body_timeout_ms <= 0) s->lim.body_timeout_ms = 10000;
    if (s->lim.body_deadline_ms <= 0) s->lim.body_deadline_ms = 10000;
    if (s->lim.keepalive_timeout_ms <= 0) s->lim.keepalive_timeout_ms = 30000;
    if (s->lim.max_connections <= 0) s->lim.max_connections = 1024;
    s->base = base;
    s->limit_cb = limit_cb;
    s->handler = handler;
    s->arg = arg;
    s->port = -1;
    s->accept_retry = evtimer_new(base, accept_retry_cb, s);
    if (!s->accept_retry) {
        free(s);
        return NULL;
    }
    return s;
}

static int split_host_port(const char *hp, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    const char *h = hp;
    size_t hl;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (!rb || rb[1] != ':') return -1;
        h = hp + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) return -1;
        hl = (size_t)(colon - hp);
    }
    size_t pl = strlen(colon + 1);
    if (hl >= hcap || pl == 0 || pl >= pcap) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

int db_httpd_listen(struct db_httpd *s, const char *host_port, int reuseport, struct db_err *e)
{
    char host[256], port[16];
    struct addrinfo *res = NULL;
    struct evconnlistener *l = NULL;
    int fd = -1, rc;
    if (split_host_port(host_port, host, sizeof host, port, sizeof port) != 0)
        return db_err_set(e, DB_EIO, "listen address must be host:port");

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int gai = getaddrinfo(host[0] && strcmp(host, "*") != 0 ? host : NULL, port, &hints, &res);
    if (gai != 0) return db_err_set(e, DB_EIO, "cannot resolve %s: %s", host, gai_strerror(gai));

    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
            err = errno;
            close(fd);
            fd = -1;
            continue;
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        rc = db_err_set(e, DB_EIO, "cannot bind %s: %s", host_port, strerror(err));
        goto fail;
    }
    /* backlog 1024: bursts of webhook deliveries should queue in the kernel, not be refused */
    l = evconnlistener_new(s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                           1024, fd);
    if (!l) {
        rc = db_err_set(e, DB_EIO, "cannot listen on %s: %s", host_port, strerror(errno));
        goto fail;
    }
    fd = -1;
    evconnlistener_set_error_cb(l, accept_error_cb);
    struct evconnlistener **nls = realloc(s->ls, (s->nls + 1) * sizeof *nls);
    if (!nls) {
        rc = db_err_set(e, DB_EIO, "out of memory");
        goto fail;
    }
    s->ls = nls;
    s->ls[s->nls++] = l;
    if (s->port < 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl) == 0)
            s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                      : ((struct sockaddr_in *)&ss)->sin_port);
    }
    if (s->draining) evconnlistener_disable(l);
    freeaddrinfo(res);
    return DB_OK;
fail:
    if (l) evconnlistener_free(l);
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return rc;
}

int db_httpd_port(const struct db_httpd *s)
{
    return s ? s->port : -1;
}

void db_httpd_stop_accepting(struct db_httpd *s)
{
    s->draining = 1;
    for (size_t i = 0; i < s->nls; i++) evconnlistener_disable(s->ls[i]);
    evtimer_del(s->accept_retry);
    /* idle keep-alive connections have no request to finish */
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->st == ST_HEAD && !c->busy &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            conn_close(c);
    }
}

size_t db_httpd_inflight(const struct db_httpd *s)
{
    return s ? s->ninflight : 0;
}

size_t db_httpd_connections(const struct db_httpd *s)
{
    return s ? s->nconns : 0;
}

size_t db_httpd_connections_peak(const struct db_httpd *s) { return s ? s->peak : 0; }

void db_httpd_connections_peak_reset(struct db_httpd *s)
{
    if (s) s->peak = s->nconns;
}

void db_httpd_free(struct db_httpd *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nls; i++) evconnlistener_free(s->ls[i]);
    free(s->ls);
    s->nls = 0;
    event_free(s->accept_retry);
    while (s->conns) conn_close(s->conns);
    while (s->inflight) {
        struct db_httpd_req *r = s->inflight;
        inflight_unlink(r);
        req_free(r);
    }
    free(s);
}
