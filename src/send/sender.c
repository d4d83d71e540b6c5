#include "send/sender.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "deskbridge/connector.h"
#include "conf/config.h"
#include "services/services.h"
#include "net/httpd.h"
#include "net/http_client.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "send/outbound.h"
#include "send/window.h"
#include "stream/consumer.h"
#include "stream/ordering.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "store/store.h"
#include "util/crypto.h"
#include "util/id.h"
#include "util/json.h"
#include "util/text.h"

#define READ_COUNT 64
#define SEND_TIMEOUT_MS 30000
#define MAX_PARTS 32

struct job {
    struct db_sender *s;
    struct db_order_slot slot; /* its place in its conversation's order */
    char entry[64];            /* outbox entry id */
    unsigned long batch;       /* the read that brought it (db_consumer_batch) */
    char id[72];               /* gateway message id */
    char platform[32], account[96];
    char *command_text;        /* owned: as read from the stream */
    json_t *cmd;               /* owned */
    struct db_cfg_ref *cfg;    /* held while a request is in flight */
    int attempt;               /* sends tried for the current part */
    int window_ok;             /* WhatsApp's window found open (or unknown) before the first
                                  send (send/window.h) */
    size_t part, nparts;
    size_t cut[MAX_PARTS + 1]; /* byte offsets of the text parts */
    char *ext[MAX_PARTS];      /* platform ids of the parts sent */
    struct event *timer;       /* next attempt */
    int waiting;               /* counted in s->waiting */
    struct event *record_timer;/* re-recording the outcome after a Redis failure */
    struct outcome {
        char status[16], code[48], msg[192];
    } out;
    char last_error[192];
    struct job *all_prev, *all_next; /* every job of the sender, for freeing */
};

struct db_sender {
    struct db_services *svc;
    struct db_consumer *consumer;
    struct db_ordering *order;
    struct db_sender_opts opts;
    struct job *all;
    size_t inflight;
    size_t waiting;            /* of those, asleep before a retry or queued behind their chat */
    int stopped;
    char outbox[160], dead[160];
};

static void send_part(struct job *j);
static void schedule(struct job *j, int64_t delay_ms);
static void finish(struct job *j, const char *status, const char *code, const char *msg);

static void window_cb(int status, void *arg)
{
    struct job *j = arg;
    if (status == DB_OK) {
        j->window_ok = 1;
        send_part(j);
    } else if (status == DB_EREJECTED) {
        /* Meta would refuse it with 131047: the message fails here, unsent. */
        finish(j, "failed", DB_WINDOW_CLOSED_CODE, DB_WINDOW_CLOSED_MSG);
    } else {
        schedule(j, 1000);
    }
}

static const struct db_log_ctx *job_ctx(const struct job *j, struct db_log_ctx *ctx)
{
    *ctx = (struct db_log_ctx){"sender", j->platform, j->account, j->id};
    return ctx;
}

static void set_waiting(struct job *j, int waiting)
{
    if (j->waiting == waiting) return;
    j->waiting = waiting;
    if (waiting) j->s->waiting++;
    else j->s->waiting--;
}

static void job_free(struct job *j)
{
    struct db_sender *s = j->s;
    set_waiting(j, 0);
    db_order_done(&j->slot);
    db_consumer_release(s->consumer, 0, j->entry);
    if (j->all_prev) j->all_prev->all_next = j->all_next;
    else if (s->all == j) s->all = j->all_next;
    if (j->all_next) j->all_next->all_prev = j->all_prev;
    if (j->timer) event_free(j->timer);
    if (j->record_timer) event_free(j->record_timer);
    for (size_t i = 0; i < MAX_PARTS; i++) free(j->ext[i]);
    db_cfg_unref(j->cfg);
    json_decref(j->cmd);
    free(j->command_text);
    free(j);
}

/* The job's work is over (its entry acknowledged, or left pending): the next message of its
 * conversation may go (job_free tells the ordering). */
static void job_done(struct job *j)
{
    j->s->inflight--;
    job_free(j);
}

/* ---- finishing: record the final state, then acknowledge ---- */

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    /* An XACK that did not arrive leaves the entry pending; it is claimed later and skipped
     * because its record is no longer queued. */
    job_done(arg);
}

static void ack(struct job *j)
{
    db_redis_cmd(j->s->svc->redis, acked_cb, j, "XACK %s %s %s", j->s->outbox, DB_SENDER_GROUP,
                 j->entry);
}

static void record(struct job *j);

static void record_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    record(arg);
}

