/* fuzz_whatsapp_read_send.c - Graph API answers (send results and media lookups) on
 * arbitrary bodies.  The first two bytes pick the HTTP status.  read_send must always
 * classify, and never call an unreadable answer SENT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    if (size < 2) return 0;
    if (db_whatsapp.account_new(&sec, &acct, &e) != DB_OK) abort();
    long status = (long)((data[0] << 8 | data[1]) % 600);
    struct db_http_resp resp = {.status = status, .body = (const char *)data + 2,
                                .body_len = size - 2,
                                .transport_error = status == 0 ? "fuzz" : NULL};
    struct db_send_result res;
    int rc = db_whatsapp.read_send(acct, &resp, &res, &e);
    if (rc != DB_OK && rc != DB_EINVAL) abort();
    if (res.outcome != DB_SEND_SENT && res.outcome != DB_SEND_RETRY &&
        res.outcome != DB_SEND_FAILED)
        abort();
    if (rc != DB_OK && res.outcome != DB_SEND_RETRY) abort();
    if (res.outcome == DB_SEND_SENT && (status < 200 || status > 299 || !res.external_id[0]))
        abort();
    if (!memchr(res.err_msg, '\0', sizeof res.err_msg) ||
        !memchr(res.external_id, '\0', sizeof res.external_id) ||
        !memchr(res.err_code, '\0', sizeof res.err_code))
        abort();

    struct db_http_req dl;
    rc = db_whatsapp.read_media_lookup(acct, &resp, &dl, &e);
    if ((rc == DB_OK) != (dl.url != NULL)) abort();
    db_http_req_clear(&dl);
    db_whatsapp.account_free(acct);
    return 0;
}
