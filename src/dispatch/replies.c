#include "dispatch/replies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "services/services.h"
#include "dispatch/script.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "redis/redis.h"
#include "send/outbound.h"
#include "stream/consumer.h"
#include "util/json.h"

#define READ_COUNT 64
#define MAX_HELD 256

struct db_dispatch_replies {
    struct db_services *svc;
    struct db_consumer *consumer;
    unsigned long inflight;
    unsigned long outstanding; /* callbacks still to come on svc->redis that hold r */
    int released;
    char outbox[160], dead[160];
};

struct job {
    struct db_dispatch_replies *r;
    char entry[64];
};

static void job_done(struct job *j)
{
    struct db_dispatch_replies *r = j->r;
    db_consumer_release(r->consumer, 0, j->entry);
    free(j);
    r->inflight--;
    if (--r->outstanding == 0 && r->released) free(r);
}

/* The script answers with the first response time in ms when this reply was the
 * conversation's first (decided atomically with recording it, so several processes never
 * observe one conversation twice), else -1. */
static void recorded_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct job *j = arg;
    struct db_dispatch_replies *r = j->r;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        /* Left pending: claimed again after claim_idle_ms, dead-lettered after
         * max_deliveries.  No conversation id: it holds the customer's chat id. */
        struct db_log_ctx ctx = {"dispatcher", NULL, NULL, j->entry};
        if (!r->released)
            db_log(DB_LOG_WARN, &ctx, "could not record a reply: %s",
                   status != DB_OK ? (errstr ? errstr : "unavailable") : reply->str);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 && !r->released) {
        db_metrics_first_response(r->svc->metrics, (double)reply->integer / 1000.0);
    }
    job_done(j);
}

static void acked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    job_done(arg);
}

/* One outbox entry ([id, [field, value, ...]]); 1 when a job holds it. */
static int take_entry(int stream, const redisReply *entry, int claimed, void *arg)
{
    struct db_dispatch_replies *r = arg;
    (void)stream, (void)claimed;
    const redisReply *fields = entry->element[1];
    struct job *j = calloc(1, sizeof *j);
    if (!j || entry->element[0]->len >= sizeof j->entry) {
        free(j);
        return 0; /* stays pending; claimed later */
    }
    j->r = r;
    snprintf(j->entry, sizeof j->entry, "%s", entry->element[0]->str);
    r->inflight++;
    r->outstanding++;
    const char *text = NULL, *given_id = NULL;
    size_t text_len = 0;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (!k || !v) continue;
        if (strcmp(k, "command") == 0 && !text) text = v, text_len = fields->element[i + 1]->len;
        else if (strcmp(k, "id") == 0) given_id = v;
    }
    json_t *cmd = NULL;
    const struct db_account *acct = NULL;
    struct db_outbound msg;
    struct db_err e = {0};
    /* What the sender would not send (it dead-letters it) is no reply: acknowledged here,
     * recorded nowhere. */
    if (!text || db_json_parse_object(text, text_len, &cmd, &e) != DB_OK ||
        db_outbound_from_json(r->svc->cfg->cfg, cmd, &acct, &msg, NULL, &e) != DB_OK) {
        json_decref(cmd);
        db_redis_cmd(r->svc->redis, acked_cb, j, "XACK %s %s %s", r->outbox,
                     DB_DISPATCH_REPLIES_GROUP, j->entry);
        return 1;
    }
    /* The message's id as the sender names it: the entry's id field, the command's, or one
     * made from the entry id. */
    char id[80];
    if (!given_id) given_id = db_json_str(cmd, "id");
    if (given_id) snprintf(id, sizeof id, "%s", given_id);
    else snprintf(id, sizeof id, "o-%s", j->entry);
    const char *agent = db_json_str(cmd, "agent");
    const char *rule = "";
    if (json_is_true(json_object_get(cmd, "automatic"))) {
        rule = db_json_str(cmd, "rule");
        if (!rule || !*rule) rule = "automatic";
        agent = NULL;
    }
    const char *said = db_json_str(cmd, "text");
    const char *args[] = {db_json_str(cmd, "conversation"), id, agent ? agent : "", rule,
                          r->outbox, DB_DISPATCH_REPLIES_GROUP, j->entry, said ? said : ""};
    db_dispatch_run(r->svc, recorded_cb, j, "reply", 8, args, NULL);
    json_decref(cmd);
    return 1;
}

int db_dispatch_replies_start(struct db_services *svc, int claim_idle_ms, int max_deliveries,
                              struct db_dispatch_replies **out, struct db_err *e)
{
    *out = NULL;
    struct db_dispatch_replies *r = calloc(1, sizeof *r);
    if (!r) return db_err_set(e, DB_ENOMEM, "out of memory");
    r->svc = svc;
    const struct db_config *cfg = svc->cfg->cfg;
    db_key(r->outbox, sizeof r->outbox, cfg->prefix, DB_KEY_OUTBOX);
    db_key(r->dead, sizeof r->dead, cfg->prefix, DB_KEY_DEAD);
    struct db_consumer_opts co = {.redis = svc->redis,
                                  .metrics = svc->metrics,
                                  .redis_url = cfg->redis_url,
                                  .redis_timeout_ms = cfg->redis_timeout_ms,
                                  .conn_name = "deskbridge-dispatch-replies",
                                  .who = "dispatcher",
                                  .what = "outbox",
                                  .group = DB_DISPATCH_REPLIES_GROUP,
                                  .consumer = svc->consumer,
                                  .streams = {r->outbox},
                                  .labels = {"outbox"},
                                  .dead_key = r->dead,
                                  .start = "$",
                                  .count = READ_COUNT,
                                  .max_held = MAX_HELD,
                                  .claim_idle_ms = claim_idle_ms,
                                  .max_deliveries = max_deliveries};
    int rc = db_consumer_new(svc->base, &co, take_entry, NULL, r, &r->consumer, e);
    if (rc != DB_OK) {
        free(r);
        return rc;
    }
    db_consumer_start(r->consumer);
    *out = r;
    return DB_OK;
}

void db_dispatch_replies_stop(struct db_dispatch_replies *r)
{
    if (r) db_consumer_stop(r->consumer);
}

unsigned long db_dispatch_replies_inflight(const struct db_dispatch_replies *r)
{
    return r ? r->inflight : 0;
}

void db_dispatch_replies_free(struct db_dispatch_replies *r)
{
    if (!r) return;
    db_consumer_free(r->consumer);
    r->consumer = NULL;
    if (r->outstanding) r->released = 1;
    else free(r);
}
