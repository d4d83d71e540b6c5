/* dispatcher.c - reads P:events in the group "deskbridge-dispatch" and applies each entry to
 * the conversation state with the dispatcher's Lua script (src/redis/scripts/dispatch.lua).
 *
 * The script records the change and acknowledges the entry in one step, so a crash leaves an
 * entry either unprocessed and pending (claimed by another process after claim_idle_ms) or
 * processed and acknowledged; a re-claimed entry that was processed changes nothing because
 * the conversation remembers the last entry it applied. */
#include "dispatch/dispatcher.h"

#include "auto/autoreply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "dispatch/assign.h"
#include "dispatch/fast.h"
#include "dispatch/replies.h"
#include "dispatch/script.h"
#include "conf/config.h"
#include "services/services.h"
#include "net/httpd.h"
#include "hours/hours.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "send/outbound.h"
#include "stream/consumer.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "store/store.h"
#include "util/id.h"
#include "util/join.h"
#include "util/json.h"
#include "util/parse.h"

#define READ_COUNT 64
/* Entries held at once.  Plain updates take every read waiting into one transaction, so this
 * bounds a transaction too; at 256 the dispatcher of a busy role=all fell behind its own
 * ingest (docs/performance.md, 7 December 12:40). */
#define MAX_INFLIGHT 1024

struct db_dispatcher {
    struct db_services *svc;
    struct db_consumer *consumer;
    struct db_dispatch_replies *replies;
    unsigned long inflight;
    unsigned long outstanding; /* callbacks still to come on svc->redis that hold d */
    int stopped, released;
    struct event *sweep_timer;
    struct apply_batch *batch;  /* the entries of the read or claim being handed over */
    struct db_dispatch_fast *fast; /* plain updates without the script (fast.h) */
    struct apply_batch *wait_head, *wait_tail; /* reads waiting for the transaction in flight */
    unsigned long scripts_running; /* script runs of reads in flight: no transaction meanwhile */
    char events[160], dead[160];
};

struct job {
    struct db_dispatcher *d;
    char entry[64];
    /* Set when the event may earn a queue-position message (see qwait_begin). */
    char *qw_text;  /* owned: the schedule's queue_message in the customer's language */
    char *qw_name;  /* owned, may be NULL: the customer's name for {customer_name} */
    long qw_default_ms;
    char conv[256], platform[32], account[96];
    char qa[24];    /* queued_at of the wait being told */
    long long pos, mins, n;
    char msg_id[DB_ID_LEN + 1];
};

/* Counts one callback on the shared connection done; returns 1 when d was freed meanwhile
 * (db_dispatcher_free left it to the last callback) and is now gone. */
static int settle(struct db_dispatcher *d)
{
    d->outstanding--;
    if (!d->released) return 0;
    if (d->outstanding == 0) free(d);
    return 1;
}

/* ---- reading P:events ---- */

static void job_done(struct job *j)
{
    struct db_dispatcher *d = j->d;
    free(j->qw_text);
    free(j->qw_name);
    db_consumer_release(d->consumer, 0, j->entry);
    free(j);
    d->inflight--;
    settle(d);
}

/* ---- queue position and expected wait ----
 *
 * Run after the script applied a customer's message, in the process that applied it: only
 * then is the conversation's state (queued or not) known to be current, whichever process
 * wins.  The script decides (qwait), the answer is queued with a client id naming the wait
 * and its number, then the script records it (qwait_told).  Every step is safe to repeat,
 * so two processes or a crash at any point give at most one message per decision. */

static void qwait_end(struct job *j, const char *failed)
{
    if (failed) {
        struct db_log_ctx ctx = {"dispatcher", j->platform, j->account, j->entry};
        db_log(DB_LOG_WARN, &ctx, "queue position message: %s failed", failed);
    }
    job_done(j);
}

static void qwait_told_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    int ok = status == DB_OK && reply->type != REDIS_REPLY_ERROR;
    if (ok && !j->d->released) {
        struct db_log_ctx ctx = {"dispatcher", j->platform, j->account, j->entry};
        db_log(DB_LOG_INFO, &ctx, "queue position %lld, about %lld min, queued as %s", j->pos,
               j->mins, j->msg_id);
    }
    qwait_end(j, ok ? NULL : "recording it");
}

