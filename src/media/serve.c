/* serve.c - GET /v1/media/... from the media store: the record
 * (P:mediarec:<platform>:<account>:<media id>, written by src/mediastore/) says whether the
 * file is stored, under which key, how big and of which sniffed type.  A stored file is
 * answered from the store with one byte range when asked (RFC 9110 section 14); anything
 * else (no store, no record, lost, the store failing) goes to the platform as before. */
#include "media/media.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "services/services.h"
#include "log/log.h"
#include "media/blob.h"
#include "net/httpd.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "util/parse.h"
#include "http/respond.h"
#include "http/router.h"

struct serve {
    struct db_services *svc;
    struct db_httpd_req *req;
    char platform[32], account[96], media_id[160];
    char key[520], ctype[128], name[128], sha[72];
    size_t size, off, len;
    int partial;
};

static void fall_back(struct serve *s)
{
    db_media_relay(s->svc, s->req, s->platform, s->account, s->media_id);
    free(s);
}

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range of size bytes into s.  1 when
 * it applies, 0 when the header is absent or not a single byte range (the whole file is
 * sent), -1 when it cannot be satisfied (416). */
static int parse_range(const char *h, struct serve *s)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',')) return 0;
    const char *p = h + 6, *dash = strchr(p, '-');
    if (!dash) return 0;
    char a[24] = "", b[24] = "";
    size_t na = (size_t)(dash - p), nb = strlen(dash + 1);
    if (na >= sizeof a || nb >= sizeof b) return 0;
    memcpy(a, p, na);
    memcpy(b, dash + 1, nb + 1);
    long from, to;
    if (!na) {
        /* the last n bytes */
        if (db_parse_long(b, 1, LONG_MAX, &to) != 0) return 0;
        if (s->size == 0) return -1;
        s->len = (size_t)to < s->size ? (size_t)to : s->size;
        s->off = s->size - s->len;
        return 1;
    }
    if (db_parse_long(a, 0, LONG_MAX, &from) != 0) return 0;
    if (nb && db_parse_long(b, 0, LONG_MAX, &to) != 0) return 0;
    if (nb && to < from) return 0;
    if ((size_t)from >= s->size) return -1;
    size_t last = nb && (size_t)to < s->size - 1 ? (size_t)to : s->size - 1;
    s->off = (size_t)from;
    s->len = last - s->off + 1;
    return 1;
}

/* Inline for what a browser shows safely as-is, attachment for everything else; the name
 * keeps only characters that need no quoting. */
static void disposition(const struct serve *s, char *out, size_t n)
{
    int inline_ok = strncmp(s->ctype, "image/", 6) == 0 || strncmp(s->ctype, "audio/", 6) == 0 ||
                    strncmp(s->ctype, "video/", 6) == 0 || strcmp(s->ctype, "application/pdf") == 0;
    char name[128];
    size_t k = 0;
    for (const char *p = s->name; *p && k + 1 < sizeof name; p++) {
        unsigned char c = (unsigned char)*p;
        name[k++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '/') ? (char)c : '_';
    }
    name[k] = '\0';
    if (!k) snprintf(name, sizeof name, "media");
    snprintf(out, n, "Content-Disposition: %s; filename=\"%s\"",
             inline_ok ? "inline" : "attachment", name);
}

static void got_cb(int status, const char *why, const char *data, size_t len, void *arg)
{
    struct serve *s = arg;
    struct db_log_ctx ctx = {"media", s->platform, s->account, NULL};
    if (status != DB_OK || len != s->len) {
        db_log(DB_LOG_WARN, &ctx, "media store read failed (%s); asking the platform",
               status == DB_OK ? "short read" : why);
        fall_back(s);
        return;
    }
    char cd[200], cr[96], etag[96];
    disposition(s, cd, sizeof cd);
    snprintf(cr, sizeof cr, "Content-Range: bytes %zu-%zu/%zu", s->off, s->off + s->len - 1,
             s->size);
    snprintf(etag, sizeof etag, "ETag: \"%s\"", s->sha);
    const char *h[] = {"Cache-Control: private, no-store", "X-Content-Type-Options: nosniff",
                       /* as media.c: a customer's file never runs script in our origin */
                       "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                       "sandbox",
                       "Accept-Ranges: bytes", cd, etag, s->partial ? cr : NULL, NULL};
    db_httpd_respond(s->req, s->partial ? 206 : 200, s->ctype, data, len, h);
    free(s);
}

