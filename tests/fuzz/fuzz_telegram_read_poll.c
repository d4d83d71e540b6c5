/* fuzz_telegram_read_poll.c - getUpdates answers through read_poll.  The first input byte
 * picks the HTTP status, the rest is the body.  On failure nothing is appended and the
 * cursor stays NULL; on success every event meets the contract and a cursor, when given, is
 * a positive decimal update id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 409, 401, 429, 500, 0, 200, 200};

static void *account(void)
{
    /* Test-only process state: one polling account, reachable until exit. */
    static void *acct;
    if (!acct) {
        static const struct db_conf_kv kv[] = {{"token", "7000000001:fuzz-token", "fuzz", 1}};
        struct db_conf_section sec = {"telegram", "7000000001", kv, 1};
        struct db_err e = {0};
        if (db_telegram.account_new(&sec, &acct, &e) != DB_OK) abort();
    }
    return acct;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    struct db_http_resp resp = {.status = status, .body = (const char *)data + 1,
                                .body_len = size - 1,
                                .transport_error = status ? NULL : "fuzz"};
    struct db_event_list out = {0};
    char *cursor = NULL;
    struct db_err e = {0};
    int rc = db_telegram.read_poll(account(), &resp, &out, &cursor, &e);
    if (rc != DB_OK && (out.n != 0 || cursor)) abort();
    if (rc != DB_OK && e.msg[0] == '\0') abort();
    for (size_t i = 0; i < out.n; i++) {
        struct db_err ve = {0};
        if (db_event_validate(out.v[i].json, &ve) != DB_OK) abort();
        if (strncmp(out.v[i].dedupe_key, "u:", 2) != 0) abort();
    }
    if (out.n && !cursor) abort(); /* events without advancing would be redelivered */
    if (cursor) {
        if (!cursor[0] || cursor[0] == '0') abort();
        for (const char *p = cursor; *p; p++)
            if (*p < '0' || *p > '9') abort();
    }
    free(cursor);
    db_event_list_clear(&out);
    return 0;
}
