/* mediastore.c - the media store's consumer (mediastore.h).
 *
 * A job per event with a file walks CHECK (the record: stored or lost before? attempts so
 * far) -> FETCH (media/media.h) -> PUT (media/blob.h) -> RECORD (media_record.lua) -> XACK.
 * A failure at FETCH or PUT waits (retry_base_ms doubling to retry_max_ms) and starts over at
 * CHECK while the entry stays held (the consumer keeps refreshing it, so no other process
 * takes it).  Every asynchronous step holds the job; freeing the store detaches jobs whose
 * answer is still due (m NULL) and their callback frees them. */
#include "mediastore/mediastore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/config.h"
#include "services/services.h"
#include "log/log.h"
#include "media/blob.h"
#include "media/media.h"
#include "metrics/metrics.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "stream/consumer.h"
#include "util/crypto.h"
#include "util/id.h"
#include "util/json.h"
#include "util/sniff.h"

#define MAX_HELD 256
#define READ_COUNT 32
#define SWEEP_BATCH 64

struct job {
    struct db_mediastore *m;   /* NULL once the store was freed under a pending answer */
    struct job *prev, *next;   /* every job */
    struct job *qnext;         /* waiting for a slot */
    char entry[64];
    char platform[32], account[96], media_id[160], event[40], conversation[400];
    char file_name[128];
    char rid[300];             /* <platform>:<account>:<media id> */
    char rec[400];             /* the record's key */
    int attempt;
    int active;                /* counted in m->active */
    int busy;                  /* an answer is due */
    struct event *timer;       /* the wait before the next attempt */
    char reason[200];          /* why the last attempt failed */
    char key[300], sha[65];
    const char *ctype;         /* sniffed, static */
    size_t len;
};

struct db_mediastore {
    struct db_services *svc;
    struct db_consumer *consumer;
    struct db_mediastore_conf c; /* numbers and backend only: strings are not kept */
    struct db_redis_script *record, *forget, *attempt;
    struct sweep *sweep;       /* the retention sweep running, or NULL */
    struct job *jobs, *q_head, *q_tail;
    size_t alive, active;
    int stopped;
    char prefix[72], events[96], idx[96];
    struct event *sweep_timer;
    int sweeping;
};

static void job_start(struct job *j);
static void pump(struct db_mediastore *m);

static struct db_log_ctx *ctx_of(const struct job *j, struct db_log_ctx *ctx)
{
    *ctx = (struct db_log_ctx){"mediastore", j->platform, j->account, j->entry};
    return ctx;
}

static void job_free(struct job *j)
{
    struct db_mediastore *m = j->m;
    if (m) {
        if (j->prev) j->prev->next = j->next;
        else m->jobs = j->next;
        if (j->next) j->next->prev = j->prev;
        m->alive--;
        if (j->active) m->active--;
    }
    if (j->timer) event_free(j->timer);
    free(j);
}

/* The entry is done with (acknowledged, or left for a later claim): the job ends and the
 * next one may start. */
static void job_end(struct job *j)
{
    struct db_mediastore *m = j->m;
    if (m) db_consumer_release(m->consumer, 0, j->entry);
    job_free(j);
    if (m) pump(m);
}

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)reply, (void)errstr;
    j->busy = 0;
    if (!j->m) {
        job_free(j);
        return;
    }
    if (status != DB_OK) {
        /* Left pending: claimed again later, where the record says it is done. */
        struct db_log_ctx ctx;
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "XACK failed; the entry is claimed again later");
    }
    job_end(j);
}

static void ack(struct job *j)
{
    j->busy = 1;
    db_redis_cmd(j->m->svc->redis, acked_cb, j, "XACK %s %s %s", j->m->events, DB_MEDIA_GROUP,
                 j->entry);
}

/* ---- outcomes ---- */

static void retry_later(struct job *j, const char *reason);

static void recorded_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    j->busy = 0;
    if (!j->m) {
        job_free(j);
        return;
    }
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        retry_later(j, "redis_error: the record could not be written");
        return;
    }
    ack(j);
}

