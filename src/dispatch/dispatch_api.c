/* dispatch_api.c - the dispatcher's HTTP routes: agents, conversations, the agent inbox as
 * Server-Sent Events, and stats.  Every change goes through the dispatcher's script.
 *
 * With a tenant's token every route is limited to the tenant: its conversations are those of
 * its accounts (checked here from the conversation id, or inside the script for lists), its
 * agents are those whose info hash names the tenant (checked inside the script, so a check
 * and the change it guards are one atomic run).  Anything of another tenant answers 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/assign.h"
#include "conf/config.h"
#include "dispatch/dispatcher.h"
#include "dispatch/script.h"
#include "dispatch/survey.h"
#include "services/services.h"
#include "net/httpd.h"
#include "http/respond.h"
#include "http/router.h"
#include "metrics/agent_stats.h"
#include "send/outbound.h"
#include "stream/sse.h"
#include "redis/redis.h"
#include "util/id.h"
#include "util/json.h"
#include "util/parse.h"

static void unavailable(struct db_httpd_req *req)
{
    db_httpd_respond_error(req, 503, "unavailable", "storage unavailable, retry");
}

static int failed(int status, const redisReply *reply)
{
    return status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR;
}

/* ---- reply conversion ---- */

static int numeric_field(const char *k)
{
    static const char *const nums[] = {
        "first_message_at", "first_response_at", "last_message_at", "unread", "created_at",
        "assigned_at", "queued_at", "closed_at", "reopened_at", "last_reply_at", "capacity",
        "load", "offline_at", NULL};
    for (int i = 0; nums[i]; i++)
        if (strcmp(k, nums[i]) == 0) return 1;
    return 0;
}

/* Object of a flat [field, value, ...] hash reply; internal fields left out, and for a
 * conversation the customer's profile gathered under "customer".  New reference. */
static json_t *hash_obj(const redisReply *h, int conversation)
{
    json_t *o = json_object(), *cust = json_object(), *survey = json_object();
    for (size_t i = 0; o && cust && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (!k || !v || strcmp(k, "last_entry") == 0) continue;
        json_t *val;
        if (numeric_field(k)) val = json_integer(strtoll(v, NULL, 10));
        else if (strcmp(k, "languages") == 0 || strcmp(k, "accounts") == 0)
            val = json_loads(v, 0, NULL);
        else if (strcmp(k, "agent") == 0 && !*v) val = json_null();
        else val = json_string(v);
        if (!val) val = json_null();
        int profile = strcmp(k, "name") == 0 || strcmp(k, "username") == 0 ||
                      strcmp(k, "language") == 0 || strcmp(k, "user_id") == 0;
        if (conversation && survey && strncmp(k, "survey_", 7) == 0) {
            db_survey_member(survey, k + 7, v);
            json_decref(val);
            continue;
        }
        json_object_set_new(conversation && profile ? cust : o, k, val);
    }
    if (o && cust && conversation) json_object_set(o, "customer", cust);
    if (o && survey && conversation && json_object_size(survey))
        json_object_set(o, "survey", survey);
    json_decref(cust);
    json_decref(survey);
    return o;
}

/* ---- agents ---- */

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@") == n;
}

/* The script's scope argument: the tenant's name, "" for the operator. */
static const char *scope_name(const struct db_tenant *t)
{
    return t ? t->name : "";
}

/* The tenant's accounts joined by sep ("" for the operator).  Caller frees; NULL when out
 * of memory. */
static char *tenant_accounts_joined(const struct db_tenant *t, const char *sep)
{
    size_t n = 1;
    for (size_t i = 0; t && i < t->n_accounts; i++) n += strlen(t->accounts[i]) + strlen(sep);
    char *out = malloc(n), *w = out;
    if (!out) return NULL;
    *w = '\0';
    for (size_t i = 0; t && i < t->n_accounts; i++)
        w += sprintf(w, "%s%s", i ? sep : "", t->accounts[i]);
    return out;
}

/* 1 when the conversation id names one of the tenant's accounts (always for the operator).
 * The conversation's platform and account fields are set from the same event that gives
 * its id, so the id alone decides. */
