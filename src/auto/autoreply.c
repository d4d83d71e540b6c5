/* autoreply.c - automatic answers (away, greeting, keyword) read from P:events by the
 * consumer group "deskbridge-autoreply".
 *
 * Every answer goes through db_store_enqueue, so the sender delivers, retries and tracks it
 * like an agent's reply.  An event is acknowledged only after all its answers are queued;
 * a crash in between leaves it pending and a claim runs it again.  Running it again is
 * harmless: each answer's enqueue names a client id derived from the event id and the
 * rule, and the once-per-period keys record which event took them, so the same event takes
 * them again while another event cannot. */
#include "auto/autoreply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "conf/config.h"
#include "services/services.h"
#include "hours/hours.h"
#include "net/httpd.h"
#include "log/log.h"
#include "send/outbound.h"
#include "stream/consumer.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "store/store.h"
#include "util/id.h"
#include "util/json.h"
#include "util/parse.h"

#define GROUP DB_AUTOREPLY_GROUP
#define READ_COUNT 32
#define MAX_DELIVERIES 10
#define MAX_INFLIGHT 64
#define MAX_ANSWERS 3
#define GREETED_TTL_S (90 * 86400) /* a conversation silent this long is greeted again */
#define STALE_S 3600               /* older events (a backlog after downtime) get no answer */

struct answer {
    char rule[80];
    char *text;          /* owned */
    char *claim_key;     /* owned; NULL: no once-only key */
    long claim_ttl;
    int refresh;         /* keep the key alive while the conversation goes on */
    int resolve;
    int claimed;
    char id[DB_ID_LEN + 1];
};

struct job {
    struct db_autoreply *a;
    char entry[64];
    char event_id[64];
    char conv[256], platform[32], account[96];
    struct answer ans[MAX_ANSWERS];
    size_t n, i;
    long long received_ms; /* the event's received_at */
    int survey_shaped;     /* a text that is only a digit 1-5: a survey answer's shape */
    int gated;             /* the survey was asked whether it holds the answers back */
    struct job *prev, *next;
};

struct db_autoreply {
    struct db_services *svc;
    struct db_consumer *consumer;
    struct db_redis_script *claim;
    int stopped;
    unsigned long inflight;   /* events being answered, plus commands on svc->redis */
    long clock_offset_s;      /* test hook DESKBRIDGE_CLOCK_OFFSET_S */
    struct job *jobs;
    char dead[160];
    char events[160];
};

static void step(struct job *j);

static const struct db_log_ctx *ctx_of(const struct job *j, struct db_log_ctx *c)
{
    *c = (struct db_log_ctx){"autoreply", j->platform, j->account, j->event_id};
    return c;
}

/* ---- configuration helpers ---- */

static long clock_offset(void)
{
    long v = 0;
    return db_parse_long(getenv("DESKBRIDGE_CLOCK_OFFSET_S"), -1000000000L, 1000000000L, &v)
               ? 0 : v;
}

/* ---- planning the answers of one event ---- */

/* The shape the dispatcher takes as a survey's answer (docs/survey.md): one digit 1-5,
 * blanks around it allowed. */
static int survey_shaped(const char *t)
{
    if (!t) return 0;
    while (isspace((unsigned char)*t)) t++;
    if (*t < '1' || *t > '5') return 0;
    for (t++; isspace((unsigned char)*t); t++) {}
    return *t == '\0';
}

static int add_answer(struct job *j, const char *rule, const char *tmpl, const char *const *vars)
{
    if (j->n >= MAX_ANSWERS) return -1;
    struct answer *an = &j->ans[j->n];
    memset(an, 0, sizeof *an);
    snprintf(an->rule, sizeof an->rule, "%s", rule);
    if (!(an->text = db_text_expand(tmpl, vars))) return -1;
    j->n++;
    return 0;
}

/* The once-only key "<prefix>:autoreply:<what>:<conversation>[:<period>]". */
static int set_claim(struct answer *an, const char *prefix, const char *what, const char *conv,
                     const char *period, long ttl, int refresh)
{
    size_t n = strlen(prefix) + strlen(what) + strlen(conv) + (period ? strlen(period) : 0) + 16;
    if (!(an->claim_key = malloc(n))) return -1;
    snprintf(an->claim_key, n, "%s:" DB_KEY_AUTOREPLY ":%s:%s%s%s", prefix, what, conv, period ? ":" : "",
             period ? period : "");
    an->claim_ttl = ttl;
    an->refresh = refresh;
    return 0;
}

