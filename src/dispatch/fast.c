/* fast.c - the dispatcher's plain updates in one MULTI/EXEC (see fast.h).
 *
 * Two round trips per run on the module's own connection (WATCH lives on a connection, and
 * the shared one carries every other module's commands): first WATCH, each conversation's
 * fields (HMGET) and the group's pending entries up to the last event; then, when every event
 * qualifies, MULTI, the writes, one XACK and EXEC.  Otherwise UNWATCH, and the caller runs
 * the script. */
#include "dispatch/fast.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "log/log.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "util/hash.h"
#include "util/join.h"
#include "util/parse.h"

/* dispatch.lua's HISTORY and SLACK: a history is cut back to its last 1,000 items once it
 * holds 100 more.  Here the cut follows the transaction, on the RPUSH's answer (readers take
 * the last 1,000 items whatever the length; a cut missed by a crash is made by the next push). */
#define HISTORY 1000
#define SLACK 100
/* The fields op_event reads first (dispatch.lua's STL), in its order. */
enum { F_STATE, F_PRIORITY, F_QUEUED_AT, F_AGENT, F_FIRST, F_UNREAD, F_LAST, NF };
static const char *const stl[NF] = {"state", "priority", "queued_at", "agent",
                                    "first_message_at", "unread", "last_entry"};

struct conv {
    const char *id; /* borrowed from an event */
    char *key, *items;
    char *f[NF];    /* owned copies of the answers; NULL = no such field */
    int cut;        /* its history was cut after this run's transaction */
    uint64_t hash;  /* of id */
    int prof_known; /* the profile stored is the pairs hashed in prof */
    uint64_t prof;
};

/* What this process last wrote of a conversation's profile.  Most events repeat the profile
 * their conversation has, and an HSET field costs Redis its parsing, its lookup in the hash
 * and its bytes in the AOF whether or not the value changes.  The profile stored is the one
 * written here while the conversation's last_entry is still the entry this process left:
 * every write of a conversation's profile (here or dispatch.lua) also moves last_entry on. */
struct written {
    uint64_t conv;  /* hash of the conversation id; 0 = an empty slot */
    uint64_t entry; /* hash of the last_entry that write left */
    uint64_t prof;  /* hash of the profile's field/value pairs, in order */
};
#define WRITTEN_SLOTS 16384 /* 384 KiB at most, touched as conversations come */

/* What an event makes of its conversation, kept for the command arguments. */
struct plan {
    size_t rpush;   /* the index of its RPUSH in the transaction's commands */
    char unread[DB_LL_MAX];
    char *inbox; /* owned: the assigned agent's inbox key, NULL = none */
};

struct run {
    struct db_dispatch_fast *f;
    size_t n;
    const struct db_fast_event *ev;
    struct conv *conv;
    size_t nconv;
    size_t *conv_of;   /* event -> its conversation */
    struct plan *plan;
    size_t answers;    /* answers still to come of the first round */
    size_t answered;   /* answers of the first round so far (they come in order) */
    int failed;        /* some answer of the first round was unusable */
    db_fast_done_fn done;
    void *arg;
};

struct db_dispatch_fast {
    struct db_redis *r;
    char *prefix;
    char events[160];
    struct run *busy; /* the run in its first round, NULL = none */
    struct written *written; /* WRITTEN_SLOTS, allocated at first use; NULL = none yet */
    int freeing;
    db_fast_ready_fn ready;
    void *ready_arg;
};

/* ---- keys ---- */

/* db_key_tagged's key followed by tail, malloc'd (caller frees; conversation ids have no
 * length limit a fixed buffer could rely on), NULL without memory. */
static char *tagged(const char *prefix, const char *suffix, const char *id, const char *tail)
{
    size_t n = strlen(prefix) + strlen(suffix) + strlen(id) + 6, t = strlen(tail);
    char *k = malloc(n + t);
    if (!k) return NULL;
    db_key_tagged(k, n, prefix, suffix, id);
    memcpy(k + strlen(k), tail, t + 1);
    return k;
}

/* ---- the run's end ---- */

