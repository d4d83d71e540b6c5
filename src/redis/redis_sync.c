/* redis_sync.c - db_redis_connect_sync (redis.h): a blocking, connected and authenticated
 * redisContext for the command-line tools and tests, the master asked of the sentinels first
 * for a sentinel URL. */
#include "redis/redis.h"
#include "redis/redis_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static redisContext *sync_open(const char *host, int port, const char *path,
                               const struct timeval *tv, char *why, size_t whysz)
{
    redisContext *c = path ? redisConnectUnixWithTimeout(path, *tv)
                           : redisConnectWithTimeout(host, port, *tv);
    if (!c || c->err) {
        snprintf(why, whysz, "%s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, *tv);
    return c;
}

redisContext *db_redis_connect_sync(const char *url, int timeout_ms, struct db_err *e)
{
    struct db_redis_url u;
    redisContext *c = NULL;
    redisReply *rep = NULL;
    char why[160] = "no sentinel answered";
    struct timeval tv;
    int ms = timeout_ms > 0 ? timeout_ms : 1000;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (db_redis_url_parse(url, &u, e) != DB_OK) goto fail_quiet;

    char host[256];
    int port = 0;
    if (u.kind == URL_SENTINEL) {
        host[0] = '\0';
        for (int i = 0; i < u.nsent && !host[0]; i++) {
            redisContext *s = sync_open(u.sent[i].host, u.sent[i].port, NULL, &tv, why, sizeof why);
            if (!s) continue;
            rep = redisCommand(s, "SENTINEL get-master-addr-by-name %s", u.master);
            long p;
            if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
                rep->element[0]->type == REDIS_REPLY_STRING &&
                rep->element[1]->type == REDIS_REPLY_STRING && rep->element[0]->len < sizeof host &&
                (p = db_redis_parse_num(rep->element[1]->str, rep->element[1]->len, 1, 65535)) > 0) {
                memcpy(host, rep->element[0]->str, rep->element[0]->len + 1);
                port = (int)p;
            } else {
                snprintf(why, sizeof why, "sentinel does not know master %s", u.master);
            }
            if (rep) freeReplyObject(rep);
            rep = NULL;
            redisFree(s);
        }
        if (!host[0]) {
            db_err_set(e, DB_EAGAIN, "Redis sentinel: %s", why);
            goto fail;
        }
    } else if (u.kind == URL_TCP) {
        snprintf(host, sizeof host, "%s", u.addr.host);
        port = u.addr.port;
    }
    c = sync_open(host, port, u.kind == URL_UNIX ? u.path : NULL, &tv, why, sizeof why);
    if (!c) {
        db_err_set(e, DB_EAGAIN, "Redis connect: %s", why);
        goto fail;
    }
    if (u.has_pass) {
        rep = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.pass)
                        : redisCommand(c, "AUTH %s", u.pass);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            db_err_set(e, rep ? DB_EAUTH : DB_EAGAIN, "Redis AUTH failed: %.120s",
                       rep ? rep->str : c->errstr);
            goto fail;
        }
        freeReplyObject(rep);
    }
    if (u.db) {
        rep = redisCommand(c, "SELECT %d", u.db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            db_err_set(e, rep ? DB_ECONFIG : DB_EAGAIN, "Redis SELECT %d failed: %.120s", u.db,
                       rep ? rep->str : c->errstr);
            goto fail;
        }
        freeReplyObject(rep);
    }
    if (u.kind == URL_SENTINEL) {
        rep = redisCommand(c, "ROLE");
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(rep->element[0]->str, "master") != 0) {
            db_err_set(e, DB_EAGAIN, "Redis sentinel: %s:%d is not a master", host, port);
            goto fail;
        }
        freeReplyObject(rep);
    }
    db_redis_url_clear(&u);
    return c;
fail:
    if (rep) freeReplyObject(rep);
    if (c) redisFree(c);
fail_quiet:
    db_redis_url_clear(&u);
    return NULL;
}
