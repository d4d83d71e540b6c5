#include "stream/trim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "conf/config.h"
#include "services/services.h"
#include "store/store.h"
#include "util/id.h"

/* A stream held over its cap is logged at most this often: it stays so until the group reads. */
#define HELD_LOG_EVERY_MS 60000

/* The timer is armed again only when a run has answered, so runs never overlap. */
struct db_trim {
    struct db_services *svc;
    struct db_redis_script *script;
    struct event *timer;
    char stream[160];
    long cap, hard; /* of the run in flight, for its log lines */
    int stopped;
    int64_t held_logged_ms;
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

static void ran(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_trim *t = arg;
    struct db_log_ctx ctx = {"trim", NULL, NULL, NULL};
    if (status != DB_OK || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        /* Redis away: nothing is removed meanwhile, which loses nothing. */
        if (status != DB_EAGAIN)
            db_log(DB_LOG_WARN, &ctx, "trimming %s failed: %s", t->stream,
                   errstr ? errstr : "unexpected answer");
        arm(t);
        return;
    }
    long long removed = int_at(reply, 0), forced = int_at(reply, 1), held = int_at(reply, 2);
    const redisReply *g = reply->element[3];
    const char *holder = g->type == REDIS_REPLY_STRING ? g->str : "";
    db_metrics_events_trimmed(t->svc->metrics, removed, forced, held);
    if (forced > 0)
        db_log(DB_LOG_ERROR, &ctx,
               "%s over stream_maxlen_hard (%ld): %lld entries removed before group %s read "
               "them", t->stream, t->hard, forced, *holder ? holder : "(unknown)");
    int64_t now = db_now_ms();
    if (held > 0 && now - t->held_logged_ms >= HELD_LOG_EVERY_MS) {
        t->held_logged_ms = now;
        db_log(DB_LOG_WARN, &ctx,
               "%s is %lld entries over stream_maxlen (%ld): kept until consumer group %s has "
               "read them (if nothing reads that group any more, remove it with XGROUP "
               "DESTROY)", t->stream, held, t->cap, holder);
    }
    arm(t);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct db_trim *t = arg;
    if (t->stopped) return;
    const struct db_config *cfg = t->svc->cfg->cfg;
    if (cfg->stream_maxlen <= 0 || !db_redis_is_up(t->svc->redis)) {
        arm(t);
        return;
    }
    t->cap = cfg->stream_maxlen;
    t->hard = cfg->stream_maxlen_hard;
    char cap[24], hard[24];
    snprintf(cap, sizeof cap, "%ld", t->cap);
    snprintf(hard, sizeof hard, "%ld", t->hard);
    const char *keys[] = {t->stream};
    const char *args[] = {cap, hard};
    db_redis_eval(t->svc->redis, t->script, ran, t, 1, keys, 2, args, NULL);
}

int db_trim_start(struct db_services *svc, struct db_trim **out, struct db_err *e)
{
    *out = NULL;
    struct db_trim *t = calloc(1, sizeof *t);
    if (!t) return db_err_set(e, DB_ENOMEM, "out of memory");
    t->svc = svc;
    db_store_key(svc->store, DB_KEY_EVENTS, t->stream, sizeof t->stream);
    t->held_logged_ms = db_now_ms() - HELD_LOG_EVERY_MS;
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