static void run_free(struct run *run)
{
    for (size_t i = 0; i < run->nconv; i++) {
        free(run->conv[i].key);
        free(run->conv[i].items);
        for (int k = 0; k < NF; k++) free(run->conv[i].f[k]);
    }
    for (size_t i = 0; run->plan && i < run->n; i++) free(run->plan[i].inbox);
    free(run->conv);
    free(run->conv_of);
    free(run->plan);
    free(run);
}

static void run_end(struct run *run, int applied)
{
    db_fast_done_fn done = run->done;
    void *arg = run->arg;
    if (run->f->busy == run) run->f->busy = NULL;
    run_free(run);
    done(applied, arg);
}

/* ---- deciding ---- */

/* dispatch.lua's PRIO; -1 for a name it does not know. */
static int prio_rank(const char *p)
{
    static const char *const names[] = {"low", "normal", "high", "urgent"};
    for (int i = 0; i < 4; i++)
        if (strcmp(p, names[i]) == 0) return i;
    return -1;
}

/* A whole number of at most max digits without a leading zero: the script's plain case. */
static int plain_digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] < '1' || s[0] > '9') return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int is_activity(const char *kind)
{
    return strcmp(kind, "message") == 0 || strcmp(kind, "edit") == 0 ||
           strcmp(kind, "callback") == 0 || strcmp(kind, "reaction") == 0;
}

/* The profile pairs of an event (v[12...]), each argument with its length. */
static uint64_t profile_hash(const struct db_fast_event *e)
{
    uint64_t h = DB_HASH_SEED;
    for (int k = 12; k < e->n; k++) {
        uint64_t len = e->l[k];
        h = db_hash_bytes(db_hash_bytes(h, &len, sizeof len), e->v[k], e->l[k]);
    }
    return h;
}

static struct written *written_slot(const struct db_dispatch_fast *f, uint64_t conv)
{
    return f->written ? &f->written[conv & (WRITTEN_SLOTS - 1)] : NULL;
}

/* Before planning: which conversations still hold the profile this process wrote last. */
static void profiles_known(struct run *run)
{
    for (size_t i = 0; i < run->nconv; i++) {
        struct conv *cv = &run->conv[i];
        const struct written *w = written_slot(run->f, cv->hash);
        if (w && w->conv == cv->hash && cv->f[F_LAST] &&
            w->entry == db_hash_str(DB_HASH_SEED, cv->f[F_LAST]))
            cv->prof_known = 1, cv->prof = w->prof;
    }
}

/* After a transaction ran: what it left, for the next runs (nothing is known of a
 * conversation when one of the transaction's commands failed). */
static void profiles_written(struct run *run, const redisReply *reply)
{
    int clean = 1;
    for (size_t k = 0; k < reply->elements; k++) clean &= reply->element[k]->type != REDIS_REPLY_ERROR;
    struct db_dispatch_fast *f = run->f;
    if (!f->written) f->written = calloc(WRITTEN_SLOTS, sizeof *f->written);
    for (size_t i = 0; f->written && i < run->nconv; i++) {
        const struct conv *cv = &run->conv[i];
        struct written *w = written_slot(f, cv->hash);
        if (clean && cv->prof_known && cv->f[F_LAST])
            *w = (struct written){cv->hash, db_hash_str(DB_HASH_SEED, cv->f[F_LAST]), cv->prof};
        else if (w->conv == cv->hash)
            w->conv = 0;
    }
}

static int set_field(struct conv *cv, int k, const char *v)
{
    char *c = strdup(v);
    if (!c) return -1;
    free(cv->f[k]);
    cv->f[k] = c;
    return 0;
}

/* The arguments of the transaction's commands, back to back; a command is (start, argc). */
struct cmds {
    const char **v;
    size_t *l;
    size_t n, cap;
    size_t *start, *argc;
    size_t ncmd, cmd_cap;
};

