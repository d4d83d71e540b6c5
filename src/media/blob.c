/* blob.c - the media store's two backends behind one interface (blob.h).  The local one does
 * plain file I/O on the event loop thread: files are at most max_bytes (25 MiB by default)
 * and written once, so a deferred callback keeps the interface the same as the S3 one's
 * without a thread pool. */
#include "media/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/http_client.h"
#include "util/crypto.h"

struct db_blob {
    struct event_base *base;
    char *dir;                   /* local backend */
    char *s3_base;               /* "<endpoint>/<bucket>", S3 backend */
    struct db_http_client *http; /* signed with the bucket's keys */
    size_t max_bytes;
    long timeout_ms;
    struct op *ops;              /* deferred local results and S3 calls in flight */
};

enum op_kind { OP_PUT, OP_GET, OP_DELETE };

struct op {
    struct db_blob *b;
    enum op_kind kind;
    db_blob_done_fn done;
    db_blob_get_fn got;
    void *arg;
    int status;
    char why[160];
    char *data; /* local get: what was read */
    size_t len;
    struct event *ev;           /* local: the deferred callback */
    struct db_http_call *call;  /* S3: in flight */
    struct op *prev, *next;
};

static struct op *op_new(struct db_blob *b, enum op_kind kind, db_blob_done_fn done,
                         db_blob_get_fn got, void *arg)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->b = b;
    o->kind = kind;
    o->done = done;
    o->got = got;
    o->arg = arg;
    o->next = b->ops;
    if (o->next) o->next->prev = o;
    b->ops = o;
    return o;
}

static void op_unlink_free(struct op *o)
{
    if (o->prev) o->prev->next = o->next;
    else if (o->b) o->b->ops = o->next;
    if (o->next) o->next->prev = o->prev;
    if (o->ev) event_free(o->ev);
    free(o->data);
    free(o);
}

static void op_finish(struct op *o)
{
    if (o->kind == OP_GET) {
        if (o->got) o->got(o->status, o->why, o->status == DB_OK ? o->data : NULL,
                           o->status == DB_OK ? o->len : 0, o->arg);
    } else if (o->done) {
        o->done(o->status, o->why, o->arg);
    }
    op_unlink_free(o);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    op_finish(arg);
}

/* Hands a local result to the loop; when even that fails the callback runs now (only out of
 * memory gets here). */
static void defer(struct op *o)
{
    o->ev = evtimer_new(o->b->base, deferred_cb, o);
    struct timeval now = {0, 0};
    if (!o->ev || evtimer_add(o->ev, &now) != 0) op_finish(o);
}

/* Fails a call that could not even get an op. */
static void fail_now(db_blob_done_fn done, db_blob_get_fn got, void *arg)
{
    if (got) got(DB_EAGAIN, "out of memory", NULL, 0, arg);
    else if (done) done(DB_EAGAIN, "out of memory", arg);
}

int db_blob_key_ok(const char *key)
{
    if (!key || !*key || key[0] == '/' || strlen(key) > 512) return 0;
    const char *p = key;
    while (*p) {
        size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.");
        if (n == 0) return 0;
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        p += n;
        if (*p == '/') {
            p++;
            if (!*p) return 0;
        } else if (*p) {
            return 0;
        }
    }
    return 1;
}

