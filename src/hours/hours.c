/* hours.c - the schedule engine (see hours.h and docs/business-hours.md).
 *
 * Everything is decided in local wall-clock terms: a local date plus a minute of the day.
 * The weekly hours are a bitmap of the 10080 minutes of a week; a holiday replaces one
 * date's minutes; a closure clears a range of local minutes.  Instants are turned into
 * local terms from the schedule's zone, read once from its TZif file when the schedule is
 * built (tz.c): the message path reads no file and never touches the process's TZ.
 * Searching for the next change walks local minutes and re-anchors on the real clock at
 * every UTC offset change, found by bisection, so skipped and repeated hours come out
 * right in both directions. */
#include "hours/hours.h"

#include "hours/tz.h"
#include "conf/config.h"
#include "util/schema.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEEK_MIN (7 * 1440)
#define MAX_ITEMS 1000
#define SEARCH_DAYS 400

struct hday {
    int64_t day;          /* local days since 1970-01-01 */
    int full;             /* closed the whole day */
    uint8_t open[180];    /* otherwise: open minutes of that date, one bit each */
};

struct closure {
    int64_t from, to;     /* local minutes since 1970-01-01 00:00, half-open */
};

struct db_schedule {
    char *tz;
    struct db_tz *zone;         /* read once when the schedule is built */
    uint8_t week[WEEK_MIN / 8]; /* bit (wd * 1440 + minute), Monday = 0 */
    struct hday *hol;           /* sorted by day */
    size_t nhol;
    struct closure *clo;
    size_t nclo;
};

static int bit_get(const uint8_t *b, size_t i) { return (b[i >> 3] >> (i & 7)) & 1; }
static void bit_set(uint8_t *b, size_t i) { b[i >> 3] |= (uint8_t)(1u << (i & 7)); }

static int weekday_of(int64_t day) { return (int)(((day + 3) % 7 + 7) % 7); } /* Mon = 0 */

/* ---- local time, from the zone read at load ---- */

struct local {
    int64_t min;   /* local minutes since 1970-01-01 00:00 */
    int sec;
    long off;      /* UTC offset, seconds */
    struct tm tm;
};

static void local_of(const struct db_schedule *s, time_t t, struct local *o)
{
    db_tz_local(s->zone, t, &o->tm);
    o->min = db_days_from_civil(o->tm.tm_year + 1900LL, o->tm.tm_mon + 1, o->tm.tm_mday) * 1440 +
             o->tm.tm_hour * 60 + o->tm.tm_min;
    o->sec = o->tm.tm_sec;
    o->off = o->tm.tm_gmtoff;
}

static long offset_at(const struct db_schedule *s, time_t t)
{
    return db_tz_offset(s->zone, t);
}

/* ---- local state ---- */

static const struct hday *find_holiday(const struct db_schedule *s, int64_t day)
{
    size_t lo = 0, hi = s->nhol;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->hol[mid].day == day) return &s->hol[mid];
        if (s->hol[mid].day < day) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* The open minutes of one local date, one byte each. */
static void day_mask(const struct db_schedule *s, int64_t day, uint8_t m[1440])
{
    const struct hday *h = find_holiday(s, day);
    if (h)
        for (int i = 0; i < 1440; i++) m[i] = h->full ? 0 : (uint8_t)bit_get(h->open, (size_t)i);
    else
        for (int i = 0, base = weekday_of(day) * 1440; i < 1440; i++)
            m[i] = (uint8_t)bit_get(s->week, (size_t)(base + i));
    int64_t d0 = day * 1440, d1 = d0 + 1440;
    for (size_t c = 0; c < s->nclo; c++) {
        int64_t a = s->clo[c].from > d0 ? s->clo[c].from : d0;
        int64_t b = s->clo[c].to < d1 ? s->clo[c].to : d1;
        for (int64_t k = a; k < b; k++) m[k - d0] = 0;
    }
}

static int state_at(const struct db_schedule *s, time_t t)
{
    struct local l;
    uint8_t m[1440];
    local_of(s, t, &l);
    int64_t day = db_fdiv(l.min, 1440);
    day_mask(s, day, m);
    return m[l.min - day * 1440];
}

/* The first instant after t at which the state differs from state_at(t), or -1 when there
 * is none within SEARCH_DAYS. */