static int arg(struct cmds *c, const char *v, size_t l)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        const char **nv = realloc(c->v, cap * sizeof *nv);
        if (!nv) return -1;
        c->v = nv;
        size_t *nl = realloc(c->l, cap * sizeof *nl);
        if (!nl) return -1;
        c->l = nl;
        c->cap = cap;
    }
    c->v[c->n] = v;
    c->l[c->n++] = l;
    return 0;
}

static int arg_s(struct cmds *c, const char *v) { return arg(c, v, strlen(v)); }

static int cmd_begin(struct cmds *c)
{
    if (c->ncmd == c->cmd_cap) {
        size_t cap = c->cmd_cap ? c->cmd_cap * 2 : 256;
        size_t *s = realloc(c->start, cap * sizeof *s);
        if (!s) return -1;
        c->start = s;
        size_t *a = realloc(c->argc, cap * sizeof *a);
        if (!a) return -1;
        c->argc = a;
        c->cmd_cap = cap;
    }
    c->start[c->ncmd] = c->n;
    c->argc[c->ncmd++] = 0;
    return 0;
}

static void cmd_end(struct cmds *c) { c->argc[c->ncmd - 1] = c->n - c->start[c->ncmd - 1]; }

static void cmds_free(struct cmds *c)
{
    free(c->v);
    free(c->l);
    free(c->start);
    free(c->argc);
}

/* Adds event i's writes to c, as op_event makes them for its conversation's state, and
 * moves that state on.  1 added (or nothing to write: applied before), 0 the event is not a
 * plain update, -1 without memory. */
static int plan_event(struct run *run, size_t i, struct cmds *c)
{
    const struct db_fast_event *e = &run->ev[i];
    struct conv *cv = &run->conv[run->conv_of[i]];
    struct plan *pl = &run->plan[i];
    const char *const *v = e->v;
    if (e->n < 12 || strcmp(v[4], "i") != 0) return 0; /* a keyword answer, or no item */
    const char *E = v[0];
    pl->rpush = (size_t)-1;
    if (cv->f[F_LAST] && db_stream_id_cmp(E, cv->f[F_LAST]) <= 0) return 1;
    const char *state = cv->f[F_STATE];
    if (!state || (strcmp(state, "queued") != 0 && strcmp(state, "assigned") != 0)) return 0;
    int assigned = strcmp(state, "assigned") == 0, activity = is_activity(v[5]);
    const char *at = v[10];
    if (activity) {
        /* received_at as the script writes it unchanged; anything else it would format */
        if (!plain_digits(at, 15)) return 0;
        if (*v[11]) {
            int pr = prio_rank(v[11]);
            int cur = cv->f[F_PRIORITY] ? prio_rank(cv->f[F_PRIORITY]) : 1;
            if (pr < 0 || pr > (cur < 0 ? 1 : cur)) return 0; /* a raise re-scores the queue */
        }
        if (!assigned && !cv->f[F_QUEUED_AT]) return 0;
        const char *u = cv->f[F_UNREAD];
        /* The script's tostring(u + 1) is exact below 10^14; longer counts go to HINCRBY. */
        if (!u || (strcmp(u, "0") != 0 && !plain_digits(u, 13))) return 0;
        db_fmt_ll(pl->unread, strtoll(u, NULL, 10) + 1);
    }
    /* the agent's copy is the item without its wrapper: {"dir":"in","entry":"<E>","event":...} */
    size_t head = e->l[0] + 31;
    if (e->l[3] < head + 1) return 0;
    if (assigned && cv->f[F_AGENT] && *cv->f[F_AGENT]) {
        pl->inbox = tagged(run->f->prefix, DB_KEY_AGENT_INBOX, cv->f[F_AGENT], "");
        if (!pl->inbox) return -1;
    }
    pl->rpush = c->ncmd;
    if (cmd_begin(c) || arg_s(c, "RPUSH") || arg_s(c, cv->items) || arg(c, v[3], e->l[3]))
        return -1;
    cmd_end(c);
    /* One HSET, its fields in the script's order (a small hash is a list walked from the front). */
    if (cmd_begin(c) || arg_s(c, "HSET") || arg_s(c, cv->key)) return -1;
    if (activity) {
        if (arg_s(c, "last_message_at") || arg(c, at, e->l[10]) || arg_s(c, "last_event") ||
            arg(c, v[9], e->l[9]))
            return -1;
        if (!cv->f[F_FIRST] && (arg_s(c, "first_message_at") || arg(c, at, e->l[10]) ||
                                set_field(cv, F_FIRST, at)))
            return -1;
        if (arg_s(c, "unread") || arg_s(c, pl->unread) || set_field(cv, F_UNREAD, pl->unread))
            return -1;
        uint64_t prof = profile_hash(e);
        if (!cv->prof_known || cv->prof != prof)
            for (int k = 12; k + 1 < e->n; k += 2)
                if (arg(c, v[k], e->l[k]) || arg(c, v[k + 1], e->l[k + 1])) return -1;
        cv->prof_known = 1, cv->prof = prof;
    }
    if (arg_s(c, "last_entry") || arg(c, E, e->l[0]) || set_field(cv, F_LAST, E)) return -1;
    cmd_end(c);
    /* The agent's copy: the raw event (dispatch.lua event_of). */
    if (pl->inbox) {
        if (cmd_begin(c) || arg_s(c, "XADD") || arg_s(c, pl->inbox) || arg_s(c, "MAXLEN") ||
            arg_s(c, "~") || arg_s(c, "10000") || arg_s(c, "*") || arg_s(c, "type") ||
            arg(c, v[5], e->l[5]) || arg_s(c, "conversation") || arg(c, v[1], e->l[1]) ||
            arg_s(c, "data") || arg(c, v[3] + head, e->l[3] - head - 1))
            return -1;
        cmd_end(c);
    }
    return 1;
}

