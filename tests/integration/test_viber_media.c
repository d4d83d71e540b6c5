/* Viber media end to end, through the real parts: the deskbridge binary, a real redis-server,
 * Viber webhooks signed as Viber signs them (tests/fixtures/viber shapes), and a file host on
 * 127.0.0.1 (tests/support/file_server.h) standing in for Viber's media servers.
 *
 * The URL of a Viber file comes from the webhook, so the gateway fetches it only through the
 * SSRF-guarded client, which refuses loopback.  DESKBRIDGE_TEST_ALLOW_FETCH names the file
 * host's one address and port as the guard's only exception (docs/media.md); the first group
 * runs without it and shows the guard refusing that very host.  Then: GET /v1/media/viber/...
 * relays the file; with [media_store] the file is fetched after its webhook, sniffed, stored,
 * announced on P:media with key, size and SHA-256, and served from the store with ranges;
 * a file that is gone, too big or breaks off is recorded lost and nothing of it is stored. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "api_client.h"
#include "daemon.h"
#include "fake_platform.h"
#include "file_server.h"
#include "redis_fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define ACCOUNT "vbmedia"
#define TOKEN "5e0f1a2b3c4d-vbMediaDoNotLog-9a8b7c6d5e4f3a2b"
#define API_TOKEN "api-token-viber-media-0123456789"
#define MAX_BYTES 65536

struct world {
    struct db_test_redis *redis;
    struct db_fake *vb;     /* Viber's REST API (not asked for media: Viber has no lookup) */
    struct db_files *files; /* Viber's media servers */
    struct db_test_daemon d;
    char dir[200];          /* scratch: config file and the local store */
    char env[6][512];
    char *png, *pdf, *mp4, *big;
    size_t png_len, pdf_len, mp4_len, big_len;
};

static struct world W;

static const char *auth[] = {"Authorization: Bearer " API_TOKEN, NULL};

/* ---- the files ---- */

/* A PDF as written by hand: enough structure for a reader, "%PDF-" for the sniffer. */
static const char pdf_text[] =
    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

/* An MP4 head (ftyp isom) and an mdat of n - 24 bytes with every byte value, NULs included. */
static char *make_mp4(size_t n)
{
    static const unsigned char ftyp[24] = {0, 0, 0, 24, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm',
                                           0, 0, 2, 0,  'i', 's', 'o', 'm', 'm', 'p', '4', '1'};
    char *b = malloc(n);
    assert_non_null(b);
    memcpy(b, ftyp, sizeof ftyp);
    for (size_t i = sizeof ftyp; i < n; i++) b[i] = (char)((i * 7u) ^ (i >> 9));
    return b;
}

static char *make_files(void)
{
    /* A real PNG (the console's screenshot): its own bytes, served as they are. */
    W.png = db_test_read_file("docs/console.png", &W.png_len);
    W.pdf = strdup(pdf_text);
    W.pdf_len = sizeof pdf_text - 1;
    W.mp4_len = 50000;
    W.mp4 = make_mp4(W.mp4_len);
    /* Larger than the store's max_bytes: a JPEG head and filler. */
    W.big_len = MAX_BYTES + 4096;
    W.big = malloc(W.big_len);
    assert_non_null(W.big);
    memset(W.big, 'x', W.big_len);
    memcpy(W.big, "\xFF\xD8\xFF\xE0", 4);
    return W.png;
}

/* http://127.0.0.1:<file host>/<path> */
static void file_url(char *out, size_t n, const char *path)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", db_files_port(W.files), path);
}

/* ---- the world ---- */