/* Fills j->ans from the event.  0, or -1 on ENOMEM. */
static int plan(struct db_autoreply *a, struct job *j, const json_t *ev)
{
    const struct db_config *cfg = a->svc->cfg->cfg;
    const char *kind = db_json_str(ev, "kind");
    const char *membership = db_json_str(ev, "membership");
    int is_msg = kind && strcmp(kind, "message") == 0;
    int started = kind && strcmp(kind, "membership") == 0 && membership &&
                  strcmp(membership, "conversation_started") == 0;
    if (!is_msg && !started) return 0;
    /* A helpdesk bridge (Chatwoot) greets and answers for an account it took over. */
    if (a->svc->automation_off && a->svc->automation_off(cfg, j->platform, j->account)) return 0;
    json_t *ra = json_object_get(ev, "received_at");
    time_t now = time(NULL) + a->clock_offset_s;
    time_t at = json_is_integer(ra) ? (time_t)(json_integer_value(ra) / 1000) + a->clock_offset_s
                                    : now;
    j->received_ms =
        json_is_integer(ra) ? (long long)json_integer_value(ra) : (long long)now * 1000;
    j->survey_shaped = is_msg && survey_shaped(db_json_str(ev, "text"));
    if (now - at > STALE_S) return 0;

    char lang[17];
    db_event_lang(ev, lang, sizeof lang);
    const char *name = db_json_str(json_object_get(ev, "sender"), "name");
    const struct db_schedule_conf *ssec = db_schedule_conf_of(cfg, j->platform, j->account);
    const struct db_schedule *sched = ssec ? ssec->sched : NULL;
    char next[64] = "";
    time_t next_open = 0, since = 0;
    int closed = sched && !db_schedule_is_open(sched, at);
    if (closed) {
        if (db_schedule_next_open(sched, at, &next_open) == DB_OK)
            db_schedule_format(sched, next_open, at, lang, next, sizeof next);
        if (db_schedule_closed_since(sched, at, &since) != DB_OK) since = 0;
    }
    const char *vars[] = {"customer_name", name, "next_open", next[0] ? next : NULL, NULL};

    const char *greeting = ssec ? db_schedule_text(ssec, "greeting", lang) : NULL;
    if (greeting) {
        if (add_answer(j, "greeting", greeting, vars) ||
            set_claim(&j->ans[j->n - 1], cfg->prefix, "greeted", j->conv, NULL, GREETED_TTL_S,
                      1))
            return -1;
    }
    int resolved = 0;
    const struct db_keyword_rule *k = db_keyword_rule_for(cfg, ev);
    if (k) {
        char rule[80];
        snprintf(rule, sizeof rule, "keyword:%.60s", k->name);
        if (add_answer(j, rule, k->answer, vars)) return -1;
        resolved = j->ans[j->n - 1].resolve = k->resolve;
    }
    const char *away = ssec ? db_schedule_text(ssec, "away_message", lang) : NULL;
    if (is_msg && closed && away && !resolved) {
        char period[32];
        snprintf(period, sizeof period, "%lld", (long long)since);
        long ttl = next_open > at ? (long)(next_open - at) + 3600 : 7 * 86400;
        if (add_answer(j, "away", away, vars) ||
            set_claim(&j->ans[j->n - 1], cfg->prefix, "away", j->conv, period, ttl, 0))
            return -1;
    }
    return 0;
}

/* ---- running the answers: claim, enqueue, mark, next; then acknowledge ---- */

static void job_free(struct job *j)
{
    struct db_autoreply *a = j->a;
    if (j->prev) j->prev->next = j->next;
    else if (a->jobs == j) a->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    db_consumer_release(a->consumer, 0, j->entry);
    for (size_t i = 0; i < j->n; i++) {
        free(j->ans[i].text);
        free(j->ans[i].claim_key);
    }
    free(j);
}

static void job_end(struct job *j)
{
    struct db_autoreply *a = j->a;
    a->inflight--;
    job_free(j);
}

/* Redis failed part-way: leave the entry pending for a claim (stream/consumer.h) to run again. */
static void job_fail(struct job *j, const char *what)
{
    struct db_log_ctx c;
    db_log(DB_LOG_WARN, ctx_of(j, &c), "%s failed; the event stays pending", what);
    job_end(j);
}

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    job_end(arg);
}

static void marked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        job_fail(j, "marking an answer");
        return;
    }
    struct db_log_ctx c;
    db_log(DB_LOG_INFO, ctx_of(j, &c), "automatic answer %s queued as %s", j->ans[j->i].rule,
           j->ans[j->i].id);
    j->i++;
    step(j);
}

