#include "util/crypto.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

int db_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    static const unsigned char empty[1];
    if (!a) { a = empty; alen = 0; }
    if (!b) { b = empty; blen = 0; }
    /* Compare a with itself when the lengths differ so the time spent does not reveal
     * where b diverges; the length itself is not secret (it is public for tokens). */
    if (alen != blen) {
        (void)CRYPTO_memcmp(a, a, alen);
        return 0;
    }
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int db_ct_streq(const char *a, const char *b)
{
    return db_ct_equal(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0);
}

void db_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[32])
{
    unsigned int outlen = 32;
    static const unsigned char nothing[1];
    HMAC(EVP_sha256(), key ? key : nothing, (int)keylen, data ? data : nothing, len, out,
         &outlen);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int db_hex_decode(const char *hex, unsigned char *out, size_t outlen)
{
    if (!hex || strlen(hex) != outlen * 2) return -1;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

void db_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int db_hmac_hex_matches(const char *hexsig, const char *prefix, const void *key, size_t keylen,
                        const void *body, size_t len)
{
    if (!hexsig) return 0;
    if (prefix) {
        size_t pl = strlen(prefix);
        if (strncmp(hexsig, prefix, pl) != 0) return 0;
        hexsig += pl;
    }
    unsigned char got[32], want[32];
    if (db_hex_decode(hexsig, got, sizeof got) != 0) return 0;
    db_hmac_sha256(key, keylen, body, len, want);
    int ok = db_ct_equal(got, sizeof got, want, sizeof want);
    OPENSSL_cleanse(want, sizeof want);
    return ok;
}

int db_random_bytes(void *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}