static time_t next_change(const struct db_schedule *s, time_t t0)
{
    int st = state_at(s, t0);
    time_t t = t0, end = t0 + (time_t)SEARCH_DAYS * 86400;
    uint8_t m[1440];
    while (t < end) {
        struct local l;
        local_of(s, t, &l);
        int64_t day = db_fdiv(l.min, 1440);
        int k = (int)(l.min - day * 1440);
        day_mask(s, day, m);
        int j = k + 1;
        while (j < 1440 && m[j] == st) j++;
        /* Where local minute j begins if the offset holds until then. */
        time_t cand = t - l.sec + (time_t)(j - k) * 60;
        if (offset_at(s, cand) != l.off) {
            time_t lo = t, hi = cand;
            while (hi - lo > 1) {
                time_t mid = lo + (hi - lo) / 2;
                if (offset_at(s, mid) == l.off) lo = mid;
                else hi = mid;
            }
            cand = hi; /* the first instant under the new offset */
        }
        if (state_at(s, cand) != st) return cand;
        t = cand;
    }
    return -1;
}

/* The first instant of the period of constant state that holds t, or -1 when it began more
 * than SEARCH_DAYS before t. */
static time_t period_start(const struct db_schedule *s, time_t t0)
{
    int st = state_at(s, t0);
    time_t t = t0, end = t0 - (time_t)SEARCH_DAYS * 86400;
    uint8_t m[1440];
    while (t > end) {
        struct local l;
        local_of(s, t, &l);
        int64_t day = db_fdiv(l.min, 1440);
        int k = (int)(l.min - day * 1440);
        day_mask(s, day, m);
        int j = k;
        while (j > 0 && m[j - 1] == st) j--;
        time_t cand = t - l.sec - (time_t)(k - j) * 60;
        if (offset_at(s, cand) != l.off) {
            time_t lo = cand, hi = t;
            while (hi - lo > 1) {
                time_t mid = lo + (hi - lo) / 2;
                if (offset_at(s, mid) == l.off) hi = mid;
                else lo = mid;
            }
            cand = hi; /* the first instant under t's offset */
        }
        if (state_at(s, cand - 1) != st) return cand;
        t = cand - 1;
    }
    return -1;
}

int db_schedule_is_open(const struct db_schedule *s, time_t t)
{
    return state_at(s, t);
}

int db_schedule_next_open(const struct db_schedule *s, time_t t, time_t *out)
{
    time_t r = state_at(s, t) ? t : next_change(s, t);
    if (r < 0) return DB_ENOTFOUND;
    *out = r;
    return DB_OK;
}

int db_schedule_closed_since(const struct db_schedule *s, time_t t, time_t *out)
{
    if (state_at(s, t)) return DB_EINVAL;
    time_t r = period_start(s, t);
    if (r < 0) return DB_ENOTFOUND;
    *out = r;
    return DB_OK;
}

const char *db_schedule_format(const struct db_schedule *s, time_t t, time_t now,
                               const char *lang, char *buf, size_t n)
{
    static const char *const en[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                      "Thursday", "Friday", "Saturday"};
    static const char *const uk[] = {"неділя", "понеділок", "вівторок", "середа",
                                     "четвер", "пʼятниця",  "субота"};
    static const char *const ru[] = {"воскресенье", "понедельник", "вторник", "среда",
                                     "четверг",     "пятница",     "суббота"};
    const char *const *names = en;
    if (lang && strncmp(lang, "uk", 2) == 0) names = uk;
    else if (lang && strncmp(lang, "ru", 2) == 0) names = ru;
    struct local l;
    local_of(s, t, &l);
    const char *day = names[l.tm.tm_wday >= 0 && l.tm.tm_wday < 7 ? l.tm.tm_wday : 0];
    if (t - now < 6 * 86400)
        snprintf(buf, n, "%s %02d:%02d", day, l.tm.tm_hour, l.tm.tm_min);
    else
        snprintf(buf, n, "%s %04d-%02d-%02d %02d:%02d", day, l.tm.tm_year + 1900,
                 l.tm.tm_mon + 1, l.tm.tm_mday, l.tm.tm_hour, l.tm.tm_min);
    return buf;
}

const char *db_schedule_tz(const struct db_schedule *s) { return s->tz; }