static void recorded_cb(int status, const char *id, const char *msg_status, int changed,
                        void *arg)
{
    struct job *j = arg;
    (void)id, (void)changed, (void)msg_status;
    if (status != DB_OK) {
        /* Redis is away: keep the job and its outcome, and record it again. */
        struct db_log_ctx ctx;
        db_log(DB_LOG_WARN, job_ctx(j, &ctx), "could not record the outcome; retrying");
        struct timeval tv = {1, 0};
        if (!j->record_timer) j->record_timer = evtimer_new(j->s->svc->base, record_timer_cb, j);
        if (j->record_timer) evtimer_add(j->record_timer, &tv);
        return;
    }
    ack(j);
}

static void record(struct job *j)
{
    const char *ext[MAX_PARTS];
    size_t n = 0;
    for (; n < j->nparts && j->ext[n]; n++) ext[n] = j->ext[n];
    db_store_set_status(j->s->svc->store, j->id, j->platform, j->account, j->out.status, ext, n,
                        j->out.code[0] ? j->out.code : NULL, j->out.msg[0] ? j->out.msg : NULL,
                        j->attempt, recorded_cb, j);
}

/* Records the final state (sent or failed), then acknowledges the entry. */
static void finish(struct job *j, const char *status, const char *code, const char *msg)
{
    struct db_log_ctx ctx;
    db_metrics_send(j->s->svc->metrics, j->platform, status, code ? code : "");
    if (strcmp(status, "failed") == 0)
        db_log(DB_LOG_WARN, job_ctx(j, &ctx), "failed code=%s: %s", code ? code : "",
               msg ? msg : "");
    else
        db_log(DB_LOG_INFO, job_ctx(j, &ctx), "sent parts=%zu attempts=%d", j->nparts,
               j->attempt);
    snprintf(j->out.status, sizeof j->out.status, "%s", status);
    snprintf(j->out.code, sizeof j->out.code, "%s", code ? code : "");
    snprintf(j->out.msg, sizeof j->out.msg, "%s", msg ? msg : "");
    record(j);
}

/* ---- sending ---- */

static int64_t backoff_ms(const struct db_config *cfg, int attempt)
{
    int64_t d = cfg->retry_base_ms;
    for (int i = 1; i < attempt && d < cfg->retry_max_ms; i++) d *= 2;
    if (d > cfg->retry_max_ms) d = cfg->retry_max_ms;
    /* +-20% jitter so a platform outage does not end in a synchronized stampede. */
    unsigned char r;
    if (db_random_bytes(&r, 1) == 0) d = d * (80 + r % 41) / 100;
    return d;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct job *j = arg;
    set_waiting(j, 0);
    /* An earlier message of the conversation taken over meanwhile goes first. */
    if (db_order_yield(&j->slot)) {
        set_waiting(j, 1);
        return;
    }
    send_part(j);
}

static void schedule(struct job *j, int64_t delay_ms)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    if (!j->timer) j->timer = evtimer_new(j->s->svc->base, timer_cb, j);
    if (!j->timer || evtimer_add(j->timer, &tv) != 0)
        finish(j, "failed", "internal", "could not schedule a retry");
    else
        set_waiting(j, 1);
}

static void sent_cb(const struct db_http_resp *resp, void *arg)
{
    struct job *j = arg;
    struct db_sender *s = j->s;
    const struct db_account *acct =
        db_config_account(j->cfg->cfg, j->platform, j->account);
    struct db_send_result res;
    struct db_err e = {0};
    struct db_log_ctx ctx;
    memset(&res, 0, sizeof res);
    if (!acct) {
        finish(j, "failed", "account", "the account was removed from the configuration");
        return;
    }
    (void)db_conn_read_send(acct->conn, acct->state, resp, &res, &e);
    db_cfg_unref(j->cfg);
    j->cfg = NULL;

    if (res.outcome == DB_SEND_SENT) {
        j->ext[j->part] = strdup(res.external_id);
        if (++j->part < j->nparts) {
            j->attempt = 0;
            send_part(j);
        } else {
            finish(j, "sent", NULL, NULL);
        }
        return;
    }
    if (res.outcome == DB_SEND_FAILED) {
        finish(j, "failed", res.err_code, res.err_msg);
        return;
    }
    /* Transient. */
    snprintf(j->last_error, sizeof j->last_error, "%.40s%s%.140s", res.err_code,
             res.err_code[0] ? ": " : "",
             res.err_msg[0] ? res.err_msg : (resp->transport_error ? "network error" : "retry"));
    const struct db_config *cfg = s->svc->cfg->cfg;
    if (j->attempt >= cfg->send_max_attempts) {
        char msg[192];
        snprintf(msg, sizeof msg, "gave up after %d attempts: %.150s", j->attempt, j->last_error);
        finish(j, "failed", "retries_exhausted", msg);
        return;
    }
    int64_t delay = res.retry_after_ms > 0 ? res.retry_after_ms : backoff_ms(cfg, j->attempt);
    if (res.per_chat) db_order_wait_until(&j->slot, db_now_ms() + delay);
    db_metrics_send(s->svc->metrics, j->platform, "retry",
                    res.err_code[0] ? res.err_code : (resp->status ? "http" : "network"));
    db_log(DB_LOG_WARN, job_ctx(j, &ctx), "attempt %d failed (%s); retry in %lld ms", j->attempt,
           j->last_error, (long long)delay);
    schedule(j, delay);
}

