/* search.c - keeps the search index (search.h): a consumer group on P:events whose every read
 * is indexed and acknowledged by one run of console_index.lua. */
#include "console/search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/config.h"
#include "services/services.h"
#include "log/log.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "stream/reader.h"
#include "util/json.h"

#define READ_COUNT 64
#define MAX_INFLIGHT 2

struct db_search {
    struct db_services *svc;
    struct db_reader *reader;
    struct db_redis_script *script;
    struct event *claim_timer;
    char events[160];
    unsigned long inflight;
    int stopped;
};

/* The words of one event, '\n'-joined, without repeats next to each other. */
struct words {
    char *buf;
    size_t len, cap;
};

static void add_word(const char *w, size_t n, void *arg)
{
    struct words *b = arg;
    if (b->len + n + 2 > b->cap) {
        size_t cap = (b->cap + n + 2) * 2;
        char *grown = realloc(b->buf, cap);
        if (!grown) return; /* an index with a word less: only a missed hit */
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, w, n);
    b->len += n;
    b->buf[b->len++] = '\n';
    b->buf[b->len] = '\0';
}

/* Appends the five arguments of one entry to argv (strings owned by keep). */
static int entry_args(const redisReply *e, const char **argv, char **keep)
{
    const char *raw = NULL;
    const redisReply *f = e->element[1];
    for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
        if (f->element[k]->str && strcmp(f->element[k]->str, "event") == 0) raw = f->element[k + 1]->str;
    json_t *ev = raw ? json_loads(raw, 0, NULL) : NULL;
    const char *kind = db_json_str(ev, "kind"), *conv = db_json_str(ev, "conversation");
    const char *pl = db_json_str(ev, "platform"), *ac = db_json_str(ev, "account");
    struct words w = {0};
    char acct[192] = "", at[24] = "0";
    if (ev && kind && conv && pl && ac &&
        (strcmp(kind, "message") == 0 || strcmp(kind, "edit") == 0)) {
        json_t *sender = json_object_get(ev, "sender");
        db_search_words(db_json_str(ev, "text"), 0, add_word, &w);
        db_search_words(db_json_str(sender, "name"), 1, add_word, &w);
        db_search_words(db_json_str(sender, "username"), 1, add_word, &w);
        db_search_words(db_json_str(ev, "external_chat_id"), 0, add_word, &w);
        snprintf(acct, sizeof acct, "%s:%s", pl, ac);
        snprintf(at, sizeof at, "%lld", (long long)json_integer_value(json_object_get(ev, "received_at")));
    }
    keep[0] = strdup(acct);
    keep[1] = strdup(conv && w.len ? conv : "");
    keep[2] = strdup(at);
    keep[3] = w.buf ? w.buf : strdup("");
    json_decref(ev);
    argv[0] = e->element[0]->str;
    for (int i = 0; i < 4; i++)
        if (!keep[i]) return -1;
    argv[1] = keep[0], argv[2] = keep[1], argv[3] = keep[2], argv[4] = keep[3];
    return 0;
}

static void indexed_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_search *s = arg;
    s->inflight--;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        struct db_log_ctx ctx = {"search", NULL, NULL, NULL};
        /* Left pending: claimed again after claim_idle_ms. */
        db_log(DB_LOG_WARN, &ctx, "index not written: %s",
               reply && reply->str ? reply->str : errstr ? errstr : "error");
    }
    if (!s->stopped) db_reader_more(s->reader);
}

static void take_entries(struct db_search *s, const redisReply *list)
{
    if (!list || list->type != REDIS_REPLY_ARRAY || list->elements == 0) return;
    size_t n = list->elements;
    const char **argv = calloc(3 + 5 * n, sizeof *argv);
    char **keep = calloc(4 * n, sizeof *keep);
    char per[24];
    size_t argc = 3;
    if (!argv || !keep) goto done;
    snprintf(per, sizeof per, "%d", DB_SEARCH_PER_WORD);
    argv[0] = s->svc->cfg->cfg->prefix, argv[1] = DB_SEARCH_GROUP, argv[2] = per;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !e->element[0]->str) continue;
        if (entry_args(e, argv + argc, keep + 4 * i) != 0) goto done;
        argc += 5;
    }
    s->inflight++;
    db_redis_eval(s->svc->redis, s->script, indexed_cb, s, 0, NULL, (int)argc, argv, NULL);
