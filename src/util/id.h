/* id.h - gateway ids: 26 characters, Crockford base32, sortable by creation time (48 bits of
 * milliseconds, then 80 random bits), so ids of one process sort in the order it made them
 * and ids of many processes never collide in practice. */
#ifndef DB_UTIL_ID_H
#define DB_UTIL_ID_H

#include <stdint.h>

#define DB_ID_LEN 26

/* Writes a new id and a NUL into out (DB_ID_LEN + 1 bytes). */
void db_id_new(char out[DB_ID_LEN + 1]);

/* 1 when s looks like an id this module makes (length and alphabet). */
int db_id_is_valid(const char *s);

/* Wall-clock milliseconds since the epoch. */
int64_t db_now_ms(void);

#endif
