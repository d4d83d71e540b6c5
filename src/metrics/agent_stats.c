/* agent_stats.c - runs agent_stats.lua and writes its answer as metric families.
 *
 * The script answers JSON because /v1/stats shows exactly that; /metrics walks the same
 * object, so both say the same thing about one moment. */
#include "metrics/agent_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "services/services.h"
#include "store/store.h"
#include "util/id.h"

#define MAX_REPORTED 1000 /* agents, and accounts, written per scrape */

static struct db_redis_script *script;

struct read_ctx {
    db_agent_stats_cb cb;
    void *arg;
};

static void read_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct read_ctx *c = arg;
    (void)errstr;
    json_t *stats = NULL;
    if (status == DB_OK && reply && reply->type == REDIS_REPLY_STRING)
        stats = json_loadb(reply->str, reply->len, 0, NULL);
    if (stats && !json_is_object(stats)) {
        json_decref(stats);
        stats = NULL;
    }
    c->cb(stats, c->arg);
    json_decref(stats);
    free(c);
}

void db_agent_stats_read(struct db_services *svc, db_agent_stats_cb cb, void *arg)
{
    /* One script object for the process: it lives as long as the process does. */
    if (!script) script = db_redis_script_new(db_lua_agent_stats);
    struct read_ctx *c = script ? malloc(sizeof *c) : NULL;
    if (!c) {
        cb(NULL, arg);
        return;
    }
    c->cb = cb;
    c->arg = arg;
    char k[4][160], now[24];
    const char *keys[] = {db_store_key(svc->store, DB_KEY_STATS_FRT, k[0], sizeof k[0]),
                          db_store_key(svc->store, DB_KEY_STATS_CSAT, k[1], sizeof k[1]),
                          db_store_key(svc->store, DB_KEY_STATS_HANDLED, k[2], sizeof k[2]),
                          db_store_key(svc->store, DB_KEY_AGENTS, k[3], sizeof k[3])};
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    const char *args[] = {now};
    db_redis_eval(svc->redis, script, read_cb, c, 4, keys, 1, args, NULL);
}

/* ---- exposition ---- */

static const char *const windows[] = {"hour", "day"};

/* A number of the JSON, or NaN when it is null or absent. */
static double num(const json_t *o, const char *a, const char *b, const char *key)
{
    const json_t *v = json_object_get(json_object_get(json_object_get(o, a), b), key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The label values of one agent (n = 1) or one "platform:account" (n = 2: split). */
struct who {
    int n;
    const char *names[4];
    const char *vals[4];
    char platform[65];
};

static int who_of(struct who *w, int account, const char *key)
{
    memset(w, 0, sizeof *w);
    if (!account) {
        w->n = 1, w->names[0] = "agent", w->vals[0] = key;
        return 0;
    }
    const char *colon = strchr(key, ':');
    if (!colon || (size_t)(colon - key) >= sizeof w->platform) return -1;
    memcpy(w->platform, key, (size_t)(colon - key));
    w->n = 2, w->names[0] = "platform", w->vals[0] = w->platform;
    w->names[1] = "account", w->vals[1] = colon + 1;
    return 0;
}

/* Writes one family for every member of set; what = which number of a member's entry. */
enum what { HANDLED, FRT_Q, FRT_N, CSAT_AVG, CSAT_N };

static void family(const struct db_expo *w, const json_t *set, int account, const char *name,
                   const char *type, const char *help, enum what what)
{
    w->header(w->o, name, type, help);
    const char *key;
    const json_t *e;
    size_t done = 0;
    json_object_foreach((json_t *)set, key, e) {
        struct who who;
        if (done++ >= MAX_REPORTED || who_of(&who, account, key) != 0) continue;
        for (int i = 0; i < 2; i++) {
            const char *win = windows[i];
            who.names[who.n] = "window", who.vals[who.n] = win;
            int n = who.n + 1;
            if (what == HANDLED) {
                const json_t *h = json_object_get(json_object_get(e, "handled"), win);
                w->sample(w->o, name, n, who.names, who.vals, (double)json_integer_value(h));
            } else if (what == FRT_Q) {
                static const char *const q[] = {"0.5", "0.9"}, *const f[] = {"median_ms", "p90_ms"};
                for (int j = 0; j < 2; j++) {
                    who.names[n] = "quantile", who.vals[n] = q[j];
                    w->sample(w->o, name, n + 1, who.names, who.vals,
                              num(e, "first_response", win, f[j]) / 1000.0);
                }
            } else if (what == FRT_N) {
                w->sample(w->o, name, n, who.names, who.vals,
                          num(e, "first_response", win, "count"));
            } else {
                double v = num(e, "satisfaction", win, what == CSAT_AVG ? "average" : "count");
                /* No answers: no average rather than a NaN that graphs as a gap anyway. */
                if (!isnan(v)) w->sample(w->o, name, n, who.names, who.vals, v);
            }
        }
    }
}

static void families(const struct db_expo *w, const json_t *set, int account)
{
    char name[64];
    const char *k = account ? "account" : "agent";
    const char *of = account ? "of an account (platform, account)" : "of a registered agent";
    char help[256];
    snprintf(name, sizeof name, "deskbridge_%s_conversations_handled", k);
    snprintf(help, sizeof help,
             "Distinct conversations with an agent's reply in the window, %s.", of);
    family(w, set, account, name, "gauge", help, HANDLED);
    snprintf(name, sizeof name, "deskbridge_%s_first_response_seconds", k);
    snprintf(help, sizeof help, "First-response time, median and p90 over the window, %s.", of);
    family(w, set, account, name, "summary", help, FRT_Q);
    snprintf(name, sizeof name, "deskbridge_%s_first_responses", k);
    snprintf(help, sizeof help, "First responses in the window, %s.", of);
    family(w, set, account, name, "gauge", help, FRT_N);
    snprintf(name, sizeof name, "deskbridge_%s_satisfaction_average", k);
    snprintf(help, sizeof help, "Average satisfaction answer (1-5) in the window, %s.", of);
    family(w, set, account, name, "gauge", help, CSAT_AVG);
    snprintf(name, sizeof name, "deskbridge_%s_satisfaction_answers", k);
    snprintf(help, sizeof help, "Satisfaction answers in the window, %s.", of);
    family(w, set, account, name, "gauge", help, CSAT_N);
}

void db_agent_stats_expose(const json_t *stats, const struct db_expo *w)
{
    families(w, json_object_get(stats, "agents"), 0);
    families(w, json_object_get(stats, "accounts"), 1);
    const json_t *all = json_object_get(stats, "satisfaction");
    const char *wname = "window";
    w->header(w->o, "deskbridge_satisfaction_average", "gauge",
              "Average satisfaction answer (1-5) in the window, all conversations.");
    for (int i = 0; i < 2; i++) {
        const json_t *a = json_object_get(json_object_get(all, windows[i]), "average");
        double v = json_is_number(a) ? json_number_value(a) : NAN;
        if (!isnan(v))
            w->sample(w->o, "deskbridge_satisfaction_average", 1, &wname, &windows[i], v);
    }
    w->header(w->o, "deskbridge_satisfaction_answers", "gauge",
              "Satisfaction answers in the window, all conversations.");
    for (int i = 0; i < 2; i++) {
        const json_t *n = json_object_get(json_object_get(all, windows[i]), "count");
        w->sample(w->o, "deskbridge_satisfaction_answers", 1, &wname, &windows[i],
                  (double)json_integer_value(n));
    }
}