/* Cuts the text into parts of at most max characters (the first: first characters, a
 * caption's limit when it goes with media), preferring a line break or a space in the last
 * tenth of a part so words stay whole. */
static void split_text(struct job *j, const char *text, size_t first, size_t max)
{
    size_t len = strlen(text), at = 0;
    j->nparts = 0;
    j->cut[0] = 0;
    while (at < len && j->nparts < MAX_PARTS) {
        size_t n = db_utf8_prefix(text + at, len - at, j->nparts ? max : first);
        if (at + n < len && j->nparts + 1 < MAX_PARTS) {
            size_t floor = n - n / 10;
            for (size_t k = n; k > floor; k--)
                if (text[at + k - 1] == '\n' || text[at + k - 1] == ' ') {
                    n = k;
                    break;
                }
        } else if (at + n < len) {
            n = len - at; /* the last allowed part takes the rest; the platform may refuse it */
        }
        at += n;
        j->cut[++j->nparts] = at;
    }
    if (j->nparts == 0) j->cut[++j->nparts] = 0;
}

/* Decides a message's parts on its first attempt: the media goes with the first part, as far
 * as a caption may hold, and the rest follows as text. */
static void plan_parts(struct job *j, const struct db_connector *conn,
                       const struct db_outbound *msg)
{
    j->nparts = 1;
    if (msg->text && conn->split_long_text && conn->max_text_chars)
        split_text(j, msg->text, db_outbound_text_limit(conn, msg), conn->max_text_chars);
}

static void send_part(struct job *j)
{
    struct db_sender *s = j->s;
    int64_t not_before = db_order_not_before(&j->slot);
    if (not_before > db_now_ms()) {
        schedule(j, not_before - db_now_ms());
        return;
    }
    db_cfg_unref(j->cfg);
    j->cfg = db_cfg_ref(s->svc);
    const struct db_account *acct;
    struct db_outbound msg;
    struct db_err e = {0};
    if (db_outbound_from_json(j->cfg->cfg, j->cmd, &acct, &msg, NULL, &e) != DB_OK) {
        finish(j, "failed", "invalid", e.msg);
        return;
    }
    if (j->nparts == 0) plan_parts(j, acct->conn, &msg);
    msg.id = j->id;
    if (!j->window_ok && j->part == 0 && j->attempt == 0 && db_window_applies(acct, &msg)) {
        db_window_check(s->svc->store, db_json_str(j->cmd, "conversation"), window_cb, j);
        return;
    }
    char *part = NULL;
    if (j->nparts > 1) {
        part = strndup(msg.text + j->cut[j->part], j->cut[j->part + 1] - j->cut[j->part]);
        if (!part) {
            schedule(j, 1000);
            return;
        }
        msg.text = part;
        /* Media and reply marks belong to the first part only. */
        if (j->part > 0) msg.media_url = msg.media_id = msg.media_type = msg.reply_to = NULL;
        if (j->part + 1 < j->nparts) msg.buttons = NULL; /* buttons go with the last part */
    }
    struct db_http_req req = {0};
    int rc = db_conn_build_send(acct->conn, acct->state, &msg, &req, &e);
    free(part);
    if (rc != DB_OK) {
        db_http_req_clear(&req);
        finish(j, "failed", "invalid", e.msg);
        return;
    }
    j->attempt++;
    rc = db_http_client_send(s->svc->platform_http, &req, SEND_TIMEOUT_MS, sent_cb, NULL, j, NULL);
    db_http_req_clear(&req);
    if (rc != DB_OK) schedule(j, 1000);
}

/* ---- reading the outbox ---- */

