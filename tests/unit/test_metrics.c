/* The metrics registry and its Prometheus text rendering, without a gateway: counters per
 * label set, escaping, histogram buckets, the series cap, and promtool's verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "deskbridge/status.h"
#include "metrics/metrics.h"

/* Defined in src/metrics/metrics.c but not in metrics.h (a fixed contract): the registry's own
 * series as text; *out is the caller's to free(). */

static char *render(const struct db_metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(db_metrics_render(m, &text, &len), DB_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* 1 when text holds exactly this line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0) return 1;
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

static void expect_line(const char *text, const char *line)
{
    if (!has_line(text, line)) fail_msg("missing line: %s\n---\n%s", line, text);
}

/* Lines starting with prefix. */
static int count_prefix(const char *text, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, pl) == 0) n++;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

static void counters_accumulate_per_label_set(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    assert_non_null(m);
    for (int i = 0; i < 3; i++) db_metrics_webhook(m, "telegram", "7000000001", "accepted");
    db_metrics_webhook(m, "telegram", "7000000001", "duplicate");
    db_metrics_webhook(m, "viber", "shop", "accepted");
    db_metrics_events(m, "telegram", "message", 2);
    db_metrics_events(m, "telegram", "message", 3);
    db_metrics_events(m, "telegram", "edit", 0); /* nothing written: no series */
    db_metrics_send(m, "telegram", "sent", "");
    db_metrics_send(m, "telegram", "retry", "429");
    db_metrics_send(m, "telegram", "retry", "429");
    db_metrics_dead_letter(m);
    char *t = render(m);
    expect_line(t, "deskbridge_webhooks_total{platform=\"telegram\",account=\"7000000001\","
                   "outcome=\"accepted\"} 3");
    expect_line(t, "deskbridge_webhooks_total{platform=\"telegram\",account=\"7000000001\","
                   "outcome=\"duplicate\"} 1");
    expect_line(t, "deskbridge_webhooks_total{platform=\"viber\",account=\"shop\","
                   "outcome=\"accepted\"} 1");
    expect_line(t, "deskbridge_events_total{platform=\"telegram\",kind=\"message\"} 5");
    assert_false(has_line(t, "deskbridge_events_total{platform=\"telegram\",kind=\"edit\"} 0"));
    expect_line(t, "deskbridge_sends_total{platform=\"telegram\",outcome=\"sent\","
                   "error_class=\"\"} 1");
    expect_line(t, "deskbridge_sends_total{platform=\"telegram\",outcome=\"retry\","
                   "error_class=\"429\"} 2");
    expect_line(t, "deskbridge_dead_letters_total 1");
    assert_int_equal(count_prefix(t, "deskbridge_webhooks_total{"), 3);
    /* each family is announced once */
    assert_int_equal(count_prefix(t, "# TYPE deskbridge_webhooks_total counter"), 1);
    assert_int_equal(count_prefix(t, "# HELP deskbridge_webhooks_total "), 1);
    free(t);
    db_metrics_free(m);
}

static void label_values_are_escaped(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    db_metrics_webhook(m, "telegram", "a\"b\\c\nd", "accepted");
    char *t = render(m);
    expect_line(t, "deskbridge_webhooks_total{platform=\"telegram\",account=\"a\\\"b\\\\c\\nd\","
                   "outcome=\"accepted\"} 1");
    free(t);
    db_metrics_free(m);
}

