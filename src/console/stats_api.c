/* stats_api.c - a supervisor's figures per agent and per account:
 *
 *   GET /console/api/stats/agents
 *
 * The statistics script (metrics/agent_stats.h) answers for every registered agent and every
 * account with samples; this keeps what the session's tenant owns: its agents (those whose
 * info hash names the tenant, as the dispatcher's "agents" operation decides, which also
 * gives their names and presence) and its configured accounts, and makes the tenant's
 * satisfaction from its accounts'.  An operator's supervisor (no tenant) sees every agent
 * and account.  Agents and accounts without samples are listed with zeros, so the table
 * names everyone.
 *
 * Not part of GET /console/api/stats: the page asks for those counters at every live event,
 * while this costs a pass over a day's samples, so the page asks for it when the view opens
 * and then at most every minute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "console/console_internal.h"
#include "dispatch/script.h"
#include "http/respond.h"
#include "http/router.h"
#include "metrics/agent_stats.h"
#include "net/httpd.h"
#include "services/services.h"
#include "util/json.h"

/* A request between its two script runs. */
struct stats_call {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct db_cfg_ref *ref;         /* keeps tenant alive until the answer */
    const struct db_tenant *tenant; /* borrowed from ref; NULL for the operator's */
    json_t *people;                 /* {id: {name, presence}} of the scope, owned */
};

static void stats_call_free(struct stats_call *sc)
{
    db_cfg_unref(sc->ref);
    json_decref(sc->people);
    free(sc);
}

static void answer(struct db_httpd_req *req, json_t *obj)
{
    char *text = obj ? db_json_dump(obj) : NULL;
    if (text) db_httpd_respond(req, 200, "application/json", text, strlen(text), db_console_headers);
    else db_httpd_respond_error(req, 500, "internal", "out of memory");
    free(text);
}

/* The figures of someone with no sample in the day.  New reference (NULL out of memory). */
static json_t *empty_figures(void)
{
    return json_pack("{s:{s:i, s:i}, s:{s:{s:n, s:n, s:i}, s:{s:n, s:n, s:i}},"
                     " s:{s:{s:n, s:i}, s:{s:n, s:i}}}",
                     "handled", "hour", 0, "day", 0, "first_response", "hour", "median_ms",
                     "p90_ms", "count", 0, "day", "median_ms", "p90_ms", "count", 0,
                     "satisfaction", "hour", "average", "count", 0, "day", "average", "count", 0);
}

/* A copy of key's figures in all, or zeros.  New reference. */
static json_t *figures_of(const json_t *all, const char *key)
{
    const json_t *f = json_object_get(all, key);
    return json_is_object(f) ? json_deep_copy(f) : empty_figures();
}

/* Sets key of out to figures (taken); 0, or -1 when out of memory. */
static int put(json_t *out, const char *key, json_t *figures)
{
    return figures && json_object_set_new(out, key, figures) == 0 ? 0 : -1;
}

/* The tenant's satisfaction over window: its accounts' answers taken together (each
 * account's average times its count is its sum).  New reference. */
static json_t *combined(const json_t *accounts, const char *window)
{
    double sum = 0;
    json_int_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)accounts, k, v) {
        const json_t *w = json_object_get(json_object_get(v, "satisfaction"), window);
        const json_t *avg = json_object_get(w, "average");
        json_int_t count = json_integer_value(json_object_get(w, "count"));
        if (!json_is_number(avg) || count <= 0) continue;
        sum += json_number_value(avg) * (double)count;
        n += count;
    }
    return json_pack("{s:o, s:I}", "average", n ? json_real(sum / (double)n) : json_null(),
                     "count", n);
}

