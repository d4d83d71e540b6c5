#include "stream/consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "stream/reader.h"
#include "util/hash.h"
#include "util/id.h"
#include "util/parse.h"

#define REFRESH_CHUNK 256
#define ID_MAX 64 /* a stream id ("<ms>-<seq>") is 41 characters at most */

struct held {
    struct held *next;
    int stream;
    char id[];
};

/* One claim round of one stream in flight. */
struct round {
    struct db_consumer *c;
    int stream;
    int dead_left; /* dead letters of the round not answered yet (+1 while they are sent) */
    size_t nidle;  /* the idle entries XPENDING listed to be claimed, in id order */
    char (*idle)[ID_MAX]; /* count of them at most */
};

struct db_consumer {
    struct db_redis *redis;
    struct db_metrics *metrics;
    struct db_reader *reader;
    struct db_redis_script *dead;
    struct event *claim_timer;
    db_consumer_take_fn take;
    db_consumer_batch_fn batch_end;
    void *arg;
    struct held **buckets;
    size_t nbuckets, nheld;
    size_t outstanding; /* callbacks due on the shared connection that hold c */
    size_t busy;        /* of those, the ones that hand entries over */
    int creating, created;
    int nstreams, count, max_held, claim_idle_ms, max_deliveries;
    int stopped, released;
    unsigned long reads, batch; /* XREADGROUP answers so far; the batch being handed over */
    struct round rounds[2];
    int claiming[2];
    char *who, *what, *group, *consumer, *dead_key, *start, *streams[2], *labels[2];
};

/* ---- held entries ---- */

static size_t bucket_of(const struct db_consumer *c, int stream, const char *id)
{
    return (size_t)(db_hash_str(DB_HASH_SEED ^ (uint64_t)stream, id) & (c->nbuckets - 1));
}

static struct held **held_find(const struct db_consumer *c, int stream, const char *id)
{
    struct held **p = &c->buckets[bucket_of(c, stream, id)];
    while (*p && ((*p)->stream != stream || strcmp((*p)->id, id) != 0)) p = &(*p)->next;
    return p;
}

int db_consumer_holds(const struct db_consumer *c, int stream, const char *entry)
{
    return c && entry && *held_find(c, stream, entry) != NULL;
}

size_t db_consumer_held(const struct db_consumer *c) { return c ? c->nheld : 0; }

/* 0, or -1 without memory. */
static int hold(struct db_consumer *c, int stream, const char *id)
{
    struct held **p = held_find(c, stream, id);
    if (*p) return 0;
    size_t n = strlen(id) + 1;
    struct held *h = malloc(sizeof *h + n);
    if (!h) return -1;
    h->next = NULL;
    h->stream = stream;
    memcpy(h->id, id, n);
    *p = h;
    c->nheld++;
    return 0;
}

void db_consumer_release(struct db_consumer *c, int stream, const char *entry)
{
    if (!c || !entry) return;
    struct held **p = held_find(c, stream, entry);
    if (!*p) return;
    struct held *h = *p;
    *p = h->next;
    free(h);
    c->nheld--;
    if (!c->released) db_reader_more(c->reader);
}

static void held_clear(struct db_consumer *c)
{
    for (size_t i = 0; c->buckets && i < c->nbuckets; i++)
        while (c->buckets[i]) {
            struct held *h = c->buckets[i];
            c->buckets[i] = h->next;
            free(h);
        }
    c->nheld = 0;
}

/* ---- handing entries over ---- */

static size_t room(const struct db_consumer *c)
{
    return c->nheld < (size_t)c->max_held ? (size_t)c->max_held - c->nheld : 0;
}

/* Returns how many entries of list the owner did not take. */
static size_t hand_over(struct db_consumer *c, int stream, const redisReply *list, int claimed)
{
    size_t left = 0;
    for (size_t i = 0; list && list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
        const redisReply *en = list->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
            en->element[0]->type != REDIS_REPLY_STRING) {
            left++;
            continue;
        }
        const char *id = en->element[0]->str;
        /* A claim also brings back this process's own entries that waited longer than
         * claim_idle_ms before a refresh reached them: the owner has them already. */
        if (db_consumer_holds(c, stream, id)) {
            left++;
        } else if (hold(c, stream, id) != 0) {
            left++; /* stays pending; claimed later */
        } else if (!c->take(stream, en, claimed, c->arg)) {
            db_consumer_release(c, stream, id);
            left++;
        }
    }
    return left;
}

