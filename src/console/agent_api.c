/* agent_api.c - what a signed-in agent does in the console (all session routes):
 *
 *   GET  /console/api/me                          who am I, my presence, my canned responses
 *   POST /console/api/presence {presence}
 *   GET  /console/api/agents                      my tenant's agents (to transfer to)
 *   GET  /console/api/conversations?view=mine|queue|all
 *   GET  /console/api/conversations/{id}          the state and the transcript
 *   POST /console/api/conversations/{id}/reply    {text} or {canned}
 *   POST /console/api/conversations/{id}/take | close | priority {priority} | transfer {agent}
 *   GET  /console/api/stream                      my inbox, live (Server-Sent Events)
 *   GET  /console/api/search?q=words               conversations by name, id or words
 *   GET  /console/api/stats                        a supervisor's counters of its tenant
 *   GET  /console/api/media/{platform}/{account}/{media id}
 *
 * Who sees what: a conversation of another tenant's account answers 404 like a missing one
 * (decided from its id); of the tenant's, an agent sees those assigned to it and the queued
 * ones of the accounts it serves, a supervisor all.  Changes go through the dispatcher's
 * script and the store exactly as the API's do.  The check and the change are two runs:
 * a conversation reassigned between them is changed as the agent saw it a moment before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "console/console.h"
#include "console/console_internal.h"
#include "console/search.h"
#include "services/services.h"
#include "dispatch/assign.h"
#include "dispatch/dispatcher.h"
#include "dispatch/script.h"
#include "dispatch/survey.h"
#include "http/respond.h"
#include "http/router.h"
#include "media/media.h"
#include "net/httpd.h"
#include "redis/scripts.h"
#include "send/canned.h"
#include "send/outbound.h"
#include "store/store.h"
#include "util/id.h"
#include "util/json.h"

#define REPLY_BODY_LIMIT (64 * 1024)

/* ---- helpers ---- */

static void answer(struct db_httpd_req *req, int status, json_t *obj)
{
    char *text = obj ? db_json_dump(obj) : NULL;
    if (text) db_httpd_respond(req, status, "application/json", text, strlen(text), db_console_headers);
    else db_httpd_respond_error(req, 500, "internal", "out of memory");
    free(text);
    json_decref(obj);
}

static int failed(int status, const redisReply *reply)
{
    return status != DB_OK || !reply || reply->type == REDIS_REPLY_ERROR;
}

static int numeric(const char *k)
{
    static const char *const nums[] = {
        "first_message_at", "first_response_at", "last_message_at", "unread", "created_at",
        "assigned_at", "queued_at", "closed_at", "reopened_at", "last_reply_at", "capacity",
        "load", "offline_at", NULL};
    for (int i = 0; nums[i]; i++)
        if (strcmp(k, nums[i]) == 0) return 1;
    return 0;
}

/* Object of a flat [field, value, ...] reply, internal fields left out.  New reference. */
static json_t *flat_obj(const redisReply *h)
{
    json_t *o = json_object(), *survey = NULL;
    for (size_t i = 0; o && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (!k || !v || strcmp(k, "last_entry") == 0) continue;
        /* a conversation's survey as the API shows it (docs/survey.md) */
        if (strncmp(k, "survey_", 7) == 0) {
            /* set_new frees survey when it fails: then try again at the next field */
            if (!survey && (survey = json_object()) && json_object_set_new(o, "survey", survey))
                survey = NULL;
            if (survey) db_survey_member(survey, k + 7, v);
            continue;
        }
        json_t *val = numeric(k) ? json_integer(strtoll(v, NULL, 10))
                      : strcmp(k, "languages") == 0 || strcmp(k, "accounts") == 0
                          ? json_loads(v, 0, NULL)
                          : json_string(v);
        json_object_set_new(o, k, val ? val : json_null());
    }
    return o;
}

/* The tenant's accounts, '\n'-joined ("" for the operator's agents).  Caller frees. */
static char *tenant_scope(const struct db_tenant *t)
{
    size_t n = 1;
    for (size_t i = 0; t && i < t->n_accounts; i++) n += strlen(t->accounts[i]) + 1;
    char *out = malloc(n), *w = out;
    if (!out) return NULL;
    *w = '\0';
    for (size_t i = 0; t && i < t->n_accounts; i++) w += sprintf(w, "%s\n", t->accounts[i]);
    return out;
}

