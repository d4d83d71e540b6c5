/* redis_script.c - a Lua script's text and SHA1, computed here once, for EVALSHA; reference
 * counted so a script freed by its owner lives on while commands using it are in flight. */
#include "redis/redis.h"
#include "redis/redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static void script_unref(struct db_redis_script *s)
{
    if (s && --s->refs == 0) {
        free(s->body);
        free(s);
    }
}

struct db_redis_script *db_redis_script_new_with(const char *prelude, const char *lua)
{
    struct db_redis_script *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t plen = prelude ? strlen(prelude) : 0, llen = strlen(lua);
    s->len = plen + llen;
    s->body = malloc(s->len + 1);
    if (!s->body) goto fail;
    if (plen) memcpy(s->body, prelude, plen);
    memcpy(s->body + plen, lua, llen + 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(s->body, s->len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) goto fail;
    for (unsigned i = 0; i < 20; i++) snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    s->refs = 1;
    return s;
fail:
    free(s->body);
    free(s);
    return NULL;
}

struct db_redis_script *db_redis_script_new(const char *lua)
{
    return db_redis_script_new_with(NULL, lua);
}

void db_redis_script_free(struct db_redis_script *s) { script_unref(s); }
