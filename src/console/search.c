/* search.c - keeps the search index (search.h): a member of the group deskbridge-search on
 * P:events (the one consumer, stream/consumer.h) whose every read is indexed and acknowledged
 * by one run of console_index.lua; entries a dead process left are claimed and indexed the
 * same way. */
#include "console/search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "services/services.h"
#include "log/log.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "stream/consumer.h"
#include "util/json.h"

#define READ_COUNT 64

struct run;

struct db_search {
    struct db_services *svc;
    struct db_consumer *consumer;
    struct db_redis_script *script;
    struct run *batch; /* the entries of the read being handed over */
    char events[160], dead[160];
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

/* The five arguments of one entry (entry id, account, conversation, time, words), each
 * malloc'd into out; 0, or -1 when out of memory. */
static int entry_args(const redisReply *e, char *out[5])
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
    out[0] = strdup(e->element[0]->str);
    out[1] = strdup(acct);
    out[2] = strdup(conv && w.len ? conv : "");
    out[3] = strdup(at);
    out[4] = w.buf ? w.buf : strdup("");
    json_decref(ev);
    for (int i = 0; i < 5; i++)
        if (!out[i]) return -1;
    return 0;
}

/* The entries of one read, indexed by one script run. */
struct run {
    struct db_search *s;
    char **args; /* 5 per entry */
    size_t n, cap;
};

static void run_free(struct run *r)
{
    for (size_t i = 0; i < 5 * r->n; i++) free(r->args[i]);
    free(r->args);
    free(r);
}

static void indexed_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct run *r = arg;
    struct db_search *s = r->s;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        struct db_log_ctx ctx = {"search", NULL, NULL, NULL};
        /* Left pending: claimed again after claim_idle_ms. */
        db_log(DB_LOG_WARN, &ctx, "index not written: %s",
               reply && reply->str ? reply->str : errstr ? errstr : "error");
    }
    for (size_t i = 0; i < r->n; i++) db_consumer_release(s->consumer, 0, r->args[5 * i]);
    s->inflight--;
    run_free(r);
}

static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct db_search *s = arg;
    (void)stream, (void)claimed;
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || !entry->element[0]->str)
        return 0;
    if (!s->batch && !(s->batch = calloc(1, sizeof *s->batch))) return 0;
    struct run *r = s->batch;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        char **grown = realloc(r->args, 5 * cap * sizeof *grown);
        if (!grown) return 0;
        r->args = grown;
        r->cap = cap;
    }
    char **out = r->args + 5 * r->n;
    if (entry_args(entry, out) != 0) {
        for (int i = 0; i < 5; i++) free(out[i]);
        return 0; /* left pending: a later claim tries again */
    }
    r->n++;
    return 1;
}

/* After a read or claim: one script run for all its entries. */
static void batch_done(int whole, void *arg)
{
    (void)whole;
    struct db_search *s = arg;
    struct run *r = s->batch;
    s->batch = NULL;
    if (!r) return;
    if (r->n == 0) {
        run_free(r);
        return;
    }
    const char **argv = malloc((3 + 5 * r->n) * sizeof *argv);
    if (!argv) {
        for (size_t i = 0; i < r->n; i++) db_consumer_release(s->consumer, 0, r->args[5 * i]);
        run_free(r);
        return;
    }
    char per[24];
    snprintf(per, sizeof per, "%d", DB_SEARCH_PER_WORD);
    argv[0] = s->svc->cfg->cfg->prefix, argv[1] = DB_SEARCH_GROUP, argv[2] = per;
    for (size_t i = 0; i < 5 * r->n; i++) argv[3 + i] = r->args[i];
    r->s = s;
    s->inflight++;
    db_redis_eval(s->svc->redis, s->script, indexed_cb, r, 0, NULL, (int)(3 + 5 * r->n), argv, NULL);
    free(argv);
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
    db_key(s->dead, sizeof s->dead, cfg->prefix, DB_KEY_DEAD);
    /* From the start of the stream: conversations written before the console was set up are
     * found too. */
    struct db_consumer_opts co = {.redis = svc->redis,
                                  .metrics = svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-search",
                                  .who = "search",
                                  .what = "events",
                                  .group = DB_SEARCH_GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {s->events},
                                  .labels = {"events"},
                                  .dead_key = s->dead,
                                  .start = "0",
                                  .count = READ_COUNT,
                                  .max_held = 2 * READ_COUNT,
                                  .claim_idle_ms = cfg->claim_idle_ms,
                                  .max_deliveries = 10};
    int rc = db_consumer_new(svc->base, &co, take_entry, batch_done, s, &s->consumer, e);
    if (rc != DB_OK) goto fail;
    s->script = db_redis_script_new(db_lua_console_index);
    if (!s->script) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    db_consumer_start(s->consumer);
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
    db_consumer_stop(s->consumer);
}

unsigned long db_search_inflight(const struct db_search *s)
{
    return s ? s->inflight + db_consumer_busy(s->consumer) : 0;
}

void db_search_free(struct db_search *s)
{
    if (!s) return;
    s->stopped = 1;
    db_consumer_free(s->consumer);
    if (s->batch) run_free(s->batch);
    db_redis_script_free(s->script);
    free(s);
}
