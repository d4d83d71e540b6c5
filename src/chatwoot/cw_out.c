/* cw_out.c - the bridge's stream work: P:events to Chatwoot (customer to agent) and P:status
 * to Chatwoot's message statuses (ticks), one consumer group per [chatwoot NAME] on both
 * streams, read through the shared consumer (stream/consumer.h) and ordered per deskbridge
 * conversation (stream/ordering.h).
 *
 * An event becomes one Chatwoot message in steps, each result kept in Redis before the next:
 *   1. P:chatwoot:NAME:ev:<event id> says what happened to the event before: a Chatwoot
 *      message id (done: acknowledge), or "pending" (an attempt was made whose answer never
 *      came: look for the message before posting again).
 *   2. P:chatwoot:NAME:conv:<conversation> holds the Chatwoot contact, source_id and
 *      conversation.  Missing: the contact is created (identifier = the deskbridge
 *      conversation, source_id = the same), or, when Chatwoot says the identifier is taken
 *      (the mapping was lost), found by exact identifier; its conversation in this inbox is
 *      found again before a new one is made, always with the source_id, so nothing is
 *      duplicated.
 *   3. Before the POST the event key is set to "pending"; the POST carries the event id as
 *      the message's source_id.  Chatwoot has no idempotency key on messages, so after an
 *      attempt without an answer the conversation's latest messages are searched for that
 *      source_id: a retry after a timeout never makes a second message.
 *   4. The answer's id goes into the event key, then the entry is acknowledged.
 * A failure worth repeating (network, 408, 429, 5xx) waits retry_base_ms doubling to
 * retry_max_ms, the conversation's later entries waiting behind it; after max_attempts the
 * entry goes to P:dead.  Chatwoot's 4xx answers other than those are dead-lettered at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "chatwoot/chatwoot.h"
#include "chatwoot/cw_internal.h"
#include "conf/config.h"
#include "services/services.h"
#include "deskbridge/connector.h"
#include "log/log.h"
#include "media/fetch.h"
#include "metrics/metrics.h"
#include "net/http_client.h"
#include "redis/redis.h"
#include "stream/consumer.h"
#include "stream/ordering.h"
#include "util/crypto.h"
#include "util/json.h"

#define READ_COUNT 64
#define MAX_HELD 256
#define MAX_DELIVERIES 10
#define SEARCH_PAGES 5
#define MEDIA_TIMEOUT_MS 120000L

enum { ST_EVENTS = 0, ST_STATUS = 1 };
static const char *const stream_label[] = {"events", "status"};
static const char *const stream_field[] = {"event", "status"};

enum step {
    S_LOOKUP,     /* read the event key */
    S_CONV,       /* read the conversation mapping */
    S_CONTACT,    /* create the contact */
    S_SEARCH,     /* find the contact by identifier */
    S_CONVS,      /* find the contact's conversation in this inbox */
    S_NEWCONV,    /* create the conversation */
    S_SAVECONV,   /* write the conversation mapping */
    S_FIND,       /* look for the message of an unanswered attempt */
    S_MEDIA,      /* fetch the file */
    S_MARK,       /* event key = pending */
    S_POST,       /* create the message */
    S_SAVE,       /* event key = message id */
    S_PATCH,      /* a status entry: PATCH the message */
};

struct bridge;

struct job {
    struct bridge *b;
    struct db_order_slot slot;
    struct job *next;             /* ready queue */
    struct job *all_prev, *all_next;
    int stream;
    char entry[64];
    json_t *obj;                  /* the entry's JSON */
    enum step step;
    int attempt, page, pending, busy, queued;
    int no_phone;                 /* the number belongs to another contact: leave it out */
    long contact, conv, msg, patch_conv, patch_msg;
    char source_id[192];
    char *file;                   /* fetched media, owned */
    size_t file_len;
    char file_type[128];
    char *note;                   /* said instead of a file that could not be fetched */
    struct db_http_call *call;
    struct db_media_fetch *fetch;
    struct op *op;
    struct event *timer;
    char reason[200];
};

struct op {
    struct db_chatwoot *cw;
    struct job *job;
    struct op *prev, *next;
};

