/* fuzz_telegram_read_send.c - Bot API answers to a send through read_send.  The first input
 * byte picks the HTTP status, the rest is the body.  The result must always be one of the
 * three outcomes, SENT only with an id, and an unreadable answer must say RETRY. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 400, 403, 429, 500, 0, 409, 401, 502, 302};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    struct db_http_resp resp = {.status = status, .body = (const char *)data + 1,
                                .body_len = size - 1,
                                .transport_error = status ? NULL : "fuzz"};
    struct db_send_result res;
    struct db_err e = {0};
    int rc = db_telegram.read_send(NULL, &resp, &res, &e);
    if (rc != DB_OK && rc != DB_EINVAL) abort();
    if (rc == DB_EINVAL && res.outcome != DB_SEND_RETRY) abort();
    if (res.outcome == DB_SEND_SENT && (res.external_id[0] == '\0' || status != 200)) abort();
    if (res.outcome != DB_SEND_SENT && res.outcome != DB_SEND_RETRY &&
        res.outcome != DB_SEND_FAILED)
        abort();
    if (res.retry_after_ms < 0) abort();
    if (memchr(res.err_msg, '\0', sizeof res.err_msg) == NULL) abort();
    return 0;
}