void db_schedule_free(struct db_schedule *s)
{
    if (!s) return;
    free(s->tz);
    db_tz_free(s->zone);
    free(s->hol);
    free(s->clo);
    free(s);
}

/* The name a user wrote: the environment variable for keys of [schedule default] that came
 * from the quickstart variables, else the key. */
static const char *kname(const struct db_conf_kv *kv, const char *key)
{
    static const char *const map[][2] = {{"timezone", "DESKBRIDGE_TIMEZONE"},
                                         {"hours", "DESKBRIDGE_BUSINESS_HOURS"},
                                         {"holidays", "DESKBRIDGE_HOLIDAYS"},
                                         {"away_message", "DESKBRIDGE_AWAY_MESSAGE"}};
    if (!kv || kv->line > 0 || strcmp(kv->file, "environment") != 0) return key;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(key, map[i][0]) == 0) return map[i][1];
    return key;
}

/* ---- parsing ---- */

struct cur {
    const char *p;
};

static void skip_ws(struct cur *c)
{
    while (*c->p == ' ' || *c->p == '\t') c->p++;
}

/* HH:MM (24:00 only when allow24) -> minutes, or -1. */
static int parse_hhmm(struct cur *c, int allow24)
{
    const char *p = c->p;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2] != ':' ||
        !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]))
        return -1;
    int h = (p[0] - '0') * 10 + (p[1] - '0'), m = (p[3] - '0') * 10 + (p[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow24))) return -1;
    c->p += 5;
    return h * 60 + m;
}

/* YYYY-MM-DD -> local day number, or INT64_MIN. */
static int64_t parse_date(struct cur *c)
{
    const char *p = c->p;
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? p[i] != '-' : !isdigit((unsigned char)p[i])) return INT64_MIN;
    int y = atoi(p), m = atoi(p + 5), d = atoi(p + 8);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap))
        return INT64_MIN;
    c->p += 10;
    return db_days_from_civil(y, m, d);
}

/* The next item up to sep (or the end), trimmed, into buf for quoting in errors. */
static void item_text(const char *p, char sep, char *buf, size_t n)
{
    while (*p == ' ' || *p == '\t') p++;
    size_t len = strcspn(p, sep == ';' ? ";" : ",");
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    snprintf(buf, n, "%.*s", (int)(len < 60 ? len : 60), p);
}

/* "HH:MM-HH:MM": start and end minutes; end <= start means it ends the next day. */
static int parse_interval(struct cur *c, int *from, int *to)
{
    if ((*from = parse_hhmm(c, 0)) < 0) return -1;
    skip_ws(c);
    if (*c->p != '-') return -1;
    c->p++;
    skip_ws(c);
    if ((*to = parse_hhmm(c, 1)) < 0) return -1;
    return 0;
}

static int day_index(const char *p, size_t len)
{
    static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (len != 3) return -1;
    for (int i = 0; i < 7; i++)
        if (strncasecmp(p, names[i], 3) == 0) return i;
    return -1;
}