struct bridge {
    struct db_chatwoot *cw;
    struct db_chatwoot_conf o;    /* its strings borrowed from cw->cfg */
    char label[48];               /* "chatwoot:NAME" */
    char group[160];
    char key_prefix[200];         /* "<prefix>:chatwoot:NAME:" */
    struct db_http_client *http;
    struct db_consumer *consumer;
    struct db_ordering *order;
    struct job *all, *ready_head, *ready_tail;
    size_t active;
    struct bridge *next;
};

struct db_chatwoot {
    struct db_services *svc;
    struct db_cfg_ref *cfg;       /* the accounts and sections the bridges read */
    struct bridge *bridges;
    struct op *ops;
    int stopped, freeing;
    char streams[2][160];
    char dead_key[160];
};

static void run(struct job *j);
static void pump(struct bridge *b);

static struct db_log_ctx *ctx_of(const struct job *j, struct db_log_ctx *ctx)
{
    ctx->module = "chatwoot";
    ctx->platform = j->obj ? db_json_str(j->obj, "platform") : NULL;
    ctx->account = j->obj ? db_json_str(j->obj, "account") : NULL;
    ctx->id = j->entry;
    return ctx;
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    struct bridge *b = j->b;
    if (j->all_prev) j->all_prev->all_next = j->all_next;
    else b->all = j->all_next;
    if (j->all_next) j->all_next->all_prev = j->all_prev;
    db_order_done(&j->slot);
    db_consumer_release(b->consumer, j->stream, j->entry);
    if (j->op) j->op->job = NULL;
    if (j->timer) event_free(j->timer);
    json_decref(j->obj);
    free(j->file);
    free(j->note);
    free(j);
}

static void job_done(struct job *j)
{
    struct bridge *b = j->b;
    if (j->busy) b->active--;
    job_free(j);
    pump(b);
}

static struct op *op_new(struct job *j)
{
    struct db_chatwoot *cw = j->b->cw;
    struct op *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->cw = cw;
    o->job = j;
    j->op = o;
    o->next = cw->ops;
    if (cw->ops) cw->ops->prev = o;
    cw->ops = o;
    return o;
}

/* Ends o; returns its job, NULL when the job (or the bridge) went away meanwhile. */
static struct job *op_take(struct op *o)
{
    struct job *j = o->job;
    if (j) j->op = NULL;
    if (o->cw) {
        if (o->prev) o->prev->next = o->next;
        else o->cw->ops = o->next;
        if (o->next) o->next->prev = o->prev;
    }
    free(o);
    return j;
}

static void key_of(const struct job *j, const char *kind, const char *id, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s:%s", j->b->key_prefix, kind, id);
}

/* ---- finishing ---- */

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    struct job *j = op_take(arg);
    /* A failed XACK leaves the entry pending: claimed later, its event key says it is done. */
    if (j) job_done(j);
}

static void ack(struct job *j)
{
    struct op *o = op_new(j);
    if (!o) {
        job_done(j);
        return;
    }
    db_redis_cmd(j->b->cw->svc->redis, acked_cb, o, "XACK %s %s %s", j->b->cw->streams[j->stream],
                 j->b->group, j->entry);
}

static void dead_cb(int status, int written, void *arg)
{
    struct job *j = arg;
    (void)written;
    struct db_log_ctx ctx;
    if (status != DB_OK)
        db_log(DB_LOG_WARN, ctx_of(j, &ctx), "bridge=%s dead letter not written; left pending",
               j->b->label);
    job_done(j);
}

static void dead_letter(struct job *j)
{
    struct db_log_ctx ctx;
    struct bridge *b = j->b;
    db_log(DB_LOG_WARN, ctx_of(j, &ctx), "bridge=%s stream=%s dead-lettered: %s", b->label,
           stream_label[j->stream], j->reason);
    db_metrics_bridge(b->cw->svc->metrics, b->label,
                      j->stream == ST_EVENTS ? "to_helpdesk" : "status", "dead");
    const char *extra[] = {"bridge", b->label, NULL};
    db_consumer_dead_letter(b->consumer, j->stream, j->entry, j->reason, extra, dead_cb, j);
}

static int64_t backoff_ms(const struct bridge *b, int attempt)
{
    int64_t d = b->o.retry_base_ms;
    for (int i = 1; i < attempt && d < b->o.retry_max_ms; i++) d *= 2;
    unsigned char r;
    if (db_random_bytes(&r, 1) == 0) d = d * (80 + r % 41) / 100;
    if (d > b->o.retry_max_ms) d = b->o.retry_max_ms;
    return d < 1 ? 1 : d;
}

