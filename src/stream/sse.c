#include "stream/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "services/services.h"
#include "net/httpd.h"
#include "redis/redis.h"
#include "stream/wake.h"
#include "util/json.h"

#define HEARTBEAT_MS 15000
#define WOKEN_TICK_MS 1000 /* with a waker: how often a stream looks for the shutdown */
#define MAX_PENDING (1u << 20)

struct db_sse {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct event *timer;
    struct db_wake_watch *watch;
    struct db_sse_opts o;
    char key[256];
    char last[64];
    int busy;   /* a read is out */
    int again;  /* woken while busy: read once more after it */
    int gone;
    long idle_ms;
};

static void sse_end(struct db_sse *s)
{
    db_wake_unwatch(s->watch);
    if (s->timer) event_free(s->timer);
    if (s->o.on_end) s->o.on_end(s->o.arg);
    db_httpd_stream_end(s->req);
    free(s);
}

static void gone_cb(struct db_httpd_req *r, void *arg)
{
    struct db_sse *s = arg;
    (void)r;
    s->gone = 1;
    if (!s->busy) sse_end(s);
}

/* The next tick: a poll without a waker, else the heartbeat (or a retry after back-pressure). */
static void schedule(struct db_sse *s, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

static int tick_ms(const struct db_sse *s)
{
    return s->watch ? WOKEN_TICK_MS : DB_SSE_POLL_MS;
}

static int send_entry(struct db_sse *s, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) return 0;
    snprintf(s->last, sizeof s->last, "%s", e->element[0]->str);
    if (s->o.filter && !s->o.filter(e, s->o.arg)) return 0;
    const char *type = "", *conv = "", *data = "null";
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (!k || !v) continue;
        if (strcmp(k, "type") == 0) type = v;
        else if (strcmp(k, "conversation") == 0) conv = v;
        else if (strcmp(k, "data") == 0) data = v;
    }
    json_t *head = json_pack("{s:s, s:s}", "type", type, "conversation", conv);
    char *h = head ? db_json_dump(head) : NULL;
    json_decref(head);
    if (!h) return -1;
    /* The stored data is JSON already: spliced in rather than parsed and dumped again. */
    h[strlen(h) - 1] = '\0';
    char *msg = NULL;
    int n = asprintf(&msg, "id: %s\nevent: %s\ndata: %s,\"data\":%s}\n\n", e->element[0]->str,
                     type, h, data);
    free(h);
    if (n < 0) return -1;
    int rc = db_httpd_stream_chunk(s->req, msg, (size_t)n);
    free(msg);
    return rc;
}

static void read_now(struct db_sse *s);

static void read_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_sse *s = arg;
    (void)errstr;
    s->busy = 0;
    if (s->gone || s->svc->stopping) {
        sse_end(s);
        return;
    }
    int sent = 0, full = 0;
    if (status == DB_OK && reply && reply->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < reply->elements; i++, sent++)
            if (send_entry(s, reply->element[i]) < 0) break;
    if (status == DB_OK && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 100)
        full = 1; /* more may wait behind a page */
    if (sent) s->idle_ms = 0;
    if (full || s->again) {
        s->again = 0;
        read_now(s);
        return;
    }
    schedule(s, tick_ms(s));
}

static void read_now(struct db_sse *s)
{
    if (db_httpd_stream_pending(s->req) > MAX_PENDING) {
        s->again = 1;
        schedule(s, DB_SSE_POLL_MS); /* a slow client: wait until it has read what it got */
        return;
    }
    s->busy = 1;
    char from[72];
    snprintf(from, sizeof from, "(%s", s->last);
    db_redis_cmd(s->svc->redis, read_cb, s, "XRANGE %s %s + COUNT 100", s->key, from);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_sse *s = arg;
    (void)fd, (void)what;
    if (s->svc->stopping) {
        sse_end(s);
        return;
    }
    if (s->watch && !s->again) {
        /* The waker reads for us: only the heartbeat. */
        s->idle_ms += WOKEN_TICK_MS;
        if (s->idle_ms >= HEARTBEAT_MS) {
            s->idle_ms = 0;
            (void)db_httpd_stream_chunk(s->req, ":\n\n", 3);
        }
        schedule(s, tick_ms(s));
        return;
    }
    s->idle_ms += DB_SSE_POLL_MS;
    if (s->idle_ms >= HEARTBEAT_MS) {
        s->idle_ms = 0;
        (void)db_httpd_stream_chunk(s->req, ":\n\n", 3);
    }
    s->again = 0;
    read_now(s);
}

static void woken(const char *key, const redisReply *entries, void *arg)
{
    struct db_sse *s = arg;
    (void)key, (void)entries;
    if (s->gone) return;
    if (s->busy) {
        s->again = 1;
        return;
    }
    evtimer_del(s->timer);
    read_now(s);
}

struct db_sse *db_sse_start(struct db_services *svc, struct db_httpd_req *req,
                            const struct db_sse_opts *o, const char *const *extra_headers)
{
    struct db_sse *s = calloc(1, sizeof *s);
    if (!s || !(s->timer = evtimer_new(svc->base, tick_cb, s))) {
        free(s);
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    s->svc = svc;
    s->req = req;
    s->o = *o;
    snprintf(s->key, sizeof s->key, "%s", o->key);
    snprintf(s->last, sizeof s->last, "%s", o->from && *o->from ? o->from : "0-0");
    const char *hdr[12];
    size_t n = 0;
    int cache = 0; /* the owner's Cache-Control, when it gives one, instead of ours */
    for (size_t i = 0; extra_headers && extra_headers[i] && n < 10; i++) {
        cache |= strncasecmp(extra_headers[i], "Cache-Control:", 14) == 0;
        hdr[n++] = extra_headers[i];
    }
    if (!cache) hdr[n++] = "Cache-Control: no-cache";
    hdr[n] = NULL;
    db_httpd_stream_start(req, 200, "text/event-stream", hdr, gone_cb, s);
    /* Watched before the first read: an entry written between the two wakes us. */
    if (svc->wake) s->watch = db_wake_watch(svc->wake, s->key, s->last, woken, s);
    read_now(s);
    return s;
}

int db_sse_send(struct db_sse *s, const char *event, const char *data)
{
    if (s->gone || db_httpd_stream_pending(s->req) > MAX_PENDING) return -1;
    char *msg = NULL;
    int n = asprintf(&msg, "event: %s\ndata: %s\n\n", event, data);
    if (n < 0) return -1;
    int rc = db_httpd_stream_chunk(s->req, msg, (size_t)n);
    free(msg);
    return rc;
}
