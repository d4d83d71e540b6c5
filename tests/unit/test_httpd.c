/* test_httpd.c - the HTTP server driven over loopback with raw sockets.
 *
 * Server and client share one thread: the client side uses non-blocking sockets and every
 * wait runs the server's event loop in small non-blocking steps until a condition holds or
 * a deadline passes, so no test depends on a fixed sleep being long enough. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <event2/event.h>

#include "net/httpd.h"
#include "testutil.h"

#define MAXHELD 8

struct fx {
    struct event_base *base;
    struct db_httpd *s;
    int port;
    int calls;
    char last_path[256];
    char last_query[256];
    int had_query;
    char last_host[64];
    char last_peer[64];
    size_t last_body_len;
    struct db_httpd_req *held[MAXHELD];
    int nheld;
    struct db_httpd_req *late; /* answered by late_timer */
    struct event *late_timer;
    int gone_calls;
    struct db_httpd_req *gone_req;
};

/* ---- server side ---- */

static size_t limit_cb(const char *method, const char *path, void *arg)
{
    (void)method;
    (void)arg;
    return strncmp(path, "/small", 6) == 0 ? 10 : 0;
}

static void gone_cb(struct db_httpd_req *r, void *arg)
{
    struct fx *f = arg;
    f->gone_calls++;
    f->gone_req = r;
}

static void late_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fx *f = arg;
    struct db_httpd_req *r = f->late;
    f->late = NULL;
    db_httpd_respond(r, 200, "text/plain", "late", 4, NULL);
}

static void handler(struct db_httpd_req *r, void *arg)
{
    struct fx *f = arg;
    const char *path = db_httpd_req_path(r);
    f->calls++;
    snprintf(f->last_path, sizeof f->last_path, "%s", path);
    const char *q = db_httpd_req_query(r);
    f->had_query = q != NULL;
    snprintf(f->last_query, sizeof f->last_query, "%s", q ? q : "");
    const char *host = db_httpd_req_header(r, "hOsT");
    snprintf(f->last_host, sizeof f->last_host, "%s", host ? host : "");
    snprintf(f->last_peer, sizeof f->last_peer, "%s", db_httpd_req_peer(r));

    if (strcmp(path, "/hello") == 0) {
        db_httpd_respond(r, 200, "text/plain", "hello", 5, NULL);
    } else if (strcmp(path, "/echo") == 0 || strcmp(path, "/small") == 0) {
        struct db_inbound in;
        db_httpd_req_inbound(r, &in);
        f->last_body_len = in.body_len;
        static const char *const extra[] = {"X-Method: echo", "Bad\r\nInjected: 1", NULL};
        db_httpd_respond(r, 200, "application/octet-stream", in.body, in.body_len, extra);
    } else if (strcmp(path, "/async") == 0) {
        f->late = r;
        struct timeval tv = {0, 50 * 1000};
        evtimer_add(f->late_timer, &tv);
    } else if (strcmp(path, "/hold") == 0) {
        assert_true(f->nheld < MAXHELD);
        f->held[f->nheld++] = r;
    } else if (strcmp(path, "/stream") == 0) {
        db_httpd_stream_start(r, 200, "text/event-stream", NULL, gone_cb, f);
        assert_int_equal(db_httpd_stream_chunk(r, "data: first\n\n", 13), 0);
        f->held[f->nheld++] = r;
    } else {
        db_httpd_respond_error(r, 404, "not_found", "no \"such\" route");
    }
}

