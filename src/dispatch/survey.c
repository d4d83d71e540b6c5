/* survey.c - closing a conversation with its satisfaction survey (survey.h, docs/survey.md).
 *
 * Order of the steps: the WhatsApp window is read first, so the close itself can record
 * whether the survey is asked or skipped in the same script run that closes; the question is
 * queued only when that run answered that it closed the conversation, so closing twice asks
 * once.  The question's client id names the closing, so a repeated enqueue of the same
 * closing (a retry after a lost answer) queues nothing new. */
#include "dispatch/survey.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf/config.h"
#include "dispatch/script.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "redis/keys.h"
#include "send/outbound.h"
#include "send/window.h"
#include "services/services.h"
#include "store/store.h"
#include "util/id.h"
#include "util/json.h"

struct ask {
    struct db_services *svc;
    struct db_cfg_ref *cfg; /* kept until the question is queued */
    db_redis_cb cb;
    void *arg;
    char conv[256], platform[32], account[96];
    char lang[17], closed_at[24];
    char window_ms[24];
    char msg_id[DB_ID_LEN + 1];
};

static void ask_free(struct ask *a)
{
    db_cfg_unref(a->cfg);
    free(a);
}

static void ask_log(const struct ask *a, int level, const char *what)
{
    /* Not the conversation id: it holds the customer's phone number on WhatsApp. */
    struct db_log_ctx ctx = {"survey", a->platform, a->account, a->msg_id[0] ? a->msg_id : NULL};
    db_log(level, &ctx, "%s", what);
}

static void marked_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)status, (void)reply, (void)errstr;
    ask_free(arg);
}

static void enqueued_cb(int status, const char *id, const char *msg_status, int created,
                        void *arg)
{
    struct ask *a = arg;
    (void)msg_status;
    if (status != DB_OK || !id) {
        ask_log(a, DB_LOG_WARN, "could not queue the survey question");
        ask_free(a);
        return;
    }
    if (created) db_metrics_survey(a->svc->metrics, "sent");
    /* Shown by GET /v1/messages/{id} like the other automatic answers. */
    char key[256];
    db_key_tagged(key, sizeof key, a->cfg->cfg->prefix, DB_KEY_MSG, id);
    db_redis_cmd(a->svc->redis, marked_cb, a, "HSET %s automatic true rule survey resolve false",
                 key);
}

/* The command of the question (new reference), NULL without memory. */
static json_t *question_of(const struct ask *a, const struct db_survey_conf *sc,
                           const struct db_account *acct)
{
    const char *q = db_survey_text(sc, "question", a->lang);
    const char *hint = db_survey_text(sc, "reply_hint", a->lang);
    const char *label = db_survey_text(sc, "buttons_label", a->lang);
    if (!q) q = sc->question;
    if (!hint) hint = sc->reply_hint;
    if (!label) label = sc->buttons_label;
    json_t *cmd = json_pack("{s:s, s:s, s:b, s:s, s:b}", "id", a->msg_id, "conversation", a->conv,
                            "automatic", 1, "rule", "survey", "survey", 1);
    if (!cmd) return NULL;
    int buttons = sc->buttons && acct && acct->conn && acct->conn->max_buttons >= 5;
    if (buttons) {
        json_t *bs = json_array();
        for (int i = 1; bs && i <= 5; i++) {
            char id[16], title[4];
            snprintf(id, sizeof id, "csat-%d", i);
            snprintf(title, sizeof title, "%d", i);
            json_array_append_new(bs, json_pack("{s:s, s:s}", "id", id, "title", title));
        }
        if (!bs || json_array_size(bs) != 5 || json_object_set_new(cmd, "buttons", bs) ||
            json_object_set_new(cmd, "text", json_string(q))) {
            json_decref(cmd);
            return NULL;
        }
        /* Only WhatsApp reads it (the list's button); elsewhere it changes nothing. */
        if (strcmp(a->platform, "whatsapp") == 0)
            json_object_set_new(cmd, "buttons_label", json_string(label));
        return cmd;
    }
    size_t n = strlen(q) + strlen(hint) + 2;
    char *text = malloc(n);
    if (!text) {
        json_decref(cmd);
        return NULL;
    }
    snprintf(text, n, "%s\n%s", q, hint);
    int rc = json_object_set_new(cmd, "text", json_string(text));
    free(text);
    if (rc) {
        json_decref(cmd);
        return NULL;
    }
    return cmd;
}

