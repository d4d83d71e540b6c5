/* redis.c - one asynchronous, self-reconnecting Redis connection (see redis.h).
 *
 * Lifetimes.  A struct conn wraps one hiredis async context (a data connection or a
 * short-lived sentinel query).  When we give up on a connection it is "orphaned": detached
 * from the db_redis (conn->r = NULL), put on r->dead, and only redisAsyncFree()d from the
 * reap event at the top of the loop, never from inside one of its own hiredis callbacks.
 * hiredis may also free the context itself (EOF, connect error); then conn->ac is cleared
 * in the connect/disconnect callback and the reaper only frees the wrapper.
 *
 * A struct cmd is owned jointly by the caller's pending list (until its callback has run,
 * `done`) and by hiredis (one reference per callback hiredis still owes, `refs`); it is
 * freed when both are gone, so a late reply after a timeout lands on a live struct that
 * is simply released.
 *
 * Re-entrancy.  Every entry from libevent, hiredis or a public function that may run a
 * user callback brackets itself with enter()/leave(); db_redis_free() inside a callback
 * only marks the object, and the outermost leave() frees it.
 *
 * Here: the connection's life (connect, handshake, Sentinel discovery of the master,
 * reconnects), the command queue and its timers.  URL parsing is redis_url.c, RESP
 * formatting resp.c, script objects redis_script.c, the blocking helper redis_sync.c. */
#include "redis/redis.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "log/log.h"
#include "redis/redis_internal.h"

#define QUEUE_MAX 4096 /* commands held while the first connection is being set up */

struct cmd {
    struct db_redis *r;
    db_redis_cb cb;
    void *arg;
    struct event *timer;
    struct cmd *prev, *next;
    int refs;      /* callbacks hiredis still owes us */
    int done;      /* the caller's callback has run */
    int sent;      /* handed to hiredis (else waiting in the handshake queue) */
    int eval_sent; /* NOSCRIPT fallback already tried */
    struct db_redis_script *script;
    size_t len;
    char buf[]; /* the RESP-formatted command */
};

enum hs_step { HS_AUTH, HS_SELECT, HS_SETNAME, HS_ROLE, HS_PING };

struct conn {
    struct db_redis *r;    /* NULL once orphaned */
    redisAsyncContext *ac; /* NULL once hiredis has freed it */
    int sentinel;          /* a SENTINEL get-master-addr-by-name query connection */
    int handshaking;       /* TCP up, AUTH/SELECT/... in flight */
    enum hs_step steps[5];
    int nsteps, nreplies;
    struct conn *next; /* in a dead list */
};

struct db_redis {
    struct event_base *base;
    struct db_redis_url url;
    int cmd_timeout_ms, connect_timeout_ms, reconnect_ms;
    char name[128];
    db_redis_state_cb state_cb;
    void *state_arg;

    struct conn *conn; /* current attempt or live connection */
    struct conn *dead; /* orphans waiting for reap_ev */
    struct event *conn_timer, *retry_timer, *reap_ev;
    struct event *flush_ev; /* writes queued commands at the end of the loop's pass */

    struct cmd *head, *tail; /* outstanding commands, oldest first */
    size_t npending, nqueued;

    int up;
    int fresh;   /* no attempt has failed yet: queue rather than fail fast */
    int closing; /* db_redis_free called */
    int depth, in_hiredis;
    int quiet;   /* failures already logged since the last time we were up */

    int sidx, stried; /* sentinel being asked, sentinels asked in this round */
    char master_host[256];
    int master_port;
};

static const struct db_log_ctx log_ctx = {.module = "redis"};

/* ------------------------------------------------------------------------------------ */
/* bookkeeping */

static void really_free(struct db_redis *r);
static void connect_start(struct db_redis *r);
static void conn_down(struct db_redis *r, struct conn *cn, int ac_gone, const char *why);

static void enter(struct db_redis *r, int from_hiredis)
{
    r->depth++;
    r->in_hiredis += from_hiredis;
}

/* After leave() the object may be gone: touch nothing of r afterwards. */
static void leave(struct db_redis *r, int from_hiredis)
{
    if (--r->depth == 0 && r->closing) {
        really_free(r);
        return;
    }
    r->in_hiredis -= from_hiredis;
}

