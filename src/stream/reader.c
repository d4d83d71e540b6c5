#include "stream/reader.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log/log.h"
#include "redis/redis.h"

struct db_reader {
    struct db_redis *conn;
    struct event *retry_timer;
    db_reader_room_fn room;
    db_reader_entries_fn entries;
    void *arg;
    int nstreams, count, min_room;
    int busy;           /* a read or the group creation is in flight */
    int ready, stopped;
    int creating, created; /* group creations in flight, and those that succeeded */
    char *who, *what, *group, *consumer, *start, *streams[2];
};

static void retry_later(struct db_reader *r)
{
    struct timeval tv = {0, 500 * 1000};
    if (!r->stopped) evtimer_add(r->retry_timer, &tv);
}

static void log_failure(const struct db_reader *r, const char *verb, int status,
                        const redisReply *reply, const char *errstr)
{
    struct db_log_ctx ctx = {r->who, NULL, NULL, NULL};
    db_log(DB_LOG_WARN, &ctx, "%s %s failed: %s", r->what, verb,
           status != DB_OK ? (errstr ? errstr : "unavailable") : reply->str);
}

static int stream_index(const struct db_reader *r, const redisReply *name)
{
    for (int i = 0; name->type == REDIS_REPLY_STRING && i < r->nstreams; i++)
        if (strcmp(name->str, r->streams[i]) == 0) return i;
    return -1;
}

static void read_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_reader *r = arg;
    r->busy = 0;
    if (status != DB_OK && r->stopped) return; /* shutting down */
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        if (!r->stopped) log_failure(r, "read", status, reply, errstr);
        if (reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "NOGROUP"))
            r->ready = 0;
        retry_later(r);
        return;
    }
    /* [[stream, [entries...]], ...], or nil when BLOCK ran out */
    const redisReply *lists[2] = {NULL, NULL};
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *s = reply->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) continue;
        int idx = stream_index(r, s->element[0]);
        if (idx >= 0 && s->element[1]->type == REDIS_REPLY_ARRAY)
            lists[idx] = s->element[1];
    }
    r->entries(lists, r->arg);
    db_reader_more(r);
}

static int group_exists(int status, const redisReply *reply)
{
    return status == DB_OK &&
           (reply->type == REDIS_REPLY_STATUS ||
            (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "BUSYGROUP")));
}

static void group_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_reader *r = arg;
    if (group_exists(status, reply))
        r->created++;
    else if (!r->stopped)
        log_failure(r, "group creation", status, reply, errstr);
    if (--r->creating > 0) return;
    r->busy = 0;
    if (r->stopped) return;
    r->ready = r->created == r->nstreams;
    if (r->ready) db_reader_more(r);
    else retry_later(r);
}

void db_reader_more(struct db_reader *r)
{
    if (!r || r->busy || r->stopped) return;
    size_t room = r->room(r->arg);
    if (room == 0 || room < (size_t)r->min_room) return;
    r->busy = 1;
    if (!r->ready) {
        r->creating = r->nstreams;
        r->created = 0;
        for (int i = 0; i < r->nstreams; i++)
            db_redis_cmd(r->conn, group_cb, r, "XGROUP CREATE %s %s %s MKSTREAM", r->streams[i],
                         r->group, r->start);
        return;
    }
    int count = room < (size_t)r->count ? (int)room : r->count;
    const char *argv[9 + 2 * 2] = {"XREADGROUP", "GROUP", r->group, r->consumer, "COUNT",
                                   NULL, "BLOCK", NULL, "STREAMS"};
    char countbuf[16], blockbuf[16];
    snprintf(countbuf, sizeof countbuf, "%d", count);
    snprintf(blockbuf, sizeof blockbuf, "%d", DB_READER_BLOCK_MS);
    argv[5] = countbuf;
    argv[7] = blockbuf;
    int argc = 9;
    for (int i = 0; i < r->nstreams; i++) argv[argc++] = r->streams[i];
    for (int i = 0; i < r->nstreams; i++) argv[argc++] = ">";
    db_redis_cmd_argv(r->conn, read_cb, r, argc, argv, NULL);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    db_reader_more(arg);
}

void db_reader_group_created(struct db_reader *r, int status, const redisReply *reply)
{
    if (r && group_exists(status, reply)) r->ready = 1;
}

int db_reader_group_ready(const struct db_reader *r) { return r && r->ready; }

void db_reader_stop(struct db_reader *r)
{
    if (!r) return;
    r->stopped = 1;
    evtimer_del(r->retry_timer);
}

void db_reader_free(struct db_reader *r)
{
    if (!r) return;
    r->stopped = 1;
    db_redis_free(r->conn); /* a read in flight ends here, as DB_EAGAIN */
    if (r->retry_timer) event_free(r->retry_timer);
    free(r->who);
    free(r->what);
    free(r->group);
    free(r->consumer);
    free(r->start);
    free(r->streams[0]);
    free(r->streams[1]);
    free(r);
}

int db_reader_new(struct event_base *base, const struct db_reader_opts *o,
                  db_reader_room_fn room, db_reader_entries_fn entries, void *arg,
                  struct db_reader **out, struct db_err *e)
{
    *out = NULL;
    struct db_reader *r = calloc(1, sizeof *r);
    if (!r) return db_err_set(e, DB_ENOMEM, "out of memory");
    r->room = room;
    r->entries = entries;
    r->arg = arg;
    r->count = o->count > 0 ? o->count : 64;
    r->min_room = o->min_room < 1 ? 1 : o->min_room > r->count ? r->count : o->min_room;
    r->nstreams = o->streams[1] ? 2 : 1;
    r->who = strdup(o->who);
    r->what = strdup(o->what);
    r->group = strdup(o->group);
    r->consumer = strdup(o->consumer);
    r->start = strdup(o->start);
    r->streams[0] = strdup(o->streams[0]);
    r->streams[1] = o->streams[1] ? strdup(o->streams[1]) : NULL;
    r->retry_timer = evtimer_new(base, retry_cb, r);
    int rc = DB_OK;
    if (!r->who || !r->what || !r->group || !r->consumer || !r->start || !r->streams[0] ||
        (o->streams[1] && !r->streams[1]) || !r->retry_timer) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
    } else {
        struct db_redis_opts ro = {.url = o->redis_url,
                                   .command_timeout_ms =
                                       DB_READER_BLOCK_MS + o->redis_timeout_ms,
                                   .name = o->conn_name};
        rc = db_redis_new(base, &ro, &r->conn, e);
    }
    if (rc != DB_OK) {
        db_reader_free(r);
        return rc;
    }
    *out = r;
    return DB_OK;
}