static void adopted_cb(int status, const char *id, const char *msg_status, int created,
                       void *arg)
{
    struct job *j = arg;
    struct db_log_ctx ctx;
    (void)id, (void)created;
    if (status != DB_OK) {
        /* Leave the entry pending; it is claimed again after claim_idle_ms. */
        db_log(DB_LOG_WARN, job_ctx(j, &ctx), "could not load the message record");
        j->s->inflight--;
        job_free(j);
        return;
    }
    if (msg_status && strcmp(msg_status, "queued") != 0) {
        /* Already sent or failed before a crash cut the acknowledgement: nothing to do. */
        db_log(DB_LOG_INFO, job_ctx(j, &ctx), "already %s; acknowledging", msg_status);
        ack(j);
        return;
    }
    /* Waits (set_waiting) until the conversation's earlier messages, in this process or
     * another, are done; ready_cb starts it. */
    set_waiting(j, 1);
    if (db_order_add(j->s->order, &j->slot, 0, j->entry, db_json_str(j->cmd, "conversation"),
                     j->batch) != DB_OK) {
        /* Without memory for its place: left pending, claimed again later. */
        job_done(j);
    }
}

/* The grant's state as the store recorded it (HMGET enabled can_reply).  A grant recorded
 * as disabled fails the message at once with a code an agent can act on, rather than after
 * the platform's refusal; an unknown grant or an unreachable Redis lets the platform
 * decide. */
static void grant_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    (void)errstr;
    if (status == DB_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        const char *en = reply->element[0]->str, *cr = reply->element[1]->str;
        if (en && strcmp(en, "0") == 0) {
            finish(j, "failed", "business_connection_disabled",
                   "the business account disabled the bot's connection");
            return;
        }
        if (cr && strcmp(cr, "0") == 0) {
            finish(j, "failed", "business_connection_cannot_reply",
                   "the business account does not let the bot reply");
            return;
        }
    }
    send_part(j);
}

static void ready_cb(struct db_order_slot *slot, void *arg)
{
    struct job *j = (struct job *)((char *)slot - offsetof(struct job, slot));
    (void)arg;
    set_waiting(j, 0);
    const struct db_account *acct =
        db_config_account(j->s->svc->cfg->cfg, j->platform, j->account);
    char platform[32], account[96], grant[160], key[512];
    const char *chat;
    const char *conv = db_json_str(j->cmd, "conversation");
    if (acct && acct->conn->send_grant &&
        db_conversation_split(conv, platform, sizeof platform, account, sizeof account,
                              &chat) == DB_OK &&
        acct->conn->send_grant(chat, grant, sizeof grant)) {
        char suffix[384];
        snprintf(suffix, sizeof suffix, DB_KEY_GRANT ":%s:%s:%s", j->platform, j->account, grant);
        db_key(key, sizeof key, j->s->svc->cfg->cfg->prefix, suffix);
        db_redis_cmd(j->s->svc->redis, grant_cb, j, "HMGET %s enabled can_reply", key);
        return;
    }
    send_part(j);
}

static void dead_cb(int status, int written, void *arg)
{
    (void)status, (void)written;
    /* Not written: the entry stays pending and is dead-lettered again after a claim. */
    job_done(arg);
}

