/* fuzz_telegram_verify.c - the secret-token check and the configuration of its secrets on
 * arbitrary bytes.  Input: "<webhook_secret>\n<webhook_secret_previous>\n<header value>"; an
 * empty secret is left out of the account, a missing third part sends no header.
 * Properties: no crash, no leak; account_new takes the secrets exactly when each is 1-256 of
 * A-Z a-z 0-9 _ - and a previous one comes with a current one; verify answers only OK or
 * EAUTH, OK exactly when the header equals one of the configured secrets; each configured
 * secret is always accepted, and no header never is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Telegram's rule for setWebhook's secret_token, written out again here so that the
 * connector's own check is tested, not reused. */
static int valid_secret(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 256) return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int verify(const void *acct, const char *header)
{
    struct db_headers h = {0};
    if (header && db_headers_add(&h, "X-Telegram-Bot-Api-Secret-Token", header) != DB_OK)
        abort();
    struct db_inbound in = {.method = "POST", .path = "/webhooks/telegram/123456",
                            .headers = &h, .body = (const uint8_t *)"{}", .body_len = 2};
    struct db_err e = {0};
    int rc = db_telegram.verify(acct, &in, &e);
    db_headers_clear(&h);
    if (rc != DB_OK && rc != DB_EAUTH) abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Header values and configuration values are C strings by the time they get here. */
    if (memchr(data, '\0', size)) return 0;
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    char *parts[3] = {text, NULL, NULL};
    for (int i = 1; i < 3 && parts[i - 1]; i++) {
        char *nl = strchr(parts[i - 1], '\n');
        if (nl) *nl = '\0', parts[i] = nl + 1;
    }
    const char *cur = parts[0], *prev = parts[1] ? parts[1] : "", *header = parts[2];

    struct db_conf_kv kv[3] = {{"token", "123456:AAfuzzTokenNotReal", "fuzz", 1}};
    size_t n = 1;
    if (*cur) kv[n++] = (struct db_conf_kv){"webhook_secret", cur, "fuzz", 2};
    if (*prev) kv[n++] = (struct db_conf_kv){"webhook_secret_previous", prev, "fuzz", 3};
    struct db_conf_section sec = {"telegram", "123456", kv, n};
    void *acct = NULL;
    struct db_err e = {0};
    int rc = db_telegram.account_new(&sec, &acct, &e);
    int want = (!*cur || valid_secret(cur)) && (!*prev || (*cur && valid_secret(prev)));
    if ((rc == DB_OK) != want) abort();
    if (rc != DB_OK) {
        if (rc != DB_ECONFIG || acct) abort();
        free(text);
        return 0;
    }

    if (header) {
        int match = *cur && (strcmp(header, cur) == 0 || (*prev && strcmp(header, prev) == 0));
        if ((verify(acct, header) == DB_OK) != match) abort();
    }
    if (verify(acct, NULL) != DB_EAUTH) abort();
    if (*cur && verify(acct, cur) != DB_OK) abort();
    if (*prev && verify(acct, prev) != DB_OK) abort();
    db_telegram.account_free(acct);
    free(text);
    return 0;
}