static void world_start(int allow, int store)
{
    signal(SIGPIPE, SIG_IGN);
    memset(&W, 0, sizeof W);
    snprintf(W.dir, sizeof W.dir, "/tmp/deskbridge-vbmedia-XXXXXX");
    assert_non_null(mkdtemp(W.dir));
    W.redis = db_test_redis_start(NULL);
    W.vb = db_fake_start();
    W.files = db_files_start();
    assert_non_null(W.redis);
    assert_non_null(W.vb);
    db_fake_default(W.vb, 200, "{\"status\":0,\"status_message\":\"ok\"}");
    make_files();
    int i = 0;
    snprintf(W.env[i++], sizeof W.env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
    snprintf(W.env[i++], sizeof W.env[0], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(W.env[i++], sizeof W.env[0], "VIBER_ACCOUNT=%s", ACCOUNT);
    snprintf(W.env[i++], sizeof W.env[0], "VIBER_AUTH_TOKEN=%s", TOKEN);
    snprintf(W.env[i++], sizeof W.env[0], "VIBER_API_BASE=%s", db_fake_url(W.vb));
    if (allow)
        snprintf(W.env[i++], sizeof W.env[0], "DESKBRIDGE_TEST_ALLOW_FETCH=127.0.0.1:%d",
                 db_files_port(W.files));
    const char *env[] = {W.env[0], W.env[1], W.env[2], W.env[3], W.env[4],
                         allow ? W.env[5] : NULL, NULL};
    char conf[300];
    snprintf(conf, sizeof conf, "%s/gateway.conf", W.dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    if (store)
        fprintf(f, "[media_store]\ndir = %s/files\nmax_bytes = %d\nmax_deliveries = 3\n"
                   "retry_base_ms = 100\nretry_max_ms = 200\n", W.dir, MAX_BYTES);
    fclose(f);
    const char *args[] = {"--config", conf, NULL};
    db_test_daemon_start(&W.d, env, args, 0);
    /* The exception is announced, loudly, or not at all. */
    assert_int_equal(db_test_daemon_log_count(&W.d, "DESKBRIDGE_TEST_ALLOW_FETCH") > 0, allow);
}

static int setup_plain(void **state)
{
    (void)state;
    world_start(0, 0);
    return 0;
}

static int setup_relay(void **state)
{
    (void)state;
    world_start(1, 0);
    return 0;
}

static int setup_store(void **state)
{
    (void)state;
    world_start(1, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const never[] = {"vbMediaDoNotLog", NULL};
    db_test_daemon_stop_clean(&W.d, never);
    db_files_stop(W.files);
    db_fake_stop(W.vb);
    db_test_redis_stop(W.redis);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", W.dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", W.dir);
    free(W.png);
    free(W.pdf);
    free(W.mp4);
    free(W.big);
    return 0;
}

/* ---- Viber's side ---- */

/* POSTs the fixture tests/fixtures/viber/<fixture>.json as Viber would send it for a file at
 * url: message_token token, message.media url, message.size the file's size and, when not
 * NULL, message.file_name.  Signed with the auth token; returns the HTTP status. */
static int post_viber(const char *fixture, long long token, const char *url, size_t size,
                      const char *file_name)
{
    char path[300];
    snprintf(path, sizeof path, "%s/tests/fixtures/viber/%s.json", DB_SOURCE_DIR, fixture);
    json_error_t err;
    json_t *cb = json_load_file(path, 0, &err);
    assert_non_null(cb);
    json_t *m = json_object_get(cb, "message");
    assert_non_null(m);
    json_object_set_new(cb, "message_token", json_integer(token));
    json_object_set_new(m, "media", json_string(url));
    json_object_set_new(m, "size", json_integer((json_int_t)size));
    if (file_name) json_object_set_new(m, "file_name", json_string(file_name));
    char *body = json_dumps(cb, JSON_COMPACT);
    json_decref(cb);
    assert_non_null(body);
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(TOKEN, strlen(TOKEN), body, strlen(body), mac);
    db_hex_encode(mac, sizeof mac, hex);
    snprintf(h, sizeof h, "X-Viber-Content-Signature: %s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(W.d.port, "POST", "/webhooks/viber/" ACCOUNT, headers, body, strlen(body), &r);
    free(body);
    int status = r.status;
    db_test_resp_clear(&r);
    return status;
}

static void get_media(long long token, const char *range, struct db_test_resp *r)
{
    char path[160], rh[96];
    snprintf(path, sizeof path, "/v1/media/viber/" ACCOUNT "/%lld", token);
    snprintf(rh, sizeof rh, "Range: %s", range ? range : "");
    const char *h[] = {auth[0], range ? rh : NULL, NULL};
    db_test_http(W.d.port, "GET", path, h, NULL, 0, r);
}

static void header_is(const struct db_test_resp *r, const char *name, const char *want)
{
    char v[256];
    if (!db_test_resp_header(r, name, v, sizeof v)) fail_msg("no %s header", name);
    if (strcmp(v, want) != 0) fail_msg("%s: got '%s' want '%s'", name, v, want);
}

static void assert_error(const struct db_test_resp *r, int status, const char *code)
{
    if (r->status != status) fail_msg("status %d, want %d: %s", r->status, status, r->body);
    header_is(r, "Content-Type", "application/json");
    assert_non_null(strstr(r->body, code));
}

/* ---- the guard without the variable ---- */

/* The file host the later groups reach is refused like any loopback address while
 * DESKBRIDGE_TEST_ALLOW_FETCH is unset: over http (https only) and over https (the address),
 * and not one request reaches it. */
static void without_the_variable_the_guard_refuses_the_file_host(void **state)
{
    (void)state;
    db_files_put(W.files, "/5/share/pic.png", 200, "image/png", W.png, W.png_len, (size_t)-1);
    char url[128];
    file_url(url, sizeof url, "/5/share/pic.png");
    assert_int_equal(post_viber("message_picture", 5491000000000000001LL, url, W.png_len, NULL),
                     200);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/5/share/pic.png", db_files_port(W.files));
    assert_int_equal(post_viber("message_picture", 5491000000000000002LL, url, W.png_len, NULL),
                     200);
    struct db_test_resp r;
    get_media(5491000000000000001LL, NULL, &r);
    assert_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);
    get_media(5491000000000000002LL, NULL, &r);
    assert_error(&r, 502, "upstream_error");
    db_test_resp_clear(&r);
    assert_int_equal(db_files_count(W.files, NULL), 0);
    assert_true(db_test_daemon_log_count(&W.d, "only public https URLs are fetched") >= 1);
    assert_true(db_test_daemon_log_count(&W.d, "address not allowed") >= 1);
}

/* A value that is not one loopback address and port stops the start: the exception cannot
 * be widened to a network, a name or the metadata address by a mistyped deployment. */
static void a_wider_exception_stops_the_start(void **state)
{
    (void)state;
    static const char *const bad[] = {"10.0.0.1:80", "169.254.169.254:80", "localhost:8080",
                                      "127.0.0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char redis[600], allow[128], listen[64];
        snprintf(redis, sizeof redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(W.redis));
        snprintf(allow, sizeof allow, "DESKBRIDGE_TEST_ALLOW_FETCH=%s", bad[i]);
        snprintf(listen, sizeof listen, "DESKBRIDGE_LISTEN=127.0.0.1:%d", db_test_free_port());
        char *const envp[] = {redis, "DESKBRIDGE_API_TOKEN=" API_TOKEN, listen, allow, NULL};
        char *const argv[] = {DB_DAEMON_PATH, NULL};
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(fds[1], 2);
            close(fds[0]);
            execve(DB_DAEMON_PATH, argv, envp);
            _exit(127);
        }
        close(fds[1]);
        /* Its stderr up to the end: the end comes only when it exits. */
        char out[2048] = "";
        size_t got = 0;
        int ended = 0;
        struct pollfd p = {fds[0], POLLIN, 0};
        while (!ended && poll(&p, 1, 10000) > 0) {
            char buf[512];
            ssize_t n = read(fds[0], buf, sizeof buf);
            if (n <= 0) ended = 1;
            for (ssize_t k = 0; k < n && got < sizeof out - 1; k++) out[got++] = buf[k];
        }
        out[got] = '\0';
        close(fds[0]);
        int st = 0;
        if (!ended) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("the daemon started with DESKBRIDGE_TEST_ALLOW_FETCH=%s", bad[i]);
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
        assert_null(strstr(out, "Sanitizer"));
        if (!strstr(out, "DESKBRIDGE_TEST_ALLOW_FETCH: must be a loopback address"))
            fail_msg("%s: no clear error: %s", bad[i], out);
    }
}

/* ---- relayed from the file host ---- */

static void the_file_the_webhook_named_is_relayed_intact(void **state)
{
    (void)state;
    db_files_put(W.files, "/5/share/pic.png", 200, "image/png", W.png, W.png_len, (size_t)-1);
    char url[128];
    file_url(url, sizeof url, "/5/share/pic.png");
    assert_int_equal(post_viber("message_picture", 5491000000000000011LL, url, W.png_len, NULL),
                     200);
    for (size_t round = 1; round <= 2; round++) {
        struct db_test_resp r;
        get_media(5491000000000000011LL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, W.png_len);
        assert_memory_equal(r.body, W.png, W.png_len);
        header_is(&r, "Content-Type", "image/png");
        header_is(&r, "X-Content-Type-Options", "nosniff");
        header_is(&r, "Cache-Control", "private, no-store");
        db_test_resp_clear(&r);
        /* No store: every request is a fresh download. */
        assert_int_equal(db_files_count(W.files, "/5/share/pic.png"), round);
    }
}

static void a_file_the_host_no_longer_has_is_not_found(void **state)
{
    (void)state;
    char url[128];
    file_url(url, sizeof url, "/5/share/gone.jpg");
    assert_int_equal(post_viber("message_picture", 5491000000000000012LL, url, 1234, NULL), 200);
    struct db_test_resp r;
    get_media(5491000000000000012LL, NULL, &r);
    assert_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    assert_int_equal(db_files_count(W.files, "/5/share/gone.jpg"), 1);
}

/* A listener that is never served; canary_hits counts (and drops) what reached it. */
static int canary_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_true(fd >= 0);
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

/* With the variable set, 127.0.0.1 on another port, the file host under a name or on
 * another loopback address are refused as before, before any connection. */
static void the_exception_is_one_address_and_port(void **state)
{
    (void)state;
    int cport;
    int canary = canary_listen(&cport);
    char urls[5][128];
    snprintf(urls[0], sizeof urls[0], "http://127.0.0.1:%d/5/share/pic.png", cport);
    snprintf(urls[1], sizeof urls[1], "https://127.0.0.1:%d/5/share/pic.png", cport);
    snprintf(urls[2], sizeof urls[2], "http://localhost:%d/5/share/pic.png", db_files_port(W.files));
    snprintf(urls[3], sizeof urls[3], "https://localhost:%d/5/share/pic.png", db_files_port(W.files));
    snprintf(urls[4], sizeof urls[4], "https://127.0.0.2:%d/5/share/pic.png", db_files_port(W.files));
    size_t before = db_files_count(W.files, NULL);
    for (int i = 0; i < 5; i++) {
        long long token = 5491000000000000020LL + i;
        assert_int_equal(post_viber("message_picture", token, urls[i], W.png_len, NULL), 200);
        struct db_test_resp r;
        get_media(token, NULL, &r);
        assert_error(&r, 502, "upstream_error");
        db_test_resp_clear(&r);
    }
    assert_int_equal(canary_hits(canary), 0);
    assert_int_equal(db_files_count(W.files, NULL), before);
    close(canary);
}

/* ---- the media store ---- */

/* The P:media entry of media id (new reference), or NULL. */
static json_t *media_of(long long token)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", token);
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:media - +");
    assert_non_null(r);
    json_t *hit = NULL;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "media") != 0) continue;
            json_t *e = json_loads(f->element[k + 1]->str, 0, NULL);
            const char *mid = json_string_value(json_object_get(e, "media_id"));
            if (mid && strcmp(mid, id) == 0 && !hit) hit = json_incref(e);
            json_decref(e);
        }
    }
    freeReplyObject(r);
    return hit;
}

