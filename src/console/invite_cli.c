/* invite_cli.c - a sign-in link from the command line (blocking; never in the daemon). */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "conf/config.h"
#include "console/console.h"
#include "console/console_internal.h"
#include "redis/scripts.h"
#include "util/crypto.h"
#include "util/id.h"

int db_console_invite_sync(struct redisContext *c, const struct db_config *cfg,
                           const char *agent, int supervisor, char *url, size_t n,
                           struct db_err *e)
{
    unsigned char raw[32];
    char token[65], name[65], now[24], ttl[24];
    struct db_console_opts o = db_console_opts_of(cfg);
    if (db_random_bytes(raw, sizeof raw) != 0) return db_err_set(e, DB_EIO, "no random source");
    db_hex_encode(raw, sizeof raw, token);
    OPENSSL_cleanse(raw, sizeof raw);
    db_console_name_of(token, name);
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    snprintf(ttl, sizeof ttl, "%ld", o.invite_ttl_s);
    const char *argv[] = {"EVAL", db_lua_console_auth, "0", "invite_new", cfg->prefix, now,
                          agent, name, supervisor ? "supervisor" : "agent", ttl, ""};
    redisReply *r = redisCommandArgv(c, 11, argv, NULL);
    int rc = DB_OK;
    if (!r || r->type == REDIS_REPLY_ERROR)
        rc = db_err_set(e, DB_EIO, "redis: %s", r && r->str ? r->str : c->errstr);
    else if (r->type == REDIS_REPLY_STRING) rc = db_err_set(e, DB_ENOTFOUND, "no agent %s", agent);
    else snprintf(url, n, "%s/console/#invite=%s", o.public_url ? o.public_url : "", token);
    freeReplyObject(r);
    OPENSSL_cleanse(token, sizeof token);
    return rc;
}
