/* media.c - GET /v1/media/{platform}/{account}/{media_id}: resolve the media id with the
 * platform (or, for a platform that names files by URL in its webhooks, Viber, find the URL
 * the store recorded under the id), then relay the download to the client as it arrives.
 *
 * One job per request walks LOOKUP -> DOWNLOAD.  The job holds a configuration reference
 * because the account state (token, API base) belongs to the configuration the request
 * started with; a SIGHUP reload must not free it under a running download.
 *
 * The lookup is never cached: WhatsApp's download URLs expire within minutes and Telegram's
 * within an hour, and a fresh lookup costs one small request. */
#include "media/media.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deskbridge/connector.h"
#include "conf/config.h"
#include "services/services.h"
#include "http/respond.h"
#include "http/router.h"
#include "net/http_client.h"
#include "net/httpd.h"
#include "log/log.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "util/id.h"

/* The lookup answers a few hundred bytes of JSON: anything slower than this is a stall. */
#define LOOKUP_TIMEOUT_MS 15000L
/* Whole download, including a slow client: WhatsApp documents go up to 100 MB. */
#define DOWNLOAD_TIMEOUT_MS 600000L
/* The client does not drain fast enough: http_client cannot pause a transfer, so past this
 * the download is dropped rather than buffered in the gateway's memory without bound. */
#define MAX_PENDING_BYTES ((size_t)32 * 1024 * 1024)

struct media_job {
    struct db_services *svc;
    struct db_httpd_req *req;
    struct db_cfg_ref *cfg;
    const struct db_account *acct; /* borrowed from cfg */
    struct db_http_call *call;     /* in flight, NULL otherwise */
    char *lookup_url;              /* the lookup's URL (on the account's API base), owned */
    long dl_status;                /* status of the download answer once known, else 0 */
    size_t bytes;                  /* relayed to the client */
    int started;                   /* stream head sent */
    int client_gone;
    int too_slow;
    char ctype[128];
    /* Collect mode (db_media_collect): the bytes go to buf, at most cap, then to fetched. */
    db_media_collected_fn fetched;
    void *fetched_arg;
    char *buf;
    size_t len, cap, bufcap;
    int too_big;
    char media_id[160];
    char platform[32];
    char account[72];
    char rid[DB_ID_LEN + 1];
};

static void job_free(struct media_job *j)
{
    if (!j) return;
    db_cfg_unref(j->cfg);
    free(j->lookup_url);
    free(j->buf);
    free(j);
}

static void log_ctx(const struct media_job *j, struct db_log_ctx *ctx)
{
    ctx->module = "media";
    ctx->platform = j->platform;
    ctx->account = j->account;
    ctx->id = j->rid;
}

/* Answers with an error (collect mode: tells the caller) and ends the job. */
static void fail_job(struct media_job *j, int status, const char *code, const char *message)
{
    if (j->fetched) {
        int rc = status == 404 ? DB_ENOTFOUND
                 : status == 400 || status == 413 ? DB_EINVAL
                 : status == 501 ? DB_EUNSUPPORTED
                                 : DB_EAGAIN;
        j->fetched(rc, code, message, NULL, NULL, 0, j->fetched_arg);
    } else {
        db_httpd_respond_error(j->req, status, code, message);
    }
    job_free(j);
}

/* Collect mode: the bytes of a finished download. */
static void collect_done(struct media_job *j)
{
    j->fetched(DB_OK, "", "", j->ctype, j->buf ? j->buf : "", j->len, j->fetched_arg);
    job_free(j);
}

static int collect_chunk(struct media_job *j, const char *data, size_t len)
{
    if (len > j->cap - j->len) {
        j->too_big = 1;
        return -1;
    }
    if (j->len + len > j->bufcap) {
        size_t n = j->bufcap ? j->bufcap : 64 * 1024;
        while (n < j->len + len) n *= 2;
        if (n > j->cap) n = j->cap;
        char *b = realloc(j->buf, n);
        if (!b) return -1;
        j->buf = b;
        j->bufcap = n;
    }
    memcpy(j->buf + j->len, data, len);
    j->len += len;
    return 0;
}

/* The platform's Content-Type when it is a plain header value, else a neutral one: the value
 * goes into our own response head. */