static void qwait_marked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    if (j->d->released || status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        qwait_end(j, "marking it");
        return;
    }
    char mins[24], n[24];
    snprintf(mins, sizeof mins, "%lld", j->mins);
    snprintf(n, sizeof n, "%lld", j->n);
    const char *args[] = {j->conv, j->qa, mins, n};
    db_dispatch_run(j->d->svc, qwait_told_cb, j, "qwait_told", 4, args, NULL);
}

static void qwait_enqueued_cb(int status, const char *id, const char *msg_status, int created,
                              void *arg)
{
    struct job *j = arg;
    (void)msg_status, (void)created;
    if (j->d->released || status != DB_OK || !id) {
        qwait_end(j, "queueing it");
        return;
    }
    snprintf(j->msg_id, sizeof j->msg_id, "%s", id);
    /* Shown by GET /v1/messages/{id} like the other automatic answers. */
    char key[256];
    db_key_tagged(key, sizeof key, j->d->svc->cfg->cfg->prefix, DB_KEY_MSG, j->msg_id);
    db_redis_cmd(j->d->svc->redis, qwait_marked_cb, j,
                 "HSET %s automatic true rule queue_wait resolve false", key);
}

static void qwait_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    if (j->d->released || status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        qwait_end(j, "deciding on it");
        return;
    }
    /* nil: not queued, or already told an estimate that has not doubled since. */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_STRING ||
        reply->element[3]->type != REDIS_REPLY_INTEGER) {
        qwait_end(j, NULL);
        return;
    }
    j->pos = reply->element[0]->integer;
    j->mins = reply->element[1]->integer;
    snprintf(j->qa, sizeof j->qa, "%s", reply->element[2]->str);
    j->n = reply->element[3]->integer;

    char pos[24], mins[24], client[400];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    snprintf(mins, sizeof mins, "%lld", j->mins);
    const char *vars[] = {"position", pos, "wait", mins, "customer_name", j->qw_name, NULL};
    char *text = db_text_expand(j->qw_text, vars);
    char id[DB_ID_LEN + 1];
    db_id_new(id);
    json_t *cmd = text ? json_pack("{s:s, s:s, s:s, s:b, s:s}", "id", id, "conversation",
                                   j->conv, "text", text, "automatic", 1, "rule", "queue_wait")
                       : NULL;
    char *txt = cmd ? db_json_dump(cmd) : NULL;
    json_decref(cmd);
    free(text);
    if (!txt) {
        qwait_end(j, "building it");
        return;
    }
    /* Once per wait (queued_at), and per re-telling (n). */
    if (j->n > 1)
        snprintf(client, sizeof client, "auto:queue:%s:%s:%lld", j->conv, j->qa, j->n);
    else
        snprintf(client, sizeof client, "auto:queue:%s:%s", j->conv, j->qa);
    db_store_enqueue(j->d->svc->store, id, client, j->conv, j->platform, j->account, txt,
                     qwait_enqueued_cb, j);
    free(txt);
}

static void qwait_begin(struct job *j)
{
    char def[24];
    snprintf(def, sizeof def, "%ld", j->qw_default_ms);
    const char *args[] = {j->conv, def};
    db_dispatch_run(j->d->svc, qwait_cb, j, "qwait", 2, args, NULL);
}

/* Fills the job's qw_* fields when a customer's message arrives for an account whose schedule
 * has a queue_message and is open now; leaves them empty otherwise.  0, or -1 on ENOMEM. */
