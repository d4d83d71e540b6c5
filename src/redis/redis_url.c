/* redis_url.c - the Redis URL forms of redis.h (redis://, unix://, redis+sentinel://) parsed
 * into struct db_redis_url: every malformed part refused with a reason that never quotes the
 * password; user names and passwords percent-decoded. */
#include "redis/redis_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util/crypto.h"

#define DEFAULT_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379
#define MAX_DB 999999

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated); -1 when it does not fit or an escape
 * is malformed or decodes to NUL. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= outsz) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Decimal in [lo, hi] from exactly s[0..n); -1 otherwise. */
long db_redis_parse_num(const char *s, size_t n, long lo, long hi)
{
    if (n == 0 || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

static int parse_hostport(const char *s, size_t n, int defport, struct db_redis_hostport *hp,
                          struct db_err *e)
{
    const char *hs = s, *colon = NULL;
    size_t hn;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return db_err_set(e, DB_ECONFIG, "Redis URL: unterminated [IPv6] host");
        hs = s + 1;
        hn = (size_t)(close - hs);
        size_t after = (size_t)(close + 1 - s);
        if (after < n) {
            if (s[after] != ':')
                return db_err_set(e, DB_ECONFIG, "Redis URL: junk after [IPv6] host");
            colon = s + after;
        }
    } else {
        colon = memchr(s, ':', n);
        hn = colon ? (size_t)(colon - s) : n;
    }
    if (hn == 0) return db_err_set(e, DB_ECONFIG, "Redis URL: empty host");
    if (hn >= sizeof hp->host) return db_err_set(e, DB_ECONFIG, "Redis URL: host too long");
    for (size_t i = 0; i < hn; i++) {
        unsigned char c = (unsigned char)hs[i];
        if (c <= ' ' || c == '@' || c == '/' || c == '?' || c == '#' || c >= 0x7f ||
            (c == ':' && hs == s))
            return db_err_set(e, DB_ECONFIG, "Redis URL: invalid character in host");
    }
    memcpy(hp->host, hs, hn);
    hp->host[hn] = '\0';
    if (!colon) {
        hp->port = defport;
        return DB_OK;
    }
    long port = db_redis_parse_num(colon + 1, (size_t)(s + n - colon - 1), 1, 65535);
    if (port < 0) return db_err_set(e, DB_ECONFIG, "Redis URL: port must be 1-65535");
    hp->port = (int)port;
    return DB_OK;
}

/* "user:password" or ":password", both percent-decoded. */
static int parse_userinfo(const char *s, size_t n, struct db_redis_url *u, struct db_err *e)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return db_err_set(e, DB_ECONFIG,
                          "Redis URL: credentials must be user:password or :password");
    if (pct_decode(s, (size_t)(colon - s), u->user, sizeof u->user) != 0)
        return db_err_set(e, DB_ECONFIG, "Redis URL: bad or too long user name");
    if (pct_decode(colon + 1, (size_t)(s + n - colon - 1), u->pass, sizeof u->pass) != 0)
        return db_err_set(e, DB_ECONFIG, "Redis URL: bad or too long password");
    if (!u->pass[0]) return db_err_set(e, DB_ECONFIG, "Redis URL: empty password");
    u->has_pass = 1;
    return DB_OK;
}

static int parse_db(const char *s, size_t n, struct db_redis_url *u, struct db_err *e)
{
    long db = db_redis_parse_num(s, n, 0, MAX_DB);
    if (db < 0) return db_err_set(e, DB_ECONFIG, "Redis URL: database must be a number 0-%d", MAX_DB);
    u->db = (int)db;
    return DB_OK;
}

/* Splits "[userinfo@]hosts[/rest]" into the host list (hosts, nhosts) and the rest (NULL when
 * absent). */
static int split_authority(const char *p, struct db_redis_url *u, const char **hosts, size_t *nhosts,
                           const char **rest, struct db_err *e)
{
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (p[i] == '@') at = p + i; /* the last '@': a password may contain one */
    if (memchr(p, '?', alen) || memchr(p, '#', alen))
        return db_err_set(e, DB_ECONFIG, "Redis URL: query strings are not supported here");
    if (at) {
        int rc = parse_userinfo(p, (size_t)(at - p), u, e);
        if (rc != DB_OK) return rc;
        *hosts = at + 1;
        *nhosts = (size_t)(p + alen - at - 1);
    } else {
        *hosts = p;
        *nhosts = alen;
    }
    *rest = slash;
    return DB_OK;
}