static void ms_to_tv(int ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static void cmd_release(struct cmd *c)
{
    if (!c->done || c->refs > 0) return;
    if (c->timer) event_free(c->timer);
    db_redis_script_free(c->script); /* the command's reference */
    free(c);
}

static void cmd_unlink(struct db_redis *r, struct cmd *c)
{
    if (c->prev) c->prev->next = c->next;
    else r->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else r->tail = c->prev;
    c->prev = c->next = NULL;
    r->npending--;
    if (!c->sent) r->nqueued--;
}

/* Answers the caller exactly once.  The command leaves the pending list before the user
 * callback runs, so a db_redis_free() from inside it cannot answer it a second time. */
static void complete(struct cmd *c, int status, const redisReply *reply, const char *why)
{
    c->done = 1;
    cmd_unlink(c->r, c);
    evtimer_del(c->timer);
    if (c->cb) c->cb(status, reply, why, c->arg);
    cmd_release(c);
}

static void fail_all(struct db_redis *r, const char *why)
{
    /* New commands issued from these callbacks fail fast (we are not up), so the list only
     * shrinks. */
    while (r->head) complete(r->head, DB_EAGAIN, NULL, why);
}

static void dead_free(struct conn *list)
{
    while (list) {
        struct conn *next = list->next;
        if (list->ac) redisAsyncFree(list->ac);
        free(list);
        list = next;
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db_redis *r = arg;
    struct conn *list = r->dead;
    r->dead = NULL;
    dead_free(list); /* runs no user callback: every command of these was answered */
}

static void reap_detached_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dead_free(arg);
}

static void orphan(struct db_redis *r, struct conn *cn)
{
    cn->r = NULL;
    cn->next = r->dead;
    r->dead = cn;
    event_active(r->reap_ev, EV_TIMEOUT, 0);
}

static void really_free(struct db_redis *r)
{
    if (r->dead && r->in_hiredis > 0) {
        /* Still inside a hiredis callback of one of these contexts: free them from the
         * loop instead; they no longer refer to r. */
        static const struct timeval now = {0, 0};
        if (event_base_once(r->base, -1, EV_TIMEOUT, reap_detached_cb, r->dead, &now) != 0)
            db_log(DB_LOG_ERROR, &log_ctx, "cannot schedule socket cleanup; leaking it");
    } else {
        dead_free(r->dead);
    }
    r->dead = NULL;
    if (r->conn_timer) event_free(r->conn_timer);
    if (r->retry_timer) event_free(r->retry_timer);
    if (r->reap_ev) event_free(r->reap_ev);
    if (r->flush_ev) event_free(r->flush_ev);
    db_redis_url_clear(&r->url);
    free(r);
}

static const char *target(const struct db_redis *r, char *buf, size_t n)
{
    switch (r->url.kind) {
    case URL_TCP: snprintf(buf, n, "%s:%d", r->url.addr.host, r->url.addr.port); break;
    case URL_UNIX: snprintf(buf, n, "unix:%s", r->url.path); break;
    case URL_SENTINEL:
        snprintf(buf, n, "sentinel master %s (%s:%d)", r->url.master, r->master_host,
                 r->master_port);
        break;
    }
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* connection state machine */

static void connect_cb(const redisAsyncContext *cac, int status);
static void disconnect_cb(const redisAsyncContext *cac, int status);

/* Opens a context to host:port or path and makes it current; on failure the attempt is
 * counted as failed (conn_down). */
static void conn_open(struct db_redis *r, int sentinel, const char *host, int port,
                      const char *path)
{
    char why[160];
    struct conn *cn = calloc(1, sizeof *cn);
    if (!cn) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    cn->sentinel = sentinel;
    cn->r = r;
    redisAsyncContext *ac = path ? redisAsyncConnectUnix(path) : redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        snprintf(why, sizeof why, "connect: %s", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac); /* never attached: no callback can run */
        goto fail;
    }
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        snprintf(why, sizeof why, "cannot attach to the event loop");
        redisAsyncFree(ac);
        goto fail;
    }
    ac->data = cn;
    cn->ac = ac;
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    r->conn = cn;
    struct timeval tv;
    ms_to_tv(r->connect_timeout_ms, &tv);
    evtimer_add(r->conn_timer, &tv);
    return;
fail:
    if (!cn) {
        conn_down(r, NULL, 0, why);
        return;
    }
    /* Make it current for a moment so conn_down runs the normal failure path. */
    r->conn = cn;
    conn_down(r, cn, 1, why);
}