static void fx_start(struct fx *f, const struct db_httpd_limits *lim)
{
    memset(f, 0, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->late_timer = evtimer_new(f->base, late_cb, f);
    f->s = db_httpd_new(f->base, lim, limit_cb, handler, f);
    assert_non_null(f->s);
    struct db_err e = {0};
    assert_int_equal(db_httpd_listen(f->s, "127.0.0.1:0", 0, &e), DB_OK);
    f->port = db_httpd_port(f->s);
    assert_true(f->port > 0);
}

static void fx_stop(struct fx *f)
{
    db_httpd_free(f->s);
    event_free(f->late_timer);
    event_base_free(f->base);
}

static void pump(struct fx *f)
{
    event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Runs the loop until cond(f) or ms elapse; returns cond's last value. */
static int pump_until(struct fx *f, int (*cond)(struct fx *), int ms)
{
    long long end = db_test_now_ms() + ms;
    while (!cond(f) && db_test_now_ms() < end) {
        pump(f);
        poll(NULL, 0, 1);
    }
    return cond(f);
}

static void pump_for(struct fx *f, int ms)
{
    long long end = db_test_now_ms() + ms;
    while (db_test_now_ms() < end) {
        pump(f);
        poll(NULL, 0, 1);
    }
}

static int no_connections(struct fx *f) { return db_httpd_connections(f->s) == 0; }

/* ---- client side ---- */

struct client {
    int fd;
    char *buf;
    size_t len, cap;
    int eof;
};

struct resp {
    int status;
    char head[4096];
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
};

static void client_open(struct fx *f, struct client *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(c->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
    assert_true(rc == 0 || errno == EINPROGRESS);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static void client_recv(struct client *c)
{
    for (;;) {
        if (c->len + 4096 > c->cap) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
            assert_non_null(c->buf);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) c->eof = 1;
        return;
    }
}

/* Writes everything, running the server while the socket is full.  Returns bytes written
 * (less when the server closed on us). */
static size_t client_send(struct fx *f, struct client *c, const void *data, size_t len)
{
    size_t off = 0;
    long long end = db_test_now_ms() + 5000;
    while (off < len && db_test_now_ms() < end) {
        ssize_t n = send(c->fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN) break;
        pump(f);
        poll(NULL, 0, 1);
    }
    return off;
}

static void client_sends(struct fx *f, struct client *c, const char *s)
{
    assert_int_equal(client_send(f, c, s, strlen(s)), strlen(s));
}

static const char *find_header(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            *vlen = (size_t)(strstr(v, "\r\n") - v);
            return v;
        }
    }
    return NULL;
}

/* Tries to cut one complete response from c->buf.  1 when r was filled. */
static int parse_one(struct client *c, struct resp *r, int want_interim)
{
    c->buf[c->len] = '\0';
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t hl = (size_t)(end - c->buf) + 4;
    assert_true(hl < sizeof r->head);
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    size_t consumed, vl;
    const char *v;
    r->body = NULL;
    r->body_len = 0;
    if (r->status / 100 == 1 && !want_interim) {
        memmove(c->buf, c->buf + hl, c->len - hl);
        c->len -= hl;
        return parse_one(c, r, 0);
    } else if (r->status / 100 == 1) {
        consumed = hl;
    } else if ((v = find_header(r->head, "Content-Length", &vl))) {
        size_t cl = strtoul(v, NULL, 10);
        if (c->len - hl < cl) return 0;
        r->body = malloc(cl + 1);
        memcpy(r->body, c->buf + hl, cl);
        r->body_len = cl;
        consumed = hl + cl;
    } else if ((v = find_header(r->head, "Transfer-Encoding", &vl))) {
        size_t p = hl;
        r->body = malloc(c->len + 1);
        for (;;) {
            char *eol = memmem(c->buf + p, c->len - p, "\r\n", 2);
            if (!eol) goto partial;
            size_t sz = strtoul(c->buf + p, NULL, 16);
            size_t start = (size_t)(eol - c->buf) + 2;
            if (c->len < start + sz + 2) goto partial;
            memcpy(r->body + r->body_len, c->buf + start, sz);
            r->body_len += sz;
            p = start + sz + 2;
            if (sz == 0) break;
        }
        consumed = p;
    } else {
        if (!c->eof) return 0;
        r->body = malloc(c->len - hl + 1);
        memcpy(r->body, c->buf + hl, c->len - hl);
        r->body_len = c->len - hl;
        consumed = c->len;
    }
    if (!r->body) r->body = malloc(1);
    r->body[r->body_len] = '\0';
    memmove(c->buf, c->buf + consumed, c->len - consumed);
    c->len -= consumed;
    return 1;
partial:
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    return 0;
}

/* Reads one response within ms; 0 when none came (r->status is then 0). */
static int read_resp2(struct fx *f, struct client *c, struct resp *r, int ms, int interim)
{
    long long end = db_test_now_ms() + ms;
    memset(r, 0, sizeof *r);
    for (;;) {
        client_recv(c);
        if (parse_one(c, r, interim)) return 1;
        if (c->eof || db_test_now_ms() >= end) {
            r->status = 0;
            return 0;
        }
        pump(f);
        poll(NULL, 0, 1);
    }
}

static int read_resp(struct fx *f, struct client *c, struct resp *r, int ms)
{
    return read_resp2(f, c, r, ms, 0);
}

/* Waits for the server to close the connection. */
static int wait_eof(struct fx *f, struct client *c, int ms)
{
    long long end = db_test_now_ms() + ms;
    while (!c->eof && db_test_now_ms() < end) {
        client_recv(c);
        pump(f);
        poll(NULL, 0, 1);
    }
    return c->eof;
}

static void resp_clear(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

static int has_header(const struct resp *r, const char *name, const char *value)
{
    size_t vl;
    const char *v = find_header(r->head, name, &vl);
    return v && strlen(value) == vl && strncasecmp(v, value, vl) == 0;
}

/* One request on a fresh connection; returns the status, and the error code in code. */
static int one_shot(struct fx *f, const char *raw, size_t rawlen, struct resp *r)
{
    struct client c;
    client_open(f, &c);
    client_send(f, &c, raw, rawlen);
    read_resp(f, &c, r, 3000);
    client_close(&c);
    return r->status;
}

static void assert_json_error(const struct resp *r, const char *code)
{
    assert_true(has_header(r, "Content-Type", "application/json"));
    char want[128];
    snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    assert_non_null(r->body);
    assert_true(strncmp(r->body, want, strlen(want)) == 0);
    assert_true(r->body_len > 2 && strcmp(r->body + r->body_len - 3, "\"}}") == 0);
}

/* ---- tests ---- */

static void simple_get_is_answered_with_path_query_and_headers(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c, "GET /hel%6co?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_true(has_header(&r, "Content-Length", "5"));
    assert_true(has_header(&r, "Content-Type", "text/plain"));
    assert_false(has_header(&r, "Connection", "close"));
    assert_string_equal(f.last_path, "/hello");
    assert_string_equal(f.last_query, "x=1&y=%20");
    assert_string_equal(f.last_host, "example.test");
    assert_true(strncmp(f.last_peer, "127.0.0.1:", 10) == 0);
    assert_int_equal(db_httpd_inflight(f.s), 0);
    resp_clear(&r);

    /* no '?' -> NULL query; unknown route -> JSON error with escaped message */
    client_sends(&f, &c, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 404);
    assert_false(f.had_query);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"such\\\" route\"}}");
    resp_clear(&r);
    client_close(&c);
    fx_stop(&f);
}

static void post_body_is_echoed_and_bad_extra_header_dropped(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello");
    pump_for(&f, 30);
    assert_int_equal(f.calls, 0); /* body incomplete: not dispatched yet */
    client_sends(&f, &c, " world");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world");
    assert_true(has_header(&r, "X-Method", "echo"));
    assert_null(strstr(r.head, "Injected"));
    resp_clear(&r);
    client_close(&c);
    fx_stop(&f);
}

static void async_answer_from_timer_arrives(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c, "GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
    long long t0 = db_test_now_ms();
    pump_for(&f, 20);
    assert_int_equal(db_httpd_inflight(f.s), 1);
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_true(db_test_now_ms() - t0 >= 40);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "late");
    assert_int_equal(db_httpd_inflight(f.s), 0);
    resp_clear(&r);
    client_close(&c);
    fx_stop(&f);
}