int db_redis_url_parse(const char *url, struct db_redis_url *u, struct db_err *e)
{
    memset(u, 0, sizeof *u);
    if (!url || !*url) return db_err_set(e, DB_ECONFIG, "no Redis URL given");
    const char *hosts, *rest, *p;
    size_t nhosts;
    int rc;
    if (strncmp(url, "redis://", 8) == 0) {
        u->kind = URL_TCP;
        p = url + 8;
        if ((rc = split_authority(p, u, &hosts, &nhosts, &rest, e)) != DB_OK) return rc;
        if ((rc = parse_hostport(hosts, nhosts, DEFAULT_PORT, &u->addr, e)) != DB_OK) return rc;
        if (rest && rest[1] && (rc = parse_db(rest + 1, strlen(rest + 1), u, e)) != DB_OK)
            return rc;
        return DB_OK;
    }
    if (strncmp(url, "redis+sentinel://", 17) == 0) {
        u->kind = URL_SENTINEL;
        p = url + 17;
        if ((rc = split_authority(p, u, &hosts, &nhosts, &rest, e)) != DB_OK) return rc;
        while (nhosts > 0 || u->nsent == 0) {
            const char *comma = memchr(hosts, ',', nhosts);
            size_t len = comma ? (size_t)(comma - hosts) : nhosts;
            if (u->nsent == DB_REDIS_MAX_SENTINELS)
                return db_err_set(e, DB_ECONFIG, "Redis URL: more than %d sentinels",
                                  DB_REDIS_MAX_SENTINELS);
            rc = parse_hostport(hosts, len, DEFAULT_SENTINEL_PORT, &u->sent[u->nsent++], e);
            if (rc != DB_OK) return rc;
            if (!comma) break;
            hosts = comma + 1;
            nhosts -= len + 1;
            if (nhosts == 0) return db_err_set(e, DB_ECONFIG, "Redis URL: empty host");
        }
        if (!rest || !rest[1])
            return db_err_set(e, DB_ECONFIG, "Redis URL: sentinel URL needs /master-name");
        const char *name = rest + 1, *slash = strchr(name, '/');
        size_t nlen = slash ? (size_t)(slash - name) : strlen(name);
        if (nlen == 0 || nlen >= sizeof u->master)
            return db_err_set(e, DB_ECONFIG, "Redis URL: bad master name");
        for (size_t i = 0; i < nlen; i++)
            if (!isgraph((unsigned char)name[i]) || name[i] == '?' || name[i] == '#')
                return db_err_set(e, DB_ECONFIG, "Redis URL: bad master name");
        memcpy(u->master, name, nlen);
        if (slash && (rc = parse_db(slash + 1, strlen(slash + 1), u, e)) != DB_OK) return rc;
        return DB_OK;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        u->kind = URL_UNIX;
        p = url + 7;
        if (*p != '/') {
            /* unix://user:pass@/path: the credentials end at the "@/" before the path. */
            const char *at = strstr(p, "@/");
            if (!at) return db_err_set(e, DB_ECONFIG, "Redis URL: unix:// needs an absolute path");
            if ((rc = parse_userinfo(p, (size_t)(at - p), u, e)) != DB_OK) return rc;
            p = at + 1;
        }
        const char *q = strchr(p, '?');
        size_t plen = q ? (size_t)(q - p) : strlen(p);
        if (plen < 2) return db_err_set(e, DB_ECONFIG, "Redis URL: empty socket path");
        if (plen >= sizeof u->path)
            return db_err_set(e, DB_ECONFIG, "Redis URL: socket path longer than %zu bytes",
                              sizeof u->path - 1);
        memcpy(u->path, p, plen);
        if (q) {
            if (strncmp(q, "?db=", 4) != 0)
                return db_err_set(e, DB_ECONFIG, "Redis URL: unix:// only takes ?db=N");
            if ((rc = parse_db(q + 4, strlen(q + 4), u, e)) != DB_OK) return rc;
        }
        return DB_OK;
    }
    if (strncmp(url, "rediss://", 9) == 0)
        return db_err_set(e, DB_ECONFIG, "Redis URL: TLS (rediss://) is not supported");
    return db_err_set(e, DB_ECONFIG,
                      "Redis URL: scheme must be redis://, unix:// or redis+sentinel://");
}

void db_redis_url_clear(struct db_redis_url *u) { db_wipe(u->pass, sizeof u->pass); }
