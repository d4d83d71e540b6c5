#include "ingest/callback_answer.h"

#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "log/log.h"
#include "net/http_client.h"
#include "services/services.h"

#define ANSWER_TIMEOUT_MS 10000

struct db_cb_answers *db_cb_answers_collect(const struct db_account *acct,
                                            const struct db_event_list *events)
{
    struct db_cb_answers *a = NULL;
    if (!acct->conn->build_callback_answer) return NULL;
    for (size_t i = 0; i < events->n; i++) {
        const char *kind = json_string_value(json_object_get(events->v[i].json, "kind"));
        if (!kind || strcmp(kind, "callback") != 0) continue;
        if (!a && !(a = calloc(1, sizeof *a))) return NULL;
        if (!a->v && !(a->v = calloc(events->n, sizeof *a->v))) {
            free(a);
            return NULL;
        }
        struct db_err e = {0};
        struct db_http_req *req = &a->v[a->n];
        int rc = db_conn_build_callback_answer(acct->conn, acct->state, events->v[i].json, req, &e);
        if (rc == DB_OK) {
            a->n++;
            continue;
        }
        db_http_req_clear(req);
        if (rc != DB_ENOTFOUND) {
            struct db_log_ctx ctx = {"ingest", acct->platform, acct->id, NULL};
            db_log(DB_LOG_WARN, &ctx, "cannot acknowledge a button tap: %s", e.msg);
        }
    }
    if (a && a->n == 0) {
        db_cb_answers_free(a);
        return NULL;
    }
    return a;
}

static void answered_cb(const struct db_http_resp *resp, void *arg)
{
    (void)arg;
    if (resp->status < 200 || resp->status >= 300) {
        struct db_log_ctx ctx = {"ingest", NULL, NULL, NULL};
        /* Telegram refuses answers to queries older than about 15 s ("query is too old"):
         * a redelivered tap's answer fails harmlessly. */
        db_log(DB_LOG_INFO, &ctx, "button tap acknowledgement answered HTTP %ld%s%s",
               resp->status, resp->transport_error ? ": " : "",
               resp->transport_error ? resp->transport_error : "");
    }
}

void db_cb_answers_send(struct db_services *svc, struct db_cb_answers *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++)
        if (db_http_client_send(svc->platform_http, &a->v[i], ANSWER_TIMEOUT_MS, answered_cb,
                                NULL, NULL, NULL) != DB_OK) {
            struct db_log_ctx ctx = {"ingest", NULL, NULL, NULL};
            db_log(DB_LOG_WARN, &ctx, "could not send a button tap acknowledgement");
        }
    db_cb_answers_free(a);
}

void db_cb_answers_free(struct db_cb_answers *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) db_http_req_clear(&a->v[i]);
    free(a->v);
    free(a);
}
