/* test_http_client.c - the outbound HTTP client against the fake platform over loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_platform.h"
#include "net/http_client.h"
#include "net/netcheck.h"
#include "testutil.h"

struct ctx {
    struct event_base *base;
    struct db_fake *fake;
    struct db_http_client *client;
};

/* What one done callback saw, copied out of the borrowed response. */
struct result {
    int calls;
    long status;
    char *body;
    size_t body_len;
    int body_null;
    char *err;
    char *hdr;       /* value of the response header named in want_hdr */
    const char *want_hdr;
    long long at_ms;
};

static void result_clear(struct result *r)
{
    free(r->body);
    free(r->err);
    free(r->hdr);
    memset(r, 0, sizeof *r);
}

static void done_cb(const struct db_http_resp *resp, void *arg)
{
    struct result *r = arg;
    r->calls++;
    r->at_ms = db_test_now_ms();
    r->status = resp->status;
    r->body_null = resp->body == NULL;
    if (resp->body) {
        r->body = malloc(resp->body_len + 1);
        memcpy(r->body, resp->body, resp->body_len);
        r->body[resp->body_len] = '\0';
        r->body_len = resp->body_len;
    }
    if (resp->transport_error) r->err = strdup(resp->transport_error);
    if (r->want_hdr) {
        const char *v = db_headers_get(resp->headers, r->want_hdr);
        if (v) r->hdr = strdup(v);
    }
}

/* Runs the loop until *counter reaches target or timeout_ms passes. */
static void spin(struct ctx *t, const int *counter, int target, int timeout_ms)
{
    long long end = db_test_now_ms() + timeout_ms;
    while (*counter < target && db_test_now_ms() < end) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(t->base, &tv);
        event_base_dispatch(t->base);
    }
}

static int setup_opts(void **state, const struct db_http_client_opts *o)
{
    struct ctx *t = calloc(1, sizeof *t);
    t->base = event_base_new();
    t->fake = db_fake_start();
    t->client = db_http_client_new(t->base, o);
    if (!t->base || !t->fake || !t->client) return -1;
    *state = t;
    return 0;
}

static int setup(void **state)
{
    struct db_http_client_opts o = {.timeout_ms = 5000};
    return setup_opts(state, &o);
}

static int teardown(void **state)
{
    struct ctx *t = *state;
    db_http_client_free(t->client);
    db_fake_stop(t->fake);
    event_base_free(t->base);
    free(t);
    return 0;
}

static void make_req(struct db_http_req *req, const char *method, const struct ctx *t,
                     const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", db_fake_url(t->fake), path);
    memset(req, 0, sizeof *req);
    req->method = strdup(method);
    req->url = strdup(url);
    if (body) {
        req->body = strdup(body);
        req->body_len = strlen(body);
    }
}

/* Sends one request and waits for its answer. */
static void call(struct ctx *t, struct db_http_req *req, long timeout_ms, struct result *r)
{
    assert_int_equal(db_http_client_send(t->client, req, timeout_ms, done_cb, NULL, r, NULL),
                     DB_OK);
    db_http_req_clear(req);
    assert_int_equal(r->calls, 0); /* never before send returns */
    spin(t, &r->calls, 1, 10000);
    assert_int_equal(r->calls, 1);
}

static void get_round_trip_carries_headers_both_ways(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "GET", "/v1/items", 1, 200, "{\"items\":[1,2]}", 0, 0);
    db_fake_rule_header(t->fake, "X-Reply", "yes");
    struct db_http_req req;
    make_req(&req, "GET", t, "/v1/items?x=1&y=two", NULL);
    assert_int_equal(db_headers_add(&req.headers, "X-Test", "abc"), DB_OK);
    struct result r = {.want_hdr = "x-reply"};
    call(t, &req, 0, &r);

    assert_null(r.err);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"items\":[1,2]}");
    assert_string_equal(r.hdr, "yes");

    struct db_fake_request seen;
    assert_int_equal(db_fake_get(t->fake, 0, &seen), DB_OK);
    assert_string_equal(seen.method, "GET");
    assert_string_equal(seen.path, "/v1/items?x=1&y=two");
    assert_string_equal(db_headers_get(&seen.headers, "x-test"), "abc");
    assert_int_equal(seen.body_len, 0);
    db_fake_request_clear(&seen);
    result_clear(&r);
}

