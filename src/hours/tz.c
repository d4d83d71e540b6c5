/* tz.c - TZif files and POSIX TZ rules turned into UTC offsets (see tz.h).
 *
 * Only the 64-bit data block of a version 2+ file is used (its 32-bit block is skipped);
 * a version 1 file is read through its 32-bit block.  Times are seconds since the epoch in
 * int64_t throughout, so no instant a time_t can hold overflows. */
#include "hours/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TZIF_BYTES (1u << 20)
#define MAX_RULE_HOURS 167 /* RFC 8536 section 3.3.1 extends POSIX's 24 for rule times */
#define MAX_OFFSET_HOURS 24

struct ttype {
    int32_t utoff;
    int isdst;
};

/* One end of the DST period of a POSIX TZ rule. */
struct rule {
    char kind;    /* 'J': Julian day 1-365 without Feb 29; 'N': day 0-365; 'M': month.week.day */
    int n, m, w, d;
    int32_t secs; /* local time of day of the change, may be negative or over a day */
};

struct posix {
    int valid;
    int has_dst;
    int32_t std_off, dst_off; /* UTC offsets, east positive */
    struct rule start, end;
};

struct db_tz {
    int64_t *trans; /* ascending */
    uint8_t *idx;   /* type of each transition */
    size_t n;
    struct ttype *types;
    size_t ntypes;
    size_t before;  /* type for instants before the first transition */
    struct posix tzs;
};

/* ---- calendar ---- */

int64_t db_fdiv(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Howard Hinnant's civil-calendar arithmetic, written out from the formula. */
int64_t db_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = db_fdiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = db_fdiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return md[m - 1] + (m == 2 && is_leap(y));
}

/* ---- POSIX TZ strings ("EET-2EEST,M3.5.0/3,M10.5.0/4") ---- */

static const char *p_name(const char *s)
{
    if (*s == '<') {
        const char *close = strchr(s, '>');
        return close && close - s >= 4 ? close + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) p++;
    return p - s >= 3 ? p : NULL;
}

static const char *p_num(const char *s, int min, int max, int *out)
{
    if (*s < '0' || *s > '9') return NULL;
    long v = 0;
    while (*s >= '0' && *s <= '9' && v <= max) v = v * 10 + (*s++ - '0');
    if (v < min || v > max) return NULL;
    *out = (int)v;
    return s;
}

/* [+-]hh[:mm[:ss]] into seconds, hh at most max_h. */
static const char *p_time(const char *s, int max_h, int32_t *secs)
{
    int sign = 1, h = 0, m = 0, sec = 0;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    if (!(s = p_num(s, 0, max_h, &h))) return NULL;
    if (*s == ':' && !(s = p_num(s + 1, 0, 59, &m))) return NULL;
    if (*s == ':' && !(s = p_num(s + 1, 0, 59, &sec))) return NULL;
    *secs = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *p_rule(const char *s, struct rule *r)
{
    if (*s == 'J') {
        r->kind = 'J';
        s = p_num(s + 1, 1, 365, &r->n);
    } else if (*s == 'M') {
        r->kind = 'M';
        if ((s = p_num(s + 1, 1, 12, &r->m)) && *s == '.' && (s = p_num(s + 1, 1, 5, &r->w)) &&
            *s == '.')
            s = p_num(s + 1, 0, 6, &r->d);
        else
            s = NULL;
    } else {
        r->kind = 'N';
        s = p_num(s, 0, 365, &r->n);
    }
    if (!s) return NULL;
    r->secs = 2 * 3600;
    if (*s == '/') s = p_time(s + 1, MAX_RULE_HOURS, &r->secs);
    return s;
}

static int p_posix(const char *s, struct posix *z)
{
    int32_t off;
    memset(z, 0, sizeof *z);
    if (!(s = p_name(s)) || !(s = p_time(s, MAX_OFFSET_HOURS, &off))) return -1;
    z->std_off = -off;
    if (*s) {
        if (!(s = p_name(s))) return -1;
        z->has_dst = 1;
        z->dst_off = z->std_off + 3600;
        if (*s && *s != ',') {
            if (!(s = p_time(s, MAX_OFFSET_HOURS, &off))) return -1;
            z->dst_off = -off;
        }
        if (*s == ',') {
            if (!(s = p_rule(s + 1, &z->start)) || *s != ',' || !(s = p_rule(s + 1, &z->end)))
                return -1;
        } else {
            /* No rule given: the C library's default, the US rules since 2007. */
            z->start = (struct rule){.kind = 'M', .m = 3, .w = 2, .d = 0, .secs = 7200};
            z->end = (struct rule){.kind = 'M', .m = 11, .w = 1, .d = 0, .secs = 7200};
        }
    }
    if (*s) return -1;
    z->valid = 1;
    return 0;
}

/* The day (since the epoch) on which r falls in year y. */
static int64_t rule_day(const struct rule *r, int64_t y)
{
    int64_t jan1 = db_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'N') return jan1 + r->n;
    int64_t first = db_days_from_civil(y, r->m, 1);
    int wd_first = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int day = (r->d - wd_first + 7) % 7 + (r->w - 1) * 7;
    while (day >= month_days(y, r->m)) day -= 7;
    return first + day;
}