static void enqueued_cb(int status, const char *id, const char *msg_status, int created,
                        void *arg)
{
    struct job *j = arg;
    struct answer *an = &j->ans[j->i];
    (void)msg_status, (void)created;
    if (status != DB_OK || !id) {
        job_fail(j, "queueing an answer");
        return;
    }
    snprintf(an->id, sizeof an->id, "%s", id);
    /* The record is what GET /v1/messages/{id} shows: mark it there too. */
    char key[256];
    db_key_tagged(key, sizeof key, j->a->svc->cfg->cfg->prefix, DB_KEY_MSG, an->id);
    db_redis_cmd(j->a->svc->redis, marked_cb, j, "HSET %s automatic true rule %s resolve %s", key,
                 an->rule, an->resolve ? "true" : "false");
}

static void claimed_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    if (status != DB_OK || reply->type != REDIS_REPLY_INTEGER) {
        job_fail(j, "claiming an answer");
        return;
    }
    if (reply->integer == 1) j->ans[j->i].claimed = 1;
    else j->i++; /* another event already took it */
    step(j);
}

/* Whether the conversation's survey takes this event (docs/survey.md), from the fields
 * state, survey_state, survey_answered_at, survey_window, survey_commented_at of its hash:
 * its answer, or the comment that follows within the window.  The dispatcher decides it for
 * good; this reader may run before or after it, so both of its states are taken: before, the
 * survey still waits for the answer or the comment; after, the time the comment was taken
 * bounds what was a comment. */
static int survey_takes(const struct job *j, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) return 0;
    const char *v[5];
    for (size_t i = 0; i < 5; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
    if (!v[0] || strcmp(v[0], "closed") || !v[1]) return 0;
    if (strcmp(v[1], "pending") == 0) return j->survey_shaped;
    if (strcmp(v[1], "answered") && strcmp(v[1], "done")) return 0;
    long long answered = v[2] ? strtoll(v[2], NULL, 10) : 0;
    long long window = v[3] ? strtoll(v[3], NULL, 10) : 0;
    long long until = v[4] ? strtoll(v[4], NULL, 10) : answered + window;
    return answered > 0 && j->received_ms <= until && (v[4] || j->received_ms < until);
}

static void gated_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        job_fail(j, "reading the survey");
        return;
    }
    if (survey_takes(j, reply)) {
        struct db_log_ctx c;
        db_log(DB_LOG_INFO, ctx_of(j, &c), "no automatic answer: the event answers the survey");
        j->i = j->n;
    }
    step(j);
}

static void step(struct job *j)
{
    struct db_autoreply *a = j->a;
    if (!j->gated && j->n > 0) {
        j->gated = 1;
        char key[320];
        db_key_tagged(key, sizeof key, a->svc->cfg->cfg->prefix, DB_KEY_CONV, j->conv);
        db_redis_cmd(a->svc->redis, gated_cb, j,
                     "HMGET %s state survey_state survey_answered_at survey_window "
                     "survey_commented_at", key);
        return;
    }
    if (j->i >= j->n) {
        db_redis_cmd(a->svc->redis, acked_cb, j, "XACK %s %s %s", a->events, GROUP, j->entry);
        return;
    }
    struct answer *an = &j->ans[j->i];
    if (an->claim_key && !an->claimed) {
        char ttl[24];
        snprintf(ttl, sizeof ttl, "%ld", an->claim_ttl);
        const char *args[] = {an->claim_key, j->event_id, ttl, an->refresh ? "1" : "0"};
        db_redis_eval(a->svc->redis, a->claim, claimed_cb, j, 0, NULL, 4, args, NULL);
        return;
    }
    char id[DB_ID_LEN + 1];
    db_id_new(id);
    json_t *cmd = json_pack("{s:s, s:s, s:s, s:b, s:s}", "id", id, "conversation", j->conv,
                            "text", an->text, "automatic", 1, "rule", an->rule);
    if (cmd && an->resolve) json_object_set_new(cmd, "resolve", json_true());
    char *txt = cmd ? db_json_dump(cmd) : NULL;
    json_decref(cmd);
    if (!txt) {
        job_fail(j, "building an answer");
        return;
    }
    char client[192];
    snprintf(client, sizeof client, "auto:%.64s:%.80s", j->event_id, an->rule);
    db_store_enqueue(a->svc->store, id, client, j->conv, j->platform, j->account, txt,
                     enqueued_cb, j);
    free(txt);
}

/* ---- reading P:events ---- */

