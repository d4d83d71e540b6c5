/* The media store through the real parts: the deskbridge binary with [media_store], a real
 * redis-server, a fake Graph API holding the images, and for the S3 backend s3rver from npm
 * (tests/s3/, pinned in its package-lock.json).  Files are fetched after their webhook,
 * sniffed, stored once, announced on P:media, served from the store (ranges included), lost
 * with the reason after max_deliveries, and deleted when erased or past retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_client.h"
#include "media_world.h"
#include "testutil.h"

static struct media_world W;

static const char *auth[] = {"Authorization: Bearer " MW_API_TOKEN, NULL};

#define JPEG_SIG "\xFF\xD8\xFF\xE0"
#define PDF_SIG "%PDF-1.7\n"

static const char *local_keys = "dir = @DIR@/files\nretention_days = 30\nmax_bytes = 300000\n"
                                "max_deliveries = 3\nretry_base_ms = 100\nretry_max_ms = 200\n"
                                "sweep_interval_s = 1\n";

static int setup_local(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    mw_start(&W, local_keys);
    return 0;
}

static int setup_s3(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    mw_s3_start(&W);
    mw_start(&W, "backend = s3\ns3_endpoint = @S3@\ns3_bucket = media\ns3_region = us-east-1\n"
                 "s3_access_key = S3RVER\ns3_secret_key = S3RVER\nmax_deliveries = 3\n"
                 "retry_base_ms = 100\nretry_max_ms = 200\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mw_stop(&W);
    return 0;
}

static void get(const char *id, const char *range, struct db_test_resp *r)
{
    char path[160], rh[96];
    snprintf(path, sizeof path, "/v1/media/whatsapp/" MW_PNID "/%s", id);
    snprintf(rh, sizeof rh, "Range: %s", range ? range : "");
    const char *h[] = {auth[0], range ? rh : NULL, NULL};
    db_test_http(W.d.port, "GET", path, h, NULL, 0, r);
}

static void header_is(const struct db_test_resp *r, const char *name, const char *want)
{
    char v[256];
    assert_non_null(db_test_resp_header(r, name, v, sizeof v));
    if (strcmp(v, want) != 0) fail_msg("%s: got '%s' want '%s'", name, v, want);
}

/* Stores two files (one a PDF the platform calls image/jpeg), then serves them from the
 * store: the fake is not asked again, the type is the sniffed one, ranges work. */