/* Writes the outcome (state stored or lost) with the record script. */
static void record(struct job *j, const char *state)
{
    struct db_mediastore *m = j->m;
    char size[24], now[24];
    snprintf(size, sizeof size, "%zu", j->len);
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    int stored = strcmp(state, "stored") == 0;
    const char *argv[] = {m->prefix, j->rid, state, stored ? j->key : "", stored ? size : "0",
                          stored ? j->sha : "", stored ? j->ctype : "", j->file_name, j->event,
                          j->conversation, stored ? "" : j->reason, now, j->platform,
                          j->account, j->media_id};
    size_t lens[15];
    for (int i = 0; i < 15; i++) lens[i] = strlen(argv[i]);
    struct db_log_ctx ctx;
    if (stored) {
        db_metrics_media(m->svc->metrics, j->platform, "stored", "");
        db_log(DB_LOG_INFO, ctx_of(j, &ctx), "media stored size=%zu type=%s attempts=%d",
               j->len, j->ctype, j->attempt);
    } else {
        /* The reason's code (before ':') labels the metric; the text is on the record. */
        char code[48];
        snprintf(code, sizeof code, "%.*s", (int)strcspn(j->reason, ":"), j->reason);
        db_metrics_media(m->svc->metrics, j->platform, "lost", code);
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "media lost after %d attempts: %s", j->attempt,
               j->reason);
    }
    j->busy = 1;
    db_redis_eval(m->svc->redis, m->record, recorded_cb, j, 0, NULL, 15, argv, lens);
}

static void lose(struct job *j, const char *reason)
{
    snprintf(j->reason, sizeof j->reason, "%s", reason);
    record(j, "lost");
}

static int64_t backoff_ms(const struct db_mediastore *m, int attempt)
{
    int64_t d = m->c.retry_base_ms;
    for (int i = 1; i < attempt && d < m->c.retry_max_ms; i++) d *= 2;
    return d > m->c.retry_max_ms ? m->c.retry_max_ms : d;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct job *j = arg;
    if (j->m->stopped) {
        job_end(j); /* left pending for whoever runs next */
        return;
    }
    job_start(j);
}

static void saved_reason_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr, (void)arg;
}

/* An attempt failed: lost once max_deliveries attempts were made, else wait and try again. */
static void retry_later(struct job *j, const char *reason)
{
    struct db_mediastore *m = j->m;
    struct db_log_ctx ctx;
    snprintf(j->reason, sizeof j->reason, "%s", reason);
    if (m->stopped) {
        job_end(j); /* shutting down: left pending for whoever runs next */
        return;
    }
    if (j->attempt >= m->c.max_deliveries) {
        lose(j, reason);
        return;
    }
    char code[48];
    snprintf(code, sizeof code, "%.*s", (int)strcspn(reason, ":"), reason);
    db_metrics_media(m->svc->metrics, j->platform, "retry", code);
    /* Kept on the record too, so the reason survives a restart before the last attempt. */
    db_redis_cmd(m->svc->redis, saved_reason_cb, NULL, "HSET %s reason %s", j->rec, reason);
    int64_t d = backoff_ms(m, j->attempt);
    db_log(DB_LOG_INFO, ctx_of(j, &ctx), "media attempt %d failed (%s); again in %" PRId64 " ms",
           j->attempt, reason, d);
    if (j->active) {
        j->active = 0;
        m->active--;
    }
    if (!j->timer) j->timer = evtimer_new(m->svc->base, timer_cb, j);
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    if (!j->timer || evtimer_add(j->timer, &tv) != 0) {
        job_end(j); /* stays pending: claimed again after claim_idle_ms */
        return;
    }
    pump(m);
}

/* ---- the attempt ---- */