/* Claims may go count entries beyond max_held: entries held here can be waiting for an
 * earlier entry of their conversation that a dead process left pending (see ordering.h), and
 * only a claim frees them.  That reserve alone is not enough: the earlier entry may be one
 * that is not idle yet (its process died a moment ago) while later idle ones of an older dead
 * process are, so a round can fill the reserve with entries that wait too, and then no
 * claim would ever run again.  Hence see claimable: entries older than every one held here
 * are claimed whatever the room. */
static size_t claim_room(const struct db_consumer *c)
{
    size_t cap = (size_t)c->max_held + (size_t)c->count;
    return c->nheld < cap ? cap - c->nheld : 0;
}

/* The oldest entry held of stream, or NULL. */
static const char *oldest_held(const struct db_consumer *c, int stream)
{
    const char *min = NULL;
    for (size_t b = 0; b < c->nbuckets; b++)
        for (const struct held *h = c->buckets[b]; h; h = h->next)
            if (h->stream == stream && (!min || db_stream_id_cmp(h->id, min) < 0)) min = h->id;
    return min;
}

/* How many of the round's idle entries (in id order) to claim: as many as claim_room allows,
 * and beyond it every one older than all entries held of the stream.  Nothing held here can
 * wait for a later entry, and the oldest pending entry of the stream is either held here (it
 * waits for nothing elsewhere and goes on) or such an entry: so claims never stall however
 * the held ones wait, and each claim beyond the room lowers the oldest held id. */
static size_t claimable(const struct db_consumer *c, const struct round *r)
{
    size_t n = claim_room(c);
    if (n >= r->nidle) return r->nidle;
    const char *min = oldest_held(c, r->stream);
    while (n < r->nidle && (!min || db_stream_id_cmp(r->idle[n], min) < 0)) n++;
    return n;
}

static size_t room_cb(void *arg) { return room(arg); }

static void read_cb(const redisReply *const lists[2], void *arg)
{
    struct db_consumer *c = arg;
    size_t left = 0;
    c->batch = ++c->reads;
    for (int s = 0; s < c->nstreams; s++) left += hand_over(c, s, lists[s], 0);
    c->batch = 0;
    if (c->batch_end) c->batch_end(left == 0 && c->nstreams == 1, c->arg);
}

unsigned long db_consumer_batch(const struct db_consumer *c) { return c ? c->batch : 0; }

/* Counts one callback on the shared connection done; returns 1 when c was freed meanwhile
 * (db_consumer_free left it to the last callback) and is now gone. */
static int settle(struct db_consumer *c)
{
    c->outstanding--;
    if (!c->released) return 0;
    if (c->outstanding == 0) free(c);
    return 1;
}

/* ---- dead letters ---- */

struct dead_op {
    struct db_consumer *c;
    struct round *round; /* the claim round that decided it, or NULL */
    db_consumer_dead_fn cb;
    void *arg;
    int stream;
    int own;            /* the consumer's decision (delivered too often), not the owner's */
    char entry[64];
    char reason[96];
};

static void round_dead_done(struct round *r);

static void dead_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct dead_op *o = arg;
    struct db_consumer *c = o->c;
    int written = status == DB_OK && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    int rc = status == DB_OK && reply->type == REDIS_REPLY_ERROR ? DB_EAGAIN : status;
    if (settle(c)) {
        free(o);
        return;
    }
    struct db_log_ctx ctx = {c->who, NULL, NULL, o->entry};
    if (written) {
        if (c->metrics) db_metrics_dead_letter(c->metrics);
        if (o->own)
            db_log(DB_LOG_ERROR, &ctx, "%s entry dead-lettered: %s", c->what, o->reason);
    } else if (rc != DB_OK) {
        db_log(DB_LOG_WARN, &ctx, "%s dead letter not written: %s", c->what,
               status != DB_OK ? (errstr ? errstr : "unavailable") : reply->str);
    }
    if (o->cb) o->cb(rc, written, o->arg);
    if (o->round) round_dead_done(o->round);
    free(o);
}

