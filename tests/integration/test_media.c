/* End to end: media download through the real daemon.  WhatsApp resolves ids at the fake
 * Graph API and downloads from a small file server in this test (the fake answers every body
 * as JSON text, while a file needs its own Content-Type and binary bytes); Telegram's Bot API
 * and file tree are both served by that file server, since they share one base URL. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>

#include "daemon.h"
#include "util/crypto.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"

#define TG_TOKEN "7000000002:AAmediaTokenDoNotLog_abcdefghijkl"
#define TG_SECRET "media-hook-secret"
#define WA_TOKEN "EAAGmediaTokenDoNotLog0123456789"
#define WA_SECRET "wa-app-secret-media"
#define WA_PNID "106540352242922"
#define API_TOKEN "api-token-media-0123456789"
#define VB_ACCOUNT "mediashop"
#define VB_TOKEN "4453b6ac12345678-e02c5f12174805f9-9b7f2e0c8a1d3f4c"

#define FILE_BYTES (300 * 1024)
#define SLOW_BYTES (64 * 1024 * 1024)

/* ---- the file server ---- */

struct seen {
    char method[8];
    char path[256];
    char auth[160];
};

struct files {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    struct seen seen[128];
    size_t n_seen;
    size_t slow_sent;  /* bytes of /slow/ written before the reader went away */
    int slow_aborted;  /* a write of /slow/ failed: the gateway closed the download */
};

static unsigned char pattern_byte(size_t i)
{
    /* Every byte value, NULs and CR/LF included, in a sequence that does not repeat with a
     * short period: a dropped, doubled or reordered chunk shows. */
    return (unsigned char)((i * 7u) ^ (i >> 9));
}

static int send_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

static void answer(int fd, int status, const char *ctype, const void *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, ctype, len);
    if (send_all(fd, head, (size_t)n) == 0 && len) (void)send_all(fd, body, len);
}

static void answer_pattern(int fd, const char *ctype, size_t total, int slow, struct files *s)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", ctype, total);
    if (send_all(fd, head, (size_t)n) != 0) return;
    unsigned char block[16384];
    for (size_t off = 0; off < total && !s->stop;) {
        size_t k = total - off < sizeof block ? total - off : sizeof block;
        for (size_t i = 0; i < k; i++) block[i] = pattern_byte(off + i);
        if (send_all(fd, block, k) != 0) {
            if (slow) {
                pthread_mutex_lock(&s->mu);
                s->slow_aborted = 1;
                s->slow_sent = off;
                pthread_mutex_unlock(&s->mu);
            }
            return;
        }
        off += k;
        if (slow) usleep(5000);
    }
}

static void serve_one(struct files *s, int fd)
{
    char buf[8192];
    size_t got = 0;
    char *end = NULL;
    while (!end && got < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) return;
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) return;
        got += (size_t)r;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end) return;
    struct seen sn = {0};
    sscanf(buf, "%7s %255s", sn.method, sn.path);
    const char *a = strcasestr(buf, "\r\nAuthorization:");
    if (a && a < end) {
        a += strlen("\r\nAuthorization:");
        while (*a == ' ') a++;
        size_t l = strcspn(a, "\r");
        snprintf(sn.auth, sizeof sn.auth, "%.*s", (int)l, a);
    }
    /* the body of a getFile call (the file_id) */
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    char *body = end + 4;
    while ((size_t)(buf + got - body) < want && got < sizeof buf - 1) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = '\0';
    }
    pthread_mutex_lock(&s->mu);
    if (s->n_seen < sizeof s->seen / sizeof s->seen[0]) s->seen[s->n_seen++] = sn;
    pthread_mutex_unlock(&s->mu);

    if (strncmp(sn.path, "/dl/", 4) == 0) {
        answer_pattern(fd, "image/jpeg", FILE_BYTES, 0, s);
    } else if (strncmp(sn.path, "/slow/", 6) == 0) {
        answer_pattern(fd, "video/mp4", SLOW_BYTES, 1, s);
    } else if (strcmp(sn.path, "/bot" TG_TOKEN "/getFile") == 0) {
        if (strstr(body, "BQACAgIAAunknown")) {
            static const char no[] =
                "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: invalid file_id\"}";
            answer(fd, 400, "application/json", no, sizeof no - 1);
        } else if (strstr(body, "BQACAgIAAbroken")) {
            static const char no[] =
                "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}";
            answer(fd, 401, "application/json", no, sizeof no - 1);
        } else {
            static const char ok[] =
                "{\"ok\":true,\"result\":{\"file_id\":\"BQACAgIAAdoc\",\"file_unique_id\":\"AgADdoc\","
                "\"file_size\":307200,\"file_path\":\"documents/file_3.pdf\"}}";
            answer(fd, 200, "application/json", ok, sizeof ok - 1);
        }
    } else if (strcmp(sn.path, "/file/bot" TG_TOKEN "/documents/file_3.pdf") == 0) {
        answer_pattern(fd, "application/pdf", FILE_BYTES, 0, s);
    } else {
        answer(fd, 404, "text/plain", "no", 2);
    }
}