static int parse_hours(const struct db_conf_section *sec, const struct db_conf_kv *kv,
                       uint8_t week[WEEK_MIN / 8], struct db_err *e)
{
    struct cur c = {kv->value};
    char q[64];
    int groups = 0;
    for (;;) {
        skip_ws(&c);
        if (!*c.p) break;
        if (*c.p == ';') {
            c.p++;
            continue;
        }
        item_text(c.p, ';', q, sizeof q);
        /* days: "mon" or "mon-fri" (a range may wrap: "fri-mon") */
        const char *d = c.p;
        while (isalpha((unsigned char)*c.p)) c.p++;
        int d1 = day_index(d, (size_t)(c.p - d)), d2 = d1;
        if (d1 >= 0 && *c.p == '-') {
            const char *d2s = ++c.p;
            while (isalpha((unsigned char)*c.p)) c.p++;
            d2 = day_index(d2s, (size_t)(c.p - d2s));
        }
        if (d1 < 0 || d2 < 0)
            return db_conf_error(e, sec, kv, kname(kv, "hours"),
                                 "'%s': want days as mon..sun or a range like mon-fri", q);
        skip_ws(&c);
        if (!isdigit((unsigned char)*c.p))
            return db_conf_error(e, sec, kv, kname(kv, "hours"),
                                 "'%s': days without hours (want e.g. 'mon-fri 09:00-18:00')", q);
        for (;;) {
            int from, to;
            if (parse_interval(&c, &from, &to) != 0)
                return db_conf_error(e, sec, kv, kname(kv, "hours"),
                                     "'%s': want intervals HH:MM-HH:MM from 00:00 to 24:00", q);
            if (from == to)
                return db_conf_error(e, sec, kv, kname(kv, "hours"), "'%s': an interval is empty", q);
            int len = to > from ? to - from : to + 1440 - from;
            for (int wd = d1;; wd = (wd + 1) % 7) {
                for (int k = 0; k < len; k++) bit_set(week, (size_t)((wd * 1440 + from + k) % WEEK_MIN));
                if (wd == d2) break;
            }
            skip_ws(&c);
            if (*c.p != ',') break;
            c.p++;
            skip_ws(&c);
        }
        if (*c.p && *c.p != ';')
            return db_conf_error(e, sec, kv, kname(kv, "hours"),
                                 "'%s': want ';' between groups of days", q);
        groups++;
    }
    if (!groups)
        return db_conf_error(e, sec, kv, kname(kv, "hours"),
                             "no opening hours (want e.g. 'mon-fri 09:00-18:00')");
    return DB_OK;
}

static int cmp_hday(const void *a, const void *b)
{
    const struct hday *x = a, *y = b;
    return (x->day > y->day) - (x->day < y->day);
}

/* holidays (closures == 0) or closures (closures == 1): comma separated dates, each with
 * an optional HH:MM-HH:MM. */
static int parse_dates(const struct db_conf_section *sec, const struct db_conf_kv *kv,
                       int closures, struct db_schedule *s, struct db_err *e)
{
    const char *key = closures ? "closures" : "holidays";
    struct cur c = {kv->value};
    char q[64];
    for (;;) {
        skip_ws(&c);
        if (!*c.p) break;
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        item_text(c.p, ',', q, sizeof q);
        int64_t day = parse_date(&c);
        if (day == INT64_MIN)
            return db_conf_error(e, sec, kv, kname(kv, key), "'%s': want a date YYYY-MM-DD", q);
        skip_ws(&c);
        int from = -1, to = -1;
        if (isdigit((unsigned char)*c.p)) {
            if (parse_interval(&c, &from, &to) != 0)
                return db_conf_error(e, sec, kv, kname(kv, key),
                                     "'%s': want hours HH:MM-HH:MM from 00:00 to 24:00", q);
            if (from == to) return db_conf_error(e, sec, kv, kname(kv, key), "'%s': an interval is empty", q);
            skip_ws(&c);
        }
        if (*c.p && *c.p != ',')
            return db_conf_error(e, sec, kv, kname(kv, key), "'%s': want ',' between dates", q);
        if ((closures ? s->nclo : s->nhol) >= MAX_ITEMS)
            return db_conf_error(e, sec, kv, kname(kv, key), "more than %d dates", MAX_ITEMS);
        if (closures) {
            if (from < 0)
                return db_conf_error(e, sec, kv, kname(kv, key),
                                     "'%s': a closure needs hours (a whole day is a holiday)", q);
            void *p = realloc(s->clo, (s->nclo + 1) * sizeof *s->clo);
            if (!p) return db_err_set(e, DB_ENOMEM, "out of memory");
            s->clo = p;
            s->clo[s->nclo].from = day * 1440 + from;
            s->clo[s->nclo].to = day * 1440 + (to > from ? to : to + 1440);
            s->nclo++;
            continue;
        }
        if (from >= 0 && to < from)
            return db_conf_error(e, sec, kv, kname(kv, key),
                                 "'%s': a partial day must end on the same date", q);
        struct hday *h = NULL;
        for (size_t i = 0; i < s->nhol; i++)
            if (s->hol[i].day == day) h = &s->hol[i];
        if (h && (h->full || from < 0))
            return db_conf_error(e, sec, kv, kname(kv, key),
                                 "'%s': the date is listed both as a whole and a partial day", q);
        if (!h) {
            void *p = realloc(s->hol, (s->nhol + 1) * sizeof *s->hol);
            if (!p) return db_err_set(e, DB_ENOMEM, "out of memory");
            s->hol = p;
            h = &s->hol[s->nhol++];
            memset(h, 0, sizeof *h);
            h->day = day;
            h->full = from < 0;
        }
        for (int k = from; from >= 0 && k < to; k++) bit_set(h->open, (size_t)k);
    }
    if (s->nhol) qsort(s->hol, s->nhol, sizeof *s->hol, cmp_hday);
    return DB_OK;
}