static void files_are_stored_once_and_served_from_the_store(void **state)
{
    (void)state;
    size_t before = mw_wait_media(&W, 0, 0);
    char *jpg = mw_image(&W, "7001001", JPEG_SIG, 4, 120000, 1, "image/jpeg");
    char *pdf = mw_image(&W, "7001002", PDF_SIG, 9, 50000, 2, "image/jpeg");
    assert_int_equal(mw_post_image(&W, "wamid.S1", "7001001"), 200);
    assert_int_equal(mw_post_image(&W, "wamid.S2", "7001002"), 200);
    /* The same file in a second message (a forward) is not fetched again. */
    assert_int_equal(mw_post_image(&W, "wamid.S3", "7001001"), 200);
    assert_true(mw_wait_media(&W, before + 2, 10000) >= before + 2);
    usleep(300000);
    assert_int_equal(mw_wait_media(&W, 0, 0), before + 2);
    assert_int_equal(db_fake_count(W.wa, "/dl/7001001.bin"), 1);

    char want[65];
    json_t *e = mw_media_of(&W, "7001001");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "stored");
    mw_sha256(jpg, 120000, want);
    assert_string_equal(json_string_value(json_object_get(e, "sha256")), want);
    assert_int_equal(json_integer_value(json_object_get(e, "size")), 120000);
    assert_string_equal(json_string_value(json_object_get(e, "content_type")), "image/jpeg");
    assert_non_null(json_string_value(json_object_get(e, "event")));
    assert_non_null(strstr(json_string_value(json_object_get(e, "conversation")), "whatsapp:"));
    json_decref(e);
    e = mw_media_of(&W, "7001002");
    assert_string_equal(json_string_value(json_object_get(e, "content_type")), "application/pdf");
    json_decref(e);

    size_t dl_before = db_fake_count(W.wa, NULL);
    struct db_test_resp r;
    get("7001001", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 120000);
    assert_memory_equal(r.body, jpg, 120000);
    header_is(&r, "Content-Type", "image/jpeg");
    header_is(&r, "Accept-Ranges", "bytes");
    char cd[128];
    assert_non_null(db_test_resp_header(&r, "Content-Disposition", cd, sizeof cd));
    assert_non_null(strstr(cd, "inline"));
    db_test_resp_clear(&r);

    get("7001001", "bytes=1000-1999", &r);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 1000);
    assert_memory_equal(r.body, jpg + 1000, 1000);
    header_is(&r, "Content-Range", "bytes 1000-1999/120000");
    db_test_resp_clear(&r);
    get("7001001", "bytes=-10", &r);
    assert_int_equal(r.status, 206);
    assert_memory_equal(r.body, jpg + 119990, 10);
    db_test_resp_clear(&r);
    get("7001001", "bytes=120000-", &r);
    assert_int_equal(r.status, 416);
    header_is(&r, "Content-Range", "bytes */120000");
    db_test_resp_clear(&r);

    get("7001002", NULL, &r);
    assert_int_equal(r.status, 200);
    header_is(&r, "Content-Type", "application/pdf");
    assert_non_null(db_test_resp_header(&r, "Content-Disposition", cd, sizeof cd));
    assert_non_null(strstr(cd, "inline"));
    assert_memory_equal(r.body, pdf, 50000);
    db_test_resp_clear(&r);
    /* Served from the store: the platform was not asked. */
    assert_int_equal(db_fake_count(W.wa, NULL), dl_before);
    free(jpg);
    free(pdf);
}

/* A file the platform keeps refusing is lost after max_deliveries attempts with its reason,
 * on P:media and in /metrics; one larger than max_bytes is lost at once. */
static void failures_are_retried_then_recorded_lost(void **state)
{
    (void)state;
    size_t before = mw_wait_media(&W, 0, 0);
    db_fake_rule(W.wa, "GET", "/7002001", -1, 404,
                 "{\"error\":{\"message\":\"(#100) Invalid media id\",\"code\":100}}", 0, 0);
    free(mw_image(&W, "7002002", JPEG_SIG, 4, 400000, 3, "image/jpeg"));
    assert_int_equal(mw_post_image(&W, "wamid.L1", "7002001"), 200);
    assert_int_equal(mw_post_image(&W, "wamid.L2", "7002002"), 200);
    assert_true(mw_wait_media(&W, before + 2, 15000) >= before + 2);
    json_t *e = mw_media_of(&W, "7002001");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "lost");
    assert_non_null(strstr(json_string_value(json_object_get(e, "reason")), "not_found"));
    json_decref(e);
    assert_int_equal(db_fake_count(W.wa, "/7002001"), 3); /* max_deliveries */
    e = mw_media_of(&W, "7002002");
    assert_string_equal(json_string_value(json_object_get(e, "state")), "lost");
    assert_non_null(strstr(json_string_value(json_object_get(e, "reason")), "too_big"));
    json_decref(e);

    struct db_test_resp r;
    db_test_http(W.d.port, "GET", "/metrics", auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "deskbridge_media_files_total{platform=\"whatsapp\","
                                   "outcome=\"lost\",reason=\"not_found\"} 1"));
    assert_non_null(strstr(r.body, "deskbridge_media_files_total{platform=\"whatsapp\","
                                   "outcome=\"lost\",reason=\"too_big\"} 1"));
    assert_non_null(strstr(r.body, "outcome=\"retry\",reason=\"not_found\"} 2"));
    db_test_resp_clear(&r);
}

/* Erasing a conversation's files (docs/media.md): their index entries get score 0, the
 * sweep deletes objects and records, and GET falls back to the platform. */
