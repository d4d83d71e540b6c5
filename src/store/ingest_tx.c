/* ingest_tx.c - plain webhooks in one MULTI/EXEC (see ingest_tx.h).
 *
 * Two round trips per run on the module's own connection (WATCH lives on a connection, and
 * the shared one carries every other module's commands).  First: WATCH the dedupe keys and
 * read them (MGET, and EXISTS to tell a key of another type from none), then the same for
 * the customer keys.  The module then decides in C what ingest_plain.lua would decide for
 * the same answers, webhook after webhook: which events are new and what each customer
 * record becomes.  Second: MULTI, the writes, EXEC.  A watched key changed in between aborts
 * the EXEC, and every webhook of the run goes to the script. */
#include "store/ingest_tx.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "redis/redis.h"
#include "util/hash.h"
#include "util/join.h"

/* Webhooks per run: a run is one transaction, which Redis runs without serving anyone else. */
#define MAX_ITEMS 256

struct waiting {
    struct db_ingest_tx_item item;
    db_ingest_tx_done_fn done;
    void *arg;
    struct waiting *next;
};

/* A string of an item's arguments. */
struct str {
    const char *s;
    size_t l;
};

struct run {
    struct db_ingest_tx *t;
    struct waiting **items; /* owned, in arrival order */
    size_t nitems;
    long long *written;     /* per item */
    /* the dedupe keys of every event, each with its item and stored JSON */
    struct str *dk, *text;
    size_t *dk_item, ndk;
    /* the customer messages: key, message id, time, and the ttl of their item */
    struct str *ck, *cid, *cts, *cttl;
    size_t nck;
    char *dk_taken;         /* per dedupe key: found (MGET answered a value), or, once decided,
                               also a key an earlier event of the run has */
    char **ck_val;          /* per customer key: the record found, owned; NULL = none */
    long long exists_d, exists_c;
    int ddb, mdb;           /* -1: the dedupe keys are in the connection's database */
    /* the first round: what each answer is, in the order asked */
    int role[8];
    size_t answers, answered;
    int failed;
};

enum { R_NONE, R_MGET_D, R_EXISTS_D, R_MGET_C, R_EXISTS_C };

struct db_ingest_tx {
    struct db_redis *r;
    struct waiting *head, **tail; /* given while a run was in its first round */
    struct run *busy;             /* the run in its first round, NULL = none */
    int freeing;
};

static void start_run(struct db_ingest_tx *t);

/* ---- the run's end ---- */

static void run_free(struct run *run)
{
    for (size_t i = 0; i < run->nitems; i++) free(run->items[i]);
    for (size_t i = 0; run->ck_val && i < run->nck; i++) free(run->ck_val[i]);
    free(run->items);
    free(run->ck_val);
    free(run->dk_taken);
    free(run->written);
    free(run->dk);
    free(run->text);
    free(run->dk_item);
    free(run->ck);
    free(run->cid);
    free(run->cts);
    free(run->cttl);
    free(run);
}

/* Answers every item (applied, or 0: left to the script) and frees the run. */
static void run_end(struct run *run, int applied)
{
    if (run->t->busy == run) run->t->busy = NULL;
    for (size_t i = 0; i < run->nitems; i++) {
        struct waiting *w = run->items[i];
        w->done(applied, applied ? run->written[i] : 0, w->arg);
    }
    run_free(run);
}

/* ---- deciding ---- */

/* first[i] = the lowest j with k[j] equal to k[i].  -1 without memory. */
static int firsts(const struct str *k, size_t n, size_t *first)
{
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    size_t *slot = malloc(cap * sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < cap; i++) slot[i] = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t s = (size_t)db_hash_bytes(DB_HASH_SEED, k[i].s, k[i].l) & (cap - 1);
        while (slot[s] != (size_t)-1 &&
               (k[slot[s]].l != k[i].l || memcmp(k[slot[s]].s, k[i].s, k[i].l) != 0))
            s = (s + 1) & (cap - 1);
        if (slot[s] == (size_t)-1) slot[s] = i;
        first[i] = slot[s];
    }
    free(slot);
    return 0;
}