static void put_cb(int status, const char *why, void *arg)
{
    struct job *j = arg;
    j->busy = 0;
    if (!j->m) {
        job_free(j);
        return;
    }
    if (status == DB_OK) {
        record(j, "stored");
        return;
    }
    char reason[200];
    snprintf(reason, sizeof reason, "store_error: %s", why);
    retry_later(j, reason);
}

static void fetched_cb(int status, const char *code, const char *why, const char *ctype,
                       const char *data, size_t len, void *arg)
{
    struct job *j = arg;
    (void)ctype; /* the platform's claim; the bytes decide */
    j->busy = 0;
    if (!j->m) {
        job_free(j);
        return;
    }
    char reason[200];
    if (status != DB_OK) {
        snprintf(reason, sizeof reason, "%s: %s", code && *code ? code : "upstream_error",
                 why ? why : "");
        /* Nothing will change for a file too large or a platform without downloads. */
        if (status == DB_EINVAL || status == DB_EUNSUPPORTED) lose(j, reason);
        else retry_later(j, reason);
        return;
    }
    const char *t = db_sniff_type((const unsigned char *)data, len);
    j->ctype = t ? t : "application/octet-stream";
    j->len = len;
    if (db_sha256_hex(data, len, j->sha) != 0) {
        retry_later(j, "store_error: checksum failed");
        return;
    }
    j->busy = 1;
    db_blob_put(j->m->svc->media_blob, j->key, data, len, j->ctype, put_cb, j);
}

static void checked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    j->busy = 0;
    if (!j->m) {
        job_free(j);
        return;
    }
    if (status != DB_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        retry_later(j, "redis_error: the record could not be read");
        return;
    }
    const char *state = reply->element[0]->str;
    if (state && (strcmp(state, "stored") == 0 || strcmp(state, "lost") == 0)) {
        ack(j); /* the same file again (an edit, a redelivery): already decided */
        return;
    }
    /* Attempts count across processes and restarts: the record holds them. */
    long long n = reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
    j->attempt = (int)n;
    if (j->attempt > j->m->c.max_deliveries) {
        const char *last = reply->element[2]->str;
        lose(j, last && *last ? last : "retries_exhausted");
        return;
    }
    j->busy = 1;
    db_media_collect(j->m->svc, j->platform, j->account, j->media_id, (size_t)j->m->c.max_bytes,
                   fetched_cb, j);
}

/* One attempt: counts it on the record and reads what the record already says. */
static void job_start(struct job *j)
{
    struct db_mediastore *m = j->m;
    if (!j->active) {
        j->active = 1;
        m->active++;
    }
    j->busy = 1;
    const char *keys[] = {j->rec};
    db_redis_eval(m->svc->redis, m->attempt, checked_cb, j, 1, keys, 0, NULL, NULL);
}

/* 1 when another job works on the same file: the same media in two messages (a forward)
 * is fetched once, the second job then finds the record decided. */
static int rid_busy(const struct db_mediastore *m, const struct job *self)
{
    for (const struct job *j = m->jobs; j; j = j->next)
        if (j != self && (j->active || j->timer) && strcmp(j->rid, self->rid) == 0) return 1;
    return 0;
}

static void pump(struct db_mediastore *m)
{
    struct job *prev = NULL;
    for (struct job *j = m->q_head; j && m->active < (size_t)m->c.concurrency && !m->stopped;) {
        struct job *next = j->qnext;
        if (rid_busy(m, j)) {
            prev = j;
            j = next;
            continue;
        }
        if (prev) prev->qnext = next;
        else m->q_head = next;
        if (m->q_tail == j) m->q_tail = prev;
        j->qnext = NULL;
        job_start(j);
        j = next;
    }
}

/* ---- reading P:events ---- */

/* The object key of a file: its media id hashed, so any id (Telegram's, Meta's, a Viber
 * token) makes a safe path, spread over 256 directories. */