/* Checks the zone name and reads its TZif file into *zone (the only zoneinfo read: every
 * later question is answered from it). */
static int load_tz(const struct db_conf_section *sec, const struct db_conf_kv *kv,
                   struct db_tz **zone, struct db_err *e)
{
    const char *v = kv->value;
    size_t n = strlen(v);
    if (n == 0 || n > 64 || v[0] == '/' || strstr(v, "..") ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != n)
        return db_conf_error(e, sec, kv, kname(kv, "timezone"),
                             "'%.64s': want an IANA time zone name such as Europe/Kyiv", v);
    int rc = db_tz_load(v, zone);
    if (rc == DB_ENOMEM) return db_err_set(e, DB_ENOMEM, "out of memory");
    if (rc != DB_OK)
        return db_conf_error(e, sec, kv, kname(kv, "timezone"),
                             "unknown time zone '%s' (not in the tz database)", v);
    return DB_OK;
}

const char *db_account_list_check(const char *v, char *buf, size_t n)
{
    int count = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *end = p + len;
        while (a < end && (*a == ' ' || *a == '\t')) a++;
        while (end > a && (end[-1] == ' ' || end[-1] == '\t')) end--;
        const char *colon = memchr(a, ':', (size_t)(end - a));
        if (a < end && (!colon || colon == a || colon + 1 == end)) {
            snprintf(buf, n, "'%.*s': want platform:account", (int)(end - a > 60 ? 60 : end - a),
                     a);
            return buf;
        }
        count += a < end;
        p += len + (p[len] == ',');
    }
    return count ? NULL : "is empty";
}

/* The schedule proper from the checked keys: zone, weekly hours, holidays, closures. */
static int build(const struct db_conf_section *sec, struct db_schedule **out, struct db_err *e)
{
    int rc;
    struct db_schedule *s = calloc(1, sizeof *s);
    if (!s) return db_err_set(e, DB_ENOMEM, "out of memory");
    const struct db_conf_kv *tz = db_conf_find(sec, "timezone");
    const struct db_conf_kv *hours = db_conf_find(sec, "hours");
    if (!tz && hours && strcmp(kname(hours, "hours"), "hours") != 0) {
        rc = db_conf_error(e, sec, hours, "DESKBRIDGE_TIMEZONE",
                           "is required with DESKBRIDGE_BUSINESS_HOURS (e.g. Europe/Kyiv)");
        goto fail;
    }
    if (!tz) {
        rc = db_conf_error(e, sec, NULL, "timezone", "is required (e.g. Europe/Kyiv)");
        goto fail;
    }
    if ((rc = load_tz(sec, tz, &s->zone, e)) != DB_OK) goto fail;
    if (!hours) {
        rc = db_conf_error(e, sec, NULL, "hours", "is required (e.g. 'mon-fri 09:00-18:00')");
        goto fail;
    }
    if ((rc = parse_hours(sec, hours, s->week, e)) != DB_OK) goto fail;
    const struct db_conf_kv *kv;
    if ((kv = db_conf_find(sec, "holidays")) && (rc = parse_dates(sec, kv, 0, s, e)) != DB_OK)
        goto fail;
    if ((kv = db_conf_find(sec, "closures")) && (rc = parse_dates(sec, kv, 1, s, e)) != DB_OK)
        goto fail;
    if (!(s->tz = strdup(tz->value))) {
        rc = db_err_set(e, DB_ENOMEM, "out of memory");
        goto fail;
    }
    *out = s;
    return DB_OK;
fail:
    db_schedule_free(s);
    return rc;
}

static int schedule_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_schedule_conf *sc = obj;
    sc->sec = sec;
    sc->name = sec->account;
    if (db_account_list_build(sc->accounts, &sc->account_list) != DB_OK)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return build(sec, &sc->sched, e);
}

