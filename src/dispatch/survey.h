/* survey.h - the satisfaction survey after a conversation closes (docs/survey.md).
 *
 * Promises: an account a [survey NAME] section names (or every account, with [survey
 * default]) asks its customer, once per closing, a question in the customer's language with
 * buttons 1-5 (or the text with a "reply 1-5" hint where buttons cannot go), sent through
 * P:outbox as an automatic message (never an agent's first response).  A WhatsApp customer
 * outside the 24-hour window is not asked: the survey is recorded as skipped and counted.
 * The answer and a comment are recorded by the dispatcher's script when the customer's
 * events are applied (dispatch.lua, survey_take), never reopening the conversation. */
#ifndef DB_SURVEY_H
#define DB_SURVEY_H

#include <jansson.h>

#include "hours/hours.h" /* struct db_account_list */
#include "redis/redis.h"

struct db_services;
struct db_config;
struct db_conf_section;

/* A [survey NAME] section as loaded; owned by the configuration. */
struct db_survey_conf {
    const struct db_conf_section *sec; /* for the texts by language */
    const char *name;
    const char *accounts;              /* NULL: [survey default] applies to every account */
    struct db_account_list account_list;
    const char *question, *reply_hint, *buttons_label; /* default language */
    int buttons;                       /* 0: always the text with the hint */
    int comment_window_s;
};
struct db_conf_table;
extern const struct db_conf_table db_survey_conf_table;

/* The survey of platform:account: the section whose accounts name it, else [survey default],
 * else NULL (no survey).  Borrowed from cfg. */
const struct db_survey_conf *db_survey_conf_of(const struct db_config *cfg, const char *platform,
                                               const char *account);

/* The value of key_<lang> in sc's section, else of key; NULL when neither is set. */
const char *db_survey_text(const struct db_survey_conf *sc, const char *key, const char *lang);

/* Closes conversation conv with the dispatcher's script (op "close") and, when its account
 * has a survey and this call closed it, queues the question.  cb gets the close's own answer
 * (integer 0 or an error word) exactly as a plain db_dispatch_run of "close" would give it;
 * the question is queued after cb returned, so cb's arg may be gone by then. */
void db_survey_close(struct db_services *svc, const char *conv, db_redis_cb cb, void *arg);

/* Sets the member of survey (a JSON object) that the conversation's hash field "survey_<k>"
 * with value v shows as (docs/survey.md, "Where it shows"): times and the score as numbers,
 * state and comment as text, agent null when empty.  Fields the API does not show are left
 * out.  For every route that shows a conversation. */
void db_survey_member(json_t *survey, const char *k, const char *v);

#endif
