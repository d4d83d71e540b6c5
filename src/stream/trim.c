#include "stream/trim.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "conf/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "services/services.h"
#include "store/store.h"
#include "util/id.h"

/* A stream held over its cap is logged at most this often: it stays so until the group reads. */
#define HELD_LOG_EVERY_MS 60000

/* The streams trimmed, each with the [gateway] keys of its caps (P:dead is never trimmed:
 * what was given up on waits for a person). */
enum { T_EVENTS, T_STATUS, T_OUTBOX, T_COUNT };
#define NO_HARD ((size_t)-1)
static const struct {
    const char *suffix, *cap_key, *hard_key;
    size_t cap_off, hard_off; /* in struct db_config */
} trimmed[T_COUNT] = {
    [T_EVENTS] = {DB_KEY_EVENTS, "stream_maxlen", "stream_maxlen_hard",
                  offsetof(struct db_config, stream_maxlen),
                  offsetof(struct db_config, stream_maxlen_hard)},
    [T_STATUS] = {DB_KEY_STATUS, "status_maxlen", "", offsetof(struct db_config, status_maxlen),
                  NO_HARD},
    [T_OUTBOX] = {DB_KEY_OUTBOX, "outbox_maxlen", "", offsetof(struct db_config, outbox_maxlen),
                  NO_HARD},
};

static long cap_at(const struct db_config *cfg, size_t off)
{
    return off == NO_HARD ? 0 : *(const long *)(const void *)((const char *)cfg + off);
}

/* One pass runs the streams one after the other; the timer is armed again only when the
 * pass has ended, so passes never overlap. */
struct db_trim {
    struct db_services *svc;
    struct db_redis_script *script;
    struct event *timer;
    char keys[T_COUNT][160];
    int at;               /* the stream of the run in flight */
    long cap, hard;       /* its caps, for its log lines */
    int stopped;
    int64_t held_logged_ms[T_COUNT];
};

static void arm(struct db_trim *t)
{
    static const struct timeval every = {1, 0};
    if (!t->stopped) evtimer_add(t->timer, &every);
}

static long long int_at(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                          : 0;
}

static void run_from(struct db_trim *t, int s);

static void ran(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_trim *t = arg;
    struct db_log_ctx ctx = {"trim", NULL, NULL, NULL};
    const char *key = t->keys[t->at];
    if (status != DB_OK || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        /* Redis away: nothing is removed meanwhile, which loses nothing. */
        if (status != DB_EAGAIN)
            db_log(DB_LOG_WARN, &ctx, "trimming %s failed: %s", key,
                   errstr ? errstr : "unexpected answer");
        arm(t);
        return;
    }
    long long removed = int_at(reply, 0), forced = int_at(reply, 1), held = int_at(reply, 2);
    const redisReply *g = reply->element[3];
    const char *holder = g->type == REDIS_REPLY_STRING ? g->str : "";
    db_metrics_stream_trimmed(t->svc->metrics, trimmed[t->at].suffix, removed, forced, held);
    if (forced > 0)
        db_log(DB_LOG_ERROR, &ctx,
               "%s over %s (%ld): %lld entries removed before group %s read them", key,
               trimmed[t->at].hard_key, t->hard, forced, *holder ? holder : "(unknown)");
    int64_t now = db_now_ms();
    if (held > 0 && now - t->held_logged_ms[t->at] >= HELD_LOG_EVERY_MS) {
        t->held_logged_ms[t->at] = now;
        db_log(DB_LOG_WARN, &ctx,
               "%s is %lld entries over %s (%ld): kept until consumer group %s has read them "
               "(if nothing reads that group any more, remove it with XGROUP DESTROY)",
               key, held, trimmed[t->at].cap_key, t->cap, holder);
    }
    run_from(t, t->at + 1);
}

/* Runs the first stream from s on that has a cap; arms the timer when none is left. */
static void run_from(struct db_trim *t, int s)
{
    const struct db_config *cfg = t->svc->cfg->cfg;
    for (; !t->stopped && s < T_COUNT; s++) {
        t->cap = cap_at(cfg, trimmed[s].cap_off);
        t->hard = cap_at(cfg, trimmed[s].hard_off);
        if (t->cap <= 0) continue;
        if (!db_redis_is_up(t->svc->redis)) break;
        t->at = s;
        char cap[24], hard[24];
        snprintf(cap, sizeof cap, "%ld", t->cap);
        snprintf(hard, sizeof hard, "%ld", t->hard);
        const char *keys[] = {t->keys[s]};
        const char *args[] = {cap, hard};
        db_redis_eval(t->svc->redis, t->script, ran, t, 1, keys, 2, args, NULL);
        return;
    }
    arm(t);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    run_from(arg, 0);
}

int db_trim_start(struct db_services *svc, struct db_trim **out, struct db_err *e)
{
    *out = NULL;
    struct db_trim *t = calloc(1, sizeof *t);
    if (!t) return db_err_set(e, DB_ENOMEM, "out of memory");
    t->svc = svc;
    for (int s = 0; s < T_COUNT; s++) {
        db_store_key(svc->store, trimmed[s].suffix, t->keys[s], sizeof t->keys[s]);
        t->held_logged_ms[s] = db_now_ms() - HELD_LOG_EVERY_MS;
    }
    t->script = db_redis_script_new(db_lua_stream_trim);
    t->timer = evtimer_new(svc->base, tick, t);
    if (!t->script || !t->timer) {
        db_trim_free(t);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    arm(t);
    *out = t;
    return DB_OK;
}

void db_trim_stop(struct db_trim *t)
{
    if (!t) return;
    t->stopped = 1;
    evtimer_del(t->timer);
}

void db_trim_free(struct db_trim *t)
{
    if (!t) return;
    if (t->timer) event_free(t->timer);
    db_redis_script_free(t->script);
    free(t);
}