static void *files_main(void *arg)
{
    struct files *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

static struct files *files_start(void)
{
    struct files *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, files_main, s), 0);
    return s;
}

static void files_stop(struct files *s)
{
    if (!s) return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Requests whose path starts with prefix, and the Authorization of the last one into auth. */
static size_t files_count(struct files *s, const char *prefix, char *auth, size_t n)
{
    size_t c = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_seen; i++)
        if (strncmp(s->seen[i].path, prefix, strlen(prefix)) == 0) {
            c++;
            if (auth) snprintf(auth, n, "%s", s->seen[i].auth);
        }
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* ---- the world ---- */

struct world {
    struct db_test_redis *redis;
    struct db_fake *wa;
    struct files *files;
    struct db_test_daemon d;
    char env[14][512];
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN, NULL};

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    W.redis = db_test_redis_start(NULL);
    W.wa = db_fake_start();
    assert_non_null(W.wa);
    W.files = files_start();
    int i = 0;
    snprintf(W.env[i++], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[i++], sizeof W.env[0], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[i++], sizeof W.env[0], "TELEGRAM_BOT_TOKEN=%s", TG_TOKEN);
    /* webhook mode: no long poll against the file server */
    snprintf(W.env[i++], sizeof W.env[0], "TELEGRAM_WEBHOOK_SECRET=%s", TG_SECRET);
    snprintf(W.env[i++], sizeof W.env[0], "TELEGRAM_API_BASE=http://127.0.0.1:%d", W.files->port);
    snprintf(W.env[i++], sizeof W.env[0], "WHATSAPP_ACCESS_TOKEN=%s", WA_TOKEN);
    snprintf(W.env[i++], sizeof W.env[0], "WHATSAPP_APP_SECRET=%s", WA_SECRET);
    snprintf(W.env[i++], sizeof W.env[0], "WHATSAPP_VERIFY_TOKEN=verify-media");
    snprintf(W.env[i++], sizeof W.env[0], "WHATSAPP_PHONE_NUMBER_ID=%s", WA_PNID);
    snprintf(W.env[i++], sizeof W.env[0], "WHATSAPP_API_BASE=%s", db_fake_url(W.wa));
    snprintf(W.env[i++], sizeof W.env[0], "VIBER_ACCOUNT=%s", VB_ACCOUNT);
    snprintf(W.env[i++], sizeof W.env[0], "VIBER_AUTH_TOKEN=%s", VB_TOKEN);
    snprintf(W.env[i++], sizeof W.env[0], "VIBER_API_BASE=%s", db_fake_url(W.wa));
    const char *env[] = {W.env[0], W.env[1], W.env[2],  W.env[3],  W.env[4],  W.env[5], W.env[6],
                         W.env[7], W.env[8], W.env[9], W.env[10], W.env[11], W.env[12], NULL};
    db_test_daemon_start(&W.d, env, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* Telegram's download URL carries the bot token: it must not be logged either. */
    static const char *const never[] = {"AAmediaTokenDoNotLog", "EAAGmediaTokenDoNotLog",
                                        "/file/bot", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    files_stop(W.files);
    db_fake_stop(W.wa);
    db_test_redis_stop(W.redis);
    return 0;
}

static void get_media(const char *path, const char *const *headers, struct db_test_resp *r)
{
    db_test_http(W.d.port, "GET", path, headers, NULL, 0, r);
}

static void assert_pattern(const struct db_test_resp *r, size_t n)
{
    assert_int_equal(r->body_len, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r->body[i] != pattern_byte(i))
            fail_msg("byte %zu differs: got %u want %u", i, (unsigned char)r->body[i],
                     pattern_byte(i));
}

static void assert_json_error(const struct db_test_resp *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    char ct[128];
    assert_non_null(db_test_resp_header(r, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "application/json"));
    if (code) assert_non_null(strstr(r->body, code));
}

static void wa_lookup_rule(const char *id, const char *dl_path)
{
    char path[64], body[512];
    snprintf(path, sizeof path, "/%s", id);
    snprintf(body, sizeof body,
             "{\"messaging_product\":\"whatsapp\",\"url\":\"http://127.0.0.1:%d%s\","
             "\"mime_type\":\"image/jpeg\",\"sha256\":\"abc\",\"file_size\":%d,\"id\":\"%s\"}",
             W.files->port, dl_path, FILE_BYTES, id);
    db_fake_rule(W.wa, "GET", path, -1, 200, body, 0, 0);
}

/* ---- WhatsApp ---- */

static void whatsapp_media_arrives_intact_and_is_resolved_every_time(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    wa_lookup_rule("1111111111", "/dl/abc");
    size_t dl_before = files_count(W.files, "/dl/abc", NULL, 0);
    for (int round = 1; round <= 2; round++) {
        struct db_test_resp r;
        get_media("/v1/media/whatsapp/" WA_PNID "/1111111111", auth, &r);
        assert_int_equal(r.status, 200);
        char ct[128], cc[128];
        assert_non_null(db_test_resp_header(&r, "Content-Type", ct, sizeof ct));
        assert_string_equal(ct, "image/jpeg");
        assert_non_null(db_test_resp_header(&r, "Cache-Control", cc, sizeof cc));
        assert_non_null(strstr(cc, "no-store"));
        assert_pattern(&r, FILE_BYTES);
        db_test_resp_clear(&r);
        /* The download URL expires within minutes: it is looked up again every time. */
        assert_int_equal(db_fake_count(W.wa, "/1111111111"), (size_t)round);
        char a[160];
        assert_int_equal(files_count(W.files, "/dl/abc", a, sizeof a), dl_before + (size_t)round);
        assert_string_equal(a, "Bearer " WA_TOKEN);
    }
    struct db_fake_request req;
    assert_int_equal(db_fake_get(W.wa, 0, &req), 0);
    assert_string_equal(req.method, "GET");
    assert_string_equal(db_headers_get(&req.headers, "Authorization"), "Bearer " WA_TOKEN);
    db_fake_request_clear(&req);
}

static void whatsapp_unknown_media_is_404_and_failures_are_502(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    db_fake_rule(W.wa, "GET", "/2222222222", -1, 404, "{\"error\":{\"message\":\"gone\"}}", 0, 0);
    /* what Graph really answers for an id that does not exist */
    db_fake_rule(W.wa, "GET", "/3333333333", -1, 400,
                 "{\"error\":{\"message\":\"Unsupported get request. Object with ID '3333333333' "
                 "does not exist\",\"type\":\"GraphMethodException\",\"code\":100}}", 0, 0);
    db_fake_rule(W.wa, "GET", "/5555555555", -1, 500, "{\"error\":{\"code\":1}}", 0, 0);
    db_fake_rule(W.wa, "GET", "/6666666666", -1, 200, "{\"messaging_product\":\"whatsapp\"}", 0, 0);
    wa_lookup_rule("7777777777", "/missing/x");
    db_fake_rule(W.wa, "GET", "/8888888888", -1, 401,
                 "{\"error\":{\"message\":\"Invalid OAuth access token\",\"code\":190}}", 0, 0);
    struct db_test_resp r;
    get_media("/v1/media/whatsapp/" WA_PNID "/2222222222", auth, &r);
    assert_json_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media("/v1/media/whatsapp/" WA_PNID "/3333333333", auth, &r);
    assert_json_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media("/v1/media/whatsapp/" WA_PNID "/5555555555", auth, &r);
    assert_json_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);
    get_media("/v1/media/whatsapp/" WA_PNID "/6666666666", auth, &r); /* answer without url */
    assert_json_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);
    get_media("/v1/media/whatsapp/" WA_PNID "/7777777777", auth, &r); /* download 404 */
    assert_json_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media("/v1/media/whatsapp/" WA_PNID "/8888888888", auth, &r); /* our token is bad */
    assert_json_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);

    size_t calls = db_fake_count(W.wa, NULL);
    /* A WhatsApp media id is digits; anything else never reaches Graph. */
    get_media("/v1/media/whatsapp/" WA_PNID "/me", auth, &r);
    assert_json_error(&r, 400, "invalid_media_id");
    db_test_resp_clear(&r);
    get_media("/v1/media/whatsapp/999999/1111111111", auth, &r);
    assert_json_error(&r, 404, "unknown_account");
    db_test_resp_clear(&r);
    get_media("/v1/media/viber/" WA_PNID "/1111111111", auth, &r);
    assert_json_error(&r, 404, NULL);
    db_test_resp_clear(&r);
    assert_int_equal(db_fake_count(W.wa, NULL), calls);
}

