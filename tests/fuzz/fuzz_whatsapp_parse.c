/* fuzz_whatsapp_parse.c - any body through the WhatsApp parser: no crash, no leak, and every
 * event it produces satisfies the stream contract. */
#include <stdint.h>
#include <stdlib.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct db_conf_kv kv[] = {{"access_token", "t", "fuzz", 1},
                                    {"app_secret", "s", "fuzz", 2},
                                    {"verify_token", "v", "fuzz", 3}};
    const struct db_conf_section sec = {"whatsapp", "106540352242922", kv, 3};
    void *acct = NULL;
    struct db_err e = {0};
    if (db_whatsapp.account_new(&sec, &acct, &e) != DB_OK) abort();
    struct db_headers h = {0};
    struct db_inbound in = {.method = "POST", .path = "/webhooks/whatsapp/fuzz", .headers = &h,
                            .body = data, .body_len = size};
    struct db_event_list out = {0};
    int rc = db_whatsapp.parse(acct, &in, &out, &e);
    if (rc != DB_OK && out.n != 0) abort(); /* a failed parse appends nothing */
    for (size_t i = 0; i < out.n; i++) {
        struct db_err ve = {0};
        if (db_event_validate(out.v[i].json, &ve) != DB_OK || !out.v[i].dedupe_key) abort();
    }
    db_event_list_clear(&out);
    db_whatsapp.account_free(acct);
    return 0;
}