/* 1 when a job holds the entry (its answers are then queued, then it is acknowledged). */
static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct db_autoreply *a = arg;
    (void)stream, (void)claimed;
    const redisReply *fields = entry->element[1];
    struct job *j = calloc(1, sizeof *j);
    if (!j || strlen(entry->element[0]->str) >= sizeof j->entry) {
        free(j);
        return 0; /* stays pending; claimed later */
    }
    j->a = a;
    j->next = a->jobs;
    if (a->jobs) a->jobs->prev = j;
    a->jobs = j;
    a->inflight++;
    snprintf(j->entry, sizeof j->entry, "%s", entry->element[0]->str);
    snprintf(j->event_id, sizeof j->event_id, "%s", j->entry);
    const char *text = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (k && v && strcmp(k, "event") == 0) text = v;
    }
    json_t *ev = NULL;
    struct db_err e = {0};
    const char *conv = NULL, *chat;
    if (text && db_json_parse_object(text, strlen(text), &ev, &e) == DB_OK)
        conv = db_json_str(ev, "conversation");
    if (ev && db_json_str(ev, "id"))
        snprintf(j->event_id, sizeof j->event_id, "%s", db_json_str(ev, "id"));
    /* Anything that is not a well-formed event of a configured account gets no answer. */
    if (conv && strlen(conv) < sizeof j->conv &&
        db_conversation_split(conv, j->platform, sizeof j->platform, j->account,
                              sizeof j->account, &chat) == DB_OK &&
        db_config_account(a->svc->cfg->cfg, j->platform, j->account)) {
        snprintf(j->conv, sizeof j->conv, "%s", conv);
        if (plan(a, j, ev) != 0) {
            json_decref(ev);
            job_fail(j, "planning answers");
            return 1;
        }
    }
    json_decref(ev);
    step(j);
    return 1;
}

/* Anything to answer at all: a schedule with a text, or a keyword rule. */
static int configured(const struct db_config *cfg)
{
    for (size_t i = 0; i < cfg->n_sections; i++)
        if (strcmp(cfg->sections[i].platform, "schedule") == 0 ||
            strcmp(cfg->sections[i].platform, "keyword") == 0)
            return 1;
    return 0;
}

int db_autoreply_start(struct db_services *svc, struct db_autoreply **out, struct db_err *e)
{
    const struct db_config *cfg = svc->cfg->cfg;
    *out = NULL;
    /* A reload that adds rules needs a restart of this reader; without any, reading every
     * event for nothing would only cost Redis work. */
    if (!configured(cfg)) return DB_OK;
    struct db_autoreply *a = calloc(1, sizeof *a);
    if (!a) return db_err_set(e, DB_ENOMEM, "out of memory");
    a->svc = svc;
    a->clock_offset_s = clock_offset();
    db_key(a->events, sizeof a->events, cfg->prefix, DB_KEY_EVENTS);
    db_key(a->dead, sizeof a->dead, cfg->prefix, DB_KEY_DEAD);
    /* From now on ("$"): history written before automatic answers were switched on is not
     * answered.  The consumer creates the group on the main connection, queued before any
     * webhook's write can be: every event accepted after the start is read, even the very
     * first. */
    struct db_consumer_opts co = {.redis = svc->redis,
                                  .metrics = svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-autoreply",
                                  .who = "autoreply",
                                  .what = "events",
                                  .group = GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {a->events},
                                  .labels = {"events"},
                                  .dead_key = a->dead,
                                  .start = "$",
                                  .count = READ_COUNT,
                                  .max_held = MAX_INFLIGHT,
                                  .min_read = READ_COUNT,
                                  .claim_idle_ms = cfg->claim_idle_ms,
                                  .max_deliveries = MAX_DELIVERIES};
    int rc = db_consumer_new(svc->base, &co, take_entry, NULL, a, &a->consumer, e);
    if (rc != DB_OK) goto fail;
    a->claim = db_redis_script_new(db_lua_autoreply_claim);
    if (!a->claim) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    db_consumer_start(a->consumer);
    *out = a;
    return DB_OK;
fail:
    db_autoreply_free(a);
    return rc;
}

void db_autoreply_stop_reading(struct db_autoreply *a)
{
    if (!a) return;
    a->stopped = 1;
    db_consumer_stop(a->consumer);
}

/* The group's creation counts: a shutdown right after the start waits for its answer. */
unsigned long db_autoreply_inflight(const struct db_autoreply *a)
{
    return a ? a->inflight + db_consumer_busy(a->consumer) : 0;
}

void db_autoreply_free(struct db_autoreply *a)
{
    if (!a) return;
    a->stopped = 1;
    db_consumer_free(a->consumer);
    a->consumer = NULL;
    while (a->jobs) job_free(a->jobs);
    db_redis_script_free(a->claim);
    free(a);
}