static void connect_sentinel(struct db_redis *r)
{
    const struct db_redis_hostport *hp = &r->url.sent[r->sidx];
    conn_open(r, 1, hp->host, hp->port, NULL);
}

static void connect_start(struct db_redis *r)
{
    if (r->url.kind == URL_SENTINEL) {
        r->stried = 0; /* start with the sentinel that answered last */
        connect_sentinel(r);
    } else if (r->url.kind == URL_UNIX) {
        conn_open(r, 0, NULL, 0, r->url.path);
    } else {
        conn_open(r, 0, r->url.addr.host, r->url.addr.port, NULL);
    }
}

static void conn_down(struct db_redis *r, struct conn *cn, int ac_gone, const char *why)
{
    if (cn && r->conn != cn) return;
    int was_up = r->up;
    r->conn = NULL;
    r->up = 0;
    evtimer_del(r->conn_timer);
    if (cn) {
        if (ac_gone) cn->ac = NULL;
        orphan(r, cn);
    }
    if (cn && cn->sentinel && !r->closing && ++r->stried < r->url.nsent) {
        db_log(DB_LOG_DEBUG, &log_ctx, "sentinel %s:%d: %s", r->url.sent[r->sidx].host,
               r->url.sent[r->sidx].port, why);
        r->sidx = (r->sidx + 1) % r->url.nsent;
        connect_sentinel(r);
        return;
    }
    if (!r->closing) {
        char t[512];
        if (was_up || !r->quiet)
            db_log(was_up ? DB_LOG_WARN : DB_LOG_ERROR, &log_ctx, "%s %s: %s",
                   was_up ? "lost" : "cannot connect to", target(r, t, sizeof t), why);
        else
            db_log(DB_LOG_DEBUG, &log_ctx, "reconnect to %s failed: %s", target(r, t, sizeof t),
                   why);
        r->quiet = 1;
    }
    r->fresh = 0;
    fail_all(r, why);
    if (was_up && r->state_cb && !r->closing) r->state_cb(0, r->state_arg);
    if (!r->closing && !r->conn && !evtimer_pending(r->retry_timer, NULL)) {
        struct timeval tv;
        ms_to_tv(r->reconnect_ms, &tv);
        evtimer_add(r->retry_timer, &tv);
    }
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

/* hiredis only asks for the socket to become writable; that is reported at the loop's next
 * pass, after every other ready event, which under load kept each command waiting a whole pass
 * (about a millisecond).  Commands queued during a pass are written at its end instead. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct db_redis *r = arg;
    /* only a connection that is up: one still connecting is left to hiredis */
    if (r->up && !r->closing && r->conn && r->conn->ac) redisAsyncHandleWrite(r->conn->ac);
}

static int cmd_send(struct db_redis *r, struct cmd *c)
{
    if (redisAsyncFormattedCommand(r->conn->ac, reply_cb, c, c->buf, c->len) != REDIS_OK)
        return -1;
    event_active(r->flush_ev, EV_TIMEOUT, 1); /* once per pass: an active event stays one */
    c->refs++;
    if (!c->sent) {
        c->sent = 1;
        r->nqueued--;
    }
    return 0;
}

static void conn_up(struct db_redis *r)
{
    char t[512];
    evtimer_del(r->conn_timer);
    r->conn->handshaking = 0;
    r->up = 1;
    r->fresh = 0;
    r->quiet = 0;
    db_log(DB_LOG_INFO, &log_ctx, "connected to %s", target(r, t, sizeof t));
    /* No user callback runs in this loop unless a send fails, and then we stop. */
    for (struct cmd *c = r->head; c; c = c->next) {
        if (!c->sent && cmd_send(r, c) != 0) {
            conn_down(r, r->conn, 0, "cannot send queued commands");
            return;
        }
    }
    if (r->state_cb && r->up) r->state_cb(1, r->state_arg);
}

