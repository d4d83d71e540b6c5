#include "api_client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon.h"

char *db_test_post_json(int port, const char *token, const char *path, const char *json,
                        int *status)
{
    char auth[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    struct db_test_resp r;
    db_test_http(port, "POST", path, headers, json, strlen(json), &r);
    *status = r.status;
    char *body = r.body;
    r.body = NULL;
    db_test_resp_clear(&r);
    return body;
}

int db_test_api(int port, const char *token, const char *method, const char *path,
                const char *body, json_t **out)
{
    char authz[256];
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    const char *headers[] = {authz, "Content-Type: application/json", NULL};
    struct db_test_resp r;
    db_test_http(port, method, path, headers, body, body ? strlen(body) : 0, &r);
    int status = r.status;
    if (out) *out = json_loads(r.body ? r.body : "", 0, NULL);
    db_test_resp_clear(&r);
    return status;
}

struct msg_wait {
    int port;
    const char *token, *id, *want;
    json_t *last;
};

static int message_reaches(void *arg)
{
    struct msg_wait *w = arg;
    char path[256], auth[256];
    snprintf(path, sizeof path, "/v1/messages/%s", w->id);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->token);
    const char *headers[] = {auth, NULL};
    struct db_test_resp r;
    db_test_http(w->port, "GET", path, headers, NULL, 0, &r);
    json_decref(w->last);
    w->last = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    db_test_resp_clear(&r);
    const char *st = json_string_value(json_object_get(w->last, "status"));
    return st && strcmp(st, w->want) == 0;
}

json_t *db_test_wait_message(int port, const char *token, const char *id, const char *want,
                             int timeout_ms)
{
    struct msg_wait w = {port, token, id, want, NULL};
    if (!db_test_wait(message_reaches, &w, timeout_ms)) {
        char *s = w.last ? json_dumps(w.last, 0) : strdup("(none)");
        print_error("message %s: want %s, last seen %s\n", id, want, s);
        free(s);
        json_decref(w.last);
        fail();
    }
    return w.last;
}

long long db_test_xlen(redisContext *c, const char *stream)
{
    redisReply *r = redisCommand(c, "XLEN deskbridge:%s", stream);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        fail_msg("XLEN %s: %s", stream, r ? r->str : c->errstr);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

json_t *db_test_last_entry(redisContext *c, const char *stream, const char *field)
{
    redisReply *r = redisCommand(c, "XREVRANGE deskbridge:%s + - COUNT 1", stream);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        fail_msg("%s: no entry", stream);
    redisReply *fields = r->element[0]->element[1];
    json_t *obj = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, field) == 0)
            obj = json_loads(fields->element[i + 1]->str, 0, NULL);
    freeReplyObject(r);
    if (!obj) fail_msg("%s: newest entry has no JSON field %s", stream, field);
    return obj;
}

struct group_read {
    redisContext *c;
    const char *group;
};

static int events_read(void *arg)
{
    const struct group_read *w = arg;
    redisReply *last = redisCommand(w->c, "XREVRANGE deskbridge:events + - COUNT 1");
    redisReply *g = redisCommand(w->c, "XINFO GROUPS deskbridge:events");
    int done = 0;
    if (last && g && last->type == REDIS_REPLY_ARRAY && last->elements == 1 &&
        g->type == REDIS_REPLY_ARRAY) {
        const char *last_id = last->element[0]->element[0]->str;
        for (size_t i = 0; i < g->elements; i++) {
            const redisReply *grp = g->element[i];
            const char *name = NULL, *delivered = NULL;
            long long pending = -1;
            for (size_t k = 0; k + 1 < grp->elements; k += 2) {
                const char *f = grp->element[k]->str;
                if (strcmp(f, "name") == 0) name = grp->element[k + 1]->str;
                else if (strcmp(f, "pending") == 0) pending = grp->element[k + 1]->integer;
                else if (strcmp(f, "last-delivered-id") == 0)
                    delivered = grp->element[k + 1]->str;
            }
            if (name && strcmp(name, w->group) == 0)
                done = pending == 0 && delivered && strcmp(delivered, last_id) == 0;
        }
    }
    freeReplyObject(last);
    freeReplyObject(g);
    return done;
}

void db_test_wait_events_read(redisContext *c, const char *group, int timeout_ms)
{
    struct group_read w = {c, group};
    if (!db_test_wait(events_read, &w, timeout_ms))
        fail_msg("group %s did not read deskbridge:events to its end within %d ms", group,
                 timeout_ms);
}