static void record_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct serve *s = arg;
    (void)errstr;
    if (status != DB_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements != 6) {
        fall_back(s);
        return;
    }
    const char *v[6];
    for (int i = 0; i < 6; i++) v[i] = reply->element[i]->str;
    long size;
    if (!v[0] || strcmp(v[0], "stored") != 0 || !v[1] || !v[2] ||
        db_parse_long(v[2], 0, LONG_MAX, &size) != 0 || strlen(v[1]) >= sizeof s->key) {
        fall_back(s);
        return;
    }
    snprintf(s->key, sizeof s->key, "%s", v[1]);
    s->size = (size_t)size;
    snprintf(s->ctype, sizeof s->ctype, "%s", v[3] ? v[3] : "application/octet-stream");
    snprintf(s->name, sizeof s->name, "%s", v[4] ? v[4] : "");
    snprintf(s->sha, sizeof s->sha, "%s", v[5] ? v[5] : "");
    s->off = 0;
    s->len = s->size;
    int r = parse_range(db_httpd_req_header(s->req, "Range"), s);
    if (r < 0) {
        char cr[64];
        snprintf(cr, sizeof cr, "Content-Range: bytes */%zu", s->size);
        const char *h[] = {cr, "Accept-Ranges: bytes", NULL};
        db_httpd_respond(s->req, 416, "application/json",
                         "{\"error\":{\"code\":\"range_not_satisfiable\",\"message\":"
                         "\"the range is outside the file\"}}",
                         strlen("{\"error\":{\"code\":\"range_not_satisfiable\",\"message\":"
                                "\"the range is outside the file\"}}"),
                         h);
        free(s);
        return;
    }
    s->partial = r > 0;
    db_blob_get(s->svc->media_blob, s->key, s->off, s->len, got_cb, s);
}

void db_media_serve(struct db_services *svc, struct db_httpd_req *req, const char *platform,
                    const char *account, const char *media_id)
{
    struct serve *s = svc->media_blob ? calloc(1, sizeof *s) : NULL;
    if (!s || strlen(platform) >= sizeof s->platform || strlen(account) >= sizeof s->account ||
        strlen(media_id) >= sizeof s->media_id) {
        free(s);
        db_media_relay(svc, req, platform, account, media_id);
        return;
    }
    s->svc = svc;
    s->req = req;
    snprintf(s->platform, sizeof s->platform, "%s", platform);
    snprintf(s->account, sizeof s->account, "%s", account);
    snprintf(s->media_id, sizeof s->media_id, "%s", media_id);
    char key[512], suffix[400];
    snprintf(suffix, sizeof suffix, DB_KEY_MEDIAREC ":%s:%s:%s", platform, account, media_id);
    struct db_cfg_ref *cfg = db_cfg_ref(svc);
    db_key(key, sizeof key, cfg ? cfg->cfg->prefix : "deskbridge", suffix);
    db_cfg_unref(cfg);
    db_redis_cmd(svc->redis, record_cb, s,
                 "HMGET %s state key size content_type file_name sha256", key);
}

/* GET /v1/media/<platform>/<account>/<media id> */
static void route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    char buf[1024];
    char *seg[3];
    if (!db_route_segments(db_httpd_req_path(req), "/v1/media/", buf, sizeof buf, seg, 3))
        db_httpd_respond_error(req, 404, "not_found", "no such route");
    else if (!db_tenant_serves(who->tenant, seg[0], seg[1]))
        db_api_refuse(req, who->tenant, 403, "forbidden", "account",
                      "the account is not the tenant's");
    else db_media_serve(arg, req, seg[0], seg[1], seg[2]);
}

int db_media_routes(struct db_services *svc, struct db_err *e)
{
    const struct db_route r = {.method = "GET", .path = "/v1/media/", .access = DB_ROUTE_TOKEN,
                               .handler = route, .arg = svc};
    return db_router_add(svc->router, &r) == DB_OK ? DB_OK
                                                   : db_err_set(e, DB_ENOMEM, "out of memory");
}