/* Every configured account, '\n'-joined: an operator's agent's scope where one must be
 * named (search).  Caller frees. */
static char *all_accounts(const struct db_config *cfg)
{
    size_t n = 1;
    for (size_t i = 0; i < cfg->n_accounts; i++)
        n += strlen(cfg->accounts[i].platform) + strlen(cfg->accounts[i].id) + 2;
    char *out = malloc(n), *w = out;
    if (!out) return NULL;
    *w = '\0';
    for (size_t i = 0; i < cfg->n_accounts; i++)
        w += sprintf(w, "%s:%s\n", cfg->accounts[i].platform, cfg->accounts[i].id);
    return out;
}

static void inbox_run(struct db_services *svc, const struct db_caller *who, db_redis_cb cb,
                      void *arg, const char *op, const char *a1, const char *a2)
{
    static struct db_redis_script *script;
    if (!script) script = db_redis_script_new(db_lua_console_inbox);
    int named = strcmp(op, "search") == 0 && !who->tenant;
    char *scope = named ? all_accounts(who->cfg) : tenant_scope(who->tenant);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    const char *argv[] = {op,    svc->cfg->cfg->prefix, now, who->session->agent, scope ? scope : "",
                          who->session->supervisor ? "1" : "0", a1, a2};
    if (!script || !scope) cb(DB_ENOMEM, NULL, "out of memory", arg);
    else db_redis_eval(svc->redis, script, cb, arg, 0, NULL, !a1 ? 6 : a2 ? 8 : 7, argv, NULL);
    free(scope);
}

/* 1 when the conversation id names one of the tenant's accounts. */
static int tenant_owns(const struct db_tenant *t, const char *conv)
{
    char platform[32], account[96];
    const char *chat;
    return db_conversation_split(conv, platform, sizeof platform, account, sizeof account,
                                 &chat) == DB_OK &&
           db_tenant_serves(t, platform, account);
}

static const char *scope_name(const struct db_caller *who)
{
    return who->tenant ? who->tenant->name : "";
}

/* A canned response this agent may use: its tenant's ([canned] tenant = NAME), or for an
 * operator's agent those that name no tenant. */
static int canned_usable(const struct db_conf_section *s, const struct db_caller *who)
{
    const struct db_conf_kv *kv = db_conf_find(s, "tenant");
    return who->tenant ? kv && strcmp(kv->value, who->tenant->name) == 0 : !kv;
}

/* ---- me, presence, agents ---- */

struct call {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct db_cfg_ref *ref;
    struct db_session session;
    const struct db_tenant *tenant;
    char conv[512];
    char action[16];
    json_t *body;
    char *text; /* a reply's final text */
};

static struct call *call_new(struct db_services *svc, struct db_httpd_req *req,
                             const struct db_caller *who)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return NULL;
    }
    c->svc = svc;
    c->req = req;
    /* The tenant is borrowed from the configuration: keep it until the answer. */
    c->ref = db_cfg_ref(svc);
    c->session = *who->session;
    c->tenant = NULL;
    for (size_t t = 0; who->tenant && t < c->ref->cfg->n_tenants; t++)
        if (strcmp(c->ref->cfg->tenants[t].name, who->tenant->name) == 0)
            c->tenant = &c->ref->cfg->tenants[t];
    return c;
}

static void call_free(struct call *c)
{
    db_cfg_unref(c->ref);
    json_decref(c->body);
    free(c->text);
    free(c);
}

static struct db_caller caller_of(const struct call *c)
{
    struct db_caller who = {.cfg = c->ref->cfg, .tenant = c->tenant, .session = &c->session};
    return who;
}

static void me_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY) {
        db_respond_unavailable(c->req);
        call_free(c);
        return;
    }
    json_t *info = reply->elements == 1 && reply->element[0]->elements == 2
                       ? flat_obj(reply->element[0]->element[0])
                       : json_object();
    json_t *canned = json_array();
    struct db_caller who = caller_of(c);
    for (size_t i = 0; canned && i < c->ref->cfg->n_sections; i++) {
        const struct db_conf_section *s = &c->ref->cfg->sections[i];
        const struct db_conf_kv *t = db_conf_find(s, "text");
        if (strcmp(s->platform, "canned") == 0 && t && canned_usable(s, &who))
            json_array_append_new(canned, json_pack("{s:s, s:s}", "name", s->account, "text", t->value));
    }
    json_object_set_new(info, "agent", json_string(c->session.agent));
    json_object_set_new(info, "role", json_string(c->session.supervisor ? "supervisor" : "agent"));
    json_object_set_new(info, "canned", canned ? canned : json_array());
    if (!*c->session.tenant) json_object_del(info, "tenant");
    answer(c->req, 200, info);
    call_free(c);
}

