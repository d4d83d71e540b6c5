/* fuzz_whatsapp_verify.c - the signature check and the GET handshake on arbitrary input.
 * The input is "<signature header value>\n<body>"; the same bytes also serve as the query
 * string of a handshake.  Nothing may crash; verify answers only OK or EAUTH, and a
 * handshake returns a body exactly when it succeeds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct db_conf_kv kv[] = {{"access_token", "t", "fuzz", 1},
                                    {"app_secret", "fuzz-secret", "fuzz", 2},
                                    {"app_secret_previous", "old-secret", "fuzz", 3},
                                    {"verify_token", "hub-token", "fuzz", 4}};
    const struct db_conf_section sec = {"whatsapp", "106540352242922", kv, 4};
    void *acct = NULL;
    struct db_err e = {0};
    if (db_whatsapp.account_new(&sec, &acct, &e) != DB_OK) abort();

    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = memchr(text, '\n', size);
    const unsigned char *body = nl ? (const unsigned char *)nl + 1 : data + size;
    size_t body_len = nl ? size - (size_t)(nl + 1 - text) : 0;
    if (nl) *nl = '\0';

    struct db_headers h = {0};
    if (db_headers_add(&h, "X-Hub-Signature-256", text) != DB_OK) abort();
    struct db_inbound in = {.method = "POST", .headers = &h, .body = body, .body_len = body_len};
    int rc = db_whatsapp.verify(acct, &in, &e);
    if (rc != DB_OK && rc != DB_EAUTH) abort();
    db_headers_clear(&h);

    struct db_headers none = {0};
    struct db_inbound get = {.method = "GET", .query = text, .headers = &none};
    char *challenge = NULL;
    rc = db_whatsapp.handshake(acct, &get, &challenge, &e);
    if ((rc == DB_OK) != (challenge != NULL)) abort();
    free(challenge);

    free(text);
    db_whatsapp.account_free(acct);
    return 0;
}