/* mkdir -p of the directories of path (not the last part). */
static int make_parents(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int rc = mkdir(path, 0750);
        *s = '/';
        if (rc != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

static char *local_path(const struct db_blob *b, const char *key)
{
    size_t n = strlen(b->dir) + strlen(key) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", b->dir, key);
    return p;
}

static void local_put(struct op *o, const char *key, const void *data, size_t len)
{
    char *path = local_path(o->b, key), *tmp = NULL;
    int fd = -1;
    o->status = DB_EAGAIN;
    if (!path || asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0) {
        tmp = NULL;
        snprintf(o->why, sizeof o->why, "out of memory");
        goto out;
    }
    if (make_parents(path) != 0 || (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640)) < 0) {
        snprintf(o->why, sizeof o->why, "cannot create the file: %s", strerror(errno));
        goto out;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(o->why, sizeof o->why, "write failed: %s", strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    /* On disk before it is named: a crash leaves a temporary file, never a short one. */
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        snprintf(o->why, sizeof o->why, "fsync failed: %s", strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(o->why, sizeof o->why, "rename failed: %s", strerror(errno));
        goto out;
    }
    o->status = DB_OK;
out:
    if (fd >= 0) close(fd);
    if (o->status != DB_OK && tmp) unlink(tmp);
    free(tmp);
    free(path);
    defer(o);
}

static void local_get(struct op *o, const char *key, size_t off, size_t len)
{
    char *path = local_path(o->b, key);
    int fd = path ? open(path, O_RDONLY) : -1;
    o->status = DB_EAGAIN;
    if (fd < 0) {
        o->status = path && errno == ENOENT ? DB_ENOTFOUND : DB_EAGAIN;
        snprintf(o->why, sizeof o->why, "%s", path ? strerror(errno) : "out of memory");
        goto out;
    }
    if (!(o->data = malloc(len ? len : 1))) {
        snprintf(o->why, sizeof o->why, "out of memory");
        goto out;
    }
    while (o->len < len) {
        ssize_t r = pread(fd, o->data + o->len, len - o->len, (off_t)(off + o->len));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        o->len += (size_t)r;
    }
    if (o->len != len) snprintf(o->why, sizeof o->why, "file shorter than its record");
    else o->status = DB_OK;
out:
    if (fd >= 0) close(fd);
    free(path);
    defer(o);
}

static void local_delete(struct op *o, const char *key)
{
    char *path = local_path(o->b, key);
    o->status = DB_OK;
    if (!path || (unlink(path) != 0 && errno != ENOENT)) {
        o->status = DB_EAGAIN;
        snprintf(o->why, sizeof o->why, "%s", path ? strerror(errno) : "out of memory");
    }
    free(path);
    defer(o);
}

/* ---- S3 ---- */

static void s3_done(const struct db_http_resp *resp, void *arg)
{
    struct op *o = arg;
    o->call = NULL;
    long st = resp->status;
    if (st == 0) {
        o->status = DB_EAGAIN;
        snprintf(o->why, sizeof o->why, "store unreachable: %s",
                 resp->transport_error ? resp->transport_error : "no answer");
    } else if (st >= 200 && st < 300) {
        o->status = DB_OK;
        if (o->kind == OP_GET) {
            o->data = malloc(resp->body_len ? resp->body_len : 1);
            if (!o->data) {
                o->status = DB_EAGAIN;
                snprintf(o->why, sizeof o->why, "out of memory");
            } else {
                if (resp->body_len) memcpy(o->data, resp->body, resp->body_len);
                o->len = resp->body_len;
            }
        }
    } else if (st == 404) {
        /* S3 answers a DELETE of a missing key 204; a 404 there is the bucket's. */
        o->status = o->kind == OP_DELETE ? DB_EREJECTED : DB_ENOTFOUND;
        snprintf(o->why, sizeof o->why, "store answered HTTP 404");
    } else {
        o->status = st >= 500 || st == 429 ? DB_EAGAIN : DB_EREJECTED;
        snprintf(o->why, sizeof o->why, "store answered HTTP %ld", st);
    }
    op_finish(o);
}

static void s3_request(struct op *o, const char *method, const char *key, const void *body,
                       size_t len, const char *ctype, size_t off, size_t get_len)
{
    struct db_blob *b = o->b;
    struct db_http_req req = {0};
    char sha[65], range[64];
    o->status = DB_EAGAIN;
    /* The payload hash is a signed header S3 requires; libcurl signs but does not add it. */
    int bad = db_sha256_hex(body ? body : "", body ? len : 0, sha) != 0;
    bad = bad || asprintf(&req.url, "%s/%s", b->s3_base, key) < 0;
    if (bad) req.url = NULL;
    bad = bad || !(req.method = strdup(method));
    bad = bad || db_headers_add(&req.headers, "x-amz-content-sha256", sha) != DB_OK;
    if (!bad && ctype) bad = db_headers_add(&req.headers, "Content-Type", ctype) != DB_OK;
    if (!bad && get_len) {
        snprintf(range, sizeof range, "bytes=%zu-%zu", off, off + get_len - 1);
        bad = db_headers_add(&req.headers, "Range", range) != DB_OK;
    }
    if (!bad && body) {
        if (!(req.body = malloc(len ? len : 1))) bad = 1;
        else if (len) memcpy(req.body, body, len);
        req.body_len = len;
    }
    if (bad || db_http_client_send(b->http, &req, b->timeout_ms, s3_done, NULL, o, &o->call) !=
                   DB_OK) {
        snprintf(o->why, sizeof o->why, "request not started");
        defer(o);
    }
    db_http_req_clear(&req);
}

/* ---- interface ---- */

void db_blob_put(struct db_blob *b, const char *key, const void *data, size_t len,
                 const char *ctype, db_blob_done_fn cb, void *arg)
{
    struct op *o = op_new(b, OP_PUT, cb, NULL, arg);
    if (!o) {
        fail_now(cb, NULL, arg);
        return;
    }
    if (!db_blob_key_ok(key)) {
        o->status = DB_EREJECTED;
        snprintf(o->why, sizeof o->why, "unusable key");
        defer(o);
        return;
    }
    if (b->http) s3_request(o, "PUT", key, data, len, ctype, 0, 0);
    else local_put(o, key, data, len);
}

void db_blob_get(struct db_blob *b, const char *key, size_t off, size_t len, db_blob_get_fn cb,
                 void *arg)
{
    struct op *o = op_new(b, OP_GET, NULL, cb, arg);
    if (!o) {
        fail_now(NULL, cb, arg);
        return;
    }
    if (!db_blob_key_ok(key) || len > b->max_bytes) {
        o->status = DB_EREJECTED;
        snprintf(o->why, sizeof o->why, "unusable key or length");
        defer(o);
        return;
    }
    if (len == 0) {
        o->status = DB_OK;
        defer(o);
        return;
    }
    if (b->http) s3_request(o, "GET", key, NULL, 0, NULL, off, len);
    else local_get(o, key, off, len);
}

void db_blob_delete(struct db_blob *b, const char *key, db_blob_done_fn cb, void *arg)
{
    struct op *o = op_new(b, OP_DELETE, cb, NULL, arg);
    if (!o) {
        fail_now(cb, NULL, arg);
        return;
    }
    if (!db_blob_key_ok(key)) {
        o->status = DB_EREJECTED;
        snprintf(o->why, sizeof o->why, "unusable key");
        defer(o);
        return;
    }
    if (b->http) s3_request(o, "DELETE", key, NULL, 0, NULL, 0, 0);
    else local_delete(o, key);
}

const char *db_blob_backend(const struct db_blob *b)
{
    return b->http ? "s3" : "local";
}

int db_blob_new(struct event_base *base, const struct db_blob_opts *o, struct db_blob **out,
                struct db_err *e)
{
    *out = NULL;
    struct db_blob *b = calloc(1, sizeof *b);
    if (!b) return db_err_set(e, DB_ENOMEM, "out of memory");
    b->base = base;
    b->max_bytes = o->max_bytes ? o->max_bytes : (size_t)25 << 20;
    b->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
    if (o->s3_endpoint && *o->s3_endpoint) {
        if (!o->s3_bucket || !o->s3_region || !o->s3_access_key || !o->s3_secret_key) {
            free(b);
            return db_err_set(e, DB_ECONFIG, "an S3 store needs bucket, region and both keys");
        }
        char *sig = NULL, *userpwd = NULL;
        int bad = asprintf(&sig, "aws:amz:%s:s3", o->s3_region) < 0;
        if (bad) sig = NULL;
        if (!bad && asprintf(&userpwd, "%s:%s", o->s3_access_key, o->s3_secret_key) < 0) {
            userpwd = NULL;
            bad = 1;
        }
        if (!bad && asprintf(&b->s3_base, "%s/%s", o->s3_endpoint, o->s3_bucket) < 0) {
            b->s3_base = NULL;
            bad = 1;
        }
        /* The operator configured this endpoint (a MinIO or s3rver on the private network is
         * normal), so no SSRF guard; the body cap is the largest file plus room. */
        struct db_http_client_opts ho = {.timeout_ms = b->timeout_ms,
                                         .max_response_bytes = b->max_bytes + 4096,
                                         .max_connections = 32, .max_per_host = 16,
                                         .aws_sigv4 = sig, .userpwd = userpwd};
        if (!bad) b->http = db_http_client_new(base, &ho);
        free(sig);
        if (userpwd) db_wipe_str(userpwd);
        free(userpwd);
        if (!b->http) {
            db_blob_free(b);
            return db_err_set(e, DB_ENOMEM, "out of memory");
        }
    } else {
        const char *dir = o->dir && *o->dir ? o->dir : "var/media";
        b->dir = strdup(dir);
        if (!b->dir) {
            free(b);
            return db_err_set(e, DB_ENOMEM, "out of memory");
        }
        char *probe = NULL;
        if (asprintf(&probe, "%s/x", b->dir) < 0) probe = NULL;
        int rc = probe ? make_parents(probe) : -1;
        free(probe);
        if (rc != 0 || access(b->dir, W_OK) != 0) {
            int err = errno;
            db_blob_free(b);
            return db_err_set(e, DB_ECONFIG, "media store directory %s: %s", dir, strerror(err));
        }
    }
    *out = b;
    return DB_OK;
}

void db_blob_free(struct db_blob *b)
{
    if (!b) return;
    /* Results still due are told the store went away; S3 calls are cancelled, which runs
     * their done callback (s3_done) with a transport error. */
    while (b->ops) {
        struct op *o = b->ops;
        if (o->call) {
            db_http_call_cancel(o->call);
            continue;
        }
        o->status = DB_EAGAIN;
        snprintf(o->why, sizeof o->why, "store closed");
        op_finish(o);
    }
    db_http_client_free(b->http);
    free(b->dir);
    free(b->s3_base);
    free(b);
}
