/* poller.c - long polling for accounts that receive no webhooks (Telegram without a webhook
 * secret), so a newcomer can run the gateway without a public URL.
 *
 * The cursor (Telegram's offset) is stored in Redis by the same script that stores the
 * events it confirms, so it never advances past an update that is not written: after a
 * crash or a Redis failure the platform hands the same updates again and the dedupe turns
 * them into no-ops. */
#include "ingest/poller.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "deskbridge/connector.h"
#include "conf/config.h"
#include "services/services.h"
#include "net/httpd.h"
#include "net/http_client.h"
#include "log/log.h"
#include "ingest/callback_answer.h"
#include "store/store.h"
#include "util/id.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define QUICK_EMPTY_MS 500

struct pacct {
    struct db_poller *p;
    struct pacct *next;
    struct db_cfg_ref *cfg;        /* keeps acct alive */
    const struct db_account *acct;
    char *cursor;                  /* NULL before the first confirmed batch */
    int cursor_loaded;
    int backoff_ms;
    struct event *timer;
    struct db_http_call *call;
    int busy;                      /* a Redis operation is in flight */
    int64_t started_ms;            /* when the poll in flight was sent */
    int dead;                      /* freed while busy: the callback frees */
};

struct db_poller {
    struct db_services *svc;
    int timeout_s;
    struct pacct *accts;
};

static void poll_now(struct pacct *a);

static struct db_log_ctx ctx_of(const struct pacct *a)
{
    return (struct db_log_ctx){"poller", a->acct->platform, a->acct->id, NULL};
}

static void pacct_destroy(struct pacct *a)
{
    if (a->timer) event_free(a->timer);
    db_cfg_unref(a->cfg);
    free(a->cursor);
    free(a);
}

/* Stops a's loop.  A Redis operation in flight cannot be cancelled: its callback sees dead
 * and destroys a then. */
static void pacct_free(struct pacct *a)
{
    a->dead = 1;
    if (a->call) {
        struct db_http_call *call = a->call;
        a->call = NULL;
        db_http_call_cancel(call); /* polled_cb runs now and sees dead */
    }
    if (!a->busy) pacct_destroy(a);
}

static void later(struct pacct *a, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(a->timer, &tv);
}

static void fail_later(struct pacct *a)
{
    a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (a->backoff_ms > BACKOFF_MAX_MS) a->backoff_ms = BACKOFF_MAX_MS;
    later(a, a->backoff_ms);
}

struct batch {
    struct pacct *a;
    struct db_cb_answers *answers; /* button taps to acknowledge once stored */
    char *next_cursor;
    size_t n;
};

static void stored_cb(int status, long long written, void *arg)
{
    struct batch *b = arg;
    struct pacct *a = b->a;
    a->busy = 0;
    if (status == DB_OK && !a->dead) db_cb_answers_send(a->p->svc, b->answers);
    else db_cb_answers_free(b->answers);
    if (a->dead) {
        free(b->next_cursor);
        free(b);
        pacct_destroy(a);
        return;
    }
    struct db_log_ctx ctx = ctx_of(a);
    if (status == DB_OK) {
        db_log(DB_LOG_INFO, &ctx, "polled events=%zu written=%lld", b->n, written);
        free(a->cursor);
        a->cursor = b->next_cursor;
        a->backoff_ms = 0;
        free(b);
        poll_now(a);
        return;
    }
    /* Not confirmed: the next poll repeats the same cursor and gets the same updates. */
    db_log(DB_LOG_WARN, &ctx, "could not store polled events (%s); will poll again",
           db_strerror(status));
    free(b->next_cursor);
    free(b);
    fail_later(a);
}

