/* hookout.c - helpdesk webhooks: P:events and P:status entries POSTed, signed, to each
 * configured endpoint.
 *
 * Each endpoint is its own consumer group on both streams, so one slow or broken helpdesk
 * never holds back another, and the PEL is the retry queue: an entry is acknowledged only
 * after a 2xx (or once it is dead-lettered), so a crash between the POST and the XACK means
 * the entry is delivered again (at least once; X-Deskbridge-Delivery lets the receiver
 * dedupe).  Entries of one conversation go through a FIFO with one delivery in flight;
 * different conversations run in parallel up to `concurrency` requests.
 *
 * Several processes share an endpoint's group, so one conversation's entries can be spread
 * over them: the order across processes is src/stream/ordering.c's (an entry's first attempt
 * waits while an earlier entry of its conversation is pending under another consumer), and
 * reads, claims, refreshes and dead letters are src/stream/consumer.c's. */
#include "hookout/hookout.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "deskbridge/connector.h"
#include "conf/config.h"
#include "services/services.h"
#include "net/httpd.h"
#include "net/http_client.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "stream/consumer.h"
#include "stream/ordering.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "util/crypto.h"
#include "util/parse.h"
#include "util/id.h"
#include "util/json.h"

#define READ_COUNT 64
#define MAX_HELD 256           /* entries one endpoint holds (read, not yet acknowledged) */
#define MAX_DELIVERIES 10      /* deliveries without an outcome before a dead letter */
#define MIN_SECRET 16
#define SECTION "helpdesk_webhook"

/* ---- configuration (hookout_conf.c) ---- */

static const char *const *const kind_names = db_hookout_kinds;
#define KIND_STATUS DB_HOOKOUT_KIND_STATUS

/* ---- running state ---- */

enum { ST_EVENTS = 0, ST_STATUS = 1 };
static const char *const stream_label[] = {"events", "status"};
static const char *const stream_field[] = {"event", "status"};

enum job_state { J_QUEUED, J_READY, J_SENDING, J_WAITING, J_FINISHING };

struct endpoint;

struct job {
    struct endpoint *ep;
    struct db_order_slot slot; /* its place in its conversation's order */
    struct job *next;          /* in the ready queue */
    struct job *all_prev, *all_next;
    enum job_state state;
    int stream;                /* ST_EVENTS or ST_STATUS */
    char entry[64];
    char *body;                /* owned: the exact bytes POSTed (and signed) */
    size_t body_len;
    int attempt;
    struct event *timer;       /* backoff before the next attempt */
    struct event *dead_timer;  /* writing a dead letter again after Redis did not take it */
    struct db_http_call *call; /* while J_SENDING */
    struct op *op;             /* Redis command in flight for this job */
    char reason[160];          /* why it is dead-lettered */
};

/* A Redis command on the shared connection outlives neither side: freeing the hookout
 * detaches it (ep and job NULL) and the callback, which always runs, just frees it. */
struct op {
    struct db_hookout *h;
    struct endpoint *ep;
    struct job *job;
    int stream;
    struct op *prev, *next;
};

struct endpoint {
    struct db_hookout *h;
    char *name, *url, *secret;
    struct db_hookout_conf o;  /* numbers only: its pointers are not kept */
    char group[160];
    struct db_http_client *http;
    struct db_consumer *consumer;
    struct db_ordering *order;
    struct job *all;
    struct job *ready_head, *ready_tail;
    size_t held;               /* jobs alive */
    size_t sending;            /* HTTP calls in flight */
    size_t finishing;          /* XACK or dead letter in flight */
    struct endpoint *next;
};

struct db_hookout {
    struct db_services *svc;
    struct endpoint *eps;
    struct op *ops;
    int stopped, freeing;
    char streams[2][160];
    char dead_key[160];
};

static void pump(struct endpoint *ep);
static void send_job(struct job *j);
static void dead_letter(struct job *j);

static struct db_log_ctx *ctx_of(const struct job *j, struct db_log_ctx *ctx)
{
    *ctx = (struct db_log_ctx){"hookout", NULL, NULL, j ? j->entry : NULL};
    return ctx;
}