static int32_t posix_offset(const struct posix *z, int64_t t, int *isdst)
{
    *isdst = 0;
    if (!z->has_dst) return z->std_off;
    int64_t y;
    int m, d;
    civil_from_days(db_fdiv(t + z->std_off, 86400), &y, &m, &d);
    /* The start is given in standard time, the end in daylight time. */
    int64_t s = rule_day(&z->start, y) * 86400 + z->start.secs - z->std_off;
    int64_t e = rule_day(&z->end, y) * 86400 + z->end.secs - z->dst_off;
    *isdst = s < e ? (s <= t && t < e) : !(e <= t && t < s);
    return *isdst ? z->dst_off : z->std_off;
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct hdr {
    int version; /* 0 for version 1, else '2', '3', '4'... */
    uint64_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_hdr(const unsigned char *p, size_t left, struct hdr *h)
{
    if (left < 44 || memcmp(p, "TZif", 4) != 0) return -1;
    h->version = p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->typecnt == 0 || h->typecnt > 256) return -1;
    return 0;
}

static uint64_t block_size(const struct hdr *h, int tsize)
{
    return h->timecnt * (uint64_t)tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (uint64_t)(tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int read_block(struct db_tz *z, const struct hdr *h, const unsigned char *p, int tsize)
{
    z->n = (size_t)h->timecnt;
    z->ntypes = (size_t)h->typecnt;
    z->trans = malloc((z->n ? z->n : 1) * sizeof *z->trans);
    z->idx = malloc(z->n ? z->n : 1);
    z->types = malloc(z->ntypes * sizeof *z->types);
    if (!z->trans || !z->idx || !z->types) return DB_ENOMEM;
    for (size_t i = 0; i < z->n; i++, p += tsize) {
        uint64_t v = be32(p);
        if (tsize == 8) v = v << 32 | be32(p + 4);
        else v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
        z->trans[i] = (int64_t)v;
        if (i > 0 && z->trans[i] <= z->trans[i - 1]) return DB_EINVAL;
    }
    for (size_t i = 0; i < z->n; i++) {
        z->idx[i] = *p++;
        if (z->idx[i] >= z->ntypes) return DB_EINVAL;
    }
    for (size_t i = 0; i < z->ntypes; i++, p += 6) {
        z->types[i].utoff = (int32_t)be32(p);
        z->types[i].isdst = p[4] != 0;
        /* -2^31 cannot be negated and no zone is more than a day off UTC. */
        if (z->types[i].utoff < -89999 || z->types[i].utoff > 93599) return DB_EINVAL;
    }
    z->before = 0;
    while (z->before < z->ntypes && z->types[z->before].isdst) z->before++;
    if (z->before == z->ntypes) z->before = 0;
    return DB_OK;
}

int db_tz_parse(const unsigned char *buf, size_t len, struct db_tz **out)
{
    struct hdr h;
    *out = NULL;
    if (read_hdr(buf, len, &h) != 0) return DB_EINVAL;
    const unsigned char *p = buf + 44, *end = buf + len;
    int tsize = 4;
    uint64_t size = block_size(&h, 4);
    if (size > (uint64_t)(end - p)) return DB_EINVAL;
    if (h.version >= '2') {
        p += size;
        if (read_hdr(p, (size_t)(end - p), &h) != 0) return DB_EINVAL;
        p += 44;
        tsize = 8;
        size = block_size(&h, 8);
        if (size > (uint64_t)(end - p)) return DB_EINVAL;
    }
    struct db_tz *z = calloc(1, sizeof *z);
    if (!z) return DB_ENOMEM;
    int rc = read_block(z, &h, p, tsize);
    p += size;
    if (rc == DB_OK && tsize == 8 && p < end) {
        /* The footer: "\n" POSIX-TZ "\n"; an empty string means no rule. */
        const unsigned char *nl = end > p + 1 ? memchr(p + 1, '\n', (size_t)(end - p - 1)) : NULL;
        if (*p != '\n' || !nl || (size_t)(nl - p) > 128) {
            rc = DB_EINVAL;
        } else if (nl > p + 1) {
            char spec[130];
            memcpy(spec, p + 1, (size_t)(nl - p - 1));
            spec[nl - p - 1] = '\0';
            if (p_posix(spec, &z->tzs) != 0) rc = DB_EINVAL;
        }
    }
    if (rc != DB_OK) {
        db_tz_free(z);
        return rc;
    }
    *out = z;
    return DB_OK;
}

int db_tz_load(const char *name, struct db_tz **out)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    *out = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name) >=
        (int)sizeof path)
        return DB_ENOTFOUND;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOMEM ? DB_ENOMEM : DB_ENOTFOUND;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 44 ||
        sb.st_size > (off_t)MAX_TZIF_BYTES) {
        close(fd);
        return DB_EINVAL;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    unsigned char *buf = malloc(len);
    if (!buf) {
        close(fd);
        return DB_ENOMEM;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    int rc = got == len ? db_tz_parse(buf, len, out) : DB_EINVAL;
    free(buf);
    return rc;
}

void db_tz_free(struct db_tz *z)
{
    if (!z) return;
    free(z->trans);
    free(z->idx);
    free(z->types);
    free(z);
}

/* Far beyond any calendar anyone asks about, and far enough from the int64_t limits that
 * adding an offset or a day count cannot overflow. */
#define T_LIMIT ((int64_t)1 << 56)

static int64_t clamp(int64_t t)
{
    return t < -T_LIMIT ? -T_LIMIT : t > T_LIMIT ? T_LIMIT : t;
}

static int32_t offset_of(const struct db_tz *z, int64_t t, int *isdst)
{
    const struct ttype *ty;
    t = clamp(t);
    if (z->n == 0 && z->tzs.valid) return posix_offset(&z->tzs, t, isdst);
    if (z->n == 0 || t < z->trans[0]) {
        ty = &z->types[z->before];
    } else if (t >= z->trans[z->n - 1]) {
        if (z->tzs.valid) return posix_offset(&z->tzs, t, isdst);
        ty = &z->types[z->idx[z->n - 1]];
    } else {
        size_t lo = 0, hi = z->n - 1; /* trans[lo] <= t < trans[hi] */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] <= t) lo = mid;
            else hi = mid;
        }
        ty = &z->types[z->idx[lo]];
    }
    *isdst = ty->isdst;
    return ty->utoff;
}

long db_tz_offset(const struct db_tz *z, int64_t t)
{
    int isdst;
    return offset_of(z, t, &isdst);
}

struct tm *db_tz_local(const struct db_tz *z, int64_t t, struct tm *tm)
{
    int isdst = 0;
    t = clamp(t);
    int32_t off = offset_of(z, t, &isdst);
    int64_t lt = t + off, days = db_fdiv(lt, 86400), secs = lt - days * 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    memset(tm, 0, sizeof *tm);
    tm->tm_year = (int)(y - 1900);
    tm->tm_mon = m - 1;
    tm->tm_mday = d;
    tm->tm_hour = (int)(secs / 3600);
    tm->tm_min = (int)(secs / 60 % 60);
    tm->tm_sec = (int)(secs % 60);
    tm->tm_wday = (int)(((days + 4) % 7 + 7) % 7);
    tm->tm_yday = (int)(days - db_days_from_civil(y, 1, 1));
    tm->tm_isdst = isdst;
    tm->tm_gmtoff = off;
    return tm;
}
