/* text.h - UTF-8 helpers: validation and cutting on character boundaries. */
#ifndef DB_UTIL_TEXT_H
#define DB_UTIL_TEXT_H

#include <stddef.h>

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int db_utf8_valid(const char *s, size_t len);

/* Number of Unicode code points in the well-formed UTF-8 string s. */
size_t db_utf8_chars(const char *s, size_t len);

/* Length in bytes of the longest prefix of s[0..len) holding at most max_chars code
 * points; never ends inside a sequence. */
size_t db_utf8_prefix(const char *s, size_t len, size_t max_chars);

#endif
