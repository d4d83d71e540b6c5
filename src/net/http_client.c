/* http_client.c - libcurl multi on libevent.
 *
 * libcurl is linked normally and called directly, so curl's compile-time option type checks
 * (curl/typecheck-gcc.h, gcc with optimisation) see every curl_easy_setopt.  curl is
 * initialised once per process and a client makes its multi handle on its first send
 * (curl_ready), so a client that never sends allocates nothing of curl's.  If curl cannot be
 * initialised, sends fail like transport errors (send_without_curl).
 *
 * curl tells us which sockets to watch (sock_cb) and when to wake it (timer_cb); we call
 * curl_multi_socket_action from libevent callbacks.  Finished transfers are never reported
 * from inside curl: after socket_action returns we drain curl_multi_info_read into a queue
 * and only then run done callbacks, so a callback may freely start, cancel or free. */
#include "net/http_client.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>

/* curl's option type checks (curl/typecheck-gcc.h, gcc with optimisation) report through
 * functions declared in a system header, and gcc hides those reports unless asked: without
 * this line a wrongly typed curl_easy_setopt compiles silently (tests: curl_option_types). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic warning "-Wsystem-headers"
#endif
#include <curl/curl.h>

/* And they must stay on: curl.h defines them unless CURL_DISABLE_TYPECHECK is set. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && \
    !defined(curlcheck_long_option) && !defined(_curl_is_long_option)
#error "curl's compile-time option type checks are off (CURL_DISABLE_TYPECHECK?)"
#endif

#include "net/netcheck.h"
#include "util/crypto.h"

enum call_state {
    CALL_PENDING_ADD, /* created while curl was on the stack; added on settle */
    CALL_ACTIVE,      /* easy handle is in the multi */
    CALL_FINISHED,    /* result known, waiting in done_q for its done callback */
    CALL_ZOMBIE,      /* done already ran (cancel inside curl); handle still in the multi */
};

struct sock {
    struct db_http_client *c;
    curl_socket_t fd;
    struct event *ev;
    struct sock *prev, *next;
};

struct db_http_call {
    struct db_http_client *c;
    enum call_state state;
    CURL *easy;
    struct curl_slist *req_headers;
    char *url, *body;
    size_t body_len;

    db_http_done_fn done;
    db_http_data_fn data_cb;
    void *arg;

    struct db_headers headers; /* of the last response seen (interim ones are dropped) */
    char *buf;
    size_t len, cap;
    long status;
    CURLcode result;
    const char *fail_reason; /* our own reason for aborting, wins over the curl code */
    int blocked;             /* the SSRF guard refused an address */
    int test_exempt;         /* the URL names the client's test_allow address and port */

    struct db_http_call *prev, *next;   /* all calls of the client */
    struct db_http_call *q_prev, *q_next; /* done_q membership */
};

struct db_http_client {
    struct event_base *base;
    CURLM *multi; /* made on the first send */
    struct event *timer;
    struct event *kick; /* 0-delay: settles work queued while curl was on the stack */
    struct db_http_client_opts opts;

    struct db_http_call *calls;
    struct db_http_call *q_head, *q_tail;
    struct sock *socks;
    size_t inflight;

    int in_curl;     /* inside curl_multi_socket_action: the multi must not be touched */
    int depth;       /* nesting of our own dispatch; free is deferred until it is 0 */
    int need_fixup;  /* pending adds or zombies exist */
    int freeing;
    char *sigv4, *userpwd; /* AWS SigV4 signing (opts), NULL when unsigned */
    /* The last URL url_check passed and its verdict: a sender calls the same few URLs. */
    char *checked_url;
    int checked_exempt;
    struct db_http_allow allow; /* opts.test_allow parsed, when has_allow */
    int has_allow;
};

static void settle(struct db_http_client *c);

/* ---- small helpers ---------------------------------------------------------------------- */

