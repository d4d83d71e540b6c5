#include "send/window.h"

#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/id.h"
#include "util/json.h"
#include "util/parse.h"

int db_window_applies(const struct db_account *acct, const struct db_outbound *msg)
{
    const json_t *t = json_object_get(msg->extra, "template");
    return strcmp(acct->platform, "whatsapp") == 0 && (!t || json_is_null(t));
}

int64_t db_window_now_s(void)
{
    long off = 0;
    if (db_parse_long(getenv("DESKBRIDGE_CLOCK_OFFSET_S"), -1000000000L, 1000000000L, &off))
        off = 0;
    return db_now_ms() / 1000 + off;
}

int db_window_closed(int64_t last_in_s, int64_t now_s)
{
    return now_s - last_in_s > DB_WINDOW_S;
}

struct check {
    db_window_fn cb;
    void *arg;
};

static void last_cb(int status, const char *msg_id, int64_t ts, void *arg)
{
    struct check c = *(struct check *)arg;
    (void)msg_id;
    free(arg);
    if (status == DB_ENOTFOUND) c.cb(DB_OK, c.arg);
    else if (status != DB_OK) c.cb(DB_EAGAIN, c.arg);
    else c.cb(db_window_closed(ts, db_window_now_s()) ? DB_EREJECTED : DB_OK, c.arg);
}

void db_window_check(struct db_store *store, const char *conversation, db_window_fn cb,
                     void *arg)
{
    struct check *c = malloc(sizeof *c);
    if (!c) {
        cb(DB_EAGAIN, arg);
        return;
    }
    c->cb = cb;
    c->arg = arg;
    db_store_customer_last(store, conversation, last_cb, c);
}
