/* test_hours.c - the schedule engine against the installed tz database (DST both ways in
 * Europe/Kyiv, America/New_York, Australia/Lord_Howe; Asia/Tehran without DST), spans
 * across midnight, holidays, partial days, closures, next_open and its wording, the exact
 * configuration errors; keyword matching, placeholder expansion and canned responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "auto/autoreply.h"
#include "auto/rules.h"
#include "app/features.h"
#include "conf/config.h"
#include "conf/config_internal.h"
#include "hours/hours.h"
#include "hours/tz.h"
#include "send/canned.h"

/* A [schedule test] section as config.c would build it: "test.conf", key i on line i + 2. */
struct sec_buf {
    struct db_conf_kv kv[16];
    struct db_conf_section sec;
};

static const struct db_conf_section *vsection(struct sec_buf *b, const char *type,
                                              const char *name, va_list ap)
{
    size_t n = 0;
    const char *k;
    while ((k = va_arg(ap, const char *)) && n < 16) {
        b->kv[n] = (struct db_conf_kv){k, va_arg(ap, const char *), "test.conf", (int)n + 2};
        n++;
    }
    b->sec = (struct db_conf_section){type, name, b->kv, n};
    return &b->sec;
}

static const struct db_conf_section *section(struct sec_buf *b, const char *type,
                                             const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const struct db_conf_section *s = vsection(b, type, name, ap);
    va_end(ap);
    return s;
}

/* The schedule of (timezone, hours, then more key/value pairs); fails the test on error. */
static struct db_schedule *sched(const char *tz, const char *hours, ...)
{
    struct sec_buf b;
    va_list ap;
    va_start(ap, hours);
    size_t n = 0;
    b.kv[n++] = (struct db_conf_kv){"timezone", tz, "test.conf", 2};
    b.kv[n++] = (struct db_conf_kv){"hours", hours, "test.conf", 3};
    const char *k;
    while ((k = va_arg(ap, const char *)) && n < 16) {
        b.kv[n] = (struct db_conf_kv){k, va_arg(ap, const char *), "test.conf", (int)n + 2};
        n++;
    }
    va_end(ap);
    b.sec = (struct db_conf_section){"schedule", "test", b.kv, n};
    struct db_schedule *s = NULL;
    struct db_err e = {0};
    int rc = db_schedule_parse(&b.sec, &s, &e);
    if (rc != DB_OK) fail_msg("parse: %s", e.msg);
    return s;
}

/* UTC instant, independent of any TZ switching. */
static time_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi};
    return timegm(&tm);
}

static time_t next_open(const struct db_schedule *s, time_t t)
{
    time_t r = 0;
    assert_int_equal(db_schedule_next_open(s, t, &r), DB_OK);
    return r;
}

static time_t closed_since(const struct db_schedule *s, time_t t)
{
    time_t r = 0;
    assert_int_equal(db_schedule_closed_since(s, t, &r), DB_OK);
    return r;
}

/* Kyiv, 2026-03-29: 03:00 EET becomes 04:00 EEST at 01:00 UTC. */
static void kyiv_spring_forward(void **state)
{
    (void)state;
    struct db_schedule *s = sched("Europe/Kyiv", "sun 03:00-05:00", NULL);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 3, 29, 0, 59)), 0); /* 02:59 EET */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 3, 29, 1, 0)), 1);  /* 04:00 EEST */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 3, 29, 1, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 3, 29, 2, 0)), 0);  /* 05:00 EEST */
    /* The local 03:00 never happens: the schedule opens at the jump. */
    assert_int_equal(next_open(s, utc(2026, 3, 29, 0, 0)), utc(2026, 3, 29, 1, 0));
    assert_int_equal(closed_since(s, utc(2026, 3, 29, 3, 0)), utc(2026, 3, 29, 2, 0));
    db_schedule_free(s);

    /* Hours entirely inside the skipped hour never open that day: next Sunday instead. */
    s = sched("Europe/Kyiv", "sun 03:15-03:45", NULL);
    assert_int_equal(next_open(s, utc(2026, 3, 29, 0, 0)), utc(2026, 4, 5, 0, 15));
    db_schedule_free(s);
}