static void call_unlink(struct db_http_call *k)
{
    struct db_http_client *c = k->c;
    if (k->prev) k->prev->next = k->next;
    else c->calls = k->next;
    if (k->next) k->next->prev = k->prev;
    k->prev = k->next = NULL;
}

static void call_free(struct db_http_call *k)
{
    if (!k) return;
    if (k->easy) curl_easy_cleanup(k->easy);
    if (k->req_headers) curl_slist_free_all(k->req_headers);
    free(k->url);
    free(k->body);
    free(k->buf);
    db_headers_clear(&k->headers);
    free(k);
}

static void q_push(struct db_http_client *c, struct db_http_call *k)
{
    k->q_next = NULL;
    k->q_prev = c->q_tail;
    if (c->q_tail) c->q_tail->q_next = k;
    else c->q_head = k;
    c->q_tail = k;
}

static void q_remove(struct db_http_client *c, struct db_http_call *k)
{
    if (k->q_prev) k->q_prev->q_next = k->q_next;
    else c->q_head = k->q_next;
    if (k->q_next) k->q_next->q_prev = k->q_prev;
    else c->q_tail = k->q_prev;
    k->q_prev = k->q_next = NULL;
}

static void kick_later(struct db_http_client *c)
{
    if (c->kick) event_active(c->kick, 0, 0);
}

/* Why no HTTP answer came, as a static string without the URL: curl's error buffer can quote
 * the URL, and URLs carry tokens, so only curl_easy_strerror() text is ever used. */
static const char *transport_error(const struct db_http_call *k)
{
    if (k->fail_reason) return k->fail_reason;
    if (k->result == CURLE_OK) return NULL;
    /* With several addresses, only a transfer that failed altogether blames the guard. */
    if (k->blocked) return "address not allowed (private or reserved network)";
    switch (k->result) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_FILESIZE_EXCEEDED: return "response too large";
    default: return curl_easy_strerror(k->result);
    }
}

/* Runs k's done callback once and frees k.  k must already be out of the multi, the call
 * list and the queue. */
static void finish(struct db_http_client *c, struct db_http_call *k, const char *forced_error)
{
    const char *err = forced_error ? forced_error : transport_error(k);
    struct db_http_resp r = {
        .status = err ? 0 : k->status,
        .headers = &k->headers,
        .body = err || k->data_cb ? NULL : k->buf,
        .body_len = err || k->data_cb ? 0 : k->len,
        .transport_error = err,
    };
    c->inflight--;
    c->depth++;
    k->done(&r, k->arg);
    c->depth--;
}

/* ---- curl callbacks ---------------------------------------------------------------------- */

static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
    struct db_http_call *k = userp;
    size_t len = size * n;
    if (k->state == CALL_ZOMBIE) return 0;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new status line starts a new response (100 Continue, 1xx): forget older
         * headers so that the caller sees only the final answer's. */
        db_headers_clear(&k->headers);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon || colon == data) return len; /* blank line ending the block, or junk */
    size_t nl = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *name = strndup(data, nl), *value = strndup(v, (size_t)(end - v));
    int rc = name && value ? db_headers_add(&k->headers, name, value) : DB_ENOMEM;
    free(name);
    free(value);
    if (rc != DB_OK) {
        k->fail_reason = "out of memory";
        return 0;
    }
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct db_http_call *k = userp;
    size_t len = size * n;
    if (k->state == CALL_ZOMBIE) return 0;
    if (k->data_cb) {
        long status = 0;
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &status);
        if (k->data_cb(status, &k->headers, data, len, k->arg) != 0) {
            k->fail_reason = "aborted by data callback";
            return 0;
        }
        return len;
    }
    size_t cap = k->c->opts.max_response_bytes;
    if (len > cap || k->len > cap - len) {
        k->fail_reason = "response too large";
        return 0;
    }
    if (k->len + len > k->cap) {
        size_t ncap = k->cap ? k->cap : 4096;
        while (ncap < k->len + len) ncap *= 2;
        if (ncap > cap) ncap = cap;
        char *nb = realloc(k->buf, ncap);
        if (!nb) {
            k->fail_reason = "out of memory";
            return 0;
        }
        k->buf = nb;
        k->cap = ncap;
    }
    memcpy(k->buf + k->len, data, len);
    k->len += len;
    return len;
}