/* A whole number of at most 15 digits, as Lua's tonumber reads it exactly: 1 and *v, else 0. */
static int small_int(const char *s, size_t l, long long *v)
{
    size_t i = l && s[0] == '-' ? 1 : 0;
    if (l == i || l - i > 15) return 0;
    long long x = 0;
    for (; i < l; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = s[0] == '-' ? -x : x;
    return 1;
}

/* customer_seen.lua's time of a record, tonumber(string.match(old, '^(%S+) ')) or -1: 1 and
 * *v, or 0 for a first word Lua might read another way (the script decides then). */
static int record_time(const char *rec, long long *v)
{
    size_t w = 0;
    while (rec[w] && rec[w] != ' ' && rec[w] != '\t' && rec[w] != '\n' && rec[w] != '\r' &&
           rec[w] != '\f' && rec[w] != '\v')
        w++;
    if (w == 0 || rec[w] != ' ') {
        *v = -1; /* no match: the script takes -1 */
        return 1;
    }
    return small_int(rec, w, v);
}

/* The arguments of the transaction's commands, each command built and sent at once. */
struct cmd {
    const char *v[8];
    size_t l[8];
    int n;
};

static void put(struct cmd *c, const char *s, size_t l)
{
    c->v[c->n] = s;
    c->l[c->n++] = l;
}

static void send(struct db_ingest_tx *t, struct cmd *c, db_redis_cb cb, void *arg)
{
    db_redis_cmd_argv(t->r, cb, arg, c->n, c->v, c->l);
    c->n = 0;
}

static void exec_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct run *run = arg;
    /* Not run (a watched key changed, refused, or unknown): the script finds whatever this
     * transaction wrote as dedupe hits. */
    struct db_log_ctx ctx = {"store", NULL, NULL, NULL};
    run_end(run, db_redis_exec_ran(status, reply, errstr, &ctx, "plain webhooks"));
}

/* What the script would write, from the first round's answers: run->written per item and
 * the customer records, one per distinct key (at the index of its first message; NULL
 * elsewhere), malloc'd, each freed by the caller.  NULL when the script must decide or
 * without memory. */
static char **plan(struct run *run, const size_t *dfirst, const size_t *cfirst)
{
    long long have_d = 0, have_c = 0;
    for (size_t i = 0; i < run->ndk; i++) have_d += run->dk_taken[i];
    for (size_t i = 0; i < run->nck; i++) have_c += run->ck_val[i] != NULL;
    /* More keys exist than have a string value: one is of another type (SET NX would find it
     * taken; customer_seen.lua reads a hash of the earlier layout its own way). */
    if (have_d != run->exists_d || have_c != run->exists_c) return NULL;
    char **val = calloc(run->nck + 1, sizeof *val);
    if (!val) return NULL;
    /* dedupe.lua: new is a key not found and not taken by an earlier event of the run */
    for (size_t i = 0; i < run->ndk; i++) {
        run->dk_taken[i] |= dfirst[i] != i;
        if (!run->dk_taken[i]) run->written[run->dk_item[i]]++;
    }
    /* customer_seen.lua, message after message: the record becomes "<time> <id>" unless the
     * one kept is newer */
    int bad = 0;
    for (size_t i = 0; i < run->nck && !bad; i++) {
        size_t f = cfirst[i];
        long long ts, old = -1;
        if (f == i && run->ck_val[i] && !(val[f] = strdup(run->ck_val[i]))) bad = 1;
        else if (!small_int(run->cts[i].s, run->cts[i].l, &ts)) bad = 1;
        else if (val[f] && !record_time(val[f], &old)) bad = 1;
        if (bad || (val[f] && ts < old)) continue;
        char *rec = malloc(run->cts[i].l + run->cid[i].l + 2);
        if (!rec) {
            bad = 1;
            continue;
        }
        memcpy(rec, run->cts[i].s, run->cts[i].l);
        rec[run->cts[i].l] = ' ';
        memcpy(rec + run->cts[i].l + 1, run->cid[i].s, run->cid[i].l);
        rec[run->cts[i].l + 1 + run->cid[i].l] = '\0';
        free(val[f]);
        val[f] = rec;
    }
    if (bad) {
        for (size_t i = 0; i < run->nck; i++) free(val[i]);
        free(val);
        return NULL;
    }
    return val;
}

/* The writes: MULTI, the new dedupe keys (in their database), the new events, the customer
 * records, EXEC. */