static void post_round_trip_sends_body_and_reads_counter(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "POST", "/send", -1, 201, "{\"id\":{n},\"again\":{n}}", 0, 0);
    char big[3000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *bodies[2] = {"{\"text\":\"hello\"}", big};
    long ids[2];
    for (int i = 0; i < 2; i++) {
        struct db_http_req req;
        assert_int_equal(db_http_req_post_json(&req, "", bodies[i]), DB_OK);
        free(req.url);
        char url[128];
        snprintf(url, sizeof url, "%s/send", db_fake_url(t->fake));
        req.url = strdup(url);
        struct result r = {0};
        call(t, &req, 0, &r);
        assert_null(r.err);
        assert_int_equal(r.status, 201);
        long a = -1, b = -2;
        assert_int_equal(sscanf(r.body, "{\"id\":%ld,\"again\":%ld}", &a, &b), 2);
        assert_int_equal(a, b); /* one value per answer */
        ids[i] = a;
        result_clear(&r);

        struct db_fake_request seen;
        assert_int_equal(db_fake_get(t->fake, (size_t)i, &seen), DB_OK);
        assert_string_equal(seen.method, "POST");
        assert_string_equal(seen.path, "/send");
        assert_string_equal(seen.body, bodies[i]);
        assert_int_equal(seen.body_len, strlen(bodies[i]));
        assert_string_equal(db_headers_get(&seen.headers, "Content-Type"), "application/json");
        /* A big body must not wait for 100-continue. */
        assert_null(db_headers_get(&seen.headers, "Expect"));
        db_fake_request_clear(&seen);
    }
    assert_int_equal(ids[1], ids[0] + 1);
}

static void put_and_delete_use_their_methods(void **state)
{
    struct ctx *t = *state;
    db_fake_default(t->fake, 204, "");
    struct db_http_req req;
    struct result r = {0};
    make_req(&req, "PUT", t, "/thing/1", "{\"a\":1}");
    call(t, &req, 0, &r);
    assert_int_equal(r.status, 204);
    result_clear(&r);
    make_req(&req, "DELETE", t, "/thing/1", NULL);
    call(t, &req, 0, &r);
    assert_int_equal(r.status, 204);
    result_clear(&r);

    struct db_fake_request seen;
    assert_int_equal(db_fake_get(t->fake, 0, &seen), DB_OK);
    assert_string_equal(seen.method, "PUT");
    assert_string_equal(seen.body, "{\"a\":1}");
    db_fake_request_clear(&seen);
    assert_int_equal(db_fake_get(t->fake, 1, &seen), DB_OK);
    assert_string_equal(seen.method, "DELETE");
    assert_int_equal(seen.body_len, 0);
    db_fake_request_clear(&seen);
    assert_int_equal(db_fake_get(t->fake, 2, &seen), DB_ENOTFOUND);
}

static void sequential_calls_reuse_one_connection(void **state)
{
    struct ctx *t = *state;
    db_fake_default(t->fake, 200, "{}");
    for (int i = 0; i < 25; i++) {
        struct db_http_req req;
        struct result r = {0};
        make_req(&req, i % 2 ? "POST" : "GET", t, "/ka", i % 2 ? "{}" : NULL);
        call(t, &req, 0, &r);
        assert_int_equal(r.status, 200);
        result_clear(&r);
    }
    assert_int_equal(db_fake_count(t->fake, "/ka"), 25);
    assert_int_equal(db_fake_connections(t->fake), 1);
}