static void take_ctype(struct media_job *j, const struct db_headers *h)
{
    const char *v = h ? db_headers_get(h, "Content-Type") : NULL;
    size_t n = v ? strlen(v) : 0;
    int ok = n > 0 && n < sizeof j->ctype;
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f) ok = 0;
    snprintf(j->ctype, sizeof j->ctype, "%s", ok ? v : "application/octet-stream");
}

static const char *const stream_headers[] = {
    /* The bytes are a customer's file behind our API token: no shared cache keeps them. */
    "Cache-Control: private, no-store",
    /* Customer-supplied bytes must never be sniffed into HTML by a browser-based helpdesk. */
    "X-Content-Type-Options: nosniff",
    /* Opened on its own in a browser (the console links documents), a customer's SVG or HTML
     * file must not run script in the gateway's origin. */
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; sandbox",
    NULL,
};

static void gone_cb(struct db_httpd_req *req, void *arg)
{
    (void)req;
    struct media_job *j = arg;
    j->client_gone = 1;
    /* The done callback runs inside the cancel and ends the stream, freeing j. */
    if (j->call) db_http_call_cancel(j->call);
}

static int download_data_cb(long status, const struct db_headers *headers, const char *data,
                            size_t len, void *arg)
{
    struct media_job *j = arg;
    j->dl_status = status;
    if (status < 200 || status >= 300) return -1; /* an error page is not the file */
    if (j->fetched) {
        if (!j->ctype[0]) take_ctype(j, headers);
        return collect_chunk(j, data, len);
    }
    if (!j->started) {
        take_ctype(j, headers);
        db_httpd_stream_start(j->req, 200, j->ctype, stream_headers, gone_cb, j);
        j->started = 1;
    }
    if (db_httpd_stream_chunk(j->req, data, len) != 0) {
        j->client_gone = 1;
        return -1;
    }
    j->bytes += len;
    if (db_httpd_stream_pending(j->req) > MAX_PENDING_BYTES) {
        j->too_slow = 1;
        return -1;
    }
    return 0;
}

static void download_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct media_job *j = arg;
    struct db_log_ctx ctx;
    log_ctx(j, &ctx);
    j->call = NULL;
    if (j->started) {
        if (j->client_gone) {
            db_log(DB_LOG_INFO, &ctx, "client went away; download cancelled bytes=%zu",
                   j->bytes);
        } else if (j->too_slow) {
            db_log(DB_LOG_WARN, &ctx, "client too slow; download dropped bytes=%zu", j->bytes);
        } else if (resp->transport_error) {
            /* The head is out: end without the closing chunk so the client sees the cut. */
            db_log(DB_LOG_WARN, &ctx, "download broke off (%s) bytes=%zu",
                   resp->transport_error, j->bytes);
        } else {
            db_log(DB_LOG_INFO, &ctx, "media relayed bytes=%zu", j->bytes);
        }
        if (j->too_slow || resp->transport_error) db_httpd_stream_abort(j->req);
        else db_httpd_stream_end(j->req);
        job_free(j);
        return;
    }
    long status = j->dl_status ? j->dl_status : resp->status;
    if (j->fetched) {
        if (j->too_big) {
            fail_job(j, 413, "too_big", "the file is larger than the store's max_bytes");
        } else if (status >= 200 && status < 300 && !resp->transport_error) {
            if (!j->ctype[0]) take_ctype(j, resp->headers);
            collect_done(j);
        } else if (status == 404) {
            fail_job(j, 404, "not_found", "the platform has no such media (expired or unknown)");
        } else {
            char why[200];
            snprintf(why, sizeof why, "download failed: %s",
                     resp->transport_error ? resp->transport_error : "HTTP error");
            if (status > 0 && !resp->transport_error)
                snprintf(why, sizeof why, "download answered HTTP %ld", status);
            fail_job(j, 502, "upstream_error", why);
        }
        return;
    }
    if (j->client_gone) {
        db_log(DB_LOG_INFO, &ctx, "client went away before the download started");
        fail_job(j, 502, "client_gone", "client went away");
    } else if (status >= 200 && status < 300) {
        /* An empty file: data_cb never ran. */
        take_ctype(j, resp->headers);
        db_log(DB_LOG_INFO, &ctx, "media relayed bytes=0");
        db_httpd_respond(j->req, 200, j->ctype, "", 0, stream_headers);
        job_free(j);
    } else if (status == 404) {
        db_log(DB_LOG_INFO, &ctx, "download answered 404");
        fail_job(j, 404, "not_found", "the platform has no such media (expired or unknown)");
    } else if (status == 0) {
        db_log(DB_LOG_WARN, &ctx, "download failed: %s",
               resp->transport_error ? resp->transport_error : "no answer");
        fail_job(j, 502, "upstream_error", "the platform's media download failed");
    } else {
        db_log(DB_LOG_WARN, &ctx, "download answered HTTP %ld", status);
        fail_job(j, 502, "upstream_error", "the platform's media download failed");
    }
}