static int qwait_plan(struct job *j, const struct db_config *cfg, const json_t *ev,
                      const char *conv)
{
    const char *kind = db_json_str(ev, "kind"), *chat;
    if (!kind || strcmp(kind, "message") != 0 || strlen(conv) >= sizeof j->conv ||
        db_conversation_split(conv, j->platform, sizeof j->platform, j->account,
                              sizeof j->account, &chat) != DB_OK)
        return 0;
    const struct db_schedule_conf *sc = db_schedule_conf_of(cfg, j->platform, j->account);
    if (!sc || !sc->queue_message) return 0;
    const json_t *sender = json_object_get(ev, "sender");
    char lang[17];
    db_event_lang(ev, lang, sizeof lang);
    const char *tmpl = db_schedule_text(sc, "queue_message", lang);

    /* Inside business hours only; the same test clock as the automatic answers. */
    long off = 0;
    if (db_parse_long(getenv("DESKBRIDGE_CLOCK_OFFSET_S"), -1000000000L, 1000000000L, &off))
        off = 0;
    if (!db_schedule_is_open(sc->sched, time(NULL) + off)) return 0;
    j->qw_default_ms = sc->queue_default_wait_s * 1000L;
    const char *name = db_json_str(sender, "name");
    snprintf(j->conv, sizeof j->conv, "%s", conv);
    if (!(j->qw_text = strdup(tmpl)) || (name && !(j->qw_name = strdup(name)))) {
        free(j->qw_text);
        j->qw_text = NULL;
        return -1;
    }
    return 0;
}

/* The script answers {applied, "answered"|"comment", score} when the event was a survey's
 * answer or comment (dispatch.lua, survey_take). */
static void survey_counted(struct db_dispatcher *d, const redisReply *reply)
{
    if (d->released || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[1]->str, "answered") == 0) {
        db_metrics_survey(d->svc->metrics, "answered");
        if (reply->element[2]->type == REDIS_REPLY_INTEGER)
            db_metrics_survey_score(d->svc->metrics, (int)reply->element[2]->integer);
    } else if (strcmp(reply->element[1]->str, "comment") == 0) {
        db_metrics_survey(d->svc->metrics, "commented");
    }
}

/* The answer given for each event of a transaction of plain updates (fast.h). */
static const redisReply applied_reply = {.type = REDIS_REPLY_INTEGER, .integer = 1};

static void applied_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        /* Left pending: claimed again after claim_idle_ms, dead-lettered after max_deliveries. */
        struct db_log_ctx ctx = {"dispatcher", NULL, NULL, j->entry};
        db_log(DB_LOG_WARN, &ctx, "could not apply the event: %s",
               status != DB_OK ? (errstr ? errstr : "unavailable") : reply->str);
    } else {
        survey_counted(j->d, reply);
        if (!j->d->released) db_metrics_dispatched(j->d->svc->metrics, reply == &applied_reply, 1);
    }
    if (status == DB_OK && reply->type != REDIS_REPLY_ERROR && j->qw_text && !j->d->released) {
        qwait_begin(j);
        return;
    }
    job_done(j);
}

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    job_done(arg);
}

/* The keyword priority of text under rules ("word\tpriority\n"..., words lower case), as the
 * script's priority_of decides it: the highest priority among the words found in the text
 * lower-cased for ASCII letters only, the first rule on a tie; NULL when none matches (or
 * on ENOMEM, which only loses the raise).  Done here so Redis does not lower-case and scan
 * every message. */