static void get_me(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct call *c = call_new(arg, req, who);
    if (!c) return;
    const char *args[] = {who->session->agent, scope_name(who)};
    db_dispatch_run(c->svc, me_cb, c, "agents", 2, args, NULL);
}

static void agents_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY) {
        db_respond_unavailable(c->req);
        call_free(c);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < reply->elements; i++) {
        if (reply->element[i]->elements != 2) continue;
        json_t *o = flat_obj(reply->element[i]->element[0]);
        json_t *slim = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "name", json_object_get(o, "name"),
                                 "presence", json_object_get(o, "presence"), "load",
                                 json_object_get(o, "load"), "capacity",
                                 json_object_get(o, "capacity"), "id", json_object_get(o, "id"));
        json_decref(o);
        if (slim) json_array_append_new(list, slim);
    }
    answer(c->req, 200, json_pack("{s:o}", "agents", list ? list : json_array()));
    call_free(c);
}

static void get_agents(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct call *c = call_new(arg, req, who);
    if (!c) return;
    const char *args[] = {"", scope_name(who)};
    db_dispatch_run(c->svc, agents_cb, c, "agents", 2, args, NULL);
}

static void ok_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (failed(status, reply)) {
        db_respond_unavailable(c->req);
    } else if (reply->type == REDIS_REPLY_STRING || (reply->type == REDIS_REPLY_INTEGER &&
                                                     reply->integer < 0)) {
        const char *code = reply->type == REDIS_REPLY_STRING ? reply->str : "no_agent";
        db_httpd_respond_error(c->req, strncmp(code, "no_", 3) == 0 ? 404 : 409, code,
                               "refused by the dispatcher");
    } else {
        answer(c->req, 200, json_pack("{s:b}", "ok", 1));
    }
    call_free(c);
}

static void post_presence(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    json_t *body = db_respond_body_object(req);
    if (!body) return;
    const char *p = db_json_str(body, "presence");
    struct call *c = NULL;
    if (!p || (strcmp(p, "online") && strcmp(p, "away") && strcmp(p, "offline"))) {
        db_respond_field_error(req, 400, "invalid_field", "presence", "want online, away or offline");
    } else if ((c = call_new(arg, req, who))) {
        char grace[24];
        snprintf(grace, sizeof grace, "%ld", db_dispatch_opts_of(who->cfg).offline_grace_ms);
        const char *args[] = {who->session->agent, p, grace, scope_name(who)};
        db_dispatch_run(c->svc, ok_cb, c, "presence", 4, args, NULL);
    }
    json_decref(body);
}

/* ---- the inbox ---- */

static void list_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY) {
        db_respond_unavailable(c->req);
        call_free(c);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        json_t *o = flat_obj(e->element[1]);
        json_object_set_new(o, "id", json_string(e->element[0]->str));
        json_array_append_new(list, o);
    }
    answer(c->req, 200, json_pack("{s:o}", "conversations", list ? list : json_array()));
    call_free(c);
}

static void list_conversations(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    const char *q = db_httpd_req_query(req);
    const char *view = q && strstr(q, "view=queue") ? "queue"
                       : q && strstr(q, "view=all") ? "all"
                                                    : "mine";
    if (strcmp(view, "all") == 0 && !who->session->supervisor) {
        db_httpd_respond_error(req, 403, "forbidden", "for supervisors");
        return;
    }
    struct call *c = call_new(arg, req, who);
    if (!c) return;
    struct db_caller w = caller_of(c);
    inbox_run(c->svc, &w, list_cb, c, "list", view, "500");
}

/* ---- one conversation ---- */