static void make_ready(struct job *j)
{
    struct bridge *b = j->b;
    j->next = NULL;
    j->queued = 1;
    if (b->ready_tail) b->ready_tail->next = j;
    else b->ready_head = j;
    b->ready_tail = j;
}

static void retry_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct job *j = arg;
    if (j->b->cw->stopped) {
        job_done(j); /* stays pending for whoever runs next */
        return;
    }
    /* An event starts over: after an attempt without an answer its key says "pending" and
     * the message is looked for before it is posted again. */
    if (j->stream == ST_EVENTS) j->step = S_LOOKUP;
    make_ready(j);
    pump(j->b);
}

/* The step failed.  retry: worth another attempt (then after a backoff, up to max_attempts);
 * otherwise dead-lettered now. */
static void fail(struct job *j, int retry, const char *fmt, ...) DB_PRINTF(3, 4);
static void fail(struct job *j, int retry, const char *fmt, ...)
{
    struct bridge *b = j->b;
    va_list ap;
    char why[160];
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *dir = j->stream == ST_EVENTS ? "to_helpdesk" : "status";
    if (b->cw->stopped) {
        job_done(j);
        return;
    }
    j->attempt++;
    if (!retry || j->attempt >= b->o.max_attempts) {
        if (retry) snprintf(j->reason, sizeof j->reason, "gave up after %d attempts: %s",
                            j->attempt, why);
        else snprintf(j->reason, sizeof j->reason, "refused: %s", why);
        db_metrics_bridge(b->cw->svc->metrics, b->label, dir, "failed");
        dead_letter(j);
        return;
    }
    db_metrics_bridge(b->cw->svc->metrics, b->label, dir, "retry");
    int64_t d = backoff_ms(b, j->attempt);
    struct db_log_ctx ctx;
    db_log(DB_LOG_INFO, ctx_of(j, &ctx), "bridge=%s attempt %d failed (%s); again in %lld ms",
           b->label, j->attempt, why, (long long)d);
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    if (!j->timer) j->timer = evtimer_new(b->cw->svc->base, retry_timer_cb, j);
    if (!j->timer || evtimer_add(j->timer, &tv) != 0) {
        snprintf(j->reason, sizeof j->reason, "internal: could not schedule a retry");
        dead_letter(j);
        return;
    }
    /* Waiting does not hold a concurrency slot. */
    if (j->busy) j->busy = 0, b->active--;
}

static void finished(struct job *j)
{
    db_metrics_bridge(j->b->cw->svc->metrics, j->b->label,
                      j->stream == ST_EVENTS ? "to_helpdesk" : "status", "ok");
    ack(j);
}

/* ---- Redis steps ---- */

static int reply_ok(int status, const redisReply *r)
{
    return status == DB_OK && r && r->type != REDIS_REPLY_ERROR;
}

static void lookup_cb(int status, const redisReply *r, const char *errstr, void *arg)
{
    (void)errstr;
    struct job *j = op_take(arg);
    if (!j) return;
    if (!reply_ok(status, r)) return fail(j, 1, "redis unavailable");
    if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "pending") != 0) {
        finished(j); /* already a Chatwoot message */
        return;
    }
    j->pending = r->type == REDIS_REPLY_STRING;
    j->step = S_CONV;
    run(j);
}

static void conv_cb(int status, const redisReply *r, const char *errstr, void *arg)
{
    (void)errstr;
    struct job *j = op_take(arg);
    if (!j) return;
    if (!reply_ok(status, r)) return fail(j, 1, "redis unavailable");
    j->conv = j->contact = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!k || !v) continue;
        if (strcmp(k, "conv") == 0) j->conv = strtol(v, NULL, 10);
        else if (strcmp(k, "contact") == 0) j->contact = strtol(v, NULL, 10);
        else if (strcmp(k, "source") == 0) snprintf(j->source_id, sizeof j->source_id, "%s", v);
    }
    if (j->conv > 0) j->step = j->pending ? S_FIND : S_MEDIA;
    else j->step = S_CONTACT;
    run(j);
}

