/* fake_platform.c - see fake_platform.h.
 *
 * Threading: the evhttp server and all its events live on the fake's own base, touched only
 * by the fake's thread.  Rules, recordings and counters are shared with test threads and are
 * guarded by one mutex; the answer to a request is decided (and copied) under the mutex and
 * sent outside it.  Stopping is an event activated from the caller's thread, which needs
 * libevent's pthread locking, switched on once per process. */
#include "fake_platform.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rule {
    char *method, *path, *body;
    int times, status, delay_ms, reset;
    struct db_headers extra;
};

/* What one request gets, decided under the lock and then owned by the server thread. */
struct answer {
    int status, delay_ms, reset;
    char *body;
    size_t body_len;
    struct db_headers extra;
};

/* An answer waiting for its delay. */
struct pending {
    struct db_fake *f;
    struct evhttp_request *req;
    struct event *ev;
    struct answer a;
    struct pending *prev, *next;
};

struct db_fake {
    pthread_t thread;
    pthread_mutex_t mu;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    int port;
    char url[64];

    /* guarded by mu */
    struct rule *rules;
    size_t nrules, caprules;
    int def_status;
    char *def_body;
    struct db_fake_request *recs;
    size_t nrecs, caprecs;
    size_t conns;
    unsigned long counter;

    /* server thread only */
    struct pending *pending;
};

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_ok;

static void threads_init(void)
{
    threads_ok = evthread_use_pthreads() == 0;
}

static void answer_clear(struct answer *a)
{
    free(a->body);
    db_headers_clear(&a->extra);
    memset(a, 0, sizeof *a);
}