static void stalled_answer_times_out_on_time(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "GET", "/slow", 1, 200, "{}", 3000, 0);
    struct db_http_req req;
    make_req(&req, "GET", t, "/slow", NULL);
    struct result r = {0};
    long long start = db_test_now_ms();
    call(t, &req, 300, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(r.err);
    assert_string_equal(r.err, "timeout");
    assert_true(r.at_ms - start >= 250);
    assert_true(r.at_ms - start < 1500);
    assert_int_equal(db_http_client_inflight(t->client), 0);
    result_clear(&r);
}

static void connection_reset_is_a_transport_error(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "POST", "/reset", 1, 200, "{}", 0, 1);
    db_fake_rule(t->fake, "POST", "/reset", 1, 200, "{\"after\":true}", 0, 0);
    struct db_http_req req;
    struct result r = {0};
    make_req(&req, "POST", t, "/reset", "{}");
    call(t, &req, 0, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(r.err);
    assert_true(r.body_null);
    result_clear(&r);
    /* The client recovers: the next call opens a fresh connection. */
    make_req(&req, "POST", t, "/reset", "{}");
    call(t, &req, 0, &r);
    assert_null(r.err);
    assert_string_equal(r.body, "{\"after\":true}");
    assert_int_equal(db_fake_count(t->fake, "/reset"), 2);
    result_clear(&r);
}

static int setup_small_cap(void **state)
{
    struct db_http_client_opts o = {.timeout_ms = 5000, .max_response_bytes = 1000};
    return setup_opts(state, &o);
}

static void response_over_cap_is_refused(void **state)
{
    struct ctx *t = *state;
    char body[1001];
    memset(body, 'x', 1000);
    body[1000] = '\0';
    db_fake_rule(t->fake, "GET", "/exact", -1, 200, body, 0, 0);
    body[999] = '\0';
    char big[5001];
    memset(big, 'y', 5000);
    big[5000] = '\0';
    db_fake_rule(t->fake, "GET", "/big", -1, 200, big, 0, 0);

    struct db_http_req req;
    struct result r = {0};
    make_req(&req, "GET", t, "/exact", NULL);
    call(t, &req, 0, &r);
    assert_null(r.err);
    assert_int_equal(r.body_len, 1000);
    result_clear(&r);

    make_req(&req, "GET", t, "/big", NULL);
    call(t, &req, 0, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "response too large");
    assert_true(r.body_null);
    result_clear(&r);
}

struct stream {
    size_t got, pieces;
    long status;
    int saw_header;
    int abort_after; /* abort once this many bytes arrived; 0 = never */
};

static int data_cb(long status, const struct db_headers *h, const char *data, size_t len,
                   void *arg)
{
    struct stream *s = arg;
    s->status = status;
    s->saw_header = db_headers_get(h, "X-Stream") != NULL;
    for (size_t i = 0; i < len; i++)
        if (data[i] != 'z') return -1;
    s->got += len;
    s->pieces++;
    return s->abort_after && s->got >= (size_t)s->abort_after ? -1 : 0;
}

struct stream_call {
    struct stream s;
    struct result r;
};

static void stream_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct stream_call *sc = arg;
    done_cb(resp, &sc->r);
}

/* Streaming also ignores max_response_bytes (the caller sees every piece). */
static void streaming_hands_body_to_data_cb(void **state)
{
    struct ctx *t = *state;
    size_t n = 200000;
    char *big = malloc(n + 1);
    memset(big, 'z', n);
    big[n] = '\0';
    db_fake_rule(t->fake, "GET", "/stream", -1, 200, big, 0, 0);
    db_fake_rule_header(t->fake, "X-Stream", "1");
    free(big);

    struct db_http_req req;
    make_req(&req, "GET", t, "/stream", NULL);
    struct stream_call sc = {0};
    struct db_http_call *hc = NULL;
    int rc = db_http_client_send(t->client, &req, 0, stream_done_cb, data_cb, &sc, &hc);
    assert_int_equal(rc, DB_OK);
    assert_non_null(hc);
    db_http_req_clear(&req);
    spin(t, &sc.r.calls, 1, 10000);
    assert_int_equal(sc.r.calls, 1);
    assert_null(sc.r.err);
    assert_int_equal(sc.r.status, 200);
    assert_true(sc.r.body_null);
    assert_int_equal(sc.s.got, n);
    assert_int_equal(sc.s.status, 200);
    assert_true(sc.s.saw_header);
    result_clear(&sc.r);

    /* Returning -1 aborts the transfer. */
    struct stream_call sc2 = {.s.abort_after = 1};
    make_req(&req, "GET", t, "/stream", NULL);
    assert_int_equal(db_http_client_send(t->client, &req, 0, stream_done_cb, data_cb, &sc2, NULL),
                     DB_OK);
    db_http_req_clear(&req);
    spin(t, &sc2.r.calls, 1, 10000);
    assert_int_equal(sc2.r.calls, 1);
    assert_int_equal(sc2.r.status, 0);
    assert_string_equal(sc2.r.err, "aborted by data callback");
    assert_true(sc2.s.got < n);
    result_clear(&sc2.r);
}