static void media_requires_the_api_token(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    wa_lookup_rule("1111111111", "/dl/abc");
    struct db_test_resp r;
    get_media("/v1/media/whatsapp/" WA_PNID "/1111111111", NULL, &r);
    assert_json_error(&r, 401, NULL);
    db_test_resp_clear(&r);
    const char *wrong[] = {"Authorization: Bearer " API_TOKEN "x", NULL};
    get_media("/v1/media/whatsapp/" WA_PNID "/1111111111", wrong, &r);
    assert_json_error(&r, 401, NULL);
    db_test_resp_clear(&r);
    get_media("/v1/media/telegram/7000000002/BQACAgIAAdoc", NULL, &r);
    assert_json_error(&r, 401, NULL);
    db_test_resp_clear(&r);
    assert_int_equal(db_fake_count(W.wa, NULL), 0);
}

/* Reads the head of a media answer, takes a little of the body and hangs up. */
static void hang_up_mid_download(const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    /* a small window so the gateway really has to wait for this reader */
    int rcv = 16384;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.d.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " API_TOKEN "\r\n\r\n", path);
    assert_int_equal(send_all(fd, head, (size_t)n), 0);
    char buf[65536];
    size_t got = 0;
    while (got < 100000) {
        struct pollfd p = {fd, POLLIN, 0};
        assert_true(poll(&p, 1, 10000) > 0);
        ssize_t r = read(fd, buf, sizeof buf);
        assert_true(r > 0);
        if (got == 0) assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
        got += (size_t)r;
    }
    close(fd);
}