static struct op *op_new(struct endpoint *ep, struct job *j, int stream)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->h = ep->h;
    o->ep = ep;
    o->job = j;
    o->stream = stream;
    o->next = ep->h->ops;
    if (o->next) o->next->prev = o;
    ep->h->ops = o;
    if (j) j->op = o;
    return o;
}

/* Unlinks o (the callback ran); the caller frees it. */
static void op_end(struct op *o)
{
    if (o->job) o->job->op = NULL;
    if (!o->h) return; /* detached by db_hookout_free */
    if (o->prev) o->prev->next = o->next;
    else o->h->ops = o->next;
    if (o->next) o->next->prev = o->prev;
}

/* Ends and frees o; returns its job (NULL when the job went away meanwhile). */
static struct job *op_take(struct op *o)
{
    struct job *j = o->job;
    op_end(o);
    free(o);
    return j;
}

static void job_free(struct job *j)
{
    struct endpoint *ep = j->ep;
    if (j->all_prev) j->all_prev->all_next = j->all_next;
    else ep->all = j->all_next;
    if (j->all_next) j->all_next->all_prev = j->all_prev;
    db_order_done(&j->slot);
    db_consumer_release(ep->consumer, j->stream, j->entry);
    if (j->op) j->op->job = NULL;
    if (j->timer) event_free(j->timer);
    if (j->dead_timer) event_free(j->dead_timer);
    free(j->body);
    free(j);
    ep->held--;
}

static void make_ready(struct job *j)
{
    struct endpoint *ep = j->ep;
    j->state = J_READY;
    j->next = NULL;
    if (ep->ready_tail) ep->ready_tail->next = j;
    else ep->ready_head = j;
    ep->ready_tail = j;
}

/* The job's entry is acknowledged (or given up on): the conversation's next entry may go
 * (job_free tells the ordering, whose ready_cb queues it). */
static void job_done(struct job *j)
{
    struct endpoint *ep = j->ep;
    job_free(j);
    pump(ep);
}

/* The ordering says j's turn has come: no earlier entry of its conversation is in flight
 * here or pending in another process. */
static void ready_cb(struct db_order_slot *slot, void *arg)
{
    struct job *j = (struct job *)((char *)slot - offsetof(struct job, slot));
    (void)arg;
    make_ready(j);
    pump(j->ep);
}

/* ---- finishing ---- */

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = op_take(arg);
    if (!j) return;
    j->ep->finishing--;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        /* Delivered but still pending: it is claimed after claim_idle_ms and delivered again,
         * which at-least-once allows and the delivery id lets the receiver notice. */
        struct db_log_ctx ctx;
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "endpoint=%s XACK failed: %s", j->ep->name,
               status != DB_OK ? (errstr ? errstr : "unavailable") : reply->str);
    }
    job_done(j);
}

static void ack(struct job *j)
{
    struct endpoint *ep = j->ep;
    j->state = J_FINISHING;
    ep->finishing++;
    struct op *o = op_new(ep, j, j->stream);
    if (!o) {
        /* Left pending: claimed and delivered again later. */
        ep->finishing--;
        job_done(j);
        return;
    }
    db_redis_cmd(ep->h->svc->redis, acked_cb, o, "XACK %s %s %s", ep->h->streams[j->stream],
                 ep->group, j->entry);
}

static void dead_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct job *j = arg;
    j->ep->finishing--;
    dead_letter(j);
}

static void dead_cb(int status, int written, void *arg)
{
    struct job *j = arg;
    struct endpoint *ep = j->ep;
    (void)written; /* 0: no longer pending, someone else finished it */
    if (status != DB_OK) {
        struct db_log_ctx ctx;
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "endpoint=%s dead letter not written; retrying",
               ep->name);
        /* Keep the conversation blocked: the next entry must not overtake this one. */
        struct timeval tv = {1, 0};
        if (!ep->h->stopped && evtimer_add(j->dead_timer, &tv) == 0) return;
        ep->finishing--;
        job_done(j); /* stays pending; claimed later */
        return;
    }
    ep->finishing--;
    job_done(j);
}