static void cancel_runs_done_before_returning(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "GET", "/slow", -1, 200, "{}", 3000, 0);
    struct db_http_req req;
    make_req(&req, "GET", t, "/slow", NULL);
    struct result r = {0};
    struct db_http_call *hc = NULL;
    assert_int_equal(db_http_client_send(t->client, &req, 0, done_cb, NULL, &r, &hc), DB_OK);
    db_http_req_clear(&req);
    assert_int_equal(db_http_client_inflight(t->client), 1);
    /* Let it reach the server so that a connection is really torn down. */
    assert_int_equal(db_fake_wait(t->fake, "/slow", 0, 0), 0);
    long long end = db_test_now_ms() + 3000;
    while (db_fake_count(t->fake, "/slow") < 1 && db_test_now_ms() < end) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(t->base, &tv);
        event_base_dispatch(t->base);
    }
    assert_int_equal(db_fake_count(t->fake, "/slow"), 1);
    db_http_call_cancel(hc);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.err, "cancelled");
    assert_int_equal(r.status, 0);
    assert_int_equal(db_http_client_inflight(t->client), 0);
    /* Nothing more arrives later. */
    spin(t, &r.calls, 2, 200);
    assert_int_equal(r.calls, 1);
    result_clear(&r);
}

/* A done callback that cancels a sibling and starts a follow-up call. */
struct chain {
    struct ctx *t;
    struct db_http_call *victim;
    struct result first, victim_r, follow;
};

static void chain_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct chain *ch = arg;
    done_cb(resp, &ch->first);
    db_http_call_cancel(ch->victim);
    struct db_http_req req;
    make_req(&req, "GET", ch->t, "/follow", NULL);
    int rc = db_http_client_send(ch->t->client, &req, 0, done_cb, NULL, &ch->follow, NULL);
    db_http_req_clear(&req);
    if (rc != DB_OK) ch->follow.calls = -100;
}

static void done_callback_may_cancel_and_start_calls(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "GET", "/slow", -1, 200, "{}", 3000, 0);
    db_fake_default(t->fake, 200, "{\"ok\":1}");
    struct chain ch = {.t = t};
    struct db_http_req req;
    make_req(&req, "GET", t, "/slow", NULL);
    assert_int_equal(
        db_http_client_send(t->client, &req, 0, done_cb, NULL, &ch.victim_r, &ch.victim), DB_OK);
    db_http_req_clear(&req);
    make_req(&req, "GET", t, "/fast", NULL);
    assert_int_equal(db_http_client_send(t->client, &req, 0, chain_done_cb, NULL, &ch, NULL),
                     DB_OK);
    db_http_req_clear(&req);
    spin(t, &ch.follow.calls, 1, 5000);
    assert_int_equal(ch.first.calls, 1);
    assert_int_equal(ch.first.status, 200);
    assert_int_equal(ch.victim_r.calls, 1);
    assert_string_equal(ch.victim_r.err, "cancelled");
    assert_int_equal(ch.follow.calls, 1);
    assert_int_equal(ch.follow.status, 200);
    assert_int_equal(db_http_client_inflight(t->client), 0);
    result_clear(&ch.first);
    result_clear(&ch.victim_r);
    result_clear(&ch.follow);
}