/* The SSRF guard sits here rather than on the host name: it sees each address curl is about
 * to connect to after resolution, so DNS tricks (a public name resolving to 127.0.0.1) do
 * not get past it. */
static curl_socket_t opensocket_cb(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct db_http_call *k = userp;
    (void)purpose;
    if (k->c->opts.block_private && db_http_addr_is_private(&a->addr) &&
        !(k->test_exempt && db_http_allow_matches(&k->c->allow, &a->addr))) {
        k->blocked = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_http_client *c = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running = 0;
    c->depth++;
    c->in_curl = 1;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl = 0;
    settle(c);
    c->depth--;
    if (c->depth == 0 && c->freeing) db_http_client_free(c);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_http_client *c = arg;
    int running = 0;
    (void)fd;
    (void)what;
    c->depth++;
    c->in_curl = 1;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl = 0;
    settle(c);
    c->depth--;
    if (c->depth == 0 && c->freeing) db_http_client_free(c);
}

static void kick_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_http_client *c = arg;
    (void)fd;
    (void)what;
    c->depth++;
    settle(c);
    c->depth--;
    if (c->depth == 0 && c->freeing) db_http_client_free(c);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct db_http_client *c = userp;
    struct sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            event_free(s->ev);
            if (s->prev) s->prev->next = s->next;
            else c->socks = s->next;
            if (s->next) s->next->prev = s->prev;
            free(s);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    short ev = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->c = c;
        s->fd = fd;
        s->next = c->socks;
        if (c->socks) c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    } else {
        event_free(s->ev);
        s->ev = NULL;
    }
    s->ev = event_new(c->base, fd, ev, sock_event_cb, c);
    if (!s->ev || event_add(s->ev, NULL) != 0) return -1;
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct db_http_client *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

/* ---- settling: everything that must not happen while curl is on the stack ------------- */

static void add_to_multi(struct db_http_client *c, struct db_http_call *k)
{
    if (curl_multi_add_handle(c->multi, k->easy) == CURLM_OK) {
        k->state = CALL_ACTIVE;
        return;
    }
    k->state = CALL_FINISHED;
    k->fail_reason = "could not start transfer";
    q_push(c, k);
    kick_later(c);
}

static void settle(struct db_http_client *c)
{
    if (c->in_curl) return;
    if (c->need_fixup) {
        c->need_fixup = 0;
        for (struct db_http_call *k = c->calls, *next; k; k = next) {
            next = k->next;
            if (k->state == CALL_PENDING_ADD) {
                add_to_multi(c, k);
            } else if (k->state == CALL_ZOMBIE) {
                curl_multi_remove_handle(c->multi, k->easy);
                call_unlink(k);
                call_free(k);
            }
        }
    }
    CURLMsg *m;
    int left;
    /* Without a multi (libcurl not loaded yet, or not loadable) only queued calls remain. */
    while (c->multi && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        void *priv = NULL;
        CURLcode result = m->data.result; /* m is invalid after remove_handle */
        CURL *easy = m->easy_handle;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct db_http_call *k = priv;
        curl_multi_remove_handle(c->multi, easy);
        if (!k || k->state != CALL_ACTIVE) continue;
        k->result = result;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &k->status);
        k->state = CALL_FINISHED;
        q_push(c, k);
    }
    /* Done callbacks last, one at a time from the queue head: a callback may cancel a call
     * that is still queued (it is unlinked from the queue) or start new ones. */
    struct db_http_call *k;
    while ((k = c->q_head)) {
        q_remove(c, k);
        call_unlink(k);
        finish(c, k, NULL);
        call_free(k);
    }
}

