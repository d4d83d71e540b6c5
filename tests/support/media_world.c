/* media_world.c - see media_world.h. */
#include "media_world.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_client.h"
#include "testutil.h"
#include "util/crypto.h"

static char *replace_all(const char *s, const char *what, const char *with)
{
    size_t n = strlen(s) + 1, wl = strlen(what);
    for (const char *p = strstr(s, what); p; p = strstr(p + wl, what)) n += strlen(with);
    char *out = malloc(n), *o = out;
    assert_non_null(out);
    for (const char *p = s;;) {
        const char *hit = strstr(p, what);
        if (!hit) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        strcpy(o, with);
        o += strlen(with);
        p = hit + wl;
    }
    return out;
}

void mw_start(struct media_world *w, const char *store_keys)
{
    signal(SIGPIPE, SIG_IGN);
    if (!w->dir[0]) {
        snprintf(w->dir, sizeof w->dir, "/tmp/deskbridge-media-XXXXXX");
        assert_non_null(mkdtemp(w->dir));
    }
    w->redis = db_test_redis_start(NULL);
    w->wa = db_fake_start();
    assert_non_null(w->redis);
    assert_non_null(w->wa);
    char s3url[64];
    snprintf(s3url, sizeof s3url, "http://127.0.0.1:%d", w->s3.port);
    char *a = replace_all(store_keys, "@DIR@", w->dir);
    char *b = replace_all(a, "@S3@", s3url);
    snprintf(w->conf, sizeof w->conf, "%s/gateway.conf", w->dir);
    FILE *f = fopen(w->conf, "w");
    assert_non_null(f);
    fprintf(f, "[media_store]\n%s\n", b);
    fclose(f);
    free(a);
    free(b);
    int i = 0;
    snprintf(w->env[i++], sizeof w->env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(w->redis));
    snprintf(w->env[i++], sizeof w->env[0], "DESKBRIDGE_API_TOKEN=%s", MW_API_TOKEN);
    snprintf(w->env[i++], sizeof w->env[0], "WHATSAPP_ACCESS_TOKEN=%s", MW_WA_TOKEN);
    snprintf(w->env[i++], sizeof w->env[0], "WHATSAPP_APP_SECRET=%s", MW_WA_SECRET);
    snprintf(w->env[i++], sizeof w->env[0], "WHATSAPP_VERIFY_TOKEN=verify-store");
    snprintf(w->env[i++], sizeof w->env[0], "WHATSAPP_PHONE_NUMBER_ID=%s", MW_PNID);
    snprintf(w->env[i++], sizeof w->env[0], "WHATSAPP_API_BASE=%s", db_fake_url(w->wa));
    const char *env[] = {w->env[0], w->env[1], w->env[2], w->env[3], w->env[4], w->env[5],
                         w->env[6], NULL};
    const char *args[] = {"--config", w->conf, NULL};
    db_test_daemon_start(&w->d, env, args, 0);
}

void mw_stop(struct media_world *w)
{
    static const char *const never[] = {"StoreTokenDoNotLog", NULL};
    db_test_daemon_stop_clean(&w->d, never);
    db_fake_stop(w->wa);
    db_test_redis_stop(w->redis);
    mw_s3_stop(w);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", w->dir);
}

char *mw_image(struct media_world *w, const char *id, const char *sig, size_t sig_len,
               size_t n, unsigned seed, const char *mime)
{
    char *img = malloc(n + 1);
    assert_non_null(img);
    memcpy(img, sig, sig_len);
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = sig_len; i < n; i++) {
        x = x * 1103515245u + 12345u;
        img[i] = (char)(1 + (x >> 16) % 255);
    }
    img[n] = '\0';
    char path[96], body[512], dl[96];
    snprintf(path, sizeof path, "/%s", id);
    snprintf(dl, sizeof dl, "/dl/%s.bin", id);
    snprintf(body, sizeof body,
             "{\"messaging_product\":\"whatsapp\",\"url\":\"%s%s\",\"mime_type\":\"%s\","
             "\"file_size\":%zu,\"id\":\"%s\"}",
             db_fake_url(w->wa), dl, mime, n, id);
    /* The download rule first: "/<id>" also occurs in "/dl/<id>.bin". */
    db_fake_rule(w->wa, "GET", dl, -1, 200, img, 0, 0);
    db_fake_rule(w->wa, "GET", path, -1, 200, body, 0, 0);
    return img;
}

