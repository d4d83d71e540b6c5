/* fetch.c - see fetch.h.  One fetch walks LOOKUP -> DOWNLOAD with the body collected by the
 * HTTP client (its response cap bounds the memory). */
#include "media/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "services/services.h"
#include "deskbridge/connector.h"
#include "net/http_client.h"

struct db_media_fetch {
    struct db_services *svc;
    const struct db_account *acct;
    db_media_fetch_fn cb;
    void *arg;
    struct db_http_call *call;
    char *lookup_url;
    long timeout_ms;
};

static void finish(struct db_media_fetch *f, int status, const char *body, size_t len,
                   const char *ctype, const char *why)
{
    f->cb(status, body, len, ctype, why, f->arg);
    free(f->lookup_url);
    free(f);
}

static void download_cb(const struct db_http_resp *resp, void *arg)
{
    struct db_media_fetch *f = arg;
    f->call = NULL;
    char why[96];
    if (resp->status >= 200 && resp->status < 300) {
        const char *ct = resp->headers ? db_headers_get(resp->headers, "Content-Type") : NULL;
        finish(f, DB_OK, resp->body ? resp->body : "", resp->body_len,
               ct && *ct && !strpbrk(ct, "\r\n") ? ct : "application/octet-stream", "fetched");
        return;
    }
    if (resp->status == 0)
        snprintf(why, sizeof why, "download failed: %.60s",
                 resp->transport_error ? resp->transport_error : "no answer");
    else snprintf(why, sizeof why, "download answered HTTP %ld", resp->status);
    /* Over the client's response cap: no later attempt fetches it either. */
    int too_big = resp->transport_error && strcmp(resp->transport_error, "response too large") == 0;
    finish(f, resp->status == 404 || resp->status == 410 ? DB_ENOTFOUND
              : too_big                                   ? DB_ETOOBIG
                                                          : DB_EAGAIN,
           NULL, 0, NULL, why);
}

static int download(struct db_media_fetch *f, const struct db_http_req *dl, int guarded)
{
    return db_http_client_send(guarded ? f->svc->payload_http : f->svc->platform_http, dl,
                               f->timeout_ms, download_cb, NULL, f, &f->call);
}

static void lookup_cb(const struct db_http_resp *resp, void *arg)
{
    struct db_media_fetch *f = arg;
    f->call = NULL;
    struct db_http_req dl = {0};
    struct db_err e = {0};
    if (resp->status == 0) {
        finish(f, DB_EAGAIN, NULL, 0, NULL, "media lookup failed");
        return;
    }
    int rc = f->acct->conn->read_media_lookup(f->acct->state, resp, &dl, &e);
    if (rc == DB_OK) {
        if (download(f, &dl, !db_http_same_host(f->lookup_url, dl.url)) != DB_OK)
            finish(f, DB_ENOTFOUND, NULL, 0, NULL, "unusable download location");
    } else if (rc == DB_ENOTFOUND || resp->status == 404 || resp->status == 400) {
        finish(f, DB_ENOTFOUND, NULL, 0, NULL, "the platform has no such media");
    } else {
        finish(f, DB_EAGAIN, NULL, 0, NULL, "media lookup refused");
    }
    db_http_req_clear(&dl);
}

int db_media_fetch(struct db_services *svc, const struct db_account *acct,
                   const char *media_id, const char *media_url, long timeout_ms,
                   db_media_fetch_fn cb, void *arg, struct db_media_fetch **out)
{
    if (out) *out = NULL;
    struct db_media_fetch *f = calloc(1, sizeof *f);
    if (!f) return DB_ENOMEM;
    f->svc = svc;
    f->acct = acct;
    f->cb = cb;
    f->arg = arg;
    f->timeout_ms = timeout_ms;
    struct db_http_req req = {0};
    struct db_err e = {0};
    int rc;
    /* A platform without a media lookup (Viber) names its files by URL; its events' media
     * id (the message token) only keys the media store's records. */
    if (media_id && (acct->conn->build_media_lookup || !media_url)) {
        rc = db_conn_build_media_lookup(acct->conn, acct->state, media_id, &req, &e);
        if (rc == DB_EUNSUPPORTED) {
            free(f);
            return DB_EINVAL;
        }
        if (rc == DB_OK && !acct->conn->read_media_lookup) {
            rc = download(f, &req, 0);
        } else if (rc == DB_OK) {
            f->lookup_url = strdup(req.url);
            rc = f->lookup_url ? db_http_client_send(svc->platform_http, &req, timeout_ms,
                                                     lookup_cb, NULL, f, &f->call)
                               : DB_ENOMEM;
        }
    } else if (media_url) {
        /* A URL from the event is what a webhook named (Viber's files): fetched only through
         * the SSRF guard, whatever host it names, as GET /v1/media and the media store fetch
         * it (media.c).  Being on the account's API host proves nothing: that host is the
         * operator's, the URL is not. */
        req.method = strdup("GET");
        req.url = strdup(media_url);
        rc = req.method && req.url ? download(f, &req, 1) : DB_ENOMEM;
    } else {
        rc = DB_EINVAL;
    }
    db_http_req_clear(&req);
    if (rc != DB_OK) {
        free(f->lookup_url);
        free(f);
        return rc == DB_ENOMEM ? DB_ENOMEM : DB_EINVAL;
    }
    if (out) *out = f;
    return DB_OK;
}

void db_media_fetch_cancel(struct db_media_fetch *f)
{
    if (f && f->call) db_http_call_cancel(f->call);
}
