/* fuzz_viber_verify.c - signature checking on arbitrary bytes.  Input: one length byte, that
 * many bytes of signature text, then the body.  Properties: no crash; an arbitrary signature
 * is accepted only when it is the real one; the real signature (computed here) always is,
 * in the header and in ?sig=. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"
#include "util/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "fuzz-token"

static void *account(void)
{
    static void *acct;
    if (!acct) {
        static const struct db_conf_kv kv[] = {{"auth_token", TOKEN, "fuzz", 1}};
        struct db_conf_section sec = {"viber", "fz", kv, 1};
        struct db_err e = {0};
        if (db_viber.account_new(&sec, &acct, &e) != DB_OK) abort();
    }
    return acct;
}

static int verify(const char *header, const char *query, const uint8_t *body, size_t len)
{
    struct db_headers h = {0};
    if (header && db_headers_add(&h, "X-Viber-Content-Signature", header) != DB_OK) abort();
    struct db_inbound in = {.method = "POST", .path = "/webhooks/viber/fz", .query = query,
                            .headers = &h, .body = body, .body_len = len};
    struct db_err e = {0};
    int rc = db_viber.verify(account(), &in, &e);
    db_headers_clear(&h);
    if (rc != DB_OK && rc != DB_EAUTH) abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = data[0];
    if (n > size - 1) n = size - 1;
    char sig[256];
    memcpy(sig, data + 1, n);
    sig[n] = '\0';
    const uint8_t *body = data + 1 + n;
    size_t len = size - 1 - n;

    unsigned char mac[32];
    char good[65];
    db_hmac_sha256(TOKEN, strlen(TOKEN), body, len, mac);
    db_hex_encode(mac, sizeof mac, good);

    int rc = verify(sig, NULL, body, len);
    int same = strlen(sig) == 64 && strncasecmp(sig, good, 64) == 0;
    if ((rc == DB_OK) != same) abort();
    if (verify(good, NULL, body, len) != DB_OK) abort();

    char q[80];
    memcpy(q, "sig=", 4);
    memcpy(q + 4, good, 65);
    if (verify(NULL, q, body, len) != DB_OK) abort();
    return 0;
}