static const char *keyword_priority(const char *rules, const char *text)
{
    if (!rules || !*rules || !text) return NULL;
    char *low = strdup(text);
    if (!low) return NULL;
    for (char *s = low; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
    const char *best = NULL;
    int best_p = -1;
    for (const char *p = rules; *p;) {
        const char *tab = strchr(p, '\t'), *nl = tab ? strchr(tab, '\n') : NULL;
        if (!nl) break;
        char prio[16], word[256], *w = word;
        size_t wl = (size_t)(tab - p), pl = (size_t)(nl - tab - 1);
        if (pl < sizeof prio && (wl < sizeof word || (w = malloc(wl + 1)))) {
            memcpy(prio, tab + 1, pl), prio[pl] = '\0';
            memcpy(w, p, wl), w[wl] = '\0';
            int pr = db_priority_parse(prio);
            if (pr > best_p && strstr(low, w)) best_p = pr, best = db_priority_name(pr);
            if (w != word) free(w);
        }
        p = nl + 1;
    }
    free(low);
    return best;
}

/* What the script's op "event" needs of the event it applies, taken from the parse this
 * process already made, so Redis does not decode the whole event again (docs/dispatcher.md).
 * Strings point into ev, or into at: received_at written as text. */
#define EVENT_ARGS 24
struct event_args {
    int n;
    const char *v[EVENT_ARGS];
    char at[40];
};

static void add_arg(struct event_args *a, const char *v) { a->v[a->n++] = v; }

/* A member the script reads as `x or ''`: a string or absent.  0 for any other type, where
 * the script's own decoding keeps whatever it did with it. */
static int plain_str(const json_t *ev, const char *key, const char **out)
{
    const json_t *v = json_object_get(ev, key);
    if (v && !json_is_string(v)) return 0;
    *out = v ? json_string_value(v) : "";
    return 1;
}

/* Fills a with the fields after resolved (ARGV[9] on); a->n = 0 when the event has a member
 * of an unusual type, so the script decodes it itself as before. */
static void event_args_of(const json_t *ev, const char *rules, struct event_args *a)
{
    const char *kind = db_json_str(ev, "kind"), *platform, *account, *chat, *id;
    a->n = 0;
    if (!kind || !plain_str(ev, "platform", &platform) || !plain_str(ev, "account", &account) ||
        !plain_str(ev, "external_chat_id", &chat) || !plain_str(ev, "id", &id))
        return;
    /* received_at as the script's tonumber() reads it: the same digits, a real written back
     * exactly, a string as it is, anything else nothing (the script then uses now). */
    const json_t *at = json_object_get(ev, "received_at");
    a->at[0] = '\0';
    if (json_is_integer(at))
        db_fmt_ll(a->at, json_integer_value(at));
    else if (json_is_real(at))
        snprintf(a->at, sizeof a->at, "%.17g", json_real_value(at));
    const char *pr = keyword_priority(rules, db_json_str(ev, "text"));
    add_arg(a, kind), add_arg(a, platform), add_arg(a, account), add_arg(a, chat);
    add_arg(a, id), add_arg(a, json_is_string(at) ? json_string_value(at) : a->at);
    add_arg(a, pr ? pr : "");
    /* The profile as field/value pairs, only for members that are strings. */
    const json_t *sender = json_object_get(ev, "sender");
    static const char *const prof[] = {"name", "username", "language"};
    for (int i = 0; i < 3; i++) {
        const char *v = json_is_object(sender) ? db_json_str(sender, prof[i]) : NULL;
        if (v) add_arg(a, prof[i]), add_arg(a, v);
    }
    const char *uid = db_json_str(ev, "external_user_id");
    if (uid) add_arg(a, "user_id"), add_arg(a, uid);
}

/* ---- several events per script run ----
 *
 * The entries of one read are applied by one run of the script (op "events"): a run's fixed
 * cost in Redis (the call with its arguments and the script's setup, about 6 us) was a fifth
 * of what an event cost.  Inside the run each event is applied on its own, so one that fails
 * stays pending alone while the others are applied and acknowledged. */
struct apply_batch {
    struct job **jobs;
    size_t njobs, jobs_cap;
    char *bytes; /* the arguments, back to back */
    size_t used, bytes_cap;
    size_t *off, *len;
    size_t nargs, args_cap;
    size_t *first; /* per job: the index of its first argument (its count) */
    int whole; /* the entries are one whole read (db_consumer_batch_fn; see op_events) */
    struct apply_batch *next; /* waiting for the plain-update transaction */
};

/* What the script run's callback needs: the jobs, in the order of their events (owned). */
struct batch_run {
    struct db_dispatcher *d;
    size_t n;
    struct job **jobs;
};

static int batch_arg(struct apply_batch *b, const char *s, size_t len)
{
    if (b->nargs == b->args_cap) {
        size_t cap = b->args_cap ? b->args_cap * 2 : 256;
        size_t *off = realloc(b->off, cap * sizeof *off);
        if (!off) return -1;
        b->off = off;
        size_t *l = realloc(b->len, cap * sizeof *l);
        if (!l) return -1;
        b->len = l;
        b->args_cap = cap;
    }
    /* each argument is followed by a NUL, so the plain updates can read it as a string */
    if (b->used + len + 1 > b->bytes_cap) {
        size_t cap = b->bytes_cap ? b->bytes_cap : 65536;
        while (cap < b->used + len + 1) cap *= 2;
        char *p = realloc(b->bytes, cap);
        if (!p) return -1;
        b->bytes = p;
        b->bytes_cap = cap;
    }
    if (len) memcpy(b->bytes + b->used, s, len);
    b->bytes[b->used + len] = '\0';
    b->off[b->nargs] = b->used;
    b->len[b->nargs++] = len;
    b->used += len + 1;
    return 0;
}

/* Adds job j with op_event's arguments to b; -1 (b unchanged) without memory. */
static int batch_add(struct apply_batch *b, struct job *j, int nargs, const char **args,
                     const size_t *lens)
{
    size_t nargs0 = b->nargs, used0 = b->used;
    char count[DB_LL_MAX];
    size_t n = db_fmt_ll(count, nargs);
    int rc = b->njobs == b->jobs_cap ? -1 : 0;
    if (rc) {
        size_t cap = b->jobs_cap ? b->jobs_cap * 2 : 64;
        struct job **jobs = realloc(b->jobs, cap * sizeof *jobs);
        if (jobs) b->jobs = jobs;
        size_t *first = jobs ? realloc(b->first, cap * sizeof *first) : NULL;
        if (first) b->first = first, b->jobs_cap = cap, rc = 0;
    }
    if (!rc) rc = batch_arg(b, count, n);
    for (int i = 0; !rc && i < nargs; i++) rc = batch_arg(b, args[i], lens[i]);
    if (rc) {
        b->nargs = nargs0, b->used = used0;
        return -1;
    }
    b->first[b->njobs] = nargs0;
    b->jobs[b->njobs++] = j;
    return 0;
}

static void fast_next(struct db_dispatcher *d);

static void batch_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct batch_run *br = arg;
    struct db_dispatcher *d = br->d;
    d->scripts_running--;
    int each = status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == br->n;
    if (status == DB_OK && !each && reply->type != REDIS_REPLY_ERROR) status = DB_EAGAIN;
    /* the last job's callback may free the dispatcher: nothing of it is touched after */
    for (size_t i = 0; i < br->n; i++)
        applied_cb(status, each ? reply->element[i] : reply, errstr, br->jobs[i]);
    free(br->jobs);
    free(br);
    if (settle(d)) return;
    fast_next(d);
}