static void write_all(struct run *run, char **val)
{
    struct db_ingest_tx *t = run->t;
    struct cmd c = {.n = 0};
    char ddb[DB_LL_MAX], mdb[DB_LL_MAX];
    db_fmt_ll(ddb, run->ddb);
    db_fmt_ll(mdb, run->mdb);
    put(&c, "MULTI", 5), send(t, &c, NULL, NULL);
    if (run->ddb >= 0) put(&c, "SELECT", 6), put(&c, ddb, strlen(ddb)), send(t, &c, NULL, NULL);
    for (size_t i = 0; i < run->ndk; i++) {
        if (run->dk_taken[i]) continue;
        const struct db_ingest_tx_item *it = &run->items[run->dk_item[i]]->item;
        put(&c, "SET", 3), put(&c, run->dk[i].s, run->dk[i].l), put(&c, "1", 1);
        put(&c, "NX", 2), put(&c, "EX", 2), put(&c, it->v[0], it->l[0]);
        send(t, &c, NULL, NULL);
    }
    if (run->ddb >= 0) put(&c, "SELECT", 6), put(&c, mdb, strlen(mdb)), send(t, &c, NULL, NULL);
    /* No MAXLEN, as in the script: stream_trim.lua trims, sparing what a group has not read. */
    for (size_t i = 0; i < run->ndk; i++) {
        if (run->dk_taken[i]) continue;
        const struct db_ingest_tx_item *it = &run->items[run->dk_item[i]]->item;
        put(&c, "XADD", 4), put(&c, it->v[1], it->l[1]), put(&c, "*", 1);
        put(&c, "event", 5), put(&c, run->text[i].s, run->text[i].l);
        send(t, &c, NULL, NULL);
    }
    for (size_t i = 0; i < run->nck; i++) {
        if (!val[i]) continue;
        put(&c, "SET", 3), put(&c, run->ck[i].s, run->ck[i].l);
        put(&c, val[i], strlen(val[i])), put(&c, "EX", 2), put(&c, run->cttl[i].s, run->cttl[i].l);
        send(t, &c, NULL, NULL);
    }
    put(&c, "EXEC", 4), send(t, &c, exec_cb, run);
}

static void decide(struct run *run)
{
    struct db_ingest_tx *t = run->t;
    /* The next run may start once this one's EXEC (or UNWATCH) is sent: its WATCH reaches
     * Redis after it. */
    t->busy = NULL;
    size_t *dfirst = malloc((run->ndk + 1) * sizeof *dfirst);
    size_t *cfirst = malloc((run->nck + 1) * sizeof *cfirst);
    char **val = NULL;
    size_t nck = run->nck;
    if (!run->failed && !t->freeing && db_redis_is_up(t->r) && dfirst && cfirst &&
        !firsts(run->dk, run->ndk, dfirst) && !firsts(run->ck, run->nck, cfirst))
        val = plan(run, dfirst, cfirst);
    size_t writes = 0;
    for (size_t i = 0; val && i < run->ndk; i++) writes += !run->dk_taken[i];
    for (size_t i = 0; val && i < run->nck; i++) writes += val[i] != NULL;
    if (!val || !writes) {
        /* Nothing to write (every event a redelivery, no customer) needs no transaction. */
        if (!t->freeing) db_redis_cmd(t->r, NULL, NULL, "UNWATCH");
        run_end(run, val != NULL);
    } else {
        write_all(run, val);
    }
    /* run may be gone by now (answered, or EXEC failed at once on a lost connection) */
    for (size_t i = 0; val && i < nck; i++) free(val[i]);
    free(val);
    free(dfirst);
    free(cfirst);
    if (!t->busy && t->head && !t->freeing) start_run(t);
}

/* ---- the first round ---- */

static void first_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct run *run = arg;
    (void)errstr;
    size_t k = run->answered++;
    int role = k < 8 ? run->role[k] : R_NONE;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        run->failed = 1;
    } else if (role == R_MGET_D || role == R_MGET_C) {
        size_t n = role == R_MGET_D ? run->ndk : run->nck;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) run->failed = 1;
        for (size_t i = 0; !run->failed && i < n; i++) {
            const redisReply *x = reply->element[i];
            if (role == R_MGET_D) run->dk_taken[i] = x->type == REDIS_REPLY_STRING;
            else if (x->type == REDIS_REPLY_STRING &&
                     !(run->ck_val[i] = strndup(x->str, x->len)))
                run->failed = 1;
        }
    } else if (role == R_EXISTS_D || role == R_EXISTS_C) {
        if (reply->type != REDIS_REPLY_INTEGER) run->failed = 1;
        else if (role == R_EXISTS_D) run->exists_d = reply->integer;
        else run->exists_c = reply->integer;
    }
    if (--run->answers == 0) decide(run);
}