static void schedule_release(void *obj)
{
    struct db_schedule_conf *sc = obj;
    db_account_list_free(&sc->account_list);
    db_schedule_free(sc->sched);
}

#define SOFF(f) offsetof(struct db_schedule_conf, f)
static const struct db_conf_key schedule_keys[] = {
    {.name = "timezone", .type = DB_CONF_STR, .off = SOFF(timezone),
     .env = "DESKBRIDGE_TIMEZONE", .doc = "required: an IANA time zone name such as Europe/Kyiv"},
    {.name = "hours", .type = DB_CONF_STR, .off = SOFF(hours), .env = "DESKBRIDGE_BUSINESS_HOURS",
     .doc = "required: the weekly hours, e.g. `mon-fri 09:00-18:00; sat 10:00-14:00`"},
    {.name = "holidays", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY, .off = SOFF(holidays),
     .env = "DESKBRIDGE_HOLIDAYS",
     .doc = "dates `YYYY-MM-DD`, each closed all day or open only `HH:MM-HH:MM`"},
    {.name = "closures", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY, .off = SOFF(closures),
     .doc = "one-off closures `YYYY-MM-DD HH:MM-HH:MM`"},
    {.name = "away_message", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY | DB_CONF_LANG,
     .off = SOFF(away_message), .env = "DESKBRIDGE_AWAY_MESSAGE",
     .doc = "sent when a message arrives while closed (`away_message_<lang>` per language)"},
    {.name = "greeting", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY | DB_CONF_LANG,
     .off = SOFF(greeting), .doc = "sent once to a new conversation (`greeting_<lang>`)"},
    {.name = "queue_message", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY | DB_CONF_LANG,
     .off = SOFF(queue_message),
     .doc = "the queue position and expected wait, sent while open (`queue_message_<lang>`)"},
    {.name = "queue_default_wait_s", .type = DB_CONF_INT, .min = 1, .max = 86400, .def = "300",
     .off = SOFF(queue_default_wait_s),
     .doc = "the wait per conversation assumed before there are statistics"},
    {.name = "accounts", .type = DB_CONF_STR, .off = SOFF(accounts),
     .check = db_account_list_check,
     .doc = "the `platform:account` entries this schedule applies to"},
};

const struct db_conf_table db_schedule_conf_table = {
    .section = "schedule", .named = 1, .size = sizeof(struct db_schedule_conf),
    .keys = schedule_keys, .n_keys = sizeof schedule_keys / sizeof schedule_keys[0],
    .finish = schedule_finish, .release = schedule_release};

int db_schedule_parse(const struct db_conf_section *sec, struct db_schedule **out,
                      struct db_err *e)
{
    void *obj = NULL;
    *out = NULL;
    int rc = db_conf_obj_new(&db_schedule_conf_table, sec, &obj, e);
    if (rc != DB_OK) return rc;
    struct db_schedule_conf *sc = obj;
    *out = sc->sched;
    sc->sched = NULL;
    db_conf_obj_free(&db_schedule_conf_table, obj);
    return DB_OK;
}

/* ---- which schedule, which text ---- */

int db_account_list_build(const char *v, struct db_account_list *l)
{
    *l = (struct db_account_list){0};
    for (const char *p = v; p && *p;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        p += len + (p[len] == ',');
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (a == b) continue;
        char **items = realloc(l->items, (l->n + 1) * sizeof *items);
        char *item = items ? strndup(a, (size_t)(b - a)) : NULL;
        if (items) l->items = items;
        if (!item) {
            db_account_list_free(l);
            return DB_ENOMEM;
        }
        l->items[l->n++] = item;
    }
    return DB_OK;
}

void db_account_list_free(struct db_account_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    *l = (struct db_account_list){0};
}

int db_account_list_has(const struct db_account_list *l, const char *platform,
                        const char *account)
{
    size_t pl = strlen(platform);
    for (size_t i = 0; i < l->n; i++) {
        const char *it = l->items[i];
        if (strncmp(it, platform, pl) == 0 && it[pl] == ':' && strcmp(it + pl + 1, account) == 0)
            return 1;
    }
    return 0;
}