static int slow_aborted(void *arg)
{
    struct files *s = arg;
    pthread_mutex_lock(&s->mu);
    int v = s->slow_aborted;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void client_going_away_cancels_the_download(void **state)
{
    (void)state;
    db_fake_reset(W.wa);
    wa_lookup_rule("4444444444", "/slow/big");
    long long t0 = db_test_now_ms();
    hang_up_mid_download("/v1/media/whatsapp/" WA_PNID "/4444444444");
    /* The platform side is closed soon after, long before 64 MiB were fetched. */
    assert_true(db_test_wait(slow_aborted, W.files, 10000));
    long long took = db_test_now_ms() - t0;
    pthread_mutex_lock(&W.files->mu);
    size_t sent = W.files->slow_sent;
    pthread_mutex_unlock(&W.files->mu);
    printf("# download cancelled after %zu of %d bytes, %lld ms\n", sent, SLOW_BYTES, took);
    assert_true(sent < SLOW_BYTES / 2);
    assert_true(db_test_daemon_alive(&W.d));
    /* and the gateway serves the next request normally */
    wa_lookup_rule("1111111111", "/dl/abc");
    struct db_test_resp r;
    get_media("/v1/media/whatsapp/" WA_PNID "/1111111111", auth, &r);
    assert_int_equal(r.status, 200);
    assert_pattern(&r, FILE_BYTES);
    db_test_resp_clear(&r);
}

/* ---- Telegram ---- */

static void telegram_file_arrives_intact_via_getfile(void **state)
{
    (void)state;
    size_t gf = files_count(W.files, "/bot" TG_TOKEN "/getFile", NULL, 0);
    size_t dl = files_count(W.files, "/file/bot" TG_TOKEN "/documents/file_3.pdf", NULL, 0);
    for (int round = 1; round <= 2; round++) {
        struct db_test_resp r;
        get_media("/v1/media/telegram/7000000002/BQACAgIAAdoc", auth, &r);
        assert_int_equal(r.status, 200);
        char ct[128];
        assert_non_null(db_test_resp_header(&r, "Content-Type", ct, sizeof ct));
        assert_string_equal(ct, "application/pdf");
        assert_pattern(&r, FILE_BYTES);
        db_test_resp_clear(&r);
        assert_int_equal(files_count(W.files, "/bot" TG_TOKEN "/getFile", NULL, 0),
                         gf + (size_t)round);
        assert_int_equal(files_count(W.files, "/file/bot" TG_TOKEN "/documents/file_3.pdf", NULL, 0),
                         dl + (size_t)round);
    }
}

static void telegram_unknown_file_is_404(void **state)
{
    (void)state;
    struct db_test_resp r;
    get_media("/v1/media/telegram/7000000002/BQACAgIAAunknown", auth, &r);
    assert_json_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media("/v1/media/telegram/7000000002/BQACAgIAAbroken", auth, &r);
    assert_json_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);
    get_media("/v1/media/telegram/123/BQACAgIAAdoc", auth, &r);
    assert_json_error(&r, 404, "unknown_account");
    db_test_resp_clear(&r);
}