/* Waits until P:media has at least n entries; the count reached. */
static long long wait_media(long long n, int timeout_ms)
{
    long long end = db_test_now_ms() + timeout_ms, have;
    while ((have = db_test_xlen(db_test_redis_ctx(W.redis), "media")) < n &&
           db_test_now_ms() < end)
        usleep(50000);
    return have;
}

/* The id of the event on P:events whose media id is token, into out. */
static void event_of(long long token, char *out, size_t n)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", token);
    out[0] = '\0';
    redisReply *r = redisCommand(db_test_redis_ctx(W.redis), "XRANGE deskbridge:events - +");
    assert_non_null(r);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "event") != 0) continue;
            json_t *ev = json_loads(f->element[k + 1]->str, 0, NULL);
            const char *mid = json_string_value(json_object_get(json_object_get(ev, "media"), "id"));
            if (mid && strcmp(mid, id) == 0)
                snprintf(out, n, "%s", json_string_value(json_object_get(ev, "id")));
            json_decref(ev);
        }
    }
    freeReplyObject(r);
}

/* The stored file of a P:media entry, read from the store's directory (caller frees). */
static char *stored_bytes(const json_t *e, size_t *len)
{
    char path[600];
    snprintf(path, sizeof path, "%s/files/%s", W.dir, json_string_value(json_object_get(e, "key")));
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("no stored file at %s", path);
    char *b = malloc(MAX_BYTES + 1);
    assert_non_null(b);
    *len = fread(b, 1, MAX_BYTES + 1, f);
    fclose(f);
    return b;
}

