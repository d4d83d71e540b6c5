/* HMAC-SHA256 against the RFC 4231 test vectors (short key, key shorter than the data, key
 * longer than a block) and the signature matcher built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/crypto.h"

static void expect_hmac(const void *key, size_t keylen, const char *data, const char *want_hex)
{
    unsigned char mac[32];
    char hex[65];
    assert_int_equal(db_hmac_sha256(key, keylen, data, strlen(data), mac), 0);
    db_hex_encode(mac, sizeof mac, hex);
    assert_string_equal(hex, want_hex);
}

static void rfc4231_vectors(void **state)
{
    (void)state;
    unsigned char k20[20], k131[131];
    memset(k20, 0x0b, sizeof k20);
    memset(k131, 0xaa, sizeof k131);
    /* Test case 1 */
    expect_hmac(k20, sizeof k20, "Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* Test case 2 */
    expect_hmac("Jefe", 4, "what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 6: a key longer than the block is hashed first */
    expect_hmac(k131, sizeof k131, "Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void empty_key_and_data(void **state)
{
    (void)state;
    /* HMAC-SHA256("", "") */
    expect_hmac(NULL, 0, "", "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void matcher_checks_prefix_hex_and_key(void **state)
{
    (void)state;
    const char *body = "{\"object\":\"whatsapp_business_account\"}";
    unsigned char mac[32];
    char sig[7 + 65] = "sha256=";
    assert_int_equal(db_hmac_sha256("secret", 6, body, strlen(body), mac), 0);
    db_hex_encode(mac, sizeof mac, sig + 7);
    assert_true(db_hmac_hex_matches(sig, "sha256=", "secret", 6, body, strlen(body)));
    assert_false(db_hmac_hex_matches(sig, "sha256=", "secreT", 6, body, strlen(body)));
    assert_false(db_hmac_hex_matches(sig + 7, "sha256=", "secret", 6, body, strlen(body)));
    assert_false(db_hmac_hex_matches(sig, "sha256=", "secret", 6, body, strlen(body) - 1));
    for (char *p = sig + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    assert_true(db_hmac_hex_matches(sig, "sha256=", "secret", 6, body, strlen(body)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4231_vectors),
        cmocka_unit_test(empty_key_and_data),
        cmocka_unit_test(matcher_checks_prefix_hex_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