static int tenant_owns_conversation(const struct db_tenant *t, const char *conv)
{
    char platform[32], account[96];
    const char *chat;
    if (!t) return 1;
    return db_conversation_split(conv, platform, sizeof platform, account, sizeof account,
                                 &chat) == DB_OK &&
           db_tenant_serves(t, platform, account);
}

static void agents_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY) {
        unavailable(req);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < reply->elements; i++) {
        const redisReply *a = reply->element[i];
        if (a->type != REDIS_REPLY_ARRAY || a->elements != 2) continue;
        json_t *o = hash_obj(a->element[0], 0), *convs = json_array();
        for (size_t k = 0; convs && k < a->element[1]->elements; k++)
            json_array_append_new(convs, json_string(a->element[1]->element[k]->str));
        if (o) json_object_set_new(o, "conversations", convs ? convs : json_array());
        else json_decref(convs);
        if (o) json_array_append_new(list, o);
    }
    json_t *out = json_pack("{s:o}", "agents", list ? list : json_array());
    if (out) db_respond_json(req, 200, out);
    else db_httpd_respond_error(req, 500, "internal", "out of memory");
    json_decref(out);
}

static void one_agent_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    if (!failed(status, reply) && reply->type == REDIS_REPLY_ARRAY && reply->elements == 0) {
        db_httpd_respond_error(req, 404, "not_found", "no such agent");
        return;
    }
    agents_cb(status, reply, errstr, arg);
}

static void ok_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (failed(status, reply)) {
        unavailable(req);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer < 0) {
        db_httpd_respond_error(req, 404, "not_found", "no such agent");
    } else if (reply->type == REDIS_REPLY_STRING) {
        /* An error word of the script. */
        int code = strncmp(reply->str, "no_", 3) == 0 ? 404 : 409;
        db_httpd_respond_error(req, code, reply->str, "refused by the dispatcher");
    } else {
        static const char ok[] = "{\"ok\":true}";
        db_httpd_respond(req, 200, "application/json", ok, sizeof ok - 1, NULL);
    }
}

static int bad(struct db_httpd_req *req, const char *field, const char *msg)
{
    json_t *err = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_field", "field",
                            field, "message", msg);
    db_respond_json(req, 400, err);
    json_decref(err);
    return 0;
}

/* A JSON array of short strings, dumped; "[]" when absent.  NULL (answered 400) when bad. */
static char *string_list_or_respond(struct db_httpd_req *req, json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    if (!v) return strdup("[]");
    size_t i;
    json_t *x;
    if (!json_is_array(v) || json_array_size(v) > 100) {
        bad(req, key, "want an array of strings");
        return NULL;
    }
    json_array_foreach(v, i, x) if (!json_is_string(x) || json_string_length(x) > 128)
    {
        bad(req, key, "want an array of strings");
        return NULL;
    }
    char *s = db_json_dump(v);
    if (!s) db_httpd_respond_error(req, 500, "internal", "out of memory");
    return s;
}

/* A tenant's agent serves only the tenant's accounts: the list given must be a subset, and
 * an empty one means all of them, so the assignment rule (agents get conversations of the
 * accounts they serve) keeps tenants apart.  Replaces *accts; 0, or -1 when answered. */
static int scope_agent_accounts(struct db_httpd_req *req, const struct db_tenant *t,
                                json_t *body, char **accts)
{
    json_t *v = json_object_get(body, "accounts"), *x;
    size_t i;
    json_array_foreach(v, i, x)
    {
        int ok = 0;
        for (size_t k = 0; k < t->n_accounts && !ok; k++)
            ok = strcmp(json_string_value(x), t->accounts[k]) == 0;
        if (!ok) {
            db_api_refuse(req, t, 403, "forbidden", "accounts",
                          "an agent serves only the tenant's accounts");
            return -1;
        }
    }
    if (json_array_size(v) > 0) return 0;
    json_t *all = json_array();
    for (size_t k = 0; all && k < t->n_accounts; k++)
        json_array_append_new(all, json_string(t->accounts[k]));
    char *dumped = all ? db_json_dump(all) : NULL;
    json_decref(all);
    if (!dumped) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return -1;
    }
    free(*accts);
    *accts = dumped;
    return 0;
}