/* Moves the entry to P:dead with j->reason and acknowledges it. */
static void dead_letter(struct job *j)
{
    struct endpoint *ep = j->ep;
    struct db_hookout *h = ep->h;
    struct db_log_ctx ctx;
    if (j->state != J_FINISHING)
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "endpoint=%s stream=%s dead-lettered: %s", ep->name,
               stream_label[j->stream], j->reason);
    j->state = J_FINISHING;
    ep->finishing++;
    if (!j->dead_timer) j->dead_timer = evtimer_new(h->svc->base, dead_timer_cb, j);
    if (!j->dead_timer) {
        ep->finishing--;
        job_done(j);
        return;
    }
    const char *extra[] = {"endpoint", ep->name, "payload", j->body ? j->body : "", NULL};
    db_consumer_dead_letter(ep->consumer, j->stream, j->entry, j->reason, extra, dead_cb, j);
}

/* ---- delivering ---- */

static int64_t backoff_ms(const struct endpoint *ep, int attempt)
{
    int64_t d = ep->o.retry_base_ms;
    for (int i = 1; i < attempt && d < ep->o.retry_max_ms; i++) d *= 2;
    /* +-20% so that receivers coming back from an outage do not get every retry at once. */
    unsigned char r;
    if (db_random_bytes(&r, 1) == 0) d = d * (80 + r % 41) / 100;
    if (d > ep->o.retry_max_ms) d = ep->o.retry_max_ms;
    return d < 1 ? 1 : d;
}

static void retry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct job *j = arg;
    /* After stop_reading the entry stays pending for whoever runs next. */
    if (j->ep->h->stopped) return;
    make_ready(j);
    pump(j->ep);
}

static void retry_later(struct job *j, int64_t delay_ms)
{
    struct endpoint *ep = j->ep;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    if (!j->timer) j->timer = evtimer_new(ep->h->svc->base, retry_timer_cb, j);
    if (!j->timer || evtimer_add(j->timer, &tv) != 0) {
        snprintf(j->reason, sizeof j->reason, "internal: could not schedule a retry");
        dead_letter(j);
        return;
    }
    j->state = J_WAITING;
}

/* Retry-After in seconds (the only form receivers commonly send), or 0. */
static int64_t retry_after_ms(const struct db_http_resp *resp)
{
    const char *v = resp->headers ? db_headers_get(resp->headers, "Retry-After") : NULL;
    long s;
    return db_parse_long(v, 0, 86400, &s) == 0 ? (int64_t)s * 1000 : 0;
}

static void sent_cb(const struct db_http_resp *resp, void *arg)
{
    struct job *j = arg;
    struct endpoint *ep = j->ep;
    j->call = NULL;
    if (ep->h->freeing) return;
    ep->sending--;
    struct db_log_ctx ctx;
    if (resp->status >= 200 && resp->status < 300) {
        db_log(DB_LOG_INFO, ctx_of(j, &ctx), "endpoint=%s stream=%s delivered status=%ld attempts=%d",
               ep->name, stream_label[j->stream], resp->status, j->attempt);
        ack(j);
        pump(ep);
        return;
    }
    char last[128];
    if (resp->transport_error)
        snprintf(last, sizeof last, "network: %.100s", resp->transport_error);
    else
        snprintf(last, sizeof last, "HTTP %ld", resp->status);
    if (resp->transport_error && strstr(resp->transport_error, "address not allowed")) {
        /* The guard's answer will not change by retrying: it is a configuration matter. */
        snprintf(j->reason, sizeof j->reason,
                 "refused: %.90s; set allow_private = true for an internal endpoint",
                 resp->transport_error);
        dead_letter(j);
    } else if (j->attempt >= ep->o.max_attempts) {
        snprintf(j->reason, sizeof j->reason, "gave up after %d attempts: %s", j->attempt, last);
        dead_letter(j);
    } else {
        int64_t delay = backoff_ms(ep, j->attempt), ra = retry_after_ms(resp);
        if (ra > delay) delay = ra < ep->o.retry_max_ms ? ra : ep->o.retry_max_ms;
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "endpoint=%s attempt %d failed (%s); retry in %lld ms",
               ep->name, j->attempt, last, (long long)delay);
        retry_later(j, delay);
    }
    pump(ep);
}

/* The answer's body means nothing to us: it is read and dropped, so a receiver that answers
 * 200 with a large page is not mistaken for a failure by the client's body cap. */
static int discard_cb(long status, const struct db_headers *headers, const char *data,
                      size_t len, void *arg)
{
    (void)status, (void)headers, (void)data, (void)len, (void)arg;
    return 0;
}