static void free_cancels_every_call_in_flight(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "GET", "/slow", -1, 200, "{}", 3000, 0);
    struct result r[5] = {{0}};
    for (int i = 0; i < 5; i++) {
        struct db_http_req req;
        make_req(&req, "GET", t, "/slow", NULL);
        assert_int_equal(db_http_client_send(t->client, &req, 0, done_cb, NULL, &r[i], NULL),
                         DB_OK);
        db_http_req_clear(&req);
    }
    db_fake_wait(t->fake, "/slow", 0, 0);
    struct timeval tv = {0, 100000};
    event_base_loopexit(t->base, &tv);
    event_base_dispatch(t->base);
    db_http_client_free(t->client);
    t->client = NULL;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_string_equal(r[i].err, "cancelled");
        result_clear(&r[i]);
    }
}

/* Cancelling from inside curl's own callbacks (here: the data callback cancels its call)
 * must report at once and clean up after curl has returned. */
struct self_cancel {
    struct db_http_call *me;
    struct result r;
    int pieces;
};

static int self_cancel_data_cb(long status, const struct db_headers *h, const char *data,
                               size_t len, void *arg)
{
    struct self_cancel *sc = arg;
    (void)status;
    (void)h;
    (void)data;
    (void)len;
    sc->pieces++;
    db_http_call_cancel(sc->me);
    return 0;
}

static void self_cancel_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct self_cancel *sc = arg;
    done_cb(resp, &sc->r);
}

static void cancel_from_data_callback_is_safe(void **state)
{
    struct ctx *t = *state;
    char *big = malloc(100001);
    memset(big, 'q', 100000);
    big[100000] = '\0';
    db_fake_rule(t->fake, "GET", "/stream", -1, 200, big, 0, 0);
    free(big);
    struct db_http_req req;
    make_req(&req, "GET", t, "/stream", NULL);
    struct self_cancel sc = {0};
    assert_int_equal(db_http_client_send(t->client, &req, 0, self_cancel_done_cb,
                                         self_cancel_data_cb, &sc, &sc.me),
                     DB_OK);
    db_http_req_clear(&req);
    spin(t, &sc.r.calls, 1, 5000);
    assert_int_equal(sc.r.calls, 1);
    assert_string_equal(sc.r.err, "cancelled");
    assert_int_equal(sc.pieces, 1);
    assert_int_equal(db_http_client_inflight(t->client), 0);
    /* The client still works afterwards. */
    struct result r = {0};
    make_req(&req, "GET", t, "/other", NULL);
    call(t, &req, 0, &r);
    assert_int_equal(r.status, 404);
    result_clear(&r);
    result_clear(&sc.r);
}

/* Freeing the client from one of its own done callbacks is deferred, not a use after free. */
struct free_in_done {
    struct ctx *t;
    struct result first, others[3];
};

static void free_in_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct free_in_done *fd = arg;
    done_cb(resp, &fd->first);
    db_http_client_free(fd->t->client);
    fd->t->client = NULL;
}

static void free_from_done_callback_is_deferred(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "GET", "/slow", -1, 200, "{}", 3000, 0);
    db_fake_default(t->fake, 200, "{}");
    struct free_in_done fd = {.t = t};
    struct db_http_req req;
    for (int i = 0; i < 3; i++) {
        make_req(&req, "GET", t, "/slow", NULL);
        assert_int_equal(
            db_http_client_send(t->client, &req, 0, done_cb, NULL, &fd.others[i], NULL), DB_OK);
        db_http_req_clear(&req);
    }
    make_req(&req, "GET", t, "/fast", NULL);
    assert_int_equal(db_http_client_send(t->client, &req, 0, free_in_done_cb, NULL, &fd, NULL),
                     DB_OK);
    db_http_req_clear(&req);
    spin(t, &fd.first.calls, 1, 5000);
    assert_int_equal(fd.first.calls, 1);
    assert_int_equal(fd.first.status, 200);
    assert_null(t->client);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fd.others[i].calls, 1);
        assert_string_equal(fd.others[i].err, "cancelled");
        result_clear(&fd.others[i]);
    }
    result_clear(&fd.first);
}