static void put_agent(struct db_services *svc, struct db_httpd_req *req, const char *id,
                      const struct db_tenant *tenant)
{
    json_t *body = db_respond_body_object(req);
    char *langs = NULL, *accts = NULL, cap[24];
    if (!body) return;
    const char *name = db_json_str(body, "name");
    json_t *c = json_object_get(body, "capacity");
    long capacity = db_dispatch_opts_of(svc->cfg->cfg).default_capacity;
    if (c && (!json_is_integer(c) || json_integer_value(c) < 0 || json_integer_value(c) > 10000))
        goto fail_bad_cap;
    if (c) capacity = (long)json_integer_value(c);
    if (json_object_get(body, "name") && !name) {
        bad(req, "name", "want a string");
        goto fail;
    }
    if (!(langs = string_list_or_respond(req, body, "languages"))) goto fail;
    if (!(accts = string_list_or_respond(req, body, "accounts"))) goto fail;
    if (tenant && scope_agent_accounts(req, tenant, body, &accts) != 0) goto fail;
    snprintf(cap, sizeof cap, "%ld", capacity);
    /* The script refuses (no_agent) an id that another tenant, or the operator, owns. */
    const char *args[] = {id, name ? name : id, cap, langs, accts, scope_name(tenant)};
    db_dispatch_run(svc, ok_cb, req, "agent_put", 6, args, NULL);
    goto fail; /* answered by ok_cb; only the cleanup below remains */
fail_bad_cap:
    bad(req, "capacity", "want a whole number from 0 to 10000");
fail:
    free(langs);
    free(accts);
    json_decref(body);
}

static void post_presence(struct db_services *svc, struct db_httpd_req *req, const char *id,
                          const struct db_tenant *tenant)
{
    json_t *body = db_respond_body_object(req);
    if (!body) return;
    const char *p = db_json_str(body, "presence");
    if (!p || (strcmp(p, "online") && strcmp(p, "away") && strcmp(p, "offline"))) {
        bad(req, "presence", "want online, away or offline");
    } else {
        char grace[24];
        snprintf(grace, sizeof grace, "%ld", db_dispatch_opts_of(svc->cfg->cfg).offline_grace_ms);
        const char *args[] = {id, p, grace, scope_name(tenant)};
        db_dispatch_run(svc, ok_cb, req, "presence", 4, args, NULL);
    }
    json_decref(body);
}

/* ---- the agent inbox as Server-Sent Events (stream/sse.h, woken on every write) ---- */

void db_dispatch_stream(struct db_services *svc, struct db_httpd_req *req, const char *id)
{
    char key[256], from[64];
    db_key_tagged(key, sizeof key, svc->cfg->cfg->prefix, DB_KEY_AGENT_INBOX, id);
    const char *resume = db_httpd_req_header(req, "Last-Event-ID");
    const char *q = db_httpd_req_query(req);
    if (resume && strspn(resume, "0123456789-") == strlen(resume) && *resume &&
        strlen(resume) < sizeof from)
        snprintf(from, sizeof from, "%s", resume);
    else if (q && strstr(q, "from=now")) snprintf(from, sizeof from, "%lld-0", (long long)db_now_ms());
    else snprintf(from, sizeof from, "0-0");
    const struct db_sse_opts o = {.key = key, .from = from};
    (void)db_sse_start(svc, req, &o, NULL);
}

/* A tenant's stream starts only once the agent is known to be the tenant's. */
struct stream_check {
    struct db_services *svc;
    struct db_httpd_req *req;
    char id[72];
    char tenant[72];
};

static void stream_owner_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct stream_check *k = arg;
    (void)errstr;
    if (failed(status, reply)) unavailable(k->req);
    else if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, k->tenant) != 0)
        db_httpd_respond_error(k->req, 404, "not_found", "no such agent");
    else db_dispatch_stream(k->svc, k->req, k->id);
    free(k);
}