/* Kyiv, 2026-10-25: 04:00 EEST becomes 03:00 EET at 01:00 UTC; 03:00-04:00 happens twice. */
static void kyiv_fall_back(void **state)
{
    (void)state;
    struct db_schedule *s = sched("Europe/Kyiv", "sun 03:00-03:30", NULL);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 10, 25, 0, 15)), 1); /* 03:15 EEST */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 10, 25, 0, 45)), 0); /* 03:45 EEST */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 10, 25, 1, 15)), 1); /* 03:15 EET */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 10, 25, 1, 45)), 0);
    assert_int_equal(next_open(s, utc(2026, 10, 25, 0, 40)), utc(2026, 10, 25, 1, 0));
    assert_int_equal(closed_since(s, utc(2026, 10, 25, 0, 45)), utc(2026, 10, 25, 0, 30));
    assert_int_equal(closed_since(s, utc(2026, 10, 25, 1, 45)), utc(2026, 10, 25, 1, 30));
    db_schedule_free(s);
}

/* New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00
 * EST (06:00 UTC). */
static void new_york_both_ways(void **state)
{
    (void)state;
    struct db_schedule *s = sched("America/New_York", "sun 01:00-02:30", NULL);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 3, 8, 6, 59)), 1);  /* 01:59 EST */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 3, 8, 7, 0)), 0);   /* 03:00 EDT */
    assert_int_equal(closed_since(s, utc(2026, 3, 8, 7, 30)), utc(2026, 3, 8, 7, 0));
    /* In November 01:00-02:00 is lived twice and the schedule stays open through both. */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 1, 5, 30)), 1); /* 01:30 EDT */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 1, 6, 30)), 1); /* 01:30 EST */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 1, 7, 15)), 1); /* 02:15 EST */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 1, 7, 30)), 0); /* 02:30 EST */
    assert_int_equal(closed_since(s, utc(2026, 11, 1, 8, 0)), utc(2026, 11, 1, 7, 30));
    db_schedule_free(s);

    /* A weekend with the change in it: Monday 09:00 EST is 14:00 UTC. */
    s = sched("America/New_York", "mon-fri 09:00-18:00", NULL);
    assert_int_equal(next_open(s, utc(2026, 10, 31, 12, 0)), utc(2026, 11, 2, 14, 0));
    assert_int_equal(closed_since(s, utc(2026, 10, 31, 12, 0)), utc(2026, 10, 30, 22, 0));
    db_schedule_free(s);
}

/* Tehran has kept +03:30 all year since 2022 in the installed tzdata. */
static void tehran_no_dst(void **state)
{
    (void)state;
    struct db_schedule *s = sched("Asia/Tehran", "sat-wed 09:00-17:00", NULL);
    assert_int_equal(next_open(s, utc(2026, 6, 1, 0, 0)), utc(2026, 6, 1, 5, 30));
    assert_int_equal(next_open(s, utc(2026, 1, 5, 0, 0)), utc(2026, 1, 5, 5, 30));
    assert_int_equal(db_schedule_is_open(s, utc(2026, 6, 4, 8, 0)), 0); /* Thursday */
    db_schedule_free(s);
}

/* Lord Howe moves by 30 minutes: 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00 UTC Apr 4);
 * 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30 UTC Oct 3). */
static void lord_howe_half_hour(void **state)
{
    (void)state;
    struct db_schedule *s = sched("Australia/Lord_Howe", "sun 01:30-02:00", NULL);
    assert_int_equal(next_open(s, utc(2026, 4, 4, 14, 0)), utc(2026, 4, 4, 14, 30));
    assert_int_equal(db_schedule_is_open(s, utc(2026, 4, 4, 14, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 4, 4, 15, 15)), 1); /* the repeat */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 4, 4, 15, 31)), 0);
    assert_int_equal(closed_since(s, utc(2026, 4, 4, 16, 0)), utc(2026, 4, 4, 15, 30));
    db_schedule_free(s);

    s = sched("Australia/Lord_Howe", "sun 02:00-03:00", NULL);
    assert_int_equal(next_open(s, utc(2026, 10, 3, 15, 0)), utc(2026, 10, 3, 15, 30));
    assert_int_equal(db_schedule_is_open(s, utc(2026, 10, 3, 15, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 10, 3, 16, 0)), 0);
    db_schedule_free(s);
}