/* ---- libcurl on first need ----------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not safe to run twice or from two threads at once; the media workers
 * and the event loop may both send first. */
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Initialises curl (once per process) and makes this client's multi handle the first time a
 * send needs them.  DB_OK; DB_EUNSUPPORTED with *err (static) set when curl_global_init
 * failed, once and for every later call; DB_ENOMEM. */
static int curl_ready(struct db_http_client *c, const char **err)
{
    if (c->multi) return DB_OK;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        *err = "libcurl cannot be initialised (curl_global_init failed)";
        return DB_EUNSUPPORTED;
    }
    CURLM *m = curl_multi_init();
    if (!m) return DB_ENOMEM;
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->opts.max_connections);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->opts.max_per_host);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)c->opts.max_connections);
    c->multi = m;
    return DB_OK;
}

/* The host part of url as libcurl reads it (curl_free), or NULL. */
static char *url_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        host = NULL;
    if (u) curl_url_cleanup(u);
    return host;
}

int db_http_same_host(const char *a, const char *b)
{
    if (!a || !b) return 0;
    char *ha = url_host(a), *hb = url_host(b);
    int same = ha && hb && strcasecmp(ha, hb) == 0;
    curl_free(ha);
    curl_free(hb);
    return same;
}

/* ---- public API -------------------------------------------------------------------------- */

struct db_http_client *db_http_client_new(struct event_base *base,
                                          const struct db_http_client_opts *opts)
{
    struct db_http_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base = base;
    if (opts) c->opts = *opts;
    /* The signing strings are the client's own copies (freed with it). */
    c->opts.aws_sigv4 = c->opts.userpwd = c->opts.test_allow = NULL;
    if (opts && opts->test_allow) {
        if (db_http_allow_parse(opts->test_allow, &c->allow) != 0) {
            free(c);
            return NULL;
        }
        c->has_allow = 1;
    }
    if (opts && opts->aws_sigv4 && opts->userpwd &&
        (!(c->sigv4 = strdup(opts->aws_sigv4)) || !(c->userpwd = strdup(opts->userpwd)))) {
        free(c->sigv4);
        free(c);
        return NULL;
    }
    if (c->opts.timeout_ms <= 0) c->opts.timeout_ms = 30000;
    if (c->opts.connect_timeout_ms <= 0) c->opts.connect_timeout_ms = 5000;
    if (c->opts.max_response_bytes == 0) c->opts.max_response_bytes = 4u << 20;
    if (c->opts.max_connections <= 0) c->opts.max_connections = 64;
    if (c->opts.max_per_host <= 0) c->opts.max_per_host = 16;

    /* No libcurl here: the multi is made by the first send (curl_ready). */
    c->timer = evtimer_new(base, timer_event_cb, c);
    c->kick = event_new(base, -1, 0, kick_event_cb, c);
    if (!c->timer || !c->kick) goto fail;
    return c;

fail:
    if (c->kick) event_free(c->kick);
    if (c->timer) event_free(c->timer);
    free(c);
    return NULL;
}

void db_http_call_cancel(struct db_http_call *k)
{
    if (!k || k->state == CALL_ZOMBIE) return;
    struct db_http_client *c = k->c;
    switch (k->state) {
    case CALL_ACTIVE:
        if (c->in_curl) {
            /* curl forbids removing a handle from inside its callbacks: report now, keep the
             * handle parked until socket_action has returned. */
            k->state = CALL_ZOMBIE;
            c->need_fixup = 1;
            kick_later(c);
            finish(c, k, "cancelled");
            return;
        }
        curl_multi_remove_handle(c->multi, k->easy);
        break;
    case CALL_FINISHED:
        q_remove(c, k);
        break;
    case CALL_PENDING_ADD:
    case CALL_ZOMBIE:
        break;
    }
    call_unlink(k);
    finish(c, k, "cancelled");
    call_free(k);
    /* The callback may have freed the client; that was deferred to here. */
    if (c->depth == 0 && c->freeing) db_http_client_free(c);
}