static void object_key(struct job *j)
{
    char h[65];
    db_sha256_hex(j->media_id, strlen(j->media_id), h);
    char acct[100];
    size_t n = strspn(j->account, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    if (n == strlen(j->account) && n > 0) snprintf(acct, sizeof acct, "%s", j->account);
    else {
        char ah[65];
        db_sha256_hex(j->account, strlen(j->account), ah);
        snprintf(acct, sizeof acct, "%.32s", ah);
    }
    snprintf(j->key, sizeof j->key, "%s/%s/%.2s/%s", j->platform, acct, h, h);
}

static void skip_acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)status, (void)reply, (void)errstr;
    j->busy = 0;
    if (!j->m) {
        job_free(j);
        return;
    }
    job_end(j);
}

static int take(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct db_mediastore *m = arg;
    (void)stream, (void)claimed;
    if (m->stopped) return 0;
    const redisReply *fields = entry->element[1];
    const char *text = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->str && strcmp(fields->element[i]->str, "event") == 0)
            text = fields->element[i + 1]->str;
    struct job *j = calloc(1, sizeof *j);
    if (!j || strlen(entry->element[0]->str) >= sizeof j->entry) {
        free(j);
        return 0;
    }
    j->m = m;
    j->next = m->jobs;
    if (j->next) j->next->prev = j;
    m->jobs = j;
    m->alive++;
    snprintf(j->entry, sizeof j->entry, "%s", entry->element[0]->str);
    json_t *ev = NULL;
    struct db_err e = {0};
    const char *mid = NULL;
    if (text && db_json_parse_object(text, strlen(text), &ev, &e) == DB_OK) {
        const json_t *media = json_object_get(ev, "media");
        const char *kind = db_json_str(ev, "kind");
        mid = db_json_str(media, "id");
        const char *p = db_json_str(ev, "platform"), *a = db_json_str(ev, "account");
        int usable = mid && p && a && kind &&
                     (strcmp(kind, "message") == 0 || strcmp(kind, "edit") == 0) &&
                     strlen(mid) < sizeof j->media_id && strlen(p) < sizeof j->platform &&
                     strlen(a) < sizeof j->account;
        if (usable) {
            snprintf(j->media_id, sizeof j->media_id, "%s", mid);
            snprintf(j->platform, sizeof j->platform, "%s", p);
            snprintf(j->account, sizeof j->account, "%s", a);
            const char *id = db_json_str(ev, "id"), *conv = db_json_str(ev, "conversation");
            const char *fname = db_json_str(media, "file_name");
            snprintf(j->event, sizeof j->event, "%s", id ? id : "");
            snprintf(j->conversation, sizeof j->conversation, "%s", conv ? conv : "");
            snprintf(j->file_name, sizeof j->file_name, "%s", fname ? fname : "");
        } else {
            mid = NULL;
        }
    }
    json_decref(ev);
    if (!mid) {
        /* Nothing to keep: acknowledged at once. */
        j->busy = 1;
        db_redis_cmd(m->svc->redis, skip_acked_cb, j, "XACK %s %s %s", m->events,
                     DB_MEDIA_GROUP, j->entry);
        return 1;
    }
    snprintf(j->rid, sizeof j->rid, "%s:%s:%s", j->platform, j->account, j->media_id);
    char suffix[340];
    snprintf(suffix, sizeof suffix, DB_KEY_MEDIAREC ":%s", j->rid);
    db_key(j->rec, sizeof j->rec, m->prefix, suffix);
    object_key(j);
    if (m->q_tail) m->q_tail->qnext = j;
    else m->q_head = j;
    m->q_tail = j;
    return 1;
}

static void batch_cb(int whole, void *arg)
{
    (void)whole;
    pump(arg);
}

/* ---- retention ---- */

struct sweep {
    struct db_mediastore *m;
    char **rids;
    size_t n, i;
    char rec[400];
};

static void sweep_next(struct sweep *s);
static void sweep_arm(struct db_mediastore *m, int seconds);