static void spans_across_midnight(void **state)
{
    (void)state;
    /* 2026-11-27 is a Friday. */
    struct db_schedule *s = sched("UTC", "fri 22:00-02:00; sun 23:00-01:00", NULL);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 27, 21, 59)), 0);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 27, 22, 0)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 28, 1, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 28, 2, 0)), 0);
    /* Sunday's span wraps into Monday, the start of the week. */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 30, 0, 30)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 30, 1, 0)), 0);
    assert_int_equal(next_open(s, utc(2026, 11, 28, 3, 0)), utc(2026, 11, 29, 23, 0));
    assert_int_equal(closed_since(s, utc(2026, 11, 29, 12, 0)), utc(2026, 11, 28, 2, 0));
    db_schedule_free(s);

    /* Several intervals a day, a wrapping day range, 24:00. */
    s = sched("UTC", "sat-mon 09:00-12:00, 13:00-24:00", NULL);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 30, 12, 30)), 0); /* Monday */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 11, 30, 23, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 12, 1, 10, 0)), 0);   /* Tuesday */
    assert_int_equal(next_open(s, utc(2026, 11, 30, 12, 30)), utc(2026, 11, 30, 13, 0));
    db_schedule_free(s);
}

static void holidays_partial_days_closures(void **state)
{
    (void)state;
    /* 2026-12-24 Thursday, 25 Friday, 28 Monday. */
    struct db_schedule *s =
        sched("UTC", "mon-fri 09:00-18:00", "holidays", "2026-12-25, 2026-12-24 09:00-13:00",
              "closures", "2026-12-28 12:00-15:00, 2026-12-30 17:00-10:00", NULL);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 12, 24, 12, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 12, 24, 13, 0)), 0);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 12, 25, 10, 0)), 0);
    assert_int_equal(next_open(s, utc(2026, 12, 24, 14, 0)), utc(2026, 12, 28, 9, 0));
    assert_int_equal(closed_since(s, utc(2026, 12, 27, 9, 0)), utc(2026, 12, 24, 13, 0));
    /* The closure cuts Monday in two; one across midnight eats the next morning. */
    assert_int_equal(db_schedule_is_open(s, utc(2026, 12, 28, 11, 59)), 1);
    assert_int_equal(db_schedule_is_open(s, utc(2026, 12, 28, 12, 0)), 0);
    assert_int_equal(next_open(s, utc(2026, 12, 28, 12, 0)), utc(2026, 12, 28, 15, 0));
    assert_int_equal(next_open(s, utc(2026, 12, 30, 17, 30)), utc(2026, 12, 31, 10, 0));
    /* A partial day on a weekend opens it. */
    db_schedule_free(s);
    s = sched("UTC", "mon-fri 09:00-18:00", "holidays", "2026-12-26 10:00-12:00", NULL);
    assert_int_equal(next_open(s, utc(2026, 12, 25, 19, 0)), utc(2026, 12, 26, 10, 0));
    db_schedule_free(s);
}

static void next_open_wording(void **state)
{
    (void)state;
    char buf[64];
    struct db_schedule *s = sched("Europe/Kyiv", "mon-fri 09:00-18:00", "holidays",
                                  "2027-01-01, 2027-01-04, 2027-01-05, 2027-01-06, 2027-01-07, "
                                  "2027-01-08",
                                  NULL);
    /* Friday 2026-11-27 20:00 Kyiv (18:00 UTC) -> Monday 09:00. */
    time_t now = utc(2026, 11, 27, 18, 0), at = next_open(s, now);
    assert_int_equal(at, utc(2026, 11, 30, 7, 0));
    assert_string_equal(db_schedule_format(s, at, now, NULL, buf, sizeof buf), "Monday 09:00");
    assert_string_equal(db_schedule_format(s, at, now, "uk", buf, sizeof buf),
                        "понеділок 09:00");
    /* Far away: the date is added. */
    now = utc(2026, 12, 31, 17, 0);
    at = next_open(s, now);
    assert_string_equal(db_schedule_format(s, at, now, "en", buf, sizeof buf),
                        "Monday 2027-01-11 09:00");
    assert_string_equal(db_schedule_tz(s), "Europe/Kyiv");
    db_schedule_free(s);
}