/* Frees what b holds (not b itself, nor its jobs). */
static void batch_clear(struct apply_batch *b)
{
    free(b->jobs);
    free(b->first);
    free(b->bytes);
    free(b->off);
    free(b->len);
    memset(b, 0, sizeof *b);
}

/* Applies b's events with one run of the script and clears b. */
static void batch_send(struct db_dispatcher *d, struct apply_batch *b)
{
    struct batch_run *br = b->njobs ? malloc(sizeof *br) : NULL;
    const char **v = br ? malloc((b->nargs + 2) * sizeof *v) : NULL;
    size_t *l = v ? malloc((b->nargs + 2) * sizeof *l) : NULL;
    char count[DB_LL_MAX];
    if (b->njobs && !l) {
        /* without memory the events stay pending and are claimed later */
        for (size_t i = 0; i < b->njobs; i++)
            applied_cb(DB_ENOMEM, NULL, "out of memory", b->jobs[i]);
        free(br);
    } else if (b->njobs) {
        *br = (struct batch_run){d, b->njobs, b->jobs};
        /* a transaction started while this run's entries are pending would only fall back */
        d->scripts_running++;
        d->outstanding++;
        b->jobs = NULL;
        v[0] = count, l[0] = db_fmt_ll(count, (long long)br->n);
        v[1] = b->whole ? "read" : "claim", l[1] = strlen(v[1]);
        for (size_t i = 0; i < b->nargs; i++) v[2 + i] = b->bytes + b->off[i], l[2 + i] = b->len[i];
        db_dispatch_run(d->svc, batch_cb, br, "events", (int)(2 + b->nargs), v, l);
    }
    free(v);
    free(l);
    batch_clear(b);
}