static void stream_tenant_agent(struct db_services *svc, struct db_httpd_req *req, const char *id,
                                const struct db_tenant *tenant)
{
    struct stream_check *k = calloc(1, sizeof *k);
    if (!k) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    k->svc = svc;
    k->req = req;
    snprintf(k->id, sizeof k->id, "%s", id);
    snprintf(k->tenant, sizeof k->tenant, "%s", tenant->name);
    db_redis_cmd(svc->redis, stream_owner_cb, k, "HGET %s:agentinfo:{%s} tenant",
                 svc->cfg->cfg->prefix, id);
}

/* ---- conversations ---- */

/* Value of name in a raw query string, percent-decoded into buf; NULL when absent. */
static const char *query_param(const char *q, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=') continue;
        size_t o = 0;
        for (const char *v = p + nl + 1; *v && *v != '&' && o + 1 < n; v++) {
            unsigned hi;
            if (*v == '%' && v[1] && v[2] && sscanf(v + 1, "%2x", &hi) == 1) buf[o++] = (char)hi, v += 2;
            else buf[o++] = *v == '+' ? ' ' : *v;
        }
        buf[o] = '\0';
        return buf;
    }
    return NULL;
}

static void list_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        unavailable(req);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 1; list && i < reply->elements; i++) {
        json_t *o = hash_obj(reply->element[i], 1);
        if (o) json_array_append_new(list, o);
    }
    const char *next = reply->element[0]->str;
    json_t *out = json_pack("{s:o, s:o}", "conversations", list ? list : json_array(),
                            "next_cursor", next && *next ? json_string(next) : json_null());
    if (out) db_respond_json(req, 200, out);
    else db_httpd_respond_error(req, 500, "internal", "out of memory");
    json_decref(out);
}

static void list_conversations(struct db_services *svc, struct db_httpd_req *req,
                               const struct db_tenant *tenant)
{
    const char *q = db_httpd_req_query(req);
    char st[32], ag[128], ac[128], pl[64], cur[24], lim[24];
    const char *args[] = {query_param(q, "state", st, sizeof st),
                          query_param(q, "agent", ag, sizeof ag),
                          query_param(q, "account", ac, sizeof ac),
                          query_param(q, "platform", pl, sizeof pl),
                          query_param(q, "cursor", cur, sizeof cur),
                          query_param(q, "limit", lim, sizeof lim)};
    long limit = 50;
    if (args[5] && db_parse_long(args[5], 1, 500, &limit) != 0) {
        bad(req, "limit", "want 1 to 500");
        return;
    }
    if (args[4] && strspn(args[4], "0123456789") != strlen(args[4])) {
        bad(req, "cursor", "not a cursor this API gave");
        return;
    }
    snprintf(lim, sizeof lim, "%ld", limit);
    args[5] = lim;
    for (int i = 0; i < 5; i++)
        if (!args[i]) args[i] = "";
    /* A tenant's list is filtered inside the script while it scans, so a page is as full as
     * the operator's would be (docs/dispatcher.md). */
    char *scope = tenant_accounts_joined(tenant, "\n");
    if (!scope) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    const char *all[] = {args[0], args[1], args[2], args[3], args[4], args[5], scope};
    db_dispatch_run(svc, list_cb, req, "list", 7, all, NULL);
    free(scope);
}

static void get_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (!failed(status, reply) && reply->type == REDIS_REPLY_NIL) {
        db_httpd_respond_error(req, 404, "not_found", "no such conversation");
        return;
    }
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        unavailable(req);
        return;
    }
    json_t *o = hash_obj(reply->element[0], 1), *msgs = json_array();
    const redisReply *items = reply->element[1], *st = reply->element[2];
    for (size_t i = 0; o && msgs && i < items->elements; i++) {
        json_t *it = json_loads(items->element[i]->str, 0, NULL);
        if (!it) continue;
        if (i < st->elements && st->element[i]->str && *st->element[i]->str)
            json_object_set_new(it, "status", json_string(st->element[i]->str));
        json_array_append_new(msgs, it);
    }
    if (o && msgs) json_object_set(o, "messages", msgs);
    json_decref(msgs);
    if (o) db_respond_json(req, 200, o);
    else db_httpd_respond_error(req, 500, "internal", "out of memory");
    json_decref(o);
}