static void sweep_end(struct sweep *s, int more)
{
    struct db_mediastore *m = s->m;
    for (size_t i = 0; i < s->n; i++) free(s->rids[i]);
    free(s->rids);
    free(s);
    if (!m) return;
    m->sweep = NULL;
    m->sweeping = 0;
    /* A full batch: more may be due, go on at once. */
    sweep_arm(m, more ? 0 : m->c.sweep_interval_s);
}

static void forgot_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    struct sweep *s = arg;
    s->i++;
    sweep_next(s);
}

static void deleted_cb(int status, const char *why, void *arg)
{
    struct sweep *s = arg;
    if (!s->m) {
        sweep_end(s, 0);
        return;
    }
    if (status != DB_OK && status != DB_ENOTFOUND) {
        struct db_log_ctx ctx = {"mediastore", NULL, NULL, NULL};
        db_log(DB_LOG_WARN, &ctx, "retention: object not deleted (%s); tried again later", why);
        sweep_end(s, 0);
        return;
    }
    const char *argv[] = {s->m->prefix, s->rids[s->i]};
    size_t lens[] = {strlen(argv[0]), strlen(argv[1])};
    db_redis_eval(s->m->svc->redis, s->m->forget, forgot_cb, s, 0, NULL, 2, argv, lens);
}

static void key_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct sweep *s = arg;
    (void)errstr;
    if (!s->m || status != DB_OK) {
        sweep_end(s, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        /* A record without an object: only its index entry is left to drop. */
        deleted_cb(DB_OK, "", s);
        return;
    }
    db_blob_delete(s->m->svc->media_blob, reply->str, deleted_cb, s);
}

static void sweep_next(struct sweep *s)
{
    if (!s->m) {
        sweep_end(s, 0);
        return;
    }
    if (s->i >= s->n) {
        sweep_end(s, s->n == SWEEP_BATCH);
        return;
    }
    char suffix[340];
    snprintf(suffix, sizeof suffix, DB_KEY_MEDIAREC ":%s", s->rids[s->i]);
    db_key(s->rec, sizeof s->rec, s->m->prefix, suffix);
    db_redis_cmd(s->m->svc->redis, key_cb, s, "HGET %s key", s->rec);
}

static void due_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_mediastore *m = arg;
    (void)errstr;
    struct sweep *s = calloc(1, sizeof *s);
    if (!s || status != DB_OK || reply->type != REDIS_REPLY_ARRAY) {
        free(s);
        m->sweeping = 0;
        sweep_arm(m, m->c.sweep_interval_s);
        return;
    }
    s->m = m;
    m->sweep = s;
    s->rids = calloc(reply->elements ? reply->elements : 1, sizeof *s->rids);
    for (size_t i = 0; s->rids && i < reply->elements; i++)
        if (reply->element[i]->str && (s->rids[s->n] = strdup(reply->element[i]->str)))
            s->n++;
    sweep_next(s);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct db_mediastore *m = arg;
    if (m->stopped || m->sweeping) return;
    m->sweeping = 1;
    /* Files stored before the cutoff; an erased conversation's files were given score 0
     * (docs/media.md), so they go with retention_days = 0 too. */
    int64_t cutoff = m->c.retention_days > 0
                         ? db_now_ms() - (int64_t)m->c.retention_days * 86400000
                         : 0;
    char max[24];
    snprintf(max, sizeof max, "%" PRId64, cutoff);
    db_redis_cmd(m->svc->redis, due_cb, m, "ZRANGEBYSCORE %s -inf %s LIMIT 0 %d", m->idx, max,
                 SWEEP_BATCH);
}

static void sweep_arm(struct db_mediastore *m, int seconds)
{
    if (m->stopped || !m->sweep_timer) return;
    struct timeval tv = {seconds, 0};
    evtimer_add(m->sweep_timer, &tv);
}

/* ---- life cycle ---- */