static void exec_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct run *run = arg;
    /* Not run (a watched conversation changed, refused, or unknown): the script applies
     * them, and finds whatever this transaction did applied already. */
    struct db_log_ctx ctx = {"dispatcher", NULL, NULL, run->ev[0].v[0]};
    if (!db_redis_exec_ran(status, reply, errstr, &ctx, "plain updates")) {
        run_end(run, 0);
        return;
    }
    for (size_t i = 0; i < run->n; i++) {
        struct conv *cv = &run->conv[run->conv_of[i]];
        size_t k = run->plan[i].rpush;
        if (k == (size_t)-1 || k >= reply->elements || cv->cut) continue;
        const redisReply *len = reply->element[k];
        if (len->type == REDIS_REPLY_INTEGER && len->integer > HISTORY + SLACK) {
            const char *trim[4] = {"LTRIM", cv->items, "-1000", "-1"};
            db_redis_cmd_argv(run->f->r, NULL, NULL, 4, trim, NULL);
            cv->cut = 1;
        }
    }
    profiles_written(run, reply);
    run_end(run, 1);
}

/* Is id one of the run's entries?  Both the run's entries and XPENDING's answer are in
 * ascending order, so the answer is walked along the entries (*next: the first entry not yet
 * passed); nearly always the pending entry is the next one, found by one strcmp.  An answer
 * out of order only makes this say no, which leaves the run to the script. */
static int own_entry(const struct run *run, size_t *next, const char *id)
{
    while (*next < run->n) {
        const char *e = run->ev[(*next)++].v[0];
        if (strcmp(e, id) == 0) return 1;
        if (db_stream_id_cmp(e, id) > 0) return 0;
    }
    return 0;
}

