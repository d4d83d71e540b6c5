/* memtrim.h - hands the memory a burst of connections left behind back to the system.
 *
 * Every open connection holds buffers and parser state.  When a burst of them closes, glibc
 * keeps the freed heap pages for reuse, so the process's private memory (RssAnon) stayed at
 * the burst's level for good: 12 MB 8 s after 1,000 connections, against 1.7 MB before
 * (docs/performance.md).  Every two seconds this looks at the most connections open since
 * the last trim (db_httpd_connections_peak); once no more than half of them are still open
 * (and at least 32 closed), it calls malloc_trim(0).  A steady load never trims. */
#ifndef DB_APP_MEMTRIM_H
#define DB_APP_MEMTRIM_H

struct event_base;
struct db_httpd;
struct db_metrics;
struct db_memtrim;

/* Watches httpd on base and counts each trim in metrics (both borrowed: they must outlive the
 * result; metrics may be NULL).  NULL without memory (the gateway then runs without it).
 * Freed with db_memtrim_free. */
struct db_memtrim *db_memtrim_new(struct event_base *base, struct db_httpd *httpd,
                                  struct db_metrics *metrics);
void db_memtrim_free(struct db_memtrim *m); /* NULL-safe */

#endif