/* Checks the P:media entry of token against the bytes served: stored, the key the store
 * promises (viber/<account>/<xx>/<sha256 of the media id>), size, SHA-256, the sniffed type,
 * the event it came with; and the stored file is those bytes. */
static void assert_stored(long long token, const char *bytes, size_t len, const char *ctype)
{
    json_t *e = media_of(token);
    if (!e) fail_msg("no P:media entry for %lld", token);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "stored");
    assert_string_equal(json_string_value(json_object_get(e, "platform")), "viber");
    assert_string_equal(json_string_value(json_object_get(e, "account")), ACCOUNT);
    char id[32], idsha[65], key[160], sha[65], ev[64];
    snprintf(id, sizeof id, "%lld", token);
    db_sha256_hex(id, strlen(id), idsha);
    snprintf(key, sizeof key, "viber/" ACCOUNT "/%.2s/%s", idsha, idsha);
    assert_string_equal(json_string_value(json_object_get(e, "key")), key);
    assert_int_equal(json_integer_value(json_object_get(e, "size")), len);
    db_sha256_hex(bytes, len, sha);
    assert_string_equal(json_string_value(json_object_get(e, "sha256")), sha);
    assert_string_equal(json_string_value(json_object_get(e, "content_type")), ctype);
    event_of(token, ev, sizeof ev);
    assert_true(ev[0] != '\0');
    assert_string_equal(json_string_value(json_object_get(e, "event")), ev);
    assert_non_null(strstr(json_string_value(json_object_get(e, "conversation")),
                           "viber:" ACCOUNT ":"));
    size_t n;
    char *disk = stored_bytes(e, &n);
    assert_int_equal(n, len);
    assert_memory_equal(disk, bytes, len);
    free(disk);
    json_decref(e);
}

