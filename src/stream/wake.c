#include "stream/wake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "redis/redis.h"

#define ID_MAX 48

struct db_wake_watch {
    struct db_wake_watch *next;
    struct key *k;
    db_wake_fn cb;
    void *arg;
    int dead;
};

struct key {
    struct key *next;
    char *name;
    char last[ID_MAX]; /* newest entry seen ("$" until one is) */
    struct db_wake_watch *watchers;
};

struct db_wake {
    struct event_base *base;
    struct db_redis *conn, *main;
    struct key *keys;
    size_t nkeys;
    struct event *retry;
    char *kick;            /* a stream of this process only: an entry ends the read */
    char kick_last[ID_MAX];
    int reading;           /* an XREAD is out */
    int stale;             /* the watched set changed since that XREAD was sent */
    int calling;           /* inside watchers' callbacks: unwatch only marks */
    int freeing;
    int block_ms;
    unsigned long reads;
};

static void start_read(struct db_wake *w);

/* Drops keys without watchers and watches marked dead (never while calling back). */
static void sweep(struct db_wake *w)
{
    for (struct key **kp = &w->keys; *kp;) {
        struct key *k = *kp;
        for (struct db_wake_watch **hp = &k->watchers; *hp;) {
            struct db_wake_watch *h = *hp;
            if (h->dead) *hp = h->next, free(h);
            else hp = &h->next;
        }
        if (!k->watchers) {
            *kp = k->next;
            free(k->name);
            free(k);
            w->nkeys--;
            w->stale = 1;
        } else {
            kp = &k->next;
        }
    }
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    start_read(arg);
}

static void later(struct db_wake *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->retry, &tv);
}

static void read_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_wake *w = arg;
    (void)errstr;
    w->reading = 0;
    if (w->freeing) return;
    if (status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR) {
        /* Lost connection, or an UNBLOCK ... ERROR: read again soon (not from inside this
         * callback: a down connection answers at once). */
        later(w, status == DB_OK ? 0 : 200);
        return;
    }
    w->calling = 1;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *s = reply->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || !s->element[0]->str) continue;
        const redisReply *entries = s->element[1];
        if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) continue;
        const redisReply *newest = entries->element[entries->elements - 1];
        const char *newest_id = newest->type == REDIS_REPLY_ARRAY && newest->elements == 2
                                    ? newest->element[0]->str
                                    : NULL;
        if (strcmp(s->element[0]->str, w->kick) == 0) {
            if (newest_id) snprintf(w->kick_last, sizeof w->kick_last, "%s", newest_id);
            continue;
        }
        struct key *k = w->keys;
        while (k && strcmp(k->name, s->element[0]->str) != 0) k = k->next;
        if (!k) continue;
        if (newest_id) snprintf(k->last, sizeof k->last, "%s", newest_id);
        for (struct db_wake_watch *h = k->watchers; h; h = h->next)
            if (!h->dead) h->cb(k->name, entries, h->arg);
    }
    w->calling = 0;
    sweep(w);
    start_read(w);
}

static void start_read(struct db_wake *w)
{
    if (w->reading || w->freeing || !w->keys) return;
    size_t n = w->nkeys;
    const char **argv = malloc((8 + 2 * n) * sizeof *argv);
    if (!argv) {
        later(w, 200);
        return;
    }
    char block[16];
    snprintf(block, sizeof block, "%d", w->block_ms);
    int argc = 0;
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = "256";
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
    argv[argc++] = "STREAMS";
    argv[argc++] = w->kick;
    for (struct key *k = w->keys; k; k = k->next) argv[argc++] = k->name;
    argv[argc++] = w->kick_last;
    for (struct key *k = w->keys; k; k = k->next) argv[argc++] = k->last;
    w->reading = 1;
    w->stale = 0;
    w->reads++;
    db_redis_cmd_argv(w->conn, read_cb, w, argc, argv, NULL);
    free(argv);
}

/* The blocked read does not cover the new set: end it, so read_cb starts the next.  An entry
 * on the kick stream does it whether the read has reached Redis yet or not (CLIENT UNBLOCK
 * would miss a read still on its way, and that read would then block for a whole round). */