static void transcript_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (!failed(status, reply) && reply->type == REDIS_REPLY_NIL) {
        db_httpd_respond_error(c->req, 404, "not_found", "no such conversation");
    } else if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        db_respond_unavailable(c->req);
    } else {
        json_t *o = flat_obj(reply->element[0]), *msgs = json_array();
        const redisReply *items = reply->element[1], *st = reply->element[2];
        static const char *const names[] = {"status", "text", "error_code", "error_message"};
        for (size_t i = 0; o && msgs && i < items->elements; i++) {
            json_t *it = json_loads(items->element[i]->str, 0, NULL);
            if (!it) continue;
            const redisReply *m = i < st->elements ? st->element[i] : NULL;
            for (size_t k = 0; m && m->type == REDIS_REPLY_ARRAY && k < 4 && k < m->elements; k++)
                if (m->element[k]->str && *m->element[k]->str)
                    json_object_set_new(it, names[k], json_string(m->element[k]->str));
            json_array_append_new(msgs, it);
        }
        json_object_set_new(o, "id", json_string(c->conv));
        json_object_set_new(o, "messages", msgs ? msgs : json_array());
        db_console_live_note(c->session.agent, c->conv);
        answer(c->req, 200, o);
    }
    call_free(c);
}

static void run_action(struct call *c, const char *state, const char *owner, int served);

static void access_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (failed(status, reply)) {
        db_respond_unavailable(c->req);
        call_free(c);
        return;
    }
    const char *state = "", *owner = "";
    int served = 0, exists = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3;
    if (exists) {
        state = reply->element[0]->str ? reply->element[0]->str : "";
        owner = reply->element[1]->str ? reply->element[1]->str : "";
        served = reply->element[2]->integer == 1;
    }
    int mine = exists && strcmp(owner, c->session.agent) == 0 && strcmp(state, "assigned") == 0;
    int visible = exists && (c->session.supervisor || mine ||
                             (strcmp(state, "queued") == 0 && served));
    if (!visible) {
        /* The same answer as a missing conversation: what is not yours does not show. */
        db_httpd_respond_error(c->req, 404, "not_found", "no such conversation");
        call_free(c);
        return;
    }
    if (!*c->action) {
        struct db_caller w = caller_of(c);
        inbox_run(c->svc, &w, transcript_cb, c, "transcript", c->conv, NULL);
        return;
    }
    run_action(c, state, owner, served);
}

/* ---- answering and the actions ---- */

static void enqueued_cb(int status, const char *id, const char *msg_status, int created, void *arg)
{
    struct call *c = arg;
    (void)created;
    if (status != DB_OK) {
        db_respond_unavailable(c->req);
    } else {
        /* The dispatcher records the reply, with its text, from the outbox
         * (dispatch/replies.h), as it does every reply whoever wrote it. */
        answer(c->req, 202, json_pack("{s:s, s:s}", "id", id, "status", msg_status ? msg_status : "queued"));
    }
    call_free(c);
}

static void reply(struct call *c)
{
    json_t *cmd = json_pack("{s:s, s:s}", "conversation", c->conv, "agent", c->session.agent);
    const char *text = db_json_str(c->body, "text"), *canned = db_json_str(c->body, "canned");
    struct db_err e = {0};
    const char *field = NULL;
    if (!cmd) {
        db_httpd_respond_error(c->req, 500, "internal", "out of memory");
        goto done;
    }
    if (canned) {
        const struct db_conf_section *s = db_config_section(c->ref->cfg, "canned", canned);
        struct db_caller who = caller_of(c);
        if (!s || !canned_usable(s, &who)) {
            db_respond_field_error(c->req, 400, "invalid_field", "canned", "no canned response of that name");
            goto done;
        }
        json_object_set_new(cmd, "canned", json_string(canned));
        json_t *v = json_object_get(c->body, "customer_name");
        if (json_is_string(v)) json_object_set(cmd, "customer_name", v);
        json_object_set_new(cmd, "agent_name", json_string(c->session.agent));
        if (db_canned_expand(c->ref->cfg, cmd, &e) != DB_OK) field = "canned";
        json_object_del(cmd, "customer_name");
        json_object_del(cmd, "agent_name");
    } else if (text) {
        json_object_set_new(cmd, "text", json_string(text));
    } else {
        db_respond_field_error(c->req, 400, "invalid_field", "text", "want text or canned");
        goto done;
    }
    const struct db_account *acct;
    struct db_outbound msg;
    if (field || db_outbound_from_json(c->ref->cfg, cmd, &acct, &msg, &field, &e) != DB_OK) {
        db_respond_field_error(c->req, 400, "invalid_field", field ? field : "body", e.msg);
        goto done;
    }
    char id[DB_ID_LEN + 1];
    db_id_new(id);
    json_object_set_new(cmd, "id", json_string(id));
    char *dumped = db_json_dump(cmd);
    c->text = db_json_str(cmd, "text") ? strdup(db_json_str(cmd, "text")) : NULL;
    if (!dumped || !c->text) {
        free(dumped);
        db_httpd_respond_error(c->req, 500, "internal", "out of memory");
        goto done;
    }
    db_store_enqueue(c->svc->store, id, NULL, c->conv, acct->platform, acct->id, dumped,
                     enqueued_cb, c);
    free(dumped);
    json_decref(cmd);
    return;
done:
    json_decref(cmd);
    call_free(c);
}