/* Takes one outbox entry (id + field/value pairs); 1 when a job holds it. */
static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct db_sender *s = arg;
    (void)stream;
    if (s->stopped) return 0; /* shutting down: it stays pending */
    const redisReply *fields = entry->element[1];
    struct job *j = calloc(1, sizeof *j);
    if (!j || strlen(entry->element[0]->str) >= sizeof j->entry) {
        free(j);
        return 0; /* stays pending; claimed later */
    }
    j->s = s;
    j->all_next = s->all;
    if (s->all) s->all->all_prev = j;
    s->all = j;
    s->inflight++;
    snprintf(j->entry, sizeof j->entry, "%s", entry->element[0]->str);
    j->batch = db_consumer_batch(s->consumer);
    const char *given_id = NULL;
    int recorded = 0;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (!k || !v) continue;
        if (strcmp(k, "command") == 0 && !j->command_text) j->command_text = strdup(v);
        else if (strcmp(k, "id") == 0) given_id = v;
        else if (strcmp(k, "recorded") == 0) recorded = strcmp(v, "1") == 0;
    }
    struct db_err e = {0};
    const char *reason = NULL;
    if (!j->command_text) reason = "entry has no command field";
    else if (db_json_parse_object(j->command_text, strlen(j->command_text), &j->cmd, &e) != DB_OK)
        reason = e.msg;
    if (!reason && !given_id) given_id = db_json_str(j->cmd, "id");
    if (given_id) snprintf(j->id, sizeof j->id, "%s", given_id);
    else snprintf(j->id, sizeof j->id, "o-%s", j->entry); /* stable across re-claims */

    const struct db_account *acct = NULL;
    struct db_outbound msg;
    if (!reason &&
        db_outbound_from_json(s->svc->cfg->cfg, j->cmd, &acct, &msg, NULL, &e) != DB_OK)
        reason = e.msg;
    if (reason) {
        struct db_log_ctx ctx = {"sender", NULL, NULL, j->entry};
        db_log(DB_LOG_WARN, &ctx, "outbox entry dead-lettered: %s", reason);
        db_consumer_dead_letter(s->consumer, 0, j->entry, reason, NULL, dead_cb, j);
        return 1;
    }
    snprintf(j->platform, sizeof j->platform, "%s", acct->platform);
    snprintf(j->account, sizeof j->account, "%s", acct->id);
    /* The gateway's own enqueue wrote the record (queued) with the entry, and nothing moves a
     * queued message before the sender first has it: that first delivery needs no look.  A
     * claimed entry may have been sent before a crash, so it is looked up. */
    if (recorded && !claimed) adopted_cb(DB_OK, j->id, "queued", 0, j);
    else
        db_store_adopt(s->svc->store, j->id, db_json_str(j->cmd, "conversation"), j->platform,
                       j->account, adopted_cb, j);
    return 1;
}

int db_sender_start(struct db_services *svc, const struct db_sender_opts *opts,
                    struct db_sender **out, struct db_err *e)
{
    struct db_sender *s = calloc(1, sizeof *s);
    if (!s) return db_err_set(e, DB_ENOMEM, "out of memory");
    s->svc = svc;
    s->opts = (struct db_sender_opts){256, 30000, 10};
    if (opts) {
        if (opts->max_inflight > 0) s->opts.max_inflight = opts->max_inflight;
        if (opts->claim_idle_ms > 0) s->opts.claim_idle_ms = opts->claim_idle_ms;
        if (opts->max_deliveries > 0) s->opts.max_deliveries = opts->max_deliveries;
    }
    const struct db_config *cfg = svc->cfg->cfg;
    db_key(s->outbox, sizeof s->outbox, cfg->prefix, DB_KEY_OUTBOX);
    db_key(s->dead, sizeof s->dead, cfg->prefix, DB_KEY_DEAD);
    /* From the start of the stream ("0"): commands written before the first gateway ran are
     * still to be sent. */
    struct db_consumer_opts co = {.redis = svc->redis,
                                  .metrics = svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-sender",
                                  .who = "sender",
                                  .what = "outbox",
                                  .group = DB_SENDER_GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {s->outbox},
                                  .labels = {"outbox"},
                                  .dead_key = s->dead,
                                  .start = "0",
                                  .count = READ_COUNT,
                                  .max_held = s->opts.max_inflight,
                                  .claim_idle_ms = s->opts.claim_idle_ms,
                                  .max_deliveries = s->opts.max_deliveries};
    struct db_ordering_opts oo = {.redis = svc->redis,
                                  .who = "sender",
                                  .group = DB_SENDER_GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {s->outbox},
                                  .fields = {"command"}};
    int rc = db_consumer_new(svc->base, &co, take_entry, NULL, s, &s->consumer, e);
    if (rc == DB_OK) rc = db_ordering_new(svc->base, &oo, ready_cb, s, &s->order, e);
    if (rc != DB_OK) {
        db_sender_free(s);
        return rc;
    }
    db_consumer_start(s->consumer);
    *out = s;
    return DB_OK;
}

void db_sender_stop_reading(struct db_sender *s)
{
    if (!s) return;
    s->stopped = 1;
    /* The ordering goes on: messages queued behind one in flight follow it while draining,
     * as far as the shutdown timeout allows. */
    db_consumer_stop(s->consumer);
}

size_t db_sender_inflight(const struct db_sender *s)
{
    /* A job asleep before a retry (or queued behind one) holds no request open: shutdown
     * need not wait for it, its entry stays pending and another process claims it. */
    return s ? s->inflight - s->waiting : 0;
}

void db_sender_free(struct db_sender *s)
{
    if (!s) return;
    s->stopped = 1;
    db_consumer_free(s->consumer);
    s->consumer = NULL;
    db_ordering_free(s->order);
    s->order = NULL;
    while (s->all) job_free(s->all);
    free(s);
}