/* Adds one entry to the batch of the read or claim being handed over (see batch_end_cb);
 * also while stopping: what a read in flight brought is applied before the process exits. */
static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct db_dispatcher *d = arg;
    struct apply_batch *b = d->batch;
    (void)stream, (void)claimed;
    if (strlen(entry->element[0]->str) >= sizeof ((struct job *)0)->entry) return 0;
    const redisReply *fields = entry->element[1];
    const char *raw = NULL;
    size_t raw_len = 0;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->str && strcmp(fields->element[i]->str, "event") == 0 &&
            fields->element[i + 1]->str)
            raw = fields->element[i + 1]->str, raw_len = fields->element[i + 1]->len;
    struct job *j = calloc(1, sizeof *j);
    if (!j) return 0; /* stays pending; claimed later */
    j->d = d;
    d->inflight++;
    DB_JOIN(j->entry, sizeof j->entry, entry->element[0]->str);
    json_t *ev = NULL;
    const char *conv = NULL;
    if (raw && db_json_parse_object(raw, raw_len, &ev, NULL) == DB_OK)
        conv = db_json_str(ev, "conversation");
    /* A helpdesk bridge (Chatwoot) assigns the conversations of an account it took over. */
    if (conv && d->svc->automation_off &&
        d->svc->automation_off(d->svc->cfg->cfg, db_json_str(ev, "platform"),
                               db_json_str(ev, "account")))
        conv = NULL;
    d->outstanding++;
    if (!conv) {
        /* Not a conversation's event: nothing to dispatch. */
        db_redis_cmd(d->svc->redis, acked_cb, j, "XACK %s %s %s", d->events, DB_DISPATCH_GROUP,
                     j->entry);
        json_decref(ev);
        return 1;
    }
    /* Without memory for it the event is still dispatched, only not answered with a place. */
    (void)qwait_plan(j, d->svc->cfg->cfg, ev, conv);
    const char *rules = db_dispatch_rules_of(d->svc->cfg->cfg);
    /* A keyword answer that resolves the question leaves the conversation with no agent. */
    const char *resolved = db_keyword_resolves(d->svc->cfg->cfg, ev) ? "1" : "";
    struct event_args ea;
    event_args_of(ev, rules, &ea);
    /* The history item is built here, so the script neither builds nor hashes a second copy
     * of the event (flag "i", see dispatch.lua's op_event); without memory for it the script
     * builds it itself. */
    static const char head[] = "{\"dir\":\"in\",\"entry\":\"", mid[] = "\",\"event\":";
    size_t elen = strlen(j->entry), ilen = sizeof head - 1 + elen + sizeof mid - 1 + raw_len + 1;
    char *item = malloc(ilen);
    if (item) {
        char *p = item;
        memcpy(p, head, sizeof head - 1), p += sizeof head - 1;
        memcpy(p, j->entry, elen), p += elen;
        memcpy(p, mid, sizeof mid - 1), p += sizeof mid - 1;
        memcpy(p, raw, raw_len), p += raw_len;
        *p = '}';
    }
    const char *flags = item ? (*resolved ? "1i" : "i") : resolved;
    const char *args[5 + EVENT_ARGS] = {j->entry, conv, rules ? rules : "", item ? item : raw,
                                        flags};
    size_t lens[5 + EVENT_ARGS] = {elen, strlen(conv), rules ? strlen(rules) : 0,
                                   item ? ilen : raw_len, strlen(flags)};
    for (int i = 0; i < ea.n; i++) args[5 + i] = ea.v[i], lens[5 + i] = strlen(ea.v[i]);
    if (batch_add(b, j, 5 + ea.n, args, lens) != 0)
        db_dispatch_run(d->svc, applied_cb, j, "event", 5 + ea.n, args, lens);
    free(item);
    json_decref(ev);
    return 1;
}