static void handshake_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct conn *cn = privdata;
    struct db_redis *r = cn->r;
    if (!r) return; /* orphaned: nobody waits for this any more */
    enter(r, 1);
    redisReply *rep = reply;
    char why[192];
    if (!rep) {
        conn_down(r, cn, 1, "connection lost during handshake");
        goto out;
    }
    enum hs_step step = cn->steps[cn->nreplies++];
    static const char *const names[] = {"AUTH", "SELECT", "CLIENT SETNAME", "ROLE", "PING"};
    if (rep->type == REDIS_REPLY_ERROR) {
        /* Redis' error text names the problem (WRONGPASS, NOAUTH...) and holds no secret. */
        snprintf(why, sizeof why, "%s failed: %.120s", names[step], rep->str);
        conn_down(r, cn, 0, why);
        goto out;
    }
    if (step == HS_ROLE) {
        const char *role = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                                   rep->element[0]->type == REDIS_REPLY_STRING
                               ? rep->element[0]->str
                               : "?";
        if (strcmp(role, "master") != 0) {
            snprintf(why, sizeof why, "sentinel's answer is not a master (role %.20s)", role);
            conn_down(r, cn, 0, why);
            goto out;
        }
    }
    if (cn->nreplies == cn->nsteps) conn_up(r);
out:
    leave(r, 1);
}

static int handshake_send(struct db_redis *r, struct conn *cn)
{
    redisAsyncContext *ac = cn->ac;
    const struct db_redis_url *u = &r->url;
    int rc = REDIS_OK;
    if (u->has_pass) {
        cn->steps[cn->nsteps++] = HS_AUTH;
        if (u->user[0])
            rc |= redisAsyncCommand(ac, handshake_cb, cn, "AUTH %s %s", u->user, u->pass);
        else
            rc |= redisAsyncCommand(ac, handshake_cb, cn, "AUTH %s", u->pass);
    }
    if (u->db != 0) {
        cn->steps[cn->nsteps++] = HS_SELECT;
        rc |= redisAsyncCommand(ac, handshake_cb, cn, "SELECT %d", u->db);
    }
    if (r->name[0]) {
        cn->steps[cn->nsteps++] = HS_SETNAME;
        rc |= redisAsyncCommand(ac, handshake_cb, cn, "CLIENT SETNAME %s", r->name);
    }
    if (u->kind == URL_SENTINEL) {
        cn->steps[cn->nsteps++] = HS_ROLE;
        rc |= redisAsyncCommand(ac, handshake_cb, cn, "ROLE");
    }
    if (cn->nsteps == 0) {
        /* A socket that accepts is not yet a Redis that answers (a stopped server still
         * completes connects from its backlog): ask once. */
        cn->steps[cn->nsteps++] = HS_PING;
        rc |= redisAsyncCommand(ac, handshake_cb, cn, "PING");
    }
    return rc == REDIS_OK ? 0 : -1;
}

static void sentinel_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct conn *cn = privdata;
    struct db_redis *r = cn->r;
    if (!r) return;
    enter(r, 1);
    redisReply *rep = reply;
    long port;
    if (!rep) {
        conn_down(r, cn, 1, "connection lost");
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
               rep->element[0]->type != REDIS_REPLY_STRING ||
               rep->element[1]->type != REDIS_REPLY_STRING ||
               rep->element[0]->len >= sizeof r->master_host ||
               (port = db_redis_parse_num(rep->element[1]->str, rep->element[1]->len, 1, 65535)) < 0) {
        conn_down(r, cn, 0, "sentinel does not know the master");
    } else {
        memcpy(r->master_host, rep->element[0]->str, rep->element[0]->len + 1);
        r->master_port = (int)port;
        /* Done with this sentinel; it is not a failure, so no conn_down. */
        r->conn = NULL;
        evtimer_del(r->conn_timer);
        orphan(r, cn);
        conn_open(r, 0, r->master_host, r->master_port, NULL);
    }
    leave(r, 1);
}