static void erased_files_are_deleted_by_the_sweep(void **state)
{
    (void)state;
    size_t before = mw_wait_media(&W, 0, 0);
    free(mw_image(&W, "7003001", JPEG_SIG, 4, 5000, 4, "image/jpeg"));
    assert_int_equal(mw_post_image(&W, "wamid.E1", "7003001"), 200);
    assert_true(mw_wait_media(&W, before + 1, 10000) >= before + 1);
    json_t *e = mw_media_of(&W, "7003001");
    char path[512];
    snprintf(path, sizeof path, "%s/files/%s", W.dir,
             json_string_value(json_object_get(e, "key")));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 5000);

    redisContext *c = db_test_redis_ctx(W.redis);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "SMEMBERS deskbridge:mediaconv:%s",
             json_string_value(json_object_get(e, "conversation")));
    redisReply *m = redisCommand(c, cmd);
    assert_true(m->elements >= 1);
    for (size_t i = 0; i < m->elements; i++)
        freeReplyObject(redisCommand(c, "ZADD deskbridge:mediaidx 0 %s", m->element[i]->str));
    freeReplyObject(m);
    json_decref(e);
    long long end = db_test_now_ms() + 5000;
    while (stat(path, &st) == 0 && db_test_now_ms() < end) usleep(50000);
    assert_int_not_equal(stat(path, &st), 0);
    redisReply *x = redisCommand(c, "EXISTS deskbridge:mediarec:whatsapp:" MW_PNID ":7003001");
    for (int i = 0; i < 40 && x->integer; i++) {
        freeReplyObject(x);
        usleep(50000);
        x = redisCommand(c, "EXISTS deskbridge:mediarec:whatsapp:" MW_PNID ":7003001");
    }
    assert_int_equal(x->integer, 0);
    freeReplyObject(x);
    size_t n = db_fake_count(W.wa, "/dl/7003001.bin");
    struct db_test_resp r;
    get("7003001", NULL, &r);
    assert_int_equal(r.status, 200);
    db_test_resp_clear(&r);
    assert_int_equal(db_fake_count(W.wa, "/dl/7003001.bin"), n + 1);
}

/* The S3 backend: stored in the bucket (s3rver's directory), served from it with ranges. */
static void s3_bucket_holds_and_serves_the_file(void **state)
{
    (void)state;
    char *jpg = mw_image(&W, "7004001", JPEG_SIG, 4, 90000, 5, "image/jpeg");
    assert_int_equal(mw_post_image(&W, "wamid.B1", "7004001"), 200);
    assert_true(mw_wait_media(&W, 1, 10000) >= 1);
    json_t *e = mw_media_of(&W, "7004001");
    assert_string_equal(json_string_value(json_object_get(e, "state")), "stored");
    char want[65];
    mw_sha256(jpg, 90000, want);
    assert_string_equal(json_string_value(json_object_get(e, "sha256")), want);
    json_decref(e);
    size_t n = db_fake_count(W.wa, NULL);
    struct db_test_resp r;
    get("7004001", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 90000);
    assert_memory_equal(r.body, jpg, 90000);
    db_test_resp_clear(&r);
    get("7004001", "bytes=100-199", &r);
    assert_int_equal(r.status, 206);
    assert_memory_equal(r.body, jpg + 100, 100);
    db_test_resp_clear(&r);
    assert_int_equal(db_fake_count(W.wa, NULL), n);
    /* s3server.mjs checked every request's AWS Signature V4 and refused none. */
    char rejected[400];
    snprintf(rejected, sizeof rejected, "%s/rejected", W.s3.dir);
    assert_int_not_equal(access(rejected, F_OK), 0);
    free(jpg);
}

int main(void)
{
    const struct CMUnitTest local[] = {
        cmocka_unit_test(files_are_stored_once_and_served_from_the_store),
        cmocka_unit_test(failures_are_retried_then_recorded_lost),
        cmocka_unit_test(erased_files_are_deleted_by_the_sweep),
    };
    const struct CMUnitTest s3[] = {
        cmocka_unit_test(s3_bucket_holds_and_serves_the_file),
    };
    int rc = cmocka_run_group_tests_name("media store, local", local, setup_local, teardown);
    return rc | cmocka_run_group_tests_name("media store, s3", s3, setup_s3, teardown);
}
