/* live.c - the console's live stream: the agent's inbox (stream/sse.h) plus the delivery
 * ticks of the messages in the conversations the agent has on screen.
 *
 * Ticks come from P:status, which carries every outbound message of the gateway: one watch
 * per process (the waker, stream/wake.h) reads it while at least one console is connected,
 * each entry is parsed once and sent, as event `status`, only to the streams that showed
 * interest in its conversation: one of their inbox entries named it, or their agent opened
 * it (db_console_live_note).  A table of conversation -> streams finds them without a scan.
 *
 * The queue changes without touching any agent's inbox when a customer waits because nobody
 * has room.  So while consoles are connected the process also watches P:events, and a
 * customer's message on an account of a stream's tenant sends that stream a `queue` hint (at
 * most one a second each; the page then fetches its lists).  The account is read from the
 * event's text without parsing it: the gateway writes `"account":"..."` itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "console/console_internal.h"
#include "conf/config.h"
#include "services/services.h"
#include "http/router.h"
#include "net/httpd.h"
#include "redis/keys.h"
#include "stream/sse.h"
#include "stream/wake.h"
#include "util/hash.h"
#include "util/id.h"
#include "util/json.h"

#define BUCKETS 1024
#define MAX_INTEREST 512 /* conversations one stream follows; the oldest go first */

struct interest {
    struct interest *next_in_bucket, *next_of_client;
    struct client *c;
    unsigned h;
    char conv[];
};

struct client {
    struct client *next;
    struct db_sse *sse;
    char agent[72];
    char *accounts;      /* "\nplatform:account\n..." of the tenant; NULL: every account */
    long long hinted_at; /* when the last queue hint went out (ms) */
    int hint_due;        /* a hint waits for the second to pass */
    struct interest *mine;
    size_t n;
};

static struct {
    struct db_wake_watch *watch, *events;
    struct event *hint_timer;
    struct client *clients;
    struct interest *buckets[BUCKETS];
} H;

#define HINT_MS 1000

static unsigned hash(const char *s) { return (unsigned)db_hash_str(DB_HASH_SEED, s); }

static void unlink_interest(struct interest *i)
{
    for (struct interest **p = &H.buckets[i->h % BUCKETS]; *p; p = &(*p)->next_in_bucket)
        if (*p == i) {
            *p = i->next_in_bucket;
            return;
        }
}

static void follow(struct client *c, const char *conv)
{
    if (!*conv) return;
    unsigned h = hash(conv);
    for (struct interest *i = H.buckets[h % BUCKETS]; i; i = i->next_in_bucket)
        if (i->c == c && strcmp(i->conv, conv) == 0) return;
    if (c->n >= MAX_INTEREST) {
        /* Drop the oldest: the list is newest first. */
        struct interest **p = &c->mine;
        while ((*p)->next_of_client) p = &(*p)->next_of_client;
        unlink_interest(*p);
        free(*p);
        *p = NULL;
        c->n--;
    }
    struct interest *i = malloc(sizeof *i + strlen(conv) + 1);
    if (!i) return;
    i->c = c;
    i->h = h;
    strcpy(i->conv, conv);
    i->next_in_bucket = H.buckets[h % BUCKETS];
    H.buckets[h % BUCKETS] = i;
    i->next_of_client = c->mine;
    c->mine = i;
    c->n++;
}

static void status_cb(const char *key, const redisReply *entries, void *arg)
{
    (void)key, (void)arg;
    for (size_t e = 0; e < entries->elements; e++) {
        const redisReply *ent = entries->element[e];
        if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2) continue;
        const redisReply *f = ent->element[1];
        const char *js = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->str && strcmp(f->element[k]->str, "status") == 0) js = f->element[k + 1]->str;
        json_t *st = js ? json_loads(js, 0, NULL) : NULL;
        const char *conv = db_json_str(st, "conversation");
        if (!conv) {
            json_decref(st);
            continue;
        }
        json_t *out = json_pack("{s:s, s:s?, s:s?, s:O?}", "conversation", conv, "id",
                                db_json_str(st, "id"), "status", db_json_str(st, "status"),
                                "error", json_object_get(st, "error"));
        char *data = out ? db_json_dump(out) : NULL;
        unsigned h = hash(conv);
        for (struct interest *i = H.buckets[h % BUCKETS]; data && i; i = i->next_in_bucket)
            if (i->h == h && strcmp(i->conv, conv) == 0) (void)db_sse_send(i->c->sse, "status", data);
        free(data);
        json_decref(out);
        json_decref(st);
    }
}

static void hint(struct client *c, long long now)
{
    if (now - c->hinted_at < HINT_MS) {
        c->hint_due = 1;
        return;
    }
    c->hinted_at = now;
    c->hint_due = 0;
    (void)db_sse_send(c->sse, "queue", "{}");
}

static void hint_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    long long now = db_now_ms();
    int due = 0;
    for (struct client *c = H.clients; c; c = c->next) {
        if (c->hint_due) hint(c, now);
        due |= c->hint_due;
    }
    struct timeval tv = {0, HINT_MS * 1000 / 4};
    if (due) evtimer_add(H.hint_timer, &tv);
}