static void run_action(struct call *c, const char *state, const char *owner, int served)
{
    int mine = strcmp(owner, c->session.agent) == 0 && strcmp(state, "assigned") == 0;
    int may_change = c->session.supervisor || mine;
    const char *scope = c->tenant ? c->tenant->name : "";
    if (strcmp(c->action, "take") == 0) {
        if (!(strcmp(state, "queued") == 0 && (served || c->session.supervisor))) {
            db_httpd_respond_error(c->req, 409, "not_queued", "the conversation is not waiting");
            call_free(c);
            return;
        }
        const char *args[] = {c->conv, c->session.agent, scope};
        db_dispatch_run(c->svc, ok_cb, c, "assign", 3, args, NULL);
        return;
    }
    if (!may_change) {
        db_httpd_respond_error(c->req, 403, "forbidden", "not your conversation");
        call_free(c);
        return;
    }
    if (strcmp(c->action, "reply") == 0) {
        reply(c);
    } else if (strcmp(c->action, "close") == 0) {
        db_survey_close(c->svc, c->conv, ok_cb, c);
    } else if (strcmp(c->action, "priority") == 0) {
        const char *p = db_json_str(c->body, "priority");
        if (db_priority_parse(p) < 0) {
            db_respond_field_error(c->req, 400, "invalid_field", "priority",
                                   "want low, normal, high or urgent");
            call_free(c);
            return;
        }
        const char *args[] = {c->conv, p};
        db_dispatch_run(c->svc, ok_cb, c, "priority", 2, args, NULL);
    } else {
        const char *to = db_json_str(c->body, "agent");
        if (!to || !*to || strlen(to) > 64) {
            db_respond_field_error(c->req, 400, "invalid_field", "agent", "want an agent id");
            call_free(c);
            return;
        }
        /* The script answers no_agent for an agent that is not the tenant's.  A supervisor
         * hands a waiting conversation to someone: that is an assignment. */
        const char *args[] = {c->conv, to, scope};
        int waiting = strcmp(state, "queued") == 0;
        db_dispatch_run(c->svc, ok_cb, c, waiting ? "assign" : "transfer", 3, args, NULL);
    }
}

static void conversation_route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    const char *rest = db_httpd_req_path(req) + strlen("/console/api/conversations/");
    const char *m = db_httpd_req_method(req);
    char conv[512], action[16] = "";
    if (snprintf(conv, sizeof conv, "%s", rest) >= (int)sizeof conv || !*conv) {
        db_httpd_respond_error(req, 404, "not_found", "no such conversation");
        return;
    }
    char *slash = strrchr(conv, '/');
    if (slash && strcmp(m, "POST") == 0) {
        static const char *const actions[] = {"reply", "take", "close", "priority", "transfer", NULL};
        int known = 0;
        for (int i = 0; actions[i]; i++) known |= strcmp(slash + 1, actions[i]) == 0;
        if (!known) {
            db_httpd_respond_error(req, 404, "not_found", "no such action");
            return;
        }
        snprintf(action, sizeof action, "%s", slash + 1);
        *slash = '\0';
    } else if (slash || strcmp(m, "GET") != 0) {
        db_httpd_respond_error(req, 405, "method_not_allowed", "no such method on this route");
        return;
    }
    if (!tenant_owns(who->tenant, conv)) {
        db_httpd_respond_error(req, 404, "not_found", "no such conversation");
        return;
    }
    json_t *body = NULL;
    if (*action && strcmp(action, "close") && strcmp(action, "take") && !(body = db_respond_body_object(req)))
        return;
    struct call *c = call_new(arg, req, who);
    if (!c) {
        json_decref(body);
        return;
    }
    c->body = body;
    snprintf(c->conv, sizeof c->conv, "%s", conv);
    snprintf(c->action, sizeof c->action, "%s", action);
    struct db_caller w = caller_of(c);
    inbox_run(c->svc, &w, access_cb, c, "access", c->conv, NULL);
}