static void saved_cb(int status, const redisReply *r, const char *errstr, void *arg)
{
    (void)errstr;
    struct job *j = op_take(arg);
    if (!j) return;
    if (!reply_ok(status, r)) return fail(j, 1, "redis unavailable");
    if (j->step == S_SAVECONV) j->step = j->pending ? S_FIND : S_MEDIA;
    else if (j->step == S_MARK) j->step = S_POST;
    else if (j->step == S_SAVE) return finished(j);
    run(j);
}

/* ---- HTTP steps ---- */

static void http_cb(const struct db_http_resp *resp, void *arg);

static void send_req(struct job *j, struct db_http_req *req, int rc)
{
    if (rc == DB_OK)
        rc = db_http_client_send(j->b->http, req, 0, http_cb, NULL, j, &j->call);
    db_http_req_clear(req);
    if (rc != DB_OK) fail(j, 1, "request not sent: %s", db_strerror(rc));
}

static void media_cb(int status, const char *body, size_t len, const char *ctype,
                     const char *why, void *arg)
{
    struct job *j = arg;
    j->fetch = NULL;
    if (j->b->cw->freeing) return;
    if (status == DB_EAGAIN) return fail(j, 1, "media: %s", why);
    if (status != DB_OK) {
        /* The platform no longer has the file: the message goes without it, saying so. */
        free(j->note);
        j->note = strdup(status == DB_ETOOBIG
                             ? "(the customer sent a file too large to pass on)"
                             : "(the customer's file could not be fetched from the messenger)");
        j->step = S_MARK;
        run(j);
        return;
    }
    j->file = malloc(len ? len : 1);
    if (!j->file) return fail(j, 1, "out of memory");
    if (len) memcpy(j->file, body, len);
    j->file_len = len;
    const char *mt = db_json_str(json_object_get(j->obj, "media"), "mime_type");
    const char *type = db_json_str(j->obj, "type");
    /* Telegram names no type for photos and its file server answers a generic one. */
    if (!mt && type && strcmp(type, "image") == 0 && strncmp(ctype, "image/", 6) != 0)
        mt = "image/jpeg";
    snprintf(j->file_type, sizeof j->file_type, "%s", mt ? mt : ctype);
    j->step = S_MARK;
    run(j);
}

static void start_media(struct job *j)
{
    const json_t *media = json_object_get(j->obj, "media");
    const char *platform = db_json_str(j->obj, "platform");
    const char *account = db_json_str(j->obj, "account");
    const struct db_account *acct = db_config_account(j->b->cw->cfg->cfg, platform, account);
    static const char *const files[] = {"image",   "video",   "audio",     "voice",
                                        "document", "sticker", "animation", NULL};
    const char *type = db_json_str(j->obj, "type");
    int is_file = 0;
    for (size_t i = 0; type && files[i]; i++) is_file |= strcmp(type, files[i]) == 0;
    /* A Viber "url" message's media is the link itself, not a file. */
    if (!is_file || !json_is_object(media) || !acct || j->file) {
        j->step = S_MARK;
        return run(j);
    }
    int rc = db_media_fetch(j->b->cw->svc, acct, db_json_str(media, "id"),
                            db_json_str(media, "url"), MEDIA_TIMEOUT_MS, media_cb, j, &j->fetch);
    if (rc == DB_ENOMEM) return fail(j, 1, "out of memory");
    if (rc != DB_OK) {
        free(j->note);
        j->note = strdup("(the customer sent a file this messenger does not let us fetch)");
        j->step = S_MARK;
        run(j);
    }
}