int db_mediastore_start(struct db_services *svc, struct db_mediastore **out, struct db_err *e)
{
    *out = NULL;
    const struct db_config *cfg = svc->cfg->cfg;
    const struct db_mediastore_conf *c = db_config_obj(cfg, "media_store", NULL);
    if (!c || !svc->media_blob) return DB_OK;
    struct db_mediastore *m = calloc(1, sizeof *m);
    if (!m) return db_err_set(e, DB_ENOMEM, "out of memory");
    m->svc = svc;
    m->c = *c;
    m->c.backend = m->c.dir = m->c.s3_endpoint = m->c.s3_bucket = m->c.s3_region = NULL;
    m->c.s3_access_key = m->c.s3_secret_key = NULL;
    snprintf(m->prefix, sizeof m->prefix, "%s", cfg->prefix);
    db_key(m->events, sizeof m->events, cfg->prefix, DB_KEY_EVENTS);
    db_key(m->idx, sizeof m->idx, cfg->prefix, DB_KEY_MEDIAIDX);
    char dead[96];
    db_key(dead, sizeof dead, cfg->prefix, DB_KEY_DEAD);
    m->record = db_redis_script_new(db_lua_media_record);
    m->forget = db_redis_script_new(db_lua_media_forget);
    m->attempt = db_redis_script_new(db_lua_media_attempt);
    m->sweep_timer = evtimer_new(svc->base, sweep_cb, m);
    struct db_consumer_opts co = {.redis = svc->redis,
                                  .metrics = svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-media",
                                  .who = "mediastore",
                                  .what = "events",
                                  .group = DB_MEDIA_GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {m->events, NULL},
                                  .labels = {"events", NULL},
                                  .dead_key = dead,
                                  /* Files of events from before the first start are not
                                   * fetched: their links have long expired. */
                                  .start = "$",
                                  .count = READ_COUNT,
                                  .max_held = MAX_HELD,
                                  .claim_idle_ms = c->claim_idle_ms,
                                  /* The store counts attempts itself (on the record); the
                                   * consumer's own limit only catches processes that keep
                                   * dying on an entry. */
                                  .max_deliveries = c->max_deliveries + 5};
    int rc = m->record && m->forget && m->attempt && m->sweep_timer ? DB_OK : DB_ENOMEM;
    if (rc == DB_OK) rc = db_consumer_new(svc->base, &co, take, batch_cb, m, &m->consumer, e);
    if (rc != DB_OK) {
        db_mediastore_free(m);
        return rc == DB_ENOMEM ? db_err_set(e, DB_ENOMEM, "out of memory") : rc;
    }
    db_consumer_start(m->consumer);
    sweep_arm(m, 1);
    *out = m;
    return DB_OK;
}

void db_mediastore_stop_reading(struct db_mediastore *m)
{
    if (!m) return;
    m->stopped = 1;
    db_consumer_stop(m->consumer);
    /* Queued and waiting jobs are left pending: another process (or the next start) claims
     * them. */
    while (m->q_head) {
        struct job *j = m->q_head;
        m->q_head = j->qnext;
        job_end(j);
    }
    m->q_tail = NULL;
    for (struct job *j = m->jobs, *next; j; j = next) {
        next = j->next;
        if (j->timer && evtimer_pending(j->timer, NULL) && !j->busy) job_end(j);
    }
    if (m->sweep_timer) evtimer_del(m->sweep_timer);
}

unsigned long db_mediastore_inflight(const struct db_mediastore *m)
{
    return m ? (unsigned long)m->alive : 0;
}

void db_mediastore_free(struct db_mediastore *m)
{
    if (!m) return;
    m->stopped = 1;
    for (struct job *j = m->jobs, *next; j; j = next) {
        next = j->next;
        j->prev = j->next = NULL;
        j->m = NULL;
        if (!j->busy) job_free(j);
    }
    m->jobs = NULL;
    if (m->sweep) m->sweep->m = NULL; /* its pending answer ends it */
    db_consumer_free(m->consumer);
    if (m->sweep_timer) event_free(m->sweep_timer);
    db_redis_script_free(m->record);
    db_redis_script_free(m->forget);
    db_redis_script_free(m->attempt);
    free(m);
}