/* The process's own TZ is put back after every use. */
static void tz_is_restored(void **state)
{
    (void)state;
    setenv("TZ", "America/New_York", 1);
    tzset();
    struct db_schedule *s = sched("Asia/Tehran", "mon 09:00-10:00", NULL);
    (void)db_schedule_is_open(s, utc(2026, 6, 1, 0, 0));
    assert_string_equal(getenv("TZ"), "America/New_York");
    time_t t = utc(2026, 7, 1, 12, 0);
    struct tm tm;
    localtime_r(&t, &tm);
    assert_int_equal(tm.tm_hour, 8);
    db_schedule_free(s);
    unsetenv("TZ");
    tzset();
}

/* The section checked alone, as the loader builds it. */
static int schedule_check(const struct db_conf_section *sec, struct db_err *e)
{
    struct db_schedule *s = NULL;
    int rc = db_schedule_parse(sec, &s, e);
    db_schedule_free(s);
    return rc;
}

static void expect_error(const char *msg, ...)
{
    struct sec_buf b;
    va_list ap;
    va_start(ap, msg);
    const struct db_conf_section *sec = vsection(&b, "schedule", "office", ap);
    va_end(ap);
    struct db_err e = {0};
    struct db_schedule *s = NULL;
    assert_int_equal(db_schedule_parse(sec, &s, &e), DB_ECONFIG);
    assert_null(s);
    assert_string_equal(e.msg, msg);
    assert_int_equal(schedule_check(sec, &e), DB_ECONFIG);
}

static void parse_errors(void **state)
{
    (void)state;
    expect_error("[schedule office]: timezone: is required (e.g. Europe/Kyiv)", "hours",
                 "mon 09:00-10:00", NULL);
    expect_error("test.conf:2: timezone: unknown time zone 'Europe/Kyyiv' (not in the tz "
                 "database)",
                 "timezone", "Europe/Kyyiv", NULL);
    expect_error("test.conf:2: timezone: '../../etc/passwd': want an IANA time zone name such "
                 "as Europe/Kyiv",
                 "timezone", "../../etc/passwd", NULL);
    expect_error("[schedule office]: hours: is required (e.g. 'mon-fri 09:00-18:00')",
                 "timezone", "UTC", NULL);
    expect_error("test.conf:3: hours: 'mon-frx 09:00-18:00': want days as mon..sun or a range "
                 "like mon-fri",
                 "timezone", "UTC", "hours", "mon-frx 09:00-18:00", NULL);
    expect_error("test.conf:3: hours: 'sat 25:00-26:00': want intervals HH:MM-HH:MM from "
                 "00:00 to 24:00",
                 "timezone", "UTC", "hours", "mon 09:00-18:00; sat 25:00-26:00", NULL);
    expect_error("test.conf:3: hours: 'mon-fri': days without hours (want e.g. 'mon-fri "
                 "09:00-18:00')",
                 "timezone", "UTC", "hours", "mon-fri", NULL);
    expect_error("test.conf:3: hours: 'mon 09:00-09:00': an interval is empty", "timezone",
                 "UTC", "hours", "mon 09:00-09:00", NULL);
    expect_error("test.conf:3: hours: 'mon 09:00-10:00 tue 10:00-11:00': want ';' between "
                 "groups of days",
                 "timezone", "UTC", "hours", "mon 09:00-10:00 tue 10:00-11:00", NULL);
    expect_error("test.conf:4: holidays: '2026-02-29': want a date YYYY-MM-DD", "timezone",
                 "UTC", "hours", "mon 09:00-10:00", "holidays", "2026-12-25, 2026-02-29", NULL);
    expect_error("test.conf:4: holidays: '2026-12-24 22:00-02:00': a partial day must end on "
                 "the same date",
                 "timezone", "UTC", "hours", "mon 09:00-10:00", "holidays",
                 "2026-12-24 22:00-02:00", NULL);
    expect_error("test.conf:4: holidays: '2026-12-24': the date is listed both as a whole and "
                 "a partial day",
                 "timezone", "UTC", "hours", "mon 09:00-10:00", "holidays",
                 "2026-12-24 09:00-12:00, 2026-12-24", NULL);
    expect_error("test.conf:4: closures: '2026-11-30': a closure needs hours (a whole day is a "
                 "holiday)",
                 "timezone", "UTC", "hours", "mon 09:00-10:00", "closures", "2026-11-30", NULL);
    expect_error("test.conf:4: accounts: 'telegram': want platform:account", "timezone", "UTC",
                 "hours", "mon 09:00-10:00", "accounts", "viber:shop, telegram", NULL);
    expect_error("test.conf:4: away_msg: unknown key in [schedule]", "timezone", "UTC", "hours",
                 "mon 09:00-10:00", "away_msg", "x", NULL);

    /* Keys built from the quickstart variables are named as the variables. */
    struct db_conf_kv ekv[] = {{"timezone", "Europe/Kyiv", "environment", 0},
                               {"hours", "mon-fri 9-18", "environment", 0}};
    struct db_conf_section esec = {"schedule", "default", ekv, 2};
    struct db_err ee = {0};
    assert_int_equal(schedule_check(&esec, &ee), DB_ECONFIG);
    assert_string_equal(ee.msg, "environment: DESKBRIDGE_BUSINESS_HOURS: 'mon-fri 9-18': want "
                                "intervals HH:MM-HH:MM from 00:00 to 24:00");
    esec.kv = ekv + 1;
    esec.n = 1;
    assert_int_equal(schedule_check(&esec, &ee), DB_ECONFIG);
    assert_string_equal(ee.msg, "environment: DESKBRIDGE_TIMEZONE: is required with "
                                "DESKBRIDGE_BUSINESS_HOURS (e.g. Europe/Kyiv)");

    /* Language variants are accepted. */
    struct sec_buf b;
    struct db_err e = {0};
    const struct db_conf_section *sec =
        section(&b, "schedule", "office", "timezone", "UTC", "hours", "mon 09:00-10:00",
                "away_message", "closed", "away_message_uk", "зачинено", "greeting_uk", "привіт",
                "accounts", "telegram:1, viber:shop", NULL);
    assert_int_equal(schedule_check(sec, &e), DB_OK);
}