/* X-Deskbridge-Signature over "<timestamp>.<body>": binding the time into the MAC lets the
 * receiver refuse replays of an old delivery. */
static void sign(const char *secret, const char *ts, const char *body, size_t len,
                 char out[7 + 65])
{
    size_t tl = strlen(ts);
    unsigned char mac[32];
    char *buf = malloc(tl + 1 + len);
    if (!buf) {
        out[0] = '\0';
        return;
    }
    memcpy(buf, ts, tl);
    buf[tl] = '.';
    memcpy(buf + tl + 1, body, len);
    db_hmac_sha256(secret, strlen(secret), buf, tl + 1 + len, mac);
    free(buf);
    memcpy(out, "sha256=", 7);
    db_hex_encode(mac, sizeof mac, out + 7);
}

static void send_job(struct job *j)
{
    struct endpoint *ep = j->ep;
    struct db_log_ctx ctx;
    char ts[24], sig[7 + 65];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    sign(ep->secret, ts, j->body, j->body_len, sig);
    struct db_http_req req = {0};
    int rc = sig[0] ? db_http_req_post_json(&req, ep->url, j->body) : DB_ENOMEM;
    if (rc == DB_OK &&
        ((rc = db_headers_add(&req.headers, "X-Deskbridge-Timestamp", ts)) ||
         (rc = db_headers_add(&req.headers, "X-Deskbridge-Signature", sig)) ||
         (rc = db_headers_add(&req.headers, "X-Deskbridge-Delivery", j->entry))))
        db_http_req_clear(&req);
    j->attempt++;
    if (rc == DB_OK) {
        j->state = J_SENDING;
        ep->sending++;
        rc = db_http_client_send(ep->http, &req, ep->o.timeout_ms, sent_cb, discard_cb, j,
                                 &j->call);
        if (rc != DB_OK) ep->sending--;
    }
    db_http_req_clear(&req);
    if (rc == DB_OK) return;
    if (rc == DB_EINVAL) {
        snprintf(j->reason, sizeof j->reason, "refused: the client does not accept the url "
                 "(only https unless allow_private = true)");
        dead_letter(j);
        return;
    }
    db_log(DB_LOG_WARN, ctx_of(j, &ctx), "endpoint=%s could not start a delivery; retrying",
           ep->name);
    retry_later(j, 1000);
}

/* Starts ready deliveries up to the endpoint's concurrency.  Entries become ready only once
 * the ordering let them (see ordering.h); waiting for that holds no slot, so entries of other
 * conversations (and the earlier entries it waits for, in other processes) keep moving. */
static void pump(struct endpoint *ep)
{
    while (!ep->h->stopped && ep->ready_head && ep->sending < (size_t)ep->o.concurrency) {
        struct job *j = ep->ready_head;
        ep->ready_head = j->next;
        if (!ep->ready_head) ep->ready_tail = NULL;
        j->next = NULL;
        /* An earlier entry of its conversation taken over from a dead process meanwhile goes
         * first; j is ready again after it. */
        if (db_order_yield(&j->slot)) {
            j->state = J_QUEUED;
            continue;
        }
        send_job(j);
    }
}

/* ---- reading ---- */

/* 1 when the endpoint wants an entry of this kind. */
static int wanted(const struct endpoint *ep, int stream, const char *kind)
{
    if (ep->o.all_kinds) return 1;
    if (stream == ST_STATUS) return (ep->o.kinds & KIND_STATUS) != 0;
    for (size_t i = 0; kind && kind_names[i]; i++)
        if (strcmp(kind_names[i], kind) == 0) return (ep->o.kinds & (1u << i)) != 0;
    return 0;
}