const struct db_schedule_conf *db_schedule_conf_of(const struct db_config *cfg,
                                                   const char *platform, const char *account)
{
    const struct db_schedule_conf *dflt = NULL;
    for (size_t i = 0; i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, "schedule") != 0) continue;
        const struct db_schedule_conf *sc = cfg->features[i].obj;
        if (db_account_list_has(&sc->account_list, platform, account)) return sc;
        if (!dflt && strcmp(sc->name, "default") == 0) dflt = sc;
    }
    return dflt;
}

const char *db_schedule_text(const struct db_schedule_conf *sc, const char *key,
                             const char *lang)
{
    const struct db_conf_kv *kv = NULL;
    if (lang && *lang) {
        char k[64];
        snprintf(k, sizeof k, "%s_%s", key, lang);
        kv = db_conf_find(sc->sec, k);
    }
    if (!kv) kv = db_conf_find(sc->sec, key);
    return kv ? kv->value : NULL;
}

/* ---- text rules ---- */

/* Decodes one UTF-8 sequence at *p (advancing it); malformed bytes give U+FFFD. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0) {
        (*p)++;
        return 0xFFFD;
    }
    c = n ? c & (0x3F >> n) : c;
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p += i;
            return 0xFFFD;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *p += n + 1;
    return c;
}

static uint32_t fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;  /* А..Я */
    if (c >= 0x400 && c <= 0x40F) return c + 80;  /* Ѐ..Џ (Є, І, Ї, Ў...) */
    if (((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x4FF)) &&
        !(c & 1))
        return c + 1;                             /* paired letters: Ґ -> ґ ... */
    if (c >= 0x4C1 && c <= 0x4CE && (c & 1)) return c + 1;
    return c;
}

static int is_word(uint32_t c)
{
    if (c < 0x80) return isalnum((int)c) || c == '_';
    if (c >= 0xA0 && c <= 0xBF) return 0;      /* Latin-1 punctuation: « » ¡ ¿ ... */
    if (c >= 0x2000 && c <= 0x206F) return 0;  /* general punctuation: — … " " */
    if (c >= 0x3000 && c <= 0x303F) return 0;
    if (c == 0xFFFD) return 0;
    return 1;
}

/* text folded into code points: a new array (caller frees) of *n, NULL on ENOMEM. */
static uint32_t *folded(const char *text, size_t len, size_t *n)
{
    uint32_t *out = malloc((len + 1) * sizeof *out);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    *n = 0;
    while (p < end) {
        uint32_t c = utf8_next(&p);
        if (p > end) p = end;
        out[(*n)++] = fold(c);
    }
    return out;
}

int db_keyword_match(const char *list, const char *text)
{
    size_t nt;
    uint32_t *t = folded(text, strlen(text), &nt);
    if (!t) return 0;
    int hit = 0;
    for (const char *p = list; *p && !hit;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        p += len + (p[len] == ',');
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        size_t nw;
        uint32_t *w = a < b ? folded(a, (size_t)(b - a), &nw) : NULL;
        if (!w) continue;
        for (size_t i = 0; !hit && i + nw <= nt; i++) {
            if (memcmp(t + i, w, nw * sizeof *w) != 0) continue;
            hit = (i == 0 || !is_word(t[i - 1]) || !is_word(w[0])) &&
                  (i + nw == nt || !is_word(t[i + nw]) || !is_word(w[nw - 1]));
        }
        free(w);
    }
    free(t);
    return hit;
}

char *db_text_expand(const char *tmpl, const char *const *vars)
{
    size_t cap = strlen(tmpl) + 1, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        const char *val = NULL;
        size_t skip = 1;
        if (*p == '{') {
            const char *close = strchr(p + 1, '}');
            for (size_t i = 0; close && vars[i]; i += 2)
                if (strlen(vars[i]) == (size_t)(close - p - 1) &&
                    strncmp(vars[i], p + 1, (size_t)(close - p - 1)) == 0) {
                    val = vars[i + 1];
                    if (val) skip = (size_t)(close - p) + 1;
                    break;
                }
        }
        const char *src = val ? val : p;
        size_t n = val ? strlen(val) : 1;
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *q = realloc(out, cap);
            if (!q) {
                free(out);
                return NULL;
            }
            out = q;
        }
        memcpy(out + len, src, n);
        len += n;
        p += skip;
    }
    out[len] = '\0';
    return out;
}