struct many {
    int done, ok;
};

static void many_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct many *m = arg;
    m->done++;
    if (resp->status == 200 && resp->body_len > 0 && !resp->transport_error) m->ok++;
}

static void two_hundred_concurrent_calls_all_answer(void **state)
{
    struct ctx *t = *state;
    db_fake_rule(t->fake, "POST", "/many", -1, 200, "{\"message_id\":{n}}", 0, 0);
    struct many m = {0};
    for (int i = 0; i < 200; i++) {
        struct db_http_req req;
        make_req(&req, "POST", t, "/many", "{}");
        assert_int_equal(db_http_client_send(t->client, &req, 0, many_done_cb, NULL, &m, NULL),
                         DB_OK);
        db_http_req_clear(&req);
    }
    assert_int_equal(db_http_client_inflight(t->client), 200);
    spin(t, &m.done, 200, 30000);
    assert_int_equal(m.done, 200);
    assert_int_equal(m.ok, 200);
    assert_int_equal(db_fake_count(t->fake, "/many"), 200);
    assert_true(db_fake_connections(t->fake) <= 16); /* max_per_host default */
    assert_int_equal(db_http_client_inflight(t->client), 0);
}

static int setup_guarded(void **state)
{
    struct db_http_client_opts o = {.timeout_ms = 5000, .block_private = 1};
    return setup_opts(state, &o);
}

static void guard_refuses_loopback_before_connecting(void **state)
{
    struct ctx *t = *state;
    db_fake_default(t->fake, 200, "{}");
    const char *hosts[] = {"127.0.0.1", "localhost", "[::ffff:127.0.0.1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "https://%s:%d/hook", hosts[i], db_fake_port(t->fake));
        struct db_http_req req = {.method = strdup("GET"), .url = strdup(url)};
        struct result r = {0};
        call(t, &req, 0, &r);
        assert_int_equal(r.status, 0);
        assert_non_null(r.err);
        assert_non_null(strstr(r.err, "not allowed"));
        result_clear(&r);
    }
    /* Plain http is refused outright by a guarded client. */
    char url[128];
    snprintf(url, sizeof url, "%s/hook", db_fake_url(t->fake));
    struct db_http_req req = {.method = strdup("GET"), .url = strdup(url)};
    struct result r = {0};
    assert_int_equal(db_http_client_send(t->client, &req, 0, done_cb, NULL, &r, NULL), DB_EINVAL);
    db_http_req_clear(&req);
    spin(t, &r.calls, 1, 100);
    assert_int_equal(r.calls, 0);

    assert_int_equal(db_fake_count(t->fake, NULL), 0);
    assert_int_equal(db_fake_connections(t->fake), 0);
}

