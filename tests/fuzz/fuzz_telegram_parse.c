/* fuzz_telegram_parse.c - Telegram update bodies through parse.  Beyond "no crash": every
 * event must satisfy the stream contract and carry a "u:" dedupe key, and a failed parse
 * must append nothing and say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *account(void)
{
    /* Test-only process state: one account for the whole run, reachable until exit. */
    static void *acct;
    if (!acct) {
        static const struct db_conf_kv kv[] = {
            {"token", "7000000001:fuzz-token", "fuzz", 1},
            {"webhook_secret", "fuzz_secret", "fuzz", 2},
        };
        struct db_conf_section sec = {"telegram", "7000000001", kv, 2};
        struct db_err e = {0};
        if (db_telegram.account_new(&sec, &acct, &e) != DB_OK) abort();
    }
    return acct;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct db_headers h = {0};
    struct db_inbound in = {.method = "POST", .path = "/webhooks/telegram/7000000001",
                            .headers = &h, .body = data, .body_len = size};
    struct db_event_list out = {0};
    struct db_err e = {0};
    int rc = db_telegram.parse(account(), &in, &out, &e);
    if (rc != DB_OK && (out.n != 0 || out.reply_body)) abort();
    if (rc != DB_OK && e.msg[0] == '\0') abort();
    if (out.n > 1) abort(); /* one update, at most one event */
    for (size_t i = 0; i < out.n; i++) {
        struct db_err ve = {0};
        if (db_event_validate(out.v[i].json, &ve) != DB_OK) abort();
        if (strncmp(out.v[i].dedupe_key, "u:", 2) != 0) abort();
    }
    db_event_list_clear(&out);
    return 0;
}