static void polled_cb(const struct db_http_resp *resp, void *arg)
{
    struct pacct *a = arg;
    a->call = NULL;
    if (a->dead) return;
    struct db_log_ctx ctx = ctx_of(a);
    struct db_event_list events = {0};
    char *next = NULL;
    struct db_err e = {0};
    int rc = db_conn_read_poll(a->acct->conn, a->acct->state, resp, &events, &next, &e);
    if (rc != DB_OK) {
        db_event_list_clear(&events);
        free(next);
        if (rc == DB_EREJECTED)
            db_log(DB_LOG_ERROR, &ctx, "polling refused: %s", e.msg);
        else if (!(resp->transport_error && strcmp(resp->transport_error, "cancelled") == 0))
            db_log(DB_LOG_WARN, &ctx, "poll failed: %s", e.msg[0] ? e.msg : db_strerror(rc));
        /* A refusal (another poller, a webhook set) will not clear up in a second. */
        if (rc == DB_EREJECTED && a->backoff_ms < 5000) a->backoff_ms = 5000;
        fail_later(a);
        return;
    }
    if (!next) { /* nothing new */
        db_event_list_clear(&events);
        a->backoff_ms = 0;
        /* A long poll that comes back empty at once (a server that does not hold the
         * request) must not turn into a busy loop. */
        if (db_now_ms() - a->started_ms < QUICK_EMPTY_MS) later(a, QUICK_EMPTY_MS);
        else poll_now(a);
        return;
    }
    struct batch *b = calloc(1, sizeof *b);
    if (!b) {
        db_event_list_clear(&events);
        free(next);
        fail_later(a);
        return;
    }
    b->a = a;
    b->next_cursor = next;
    b->n = events.n;
    b->answers = db_cb_answers_collect(a->acct, &events);
    a->busy = 1;
    db_store_ingest(a->p->svc->store, a->acct->platform, a->acct->id, &events, next, stored_cb, b);
    db_event_list_clear(&events);
}

static void cursor_cb(int status, const char *value, void *arg)
{
    struct pacct *a = arg;
    a->busy = 0;
    if (a->dead) {
        pacct_destroy(a);
        return;
    }
    if (status != DB_OK) {
        fail_later(a);
        return;
    }
    a->cursor = value ? strdup(value) : NULL;
    a->cursor_loaded = 1;
    poll_now(a);
}

static void poll_now(struct pacct *a)
{
    if (a->p->svc->stopping) return;
    if (!a->cursor_loaded) {
        a->busy = 1;
        db_store_get_cursor(a->p->svc->store, a->acct->platform, a->acct->id, cursor_cb, a);
        return;
    }
    struct db_http_req req = {0};
    struct db_err e = {0};
    int rc = db_conn_build_poll(a->acct->conn, a->acct->state, a->cursor, a->p->timeout_s, &req, &e);
    a->started_ms = db_now_ms();
    if (rc == DB_OK)
        rc = db_http_client_send(a->p->svc->platform_http, &req, (a->p->timeout_s + 15) * 1000L,
                                 polled_cb, NULL, a, &a->call);
    db_http_req_clear(&req);
    if (rc != DB_OK) {
        struct db_log_ctx ctx = ctx_of(a);
        db_log(DB_LOG_ERROR, &ctx, "cannot poll: %s", e.msg[0] ? e.msg : db_strerror(rc));
        fail_later(a);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    poll_now(arg);
}

int db_poller_is_polling_account(const struct db_account *acct)
{
    return acct->polls; /* decided when the configuration was loaded */
}

int db_poller_start(struct db_services *svc, int timeout_s, struct db_poller **out,
                    struct db_err *e)
{
    struct db_poller *p = calloc(1, sizeof *p);
    if (!p) return db_err_set(e, DB_ENOMEM, "out of memory");
    p->svc = svc;
    p->timeout_s = timeout_s;
    struct db_cfg_ref *ref = db_cfg_ref(svc);
    for (size_t i = 0; i < ref->cfg->n_accounts; i++) {
        const struct db_account *acct = &ref->cfg->accounts[i];
        if (!db_poller_is_polling_account(acct)) continue;
        struct pacct *a = calloc(1, sizeof *a);
        if (!a) {
            db_cfg_unref(ref);
            db_poller_free(p);
            return db_err_set(e, DB_ENOMEM, "out of memory");
        }
        a->p = p;
        a->acct = acct;
        a->cfg = db_cfg_ref(svc);
        a->timer = evtimer_new(svc->base, timer_cb, a);
        a->next = p->accts;
        p->accts = a;
        if (a->timer) later(a, 0);
        struct db_log_ctx ctx = ctx_of(a);
        db_log(DB_LOG_INFO, &ctx, "long polling (no webhook secret configured)");
    }
    db_cfg_unref(ref);
    *out = p;
    return DB_OK;
}

size_t db_poller_count(const struct db_poller *p)
{
    size_t n = 0;
    for (const struct pacct *a = p ? p->accts : NULL; a; a = a->next) n++;
    return n;
}

void db_poller_free(struct db_poller *p)
{
    if (!p) return;
    while (p->accts) {
        struct pacct *a = p->accts;
        p->accts = a->next;
        pacct_free(a);
    }
    free(p);
}