static void connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct conn *cn = ac->data;
    if (status != REDIS_OK) cn->ac = NULL; /* hiredis frees it after this returns */
    struct db_redis *r = cn->r;
    if (!r) return;
    enter(r, 1);
    char why[160];
    if (status != REDIS_OK) {
        snprintf(why, sizeof why, "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
        conn_down(r, cn, 1, why);
    } else if (cn->sentinel) {
        if (redisAsyncCommand(ac, sentinel_cb, cn, "SENTINEL get-master-addr-by-name %s",
                              r->url.master) != REDIS_OK)
            conn_down(r, cn, 0, "cannot send to sentinel");
    } else {
        cn->handshaking = 1;
        if (handshake_send(r, cn) != 0) conn_down(r, cn, 0, "cannot send handshake");
    }
    leave(r, 1);
}

static void disconnect_cb(const redisAsyncContext *cac, int status)
{
    (void)status;
    struct conn *cn = cac->data;
    cn->ac = NULL; /* hiredis frees it after this returns */
    struct db_redis *r = cn->r;
    if (!r) return;
    enter(r, 1);
    char why[160];
    snprintf(why, sizeof why, "%s", cac->err ? cac->errstr : "connection closed");
    conn_down(r, cn, 1, why);
    leave(r, 1);
}

static int is_error(const redisReply *rep, const char *prefix)
{
    size_t n = strlen(prefix);
    return rep->type == REDIS_REPLY_ERROR && rep->len >= n && strncmp(rep->str, prefix, n) == 0;
}

/* EVALSHA <sha> ... rewritten as EVAL <body> ...: both start "*N\r\n", then the first two
 * arguments differ and the rest is byte-identical. */
static int eval_resend(struct cmd *c, redisAsyncContext *ac)
{
    const char *crlf = memchr(c->buf, '\n', c->len);
    if (!crlf) return -1;
    size_t head = (size_t)(crlf + 1 - c->buf);
    size_t skip = head + strlen("$7\r\nEVALSHA\r\n$40\r\n") + 40 + 2;
    if (skip > c->len) return -1;
    char lenbuf[32];
    int ln = snprintf(lenbuf, sizeof lenbuf, "$4\r\nEVAL\r\n$%zu\r\n", c->script->len);
    size_t total = head + (size_t)ln + c->script->len + 2 + (c->len - skip);
    char *buf = malloc(total);
    if (!buf) return -1;
    char *p = buf;
    memcpy(p, c->buf, head), p += head;
    memcpy(p, lenbuf, (size_t)ln), p += ln;
    memcpy(p, c->script->body, c->script->len), p += c->script->len;
    memcpy(p, "\r\n", 2), p += 2;
    memcpy(p, c->buf + skip, c->len - skip);
    int rc = redisAsyncFormattedCommand(ac, reply_cb, c, buf, total);
    free(buf);
    if (rc != REDIS_OK) return -1;
    c->refs++;
    return 0;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cmd *c = privdata;
    if (c->done) { /* answered already (timeout, disconnect): a late reply */
        c->refs--;
        cmd_release(c);
        return;
    }
    struct db_redis *r = c->r;
    struct conn *cn = ac->data;
    redisReply *rep = reply;
    /* hiredis' reference to c is dropped only at the end, so c survives complete(). */
    enter(r, 1);
    if (!rep) {
        /* hiredis is tearing the context down after an error; it frees it itself. */
        if (cn == r->conn) conn_down(r, cn, 1, "connection lost");
        if (!c->done) complete(c, DB_EAGAIN, NULL, "connection lost");
    } else if (c->script && !c->eval_sent && is_error(rep, "NOSCRIPT")) {
        c->eval_sent = 1;
        if (eval_resend(c, ac) != 0) complete(c, DB_EAGAIN, NULL, "cannot resend script");
    } else if (is_error(rep, "READONLY")) {
        /* We talk to a replica: a failover happened.  The caller sees the error; the next
         * connect asks the sentinels again. */
        complete(c, DB_OK, rep, NULL);
        if (cn == r->conn && !r->closing) conn_down(r, cn, 0, "server is a read-only replica");
    } else {
        complete(c, DB_OK, rep, NULL);
    }
    c->refs--;
    cmd_release(c);
    leave(r, 1);
}