static void dead_letter(struct db_consumer *c, int stream, const char *entry, const char *reason,
                        const char *mindeliv, const char *minidle, const char *const *extra,
                        db_consumer_dead_fn cb, void *arg, struct round *round)
{
    int own = round != NULL;
    struct dead_op *o = calloc(1, sizeof *o);
    size_t nextra = 0;
    while (extra && extra[nextra] && extra[nextra + 1]) nextra += 2;
    const char **args = o ? calloc(9 + nextra, sizeof *args) : NULL;
    if (!args) {
        free(o);
        if (cb) cb(DB_ENOMEM, 0, arg);
        if (round) round_dead_done(round);
        return;
    }
    o->c = c;
    o->round = round;
    o->cb = cb;
    o->arg = arg;
    o->stream = stream;
    o->own = own;
    snprintf(o->entry, sizeof o->entry, "%s", entry);
    snprintf(o->reason, sizeof o->reason, "%s", reason);
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    int n = 0;
    args[n++] = c->streams[stream];
    args[n++] = c->group;
    args[n++] = entry;
    args[n++] = c->dead_key;
    args[n++] = c->labels[stream];
    args[n++] = reason;
    args[n++] = now;
    args[n++] = mindeliv;
    args[n++] = minidle;
    for (size_t i = 0; i < nextra; i++) args[n++] = extra[i];
    c->outstanding++;
    db_redis_eval(c->redis, c->dead, dead_cb, o, 0, NULL, n, args, NULL);
    free(args);
}

void db_consumer_dead_letter(struct db_consumer *c, int stream, const char *entry,
                             const char *reason, const char *const *extra,
                             db_consumer_dead_fn cb, void *arg)
{
    dead_letter(c, stream, entry, reason, "", "", extra, cb, arg, NULL);
}

/* ---- claims ---- */

static void schedule_round(struct db_consumer *c)
{
    int every = c->claim_idle_ms / 3;
    if (every < 100) every = 100;
    if (every > 10000) every = 10000;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    if (!c->stopped) evtimer_add(c->claim_timer, &tv);
}

static void round_end(struct round *r)
{
    r->c->busy--;
    r->c->claiming[r->stream] = 0;
}

static void claimed_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct round *r = arg;
    struct db_consumer *c = r->c;
    (void)errstr;
    round_end(r);
    if (settle(c) || c->stopped) return;
    /* [[id, [field, value, ...]], ...]: the entries still idle (another process may have
     * claimed some meanwhile) and still in the stream */
    if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY) {
        hand_over(c, r->stream, reply, 1);
        if (c->batch_end) c->batch_end(0, c->arg);
    }
}

/* The round's dead letters are answered: the rest of the idle entries are claimed.  Only
 * now: a script's first run on a connection may take a SCRIPT LOAD and a second EVALSHA, which
 * a command sent after it would overtake, so a dead letter queued "before" the claim might run
 * after it and the poison entry be run once more.  XCLAIM of the ids XPENDING listed, not
 * XAUTOCLAIM: XAUTOCLAIM from 0-0 looks at no more than ten times COUNT pending entries, so
 * behind enough entries held here it finds nothing, and it cannot stop at an id. */
static void round_dead_done(struct round *r)
{
    struct db_consumer *c = r->c;
    if (--r->dead_left > 0) return;
    if (c->released || c->stopped) {
        round_end(r);
        return;
    }
    size_t n = claimable(c, r);
    if (n == 0) {
        round_end(r);
        return;
    }
    char minidle[16];
    snprintf(minidle, sizeof minidle, "%d", c->claim_idle_ms);
    const char **argv = malloc((5 + n) * sizeof *argv);
    if (!argv) {
        round_end(r);
        return;
    }
    int argc = 0;
    argv[argc++] = "XCLAIM";
    argv[argc++] = c->streams[r->stream];
    argv[argc++] = c->group;
    argv[argc++] = c->consumer;
    argv[argc++] = minidle; /* an entry another process claimed meanwhile is not idle */
    for (size_t i = 0; i < n; i++) argv[argc++] = r->idle[i];
    c->outstanding++;
    db_redis_cmd_argv(c->redis, claimed_cb, r, argc, argv, NULL);
    free(argv);
}

/* XPENDING of the idle entries first: those delivered max_deliveries times or more go to the
 * dead letters, the rest are claimed once those are written. */