static void unknown_platforms_and_odd_values_cannot_mint_series(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    /* Platform names of unknown accounts come from the URL. */
    db_metrics_webhook(m, "wp-admin", "-", "unknown_account");
    db_metrics_webhook(m, "../etc", "-", "unknown_account");
    db_metrics_webhook(m, NULL, NULL, "unknown_account");
    char long_class[200];
    memset(long_class, 'x', sizeof long_class - 1);
    long_class[sizeof long_class - 1] = '\0';
    db_metrics_send(m, "whatsapp", "failed", long_class);
    db_metrics_send(m, "whatsapp", "failed", "bad\xff\xfe");
    /* 'ж' is two bytes: 40 of them cut at 64 bytes keeps 32 whole characters */
    char cyr[81] = "";
    for (int i = 0; i < 40; i++) strcat(cyr, "ж");
    db_metrics_send(m, "viber", "failed", cyr);
    char *t = render(m);
    expect_line(t, "deskbridge_webhooks_total{platform=\"other\",account=\"-\","
                   "outcome=\"unknown_account\"} 2");
    expect_line(t, "deskbridge_webhooks_total{platform=\"other\",account=\"\","
                   "outcome=\"unknown_account\"} 1");
    char want[256];
    snprintf(want, sizeof want,
             "deskbridge_sends_total{platform=\"whatsapp\",outcome=\"failed\",error_class=\"%.64s\"} 1",
             long_class);
    expect_line(t, want);
    expect_line(t, "deskbridge_sends_total{platform=\"whatsapp\",outcome=\"failed\","
                   "error_class=\"invalid_utf8\"} 1");
    snprintf(want, sizeof want,
             "deskbridge_sends_total{platform=\"viber\",outcome=\"failed\",error_class=\"%.64s\"} 1",
             cyr);
    expect_line(t, want);
    free(t);
    db_metrics_free(m);
}

static void label_sets_are_capped_and_drops_counted(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    db_metrics_send(m, "telegram", "sent", "");
    char code[32];
    for (int i = 0; i < 1500; i++) {
        snprintf(code, sizeof code, "%d", 100000 + i);
        db_metrics_send(m, "telegram", "failed", code);
    }
    /* a series seen before the cap keeps counting after it */
    db_metrics_send(m, "telegram", "sent", "");
    db_metrics_webhook(m, "telegram", "1", "accepted"); /* other families are not affected */
    char *t = render(m);
    assert_int_equal(count_prefix(t, "deskbridge_sends_total{"), 1000);
    expect_line(t, "deskbridge_sends_total{platform=\"telegram\",outcome=\"sent\","
                   "error_class=\"\"} 2");
    expect_line(t, "deskbridge_metric_series_dropped_total{metric=\"deskbridge_sends_total\"} 501");
    expect_line(t, "deskbridge_metric_series_dropped_total{metric=\"deskbridge_webhooks_total\"} 0");
    expect_line(t, "deskbridge_webhooks_total{platform=\"telegram\",account=\"1\","
                   "outcome=\"accepted\"} 1");
    free(t);
    db_metrics_free(m);
}

static void histogram_buckets_are_cumulative_with_sum_and_count(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    db_metrics_store_latency(m, 0.0003);
    db_metrics_store_latency(m, 0.0005); /* on a bound: counts in that bucket (le) */
    db_metrics_store_latency(m, 0.003);
    db_metrics_store_latency(m, 0.003);
    db_metrics_store_latency(m, 3.0);   /* above the top bucket: only +Inf */
    db_metrics_store_latency(m, -0.01); /* a clock step: counted as 0 */
    char *t = render(m);
    expect_line(t, "# TYPE deskbridge_stream_write_seconds histogram");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"0.0005\"} 3");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"0.001\"} 3");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"0.0025\"} 3");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"0.005\"} 5");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"1\"} 5");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"2.5\"} 5");
    expect_line(t, "deskbridge_stream_write_seconds_bucket{le=\"+Inf\"} 6");
    expect_line(t, "deskbridge_stream_write_seconds_count 6");
    assert_int_equal(count_prefix(t, "deskbridge_stream_write_seconds_bucket{"), 13);
    const char *sum = strstr(t, "\ndeskbridge_stream_write_seconds_sum ");
    assert_non_null(sum);
    double s = strtod(sum + strlen("\ndeskbridge_stream_write_seconds_sum "), NULL);
    assert_true(s > 3.0067 && s < 3.0069);

    db_metrics_first_response(m, 45);
    db_metrics_first_response(m, 7200);
    db_metrics_first_response(m, 200000);
    free(t);
    t = render(m);
    expect_line(t, "deskbridge_first_response_seconds_bucket{le=\"10\"} 0");
    expect_line(t, "deskbridge_first_response_seconds_bucket{le=\"60\"} 1");
    expect_line(t, "deskbridge_first_response_seconds_bucket{le=\"7200\"} 2");
    expect_line(t, "deskbridge_first_response_seconds_bucket{le=\"86400\"} 2");
    expect_line(t, "deskbridge_first_response_seconds_bucket{le=\"+Inf\"} 3");
    expect_line(t, "deskbridge_first_response_seconds_sum 207245");
    expect_line(t, "deskbridge_first_response_seconds_count 3");
    free(t);
    db_metrics_free(m);
}