static void http_cb(const struct db_http_resp *resp, void *arg)
{
    struct job *j = arg;
    j->call = NULL;
    if (j->b->cw->freeing) return;
    struct bridge *b = j->b;
    long st = resp->status;
    int ok = st >= 200 && st < 300;
    const char *net = resp->transport_error ? resp->transport_error : "no answer";
    if (!ok && cw_retryable(st)) {
        /* No answer to a message POST: it may exist; the event key says "pending". */
        if (st) return fail(j, 1, "HTTP %ld", st);
        return fail(j, 1, "network: %.80s", net);
    }
    if (st == 401) return fail(j, 1, "HTTP 401 (api_access_token refused)");
    switch (j->step) {
    case S_CONTACT:
        if (ok && cw_read_contact(resp, &j->contact, j->source_id, sizeof j->source_id) == 0) {
            if (!*j->source_id)
                snprintf(j->source_id, sizeof j->source_id, "%s",
                         db_json_str(j->obj, "conversation"));
            j->step = S_NEWCONV;
            return run(j);
        }
        /* The number is another contact's (the same customer on a second WhatsApp account):
         * this contact goes without it. */
        if (st == 422 && !j->no_phone && cw_read_refused(resp, "phone_number") &&
            !cw_read_refused(resp, "identifier")) {
            j->no_phone = 1;
            return run(j);
        }
        if (st == 422) { /* identifier taken: the contact exists, the mapping was lost */
            j->page = 1;
            j->step = S_SEARCH;
            return run(j);
        }
        return fail(j, 0, "creating the contact answered HTTP %ld", st);
    case S_SEARCH: {
        int more = 0;
        int r = ok ? cw_read_search(resp, db_json_str(j->obj, "conversation"), &j->contact, &more)
                   : -1;
        if (r == 0) {
            snprintf(j->source_id, sizeof j->source_id, "%s", db_json_str(j->obj, "conversation"));
            j->step = S_CONVS;
        } else if (r == 1 && more && j->page < SEARCH_PAGES) {
            j->page++;
        } else {
            return fail(j, 0, "the contact exists in Chatwoot but was not found (HTTP %ld)", st);
        }
        return run(j);
    }
    case S_CONVS: {
        int r = ok ? cw_read_contact_conversation(resp, b->o.inbox_id, &j->conv) : -1;
        if (r == 0) j->step = S_SAVECONV;
        else if (r == 1) j->step = S_NEWCONV;
        else return fail(j, 0, "listing the contact's conversations answered HTTP %ld", st);
        return run(j);
    }
    case S_NEWCONV:
        if (ok && cw_read_id(resp, &j->conv) == 0) {
            j->step = S_SAVECONV;
            return run(j);
        }
        return fail(j, 0, "creating the conversation answered HTTP %ld", st);
    case S_FIND: {
        int r = ok ? cw_read_find_message(resp, db_json_str(j->obj, "id"), &j->msg) : -1;
        if (r == 0) j->step = S_SAVE;
        else if (r == 1) j->step = S_MEDIA;
        else if (st == 404) j->step = S_CONTACT, j->conv = 0;
        else return fail(j, 0, "listing messages answered HTTP %ld", st);
        return run(j);
    }
    case S_POST:
        if (ok && cw_read_id(resp, &j->msg) == 0) {
            j->step = S_SAVE;
            return run(j);
        }
        if (st == 404) {
            /* The conversation was deleted in Chatwoot: a new one, with the same contact. */
            j->conv = 0;
            j->step = S_CONTACT;
            j->attempt++;
            if (j->attempt < b->o.max_attempts) return run(j);
        }
        return fail(j, 0, "creating the message answered HTTP %ld", st);
    case S_PATCH:
        /* 404: the message was deleted in Chatwoot; nothing left to tick. */
        if (ok || st == 404) return finished(j);
        return fail(j, 0, "updating the message status answered HTTP %ld", st);
    default:
        return fail(j, 0, "internal: answer in step %d", (int)j->step);
    }
}

/* ---- the steps ---- */