/* guarded: the URL is off the account's API host (a platform's answer chose it), so it goes
 * through the client with the SSRF guard. */
static void start_download(struct media_job *j, const struct db_http_req *dl, int guarded)
{
    struct db_log_ctx ctx;
    log_ctx(j, &ctx);
    int rc = db_http_client_send(guarded ? j->svc->payload_http : j->svc->platform_http, dl,
                                 DOWNLOAD_TIMEOUT_MS, download_done_cb, download_data_cb, j,
                                 &j->call);
    if (rc != DB_OK) {
        /* The URL came from the platform (or our configuration): not the client's fault. */
        db_log(DB_LOG_WARN, &ctx, "download not started: %s%s", db_strerror(rc),
               guarded ? " (off the API host only public https URLs are fetched)" : "");
        fail_job(j, 502, "upstream_error", "the platform gave an unusable download location");
    }
}

static void lookup_done_cb(const struct db_http_resp *resp, void *arg)
{
    struct media_job *j = arg;
    struct db_log_ctx ctx;
    log_ctx(j, &ctx);
    struct db_http_req dl = {0};
    struct db_err e = {0};
    j->call = NULL;
    if (resp->status == 0) {
        db_log(DB_LOG_WARN, &ctx, "media lookup failed: %s",
               resp->transport_error ? resp->transport_error : "no answer");
        fail_job(j, 502, "upstream_error", "the platform's media lookup failed");
        return;
    }
    int rc = j->acct->conn->read_media_lookup(j->acct->state, resp, &dl, &e);
    if (rc == DB_OK) {
        /* The download URL is the platform's answer, not the operator's configuration.  Off
         * the API base's own host it must be a public https address (the SSRF guard), so a
         * forged or mistaken answer cannot point the gateway, with the account's token, at
         * the local network. */
        start_download(j, &dl, !db_http_same_host(j->lookup_url, dl.url));
    } else if (rc == DB_ENOTFOUND || resp->status == 404 || resp->status == 400) {
        /* Both platforms answer an unknown or expired id with 400 (Graph's "object does not
         * exist", Telegram's "invalid file_id") or 404; the id is the client's only input. */
        db_log(DB_LOG_INFO, &ctx, "media lookup: no such media (HTTP %ld)", resp->status);
        fail_job(j, 404, "not_found", "the platform has no such media (expired or unknown)");
    } else {
        db_log(DB_LOG_WARN, &ctx, "media lookup refused: %s", e.msg);
        fail_job(j, 502, "upstream_error", "the platform's media lookup failed");
    }
    db_http_req_clear(&dl);
}

/* The URL a webhook named for this media id (P:mediaurl:..., recorded by the store when the
 * event was written).  Only such a URL is fetched, and always through the SSRF guard: the
 * id is the client's input, the URL came from a request anyone could have sent. */
static void recorded_url_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct media_job *j = arg;
    struct db_log_ctx ctx;
    log_ctx(j, &ctx);
    (void)errstr;
    if (status != DB_OK || reply->type == REDIS_REPLY_ERROR) {
        db_log(DB_LOG_WARN, &ctx, "media: Redis unavailable for the recorded URL");
        fail_job(j, 503, "unavailable", "Redis is unavailable");
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        db_log(DB_LOG_INFO, &ctx, "media: no recorded URL");
        fail_job(j, 404, "not_found", "no such media (unknown, or its record expired)");
        return;
    }
    struct db_http_req dl = {0};
    dl.method = strdup("GET");
    dl.url = strdup(reply->str);
    if (!dl.method || !dl.url) {
        db_http_req_clear(&dl);
        fail_job(j, 503, "unavailable", "out of memory");
        return;
    }
    start_download(j, &dl, 1);
    db_http_req_clear(&dl);
}