/* A customer's message: every stream of a tenant serving its account gets a hint. */
static void events_cb(const char *key, const redisReply *entries, void *arg)
{
    (void)key, (void)arg;
    long long now = db_now_ms();
    int due = 0;
    for (size_t e = 0; e < entries->elements; e++) {
        const redisReply *ent = entries->element[e];
        if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2) continue;
        const redisReply *f = ent->element[1];
        const char *js = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (f->element[k]->str && strcmp(f->element[k]->str, "event") == 0) js = f->element[k + 1]->str;
        const char *pl = js ? strstr(js, "\"platform\":\"") : NULL;
        const char *ac = js ? strstr(js, "\"account\":\"") : NULL;
        if (!pl || !ac || !strstr(js, "\"kind\":\"message\"")) continue;
        char acct[200];
        pl += 12, ac += 11;
        int n = snprintf(acct, sizeof acct, "\n%.*s:%.*s\n", (int)strcspn(pl, "\""), pl,
                         (int)strcspn(ac, "\""), ac);
        if (n <= 0 || (size_t)n >= sizeof acct) continue;
        for (struct client *c = H.clients; c; c = c->next)
            if (!c->accounts || strstr(c->accounts, acct)) {
                hint(c, now);
                due |= c->hint_due;
            }
    }
    struct timeval tv = {0, HINT_MS * 1000 / 4};
    if (due && H.hint_timer && !evtimer_pending(H.hint_timer, NULL)) evtimer_add(H.hint_timer, &tv);
}

/* An inbox entry names a conversation: its ticks are this stream's from now on. */
static int inbox_filter(const redisReply *entry, void *arg)
{
    struct client *c = arg;
    const redisReply *f = entry->element[1];
    for (size_t k = 0; k + 1 < f->elements; k += 2)
        if (f->element[k]->str && strcmp(f->element[k]->str, "conversation") == 0 &&
            f->element[k + 1]->str)
            follow(c, f->element[k + 1]->str);
    return 1;
}

static void client_end(void *arg)
{
    struct client *c = arg;
    while (c->mine) {
        struct interest *i = c->mine;
        c->mine = i->next_of_client;
        unlink_interest(i);
        free(i);
    }
    for (struct client **p = &H.clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    free(c->accounts);
    free(c);
    if (!H.clients && H.watch) {
        db_wake_unwatch(H.watch);
        db_wake_unwatch(H.events);
        H.watch = H.events = NULL;
        if (H.hint_timer) evtimer_del(H.hint_timer);
    }
}

void db_console_live_note(const char *agent, const char *conv)
{
    for (struct client *c = H.clients; c; c = c->next)
        if (strcmp(c->agent, agent) == 0) follow(c, conv);
}

void db_console_live_stream(struct db_services *svc, struct db_httpd_req *req,
                            const struct db_session *s, const struct db_tenant *tenant)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    snprintf(c->agent, sizeof c->agent, "%s", s->agent);
    char key[256], from[64];
    db_key_tagged(key, sizeof key, svc->cfg->cfg->prefix, DB_KEY_AGENT_INBOX, s->agent);
    const char *resume = db_httpd_req_header(req, "Last-Event-ID");
    if (resume && *resume && strspn(resume, "0123456789-") == strlen(resume) && strlen(resume) < sizeof from)
        snprintf(from, sizeof from, "%s", resume);
    else snprintf(from, sizeof from, "%lld-0", (long long)db_now_ms());
    if (!H.watch && svc->wake) {
        char st[256], ev[256];
        db_key(st, sizeof st, svc->cfg->cfg->prefix, DB_KEY_STATUS);
        db_key(ev, sizeof ev, svc->cfg->cfg->prefix, DB_KEY_EVENTS);
        H.watch = db_wake_watch(svc->wake, st, "$", status_cb, NULL);
        H.events = db_wake_watch(svc->wake, ev, "$", events_cb, NULL);
        /* One timer for the process, kept for its life like the waker's loop. */
        if (!H.hint_timer) H.hint_timer = evtimer_new(svc->base, hint_timer_cb, NULL);
    }
    if (tenant) {
        size_t n = 2;
        for (size_t i = 0; i < tenant->n_accounts; i++) n += strlen(tenant->accounts[i]) + 1;
        if ((c->accounts = malloc(n))) {
            char *w = c->accounts;
            *w++ = '\n';
            for (size_t i = 0; i < tenant->n_accounts; i++) w += sprintf(w, "%s\n", tenant->accounts[i]);
            *w = '\0';
        }
    }
    c->next = H.clients;
    H.clients = c;
    const struct db_sse_opts o = {.key = key, .from = from, .filter = inbox_filter,
                                  .on_end = client_end, .arg = c};
    c->sse = db_sse_start(svc, req, &o, db_console_headers);
    if (!c->sse) client_end(c);
}