static void run(struct job *j)
{
    struct bridge *b = j->b;
    struct db_chatwoot *cw = b->cw;
    struct db_redis *redis = cw->svc->redis;
    const char *conversation = db_json_str(j->obj, "conversation");
    const char *event_id = db_json_str(j->obj, "id");
    char key[512];
    struct db_http_req req;
    struct op *o;
    int rc;
    switch (j->step) {
    case S_LOOKUP:
        if (!(o = op_new(j))) return fail(j, 1, "out of memory");
        key_of(j, "ev", event_id, key, sizeof key);
        db_redis_cmd(redis, lookup_cb, o, "GET %s", key);
        return;
    case S_CONV:
        if (!(o = op_new(j))) return fail(j, 1, "out of memory");
        key_of(j, "conv", conversation, key, sizeof key);
        db_redis_cmd(redis, conv_cb, o, "HGETALL %s", key);
        return;
    case S_CONTACT: {
        const json_t *sender = json_object_get(j->obj, "sender");
        const char *name = db_json_str(sender, "name");
        char phone[40] = "";
        const char *chat = db_json_str(j->obj, "external_chat_id");
        /* WhatsApp's chat id is the customer's number (wa_id, digits): E.164 with a '+'. */
        if (!j->no_phone && strcmp(db_json_str(j->obj, "platform"), "whatsapp") == 0 && chat &&
            strlen(chat) < 20 && strspn(chat, "0123456789") == strlen(chat))
            snprintf(phone, sizeof phone, "+%s", chat);
        rc = cw_req_contact(&b->o, conversation, name ? name : conversation, *phone ? phone : NULL,
                            conversation, &req);
        return send_req(j, &req, rc);
    }
    case S_SEARCH:
        rc = cw_req_contact_search(&b->o, conversation, j->page, &req);
        return send_req(j, &req, rc);
    case S_CONVS:
        rc = cw_req_contact_conversations(&b->o, j->contact, &req);
        return send_req(j, &req, rc);
    case S_NEWCONV:
        rc = cw_req_conversation(&b->o, j->contact, j->source_id, &req);
        return send_req(j, &req, rc);
    case S_SAVECONV:
        if (!(o = op_new(j))) return fail(j, 1, "out of memory");
        key_of(j, "conv", conversation, key, sizeof key);
        db_redis_cmd(redis, saved_cb, o, "HSET %s conv %ld contact %ld source %s", key, j->conv,
                     j->contact, j->source_id);
        return;
    case S_FIND:
        rc = cw_req_messages(&b->o, j->conv, &req);
        return send_req(j, &req, rc);
    case S_MEDIA:
        return start_media(j);
    case S_MARK:
        if (!(o = op_new(j))) return fail(j, 1, "out of memory");
        key_of(j, "ev", event_id, key, sizeof key);
        db_redis_cmd(redis, saved_cb, o, "SET %s pending EX %d", key,
                     cw->cfg->cfg->dedupe_ttl_s);
        return;
    case S_POST: {
        char *content = cw_message_content(j->obj, j->note);
        char fname[64];
        if (!content) return fail(j, 1, "out of memory");
        rc = cw_req_message(&b->o, j->conv, content, event_id, j->file, j->file_len,
                            j->file ? cw_file_name(j->obj, j->file_type, fname, sizeof fname)
                                    : NULL,
                            j->file_type,
                            &req);
        free(content);
        return send_req(j, &req, rc);
    }
    case S_SAVE:
        if (!(o = op_new(j))) return fail(j, 1, "out of memory");
        key_of(j, "ev", event_id, key, sizeof key);
        db_redis_cmd(redis, saved_cb, o, "SET %s %ld EX %d", key, j->msg,
                     cw->cfg->cfg->dedupe_ttl_s);
        return;
    case S_PATCH: {
        const char *st = db_json_str(j->obj, "status");
        const json_t *err = json_object_get(j->obj, "error");
        const char *msg = db_json_str(err, "message");
        const char *code = db_json_str(err, "code");
        char why[300];
        snprintf(why, sizeof why, "%s%s%s", code ? code : "", code && msg ? ": " : "",
                 msg ? msg : "");
        rc = cw_req_status(&b->o, j->patch_conv, j->patch_msg, st,
                           strcmp(st, "failed") == 0 ? why : NULL, &req);
        return send_req(j, &req, rc);
    }
    }
}

static void pump(struct bridge *b)
{
    while (!b->cw->stopped && b->ready_head && b->active < (size_t)b->o.concurrency) {
        struct job *j = b->ready_head;
        b->ready_head = j->next;
        if (!b->ready_head) b->ready_tail = NULL;
        j->next = NULL;
        j->queued = 0;
        if (db_order_yield(&j->slot)) continue;
        j->busy = 1;
        b->active++;
        run(j);
    }
}

static void ready_cb(struct db_order_slot *slot, void *arg)
{
    struct job *j = (struct job *)((char *)slot - offsetof(struct job, slot));
    (void)arg;
    make_ready(j);
    pump(j->b);
}

/* ---- reading ---- */

/* For a status entry of one of this bridge's replies: its Chatwoot conversation and message
 * (from the message id cw.NAME.<conversation>.<message>[.<part>]); 0, or -1 when the entry
 * is not the bridge's. */
static int reply_of(const struct bridge *b, const char *id, long *conv, long *msg)
{
    char head[CW_NAME_MAX + 8];
    snprintf(head, sizeof head, "cw.%s.", b->o.name);
    if (!id || strncmp(id, head, strlen(head)) != 0) return -1;
    char *end;
    *conv = strtol(id + strlen(head), &end, 10);
    if (*end != '.' || *conv <= 0) return -1;
    *msg = strtol(end + 1, &end, 10);
    if ((*end && *end != '.') || *msg <= 0) return -1;
    return 0;
}