/* Queues the question of the closing the script just recorded. */
static void ask_send(struct ask *a)
{
    const struct db_config *cfg = a->cfg->cfg;
    const struct db_survey_conf *sc = db_survey_conf_of(cfg, a->platform, a->account);
    if (!sc) { /* the configuration was reloaded without it meanwhile */
        ask_free(a);
        return;
    }
    db_id_new(a->msg_id);
    json_t *cmd = question_of(a, sc, db_config_account(cfg, a->platform, a->account));
    char *txt = cmd ? db_json_dump(cmd) : NULL;
    json_decref(cmd);
    if (!txt) {
        ask_log(a, DB_LOG_WARN, "could not build the survey question: out of memory");
        ask_free(a);
        return;
    }
    char client[400];
    snprintf(client, sizeof client, "survey:%s:%s", a->conv, a->closed_at);
    db_store_enqueue(a->svc->store, a->msg_id, client, a->conv, a->platform, a->account, txt,
                     enqueued_cb, a);
    free(txt);
}

/* The customer's language as the texts are keyed: lower case, without a region. */
static void lang_of(const char *l, char *out, size_t n)
{
    size_t k = 0;
    for (; l && l[k] && l[k] != '-' && l[k] != '_' && k + 1 < n; k++)
        out[k] = (char)tolower((unsigned char)l[k]);
    out[k] = '\0';
}

static void closed_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct ask *a = arg;
    const redisReply *r = reply;
    int ask = 0, skipped = 0;
    if (status == DB_OK && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        r = reply->element[0];
        skipped = strcmp(reply->element[1]->str, "skip") == 0;
        ask = !skipped && reply->elements == 5 && strcmp(reply->element[1]->str, "send") == 0;
        if (ask) {
            lang_of(reply->element[2]->str, a->lang, sizeof a->lang);
            snprintf(a->closed_at, sizeof a->closed_at, "%s",
                     reply->element[4]->str ? reply->element[4]->str : "0");
        }
    }
    a->cb(status, r, errstr, a->arg);
    if (skipped) {
        db_metrics_survey(a->svc->metrics, "skipped_window");
        ask_log(a, DB_LOG_INFO, "survey skipped: outside WhatsApp's 24-hour window");
    }
    if (ask) ask_send(a);
    else ask_free(a);
}

static void run_close(struct ask *a, const char *mode)
{
    const char *args[] = {a->conv, mode, a->window_ms};
    db_dispatch_run(a->svc, closed_cb, a, "close", 3, args, NULL);
}

static void window_cb(int status, void *arg)
{
    /* Unknown (Redis did not say): asked; the sender's own window check still holds. */
    run_close(arg, status == DB_EREJECTED ? "skip" : "send");
}

void db_survey_close(struct db_services *svc, const char *conv, db_redis_cb cb, void *arg)
{
    char platform[32], account[96];
    const char *chat;
    const struct db_config *cfg = svc->cfg->cfg;
    const struct db_survey_conf *sc = NULL;
    if (strlen(conv) < sizeof ((struct ask *)0)->conv &&
        db_conversation_split(conv, platform, sizeof platform, account, sizeof account, &chat) ==
            DB_OK)
        sc = db_survey_conf_of(cfg, platform, account);
    struct ask *a = sc ? calloc(1, sizeof *a) : NULL;
    if (a) a->cfg = db_cfg_ref(svc);
    if (a && !a->cfg) {
        free(a);
        a = NULL;
    }
    if (!a) { /* no survey (or no memory for one): the plain close */
        const char *args[] = {conv};
        db_dispatch_run(svc, cb, arg, "close", 1, args, NULL);
        return;
    }
    a->svc = svc, a->cb = cb, a->arg = arg;
    snprintf(a->conv, sizeof a->conv, "%s", conv);
    snprintf(a->platform, sizeof a->platform, "%s", platform);
    snprintf(a->account, sizeof a->account, "%s", account);
    snprintf(a->window_ms, sizeof a->window_ms, "%ld", (long)sc->comment_window_s * 1000L);
    if (strcmp(platform, "whatsapp") == 0) db_window_check(svc->store, conv, window_cb, a);
    else run_close(a, "send");
}

void db_survey_member(json_t *survey, const char *k, const char *v)
{
    static const char *const names[][2] = {
        {"state", "state"}, {"score", "score"}, {"comment", "comment"},
        {"answered_at", "answered_at"}, {"commented_at", "commented_at"}, {"agent", "agent"},
        {"at", "asked_at"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(k, names[i][0]) != 0) continue;
        json_t *val;
        if (strcmp(k, "state") == 0 || strcmp(k, "comment") == 0) val = json_string(v);
        else if (strcmp(k, "agent") == 0) val = *v ? json_string(v) : json_null();
        else val = json_integer(strtoll(v, NULL, 10));
        json_object_set_new(survey, names[i][1], val ? val : json_null());
    }
}