/* ---- the SSRF guard on download URLs ---- */

/* A listener that is never served: connections to it wait in its backlog, where canary_hits
 * counts (and drops) them. */
static int canary_listen(const char *ip, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int canary_hits(int fd)
{
    int n = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        close(c);
        n++;
    }
    return n;
}

static void a_download_url_off_the_api_host_never_gets_a_connection(void **state)
{
    (void)state;
    int port1, port2;
    int c1 = canary_listen("127.0.0.1", &port1), c2 = canary_listen("127.0.0.2", &port2);
    /* What a forged or mistaken Graph answer could name, next to the API base's own
     * 127.0.0.1: a name that resolves to loopback, another loopback address over https and
     * over plain http, and the cloud metadata address. */
    char urls[4][96];
    snprintf(urls[0], sizeof urls[0], "https://localhost:%d/dl/abc", port1);
    snprintf(urls[1], sizeof urls[1], "https://127.0.0.2:%d/dl/abc", port2);
    snprintf(urls[2], sizeof urls[2], "http://127.0.0.2:%d/dl/abc", port2);
    snprintf(urls[3], sizeof urls[3], "https://169.254.169.254/latest/meta-data/");
    db_fake_reset(W.wa);
    for (int i = 0; i < 4; i++) {
        char path[32], body[512];
        snprintf(path, sizeof path, "/90000000%02d", i);
        snprintf(body, sizeof body,
                 "{\"messaging_product\":\"whatsapp\",\"url\":\"%s\",\"mime_type\":"
                 "\"image/jpeg\",\"file_size\":10,\"id\":\"%s\"}",
                 urls[i], path + 1);
        db_fake_rule(W.wa, "GET", path, -1, 200, body, 0, 0);
    }
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/media/whatsapp/" WA_PNID "/90000000%02d", i);
        struct db_test_resp r;
        long long t0 = db_test_now_ms();
        get_media(path, auth, &r);
        assert_json_error(&r, 502, "upstream_error");
        db_test_resp_clear(&r);
        /* refused before a connection is tried, not after a timeout */
        assert_true(db_test_now_ms() - t0 < 2000);
    }
    assert_int_equal(db_fake_count(W.wa, NULL), 4); /* every lookup was made */
    assert_int_equal(canary_hits(c1), 0);
    assert_int_equal(canary_hits(c2), 0);
    assert_true(db_test_daemon_log_count(&W.d, "address not allowed") >= 3);
    assert_true(db_test_daemon_log_count(&W.d, "only public https URLs are fetched") >= 1);
    close(c1);
    close(c2);
}

