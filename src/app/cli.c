/* cli.c - operator commands that talk to Redis directly (blocking; never in the daemon). */
#include "app/cli.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "console/console.h"
#include "send/outbound.h"
#include "ingest/poller.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "util/id.h"
#include "util/json.h"
#include "util/text.h"

int db_cli_accounts(const struct db_config *cfg, FILE *out)
{
    if (cfg->n_accounts == 0) {
        fprintf(out, "no accounts configured\n");
        return 0;
    }
    fprintf(out, "%-10s %-24s %-9s %s\n", "PLATFORM", "ACCOUNT", "RECEIVES", "WEBHOOK PATH");
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        const struct db_account *a = &cfg->accounts[i];
        int polls = db_poller_is_polling_account(a);
        fprintf(out, "%-10s %-24s %-9s /webhooks/%s/%s%s\n", a->platform, a->id,
                polls ? "polling" : "webhook", a->platform, a->id,
                polls ? " (unused while polling)" : "");
    }
    return 0;
}

static redisContext *connect_or_say(const struct db_config *cfg)
{
    if (!cfg->redis_url) {
        fprintf(stderr, "deskbridge: no Redis configured: set DESKBRIDGE_REDIS_URL\n");
        return NULL;
    }
    struct db_err e = {0};
    redisContext *c = db_redis_connect_sync(cfg->redis_url, 2000, &e);
    if (!c) fprintf(stderr, "deskbridge: redis: %s\n", e.msg);
    return c;
}

int db_cli_reply(const struct db_config *cfg, const char *conversation, const char *text,
                 FILE *out)
{
    char id[DB_ID_LEN + 1];
    db_id_new(id);
    json_t *cmd = json_pack("{s:s, s:s, s:s}", "conversation", conversation, "text", text, "id", id);
    const struct db_account *acct;
    struct db_outbound msg;
    struct db_err e = {0};
    if (!cmd || db_outbound_from_json(cfg, cmd, &acct, &msg, NULL, &e) != DB_OK) {
        fprintf(stderr, "deskbridge: %s\n", cmd ? e.msg : "out of memory");
        json_decref(cmd);
        return 2;
    }
    char *json = db_json_dump(cmd);
    json_decref(cmd);
    redisContext *c = json ? connect_or_say(cfg) : NULL;
    if (!c) {
        free(json);
        return 1;
    }
    /* The sender adopts outbox entries that carry their own id: same path as a helpdesk. */
    redisReply *r = redisCommand(c, "XADD %s:" DB_KEY_OUTBOX " * command %s id %s", cfg->prefix, json, id);
    int ok = r && r->type == REDIS_REPLY_STRING;
    if (ok) fprintf(out, "queued %s\n", id);
    else fprintf(stderr, "deskbridge: redis: %s\n", r && r->str ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
    free(json);
    return ok ? 0 : 1;
}

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
    (void)sig;
    tail_stop = 1;
}

/* One human-readable line for a stream entry's JSON. */
static void print_entry(FILE *out, const char *stream, const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    if (!o) {
        fprintf(out, "%-6s (unreadable entry)\n", stream);
        return;
    }
    const char *conv = db_json_str(o, "conversation");
    char when[32] = "";
    json_int_t ts = json_integer_value(json_object_get(o, "timestamp"));
    if (ts > 0) {
        time_t t = (time_t)ts;
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    }
    if (strcmp(stream, "events") == 0) {
        const char *kind = db_json_str(o, "kind"), *type = db_json_str(o, "type");
        const char *text = db_json_str(o, "text"), *st = db_json_str(o, "status");
        const char *who = db_json_str(json_object_get(o, "sender"), "name");
        /* Show at most 80 characters of a text, cut on a character boundary. */
        size_t cut = text ? db_utf8_prefix(text, strlen(text), 80) : 0;
        fprintf(out, "%s  %-10s %-40s %s%s%s%s%s %.*s%s\n", when, kind ? kind : "?",
                conv ? conv : "?", type ? type : "", st ? st : "", who ? " from " : "",
                who ? who : "", text ? ":" : "", (int)cut, text ? text : "",
                text && cut < strlen(text) ? "..." : "");
    } else {
        const char *err = db_json_str(json_object_get(o, "error"), "message");
        fprintf(out, "%s  %-10s %-40s %s %s%s%s\n", when, "status", conv ? conv : "?",
                db_json_str(o, "id") ? db_json_str(o, "id") : "?",
                db_json_str(o, "status") ? db_json_str(o, "status") : "?", err ? ": " : "",
                err ? err : "");
    }
    json_decref(o);
}

int db_cli_tail(const struct db_config *cfg, int from_start, FILE *out)
{
    redisContext *c = connect_or_say(cfg);
    if (!c) return 1;
    struct timeval tv = {1, 500 * 1000};
    redisSetTimeout(c, tv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char ev_key[160], st_key[160], ev_id[64], st_id[64];
    db_key(ev_key, sizeof ev_key, cfg->prefix, DB_KEY_EVENTS);
    db_key(st_key, sizeof st_key, cfg->prefix, DB_KEY_STATUS);
    snprintf(ev_id, sizeof ev_id, "%s", from_start ? "0-0" : "$");
    snprintf(st_id, sizeof st_id, "%s", from_start ? "0-0" : "$");
    while (!tail_stop) {
        redisReply *r = redisCommand(c, "XREAD COUNT 100 BLOCK 1000 STREAMS %s %s %s %s", ev_key,
                                     st_key, ev_id, st_id);
        if (!r) {
            if (tail_stop) break;
            fprintf(stderr, "deskbridge: redis: %s\n", c->errstr);
            redisFree(c);
            return 1;
        }
        for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
            redisReply *stream = r->element[s];
            int is_events = strcmp(stream->element[0]->str, ev_key) == 0;
            redisReply *entries = stream->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *fields = entries->element[i]->element[1];
                for (size_t f = 0; f + 1 < fields->elements; f += 2)
                    if (strcmp(fields->element[f]->str, is_events ? "event" : "status") == 0)
                        print_entry(out, is_events ? "events" : "status",
                                    fields->element[f + 1]->str);
                snprintf(is_events ? ev_id : st_id, sizeof ev_id, "%s",
                         entries->element[i]->element[0]->str);
            }
        }
        fflush(out);
        freeReplyObject(r);
    }
    redisFree(c);
    return 0;
}

int db_cli_agent_invite(const struct db_config *cfg, const char *agent, int supervisor,
                        FILE *out)
{
    redisContext *c = connect_or_say(cfg);
    if (!c) return 1;
    char url[512];
    struct db_err e = {0};
    int rc = db_console_invite_sync(c, cfg, agent, supervisor, url, sizeof url, &e);
    redisFree(c);
    if (rc != DB_OK) {
        fprintf(stderr, "deskbridge: %s\n", e.msg);
        return rc == DB_ENOTFOUND ? 2 : 1;
    }
    /* The link is a secret until used: printed, never logged. */
    fprintf(out, "%s\n", url);
    return 0;
}