/* ---- a supervisor's counters ---- */

static void stats_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct call *c = arg;
    (void)errstr;
    if (failed(status, reply) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        db_respond_unavailable(c->req);
    } else {
        answer(c->req, 200, json_pack("{s:I, s:I, s:I, s:I}", "open", (json_int_t)reply->element[0]->integer,
                                      "queued", (json_int_t)reply->element[1]->integer, "assigned",
                                      (json_int_t)reply->element[2]->integer, "agents_online",
                                      (json_int_t)reply->element[3]->integer));
    }
    call_free(c);
}

static void get_stats(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    if (!who->session->supervisor) {
        db_httpd_respond_error(req, 403, "forbidden", "for supervisors");
        return;
    }
    struct call *c = call_new(arg, req, who);
    if (!c) return;
    struct db_caller w = caller_of(c);
    inbox_run(c->svc, &w, stats_cb, c, "stats", NULL, NULL);
}

/* ---- search ---- */

struct words {
    char buf[1024];
    size_t len;
    int n;
};

static void add_query_word(const char *w, size_t n, void *arg)
{
    struct words *q = arg;
    if (q->n >= DB_SEARCH_MAX_QUERY_WORDS || q->len + n + 2 > sizeof q->buf) return;
    memcpy(q->buf + q->len, w, n);
    q->len += n;
    q->buf[q->len++] = '\n';
    q->buf[q->len] = '\0';
    q->n++;
}

static void search(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    const char *q = db_httpd_req_query(req);
    char text[512];
    size_t o = 0;
    /* q=... percent-decoded ('+' is a space). */
    const char *v = q ? strstr(q, "q=") : NULL;
    if (v && v != q && v[-1] != '&') v = NULL;
    for (v = v ? v + 2 : NULL; v && *v && *v != '&' && o + 1 < sizeof text; v++) {
        unsigned hi;
        if (*v == '%' && v[1] && v[2] && sscanf(v + 1, "%2x", &hi) == 1) text[o++] = (char)hi, v += 2;
        else text[o++] = *v == '+' ? ' ' : *v;
    }
    text[o] = '\0';
    struct words w = {.len = 0};
    w.buf[0] = '\0';
    db_search_words(text, 0, add_query_word, &w);
    if (w.n == 0) {
        answer(req, 200, json_pack("{s:[]}", "conversations"));
        return;
    }
    struct call *c = call_new(arg, req, who);
    if (!c) return;
    struct db_caller cw = caller_of(c);
    inbox_run(c->svc, &cw, list_cb, c, "search", w.buf, "50");
}

/* ---- live stream and media ---- */

static void get_stream(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    db_console_live_stream(arg, req, who->session, who->tenant);
}

static void get_media(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    char buf[1024];
    char *seg[3];
    if (!db_route_segments(db_httpd_req_path(req), "/console/api/media/", buf, sizeof buf, seg, 3) ||
        !db_tenant_serves(who->tenant, seg[0], seg[1]))
        db_httpd_respond_error(req, 404, "not_found", "no such media");
    else db_media_serve(arg, req, seg[0], seg[1], seg[2]);
}

int db_console_agent_routes(struct db_services *svc)
{
    const struct db_route routes[] = {
        {"GET", "/console/api/me", 0, NULL, DB_ROUTE_SESSION, get_me, svc, 0},
        {"POST", "/console/api/presence", 1024, NULL, DB_ROUTE_SESSION, post_presence, svc, 0},
        {"GET", "/console/api/agents", 0, NULL, DB_ROUTE_SESSION, get_agents, svc, 0},
        {"GET", "/console/api/conversations", 0, NULL, DB_ROUTE_SESSION, list_conversations, svc, 0},
        {NULL, "/console/api/conversations/", REPLY_BODY_LIMIT, NULL, DB_ROUTE_SESSION,
         conversation_route, svc, 0},
        {"GET", "/console/api/stream", 0, NULL, DB_ROUTE_SESSION, get_stream, svc, 0},
        {"GET", "/console/api/search", 0, NULL, DB_ROUTE_SESSION, search, svc, 0},
        {"GET", "/console/api/stats", 0, NULL, DB_ROUTE_SESSION, get_stats, svc, 0},
        {"GET", "/console/api/media/", 0, NULL, DB_ROUTE_SESSION, get_media, svc, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (db_router_add(svc->router, &routes[i]) != DB_OK) return DB_ENOMEM;
    return DB_OK;
}