static void decide(struct run *run)
{
    struct db_dispatch_fast *f = run->f;
    struct cmds c = {0};
    int ok = !run->failed && !f->freeing && db_redis_is_up(f->r);
    if (ok) profiles_known(run);
    for (size_t i = 0; ok && i < run->n; i++)
        ok = plan_event(run, i, &c) == 1;
    if (!ok) {
        cmds_free(&c);
        if (!f->freeing) db_redis_cmd(f->r, NULL, NULL, "UNWATCH");
        run_end(run, 0);
        return;
    }
    const char *multi = "MULTI";
    db_redis_cmd_argv(f->r, NULL, NULL, 1, &multi, NULL);
    for (size_t k = 0; k < c.ncmd; k++)
        db_redis_cmd_argv(f->r, NULL, NULL, (int)c.argc[k], c.v + c.start[k], c.l + c.start[k]);
    /* Every event acknowledged, those found applied before too (as op_event does). */
    size_t na = 3 + run->n;
    const char **av = malloc(na * sizeof *av);
    size_t *al = av ? malloc(na * sizeof *al) : NULL;
    if (!al) {
        free(av);
        cmds_free(&c);
        /* MULTI is open: DISCARD drops what was queued */
        db_redis_cmd(f->r, NULL, NULL, "DISCARD");
        run_end(run, 0);
        return;
    }
    av[0] = "XACK", av[1] = f->events, av[2] = DB_DISPATCH_GROUP;
    for (size_t i = 0; i < 3; i++) al[i] = strlen(av[i]);
    for (size_t i = 0; i < run->n; i++) av[3 + i] = run->ev[i].v[0], al[3 + i] = run->ev[i].l[0];
    db_redis_cmd_argv(f->r, NULL, NULL, (int)na, av, al);
    free(av);
    free(al);
    cmds_free(&c);
    const char *exec = "EXEC";
    db_redis_cmd_argv(f->r, exec_cb, run, 1, &exec, NULL);
    /* The next run may start now: its WATCH and XPENDING reach Redis after this EXEC. */
    if (f->busy == run) {
        f->busy = NULL;
        if (f->ready && !f->freeing) f->ready(f->ready_arg);
    }
}

/* ---- the first round ---- */

static char *dup_reply(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
}

/* The first round's answers, in the order they were asked: WATCH, then HMGET per
 * conversation, then XPENDING. */
static void first_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct run *run = arg;
    (void)errstr;
    size_t k = run->answered++;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        run->failed = 1;
    } else if (k == 0) {
        /* WATCH: +OK */
    } else if (k <= run->nconv) {
        struct conv *cv = &run->conv[k - 1];
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != NF) run->failed = 1;
        for (int i = 0; !run->failed && i < NF; i++) {
            const redisReply *x = reply->element[i];
            if (x->type == REDIS_REPLY_STRING && !(cv->f[i] = dup_reply(x))) run->failed = 1;
        }
    } else {
        /* Only the run's own entries may be pending up to its last one: an entry of another
         * consumer there may be an earlier event of the same conversation, which the script
         * applies first (its pending_in). */
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements > run->n) run->failed = 1;
        size_t next = 0;
        for (size_t i = 0; !run->failed && i < reply->elements; i++) {
            const redisReply *p = reply->element[i];
            if (p->type != REDIS_REPLY_ARRAY || p->elements < 1 ||
                p->element[0]->type != REDIS_REPLY_STRING ||
                !own_entry(run, &next, p->element[0]->str))
                run->failed = 1;
        }
    }
    if (--run->answers == 0) decide(run);
}

/* The conversations of the run's events, each once, with its keys.  -1 without memory. */
static int gather(struct run *run)
{
    run->conv = calloc(run->n, sizeof *run->conv);
    run->conv_of = calloc(run->n, sizeof *run->conv_of);
    run->plan = calloc(run->n, sizeof *run->plan);
    if (!run->conv || !run->conv_of || !run->plan) return -1;
    /* a small open-addressed table of conversation names -> index */
    size_t cap = 16;
    while (cap < 2 * run->n) cap *= 2;
    size_t *slot = malloc(cap * sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < cap; i++) slot[i] = (size_t)-1;
    for (size_t i = 0; i < run->n; i++) {
        const char *c = run->ev[i].n >= 2 ? run->ev[i].v[1] : "";
        uint64_t h = db_hash_str(DB_HASH_SEED, c);
        h = h ? h : 1; /* 0 marks an empty slot of the written table */
        size_t s = (size_t)h & (cap - 1);
        while (slot[s] != (size_t)-1 && strcmp(run->conv[slot[s]].id, c) != 0) s = (s + 1) & (cap - 1);
        if (slot[s] == (size_t)-1) {
            struct conv *cv = &run->conv[run->nconv];
            cv->id = c;
            cv->hash = h;
            cv->key = tagged(run->f->prefix, DB_KEY_CONV, c, "");
            cv->items = tagged(run->f->prefix, DB_KEY_CONV, c, ":items");
            slot[s] = run->nconv++;
            if (!cv->key || !cv->items) {
                free(slot);
                return -1;
            }
        }
        run->conv_of[i] = slot[s];
    }
    free(slot);
    return 0;
}

