/* fuzz_viber_read_send.c - Viber API answers through read_send and read_webhook_setup.
 * Input: two bytes of HTTP status (big-endian, reduced to 0..599), then the body.
 * Properties: no crash; the outcome is one of the three; a SENT id is digits only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    long status = ((long)data[0] << 8 | data[1]) % 600;
    struct db_http_resp r = {.status = status,
                             .body = (const char *)data + 2,
                             .body_len = size - 2,
                             .transport_error = status == 0 ? "fuzz" : NULL};
    struct db_send_result res;
    struct db_err e = {0};
    int rc = db_viber.read_send(NULL, &r, &res, &e);
    if (rc != DB_OK && rc != DB_EINVAL) abort();
    if (rc == DB_EINVAL && res.outcome != DB_SEND_RETRY) abort();
    if (res.outcome != DB_SEND_SENT && res.outcome != DB_SEND_RETRY &&
        res.outcome != DB_SEND_FAILED)
        abort();
    if (!memchr(res.external_id, '\0', sizeof res.external_id) ||
        !memchr(res.err_code, '\0', sizeof res.err_code) ||
        !memchr(res.err_msg, '\0', sizeof res.err_msg))
        abort();
    if (res.outcome == DB_SEND_SENT)
        for (const char *p = res.external_id; *p; p++)
            if ((*p < '0' || *p > '9') && !(p == res.external_id && *p == '-')) abort();

    rc = db_viber.read_webhook_setup(NULL, &r, &e);
    if (rc != DB_OK && rc != DB_EREJECTED) abort();
    return 0;
}