/* Sends name followed by every key of k[0..n). */
static void ask_keys(struct run *run, const char *name, const struct str *k, size_t n)
{
    const char **av = malloc((n + 1) * sizeof *av);
    size_t *al = av ? malloc((n + 1) * sizeof *al) : NULL;
    if (!al) {
        free(av);
        run->failed = 1;
        /* the answer counted for this command still has to come */
        db_redis_cmd(run->t->r, first_cb, run, "PING");
        return;
    }
    av[0] = name, al[0] = strlen(name);
    for (size_t i = 0; i < n; i++) av[1 + i] = k[i].s, al[1 + i] = k[i].l;
    db_redis_cmd_argv(run->t->r, first_cb, run, (int)(n + 1), av, al);
    free(av);
    free(al);
}

/* The dedupe spec (dedupe.lua): 1 with the databases (-1 when ''), 0 when the script must
 * decide: the main database's keys still count, or a spec of another shape. */
static int spec_dbs(const struct db_ingest_tx_item *it, int *ddb, int *mdb)
{
    const char *p = it->v[2], *end = p + it->l[2];
    if (p == end) {
        *ddb = *mdb = -1;
        return 1;
    }
    /* store.c writes "<dedupe db> <main db> <0|1>", each a plain number */
    int *out[2] = {ddb, mdb};
    for (int k = 0; k < 2; k++) {
        long long v = 0;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9' && v <= INT_MAX) v = v * 10 + (*p++ - '0');
        if (p == d || v > INT_MAX || p == end || *p++ != ' ') return 0;
        *out[k] = (int)v;
    }
    return end - p == 1 && *p == '0';
}

/* Counts the item's events and customer messages: 1, or 0 for arguments of another layout. */
static int shape(const struct db_ingest_tx_item *it, size_t *nev, size_t *ncust)
{
    size_t i = 3;
    if (it->n < 3) return 0;
    while (i < it->n && it->l[i]) i += 2;
    if (i > it->n) return 0; /* a dedupe key without its event */
    *nev = (i - 3) / 2;
    *ncust = 0;
    if (i == it->n) return 1;
    if (it->n < i + 2 || (it->n - i - 2) % 3) return 0;
    *ncust = (it->n - i - 2) / 3;
    return 1;
}

static void run_add(struct run *run, struct waiting *w)
{
    const struct db_ingest_tx_item *it = &w->item;
    size_t item = run->nitems++, i = 3;
    run->items[item] = w;
    for (; i < it->n && it->l[i]; i += 2, run->ndk++) {
        run->dk[run->ndk] = (struct str){it->v[i], it->l[i]};
        run->text[run->ndk] = (struct str){it->v[i + 1], it->l[i + 1]};
        run->dk_item[run->ndk] = item;
    }
    if (i == it->n) return;
    struct str ttl = {it->v[i + 1], it->l[i + 1]};
    for (size_t j = i + 2; j + 2 < it->n; j += 3, run->nck++) {
        run->ck[run->nck] = (struct str){it->v[j], it->l[j]};
        run->cid[run->nck] = (struct str){it->v[j + 1], it->l[j + 1]};
        run->cts[run->nck] = (struct str){it->v[j + 2], it->l[j + 2]};
        run->cttl[run->nck] = ttl;
    }
}

/* Starts a run of the waiting items (up to MAX_ITEMS).  Items the script must decide are
 * answered done(0) at once. */