/* 1 when the bridge has work for the entry, 0 when it is acknowledged unread. */
static int wanted(struct job *j)
{
    struct bridge *b = j->b;
    if (j->stream == ST_STATUS) {
        const char *st = db_json_str(j->obj, "status");
        if (!st || strcmp(st, "queued") == 0) return 0;
        if (reply_of(b, db_json_str(j->obj, "id"), &j->patch_conv, &j->patch_msg) != 0) return 0;
        j->step = S_PATCH;
        return 1;
    }
    const char *kind = db_json_str(j->obj, "kind");
    if (!kind || (strcmp(kind, "message") != 0 && strcmp(kind, "edit") != 0 &&
                  strcmp(kind, "reaction") != 0))
        return 0;
    if (!cw_carries(&b->o, db_json_str(j->obj, "platform"), db_json_str(j->obj, "account")))
        return 0;
    if (!db_json_str(j->obj, "id") || !db_json_str(j->obj, "conversation")) return 0;
    j->step = S_LOOKUP;
    return 1;
}

static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct bridge *b = arg;
    (void)claimed;
    if (b->cw->stopped || entry->element[0]->len >= 64) return 0;
    struct job *j = calloc(1, sizeof *j);
    if (!j) return 0;
    j->b = b;
    j->stream = stream;
    snprintf(j->entry, sizeof j->entry, "%s", entry->element[0]->str);
    j->all_next = b->all;
    if (b->all) b->all->all_prev = j;
    b->all = j;
    const redisReply *fields = entry->element[1], *raw = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, stream_field[stream]) == 0)
            raw = fields->element[i + 1];
    struct db_err e = {0};
    if (!raw || db_json_parse_object(raw->str, raw->len, &j->obj, &e) != DB_OK) {
        snprintf(j->reason, sizeof j->reason, "entry has no readable %s field",
                 stream_field[stream]);
        dead_letter(j);
        return 1;
    }
    if (!wanted(j)) {
        ack(j);
        return 1;
    }
    if (db_order_add(b->order, &j->slot, stream, j->entry, db_json_str(j->obj, "conversation"),
                     db_consumer_batch(b->consumer)) != DB_OK)
        job_free(j);
    return 1;
}

static void batch_cb(int whole, void *arg)
{
    (void)whole;
    pump(arg);
}

/* ---- life cycle ---- */

static void bridge_free(struct bridge *b)
{
    if (!b) return;
    db_http_client_free(b->http); /* http_cb sees cw->freeing */
    for (struct job *j = b->all; j; j = j->all_next)
        if (j->fetch) db_media_fetch_cancel(j->fetch);
    db_consumer_free(b->consumer);
    b->consumer = NULL;
    db_ordering_free(b->order);
    b->order = NULL;
    while (b->all) job_free(b->all);
    free(b);
}