static void pending_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct round *r = arg;
    struct db_consumer *c = r->c;
    (void)errstr;
    if (settle(c)) return;
    if (c->stopped) {
        round_end(r);
        return;
    }
    char mind[16], minidle[16];
    snprintf(mind, sizeof mind, "%d", c->max_deliveries);
    snprintf(minidle, sizeof minidle, "%d", c->claim_idle_ms);
    r->dead_left = 1;
    r->nidle = 0;
    /* [[id, consumer, idle ms, deliveries], ...] */
    for (size_t i = 0; status == DB_OK && reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        const redisReply *p = reply->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 ||
            p->element[0]->type != REDIS_REPLY_STRING || p->element[0]->len >= ID_MAX)
            continue;
        if (p->element[3]->integer < c->max_deliveries) {
            /* Held here already (its refresh came late): the owner has it. */
            if (r->nidle < (size_t)c->count && !db_consumer_holds(c, r->stream, p->element[0]->str))
                memcpy(r->idle[r->nidle++], p->element[0]->str, p->element[0]->len + 1);
            continue;
        }
        char reason[96];
        snprintf(reason, sizeof reason, "delivered %lld times without an outcome",
                 p->element[3]->integer);
        r->dead_left++;
        dead_letter(c, r->stream, p->element[0]->str, reason, mind, minidle, NULL, NULL, NULL, r);
    }
    round_dead_done(r);
}

/* Resets the idle time of every entry this process holds: only a dead process's entries age
 * past claim_idle_ms.  JUSTID: a refresh is not a delivery. */
static void refresh(struct db_consumer *c)
{
    const char *argv[5 + REFRESH_CHUNK + 1];
    for (int s = 0; s < c->nstreams; s++) {
        int argc = 5;
        argv[0] = "XCLAIM";
        argv[1] = c->streams[s];
        argv[2] = c->group;
        argv[3] = c->consumer;
        argv[4] = "0";
        for (size_t b = 0; b < c->nbuckets; b++)
            for (const struct held *h = c->buckets[b]; h; h = h->next) {
                if (h->stream != s) continue;
                argv[argc++] = h->id;
                if (argc == 5 + REFRESH_CHUNK) {
                    argv[argc++] = "JUSTID";
                    db_redis_cmd_argv(c->redis, NULL, NULL, argc, argv, NULL);
                    argc = 5;
                }
            }
        if (argc > 5) {
            argv[argc++] = "JUSTID";
            db_redis_cmd_argv(c->redis, NULL, NULL, argc, argv, NULL);
        }
    }
}

static void round_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_consumer *c = arg;
    (void)fd, (void)what;
    if (c->stopped) return;
    refresh(c);
    /* Also with no claim_room left: claimable may still take older entries, and dead letters
     * are due anyway. */
    for (int s = 0; s < c->nstreams && db_reader_group_ready(c->reader); s++) {
        if (c->claiming[s]) continue;
        c->claiming[s] = 1;
        c->busy++;
        c->outstanding++;
        db_redis_cmd(c->redis, pending_cb, &c->rounds[s], "XPENDING %s %s IDLE %d - + %d",
                     c->streams[s], c->group, c->claim_idle_ms, c->count);
    }
    schedule_round(c);
}

/* ---- life cycle ---- */

static int group_exists(int status, const redisReply *reply)
{
    return status == DB_OK &&
           (reply->type == REDIS_REPLY_STATUS ||
            (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "BUSYGROUP")));
}

static void group_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_consumer *c = arg;
    (void)errstr;
    c->busy--;
    if (settle(c)) return;
    if (group_exists(status, reply)) c->created++;
    if (--c->creating > 0) return;
    /* When a creation failed (Redis away), the reader creates the group itself. */
    if (c->created == c->nstreams) db_reader_group_created(c->reader, DB_OK, reply);
    db_reader_more(c->reader);
}

void db_consumer_start(struct db_consumer *c)
{
    /* On the shared connection, queued before any write this process makes later: a group
     * that starts at "$" still sees the first entry written after the start. */
    c->creating = c->nstreams;
    c->created = 0;
    for (int s = 0; s < c->nstreams; s++) {
        c->busy++;
        c->outstanding++;
        db_redis_cmd(c->redis, group_cb, c, "XGROUP CREATE %s %s %s MKSTREAM", c->streams[s],
                     c->group, c->start);
    }
    struct timeval first = {1, 0};
    evtimer_add(c->claim_timer, &first);
}

