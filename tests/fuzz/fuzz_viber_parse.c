/* fuzz_viber_parse.c - Viber webhook bodies through parse.  Beyond "no crash": every event
 * must satisfy the stream contract, and a failed parse must append nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *account(void)
{
    /* Test-only process state: one account for the whole run, with a welcome text so the
     * reply_body path is reached too. */
    static void *acct;
    if (!acct) {
        static const struct db_conf_kv kv[] = {
            {"auth_token", "fuzz-token", "fuzz", 1},
            {"welcome_text", "hello", "fuzz", 2},
        };
        struct db_conf_section sec = {"viber", "fz", kv, 2};
        struct db_err e = {0};
        if (db_viber.account_new(&sec, &acct, &e) != DB_OK) abort();
    }
    return acct;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct db_headers h = {0};
    struct db_inbound in = {.method = "POST", .path = "/webhooks/viber/fz", .headers = &h,
                            .body = data, .body_len = size};
    struct db_event_list out = {0};
    struct db_err e = {0};
    int rc = db_viber.parse(account(), &in, &out, &e);
    if (rc != DB_OK && (out.n != 0 || out.reply_body)) abort();
    if (rc != DB_OK && e.msg[0] == '\0') abort();
    for (size_t i = 0; i < out.n; i++) {
        struct db_err ve = {0};
        if (db_event_validate(out.v[i].json, &ve) != DB_OK) abort();
        if (!out.v[i].dedupe_key || !out.v[i].dedupe_key[0]) abort();
    }
    db_event_list_clear(&out);
    return 0;
}
