/* crypto.h - secret comparison and HMAC helpers shared by the connectors and the API.
 * Every comparison of a secret in deskbridge goes through db_ct_equal. */
#ifndef DB_UTIL_CRYPTO_H
#define DB_UTIL_CRYPTO_H

#include <stddef.h>

/* 1 when the two byte strings are equal, compared in time that depends only on the
 * lengths (a length mismatch still runs a full compare of a).  NULL counts as "". */
int db_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* db_ct_equal for two NUL-terminated strings. */
int db_ct_streq(const char *a, const char *b);

/* HMAC-SHA256 of data under key into out (32 bytes); 0, or -1 when OpenSSL failed (out is
 * then zeroed and must not be compared). */
int db_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[32]);

/* SHA-256 of data as 64 lowercase hex digits and a NUL into out; 0, or -1 when OpenSSL
 * failed (out is then ""). */
int db_sha256_hex(const void *data, size_t len, char out[65]);

/* Decodes exactly outlen bytes of hex (either case) from the NUL-terminated hex; 0 on
 * success, -1 when the length is not 2*outlen or a character is not hex. */
int db_hex_decode(const char *hex, unsigned char *out, size_t outlen);
/* Writes 2*len lowercase hex characters and a NUL into out. */
void db_hex_encode(const unsigned char *in, size_t len, char *out);

/* 1 when hexsig (optionally after prefix, e.g. "sha256=") is the HMAC-SHA256 of body under
 * key; constant time, case-insensitive hex.  0 for a missing or malformed header. */
int db_hmac_hex_matches(const char *hexsig, const char *prefix, const void *key, size_t keylen,
                        const void *body, size_t len);

/* Overwrites n bytes at p with zeros in a way the compiler may not drop as a dead store:
 * the one way deskbridge wipes a secret before its memory is freed or reused.  NULL-safe. */
void db_wipe(void *p, size_t n);
/* db_wipe over the characters of the NUL-terminated s (NULL-safe). */
void db_wipe_str(char *s);

/* Fills out with len random bytes from the OS/OpenSSL CSPRNG; 0 or -1. */
int db_random_bytes(void *out, size_t len);

#endif