/* Media a platform names by URL in its webhook (Viber): no lookup request, the URL the
 * store recorded under the media id. */
static void fetch_recorded(struct media_job *j, const char *media_id)
{
    char key[512], suffix[400];
    if (strlen(media_id) > 128) {
        fail_job(j, 400, "invalid_media_id", "media id longer than 128 characters");
        return;
    }
    snprintf(suffix, sizeof suffix, DB_KEY_MEDIAURL ":%s:%s:%s", j->platform, j->account,
             media_id);
    db_key(key, sizeof key, j->cfg->cfg->prefix, suffix);
    db_redis_cmd(j->svc->redis, recorded_url_cb, j, "GET %s", key);
}

/* A job for media_id of (platform, account); NULL when out of memory. */
static struct media_job *job_new(struct db_services *svc, const char *platform,
                                 const char *account, const char *media_id)
{
    struct media_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->svc = svc;
    j->cfg = db_cfg_ref(svc);
    snprintf(j->platform, sizeof j->platform, "%s", platform);
    snprintf(j->account, sizeof j->account, "%s", account);
    snprintf(j->media_id, sizeof j->media_id, "%s", media_id);
    db_id_new(j->rid);
    return j;
}

/* Resolves the job's media with its platform and downloads it. */
static void job_start(struct media_job *j)
{
    struct db_http_req lookup = {0};
    struct db_err e = {0};
    struct db_log_ctx ctx;
    log_ctx(j, &ctx);
    if (!j->cfg) {
        fail_job(j, 503, "unavailable", "out of memory");
        return;
    }
    if (strlen(j->media_id) >= sizeof j->media_id - 1) {
        fail_job(j, 400, "invalid_media_id", "media id too long");
        return;
    }
    j->acct = db_config_account(j->cfg->cfg, j->platform, j->account);
    if (!j->acct) {
        db_log(DB_LOG_INFO, &ctx, "media: no such account");
        fail_job(j, 404, "unknown_account", "no such platform account");
        goto done;
    }
    int rc = db_conn_build_media_lookup(j->acct->conn, j->acct->state, j->media_id, &lookup, &e);
    if (rc == DB_EUNSUPPORTED) {
        fetch_recorded(j, j->media_id);
        goto done;
    }
    if (rc == DB_EINVAL) {
        fail_job(j, 400, "invalid_media_id", e.msg);
        goto done;
    }
    if (rc != DB_OK) {
        fail_job(j, 503, "unavailable", "out of memory");
        goto done;
    }
    /* Without a second step the lookup request already is the download. */
    if (!j->acct->conn->read_media_lookup) {
        start_download(j, &lookup, 0);
        goto done;
    }
    j->lookup_url = strdup(lookup.url);
    if (!j->lookup_url) {
        fail_job(j, 503, "unavailable", "out of memory");
        goto done;
    }
    rc = db_http_client_send(j->svc->platform_http, &lookup, LOOKUP_TIMEOUT_MS, lookup_done_cb,
                             NULL, j, &j->call);
    if (rc != DB_OK) {
        db_log(DB_LOG_WARN, &ctx, "media lookup not started: %s", db_strerror(rc));
        fail_job(j, 502, "upstream_error", "the platform's media lookup could not be sent");
    }
done:
    db_http_req_clear(&lookup);
}

/* The platform path of GET /v1/media/... (also serve.c's fallback). */
void db_media_relay(struct db_services *svc, struct db_httpd_req *req, const char *platform,
                    const char *account, const char *media_id)
{
    struct media_job *j = job_new(svc, platform, account, media_id);
    if (!j) {
        db_httpd_respond_error(req, 503, "unavailable", "out of memory");
        return;
    }
    j->req = req;
    job_start(j);
}

void db_media_collect(struct db_services *svc, const char *platform, const char *account,
                    const char *media_id, size_t max_bytes, db_media_collected_fn cb, void *arg)
{
    struct media_job *j = job_new(svc, platform, account, media_id);
    if (!j) {
        cb(DB_EAGAIN, "unavailable", "out of memory", NULL, NULL, 0, arg);
        return;
    }
    j->fetched = cb;
    j->fetched_arg = arg;
    j->cap = max_bytes;
    job_start(j);
}