static void keepalive_serves_two_requests_and_honours_close(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    client_sends(&f, &c, "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Connection", "close"));
    resp_clear(&r);
    assert_true(wait_eof(&f, &c, 3000));
    assert_int_equal(f.calls, 2);
    client_close(&c);

    /* HTTP/1.0 closes by default, stays open when asked */
    client_open(&f, &c);
    client_sends(&f, &c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_true(has_header(&r, "Connection", "keep-alive"));
    resp_clear(&r);
    client_sends(&f, &c, "GET /hello HTTP/1.0\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_true(has_header(&r, "Connection", "close"));
    resp_clear(&r);
    assert_true(wait_eof(&f, &c, 3000));
    client_close(&c);
    fx_stop(&f);
}

static void keepalive_idle_connection_is_closed(void **state)
{
    (void)state;
    struct fx f;
    struct db_httpd_limits lim = {.keepalive_timeout_ms = 200};
    fx_start(&f, &lim);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    resp_clear(&r);
    long long t0 = db_test_now_ms();
    assert_true(wait_eof(&f, &c, 3000));
    long long dt = db_test_now_ms() - t0;
    assert_true(dt >= 150 && dt < 1500);
    assert_int_equal(c.len, 0); /* closed without an answer */
    client_close(&c);
    fx_stop(&f);
}

static void pipelined_requests_are_answered_in_order(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    /* the first is answered later from a timer: the others must wait behind it */
    client_sends(&f, &c,
                 "GET /async HTTP/1.1\r\nHost: a\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    pump_for(&f, 20);
    assert_int_equal(f.calls, 1);
    const char *want[] = {"late", "hello", "abc"};
    for (int i = 0; i < 3; i++) {
        assert_true(read_resp(&f, &c, &r, 3000));
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
        resp_clear(&r);
    }
    assert_int_equal(f.calls, 3);
    client_close(&c);
    fx_stop(&f);
}

static void chunked_request_body_is_reassembled(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c,
                 "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6;name=v\r\n wor");
    pump_for(&f, 20);
    client_sends(&f, &c, "ld\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world");
    resp_clear(&r);
    /* the connection stays usable after a chunked body */
    client_sends(&f, &c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_string_equal(r.body, "hello");
    resp_clear(&r);
    client_close(&c);

    struct resp r2;
    static const char bad[] = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "zz\r\nhello\r\n0\r\n\r\n";
    assert_int_equal(one_shot(&f, bad, sizeof bad - 1, &r2), 400);
    resp_clear(&r2);
    fx_stop(&f);
}

static void content_length_over_cap_is_413_before_the_body(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    /* only the head is sent: the answer must not wait for the 1 MB that never comes */
    client_sends(&f, &c, "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
    long long t0 = db_test_now_ms();
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_true(db_test_now_ms() - t0 < 1000);
    assert_int_equal(r.status, 413);
    assert_json_error(&r, "body_too_large");
    assert_true(has_header(&r, "Connection", "close"));
    assert_int_equal(f.calls, 0);
    resp_clear(&r);
    assert_true(wait_eof(&f, &c, 3000));
    client_close(&c);

    /* within the cap with Expect: 100-continue -> interim answer, then the real one */
    client_open(&f, &c);
    client_sends(&f, &c,
                 "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    assert_true(read_resp2(&f, &c, &r, 3000, 1));
    assert_int_equal(r.status, 100);
    resp_clear(&r);
    client_sends(&f, &c, "abcd");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abcd");
    resp_clear(&r);
    client_close(&c);
    fx_stop(&f);
}

static void chunked_body_over_cap_is_413(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c,
                 "POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n");
    pump_for(&f, 20);
    assert_int_equal(c.len, 0);
    /* 5 + 6 > 10: refused on the size line, before the data */
    client_sends(&f, &c, "6\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 413);
    assert_json_error(&r, "body_too_large");
    assert_true(has_header(&r, "Connection", "close"));
    assert_int_equal(f.calls, 0);
    resp_clear(&r);
    assert_true(wait_eof(&f, &c, 3000));
    client_close(&c);
    fx_stop(&f);
}

static void oversized_head_and_too_many_headers_are_431(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct resp r;

    size_t big = 100 * 1024;
    char *req = malloc(big + 128);
    int n = snprintf(req, 128, "GET /hello HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    assert_int_equal(one_shot(&f, req, (size_t)n + big + 4, &r), 431);
    assert_json_error(&r, "headers_too_large");
    resp_clear(&r);

    /* 2000 tiny headers fit in 16 KB but exceed the count limit of 100 */
    size_t off = (size_t)snprintf(req, 64, "GET /hello HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 2000; i++) {
        memcpy(req + off, "A:1\r\n", 5);
        off += 5;
    }
    memcpy(req + off, "\r\n", 2);
    off += 2;
    assert_true(off < 16384);
    assert_int_equal(one_shot(&f, req, off, &r), 431);
    assert_json_error(&r, "headers_too_large");
    assert_non_null(strstr(r.body, "too many headers"));
    resp_clear(&r);
    free(req);
    assert_int_equal(f.calls, 0);
    fx_stop(&f);
}

struct bad_case {
    const char *raw;
    size_t len; /* 0: strlen */
    int status;
};

static void malformed_requests_get_json_errors(void **state)
{
    (void)state;
    static const char nul_req[] = "GET /hello HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n";
    static const struct bad_case cases[] = {
        {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n0\r\n\r\n", 0, 400},
        {nul_req, sizeof nul_req - 1, 400},
        {"GET  /hello HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"GARBAGE\r\n\r\n", 0, 400},
        {"GET http://a/hello HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1 \r\nHost: a\r\n\r\n", 0, 400},
        {"GET /he%00llo HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"GET /he%zzllo HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"GET /hello% HTTP/1.1\r\nHost: a\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 0, 400},
        {"GET /hello HTTP/1.1\r\n\r\n", 0, 400}, /* no Host */
        {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 0, 400},
        {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 0, 400},
        {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, 400},
        {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 501},
        {"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 0, 501},
        {"GET /hello HTTP/2.0\r\nHost: a\r\n\r\n", 0, 505},
        {"GET /hello HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 0, 417},
    };
    struct fx f;
    fx_start(&f, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].raw);
        int st = one_shot(&f, cases[i].raw, len, &r);
        if (st != cases[i].status) fail_msg("case %zu: got %d, want %d", i, st, cases[i].status);
        assert_true(has_header(&r, "Connection", "close"));
        assert_true(has_header(&r, "Content-Type", "application/json"));
        assert_non_null(strstr(r.body, "{\"error\":{\"code\":\""));
        resp_clear(&r);
    }
    assert_int_equal(f.calls, 0);
    /* identical duplicate Content-Length is fine */
    struct resp r;
    static const char dup[] = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
                              "content-length: 2\r\n\r\nok";
    assert_int_equal(one_shot(&f, dup, sizeof dup - 1, &r), 200);
    assert_string_equal(r.body, "ok");
    resp_clear(&r);
    fx_stop(&f);
}

static void slow_header_trickle_is_cut_at_the_deadline(void **state)
{
    (void)state;
    struct fx f;
    struct db_httpd_limits lim = {.header_timeout_ms = 300};
    fx_start(&f, &lim);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    long long t0 = db_test_now_ms();
    client_sends(&f, &c, "GET /hello HTTP/1.1\r\n");
    /* a byte every 40 ms: an idle timeout would never fire, the deadline must */
    int sent = 0;
    while (!c.eof && c.len == 0 && db_test_now_ms() - t0 < 3000) {
        if (client_send(&f, &c, "X", 1) != 1) break;
        sent++;
        pump_for(&f, 40);
        client_recv(&c);
    }
    assert_true(read_resp(&f, &c, &r, 3000));
    long long dt = db_test_now_ms() - t0;
    assert_int_equal(r.status, 408);
    assert_json_error(&r, "timeout");
    assert_true(dt >= 280 && dt < 1500);
    assert_true(sent >= 4);
    resp_clear(&r);
    assert_true(wait_eof(&f, &c, 3000));
    assert_int_equal(f.calls, 0);
    client_close(&c);
    fx_stop(&f);
}

static void stalled_body_times_out_with_408(void **state)
{
    (void)state;
    struct fx f;
    struct db_httpd_limits lim = {.body_timeout_ms = 200};
    fx_start(&f, &lim);
    struct client c;
    struct resp r;
    client_open(&f, &c);
    client_sends(&f, &c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 408);
    resp_clear(&r);
    assert_true(wait_eof(&f, &c, 3000));
    client_close(&c);
    fx_stop(&f);
}

static int two_connections(struct fx *f) { return db_httpd_connections(f->s) == 2; }
static int one_connection(struct fx *f) { return db_httpd_connections(f->s) == 1; }

static void connection_cap_refuses_extra_sockets(void **state)
{
    (void)state;
    struct fx f;
    struct db_httpd_limits lim = {.max_connections = 2};
    fx_start(&f, &lim);
    struct client a, b, x;
    struct resp r;
    client_open(&f, &a);
    client_open(&f, &b);
    assert_true(pump_until(&f, two_connections, 3000));
    client_open(&f, &x);
    client_sends(&f, &x, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    /* refused: either closed outright or a 503; never served */
    if (read_resp(&f, &x, &r, 3000)) {
        assert_int_equal(r.status, 503);
        assert_json_error(&r, "overloaded");
        resp_clear(&r);
    }
    assert_true(wait_eof(&f, &x, 3000));
    assert_int_equal(f.calls, 0);
    assert_int_equal(db_httpd_connections(f.s), 2);
    client_close(&x);

    /* the admitted ones work, and a freed slot admits a new client */
    client_sends(&f, &a, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &a, &r, 3000));
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    client_close(&b);
    assert_true(pump_until(&f, one_connection, 3000));
    client_open(&f, &x);
    client_sends(&f, &x, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &x, &r, 3000));
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    client_close(&x);
    client_close(&a);
    fx_stop(&f);
}

static void client_gone_before_async_answer_keeps_request_valid(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    client_open(&f, &c);
    client_sends(&f, &c, "POST /hold?k=v HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody");
    long long end = db_test_now_ms() + 3000;
    while (f.nheld == 0 && db_test_now_ms() < end) pump_for(&f, 1);
    assert_int_equal(f.nheld, 1);
    client_close(&c);
    assert_true(pump_until(&f, no_connections, 3000));
    assert_int_equal(db_httpd_inflight(f.s), 1);
    /* the handler's pointers are still good (ASan would catch a use after free) */
    struct db_httpd_req *r = f.held[0];
    assert_string_equal(db_httpd_req_path(r), "/hold");
    assert_string_equal(db_httpd_req_query(r), "k=v");
    size_t len;
    const unsigned char *b = db_httpd_req_body(r, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(b, "body", 4);
    db_httpd_respond(r, 200, "text/plain", "x", 1, NULL);
    assert_int_equal(db_httpd_inflight(f.s), 0);
    fx_stop(&f);
}

static int gone_seen(struct fx *f) { return f->gone_calls > 0; }

static void streaming_sends_chunks_and_reports_gone(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    struct resp r;

    /* a finished stream leaves the connection usable */
    client_open(&f, &c);
    client_sends(&f, &c, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    long long end = db_test_now_ms() + 3000;
    while (f.nheld == 0 && db_test_now_ms() < end) pump_for(&f, 1);
    assert_int_equal(f.nheld, 1);
    struct db_httpd_req *s1 = f.held[0];
    assert_int_equal(db_httpd_stream_chunk(s1, "data: second\n\n", 14), 0);
    db_httpd_stream_end(s1);
    f.nheld = 0;
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Transfer-Encoding", "chunked"));
    assert_true(has_header(&r, "Content-Type", "text/event-stream"));
    assert_string_equal(r.body, "data: first\n\ndata: second\n\n");
    resp_clear(&r);
    client_sends(&f, &c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &c, &r, 3000));
    assert_string_equal(r.body, "hello");
    resp_clear(&r);
    assert_int_equal(f.gone_calls, 0);

    /* an open stream: chunks arrive as sent; the client leaving is reported once */
    client_sends(&f, &c, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    end = db_test_now_ms() + 3000;
    while (f.nheld == 0 && db_test_now_ms() < end) pump_for(&f, 1);
    struct db_httpd_req *s2 = f.held[0];
    assert_non_null(s2);
    end = db_test_now_ms() + 3000;
    while (!memmem(c.buf, c.len, "data: first", 11) && db_test_now_ms() < end) {
        pump_for(&f, 1);
        client_recv(&c);
    }
    assert_non_null(memmem(c.buf, c.len, "data: first", 11));
    assert_int_equal(db_httpd_stream_chunk(s2, "data: more\n\n", 12), 0);
    end = db_test_now_ms() + 3000;
    while (!memmem(c.buf, c.len, "data: more", 10) && db_test_now_ms() < end) {
        pump_for(&f, 1);
        client_recv(&c);
    }
    assert_non_null(memmem(c.buf, c.len, "c\r\ndata: more\n\n\r\n", 17));
    assert_int_equal(db_httpd_stream_pending(s2), 0);
    client_close(&c);
    assert_true(pump_until(&f, gone_seen, 3000));
    assert_int_equal(f.gone_calls, 1);
    assert_ptr_equal(f.gone_req, s2);
    assert_int_equal(db_httpd_stream_chunk(s2, "x", 1), -1);
    assert_int_equal(db_httpd_inflight(f.s), 1);
    db_httpd_stream_end(s2);
    assert_int_equal(db_httpd_inflight(f.s), 0);
    assert_int_equal(f.gone_calls, 1);
    fx_stop(&f);
}

static void stop_accepting_drains_gracefully(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client idle, busy, late;
    struct resp r;
    client_open(&f, &idle);
    client_sends(&f, &idle, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_true(read_resp(&f, &idle, &r, 3000));
    resp_clear(&r);
    client_open(&f, &busy);
    client_sends(&f, &busy, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n");
    long long end = db_test_now_ms() + 3000;
    while (f.nheld == 0 && db_test_now_ms() < end) pump_for(&f, 1);
    assert_int_equal(f.nheld, 1);

    db_httpd_stop_accepting(f.s);
    assert_true(wait_eof(&f, &idle, 3000)); /* idle keep-alive: closed at once */
    assert_int_equal(idle.len, 0);
    assert_int_equal(db_httpd_inflight(f.s), 1);

    /* new clients are not served */
    client_open(&f, &late);
    client_send(&f, &late, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", 33);
    pump_for(&f, 200);
    client_recv(&late);
    assert_int_equal(late.len, 0);
    assert_int_equal(f.calls, 2);

    /* the open request still gets its answer, with Connection: close */
    db_httpd_respond(f.held[0], 200, "text/plain", "bye", 3, NULL);
    assert_true(read_resp(&f, &busy, &r, 3000));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "bye");
    assert_true(has_header(&r, "Connection", "close"));
    resp_clear(&r);
    assert_true(wait_eof(&f, &busy, 3000));
    assert_true(pump_until(&f, no_connections, 3000));
    assert_int_equal(db_httpd_inflight(f.s), 0);
    client_close(&idle);
    client_close(&busy);
    client_close(&late);
    fx_stop(&f);
}

static void head_request_gets_length_without_body(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct client c;
    client_open(&f, &c);
    client_sends(&f, &c, "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    /* the HEAD answer announces 5 bytes but carries none: the next bytes are the GET answer */
    long long end = db_test_now_ms() + 3000;
    while (db_test_now_ms() < end && !memmem(c.buf, c.len, "hello", 5)) {
        pump_for(&f, 1);
        client_recv(&c);
    }
    c.buf[c.len] = '\0';
    char *second = strstr(c.buf + 1, "HTTP/1.1 200");
    assert_non_null(second);
    assert_non_null(strstr(c.buf, "Content-Length: 5\r\n"));
    assert_true(memcmp(second - 4, "\r\n\r\n", 4) == 0);
    assert_string_equal(second + strlen(second) - 5, "hello");
    client_close(&c);
    fx_stop(&f);
}

static void free_with_open_requests_and_listen_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct db_err e = {0};
    assert_int_equal(db_httpd_listen(f.s, "no-port-here", 0, &e), DB_EIO);
    /* a second process-style listener on the same port with SO_REUSEPORT */
    char hp[64];
    struct db_httpd *s2 = db_httpd_new(f.base, NULL, NULL, handler, &f);
    snprintf(hp, sizeof hp, "127.0.0.1:%d", f.port);
    assert_int_equal(db_httpd_listen(s2, hp, 1, &e), DB_EIO); /* first did not ask reuseport */
    db_httpd_free(s2);

    struct client c;
    client_open(&f, &c);
    client_sends(&f, &c, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n");
    long long end = db_test_now_ms() + 3000;
    while (f.nheld == 0 && db_test_now_ms() < end) pump_for(&f, 1);
    assert_int_equal(db_httpd_inflight(f.s), 1);
    client_close(&c);
    fx_stop(&f); /* the held request is dropped; ASan checks it is freed */
}

static void reuseport_lets_two_servers_share_a_port(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct db_httpd *a = db_httpd_new(base, NULL, NULL, handler, NULL);
    struct db_httpd *b = db_httpd_new(base, NULL, NULL, handler, NULL);
    struct db_err e = {0};
    assert_int_equal(db_httpd_listen(a, "127.0.0.1:0", 1, &e), DB_OK);
    char hp[64];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", db_httpd_port(a));
    assert_int_equal(db_httpd_listen(b, hp, 1, &e), DB_OK);
    assert_int_equal(db_httpd_port(b), db_httpd_port(a));
    db_httpd_free(a);
    db_httpd_free(b);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_get_is_answered_with_path_query_and_headers),
        cmocka_unit_test(post_body_is_echoed_and_bad_extra_header_dropped),
        cmocka_unit_test(async_answer_from_timer_arrives),
        cmocka_unit_test(keepalive_serves_two_requests_and_honours_close),
        cmocka_unit_test(keepalive_idle_connection_is_closed),
        cmocka_unit_test(pipelined_requests_are_answered_in_order),
        cmocka_unit_test(chunked_request_body_is_reassembled),
        cmocka_unit_test(content_length_over_cap_is_413_before_the_body),
        cmocka_unit_test(chunked_body_over_cap_is_413),
        cmocka_unit_test(oversized_head_and_too_many_headers_are_431),
        cmocka_unit_test(malformed_requests_get_json_errors),
        cmocka_unit_test(slow_header_trickle_is_cut_at_the_deadline),
        cmocka_unit_test(stalled_body_times_out_with_408),
        cmocka_unit_test(connection_cap_refuses_extra_sockets),
        cmocka_unit_test(client_gone_before_async_answer_keeps_request_valid),
        cmocka_unit_test(streaming_sends_chunks_and_reports_gone),
        cmocka_unit_test(stop_accepting_drains_gracefully),
        cmocka_unit_test(head_request_gets_length_without_body),
        cmocka_unit_test(free_with_open_requests_and_listen_errors),
        cmocka_unit_test(reuseport_lets_two_servers_share_a_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
