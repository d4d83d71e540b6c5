/* callback_answer.h - acknowledging customers' button taps on platforms that wait for it.
 *
 * Telegram shows a spinner on a tapped inline button until the bot calls
 * answerCallbackQuery.  The connector builds that request for each callback event it parsed
 * (db_conn_build_callback_answer); this module collects them before the events are stored
 * and sends them once the store has taken the events, so a tap whose event was not written
 * (and that the platform will deliver again) is not acknowledged.  Both ingest paths, webhook
 * and long polling, use it.  The answers are sent and forgotten: a lost one costs the
 * customer a spinner that times out, never a message. */
#ifndef DB_CALLBACK_ANSWER_H
#define DB_CALLBACK_ANSWER_H

#include "deskbridge/connector.h"

struct db_services;
struct db_account;

/* The answers of one batch; owned by whoever took it from db_cb_answers_collect. */
struct db_cb_answers {
    struct db_http_req *v;
    size_t n;
};

/* The answer requests for the callback events of events (none when the account's connector
 * needs none).  A request that cannot be built is left out and logged.  Returns NULL when
 * there is nothing to answer (or on ENOMEM); otherwise the caller owns the result and ends it
 * with db_cb_answers_send or db_cb_answers_free. */
struct db_cb_answers *db_cb_answers_collect(const struct db_account *acct,
                                            const struct db_event_list *events);

/* Sends every request of a on svc->platform_http and frees a.  NULL-safe. */
void db_cb_answers_send(struct db_services *svc, struct db_cb_answers *a);

/* Frees a without sending.  NULL-safe. */
void db_cb_answers_free(struct db_cb_answers *a);

#endif