/* The answer from the script's statistics, cut to the caller's scope.  New reference. */
static json_t *scoped(const struct stats_call *sc, const json_t *stats)
{
    const json_t *all_agents = json_object_get(stats, "agents");
    const json_t *all_accounts = json_object_get(stats, "accounts");
    json_t *agents = json_object(), *accounts = json_object();
    int bad = !agents || !accounts;
    const char *k;
    json_t *v;
    json_object_foreach(sc->people, k, v) {
        json_t *f = figures_of(all_agents, k);
        if (f && json_object_update(f, v) != 0) bad = 1;
        if (put(agents, k, f) != 0) bad = 1;
    }
    const struct db_config *cfg = sc->ref->cfg;
    if (sc->tenant) {
        for (size_t i = 0; !bad && i < sc->tenant->n_accounts; i++)
            bad = put(accounts, sc->tenant->accounts[i],
                      figures_of(all_accounts, sc->tenant->accounts[i])) != 0;
    } else {
        /* Everything the script saw, and every configured account besides. */
        json_object_foreach((json_t *)all_accounts, k, v)
            if (put(accounts, k, json_deep_copy(v)) != 0) bad = 1;
        for (size_t i = 0; !bad && i < cfg->n_accounts; i++) {
            char key[256];
            snprintf(key, sizeof key, "%s:%s", cfg->accounts[i].platform, cfg->accounts[i].id);
            if (!json_object_get(accounts, key)) bad = put(accounts, key, empty_figures()) != 0;
        }
    }
    json_t *csat = sc->tenant ? json_pack("{s:o, s:o}", "hour", combined(accounts, "hour"), "day",
                                          combined(accounts, "day"))
                              : json_deep_copy(json_object_get(stats, "satisfaction"));
    if (bad || !csat) {
        json_decref(agents);
        json_decref(accounts);
        json_decref(csat);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o}", "agents", agents, "accounts", accounts, "satisfaction", csat);
}

static void figures_cb(json_t *stats, void *arg)
{
    struct stats_call *sc = arg;
    if (!stats) {
        db_respond_unavailable(sc->req);
    } else {
        json_t *out = scoped(sc, stats);
        answer(sc->req, out);
        json_decref(out);
    }
    stats_call_free(sc);
}

/* A string field of a flat [field, value, ...] reply, or NULL. */
static const char *field(const redisReply *h, const char *name)
{
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->str && strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

/* The scope's agents are known: then the statistics. */
static void people_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct stats_call *sc = arg;
    (void)errstr;
    if (status != DB_OK || !reply || reply->type != REDIS_REPLY_ARRAY) {
        db_respond_unavailable(sc->req);
        stats_call_free(sc);
        return;
    }
    if (!(sc->people = json_object())) {
        db_httpd_respond_error(sc->req, 500, "internal", "out of memory");
        stats_call_free(sc);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        const char *id = field(e->element[0], "id"), *name = field(e->element[0], "name"),
                   *presence = field(e->element[0], "presence");
        if (!id) continue;
        json_t *who = json_pack("{s:s, s:s}", "name", name ? name : id, "presence",
                                presence ? presence : "offline");
        if (!who || json_object_set_new(sc->people, id, who) != 0) {
            db_httpd_respond_error(sc->req, 500, "internal", "out of memory");
            stats_call_free(sc);
            return;
        }
    }
    db_agent_stats_read(sc->svc, figures_cb, sc);
}

static void get_figures(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    if (!who->session->supervisor) {
        db_httpd_respond_error(req, 403, "forbidden", "for supervisors");
        return;
    }
    struct stats_call *sc = calloc(1, sizeof *sc);
    if (!sc) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    sc->svc = arg;
    sc->req = req;
    sc->ref = db_cfg_ref(sc->svc);
    for (size_t t = 0; who->tenant && t < sc->ref->cfg->n_tenants; t++)
        if (strcmp(sc->ref->cfg->tenants[t].name, who->tenant->name) == 0)
            sc->tenant = &sc->ref->cfg->tenants[t];
    /* The router answered 401 for a session whose tenant is gone; a reload between its
     * lookup and here leaves no tenant to scope to: nothing is shown rather than all. */
    if (who->tenant && !sc->tenant) {
        db_httpd_respond_error(req, 403, "forbidden", "for supervisors");
        stats_call_free(sc);
        return;
    }
    const char *args[] = {"", sc->tenant ? sc->tenant->name : ""};
    db_dispatch_run(sc->svc, people_cb, sc, "agents", 2, args, NULL);
}

int db_console_stats_routes(struct db_services *svc)
{
    const struct db_route r = {"GET", "/console/api/stats/agents", 0, NULL, DB_ROUTE_SESSION,
                               get_figures, svc, 0};
    return db_router_add(svc->router, &r);
}