void db_http_client_free(struct db_http_client *c)
{
    if (!c) return;
    c->freeing = 1;
    /* Every call still owed a done callback gets "cancelled"; those callbacks cannot start
     * new calls because send refuses while freeing. */
    c->depth++;
    for (struct db_http_call *k = c->calls, *next; k; k = next) {
        next = k->next;
        if (k->state != CALL_ZOMBIE) {
            db_http_call_cancel(k);
            next = c->calls; /* the callback may have cancelled others: restart */
        }
    }
    c->depth--;
    if (c->depth > 0) return; /* the outermost dispatch frees when it unwinds */
    if (c->in_curl) return;
    /* Only zombies are left, and a zombie is an easy handle in the multi. */
    for (struct db_http_call *k = c->calls, *next; k; k = next) {
        next = k->next;
        curl_multi_remove_handle(c->multi, k->easy);
        call_free(k);
    }
    c->calls = NULL;
    if (c->multi) curl_multi_cleanup(c->multi);
    /* curl_multi_cleanup closes cached connections without telling sock_cb. */
    for (struct sock *s = c->socks, *next; s; s = next) {
        next = s->next;
        event_free(s->ev);
        free(s);
    }
    event_free(c->timer);
    event_free(c->kick);
    if (c->checked_url) db_wipe_str(c->checked_url);
    free(c->checked_url);
    /* No curl_global_cleanup: curl stays initialised for the process (curl_init_once). */
    free(c->sigv4);
    /* the secret does not linger in freed memory */
    if (c->userpwd) db_wipe_str(c->userpwd);
    free(c->userpwd);
    free(c);
}

static int method_setup(CURL *easy, const char *method,
                        const struct db_http_call *k)
{
    if (!method || strcasecmp(method, "GET") == 0) {
        if (k->body_len) return DB_EINVAL;
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        return DB_OK;
    }
    int is_post = strcasecmp(method, "POST") == 0;
    const char *custom = strcasecmp(method, "PUT") == 0      ? "PUT"
                         : strcasecmp(method, "PATCH") == 0  ? "PATCH"
                         : strcasecmp(method, "DELETE") == 0 ? "DELETE"
                                                             : NULL;
    if (!is_post && !custom) return DB_EINVAL;
    if (!is_post && strcasecmp(method, "DELETE") == 0 && !k->body_len) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
        return DB_OK;
    }
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, k->body ? k->body : "");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->body_len);
    if (!is_post) curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, custom);
    return DB_OK;
}

/* Checks the URL parses and uses an allowed scheme; the guarded client takes https only,
 * except for a URL naming its test_allow address and port (*exempt then 1). */
static int url_check(const struct db_http_client *c, const char *url, int *exempt)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = DB_EINVAL;
    *exempt = 0;
    if (!u) return DB_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) goto out;
    /* The host and port as curl will connect to them, so the exception is judged on what
     * is dialled rather than on the text. */
    if (c->has_allow && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        *exempt = db_http_allow_names(&c->allow, host, strtol(port, NULL, 10));
    if (strcasecmp(scheme, "https") == 0 ||
        ((!c->opts.block_private || *exempt) && strcasecmp(scheme, "http") == 0))
        rc = DB_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static int header_line(struct curl_slist **list, const char *name,
                       const char *value)
{
    /* "Name;" is curl's way to send a header with an empty value. */
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line) return DB_ENOMEM;
    if (*value) snprintf(line, n, "%s: %s", name, value);
    else snprintf(line, n, "%s;", name);
    struct curl_slist *l = curl_slist_append(*list, line);
    free(line);
    if (!l) return DB_ENOMEM;
    *list = l;
    return DB_OK;
}

static void call_link(struct db_http_client *c, struct db_http_call *k)
{
    k->next = c->calls;
    if (c->calls) c->calls->prev = k;
    c->calls = k;
    c->inflight++;
}

/* curl cannot be initialised: the call is accepted and fails like any transport failure, from
 * the kick event, so callers take their usual retry path and the daemon keeps running.  The
 * URL cannot be checked without curl, so a bad one is reported this way too.  err is static. */