#define T_PNG 5491000000000000101LL
#define T_PDF 5491000000000000102LL
#define T_MP4 5491000000000000103LL

/* A picture, a file and a video: each fetched once after its webhook through the guarded
 * client, typed from its bytes whatever the host claimed, stored, announced, and then served
 * from the store (the host is not asked again) with ranges. */
static void files_are_stored_announced_and_served_from_the_store(void **state)
{
    (void)state;
    /* The host's claims are wrong or vague on purpose: the type comes from the bytes. */
    db_files_put(W.files, "/5/share/a.png", 200, "application/octet-stream", W.png, W.png_len,
                 (size_t)-1);
    db_files_put(W.files, "/5/share/b.pdf", 200, "image/jpeg", W.pdf, W.pdf_len, (size_t)-1);
    db_files_put(W.files, "/5/share/c.mp4", 200, "video/mp4", W.mp4, W.mp4_len, (size_t)-1);
    long long before = wait_media(0, 0);
    char url[128];
    file_url(url, sizeof url, "/5/share/a.png");
    assert_int_equal(post_viber("message_picture", T_PNG, url, W.png_len, "receipt.png"), 200);
    file_url(url, sizeof url, "/5/share/b.pdf");
    assert_int_equal(post_viber("message_file", T_PDF, url, W.pdf_len, "invoice.pdf"), 200);
    file_url(url, sizeof url, "/5/share/c.mp4");
    assert_int_equal(post_viber("message_video", T_MP4, url, W.mp4_len, NULL), 200);
    assert_true(wait_media(before + 3, 15000) >= before + 3);

    assert_stored(T_PNG, W.png, W.png_len, "image/png");
    assert_stored(T_PDF, W.pdf, W.pdf_len, "application/pdf");
    assert_stored(T_MP4, W.mp4, W.mp4_len, "video/mp4");
    assert_int_equal(db_files_count(W.files, "/5/share/a.png"), 1);
    assert_int_equal(db_files_count(W.files, "/5/share/b.pdf"), 1);
    assert_int_equal(db_files_count(W.files, "/5/share/c.mp4"), 1);

    size_t asked = db_files_count(W.files, NULL);
    char sha[65], etag[80], cr[96];
    struct db_test_resp r;
    get_media(T_PNG, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, W.png_len);
    assert_memory_equal(r.body, W.png, W.png_len);
    header_is(&r, "Content-Type", "image/png");
    header_is(&r, "Content-Disposition", "inline; filename=\"receipt.png\"");
    header_is(&r, "Accept-Ranges", "bytes");
    header_is(&r, "X-Content-Type-Options", "nosniff");
    db_sha256_hex(W.png, W.png_len, sha);
    snprintf(etag, sizeof etag, "\"%s\"", sha);
    header_is(&r, "ETag", etag);
    db_test_resp_clear(&r);

    get_media(T_PNG, "bytes=1000-4999", &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 4000);
    assert_memory_equal(r.body, W.png + 1000, 4000);
    snprintf(cr, sizeof cr, "bytes 1000-4999/%zu", W.png_len);
    header_is(&r, "Content-Range", cr);
    header_is(&r, "Content-Type", "image/png");
    db_test_resp_clear(&r);
    get_media(T_PNG, "bytes=-16", &r); /* the last bytes: the PNG's IEND chunk */
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 16);
    assert_memory_equal(r.body, W.png + W.png_len - 16, 16);
    db_test_resp_clear(&r);
    snprintf(cr, sizeof cr, "bytes=%zu-", W.png_len);
    get_media(T_PNG, cr, &r);
    assert_int_equal(r.status, 416);
    db_test_resp_clear(&r);

    get_media(T_PDF, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, W.pdf_len);
    assert_memory_equal(r.body, W.pdf, W.pdf_len);
    header_is(&r, "Content-Type", "application/pdf");
    header_is(&r, "Content-Disposition", "inline; filename=\"invoice.pdf\"");
    db_test_resp_clear(&r);

    get_media(T_MP4, "bytes=24-", &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, W.mp4_len - 24);
    assert_memory_equal(r.body, W.mp4 + 24, W.mp4_len - 24);
    header_is(&r, "Content-Type", "video/mp4");
    /* The video message has no file name: the store's neutral one. */
    header_is(&r, "Content-Disposition", "inline; filename=\"media\"");
    db_test_resp_clear(&r);

    /* Served from the store: the file host was not asked again. */
    assert_int_equal(db_files_count(W.files, NULL), asked);

    db_test_http(W.d.port, "GET", "/metrics", auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "deskbridge_media_files_total{platform=\"viber\","
                                   "outcome=\"stored\",reason=\"\"} 3"));
    db_test_resp_clear(&r);
}