/* ---- plain updates (fast.h) ----
 *
 * Whole reads wait in a queue while a transaction or a script run of reads is in flight, and
 * the next transaction takes every read waiting by then: under load they grow to several
 * reads, and a transaction never meets the entries of an earlier one or of a script run still
 * pending (it would only fall back to the script, and the next one too).  Reads it does not
 * take are applied by the script, each as one run, in their order. */

/* A transaction's reads, and its events pointing into their arguments. */
struct fast_run {
    struct db_dispatcher *d;
    struct apply_batch *reads;
    struct db_fast_event *ev;
    const char **v;
    size_t *l;
};

/* Applies every read of the list with the script, one run each, in order, and frees them. */
static void send_all(struct db_dispatcher *d, struct apply_batch *reads)
{
    for (struct apply_batch *b = reads, *next; b; b = next) {
        next = b->next;
        batch_send(d, b);
        free(b);
    }
}

static void fast_done(int applied, void *arg)
{
    struct fast_run *fr = arg;
    struct db_dispatcher *d = fr->d;
    if (!applied) {
        send_all(d, fr->reads);
    } else {
        for (struct apply_batch *b = fr->reads, *next; b; b = next) {
            next = b->next;
            for (size_t i = 0; i < b->njobs; i++) applied_cb(DB_OK, &applied_reply, NULL, b->jobs[i]);
            batch_clear(b);
            free(b);
        }
    }
    free(fr->ev);
    free(fr->v);
    free(fr->l);
    free(fr);
    if (settle(d)) return;
    fast_next(d);
}

static void fast_next(struct db_dispatcher *d)
{
    if (db_dispatch_fast_busy(d->fast) || d->scripts_running || !d->wait_head) return;
    struct apply_batch *reads = d->wait_head;
    d->wait_head = d->wait_tail = NULL;
    size_t n = 0, nargs = 0;
    for (struct apply_batch *b = reads; b; b = b->next) n += b->njobs, nargs += b->nargs;
    struct fast_run *fr = calloc(1, sizeof *fr);
    if (fr) {
        *fr = (struct fast_run){d, reads, calloc(n, sizeof *fr->ev), malloc(nargs * sizeof *fr->v),
                                malloc(nargs * sizeof *fr->l)};
    }
    if (!fr || !fr->ev || !fr->v || !fr->l) {
        if (fr) free(fr->ev), free(fr->v), free(fr->l), free(fr);
        send_all(d, reads);
        return;
    }
    size_t k = 0, a = 0;
    for (struct apply_batch *b = reads; b; b = b->next) {
        for (size_t i = 0; i < b->nargs; i++) fr->v[a + i] = b->bytes + b->off[i], fr->l[a + i] = b->len[i];
        for (size_t j = 0; j < b->njobs; j++, k++) {
            size_t f = a + b->first[j]; /* the job's count, then its arguments */
            fr->ev[k] = (struct db_fast_event){fr->v + f + 1, fr->l + f + 1, atoi(fr->v[f])};
        }
        a += b->nargs;
    }
    d->outstanding++;
    db_dispatch_fast_apply(d->fast, n, fr->ev, fast_done, fr);
}

/* The transaction in its first round has sent its EXEC: the reads waiting may go. */
static void fast_ready_cb(void *arg) { fast_next(arg); }

static void batch_end_cb(int whole, void *arg)
{
    struct db_dispatcher *d = arg;
    struct apply_batch *b = d->batch;
    b->whole = whole;
    /* Claims are older entries, pending because something went wrong: the script's care. */
    struct apply_batch *fresh = d->fast && whole && b->njobs ? calloc(1, sizeof *fresh) : NULL;
    if (!fresh) {
        batch_send(d, b);
        return;
    }
    d->batch = fresh;
    if (d->wait_tail) d->wait_tail->next = b;
    else d->wait_head = b;
    d->wait_tail = b;
    fast_next(d);
}

/* ---- agents gone offline ---- */

static void sweep_again(struct db_dispatcher *d)
{
    long ms = db_dispatch_opts_of(d->svc->cfg->cfg).sweep_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!d->stopped) evtimer_add(d->sweep_timer, &tv);
}

static void swept_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    if (settle(arg)) return;
    sweep_again(arg);
}