/* Takes one entry (id + field/value pairs) of stream. */
/* Takes one entry (id + field/value pairs) of stream; 1 when a job holds it. */
static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct endpoint *ep = arg;
    (void)claimed;
    if (ep->h->stopped) return 0; /* shutting down: it stays pending */
    if (entry->element[0]->len >= 64) return 0;
    const redisReply *fields = entry->element[1];
    struct job *j = calloc(1, sizeof *j);
    if (!j) return 0; /* stays pending; claimed later */
    j->ep = ep;
    j->stream = stream;
    j->all_next = ep->all;
    if (ep->all) ep->all->all_prev = j;
    ep->all = j;
    ep->held++;
    snprintf(j->entry, sizeof j->entry, "%s", entry->element[0]->str);

    const redisReply *raw = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, stream_field[stream]) == 0)
            raw = fields->element[i + 1];
    json_t *obj = NULL;
    struct db_err e = {0};
    if (!raw) {
        snprintf(j->reason, sizeof j->reason, "entry has no %s field", stream_field[stream]);
    } else if (db_json_parse_object(raw->str, raw->len, &obj, &e) != DB_OK) {
        snprintf(j->reason, sizeof j->reason, "%s field: %.120s", stream_field[stream], e.msg);
    }
    if (!obj) {
        if (raw) j->body = strndup(raw->str, raw->len);
        dead_letter(j);
        return 1;
    }
    if (!wanted(ep, stream, db_json_str(obj, "kind"))) {
        json_decref(obj);
        ack(j);
        return 1;
    }
    /* The stored JSON text goes out byte for byte (no re-encoding of numbers or escapes);
     * it was just checked to be one object, and entry ids are digits and '-'. */
    static const char head[] = "{\"stream\":\"%s\",\"entry_id\":\"%s\",\"data\":";
    size_t cap = sizeof head + 16 + strlen(j->entry) + raw->len + 2;
    j->body = malloc(cap);
    if (!j->body) {
        json_decref(obj);
        job_free(j); /* out of memory: left pending for a later claim */
        return 1;
    }
    int n = snprintf(j->body, cap, head, stream_label[stream], j->entry);
    memcpy(j->body + n, raw->str, raw->len);
    j->body[n + raw->len] = '}';
    j->body[n + raw->len + 1] = '\0';
    j->body_len = (size_t)n + raw->len + 1;
    /* Waits for the earlier entries of its conversation (both streams share one queue here;
     * across processes each stream is checked on its own); ready_cb queues it for delivery. */
    j->state = J_QUEUED;
    int rc = db_order_add(ep->order, &j->slot, stream, j->entry, db_json_str(obj, "conversation"),
                          db_consumer_batch(ep->consumer));
    json_decref(obj);
    if (rc != DB_OK) job_free(j);
    return 1;
}

static void batch_cb(int whole, void *arg)
{
    (void)whole;
    pump(arg);
}

/* ---- life cycle ---- */

static void endpoint_free(struct endpoint *ep)
{
    if (!ep) return;
    db_http_client_free(ep->http); /* sent_cb sees h->freeing and leaves the jobs alone */
    db_consumer_free(ep->consumer);
    ep->consumer = NULL;
    db_ordering_free(ep->order);
    ep->order = NULL;
    while (ep->all) job_free(ep->all);
    free(ep->name);
    free(ep->url);
    db_wipe_str(ep->secret);
    free(ep->secret);
    free(ep);
}