static void start_run(struct db_ingest_tx *t)
{
    struct run *run = calloc(1, sizeof *run);
    size_t nitems = 0, ndk = 0, nck = 0;
    int ddb = -1, mdb = -1;
    struct waiting *taken = NULL, **tail = &taken;
    /* Take the items; the first decides the databases, another one goes to the script. */
    while (t->head && nitems < MAX_ITEMS) {
        struct waiting *w = t->head;
        t->head = w->next;
        if (!t->head) t->tail = &t->head;
        w->next = NULL;
        size_t nev, ncust;
        int d, m;
        if (!run || !shape(&w->item, &nev, &ncust) || !nev || !spec_dbs(&w->item, &d, &m) ||
            (nitems && (d != ddb || m != mdb))) {
            w->done(0, 0, w->arg);
            free(w);
            continue;
        }
        ddb = d, mdb = m;
        nitems++, ndk += nev, nck += ncust;
        *tail = w, tail = &w->next;
    }
    if (!nitems) {
        free(run);
        return;
    }
    run->t = t;
    run->ddb = ddb, run->mdb = mdb;
    run->items = malloc(nitems * sizeof *run->items);
    run->written = calloc(nitems, sizeof *run->written);
    run->dk = malloc((ndk + 1) * sizeof *run->dk);
    run->text = malloc((ndk + 1) * sizeof *run->text);
    run->dk_item = malloc((ndk + 1) * sizeof *run->dk_item);
    run->dk_taken = calloc(ndk + 1, 1);
    run->ck = malloc((nck + 1) * sizeof *run->ck);
    run->cid = malloc((nck + 1) * sizeof *run->cid);
    run->cts = malloc((nck + 1) * sizeof *run->cts);
    run->cttl = malloc((nck + 1) * sizeof *run->cttl);
    run->ck_val = calloc(nck + 1, sizeof *run->ck_val);
    if (!run->items || !run->written || !run->dk || !run->text || !run->dk_item ||
        !run->dk_taken || !run->ck || !run->cid || !run->cts || !run->cttl || !run->ck_val) {
        /* Answer the items taken, then the run's arrays go (run_end frees only what it owns) */
        while (taken) {
            struct waiting *w = taken;
            taken = w->next;
            w->done(0, 0, w->arg);
            free(w);
        }
        run_free(run);
        return;
    }
    while (taken) {
        struct waiting *w = taken;
        taken = w->next;
        run_add(run, w);
    }
    /* Every answer is counted before the first command goes: with the connection down a
     * command is answered before db_redis_cmd_argv returns. */
    size_t n = 0;
    if (ddb >= 0) run->role[n++] = R_NONE;
    run->role[n++] = R_NONE, run->role[n++] = R_MGET_D, run->role[n++] = R_EXISTS_D;
    if (ddb >= 0) run->role[n++] = R_NONE;
    if (run->nck) run->role[n++] = R_NONE, run->role[n++] = R_MGET_C, run->role[n++] = R_EXISTS_C;
    run->answers = n;
    t->busy = run;
    /* run may be answered and freed by the last of these commands (a lost connection answers
     * each at once): nothing of it is read after that one */
    const struct str *dk = run->dk, *ck = run->ck;
    char db[DB_LL_MAX];
    const char *sel[2] = {"SELECT", db};
    if (ddb >= 0) db_fmt_ll(db, ddb), db_redis_cmd_argv(t->r, first_cb, run, 2, sel, NULL);
    ask_keys(run, "WATCH", dk, ndk);
    ask_keys(run, "MGET", dk, ndk);
    ask_keys(run, "EXISTS", dk, ndk);
    if (ddb >= 0) db_fmt_ll(db, mdb), db_redis_cmd_argv(t->r, first_cb, run, 2, sel, NULL);
    if (nck) {
        ask_keys(run, "WATCH", ck, nck);
        ask_keys(run, "MGET", ck, nck);
        ask_keys(run, "EXISTS", ck, nck);
    }
}

void db_ingest_tx_apply(struct db_ingest_tx *t, const struct db_ingest_tx_item *item,
                        db_ingest_tx_done_fn done, void *arg)
{
    struct waiting *w = db_ingest_tx_up(t) ? calloc(1, sizeof *w) : NULL;
    if (!w) {
        done(0, 0, arg);
        return;
    }
    *w = (struct waiting){.item = *item, .done = done, .arg = arg};
    *t->tail = w;
    t->tail = &w->next;
    if (!t->busy) start_run(t);
}

int db_ingest_tx_up(const struct db_ingest_tx *t)
{
    return t && !t->freeing && db_redis_is_up(t->r);
}

int db_ingest_tx_new(struct event_base *base, const struct db_redis_opts *opts,
                     struct db_ingest_tx **out, struct db_err *e)
{
    struct db_ingest_tx *t = calloc(1, sizeof *t);
    if (!t) return db_err_set(e, DB_ENOMEM, "out of memory");
    t->tail = &t->head;
    struct db_redis_opts ro = *opts;
    ro.name = "deskbridge-ingest-tx";
    int rc = db_redis_new(base, &ro, &t->r, e);
    if (rc != DB_OK) {
        free(t);
        return rc;
    }
    *out = t;
    return DB_OK;
}

void db_ingest_tx_free(struct db_ingest_tx *t)
{
    if (!t) return;
    t->freeing = 1;
    /* A run in flight is answered (DB_EAGAIN, so done(0)) by the connection's free. */
    db_redis_free(t->r);
    while (t->head) {
        struct waiting *w = t->head;
        t->head = w->next;
        w->done(0, 0, w->arg);
        free(w);
    }
    free(t);
}