static int bridge_new(struct db_chatwoot *cw, const struct db_chatwoot_conf *o,
                      struct bridge **out, struct db_err *e)
{
    const struct db_config *cfg = cw->cfg->cfg;
    struct bridge *b = calloc(1, sizeof *b);
    if (!b) return db_err_set(e, DB_ENOMEM, "out of memory");
    b->cw = cw;
    b->o = *o;
    int rc;
    snprintf(b->label, sizeof b->label, "chatwoot:%s", b->o.name);
    snprintf(b->group, sizeof b->group, "deskbridge-chatwoot-%s", b->o.name);
    snprintf(b->key_prefix, sizeof b->key_prefix, "%s:chatwoot:%s:", cfg->prefix, b->o.name);
    struct db_http_client_opts ho = {.timeout_ms = b->o.timeout_ms,
                                     .connect_timeout_ms = b->o.timeout_ms < 5000 ? b->o.timeout_ms
                                                                                  : 5000,
                                     .max_response_bytes = 4 * 1024 * 1024,
                                     .max_connections = b->o.concurrency,
                                     .max_per_host = b->o.concurrency};
    b->http = db_http_client_new(cw->svc->base, &ho);
    if (!b->http) {
        bridge_free(b);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    char what[80];
    snprintf(what, sizeof what, "bridge=%s", b->label);
    /* From the start of the streams: events written before the bridge's first run (by an
     * ingest process that started earlier) reach Chatwoot too. */
    struct db_consumer_opts co = {.redis = cw->svc->redis,
                                  .metrics = cw->svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-chatwoot",
                                  .who = "chatwoot",
                                  .what = what,
                                  .group = b->group,
                                  .consumer = cw->svc->consumer,
                                  .streams = {cw->streams[0], cw->streams[1]},
                                  .labels = {stream_label[0], stream_label[1]},
                                  .dead_key = cw->dead_key,
                                  .start = "0",
                                  .count = READ_COUNT,
                                  .max_held = MAX_HELD,
                                  .claim_idle_ms = b->o.claim_idle_ms,
                                  .max_deliveries = MAX_DELIVERIES};
    struct db_ordering_opts oo = {.redis = cw->svc->redis,
                                  .who = "chatwoot",
                                  .group = b->group,
                                  .consumer = cw->svc->consumer,
                                  .streams = {cw->streams[0], cw->streams[1]},
                                  .fields = {stream_field[0], stream_field[1]}};
    rc = db_consumer_new(cw->svc->base, &co, take_entry, batch_cb, b, &b->consumer, e);
    if (rc == DB_OK) rc = db_ordering_new(cw->svc->base, &oo, ready_cb, b, &b->order, e);
    if (rc != DB_OK) {
        bridge_free(b);
        return rc;
    }
    *out = b;
    return DB_OK;
}

int db_chatwoot_start(struct db_services *svc, struct db_chatwoot **out, struct db_err *e)
{
    *out = NULL;
    const struct db_config *cfg = svc->cfg->cfg;
    if (!db_config_section(cfg, CW_SECTION, NULL)) return DB_OK;
    struct db_chatwoot *cw = calloc(1, sizeof *cw);
    if (!cw) return db_err_set(e, DB_ENOMEM, "out of memory");
    cw->svc = svc;
    cw->cfg = db_cfg_ref(svc);
    snprintf(cw->streams[ST_EVENTS], sizeof cw->streams[0], "%s:events", cfg->prefix);
    snprintf(cw->streams[ST_STATUS], sizeof cw->streams[1], "%s:status", cfg->prefix);
    snprintf(cw->dead_key, sizeof cw->dead_key, "%s:dead", cfg->prefix);
    for (size_t i = 0; i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, CW_SECTION) != 0 || !cfg->features[i].obj)
            continue;
        struct bridge *b = NULL;
        int rc = bridge_new(cw, cfg->features[i].obj, &b, e);
        if (rc != DB_OK) {
            db_chatwoot_free(cw);
            return rc;
        }
        b->next = cw->bridges;
        cw->bridges = b;
    }
    for (struct bridge *b = cw->bridges; b; b = b->next) {
        db_consumer_start(b->consumer);
        struct db_log_ctx ctx = {"chatwoot", NULL, NULL, NULL};
        db_log(DB_LOG_INFO, &ctx, "bridge=%s group=%s bridging", b->label, b->group);
    }
    *out = cw;
    return DB_OK;
}

void db_chatwoot_stop_reading(struct db_chatwoot *cw)
{
    if (!cw) return;
    cw->stopped = 1;
    for (struct bridge *b = cw->bridges; b; b = b->next) {
        db_consumer_stop(b->consumer);
        db_ordering_stop(b->order);
    }
}

unsigned long db_chatwoot_inflight(const struct db_chatwoot *cw)
{
    unsigned long n = 0;
    if (!cw) return 0;
    for (const struct bridge *b = cw->bridges; b; b = b->next) {
        n += db_http_client_inflight(b->http) + db_consumer_busy(b->consumer);
        for (const struct job *j = b->all; j; j = j->all_next) n += j->op || j->fetch;
    }
    return n;
}

void db_chatwoot_free(struct db_chatwoot *cw)
{
    if (!cw) return;
    cw->freeing = cw->stopped = 1;
    for (struct op *o = cw->ops; o; o = o->next) o->cw = NULL;
    cw->ops = NULL;
    while (cw->bridges) {
        struct bridge *b = cw->bridges;
        cw->bridges = b->next;
        bridge_free(b);
    }
    db_cfg_unref(cw->cfg);
    free(cw);
}
