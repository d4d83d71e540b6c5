/* fuzz_tzif.c - the TZif reader over any bytes: it never reads outside them, and whatever it
 * accepts answers every instant with an offset within a day of UTC and a local time whose
 * fields are in range and agree with that offset.  The corpus holds zone files of the tz
 * database and cut-off copies. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "hours/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t instants[] = {
    INT64_MIN, -(INT64_C(1) << 40), -2208988800, -1, 0, 1, 946684800, 1774746000,
    1798160400, 2147483647, 2147483648, 4102444800, INT64_C(1) << 40, INT64_MAX};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct db_tz *z = NULL;
    if (db_tz_parse(data, size, &z) != DB_OK) {
        if (z) abort();
        return 0;
    }
    for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
        for (int64_t d = -86400; d <= 86400; d += 3600 * 7) {
            int64_t t = instants[i];
            if ((d > 0 && t > INT64_MAX - d) || (d < 0 && t < INT64_MIN - d)) continue;
            t += d;
            long off = db_tz_offset(z, t);
            if (off < -89999 || off > 93599) abort();
            struct tm tm;
            db_tz_local(z, t, &tm);
            if (tm.tm_gmtoff != off || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
                tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 ||
                tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 59 || tm.tm_wday < 0 ||
                tm.tm_wday > 6 || tm.tm_yday < 0 || tm.tm_yday > 365)
                abort();
        }
    }
    db_tz_free(z);
    return 0;
}
