/* test_private_memory.c - libcurl is linked normally: the daemon has it mapped from the start,
 * before any outbound call, and webhooks then the first reply go through.  Real binary, real
 * redis-server, a fake Graph API on loopback.  The private memory (RssAnon) and the peaks
 * (VmHWM) before and after are printed as figures, not checked (docs/performance.md). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api_client.h"
#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define WA_TOKEN "EAAGlazyToken0123456789abcdef"
#define APP_SECRET "lazy-app-secret-42"
#define PNID "106540352242922"
#define CUSTOMER "16505551234"
#define API_TOKEN "api-token-lazy-0123456789abcdef"
#define SENT_OK "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.LAZY{n}\"}]}"

static struct db_test_redis *R;
static struct db_fake *WA;

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    WA = db_fake_start();
    assert_non_null(R);
    assert_non_null(WA);
    db_fake_default(WA, 200, SENT_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_fake_stop(WA);
    db_test_redis_stop(R);
    return 0;
}

/* Starts the gateway with one WhatsApp number whose API base is the fake; role NULL = all. */
static void start(struct db_test_daemon *d, const char *role)
{
    static char env[8][512];
    snprintf(env[0], sizeof env[0], "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    snprintf(env[1], sizeof env[1], "DESKBRIDGE_API_TOKEN=%s", API_TOKEN);
    snprintf(env[2], sizeof env[2], "WHATSAPP_ACCESS_TOKEN=%s", WA_TOKEN);
    snprintf(env[3], sizeof env[3], "WHATSAPP_APP_SECRET=%s", APP_SECRET);
    snprintf(env[4], sizeof env[4], "WHATSAPP_VERIFY_TOKEN=lazy-verify");
    snprintf(env[5], sizeof env[5], "WHATSAPP_PHONE_NUMBER_ID=%s", PNID);
    snprintf(env[6], sizeof env[6], "WHATSAPP_API_BASE=%s", db_fake_url(WA));
    snprintf(env[7], sizeof env[7], "DESKBRIDGE_ROLE=%s", role ? role : "all");
    const char *e[] = {env[0], env[1], env[2], env[3], env[4], env[5], env[6], env[7], NULL};
    db_test_daemon_start(d, e, NULL, 0);
}

/* 1 when a file whose name contains "libcurl" is mapped into pid.  /proc files report size
 * 0, so they are read line by line. */
static int libcurl_mapped(pid_t pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, "libcurl") != NULL;
    fclose(f);
    return found;
}

/* Field ("RssAnon", "VmHWM", "VmRSS") of pid's /proc status in kB (-1 when not found). */
static long status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kb = -1;
    size_t n = strlen(field);
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' &&
            sscanf(line + n + 1, "%ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void print_memory(pid_t pid, const char *when)
{
    printf("%s: RssAnon %ld kB, VmHWM %ld kB, VmRSS %ld kB\n", when, status_kb(pid, "RssAnon"),
           status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS"));
}

/* Posts n signed WhatsApp text webhooks, each answered 200. */
static void post_webhooks(const struct db_test_daemon *d, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char body[1024], hex[65], sig[128];
        unsigned char mac[32];
        snprintf(body, sizeof body,
                 "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102003040506070\","
                 "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
                 "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"" PNID
                 "\"},\"contacts\":[{\"profile\":{\"name\":\"Kerry\"},\"wa_id\":\"" CUSTOMER "\"}],"
                 "\"messages\":[{\"from\":\"" CUSTOMER "\",\"id\":\"wamid.IN%d\",\"timestamp\":"
                 "\"%lld\",\"type\":\"text\",\"text\":{\"body\":\"hello %d\"}}]}}]}]}",
                 i, (long long)time(NULL), i); /* now: the reply falls inside WhatsApp's window */
        db_hmac_sha256(APP_SECRET, strlen(APP_SECRET), body, strlen(body), mac);
        db_hex_encode(mac, 32, hex);
        snprintf(sig, sizeof sig, "X-Hub-Signature-256: sha256=%s", hex);
        const char *headers[] = {"Content-Type: application/json", sig, NULL};
        struct db_test_resp r;
        db_test_http(d->port, "POST", "/webhooks/whatsapp/" PNID, headers, body, strlen(body), &r);
        assert_int_equal(r.status, 200);
        db_test_resp_clear(&r);
    }
}

static void stop(struct db_test_daemon *d)
{
    /* curl initialised, so there is nothing to report about it. */
    static const char *const never[] = {"libcurl cannot be initialised", NULL};
    db_test_daemon_stop_clean(d, never);
}

static void libcurl_is_linked_and_the_first_reply_goes_out(void **state)
{
    (void)state;
    struct db_test_daemon d;
    db_fake_reset(WA);
    start(&d, NULL);
    assert_true(libcurl_mapped(d.pid)); /* linked: there before anything was sent */
    print_memory(d.pid, "role=all idle");
    post_webhooks(&d, 0, 20);
    assert_int_equal(db_test_xlen(db_test_redis_ctx(R), "events"), 20);
    usleep(300 * 1000); /* let the dispatcher file the events: still no outbound call */
    assert_int_equal(db_fake_count(WA, NULL), 0);
    print_memory(d.pid, "role=all after 20 webhooks");

    int status = 0;
    char *answer = db_test_post_json(d.port, API_TOKEN, "/v1/messages",
                                     "{\"conversation\":\"whatsapp:" PNID ":" CUSTOMER "\","
                                     "\"text\":\"the first reply\"}",
                                     &status);
    assert_int_equal(status, 202);
    json_t *j = json_loads(answer, 0, NULL);
    assert_non_null(j);
    free(answer);
    assert_int_equal(db_fake_wait(WA, "/messages", 1, 10000), 1);
    json_decref(db_test_wait_message(d.port, API_TOKEN,
                                     json_string_value(json_object_get(j, "id")), "sent", 10000));
    json_decref(j);
    print_memory(d.pid, "role=all after the first reply");

    /* Webhooks keep working after a send. */
    post_webhooks(&d, 20, 2);
    stop(&d);
}

static void an_ingest_process_never_sends(void **state)
{
    (void)state;
    struct db_test_daemon d;
    db_fake_reset(WA);
    start(&d, "ingest");
    print_memory(d.pid, "role=ingest idle");
    post_webhooks(&d, 100, 20);
    usleep(300 * 1000);
    print_memory(d.pid, "role=ingest after 20 webhooks");
    assert_int_equal(db_fake_count(WA, NULL), 0);
    stop(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libcurl_is_linked_and_the_first_reply_goes_out),
        cmocka_unit_test(an_ingest_process_never_sends),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