static void keyword_matching(void **state)
{
    (void)state;
    assert_true(db_keyword_match("price, cost", "What's the PRICE?"));
    assert_false(db_keyword_match("price", "priceless"));
    assert_true(db_keyword_match("доставка", "Де моя ДОСТАВКА?"));
    assert_false(db_keyword_match("доставка", "доставками задоволений"));
    assert_true(db_keyword_match("їжа, ґанок", "Ґанок зламався"));
    assert_true(db_keyword_match("Євро", "ціна в євро, будь ласка"));
    assert_true(db_keyword_match("opening hours", "what are your Opening Hours?"));
    assert_false(db_keyword_match("opening hours", "opening  hours"));
    assert_true(db_keyword_match("оплата", "«Оплата» не проходить"));
    assert_false(db_keyword_match(" , ", "anything"));
    assert_false(db_keyword_match("abc", "\xff\xfe abd"));
}

static void text_expansion(void **state)
{
    (void)state;
    const char *vars[] = {"next_open", "Monday 09:00", "customer_name", NULL, NULL};
    char *t = db_text_expand("Hi {customer_name}, back {next_open} {x} {", vars);
    assert_string_equal(t, "Hi {customer_name}, back Monday 09:00 {x} {");
    free(t);
}

static void canned_expansion(void **state)
{
    (void)state;
    /* Loaded as the daemon loads it: the sections become their structs once. */
    static const char text[] = "[canned thanks]\n"
                               "text = Thanks {customer_name}, {agent_name} here; back {next_open}\n"
                               "[schedule default]\n"
                               "timezone = UTC\n"
                               "hours = mon-sun 00:00-24:00\n";
    static char *const no_env[] = {NULL};
    struct db_config_opts o = {.features = db_feature_tables, .text = text, .text_len = sizeof text - 1};
    struct db_config *loaded = NULL;
    struct db_err le = {0};
    if (db_config_load_opts("test.conf", no_env, &o, &loaded, &le) != DB_OK)
        fail_msg("load: %s", le.msg);
    struct db_config cfg = *loaded;
    struct db_err e = {0};
    json_t *cmd = json_pack("{s:s, s:s, s:s, s:s}", "conversation", "telegram:1:2", "canned",
                            "thanks", "customer_name", "Olena", "agent_name", "Ivan");
    assert_int_equal(db_canned_expand(&cfg, cmd, &e), DB_OK);
    /* Open all the time: {next_open} stays as written. */
    assert_string_equal(json_string_value(json_object_get(cmd, "text")),
                        "Thanks Olena, Ivan here; back {next_open}");
    assert_null(json_object_get(cmd, "canned"));
    json_decref(cmd);

    cmd = json_pack("{s:s, s:s}", "conversation", "telegram:1:2", "canned", "nope");
    assert_int_equal(db_canned_expand(&cfg, cmd, &e), DB_EINVAL);
    assert_string_equal(e.msg, "canned: no canned response of that name");
    json_decref(cmd);
    cmd = json_pack("{s:s, s:s, s:s}", "conversation", "telegram:1:2", "canned", "thanks",
                    "text", "x");
    assert_int_equal(db_canned_expand(&cfg, cmd, &e), DB_EINVAL);
    json_decref(cmd);
    cmd = json_pack("{s:s, s:s}", "conversation", "telegram:1:2", "text", "plain");
    assert_int_equal(db_canned_expand(&cfg, cmd, &e), DB_OK);
    assert_string_equal(json_string_value(json_object_get(cmd, "text")), "plain");
    json_decref(cmd);
    db_config_free(loaded);
}