/* ---- Viber: files named by URL in the webhook ---- */

static int post_viber(const char *body)
{
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(VB_TOKEN, strlen(VB_TOKEN), body, strlen(body), mac);
    db_hex_encode(mac, sizeof mac, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/viber/" VB_ACCOUNT, headers, body, strlen(body),
                 &r);
    int status = r.status;
    db_test_resp_clear(&r);
    return status;
}

/* GET /v1/media/viber/... fetches only the URL a webhook named for that id (recorded by the
 * store), and that URL only through the SSRF guard: a webhook naming a loopback address
 * gets no connection to it; an id no webhook named is 404, whatever it looks like. */
static void viber_media_is_fetched_only_from_the_url_the_webhook_named(void **state)
{
    (void)state;
    int port;
    int canary = canary_listen("127.0.0.2", &port);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"event\":\"message\",\"timestamp\":1795365000123,\"message_token\":"
             "5491234567890123999,\"sender\":{\"id\":\"01234567890A==\",\"name\":\"John\"},"
             "\"message\":{\"type\":\"picture\",\"text\":\"receipt\",\"media\":"
             "\"https://127.0.0.2:%d/5/share/pic.jpg\",\"size\":1234}}", port);
    assert_int_equal(post_viber(body), 200);

    redisReply *rr = redisCommand(db_test_redis_ctx(W.redis),
                                  "GET deskbridge:mediaurl:viber:" VB_ACCOUNT
                                  ":5491234567890123999");
    assert_non_null(rr);
    assert_int_equal(rr->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(rr->str, "/5/share/pic.jpg"));
    freeReplyObject(rr);
    rr = redisCommand(db_test_redis_ctx(W.redis), "TTL deskbridge:mediaurl:viber:" VB_ACCOUNT
                                                  ":5491234567890123999");
    assert_true(rr->integer > 0); /* kept no longer than the dedupe window */
    freeReplyObject(rr);

    struct db_test_resp r;
    long long t0 = db_test_now_ms();
    get_media("/v1/media/viber/" VB_ACCOUNT "/5491234567890123999", auth, &r);
    assert_json_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);
    assert_true(db_test_now_ms() - t0 < 2000);
    assert_int_equal(canary_hits(canary), 0);

    /* Ids no webhook named: a token never seen and a URL given as the id. */
    get_media("/v1/media/viber/" VB_ACCOUNT "/5491234567890000000", auth, &r);
    assert_json_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media("/v1/media/viber/" VB_ACCOUNT "/https%3A%2F%2Fdl-media.viber.com%2Fx.jpg", auth, &r);
    assert_json_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media("/v1/media/viber/nosuchaccount/5491234567890123999", auth, &r);
    assert_json_error(&r, 404, "unknown_account");
    db_test_resp_clear(&r);
    get_media("/v1/media/viber/" VB_ACCOUNT "/5491234567890123999", NULL, &r);
    assert_int_equal(r.status, 401);
    db_test_resp_clear(&r);
    assert_int_equal(canary_hits(canary), 0);
    close(canary);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whatsapp_media_arrives_intact_and_is_resolved_every_time),
        cmocka_unit_test(whatsapp_unknown_media_is_404_and_failures_are_502),
        cmocka_unit_test(media_requires_the_api_token),
        cmocka_unit_test(telegram_file_arrives_intact_via_getfile),
        cmocka_unit_test(telegram_unknown_file_is_404),
        cmocka_unit_test(client_going_away_cancels_the_download),
        cmocka_unit_test(a_download_url_off_the_api_host_never_gets_a_connection),
        cmocka_unit_test(viber_media_is_fetched_only_from_the_url_the_webhook_named),
    };
    return cmocka_run_group_tests_name("media", tests, setup, teardown);
}
