/* parse.h - the one way deskbridge reads a number, a yes/no and an http(s) URL from text
 * (configuration values, variables, request fields), so every place accepts the same
 * spellings and refuses the same junk.  Pure: libc only. */
#ifndef DB_UTIL_PARSE_H
#define DB_UTIL_PARSE_H

/* Reads s as a decimal integer from min to max: an optional '-' and digits, nothing else
 * (no blanks, no '+', no units, no hex).  0 with *out, or -1 leaving *out alone. */
int db_parse_long(const char *s, long min, long max, long *out);
/* db_parse_long into an int (min and max must fit an int). */
int db_parse_int(const char *s, int min, int max, int *out);

/* Reads a yes/no: true, yes, on, 1 or false, no, off, 0, in any letter case.  0 with *out
 * (1 or 0), or -1 leaving *out alone. */
int db_parse_bool(const char *s, int *out);

#define DB_URL_HTTP 1u  /* http:// is allowed besides https:// */

/* Checks an absolute http(s) URL: the scheme (https://, or http:// with DB_URL_HTTP; any
 * letter case), a host right after it, and no blank or control character anywhere (so curl
 * and a person read the same URL).  0, or -1 with *why (a static phrase such as "has no
 * host") when why is not NULL. */
int db_url_check(const char *u, unsigned flags, const char **why);

/* Compares two Redis stream entry ids "<ms>-<seq>" as the numbers they are (text order is
 * wrong once the parts differ in length): -1, 0 or 1. */
int db_stream_id_cmp(const char *a, const char *b);

#endif
