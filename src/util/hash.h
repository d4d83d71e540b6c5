/* hash.h - FNV-1a, 64 bits: a fast, well-spread hash for in-process tables and fingerprints.
 * Not keyed, so a collision can be made on purpose: use it only where one costs a slower
 * path, or harms no one but whoever made it (fast.c: a customer's own earlier profile kept
 * on their own conversation). */
#ifndef DB_UTIL_HASH_H
#define DB_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DB_HASH_SEED 14695981039346656037ULL

/* h moved on by the n bytes at p (start from DB_HASH_SEED). */
static inline uint64_t db_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* h moved on by the NUL-terminated string s. */
static inline uint64_t db_hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *b = (const unsigned char *)s; *b; b++) h = (h ^ *b) * 1099511628211ULL;
    return h;
}

#endif