int mw_post_image(struct media_world *w, const char *wamid, const char *id)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
             "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"" MW_PNID
             "\"},\"contacts\":[{\"profile\":{\"name\":\"Kerry\"},\"wa_id\":\"16315551181\"}],"
             "\"messages\":[{\"from\":\"16315551181\",\"id\":\"%s\",\"timestamp\":\"1795365000\","
             "\"type\":\"image\",\"image\":{\"id\":\"%s\",\"mime_type\":\"image/jpeg\","
             "\"sha256\":\"unused\",\"caption\":\"a photo\"}}]}}]}]}",
             wamid, id);
    unsigned char mac[32];
    char hex[65], h[128];
    db_hmac_sha256(MW_WA_SECRET, strlen(MW_WA_SECRET), body, strlen(body), mac);
    db_hex_encode(mac, sizeof mac, hex);
    snprintf(h, sizeof h, "X-Hub-Signature-256: sha256=%s", hex);
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(w->d.port, "POST", "/webhooks/whatsapp/" MW_PNID, headers, body, strlen(body),
                 &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

json_t *mw_media_entries(struct media_world *w)
{
    json_t *arr = json_array();
    redisReply *r = redisCommand(db_test_redis_ctx(w->redis), "XRANGE deskbridge:media - +");
    assert_non_null(r);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, "media") == 0)
                json_array_append_new(arr, json_loads(f->element[k + 1]->str, 0, NULL));
    }
    freeReplyObject(r);
    return arr;
}

size_t mw_wait_media(struct media_world *w, size_t n, int timeout_ms)
{
    long long end = db_test_now_ms() + timeout_ms;
    long long have = 0;
    while ((have = db_test_xlen(db_test_redis_ctx(w->redis), "media")) < (long long)n &&
           db_test_now_ms() < end)
        usleep(50000);
    return (size_t)have;
}

json_t *mw_media_of(struct media_world *w, const char *id)
{
    json_t *arr = mw_media_entries(w), *hit = NULL, *e;
    size_t i;
    json_array_foreach(arr, i, e) {
        const char *mid = json_string_value(json_object_get(e, "media_id"));
        if (mid && strcmp(mid, id) == 0) hit = json_incref(e);
    }
    json_decref(arr);
    return hit;
}

void mw_s3_start(struct media_world *w)
{
    if (!w->dir[0]) {
        snprintf(w->dir, sizeof w->dir, "/tmp/deskbridge-media-XXXXXX");
        assert_non_null(mkdtemp(w->dir));
    }
    /* s3rver as pinned in tests/s3/package-lock.json, installed on first use. */
    if (access(DB_SOURCE_DIR "/tests/s3/node_modules/s3rver", F_OK) != 0 &&
        system("npm ci --prefix '" DB_SOURCE_DIR "/tests/s3' --no-audit --no-fund >/dev/null") != 0)
        fail_msg("npm ci in tests/s3 failed");
    if (!w->s3.port) w->s3.port = db_test_free_port();
    snprintf(w->s3.dir, sizeof w->s3.dir, "%s/s3", w->dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char port[16];
        snprintf(port, sizeof port, "%d", w->s3.port);
        if (chdir(DB_SOURCE_DIR "/tests/s3") != 0) _exit(127);
        execlp("node", "node", "s3server.mjs", port, w->s3.dir, "media", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    w->s3.pid = pid;
    /* "listening <port>" once it serves. */
    char line[64] = "";
    FILE *f = fdopen(fds[0], "r");
    assert_non_null(f);
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    fclose(f);
    if (strncmp(line, "listening", 9) != 0)
        fail_msg("s3rver did not start (npm ci in tests/s3?): '%s'", line);
}

void mw_s3_stop(struct media_world *w)
{
    if (w->s3.pid <= 0) return;
    kill(w->s3.pid, SIGKILL);
    waitpid(w->s3.pid, NULL, 0);
    w->s3.pid = 0;
}

void mw_sha256(const void *data, size_t n, char out[65])
{
    db_sha256_hex(data, n, out);
}