static int endpoint_new(struct db_hookout *h, const struct db_conf_section *sec,
                        const struct db_hookout_conf *conf, struct endpoint **out,
                        struct db_err *e)
{
    struct db_hookout_conf o = *conf;
    int rc;
    const struct db_config *cfg = h->svc->cfg->cfg;
    struct endpoint *ep = calloc(1, sizeof *ep);
    if (!ep) return db_err_set(e, DB_ENOMEM, "out of memory");
    ep->h = h;
    ep->o = o;
    ep->o.url = ep->o.secret = ep->o.events = NULL;
    snprintf(ep->group, sizeof ep->group, DB_HOOKOUT_GROUP_PREFIX "%s", sec->account);
    ep->name = strdup(sec->account);
    ep->url = strdup(o.url);
    ep->secret = strdup(o.secret);
    struct db_http_client_opts ho = {.timeout_ms = o.timeout_ms,
                                     .connect_timeout_ms = o.timeout_ms < 5000 ? o.timeout_ms : 5000,
                                     .max_response_bytes = 64 * 1024,
                                     .max_connections = o.concurrency,
                                     .max_per_host = o.concurrency,
                                     .block_private = !o.allow_private};
    rc = DB_ENOMEM;
    if (!ep->name || !ep->url || !ep->secret) goto fail;
    ep->http = db_http_client_new(h->svc->base, &ho);
    if (!ep->http) goto fail;
    char what[200];
    snprintf(what, sizeof what, "endpoint=%s", ep->name);
    /* From the start of the streams ("0"): events written before the endpoint's first run
     * (by an ingest process that started earlier) must reach the helpdesk too. */
    struct db_consumer_opts co = {.redis = h->svc->redis,
                                  .metrics = h->svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-hookout",
                                  .who = "hookout",
                                  .what = what,
                                  .group = ep->group,
                                  .consumer = h->svc->consumer,
                                  .streams = {h->streams[0], h->streams[1]},
                                  .labels = {stream_label[0], stream_label[1]},
                                  .dead_key = h->dead_key,
                                  .start = "0",
                                  .count = READ_COUNT,
                                  .max_held = MAX_HELD,
                                  .claim_idle_ms = o.claim_idle_ms,
                                  .max_deliveries = MAX_DELIVERIES};
    struct db_ordering_opts oo = {.redis = h->svc->redis,
                                  .who = "hookout",
                                  .group = ep->group,
                                  .consumer = h->svc->consumer,
                                  .streams = {h->streams[0], h->streams[1]},
                                  .fields = {stream_field[0], stream_field[1]}};
    rc = db_consumer_new(h->svc->base, &co, take_entry, batch_cb, ep, &ep->consumer, e);
    if (rc == DB_OK) rc = db_ordering_new(h->svc->base, &oo, ready_cb, ep, &ep->order, e);
    if (rc != DB_OK) goto fail;
    *out = ep;
    return DB_OK;
fail:
    endpoint_free(ep);
    return rc == DB_ENOMEM ? db_err_set(e, DB_ENOMEM, "out of memory") : rc;
}

int db_hookout_start(struct db_services *svc, struct db_hookout **out, struct db_err *e)
{
    const struct db_config *cfg = svc->cfg->cfg;
    *out = NULL;
    if (!db_config_section(cfg, SECTION, NULL)) return DB_OK;
    struct db_hookout *h = calloc(1, sizeof *h);
    if (!h) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = DB_OK;
    h->svc = svc;
    db_key(h->streams[ST_EVENTS], sizeof h->streams[0], cfg->prefix, DB_KEY_EVENTS);
    db_key(h->streams[ST_STATUS], sizeof h->streams[1], cfg->prefix, DB_KEY_STATUS);
    db_key(h->dead_key, sizeof h->dead_key, cfg->prefix, DB_KEY_DEAD);
    for (size_t i = 0; i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, SECTION) != 0) continue;
        struct endpoint *ep = NULL;
        rc = endpoint_new(h, &cfg->sections[i], cfg->features[i].obj, &ep, e);
        if (rc != DB_OK) goto fail;
        ep->next = h->eps;
        h->eps = ep;
    }
    for (struct endpoint *ep = h->eps; ep; ep = ep->next) {
        db_consumer_start(ep->consumer);
        struct db_log_ctx ctx = {"hookout", NULL, NULL, NULL};
        db_log(DB_LOG_INFO, &ctx, "endpoint=%s group=%s delivering", ep->name, ep->group);
    }
    *out = h;
    return DB_OK;
fail:
    db_hookout_free(h);
    return rc;
}

void db_hookout_stop_reading(struct db_hookout *h)
{
    if (!h) return;
    h->stopped = 1;
    for (struct endpoint *ep = h->eps; ep; ep = ep->next) {
        db_consumer_stop(ep->consumer);
        db_ordering_stop(ep->order);
    }
}

unsigned long db_hookout_inflight(const struct db_hookout *h)
{
    /* Entries waiting for a retry or for their turn hold nothing open: they stay pending
     * and the next process claims them. */
    unsigned long n = 0;
    for (const struct endpoint *ep = h ? h->eps : NULL; ep; ep = ep->next)
        n += ep->sending + ep->finishing;
    return n;
}

void db_hookout_free(struct db_hookout *h)
{
    if (!h) return;
    h->stopped = 1;
    h->freeing = 1;
    while (h->eps) {
        struct endpoint *ep = h->eps;
        h->eps = ep->next;
        endpoint_free(ep);
    }
    /* Commands still on the shared connection call back later: detach them. */
    for (struct op *o = h->ops, *next; o; o = next) {
        next = o->next;
        o->h = NULL;
        o->ep = NULL;
        o->job = NULL;
    }
    free(h);
}