static void unblock(struct db_wake *w)
{
    if (!w->reading) return;
    const char *add[] = {"XADD", w->kick, "MAXLEN", "1", "*", "k", "1"};
    const char *expire[] = {"PEXPIRE", w->kick, "60000"};
    db_redis_cmd_argv(w->main, NULL, NULL, 7, add, NULL);
    db_redis_cmd_argv(w->main, NULL, NULL, 3, expire, NULL);
}

static void state_cb(int up, void *arg)
{
    struct db_wake *w = arg;
    if (up && !w->freeing) start_read(w);
}

int db_wake_new(struct event_base *base, const char *url, struct db_redis *main,
                const char *kick_key, int block_ms, int redis_timeout_ms, struct db_wake **out,
                struct db_err *e)
{
    struct db_wake *w = calloc(1, sizeof *w);
    if (!w || !(w->kick = strdup(kick_key))) {
        free(w);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    /* An explicit id, never "$": a kick written before the read arrives still ends it. */
    snprintf(w->kick_last, sizeof w->kick_last, "0-0");
    w->base = base;
    w->main = main;
    w->block_ms = block_ms > 0 ? block_ms : DB_WAKE_BLOCK_MS;
    w->retry = evtimer_new(base, retry_cb, w);
    struct db_redis_opts ro = {.url = url,
                               .command_timeout_ms = w->block_ms + redis_timeout_ms,
                               .name = "deskbridge-wake"};
    int rc = w->retry ? db_redis_new(base, &ro, &w->conn, e)
                      : db_err_set(e, DB_ENOMEM, "out of memory");
    if (rc != DB_OK) {
        if (w->retry) event_free(w->retry);
        free(w->kick);
        free(w);
        return rc;
    }
    db_redis_set_state_cb(w->conn, state_cb, w);
    *out = w;
    return DB_OK;
}

void db_wake_free(struct db_wake *w)
{
    if (!w) return;
    w->freeing = 1;
    db_redis_free(w->conn); /* answers the read out with an error: read_cb returns at once */
    event_free(w->retry);
    while (w->keys) {
        struct key *k = w->keys;
        w->keys = k->next;
        while (k->watchers) {
            struct db_wake_watch *h = k->watchers;
            k->watchers = h->next;
            free(h);
        }
        free(k->name);
        free(k);
    }
    free(w->kick);
    free(w);
}

/* 1 when id a is newer than b ("$" is never newer; anything is newer than "$"). */
static int newer(const char *a, const char *b)
{
    if (strcmp(a, "$") == 0) return 0;
    if (strcmp(b, "$") == 0) return 1;
    unsigned long long ams = 0, aseq = 0, bms = 0, bseq = 0;
    sscanf(a, "%llu-%llu", &ams, &aseq);
    sscanf(b, "%llu-%llu", &bms, &bseq);
    return ams > bms || (ams == bms && aseq > bseq);
}

struct db_wake_watch *db_wake_watch(struct db_wake *w, const char *key, const char *from_id,
                                    db_wake_fn cb, void *arg)
{
    const char *from = from_id && *from_id && strlen(from_id) < ID_MAX ? from_id : "$";
    struct key *k = w->keys;
    while (k && strcmp(k->name, key) != 0) k = k->next;
    struct db_wake_watch *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k || !(k->name = strdup(key))) {
            free(k);
            free(h);
            return NULL;
        }
        snprintf(k->last, sizeof k->last, "%s", from);
        k->next = w->keys;
        w->keys = k;
        w->nkeys++;
        w->stale = 1;
    } else if (newer(from, k->last)) {
        snprintf(k->last, sizeof k->last, "%s", from);
    }
    *h = (struct db_wake_watch){.next = k->watchers, .k = k, .cb = cb, .arg = arg};
    k->watchers = h;
    if (!w->reading) start_read(w);
    else if (w->stale) unblock(w);
    return h;
}

void db_wake_unwatch(struct db_wake_watch *h)
{
    if (!h) return;
    /* Only marked: the key stays in the blocked read until it ends (harmless), and the watch
     * is swept then, never while callbacks run. */
    h->dead = 1;
    h->cb = NULL;
}

size_t db_wake_keys(const struct db_wake *w)
{
    return w ? w->nkeys : 0;
}

unsigned long db_wake_reads(const struct db_wake *w)
{
    return w ? w->reads : 0;
}