static void rule_clear(struct rule *r)
{
    free(r->method);
    free(r->path);
    free(r->body);
    db_headers_clear(&r->extra);
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

static int path_matches(const char *path, const char *substr)
{
    return !substr || !*substr || strstr(path, substr) != NULL;
}

/* Copies body with every "{n}" replaced by the next counter value (one value per answer). */
static char *expand_body(struct db_fake *f, const char *body, size_t *len)
{
    if (!body) body = "";
    size_t hits = 0;
    for (const char *p = strstr(body, "{n}"); p; p = strstr(p + 3, "{n}")) hits++;
    char num[32] = "";
    if (hits) snprintf(num, sizeof num, "%lu", ++f->counter);
    size_t n = strlen(body) + hits * strlen(num) + 1;
    char *out = malloc(n), *o = out;
    if (!out) return NULL;
    for (const char *p = body; *p;) {
        if (strncmp(p, "{n}", 3) == 0) {
            memcpy(o, num, strlen(num));
            o += strlen(num);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

static int headers_copy(struct db_headers *dst, const struct db_headers *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (db_headers_add(dst, src->v[i].name, src->v[i].value) != DB_OK) return DB_ENOMEM;
    return DB_OK;
}

/* Under the lock: records req and decides its answer.  -1 on out of memory. */
static int record_and_decide(struct db_fake *f, struct evhttp_request *req, struct answer *a)
{
    struct db_fake_request rec = {0};
    const char *method = method_name(evhttp_request_get_command(req));
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    rec.method = strdup(method);
    rec.path = strdup(uri ? uri : "");
    rec.body = malloc(blen + 1);
    if (!rec.method || !rec.path || !rec.body) goto fail;
    evbuffer_copyout(in, rec.body, blen);
    rec.body[blen] = '\0';
    rec.body_len = blen;
    struct evkeyvalq *hq = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = hq->tqh_first; kv; kv = kv->next.tqe_next)
        if (db_headers_add(&rec.headers, kv->key, kv->value) != DB_OK) goto fail;

    pthread_mutex_lock(&f->mu);
    if (f->nrecs == f->caprecs) {
        size_t cap = f->caprecs ? f->caprecs * 2 : 16;
        struct db_fake_request *v = realloc(f->recs, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&f->mu);
            goto fail;
        }
        f->recs = v;
        f->caprecs = cap;
    }
    f->recs[f->nrecs++] = rec;

    const struct rule *hit = NULL;
    for (size_t i = 0; i < f->nrules && !hit; i++) {
        struct rule *r = &f->rules[i];
        if (r->times == 0) continue;
        if (r->method && strcmp(r->method, "*") != 0 && strcasecmp(r->method, method) != 0)
            continue;
        if (!path_matches(rec.path, r->path)) continue;
        if (r->times > 0) r->times--;
        hit = r;
    }
    int rc = 0;
    a->status = hit ? hit->status : f->def_status;
    a->delay_ms = hit ? hit->delay_ms : 0;
    a->reset = hit ? hit->reset : 0;
    a->body = expand_body(f, hit ? hit->body : f->def_body, &a->body_len);
    if (!a->body || (hit && headers_copy(&a->extra, &hit->extra) != DB_OK)) rc = -1;
    struct db_fake_request *kept = &f->recs[f->nrecs - 1];
    kept->answer_status = a->reset ? 0 : a->status;
    if (a->body && !a->reset && !(kept->answer = strdup(a->body))) rc = -1;
    pthread_mutex_unlock(&f->mu);
    return rc;

fail:
    db_fake_request_clear(&rec);
    return -1;
}

static void send_answer(struct evhttp_request *req, const struct answer *a)
{
    if (a->reset) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        if (!evcon) { /* the client went away first; the request is ours to free */
            evhttp_request_free(req);
            return;
        }
        /* Linger 0 turns the close into an RST: the client sees a reset, not a clean EOF. */
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        evhttp_connection_free(evcon);
        return;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    int typed = 0;
    for (size_t i = 0; i < a->extra.n; i++) typed |= strcasecmp(a->extra.v[i].name, "Content-Type") == 0;
    if (!typed) evhttp_add_header(out, "Content-Type", "application/json");
    for (size_t i = 0; i < a->extra.n; i++)
        evhttp_add_header(out, a->extra.v[i].name, a->extra.v[i].value);
    struct evbuffer *body = evbuffer_new();
    if (body) evbuffer_add(body, a->body, a->body_len);
    evhttp_send_reply(req, a->status, a->status < 400 ? "OK" : "Error", body);
    if (body) evbuffer_free(body);
}

static void pending_unlink(struct db_fake *f, struct pending *p)
{
    if (p->prev) p->prev->next = p->next;
    else f->pending = p->next;
    if (p->next) p->next->prev = p->prev;
}

static void pending_free(struct pending *p)
{
    event_free(p->ev);
    answer_clear(&p->a);
    free(p);
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    (void)fd;
    (void)what;
    pending_unlink(p->f, p);
    send_answer(p->req, &p->a);
    pending_free(p);
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct db_fake *f = arg;
    struct answer a = {0};
    if (record_and_decide(f, req, &a) != 0) {
        evhttp_send_error(req, 500, "fake out of memory");
        answer_clear(&a);
        return;
    }
    if (a.delay_ms <= 0 && !a.reset) {
        send_answer(req, &a);
        answer_clear(&a);
        return;
    }
    /* Resets are deferred too: freeing the connection from inside its own request callback
     * would pull it out from under evhttp. */
    struct pending *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->f = f;
    p->req = req;
    p->a = a;
    p->ev = evtimer_new(f->base, pending_cb, p);
    if (!p->ev) {
        free(p);
        goto oom;
    }
    struct timeval tv = {.tv_sec = a.delay_ms / 1000, .tv_usec = (a.delay_ms % 1000) * 1000};
    evtimer_add(p->ev, &tv);
    p->next = f->pending;
    if (f->pending) f->pending->prev = p;
    f->pending = p;
    return;
oom:
    evhttp_send_error(req, 500, "fake out of memory");
    answer_clear(&a);
}

static struct bufferevent *conn_cb(struct event_base *base, void *arg)
{
    struct db_fake *f = arg;
    (void)base;
    pthread_mutex_lock(&f->mu);
    f->conns++;
    pthread_mutex_unlock(&f->mu);
    return NULL; /* evhttp then makes its usual socket bufferevent */
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_fake *f = arg;
    (void)fd;
    (void)what;
    /* Stalled answers go out now so that no request object is left behind. */
    while (f->pending) {
        struct pending *p = f->pending;
        pending_unlink(f, p);
        send_answer(p->req, &p->a);
        pending_free(p);
    }
    evhttp_free(f->http);
    f->http = NULL;
    event_base_loopbreak(f->base);
}

static void *thread_main(void *arg)
{
    struct db_fake *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

struct db_fake *db_fake_start(void)
{
    pthread_once(&threads_once, threads_init);
    if (!threads_ok) return NULL;
    struct db_fake *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->def_status = 404;
    f->def_body = strdup("{\"error\":\"no rule\"}");
    f->base = event_base_new();
    if (!f->def_body || !f->base) goto fail;
    f->http = evhttp_new(f->base);
    f->stop_ev = event_new(f->base, -1, 0, stop_cb, f);
    if (!f->http || !f->stop_ev) goto fail;
    evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(f->http, request_cb, f);
    evhttp_set_bevcb(f->http, conn_cb, f);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    if (!bound) goto fail;
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &sl) != 0)
        goto fail;
    f->port = ntohs(sin.sin_port);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    if (pthread_create(&f->thread, NULL, thread_main, f) != 0) goto fail;
    return f;

fail:
    if (f->stop_ev) event_free(f->stop_ev);
    if (f->http) evhttp_free(f->http);
    if (f->base) event_base_free(f->base);
    free(f->def_body);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return NULL;
}

void db_fake_stop(struct db_fake *f)
{
    if (!f) return;
    event_active(f->stop_ev, 0, 0);
    pthread_join(f->thread, NULL);
    event_free(f->stop_ev);
    event_base_free(f->base);
    for (size_t i = 0; i < f->nrules; i++) rule_clear(&f->rules[i]);
    free(f->rules);
    for (size_t i = 0; i < f->nrecs; i++) db_fake_request_clear(&f->recs[i]);
    free(f->recs);
    free(f->def_body);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int db_fake_port(const struct db_fake *f)
{
    return f->port;
}

const char *db_fake_url(const struct db_fake *f)
{
    return f->url;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void db_fake_rule(struct db_fake *f, const char *method, const char *path_substr, int times,
                  int status, const char *body, int delay_ms, int reset)
{
    struct rule r = {
        .method = dup_or_null(method),
        .path = dup_or_null(path_substr),
        .body = strdup(body ? body : ""),
        .times = times,
        .status = status,
        .delay_ms = delay_ms,
        .reset = reset,
    };
    pthread_mutex_lock(&f->mu);
    if (f->nrules == f->caprules) {
        size_t cap = f->caprules ? f->caprules * 2 : 8;
        struct rule *v = realloc(f->rules, cap * sizeof *v);
        if (!v) abort(); /* a test cannot go on without its script */
        f->rules = v;
        f->caprules = cap;
    }
    if (!r.body || (method && !r.method) || (path_substr && !r.path)) abort();
    f->rules[f->nrules++] = r;
    pthread_mutex_unlock(&f->mu);
}

void db_fake_rule_header(struct db_fake *f, const char *name, const char *value)
{
    pthread_mutex_lock(&f->mu);
    if (f->nrules && db_headers_add(&f->rules[f->nrules - 1].extra, name, value) != DB_OK)
        abort();
    pthread_mutex_unlock(&f->mu);
}

void db_fake_default(struct db_fake *f, int status, const char *body)
{
    char *b = strdup(body ? body : "");
    if (!b) abort();
    pthread_mutex_lock(&f->mu);
    free(f->def_body);
    f->def_body = b;
    f->def_status = status;
    pthread_mutex_unlock(&f->mu);
}

size_t db_fake_count(struct db_fake *f, const char *path_substr)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nrecs; i++)
        if (path_matches(f->recs[i].path, path_substr)) n++;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int db_fake_get(struct db_fake *f, size_t i, struct db_fake_request *out)
{
    memset(out, 0, sizeof *out);
    int rc = DB_OK;
    pthread_mutex_lock(&f->mu);
    if (i >= f->nrecs) {
        rc = DB_ENOTFOUND;
        goto out;
    }
    const struct db_fake_request *r = &f->recs[i];
    out->method = strdup(r->method);
    out->path = strdup(r->path);
    out->body = malloc(r->body_len + 1);
    if (!out->method || !out->path || !out->body || headers_copy(&out->headers, &r->headers)) {
        rc = DB_ENOMEM;
        goto out;
    }
    memcpy(out->body, r->body, r->body_len + 1);
    out->body_len = r->body_len;
    out->answer_status = r->answer_status;
    if (r->answer && !(out->answer = strdup(r->answer))) rc = DB_ENOMEM;
out:
    pthread_mutex_unlock(&f->mu);
    if (rc != DB_OK) db_fake_request_clear(out);
    return rc;
}

void db_fake_request_clear(struct db_fake_request *r)
{
    if (!r) return;
    free(r->method);
    free(r->path);
    free(r->body);
    free(r->answer);
    db_headers_clear(&r->headers);
    memset(r, 0, sizeof *r);
}

size_t db_fake_wait(struct db_fake *f, const char *path_substr, size_t n, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        size_t got = db_fake_count(f, path_substr);
        if (got >= n) return got;
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* In nanoseconds: dividing a negative nanosecond difference rounds toward zero and
         * counted up to 1 ms too much, so the wait could end before its deadline. */
        long long ns = (now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec);
        if (ns >= timeout_ms * 1000000LL) return got;
        usleep(2000);
    }
}

size_t db_fake_connections(struct db_fake *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->conns;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void db_fake_reset(struct db_fake *f)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nrules; i++) rule_clear(&f->rules[i]);
    f->nrules = 0;
    for (size_t i = 0; i < f->nrecs; i++) db_fake_request_clear(&f->recs[i]);
    f->nrecs = 0;
    f->conns = 0;
    pthread_mutex_unlock(&f->mu);
}