static void keyword_and_canned_sections(void **state)
{
    (void)state;
    struct sec_buf b;
    struct db_err e = {0};
    assert_int_equal(db_keyword_conf_check(section(&b, "keyword", "k", "regex", "(a", "answer",
                                                   "x", NULL),
                                           &e),
                     DB_ECONFIG);
    assert_non_null(strstr(e.msg, "test.conf:2: regex: not a POSIX extended regex: "));
    assert_int_equal(db_keyword_conf_check(section(&b, "keyword", "k", "match", "a", "regex",
                                                   "b", "answer", "x", NULL),
                                           &e),
                     DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:3: regex: give either match or regex, not both");
    assert_int_equal(db_keyword_conf_check(section(&b, "keyword", "k", "match", "a", NULL), &e),
                     DB_ECONFIG);
    assert_string_equal(e.msg, "[keyword k]: answer: is required");
    assert_int_equal(db_keyword_conf_check(section(&b, "keyword", "k", "match", "a", "answer",
                                                   "x", "resolve", "maybe", NULL),
                                           &e),
                     DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:4: resolve: must be true or false (got 'maybe')");
    /* The one yes/no dialect of the configuration. */
    assert_int_equal(db_keyword_conf_check(section(&b, "keyword", "k", "match", "a", "answer",
                                                   "x", "resolve", "yes", NULL),
                                           &e),
                     DB_OK);
    assert_int_equal(db_keyword_conf_check(section(&b, "keyword", "k", "regex", "^(price|cost)",
                                                   "answer", "x", "resolve", "true", "language",
                                                   "uk", "accounts", "telegram:1", NULL),
                                           &e),
                     DB_OK);
    assert_int_equal(db_canned_conf_check(section(&b, "canned", "c", NULL), &e), DB_ECONFIG);
    assert_string_equal(e.msg, "[canned c]: text: is required");
}

/* ---- the zone reader against the C library ---- */

/* Where the zone reader and localtime_r (under TZ=name, set here only to get the expected
 * value) disagree at t: 0 when they agree, else fails the test naming the instant. */
static void same_local(const struct db_tz *z, const char *name, time_t t)
{
    struct tm want, got;
    assert_non_null(localtime_r(&t, &want));
    db_tz_local(z, t, &got);
    if (want.tm_year != got.tm_year || want.tm_mon != got.tm_mon ||
        want.tm_mday != got.tm_mday || want.tm_hour != got.tm_hour ||
        want.tm_min != got.tm_min || want.tm_sec != got.tm_sec ||
        want.tm_wday != got.tm_wday || want.tm_yday != got.tm_yday ||
        want.tm_gmtoff != got.tm_gmtoff || (want.tm_isdst > 0) != (got.tm_isdst > 0))
        fail_msg("%s at %lld: libc %04d-%02d-%02d %02d:%02d:%02d off %ld dst %d, "
                 "ours %04d-%02d-%02d %02d:%02d:%02d off %ld dst %d",
                 name, (long long)t, want.tm_year + 1900, want.tm_mon + 1, want.tm_mday,
                 want.tm_hour, want.tm_min, want.tm_sec, (long)want.tm_gmtoff, want.tm_isdst,
                 got.tm_year + 1900, got.tm_mon + 1, got.tm_mday, got.tm_hour, got.tm_min,
                 got.tm_sec, (long)got.tm_gmtoff, got.tm_isdst);
}

/* Every hour from 1970 to 2060, every offset change found on the way to the second (the
 * instant before, at and after it), and a day at a time from 1850 and to 2200, where the
 * first time type and the footer's POSIX rule decide. */
static size_t compare_zone(const char *name)
{
    struct db_tz *z = NULL;
    assert_int_equal(db_tz_load(name, &z), DB_OK);
    setenv("TZ", name, 1);
    tzset();
    size_t changes = 0;
    time_t from = utc(1970, 1, 1, 0, 0), to = utc(2060, 1, 1, 0, 0);
    struct tm tm;
    long prev = (localtime_r(&from, &tm), tm.tm_gmtoff);
    for (time_t t = from; t < to; t += 3600) {
        same_local(z, name, t);
        long off = (localtime_r(&t, &tm), tm.tm_gmtoff);
        if (off == prev) continue;
        time_t lo = t - 3600, hi = t; /* offset prev at lo, off at hi */
        while (hi - lo > 1) {
            time_t mid = lo + (hi - lo) / 2;
            if ((localtime_r(&mid, &tm), tm.tm_gmtoff) == prev) lo = mid;
            else hi = mid;
        }
        for (time_t k = hi - 2; k <= hi + 1; k++) same_local(z, name, k);
        changes++;
        prev = off;
    }
    for (time_t t = utc(1850, 1, 1, 0, 0); t < from; t += 86400 + 3607) same_local(z, name, t);
    for (time_t t = to; t < utc(2200, 1, 1, 0, 0); t += 86400 + 3607) same_local(z, name, t);
    unsetenv("TZ");
    tzset();
    db_tz_free(z);
    return changes;
}

static void zone_reader_agrees_with_libc(void **state)
{
    (void)state;
    /* DST both ways, north and south, half hours, negative DST (Dublin), DST ended for good
     * (Tehran since 2022, Sao_Paulo since 2019), rules changed mid-way (New_York 2007). */
    static const char *const zones[] = {"Europe/Kyiv",       "America/New_York",
                                        "Australia/Lord_Howe", "Australia/Sydney",
                                        "Europe/Dublin",     "Asia/Tehran",
                                        "America/Sao_Paulo", "Pacific/Chatham",
                                        "Europe/London",     "UTC"};
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        size_t changes = compare_zone(zones[i]);
        /* The sweep did meet transitions where the zone has them: two a year since 1970
         * for the first two. */
        if (i < 2) assert_true(changes > 150);
    }
}

/* The two transitions of 2026 in Kyiv and New York, by hand: the local hour that is skipped
 * in spring and the one that is repeated in autumn. */
static void zone_reader_dst_instants(void **state)
{
    (void)state;
    struct db_tz *kyiv = NULL, *ny = NULL;
    assert_int_equal(db_tz_load("Europe/Kyiv", &kyiv), DB_OK);
    assert_int_equal(db_tz_load("America/New_York", &ny), DB_OK);
    struct tm tm;
    /* Kyiv: 2026-03-29 01:00 UTC, 03:00 EET becomes 04:00 EEST. */
    time_t t = utc(2026, 3, 29, 1, 0);
    db_tz_local(kyiv, t - 1, &tm);
    assert_int_equal(tm.tm_hour, 2);
    assert_int_equal(tm.tm_min, 59);
    assert_int_equal(tm.tm_gmtoff, 7200);
    db_tz_local(kyiv, t, &tm);
    assert_int_equal(tm.tm_hour, 4);
    assert_int_equal(tm.tm_gmtoff, 10800);
    assert_int_equal(tm.tm_isdst, 1);
    /* Kyiv: 2026-10-25 01:00 UTC, 04:00 EEST becomes 03:00 EET. */
    t = utc(2026, 10, 25, 1, 0);
    db_tz_local(kyiv, t - 1, &tm);
    assert_int_equal(tm.tm_hour, 3);
    assert_int_equal(tm.tm_min, 59);
    db_tz_local(kyiv, t, &tm);
    assert_int_equal(tm.tm_hour, 3);
    assert_int_equal(tm.tm_min, 0);
    assert_int_equal(tm.tm_isdst, 0);
    /* New York: 2026-03-08 07:00 UTC (02:00 EST -> 03:00 EDT), 2026-11-01 06:00 UTC
     * (02:00 EDT -> 01:00 EST). */
    assert_int_equal(db_tz_offset(ny, utc(2026, 3, 8, 7, 0) - 1), -5 * 3600);
    assert_int_equal(db_tz_offset(ny, utc(2026, 3, 8, 7, 0)), -4 * 3600);
    assert_int_equal(db_tz_offset(ny, utc(2026, 11, 1, 6, 0) - 1), -4 * 3600);
    assert_int_equal(db_tz_offset(ny, utc(2026, 11, 1, 6, 0)), -5 * 3600);
    /* Far beyond the file's last transition, where only the footer's rule speaks. */
    assert_int_equal(db_tz_offset(ny, utc(2150, 7, 1, 12, 0)), -4 * 3600);
    assert_int_equal(db_tz_offset(ny, utc(2150, 1, 1, 12, 0)), -5 * 3600);
    db_tz_free(kyiv);
    db_tz_free(ny);
}

/* Bytes that are not a usable TZif file are refused, never read past their end. */
static void zone_reader_refuses_bad_files(void **state)
{
    (void)state;
    struct db_tz *z = NULL;
    static const unsigned char junk[] = "TZif2 not really";
    assert_int_equal(db_tz_parse(junk, sizeof junk, &z), DB_EINVAL);
    assert_null(z);
    unsigned char hdr[44] = "TZif";
    assert_int_equal(db_tz_parse(hdr, sizeof hdr, &z), DB_EINVAL); /* no time type */
    hdr[39] = 1;                                                     /* one type, no data */
    assert_int_equal(db_tz_parse(hdr, sizeof hdr, &z), DB_EINVAL);
    unsigned char one[50] = "TZif";
    one[39] = 1; /* a version 1 file with a single type, UTC+3 */
    one[44 + 2] = 0x2a;
    one[44 + 3] = 0x30;
    assert_int_equal(db_tz_parse(one, sizeof one, &z), DB_OK);
    assert_int_equal(db_tz_offset(z, 0), 10800);
    db_tz_free(z);
    assert_int_equal(db_tz_load("No/Such_Zone", &z), DB_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kyiv_spring_forward),
        cmocka_unit_test(kyiv_fall_back),
        cmocka_unit_test(new_york_both_ways),
        cmocka_unit_test(tehran_no_dst),
        cmocka_unit_test(lord_howe_half_hour),
        cmocka_unit_test(spans_across_midnight),
        cmocka_unit_test(holidays_partial_days_closures),
        cmocka_unit_test(next_open_wording),
        cmocka_unit_test(tz_is_restored),
        cmocka_unit_test(zone_reader_agrees_with_libc),
        cmocka_unit_test(zone_reader_dst_instants),
        cmocka_unit_test(zone_reader_refuses_bad_files),
        cmocka_unit_test(parse_errors),
        cmocka_unit_test(keyword_matching),
        cmocka_unit_test(text_expansion),
        cmocka_unit_test(canned_expansion),
        cmocka_unit_test(keyword_and_canned_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