static void unguarded_client_reaches_loopback(void **state)
{
    /* The same fake is reachable without the guard: the refusal above is the guard's doing. */
    struct ctx *t = *state;
    db_fake_default(t->fake, 200, "{}");
    struct db_http_req req;
    make_req(&req, "GET", t, "/hook", NULL);
    struct result r = {0};
    call(t, &req, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(db_fake_connections(t->fake), 1);
    result_clear(&r);
}

/* A guarded client whose test_allow names the fake's own address and port. */
static int setup_test_allow(void **state)
{
    struct ctx *t = calloc(1, sizeof *t);
    t->base = event_base_new();
    t->fake = db_fake_start();
    if (!t->base || !t->fake) return -1;
    char allow[32];
    snprintf(allow, sizeof allow, "127.0.0.1:%d", db_fake_port(t->fake));
    struct db_http_client_opts o = {.timeout_ms = 5000, .block_private = 1, .test_allow = allow};
    t->client = db_http_client_new(t->base, &o);
    if (!t->client) return -1;
    *state = t;
    return 0;
}

/* Sends url; DB_EINVAL when refused at once, else the answer in *r (caller clears it). */
static int try_url(struct ctx *t, const char *url, struct result *r)
{
    struct db_http_req req = {.method = strdup("GET"), .url = strdup(url)};
    memset(r, 0, sizeof *r);
    int rc = db_http_client_send(t->client, &req, 0, done_cb, NULL, r, NULL);
    db_http_req_clear(&req);
    if (rc == DB_OK) {
        spin(t, &r->calls, 1, 10000);
        assert_int_equal(r->calls, 1);
    }
    return rc;
}

/* The exception reaches exactly the address and port it names, over http too; the same
 * loopback under a name, another loopback address, the mapped IPv6 form and, above all,
 * another port on 127.0.0.1 stay refused, without a connection. */
static void test_allow_opens_one_address_and_port_only(void **state)
{
    struct ctx *t = *state;
    db_fake_default(t->fake, 200, "{}");
    struct db_fake *other = db_fake_start();
    assert_non_null(other);
    db_fake_default(other, 200, "{}");
    int p = db_fake_port(t->fake), q = db_fake_port(other);
    char url[128];
    struct result r;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/file.png", p);
    assert_int_equal(try_url(t, url, &r), DB_OK);
    assert_int_equal(r.status, 200);
    result_clear(&r);
    assert_int_equal(db_fake_count(t->fake, "/file.png"), 1);

    const char *hosts[] = {"localhost", "127.0.0.2", "[::ffff:127.0.0.1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        snprintf(url, sizeof url, "https://%s:%d/x", hosts[i], p);
        assert_int_equal(try_url(t, url, &r), DB_OK);
        assert_int_equal(r.status, 0);
        assert_non_null(r.err);
        assert_non_null(strstr(r.err, "not allowed"));
        result_clear(&r);
    }
    snprintf(url, sizeof url, "https://127.0.0.1:%d/x", q);
    assert_int_equal(try_url(t, url, &r), DB_OK);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "not allowed"));
    result_clear(&r);
    /* Plain http stays https-only for everything but the named address and port. */
    for (size_t i = 0; i < 2; i++) {
        snprintf(url, sizeof url, "http://%s:%d/x", hosts[i], p);
        assert_int_equal(try_url(t, url, &r), DB_EINVAL);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", q);
    assert_int_equal(try_url(t, url, &r), DB_EINVAL);
    assert_int_equal(r.calls, 0);

    assert_int_equal(db_fake_count(t->fake, NULL), 1);
    assert_int_equal(db_fake_connections(other), 0);
    db_fake_stop(other);
}

static int is_private_str(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1) return -1;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1) return -1;
    }
    return db_http_addr_is_private((struct sockaddr *)&ss);
}

