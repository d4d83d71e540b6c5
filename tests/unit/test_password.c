/* test_password.c - src/console/password.c: the stored form of a sign-in secret (PBKDF2-HMAC-
 * SHA256, random salt, the count kept with the hash), verification (right, wrong, malformed,
 * an older count), and the worker thread answering on the event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "console/password.h"

static void stored_form_and_verification(void **state)
{
    (void)state;
    char a[DB_PASSWORD_HASH_MAX], b[DB_PASSWORD_HASH_MAX];
    assert_int_equal(db_password_hash("correct horse battery", 1000, a), 0);
    assert_int_equal(db_password_hash("correct horse battery", 1000, b), 0);
    assert_true(strncmp(a, "pbkdf2-sha256$1000$", 19) == 0);
    assert_int_equal(strlen(a), 19 + 32 + 1 + 64);
    assert_string_not_equal(a, b); /* a fresh salt each time */
    assert_null(strstr(a, "horse"));
    assert_true(db_password_verify("correct horse battery", a));
    assert_true(db_password_verify("correct horse battery", b));
    assert_false(db_password_verify("correct horse batterY", a));
    assert_false(db_password_verify("", a));
    assert_false(db_password_verify("correct horse battery", NULL));
    assert_false(db_password_verify("correct horse battery", "plain"));
    assert_false(db_password_verify("correct horse battery", "pbkdf2-sha256$0$00$00"));
    /* The key is PBKDF2-HMAC-SHA256 of the secret under the stored salt and count. */
    unsigned char salt[16], key[32];
    char hex[65];
    for (int i = 0; i < 16; i++) sscanf(a + 19 + 2 * i, "%2hhx", &salt[i]);
    assert_int_equal(PKCS5_PBKDF2_HMAC("correct horse battery", 21, salt, 16, 1000, EVP_sha256(),
                                       32, key), 1);
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", key[i]);
    assert_string_equal(a + 19 + 33, hex);
}

struct done {
    int calls, ok;
    char hash[DB_PASSWORD_HASH_MAX];
};

static void done_cb(int ok, const char *hash, void *arg)
{
    struct done *d = arg;
    d->calls++;
    d->ok = ok;
    snprintf(d->hash, sizeof d->hash, "%s", hash);
}

static void jobs_answer_on_the_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct done made = {0}, right = {0}, wrong = {0};
    assert_int_equal(db_password_job(base, "a secret of the agent", NULL, 2000, done_cb, &made), 0);
    while (made.calls == 0) event_base_loop(base, EVLOOP_ONCE);
    assert_true(made.ok);
    assert_true(strncmp(made.hash, "pbkdf2-sha256$2000$", 19) == 0);
    assert_int_equal(db_password_job(base, "a secret of the agent", made.hash, 0, done_cb, &right), 0);
    assert_int_equal(db_password_job(base, "not the secret", made.hash, 0, done_cb, &wrong), 0);
    while (right.calls == 0 || wrong.calls == 0) event_base_loop(base, EVLOOP_ONCE);
    assert_true(right.ok);
    assert_false(wrong.ok);
    assert_string_equal(right.hash, ""); /* a verification answers no hash */
    assert_int_equal(made.calls + right.calls + wrong.calls, 3);
    /* The worker's event stays on this base for the process's life: the base is kept. */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stored_form_and_verification),
        cmocka_unit_test(jobs_answer_on_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