static void sweep_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct db_dispatcher *d = arg;
    (void)fd, (void)what;
    char grace[24];
    snprintf(grace, sizeof grace, "%ld", db_dispatch_opts_of(d->svc->cfg->cfg).offline_grace_ms);
    const char *args[] = {grace};
    d->outstanding++;
    db_dispatch_run(d->svc, swept_cb, d, "sweep", 1, args, NULL);
}

/* ---- life cycle ---- */

int db_dispatcher_start(struct db_services *svc, struct db_dispatcher **out, struct db_err *e)
{
    struct db_dispatcher *d = calloc(1, sizeof *d);
    if (!d) return db_err_set(e, DB_ENOMEM, "out of memory");
    d->svc = svc;
    const struct db_config *cfg = svc->cfg->cfg;
    struct db_dispatch_opts o = db_dispatch_opts_of(cfg);
    db_key(d->events, sizeof d->events, cfg->prefix, DB_KEY_EVENTS);
    db_key(d->dead, sizeof d->dead, cfg->prefix, DB_KEY_DEAD);
    /* From the start of the stream ("0"): events written before the first dispatcher ran
     * still count. */
    struct db_consumer_opts co = {.redis = svc->redis,
                                  .metrics = svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-dispatcher",
                                  .who = "dispatcher",
                                  .what = "events",
                                  .group = DB_DISPATCH_GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {d->events},
                                  .labels = {"events"},
                                  .dead_key = d->dead,
                                  .start = "0",
                                  .count = READ_COUNT,
                                  .max_held = MAX_INFLIGHT,
                                  .min_read = READ_COUNT,
                                  .claim_idle_ms = (int)o.claim_idle_ms,
                                  .max_deliveries = (int)o.max_deliveries};
    d->batch = calloc(1, sizeof *d->batch);
    int rc = d->batch ? db_consumer_new(svc->base, &co, take_entry, batch_end_cb, d, &d->consumer, e)
                      : db_err_set(e, DB_ENOMEM, "out of memory");
    if (rc == DB_OK)
        rc = db_dispatch_replies_start(svc, (int)o.claim_idle_ms, (int)o.max_deliveries,
                                       &d->replies, e);
    if (rc == DB_OK) rc = db_dispatch_fast_new(svc->base, cfg, fast_ready_cb, d, &d->fast, e);
    d->sweep_timer = evtimer_new(svc->base, sweep_timer_cb, d);
    if (rc != DB_OK || !d->sweep_timer) {
        db_dispatcher_free(d);
        return rc != DB_OK ? rc : db_err_set(e, DB_ENOMEM, "out of memory");
    }
    db_consumer_start(d->consumer);
    sweep_again(d);
    *out = d;
    return DB_OK;
}

void db_dispatcher_stop_reading(struct db_dispatcher *d)
{
    if (!d) return;
    d->stopped = 1;
    db_consumer_stop(d->consumer);
    db_dispatch_replies_stop(d->replies);
    evtimer_del(d->sweep_timer);
}

unsigned long db_dispatcher_inflight(const struct db_dispatcher *d)
{
    return d ? d->inflight + db_dispatch_replies_inflight(d->replies) : 0;
}

void db_dispatcher_free(struct db_dispatcher *d)
{
    if (!d) return;
    d->stopped = 1;
    /* A transaction in flight is answered first (left to the script), while all is alive. */
    d->outstanding++;
    db_dispatch_fast_free(d->fast);
    d->fast = NULL;
    send_all(d, d->wait_head);
    d->wait_head = d->wait_tail = NULL;
    d->outstanding--;
    db_consumer_free(d->consumer);
    d->consumer = NULL;
    db_dispatch_replies_free(d->replies);
    d->replies = NULL;
    if (d->sweep_timer) event_free(d->sweep_timer);
    d->sweep_timer = NULL;
    if (d->batch) batch_clear(d->batch);
    free(d->batch);
    d->batch = NULL;
    /* Answers still due on the shared connection (it calls them with DB_EAGAIN when the
     * gateway frees it) hold d: the last of them frees it. */
    if (d->outstanding) d->released = 1;
    else free(d);
}