static void cmd_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cmd *c = arg;
    struct db_redis *r = c->r;
    enter(r, 0);
    int was_sent = c->sent;
    complete(c, DB_EAGAIN, NULL, "timeout");
    /* The server holds an answer we will never wait for: only a new connection puts the
     * next replies back in step with our requests. */
    if (was_sent && r->conn && r->up && !r->closing)
        conn_down(r, r->conn, 0, "command timed out");
    leave(r, 0);
}

static void conn_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db_redis *r = arg;
    enter(r, 0);
    if (r->conn) conn_down(r, r->conn, 0, "connect timeout");
    leave(r, 0);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db_redis *r = arg;
    enter(r, 0);
    if (!r->conn && !r->closing) connect_start(r);
    leave(r, 0);
}

/* ------------------------------------------------------------------------------------ */
/* public API */

int db_redis_new(struct event_base *base, const struct db_redis_opts *opts,
                 struct db_redis **out, struct db_err *e)
{
    *out = NULL;
    struct db_redis *r = calloc(1, sizeof *r);
    if (!r) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = db_redis_url_parse(opts ? opts->url : NULL, &r->url, e);
    if (rc != DB_OK) goto fail;
    if (opts->name) {
        size_t n = strlen(opts->name);
        rc = db_err_set(e, DB_ECONFIG, "Redis client name must be 1-%zu visible characters",
                        sizeof r->name - 1);
        if (n == 0 || n >= sizeof r->name) goto fail;
        for (size_t i = 0; i < n; i++)
            if (!isgraph((unsigned char)opts->name[i])) goto fail;
        memcpy(r->name, opts->name, n + 1);
        if (e) *e = (struct db_err){0};
    }
    r->base = base;
    r->cmd_timeout_ms = opts->command_timeout_ms > 0 ? opts->command_timeout_ms
                                                     : DB_REDIS_COMMAND_TIMEOUT_MS;
    r->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 1000;
    r->reconnect_ms = opts->reconnect_ms > 0 ? opts->reconnect_ms : 250;
    r->fresh = 1;
    r->conn_timer = evtimer_new(base, conn_timeout_cb, r);
    r->retry_timer = evtimer_new(base, retry_cb, r);
    r->reap_ev = event_new(base, -1, 0, reap_cb, r);
    r->flush_ev = event_new(base, -1, 0, flush_cb, r);
    if (!r->conn_timer || !r->retry_timer || !r->reap_ev || !r->flush_ev) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    /* No user callback exists yet, but conn_down needs the re-entrancy counter. */
    enter(r, 0);
    connect_start(r);
    r->depth--;
    *out = r;
    return DB_OK;
fail:
    if (r->conn_timer) event_free(r->conn_timer);
    if (r->retry_timer) event_free(r->retry_timer);
    if (r->reap_ev) event_free(r->reap_ev);
    if (r->flush_ev) event_free(r->flush_ev);
    db_redis_url_clear(&r->url);
    free(r);
    return rc;
}

void db_redis_set_state_cb(struct db_redis *r, db_redis_state_cb cb, void *arg)
{
    r->state_cb = cb;
    r->state_arg = arg;
}

int db_redis_is_up(const struct db_redis *r) { return r && r->up; }

size_t db_redis_pending(const struct db_redis *r) { return r ? r->npending : 0; }

int db_redis_exec_ran(int status, const redisReply *reply, const char *errstr,
                      const struct db_log_ctx *ctx, const char *what)
{
    if (status != DB_OK || reply->type != REDIS_REPLY_ARRAY) {
        /* a nil answer is an abort (WATCH), the usual case: nothing to say about it */
        if (status != DB_OK || reply->type == REDIS_REPLY_ERROR)
            db_log(DB_LOG_DEBUG, ctx, "%s left to the script: %s", what,
                   status != DB_OK ? (errstr ? errstr : "unavailable") : reply->str);
        return 0;
    }
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_ERROR)
            db_log(DB_LOG_ERROR, ctx, "%s: command %zu of %zu failed: %s", what, i + 1,
                   reply->elements, reply->element[i]->str);
    return 1;
}

int db_redis_db(const struct db_redis *r) { return r ? r->url.db : 0; }