static void conversation_action(struct db_services *svc, struct db_httpd_req *req,
                                const char *conv, const char *action,
                                const struct db_tenant *tenant)
{
    if (strcmp(action, "close") == 0) {
        /* with the account's satisfaction survey, if it has one */
        db_survey_close(svc, conv, ok_cb, req);
        return;
    }
    json_t *body = db_respond_body_object(req);
    if (!body) return;
    int assign = strcmp(action, "assign") == 0, transfer = strcmp(action, "transfer") == 0;
    if (assign || transfer) {
        const char *agent = db_json_str(body, "agent");
        if (!agent || !valid_id(agent)) {
            bad(req, "agent", "want an agent id");
        } else {
            /* The script answers no_agent for an agent that is not the tenant's. */
            const char *args[] = {conv, agent, scope_name(tenant)};
            db_dispatch_run(svc, ok_cb, req, assign ? "assign" : "transfer", 3, args, NULL);
        }
    } else if (strcmp(action, "priority") == 0) {
        const char *p = db_json_str(body, "priority");
        if (db_priority_parse(p) < 0) {
            bad(req, "priority", "want low, normal, high or urgent");
        } else {
            const char *args[] = {conv, p};
            db_dispatch_run(svc, ok_cb, req, "priority", 2, args, NULL);
        }
    } else {
        db_httpd_respond_error(req, 404, "not_found", "no such route");
    }
    json_decref(body);
}

/* ---- stats ---- */

static json_t *pct_obj(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return json_null();
    const char *m = r->element[0]->str, *p = r->element[1]->str;
    return json_pack("{s:o, s:o, s:I}", "median_ms",
                     m && *m ? json_integer(strtoll(m, NULL, 10)) : json_null(), "p90_ms",
                     p && *p ? json_integer(strtoll(p, NULL, 10)) : json_null(), "count",
                     (json_int_t)strtoll(r->element[2]->str ? r->element[2]->str : "0", NULL, 10));
}

/* A GET /v1/stats between its two script runs. */
struct stats_call {
    struct db_services *svc;
    struct db_httpd_req *req;
    json_t *out; /* the counters, owned */
};

/* Adds agents, accounts and satisfaction to the counters and answers. */
static void people_cb(json_t *stats, void *arg)
{
    struct stats_call *sc = arg;
    static const char *const parts[] = {"agents", "accounts", "satisfaction"};
    int ok = stats != NULL;
    for (size_t i = 0; ok && i < 3; i++) {
        json_t *v = json_object_get(stats, parts[i]);
        ok = json_is_object(v) && json_object_set(sc->out, parts[i], v) == 0;
    }
    if (ok) db_respond_json(sc->req, 200, sc->out);
    else unavailable(sc->req);
    json_decref(sc->out);
    free(sc);
}

static void stats_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct stats_call *sc = arg;
    struct db_httpd_req *req = sc->req;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 8) {
        unavailable(req);
        free(sc);
        return;
    }
    sc->out = json_pack(
        "{s:I, s:I, s:I, s:I, s:{s:o, s:o}, s:{s:o, s:o}}", "open",
        (json_int_t)reply->element[0]->integer, "queued", (json_int_t)reply->element[1]->integer,
        "assigned", (json_int_t)reply->element[2]->integer, "agents_online",
        (json_int_t)reply->element[3]->integer, "first_response", "hour",
        pct_obj(reply->element[4]), "day", pct_obj(reply->element[5]), "queue_wait", "hour",
        pct_obj(reply->element[6]), "day", pct_obj(reply->element[7]));
    if (!sc->out) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        free(sc);
        return;
    }
    /* Then the per-agent and per-account part, from its own script (shared with /metrics):
     * a second round trip rather than a copy of that script inside the dispatcher's. */
    db_agent_stats_read(sc->svc, people_cb, sc);
}

static void get_stats(struct db_services *svc, struct db_httpd_req *req)
{
    struct stats_call *sc = calloc(1, sizeof *sc);
    if (!sc) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    sc->svc = svc, sc->req = req;
    db_dispatch_run(svc, stats_cb, sc, "stats", 0, NULL, NULL);
}

/* ---- routing ---- */