static int send_without_curl(struct db_http_client *c, const char *err, db_http_done_fn done,
                             void *arg, struct db_http_call **call)
{
    struct db_http_call *k = calloc(1, sizeof *k);
    if (!k) return DB_ENOMEM;
    k->c = c;
    k->done = done;
    k->arg = arg;
    k->fail_reason = err;
    k->state = CALL_FINISHED;
    call_link(c, k);
    q_push(c, k);
    kick_later(c);
    if (call) *call = k;
    return DB_OK;
}

int db_http_client_send(struct db_http_client *c, const struct db_http_req *req,
                        long timeout_ms, db_http_done_fn done, db_http_data_fn data_cb,
                        void *arg, struct db_http_call **call)
{
    if (call) *call = NULL;
    if (!c || !req || !req->url || !done || c->freeing) return DB_EINVAL;
    if (req->body_len && !req->body) return DB_EINVAL;
    const char *why = NULL;
    int rc = curl_ready(c, &why);
    if (rc == DB_EUNSUPPORTED) return send_without_curl(c, why, done, arg, call);
    if (rc != DB_OK) return rc;
    int exempt = 0;
    if (c->checked_url && strcmp(c->checked_url, req->url) == 0) {
        exempt = c->checked_exempt;
    } else {
        rc = url_check(c, req->url, &exempt);
        if (rc != DB_OK) return rc;
        /* Only a URL that passed is remembered; a failed strdup just checks again next time.
         * A URL may carry a token (Telegram's bot URLs): wiped before it is freed. */
        if (c->checked_url) db_wipe_str(c->checked_url);
        free(c->checked_url);
        c->checked_url = strdup(req->url);
        c->checked_exempt = exempt;
    }

    struct db_http_call *k = calloc(1, sizeof *k);
    if (!k) return DB_ENOMEM;
    rc = DB_ENOMEM;
    k->c = c;
    k->test_exempt = exempt;
    k->done = done;
    k->data_cb = data_cb;
    k->arg = arg;
    k->url = strdup(req->url);
    if (!k->url) goto fail;
    if (req->body_len) {
        k->body = malloc(req->body_len);
        if (!k->body) goto fail;
        memcpy(k->body, req->body, req->body_len);
        k->body_len = req->body_len;
    }
    for (size_t i = 0; i < req->headers.n; i++)
        if (header_line(&k->req_headers, req->headers.v[i].name, req->headers.v[i].value) !=
            DB_OK)
            goto fail;
    /* Without this curl waits up to a second for "100 Continue" on larger bodies. */
    struct curl_slist *l = curl_slist_append(k->req_headers, "Expect:");
    if (!l) goto fail;
    k->req_headers = l;

    k->easy = curl_easy_init();
    if (!k->easy) goto fail;
    CURL *e = k->easy;
    rc = method_setup(e, req->method, k);
    if (rc != DB_OK) goto fail;
    const char *protocols = c->opts.block_private && !exempt ? "https" : "http,https";
    curl_easy_setopt(e, CURLOPT_URL, k->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* A proxy would make the guard check the proxy's address instead of the target's, and
     * environment proxies make tests depend on the machine: no proxy, ever. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->req_headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "deskbridge/" DB_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : c->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    if (!data_cb)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opts.max_response_bytes);
    if (c->sigv4) {
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, c->sigv4);
        curl_easy_setopt(e, CURLOPT_USERPWD, c->userpwd);
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, k);
    curl_easy_setopt(e, CURLOPT_PRIVATE, k);

    call_link(c, k);
    if (c->in_curl) {
        k->state = CALL_PENDING_ADD;
        c->need_fixup = 1;
        kick_later(c);
    } else {
        /* A synchronous failure here is queued and reported from the kick event, so done
         * never runs before we return. */
        add_to_multi(c, k);
    }
    if (call) *call = k;
    return DB_OK;

fail:
    call_free(k);
    return rc;
}

size_t db_http_client_inflight(const struct db_http_client *c)
{
    return c ? c->inflight : 0;
}
