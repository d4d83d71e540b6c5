/* testutil.h - small helpers shared by the tests. */
#ifndef DB_TESTUTIL_H
#define DB_TESTUTIL_H

#include <stddef.h>

/* Reads a whole file (path relative to the source tree when not absolute) into a malloc'd,
 * NUL-terminated buffer; *len gets its size.  Aborts the test process on failure. */
char *db_test_read_file(const char *path, size_t *len);

/* Monotonic milliseconds. */
long long db_test_now_ms(void);

#endif