static int agent_routes(struct db_services *svc, struct db_httpd_req *req, const char *rest,
                        const char *method, const struct db_tenant *tenant)
{
    char id[128];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n >= sizeof id) return 0;
    memcpy(id, rest, n), id[n] = '\0';
    if (!valid_id(id)) {
        bad(req, "agent", "agent ids are 1-64 of A-Z a-z 0-9 _ . - @");
        return 1;
    }
    const char *sub = slash ? slash + 1 : "";
    const char *args[] = {id, scope_name(tenant)};
    if (!*sub && strcmp(method, "PUT") == 0) put_agent(svc, req, id, tenant);
    else if (!*sub && strcmp(method, "GET") == 0)
        db_dispatch_run(svc, one_agent_cb, req, "agents", 2, args, NULL);
    else if (strcmp(sub, "presence") == 0 && strcmp(method, "POST") == 0)
        post_presence(svc, req, id, tenant);
    else if (strcmp(sub, "stream") == 0 && strcmp(method, "GET") == 0 && tenant)
        stream_tenant_agent(svc, req, id, tenant);
    else if (strcmp(sub, "stream") == 0 && strcmp(method, "GET") == 0) db_dispatch_stream(svc, req, id);
    else db_httpd_respond_error(req, 405, "method_not_allowed", "no such method on this route");
    return 1;
}

static int conversation_routes(struct db_services *svc, struct db_httpd_req *req,
                               const char *rest, const char *method,
                               const struct db_tenant *tenant)
{
    char conv[512];
    if (snprintf(conv, sizeof conv, "%s", rest) >= (int)sizeof conv || !*conv) return 0;
    char *slash = strrchr(conv, '/');
    if (slash && strcmp(method, "POST") == 0) {
        *slash = '\0';
        /* Another tenant's conversation answers as a missing one does. */
        if (!tenant_owns_conversation(tenant, conv))
            db_api_refuse(req, tenant, 404, "no_conversation", NULL, "refused by the dispatcher");
        else conversation_action(svc, req, conv, slash + 1, tenant);
    } else if (!slash && strcmp(method, "GET") == 0 && !tenant_owns_conversation(tenant, conv)) {
        db_api_refuse(req, tenant, 404, "not_found", NULL, "no such conversation");
    } else if (!slash && strcmp(method, "GET") == 0) {
        const char *args[] = {conv};
        db_dispatch_run(svc, get_cb, req, "get", 1, args, NULL);
    } else {
        db_httpd_respond_error(req, 405, "method_not_allowed", "no such method on this route");
    }
    return 1;
}

static int api_handle(struct db_services *svc, struct db_httpd_req *req,
                      const struct db_tenant *tenant)
{
    const char *method = db_httpd_req_method(req), *path = db_httpd_req_path(req);
    int get = strcmp(method, "GET") == 0;
    if (strcmp(path, "/v1/agents") == 0 && get) {
        const char *args[] = {"", scope_name(tenant)};
        db_dispatch_run(svc, agents_cb, req, "agents", 2, args, NULL);
        return 1;
    }
    if (strncmp(path, "/v1/agents/", 11) == 0)
        return agent_routes(svc, req, path + 11, method, tenant);
    if (strcmp(path, "/v1/conversations") == 0 && get) {
        list_conversations(svc, req, tenant);
        return 1;
    }
    if (strncmp(path, "/v1/conversations/", 18) == 0)
        return conversation_routes(svc, req, path + 18, method, tenant);
    if (strcmp(path, "/v1/stats") == 0 && get) {
        /* The counters are gateway-wide sets; scoping them would mean a scan per call. */
        if (tenant)
            db_api_refuse(req, tenant, 403, "forbidden", "route", "statistics are the operator's");
        else get_stats(svc, req);
        return 1;
    }
    return 0;
}

static void route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    if (!api_handle(arg, req, who->tenant))
        db_httpd_respond_error(req, 404, "not_found", "no such route");
}

int db_dispatch_api_routes(struct db_services *svc, struct db_err *e)
{
    static const char *const paths[] = {"/v1/agents", "/v1/agents/", "/v1/conversations",
                                        "/v1/conversations/", "/v1/stats"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const struct db_route r = {.path = paths[i], .access = DB_ROUTE_TOKEN, .handler = route,
                                   .arg = svc};
        if (db_router_add(svc->router, &r) != DB_OK)
            return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}