#define T_GONE 5491000000000000201LL
#define T_BIG 5491000000000000202LL
#define T_CUT 5491000000000000203LL

static void assert_lost(long long token, const char *reason)
{
    json_t *e = media_of(token);
    if (!e) fail_msg("no P:media entry for %lld", token);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "lost");
    const char *why = json_string_value(json_object_get(e, "reason"));
    if (!why || strncmp(why, reason, strlen(reason)) != 0)
        fail_msg("%lld: reason '%s', want '%s...'", token, why ? why : "(none)", reason);
    assert_null(json_object_get(e, "key"));
    assert_null(json_object_get(e, "sha256"));
    json_decref(e);
    /* Nothing under the key the file would have had. */
    char id[32], idsha[65], path[600];
    struct stat st;
    snprintf(id, sizeof id, "%lld", token);
    db_sha256_hex(id, strlen(id), idsha);
    snprintf(path, sizeof path, "%s/files/viber/" ACCOUNT "/%.2s/%s", W.dir, idsha, idsha);
    if (stat(path, &st) == 0) fail_msg("%lld: a file was stored at %s", token, path);
}

/* Every regular file under dir; fails on anything that is not one of the stored files. */
static size_t check_store_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            n += check_store_dir(path);
            continue;
        }
        assert_true(S_ISREG(st.st_mode));
        size_t len;
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char *b = malloc(MAX_BYTES + 1);
        assert_non_null(b);
        len = fread(b, 1, MAX_BYTES + 1, f);
        fclose(f);
        int known = (len == W.png_len && memcmp(b, W.png, len) == 0) ||
                    (len == W.pdf_len && memcmp(b, W.pdf, len) == 0) ||
                    (len == W.mp4_len && memcmp(b, W.mp4, len) == 0);
        free(b);
        if (!known) fail_msg("the store holds %s (%zu bytes), which is no stored file", path, len);
        n++;
    }
    closedir(d);
    return n;
}