void db_dispatch_fast_apply(struct db_dispatch_fast *f, size_t n, const struct db_fast_event *ev,
                            db_fast_done_fn done, void *arg)
{
    struct run *run = n && db_dispatch_fast_ready(f) ? calloc(1, sizeof *run) : NULL;
    if (!run) {
        done(0, arg);
        return;
    }
    *run = (struct run){.f = f, .n = n, .ev = ev, .done = done, .arg = arg};
    for (size_t i = 0; i < n; i++)
        if (ev[i].n < 12) {
            run_free(run);
            done(0, arg);
            return;
        }
    const char **av = NULL;
    size_t *al = NULL;
    if (gather(run) != 0 || !(av = malloc((run->nconv + 1) * sizeof *av)) ||
        !(al = malloc((run->nconv + 1) * sizeof *al))) {
        free(av);
        run_free(run);
        done(0, arg);
        return;
    }
    f->busy = run;
    /* Every answer is counted before the first command goes: when the connection is down a
     * command is answered before db_redis_cmd_argv returns. */
    run->answers = 2 + run->nconv;
    av[0] = "WATCH", al[0] = 5;
    for (size_t i = 0; i < run->nconv; i++) av[1 + i] = run->conv[i].key, al[1 + i] = strlen(av[1 + i]);
    db_redis_cmd_argv(f->r, first_cb, run, (int)(run->nconv + 1), av, al);
    free(av);
    free(al);
    for (size_t i = 0; i < run->nconv; i++) {
        const char *hm[2 + NF] = {"HMGET", run->conv[i].key};
        for (int k = 0; k < NF; k++) hm[2 + k] = stl[k];
        db_redis_cmd_argv(f->r, first_cb, run, 2 + NF, hm, NULL);
    }
    char count[DB_LL_MAX];
    db_fmt_ll(count, (long long)n + 1);
    const char *xp[6] = {"XPENDING", f->events, DB_DISPATCH_GROUP, "-", ev[n - 1].v[0], count};
    db_redis_cmd_argv(f->r, first_cb, run, 6, xp, NULL);
}

int db_dispatch_fast_ready(const struct db_dispatch_fast *f)
{
    return f && !f->busy && !f->freeing && db_redis_is_up(f->r);
}

int db_dispatch_fast_busy(const struct db_dispatch_fast *f) { return f && f->busy; }

int db_dispatch_fast_new(struct event_base *base, const struct db_config *cfg,
                         db_fast_ready_fn ready, void *ready_arg, struct db_dispatch_fast **out,
                         struct db_err *e)
{
    struct db_dispatch_fast *f = calloc(1, sizeof *f);
    if (!f || !(f->prefix = strdup(cfg->prefix))) {
        free(f);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    f->ready = ready;
    f->ready_arg = ready_arg;
    db_key(f->events, sizeof f->events, cfg->prefix, DB_KEY_EVENTS);
    struct db_redis_opts ro = {.url = cfg->redis_url,
                               .command_timeout_ms = cfg->redis_timeout_ms,
                               .name = "deskbridge-dispatch-tx"};
    int rc = db_redis_new(base, &ro, &f->r, e);
    if (rc != DB_OK) {
        free(f->prefix);
        free(f);
        return rc;
    }
    *out = f;
    return DB_OK;
}

void db_dispatch_fast_free(struct db_dispatch_fast *f)
{
    if (!f) return;
    f->freeing = 1;
    /* A run in flight is answered (with DB_EAGAIN, so done(0)) by the connection's free. */
    db_redis_free(f->r);
    free(f->written);
    free(f->prefix);
    free(f);
}