size_t db_consumer_busy(const struct db_consumer *c) { return c ? c->busy : 0; }

void db_consumer_stop(struct db_consumer *c)
{
    if (!c) return;
    c->stopped = 1;
    db_reader_stop(c->reader);
    evtimer_del(c->claim_timer);
}

void db_consumer_free(struct db_consumer *c)
{
    if (!c) return;
    c->stopped = 1;
    db_reader_free(c->reader);
    c->reader = NULL;
    if (c->claim_timer) event_free(c->claim_timer);
    c->claim_timer = NULL;
    held_clear(c);
    free(c->buckets);
    db_redis_script_free(c->dead);
    free(c->who);
    free(c->what);
    free(c->group);
    free(c->consumer);
    free(c->dead_key);
    free(c->start);
    for (int s = 0; s < 2; s++) {
        free(c->streams[s]);
        free(c->labels[s]);
        free(c->rounds[s].idle); /* a round's answers due find c released before they read it */
        c->rounds[s].idle = NULL;
    }
    /* Answers still due on the shared connection hold c: the last of them frees it. */
    if (c->outstanding) c->released = 1;
    else free(c);
}

int db_consumer_new(struct event_base *base, const struct db_consumer_opts *o,
                    db_consumer_take_fn take, db_consumer_batch_fn batch, void *arg,
                    struct db_consumer **out, struct db_err *e)
{
    *out = NULL;
    struct db_consumer *c = calloc(1, sizeof *c);
    if (!c) return db_err_set(e, DB_ENOMEM, "out of memory");
    c->redis = o->redis;
    c->metrics = o->metrics;
    c->take = take;
    c->batch_end = batch;
    c->arg = arg;
    c->nstreams = o->streams[1] ? 2 : 1;
    c->count = o->count > 0 ? o->count : 64;
    c->max_held = o->max_held > 0 ? o->max_held : 256;
    c->claim_idle_ms = o->claim_idle_ms > 0 ? o->claim_idle_ms : 30000;
    c->max_deliveries = o->max_deliveries > 0 ? o->max_deliveries : 10;
    for (int s = 0; s < 2; s++) {
        c->rounds[s] = (struct round){c, s, 0, 0, NULL};
        c->rounds[s].idle = calloc((size_t)c->count, sizeof *c->rounds[s].idle);
    }
    c->nbuckets = 64;
    while (c->nbuckets < (size_t)c->max_held * 2) c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->who = strdup(o->who);
    c->what = strdup(o->what);
    c->group = strdup(o->group);
    c->consumer = strdup(o->consumer);
    c->dead_key = strdup(o->dead_key);
    c->start = strdup(o->start);
    int ok = c->buckets && c->who && c->what && c->group && c->consumer && c->dead_key &&
             c->start && c->rounds[0].idle && c->rounds[1].idle;
    for (int s = 0; s < c->nstreams; s++) {
        c->streams[s] = strdup(o->streams[s]);
        c->labels[s] = strdup(o->labels[s] ? o->labels[s] : o->streams[s]);
        ok = ok && c->streams[s] && c->labels[s];
    }
    c->dead = db_redis_script_new(db_lua_stream_dead);
    c->claim_timer = evtimer_new(base, round_cb, c);
    int rc = DB_OK;
    if (!ok || !c->dead || !c->claim_timer) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
    } else {
        struct db_reader_opts ro = {.redis_url = o->redis_url,
                                    .redis_timeout_ms = o->redis_timeout_ms,
                                    .conn_name = o->conn_name,
                                    .who = o->who,
                                    .what = o->what,
                                    .group = o->group,
                                    .consumer = o->consumer,
                                    .streams = {o->streams[0], o->streams[1]},
                                    .start = o->start,
                                    .count = c->count,
                                    .min_room = o->min_read < c->max_held ? o->min_read
                                                                          : c->max_held};
        rc = db_reader_new(base, &ro, room_cb, read_cb, c, &c->reader, e);
    }
    if (rc != DB_OK) {
        db_consumer_free(c);
        return rc;
    }
    *out = c;
    return DB_OK;
}