/* A file the host no longer has (404), one over max_bytes and one whose download breaks off
 * halfway: each recorded lost with its reason (on P:media and in /metrics), and nothing of
 * any of them in the store: no file, no partial file, no temporary left behind. */
static void failed_downloads_are_lost_and_nothing_corrupt_is_stored(void **state)
{
    (void)state;
    db_files_put(W.files, "/5/share/big.jpg", 200, "image/jpeg", W.big, W.big_len, (size_t)-1);
    db_files_put(W.files, "/5/share/cut.png", 200, "image/png", W.png, W.png_len, 5000);
    long long before = wait_media(0, 0);
    char url[128];
    file_url(url, sizeof url, "/5/share/gone.jpg");
    assert_int_equal(post_viber("message_picture", T_GONE, url, 1234, NULL), 200);
    file_url(url, sizeof url, "/5/share/big.jpg");
    assert_int_equal(post_viber("message_file", T_BIG, url, W.big_len, "scan.jpg"), 200);
    file_url(url, sizeof url, "/5/share/cut.png");
    assert_int_equal(post_viber("message_picture", T_CUT, url, W.png_len, NULL), 200);
    assert_true(wait_media(before + 3, 20000) >= before + 3);

    assert_lost(T_GONE, "not_found: ");
    assert_lost(T_BIG, "too_big: ");
    assert_lost(T_CUT, "upstream_error: ");
    /* Gone and broken off were tried max_deliveries (3) times; too big only once. */
    assert_int_equal(db_files_count(W.files, "/5/share/gone.jpg"), 3);
    assert_int_equal(db_files_count(W.files, "/5/share/cut.png"), 3);
    assert_int_equal(db_files_count(W.files, "/5/share/big.jpg"), 1);

    /* Only the three files stored by the previous test are in the store, intact. */
    char files[300];
    snprintf(files, sizeof files, "%s/files", W.dir);
    assert_int_equal(check_store_dir(files), 3);

    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/metrics", auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "deskbridge_media_files_total{platform=\"viber\","
                                   "outcome=\"lost\",reason=\"not_found\"} 1"));
    assert_non_null(strstr(r.body, "deskbridge_media_files_total{platform=\"viber\","
                                   "outcome=\"lost\",reason=\"too_big\"} 1"));
    assert_non_null(strstr(r.body, "deskbridge_media_files_total{platform=\"viber\","
                                   "outcome=\"lost\",reason=\"upstream_error\"} 1"));
    db_test_resp_clear(&r);

    /* A lost file is asked of the host again on GET: gone is 404, the big one (no store cap
     * on a relay) arrives whole. */
    get_media(T_GONE, NULL, &r);
    assert_error(&r, 404, "not_found");
    db_test_resp_clear(&r);
    get_media(T_BIG, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, W.big_len);
    assert_memory_equal(r.body, W.big, W.big_len);
    db_test_resp_clear(&r);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(without_the_variable_the_guard_refuses_the_file_host),
        cmocka_unit_test(a_wider_exception_stops_the_start),
    };
    const struct CMUnitTest relay[] = {
        cmocka_unit_test(the_file_the_webhook_named_is_relayed_intact),
        cmocka_unit_test(a_file_the_host_no_longer_has_is_not_found),
        cmocka_unit_test(the_exception_is_one_address_and_port),
    };
    const struct CMUnitTest store[] = {
        cmocka_unit_test(files_are_stored_announced_and_served_from_the_store),
        cmocka_unit_test(failed_downloads_are_lost_and_nothing_corrupt_is_stored),
    };
    int rc = cmocka_run_group_tests_name("viber media, no exception", plain, setup_plain,
                                         teardown);
    rc |= cmocka_run_group_tests_name("viber media, relayed", relay, setup_relay, teardown);
    return rc | cmocka_run_group_tests_name("viber media, stored", store, setup_store, teardown);
}