static void redis_state_counts_reconnects_not_the_first_connect(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    char *t = render(m);
    expect_line(t, "deskbridge_redis_up 0");
    expect_line(t, "deskbridge_redis_reconnects_total 0");
    free(t);
    db_metrics_redis_state(m, 1);
    t = render(m);
    expect_line(t, "deskbridge_redis_up 1");
    expect_line(t, "deskbridge_redis_reconnects_total 0");
    free(t);
    db_metrics_redis_state(m, 0);
    db_metrics_redis_state(m, 0);
    db_metrics_redis_state(m, 1);
    db_metrics_redis_state(m, 1); /* no change, no reconnect */
    t = render(m);
    expect_line(t, "deskbridge_redis_up 1");
    expect_line(t, "deskbridge_redis_reconnects_total 1");
    free(t);
    db_metrics_free(m);
}

static void null_registry_is_ignored(void **state)
{
    (void)state;
    db_metrics_webhook(NULL, "telegram", "1", "accepted");
    db_metrics_store_latency(NULL, 1);
    db_metrics_events(NULL, "telegram", "message", 1);
    db_metrics_send(NULL, "telegram", "sent", "");
    db_metrics_dead_letter(NULL);
    db_metrics_redis_state(NULL, 1);
    db_metrics_first_response(NULL, 1);
    db_metrics_free(NULL);
}

/* promtool is the reference parser; scripts/deps.sh installs it, so its absence fails. */
static void promtool_accepts_the_rendering(void **state)
{
    (void)state;
    struct db_metrics *m = db_metrics_new();
    db_metrics_webhook(m, "telegram", "odd \"acc\\ount\"\n", "accepted");
    db_metrics_webhook(m, "whatsapp", "123", "invalid");
    db_metrics_events(m, "whatsapp", "receipt", 4);
    db_metrics_send(m, "viber", "failed", "12");
    db_metrics_store_latency(m, 0.002);
    db_metrics_first_response(m, 100);
    db_metrics_redis_state(m, 1);
    char *t = render(m);
    char dir[] = "/tmp/db-metrics-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], cmd[256];
    snprintf(path, sizeof path, "%s/m.prom", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(t, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s/out 2>&1", path, dir);
    int st = system(cmd);
    char out[4096] = "";
    snprintf(path, sizeof path, "%s/out", dir);
    f = fopen(path, "r");
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("promtool check metrics failed (status %d): %s\n---\n%s", st, out, t);
    free(t);
    db_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_accumulate_per_label_set),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(unknown_platforms_and_odd_values_cannot_mint_series),
        cmocka_unit_test(label_sets_are_capped_and_drops_counted),
        cmocka_unit_test(histogram_buckets_are_cumulative_with_sum_and_count),
        cmocka_unit_test(redis_state_counts_reconnects_not_the_first_connect),
        cmocka_unit_test(null_registry_is_ignored),
        cmocka_unit_test(promtool_accepts_the_rendering),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
