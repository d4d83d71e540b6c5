/* Fault: the media store's S3 server (s3rver, tests/s3/) is down for 30 s while 200 images
 * arrive.  Every webhook is answered 2xx meanwhile (the store is not on the webhook's path),
 * a file asked for during the outage comes intact from the platform, and once the store is
 * back every file is stored exactly once and served from it byte for byte.  Prints its
 * figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_client.h"
#include "media_world.h"
#include "testutil.h"

#define FILES 200
#define SIZE 16000
#define OUTAGE_MS 30000

static struct media_world W;
static char *img[FILES];

static void get(int i, struct db_test_resp *r)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/media/whatsapp/" MW_PNID "/880%04d", i);
    const char *h[] = {"Authorization: Bearer " MW_API_TOKEN, NULL};
    db_test_http(W.d.port, "GET", path, h, NULL, 0, r);
}

static void intact(int i, const struct db_test_resp *r)
{
    if (r->status != 200 || r->body_len != SIZE || memcmp(r->body, img[i], SIZE) != 0)
        fail_msg("file %d: status %d, %zu bytes, %s", i, r->status, r->body_len,
                 r->body_len == SIZE ? "content differs" : "length differs");
}

static void store_down_30s_while_200_images_arrive(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    mw_s3_start(&W);
    mw_start(&W, "backend = s3\ns3_endpoint = @S3@\ns3_bucket = media\n"
                 "s3_access_key = S3RVER\ns3_secret_key = S3RVER\nmax_deliveries = 40\n"
                 "retry_base_ms = 500\nretry_max_ms = 2000\nconcurrency = 8\n");
    for (int i = 0; i < FILES; i++) {
        char id[32];
        snprintf(id, sizeof id, "880%04d", i);
        img[i] = mw_image(&W, id, "\xFF\xD8\xFF\xE0", 4, SIZE, (unsigned)i + 100, "image/jpeg");
    }

    long long t0 = db_test_now_ms();
    mw_s3_stop(&W);
    int non2xx = 0;
    long long slowest = 0;
    for (int i = 0; i < FILES; i++) {
        char wamid[32], id[32];
        snprintf(wamid, sizeof wamid, "wamid.F%04d", i);
        snprintf(id, sizeof id, "880%04d", i);
        long long t = db_test_now_ms();
        int st = mw_post_image(&W, wamid, id);
        if (db_test_now_ms() - t > slowest) slowest = db_test_now_ms() - t;
        if (st < 200 || st >= 300) non2xx++;
    }
    /* During the outage a file is not in the store: the platform serves it, intact. */
    for (int i = 0; i < FILES; i += 50) {
        struct db_test_resp r;
        get(i, &r);
        intact(i, &r);
        db_test_resp_clear(&r);
    }
    size_t during = mw_wait_media(&W, 0, 0);
    long long left = OUTAGE_MS - (db_test_now_ms() - t0);
    if (left > 0) usleep((useconds_t)left * 1000);
    size_t at_end = mw_wait_media(&W, 0, 0);
    mw_s3_start(&W); /* same port, same directory */
    long long back = db_test_now_ms();
    size_t n = mw_wait_media(&W, FILES, 60000);
    long long took = db_test_now_ms() - back;
    printf("# %d webhooks during a %d ms store outage: %d not 2xx, slowest %lld ms\n", FILES,
           OUTAGE_MS, non2xx, slowest);
    printf("# P:media entries: %zu during, %zu at the end of the outage, %zu after %lld ms back\n",
           during, at_end, n, took);
    assert_int_equal(non2xx, 0);
    assert_int_equal(at_end, 0);
    assert_int_equal(n, FILES);

    json_t *all = mw_media_entries(&W), *e;
    size_t k;
    int stored = 0;
    json_array_foreach(all, k, e) {
        const char *mid = json_string_value(json_object_get(e, "media_id"));
        assert_string_equal(json_string_value(json_object_get(e, "state")), "stored");
        int i = atoi(mid + 3);
        char want[65];
        mw_sha256(img[i], SIZE, want);
        assert_string_equal(json_string_value(json_object_get(e, "sha256")), want);
        stored++;
    }
    json_decref(all);
    assert_int_equal(stored, FILES);

    /* Served from the store, byte for byte, without asking the platform. */
    size_t asked = db_fake_count(W.wa, NULL);
    for (int i = 0; i < FILES; i++) {
        struct db_test_resp r;
        get(i, &r);
        intact(i, &r);
        db_test_resp_clear(&r);
    }
    assert_int_equal(db_fake_count(W.wa, NULL), asked);
    char rejected[400];
    snprintf(rejected, sizeof rejected, "%s/rejected", W.s3.dir);
    assert_int_not_equal(access(rejected, F_OK), 0); /* every request correctly signed */
    for (int i = 0; i < FILES; i++) free(img[i]);
    mw_stop(&W);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(store_down_30s_while_200_images_arrive),
    };
    return cmocka_run_group_tests_name("media store outage", tests, NULL, NULL);
}