static void addr_is_private_table(void **state)
{
    (void)state;
    static const struct {
        const char *ip;
        int blocked;
    } cases[] = {
        {"127.0.0.1", 1},      {"127.255.0.9", 1},       {"0.0.0.0", 1},
        {"10.0.0.1", 1},       {"10.255.255.255", 1},    {"172.16.0.1", 1},
        {"172.31.255.254", 1}, {"172.32.0.1", 0},        {"172.15.255.255", 0},
        {"192.168.1.1", 1},    {"192.169.0.1", 0},       {"169.254.169.254", 1},
        {"100.64.0.1", 1},     {"100.127.255.255", 1},   {"100.128.0.1", 0},
        {"224.0.0.1", 1},      {"255.255.255.255", 1},   {"8.8.8.8", 0},
        {"1.1.1.1", 0},        {"::1", 1},               {"::", 1},
        {"fe80::1", 1},        {"febf::1", 1},           {"fc00::1", 1},
        {"fdff::1", 1},        {"ff02::1", 1},           {"::ffff:127.0.0.1", 1},
        {"::ffff:10.1.2.3", 1}, {"::ffff:8.8.8.8", 0},   {"64:ff9b::a9fe:a9fe", 1},
        {"2001:4860::8888", 0}, {"2606:4700::1111", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = is_private_str(cases[i].ip);
        if (got != cases[i].blocked) fail_msg("%s: got %d want %d", cases[i].ip, got, cases[i].blocked);
    }
    struct sockaddr other = {.sa_family = AF_UNIX};
    assert_int_equal(db_http_addr_is_private(&other), 1);
    assert_int_equal(db_http_addr_is_private(NULL), 1);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
        abort();
    close(fd);
    return ntohs(sin.sin_port);
}

static void errors_never_quote_the_token(void **state)
{
    struct ctx *t = *state;
    const char *token = "123456789:AAsecretTOKENvalue";
    db_fake_rule(t->fake, "POST", "/slow", -1, 200, "{}", 3000, 0);
    char urls[3][256];
    snprintf(urls[0], sizeof urls[0], "http://127.0.0.1:%d/bot%s/sendMessage", closed_port(), token);
    snprintf(urls[1], sizeof urls[1], "%s/slow/bot%s/sendMessage?token=%s", db_fake_url(t->fake),
             token, token);
    snprintf(urls[2], sizeof urls[2], "http://127.0.0.1:%d/bot%s/x", 70000, token);
    for (int i = 0; i < 3; i++) {
        struct db_http_req req = {.method = strdup("POST"), .url = strdup(urls[i])};
        struct result r = {0};
        int rc = db_http_client_send(t->client, &req, 300, done_cb, NULL, &r, NULL);
        db_http_req_clear(&req);
        if (rc == DB_OK) {
            spin(t, &r.calls, 1, 5000);
            assert_int_equal(r.calls, 1);
            assert_non_null(r.err);
            assert_null(strstr(r.err, "secret"));
            assert_null(strstr(r.err, "123456789"));
        } else {
            assert_int_equal(rc, DB_EINVAL); /* the bad port */
        }
        result_clear(&r);
    }
}

static void bad_requests_are_refused_synchronously(void **state)
{
    struct ctx *t = *state;
    struct result r = {0};
    const char *urls[] = {"not a url", "ftp://127.0.0.1/x", "file:///etc/passwd", ""};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        struct db_http_req req = {.method = strdup("GET"), .url = strdup(urls[i])};
        assert_int_equal(db_http_client_send(t->client, &req, 0, done_cb, NULL, &r, NULL),
                         DB_EINVAL);
        db_http_req_clear(&req);
    }
    struct db_http_req req;
    make_req(&req, "GET", t, "/x", "body on a GET");
    assert_int_equal(db_http_client_send(t->client, &req, 0, done_cb, NULL, &r, NULL), DB_EINVAL);
    db_http_req_clear(&req);
    make_req(&req, "TRACE", t, "/x", NULL);
    assert_int_equal(db_http_client_send(t->client, &req, 0, done_cb, NULL, &r, NULL), DB_EINVAL);
    db_http_req_clear(&req);
    assert_int_equal(db_http_client_inflight(t->client), 0);
    spin(t, &r.calls, 1, 100);
    assert_int_equal(r.calls, 0);
    assert_int_equal(db_fake_count(t->fake, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_round_trip_carries_headers_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(post_round_trip_sends_body_and_reads_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(put_and_delete_use_their_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(sequential_calls_reuse_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(stalled_answer_times_out_on_time, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_reset_is_a_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(response_over_cap_is_refused, setup_small_cap, teardown),
        cmocka_unit_test_setup_teardown(streaming_hands_body_to_data_cb, setup_small_cap, teardown),
        cmocka_unit_test_setup_teardown(cancel_runs_done_before_returning, setup, teardown),
        cmocka_unit_test_setup_teardown(done_callback_may_cancel_and_start_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(free_cancels_every_call_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_from_data_callback_is_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(free_from_done_callback_is_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(two_hundred_concurrent_calls_all_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(guard_refuses_loopback_before_connecting, setup_guarded, teardown),
        cmocka_unit_test_setup_teardown(unguarded_client_reaches_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_opens_one_address_and_port_only,
                                        setup_test_allow, teardown),
        cmocka_unit_test(addr_is_private_table),
        cmocka_unit_test_setup_teardown(errors_never_quote_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_requests_are_refused_synchronously, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
