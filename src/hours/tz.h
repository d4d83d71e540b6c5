/* tz.h - local time in an IANA time zone without touching the process's TZ.
 *
 * A zone is read once (at configuration load) from its TZif file (RFC 8536, versions 1 to
 * 4): the transition times, the local time types, and for instants after the last
 * transition the POSIX TZ rule of the footer.  After that, turning an instant into local
 * time is pure arithmetic on the parsed zone: no file, no environment, no lock, so it is
 * safe on the message path and from any thread.  Leap-second records are skipped (the
 * "right/" zones are not supported: their local times would be off by the leap seconds).
 * Instants before the first transition use the first standard-time type, as the C library
 * does. */
#ifndef DB_TZ_H
#define DB_TZ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "deskbridge/status.h"

struct db_tz;

/* Parses a TZif image (buf, len).  DB_OK with *out (free with db_tz_free), DB_EINVAL when
 * the bytes are not a usable TZif file, DB_ENOMEM.  Borrows buf only during the call. */
int db_tz_parse(const unsigned char *buf, size_t len, struct db_tz **out) DB_MUST_CHECK;

/* Reads the zone called name from $TZDIR (else /usr/share/zoneinfo).  name must already be
 * a safe relative name (no "..", no leading '/'; hours.c checks).  DB_OK with *out,
 * DB_ENOTFOUND when there is no such readable file, DB_EINVAL when it is not TZif,
 * DB_ENOMEM. */
int db_tz_load(const char *name, struct db_tz **out) DB_MUST_CHECK;

void db_tz_free(struct db_tz *z); /* NULL-safe */

/* The UTC offset in seconds (east positive) at the instant t (instants beyond +-2^56 s,
 * some two billion years, are taken as that limit). */
long db_tz_offset(const struct db_tz *z, int64_t t);

/* Local broken-down time of t in z, like localtime_r: every field of struct tm including
 * tm_wday, tm_yday, tm_isdst and tm_gmtoff (tm_zone is left NULL).  Returns tm. */
struct tm *db_tz_local(const struct db_tz *z, int64_t t, struct tm *tm);

/* Floor division (rounds toward minus infinity), b > 0. */
int64_t db_fdiv(int64_t a, int64_t b);
/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1-12). */
int64_t db_days_from_civil(int64_t y, int m, int d);

#endif