done:
    for (size_t i = 0; keep && i < 4 * n; i++) free(keep[i]);
    free(keep);
    free(argv);
}

static size_t room_of(void *arg)
{
    struct db_search *s = arg;
    return s->inflight < MAX_INFLIGHT ? READ_COUNT : 0;
}

static void read_entries(const redisReply *const lists[2], void *arg)
{
    take_entries(arg, lists[0]);
}

static void group_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_search *s = arg;
    (void)errstr;
    s->inflight--;
    db_reader_group_created(s->reader, status, reply);
    db_reader_more(s->reader);
}

/* Entries a dead process left pending are indexed here. */
static void claim_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_search *s = arg;
    (void)errstr;
    s->inflight--;
    if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2)
        take_entries(s, reply->element[1]);
    struct timeval tv = {s->svc->cfg->cfg->claim_idle_ms / 2000 + 1, 0};
    if (!s->stopped) evtimer_add(s->claim_timer, &tv);
}

static void claim_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_search *s = arg;
    (void)fd, (void)what;
    if (s->stopped || !db_reader_group_ready(s->reader) || s->inflight >= MAX_INFLIGHT) {
        struct timeval tv = {1, 0};
        if (!s->stopped) evtimer_add(s->claim_timer, &tv);
        return;
    }
    s->inflight++;
    db_redis_cmd(s->svc->redis, claim_cb, s, "XAUTOCLAIM %s %s %s %d 0-0 COUNT %d", s->events,
                 DB_SEARCH_GROUP, s->svc->consumer, s->svc->cfg->cfg->claim_idle_ms, READ_COUNT);
}

int db_search_start(struct db_services *svc, struct db_search **out, struct db_err *e)
{
    const struct db_config *cfg = svc->cfg->cfg;
    *out = NULL;
    /* Only where the console is set up: the index costs Redis work for every message. */
    if (!db_config_section(cfg, "console", NULL)) return DB_OK;
    struct db_search *s = calloc(1, sizeof *s);
    if (!s) return db_err_set(e, DB_ENOMEM, "out of memory");
    s->svc = svc;
    db_key(s->events, sizeof s->events, cfg->prefix, DB_KEY_EVENTS);
    /* From the start of the stream: conversations written before the console was set up are
     * found too. */
    struct db_reader_opts ro = {.redis_url = cfg->redis_url,
                                .redis_timeout_ms = cfg->redis_timeout_ms,
                                .conn_name = "deskbridge-search",
                                .who = "search",
                                .what = "events",
                                .group = DB_SEARCH_GROUP,
                                .consumer = svc->consumer,
                                .streams = {s->events},
                                .start = "0",
                                .count = READ_COUNT};
    int rc = db_reader_new(svc->base, &ro, room_of, read_entries, s, &s->reader, e);
    if (rc != DB_OK) goto fail;
    s->script = db_redis_script_new(db_lua_console_index);
    s->claim_timer = evtimer_new(svc->base, claim_timer_cb, s);
    if (!s->script || !s->claim_timer) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    struct timeval claim = {1, 0};
    s->inflight++;
    db_redis_cmd(svc->redis, group_cb, s, "XGROUP CREATE %s %s 0 MKSTREAM", s->events,
                 DB_SEARCH_GROUP);
    evtimer_add(s->claim_timer, &claim);
    *out = s;
    return DB_OK;
fail:
    db_search_free(s);
    return rc;
}

void db_search_stop_reading(struct db_search *s)
{
    if (!s) return;
    s->stopped = 1;
    db_reader_stop(s->reader);
    evtimer_del(s->claim_timer);
}

unsigned long db_search_inflight(const struct db_search *s) { return s ? s->inflight : 0; }

void db_search_free(struct db_search *s)
{
    if (!s) return;
    s->stopped = 1;
    db_reader_free(s->reader);
    if (s->claim_timer) event_free(s->claim_timer);
    db_redis_script_free(s->script);
    free(s);
}
