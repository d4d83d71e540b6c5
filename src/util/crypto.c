#include "util/crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
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

/* SHA-256 fetched once: the one-shot HMAC() looks the algorithm up again on every call, which
 * cost more than hashing a whole webhook body. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static int digest2(EVP_MD_CTX *ctx, const void *a, size_t alen, const void *b, size_t blen,
                   unsigned char out[32])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex(ctx, sha256_md, NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
                   EVP_DigestUpdate(ctx, b, blen) == 1 && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
                   n == 32
               ? 0
               : -1;
}

/* HMAC as RFC 2104 defines it, over the pre-fetched SHA-256. */
int db_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                   unsigned char out[32])
{
    enum { BLOCK = 64 };
    unsigned char k0[BLOCK] = {0}, pad[BLOCK], inner[32];
    pthread_once(&sha256_once, sha256_fetch);
    EVP_MD_CTX *ctx = sha256_md ? EVP_MD_CTX_new() : NULL;
    int rc = ctx ? 0 : -1;
    if (rc == 0 && keylen > BLOCK) rc = digest2(ctx, key, keylen, "", 0, k0);
    else if (rc == 0 && keylen) memcpy(k0, key, keylen);
    for (int i = 0; i < BLOCK; i++) pad[i] = k0[i] ^ 0x36;
    if (rc == 0) rc = digest2(ctx, pad, BLOCK, data ? data : "", data ? len : 0, inner);
    for (int i = 0; i < BLOCK; i++) pad[i] = k0[i] ^ 0x5c;
    if (rc == 0) rc = digest2(ctx, pad, BLOCK, inner, sizeof inner, out);
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(k0, sizeof k0);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    if (rc != 0) memset(out, 0, 32);
    return rc;
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
    int ok = db_hmac_sha256(key, keylen, body, len, want) == 0 &&
             db_ct_equal(got, sizeof got, want, sizeof want);
    OPENSSL_cleanse(want, sizeof want);
    return ok;
}

int db_random_bytes(void *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
}

void db_wipe(void *p, size_t n)
{
    if (p && n) OPENSSL_cleanse(p, n);
}

void db_wipe_str(char *s)
{
    if (s) db_wipe(s, strlen(s));
}

int db_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) return -1;
    db_hex_encode(md, 32, out);
    return 0;
}
