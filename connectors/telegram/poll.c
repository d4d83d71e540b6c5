/* poll.c - getUpdates long polling: the request for the next batch and the events and
 * next offset out of its answer. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "telegram_internal.h"
#include "util/parse.h"

int db_tg_build_poll(const void *acct, const char *cursor, int timeout_s,
                     struct db_http_req *req, struct db_err *e)
{
    int rc;
    json_t *body = json_object();
    if (!body) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (cursor) {
        long off;
        if (db_parse_long(cursor, LONG_MIN, LONG_MAX, &off) != 0) {
            rc = db_err_set(e, DB_EINVAL, "poll cursor is not an update id");
            goto fail;
        }
        if ((rc = set_new(body, "offset", json_integer(off), e)) != DB_OK) goto fail;
    }
    if (timeout_s < 0) timeout_s = 0;
    if (timeout_s > TG_POLL_TIMEOUT_MAX) timeout_s = TG_POLL_TIMEOUT_MAX;
    if ((rc = set_new(body, "timeout", json_integer(timeout_s), e)) != DB_OK) goto fail;
    if ((rc = set_new(body, "allowed_updates", db_tg_allowed_updates(), e)) != DB_OK) goto fail;
    rc = db_tg_post_method(acct, "getUpdates", body, req, e);
fail:
    json_decref(body);
    return rc;
}

/* Drops the events appended after the first n. */
static void list_truncate(struct db_event_list *l, size_t n)
{
    while (l->n > n) {
        l->n--;
        json_decref(l->v[l->n].json);
        free(l->v[l->n].dedupe_key);
    }
}

int db_tg_read_poll(const void *acct, const struct db_http_resp *resp,
                    struct db_event_list *out, char **next_cursor, struct db_err *e)
{
    *next_cursor = NULL;
    if (resp->status == 0)
        return db_err_set(e, DB_EAGAIN, "getUpdates: transport error: %s",
                          resp->transport_error ? resp->transport_error : "no answer");
    json_t *j = db_tg_answer_json(resp);
    long st = db_tg_answer_status(j, resp->status);
    const char *desc = db_tg_answer_description(j, resp->status);
    const json_t *result = json_object_get(j, "result");
    size_t n0 = out->n;
    int64_t max_id = -1;
    int rc = DB_OK;

    if (st == 429 || st >= 500) {
        rc = db_err_set(e, DB_EAGAIN, "getUpdates: HTTP %ld: %.120s", st, desc);
        goto done;
    }
    if (st >= 300) {
        /* 409 (webhook active, or another poller), 401 (token revoked), 404 (no such bot):
         * polling again will not fix any of them. */
        rc = db_err_set(e, DB_EREJECTED, "getUpdates: HTTP %ld: %.120s", st, desc);
        goto done;
    }
    if (!json_is_true(json_object_get(j, "ok")) || !json_is_array(result)) {
        rc = db_err_set(e, DB_EINVAL, "getUpdates: unreadable answer");
        goto done;
    }
    size_t i;
    const json_t *upd;
    json_array_foreach(result, i, upd) {
        int64_t uid = -1;
        struct db_err ue = {0};
        int urc = json_is_object(upd) ? db_tg_push_update(acct, upd, out, &uid, &ue) : DB_EINVAL;
        /* A broken update is skipped but still confirmed: keeping the offset would make
         * Telegram hand it back forever and hold up everything behind it. */
        if (urc != DB_OK && urc != DB_EINVAL) {
            rc = db_err_set(e, urc, "getUpdates: %s", ue.msg);
            list_truncate(out, n0);
            goto done;
        }
        if (uid > max_id) max_id = uid;
    }
    if (max_id >= 0) {
        if (asprintf(next_cursor, "%" PRId64, max_id + 1) < 0) {
            *next_cursor = NULL;
            list_truncate(out, n0);
            rc = db_err_set(e, DB_ENOMEM, "out of memory");
        }
    }
done:
    json_decref(j);
    return rc;
}