static void fail_now(db_redis_cb cb, void *arg, int status, const char *why)
{
    if (cb) cb(status, NULL, why, arg);
}

/* Takes a formatted command (copied) and sends, queues or fails it. */
static void submit(struct db_redis *r, db_redis_cb cb, void *arg, const char *buf, size_t len,
                   struct db_redis_script *script)
{
    enter(r, 0);
    struct conn *cn = r->conn;
    if (r->closing) {
        fail_now(cb, arg, DB_EAGAIN, "shutting down");
        goto out;
    }
    int queue = !r->up && cn && (r->fresh || cn->handshaking);
    if (!r->up && !queue) {
        fail_now(cb, arg, DB_EAGAIN, "not connected");
        goto out;
    }
    if (queue && r->nqueued >= QUEUE_MAX) {
        fail_now(cb, arg, DB_EAGAIN, "too many commands waiting for the connection");
        goto out;
    }
    struct cmd *c = calloc(1, sizeof *c + len);
    if (!c) {
        fail_now(cb, arg, DB_ENOMEM, "out of memory");
        goto out;
    }
    c->timer = evtimer_new(r->base, cmd_timeout_cb, c);
    if (!c->timer) {
        free(c);
        fail_now(cb, arg, DB_ENOMEM, "out of memory");
        goto out;
    }
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->len = len;
    memcpy(c->buf, buf, len);
    if (script) {
        script->refs++;
        c->script = script;
    }
    c->prev = r->tail;
    if (r->tail) r->tail->next = c;
    else r->head = c;
    r->tail = c;
    r->npending++;
    r->nqueued++;
    struct timeval tv;
    ms_to_tv(r->cmd_timeout_ms, &tv);
    evtimer_add(c->timer, &tv);
    if (r->up && cmd_send(r, c) != 0) complete(c, DB_EAGAIN, NULL, "send failed");
out:
    leave(r, 0);
}

void db_redis_cmd_argv(struct db_redis *r, db_redis_cb cb, void *arg, int argc,
                       const char **argv, const size_t *argvlen)
{
    size_t len;
    char *buf = db_resp_format_argv(argc, argv, argvlen, &len);
    if (!buf) {
        fail_now(cb, arg, DB_ENOMEM, "out of memory");
        return;
    }
    submit(r, cb, arg, buf, len, NULL);
    free(buf);
}

void db_redis_cmd(struct db_redis *r, db_redis_cb cb, void *arg, const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    if (len < 0) {
        fail_now(cb, arg, len == -2 ? DB_EINVAL : DB_ENOMEM,
                 len == -2 ? "bad command format" : "out of memory");
        return;
    }
    submit(r, cb, arg, buf, (size_t)len, NULL);
    redisFreeCommand(buf);
}

void db_redis_eval(struct db_redis *r, struct db_redis_script *s, db_redis_cb cb, void *arg,
                   int nkeys, const char **keys, int nargs, const char **args,
                   const size_t *arglens)
{
    int argc = 3 + nkeys + nargs;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *lens = malloc((size_t)argc * sizeof *lens);
    char nk[16];
    char *buf = NULL;
    size_t len = 0;
    if (!argv || !lens) goto fail;
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++) argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i];
        lens[3 + nkeys + i] = arglens ? arglens[i] : strlen(args[i]);
    }
    for (int i = 0; i < 3 + nkeys; i++) lens[i] = strlen(argv[i]);
    buf = db_resp_format_argv(argc, argv, lens, &len);
    if (!buf) goto fail;
    free(argv);
    free(lens);
    submit(r, cb, arg, buf, len, s);
    free(buf);
    return;
fail:
    free(argv);
    free(lens);
    fail_now(cb, arg, DB_ENOMEM, "out of memory");
}

void db_redis_free(struct db_redis *r)
{
    if (!r || r->closing) return;
    enter(r, 0);
    r->closing = 1;
    evtimer_del(r->retry_timer);
    evtimer_del(r->conn_timer);
    if (r->conn) {
        orphan(r, r->conn);
        r->conn = NULL;
    }
    r->up = 0;
    fail_all(r, "shutting down");
    leave(r, 0); /* frees r now, or when the outermost callback returns */
}
