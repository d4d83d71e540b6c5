/* text_out.h - writes the Prometheus text exposition format (version 0.0.4) into a buffer that
 * grows as needed: HELP/TYPE headers, label sets with their values escaped, numbers as
 * Prometheus reads them.  Used by the registry (metrics.c) and the scrape of the Redis gauges.
 *
 * Errors do not stop the caller: out of memory, or a text over 8 MB (a bug, not data), sets
 * `failed`, after which every write is a no-op; the caller checks it once at the end. */
#ifndef DB_METRICS_TEXT_OUT_H
#define DB_METRICS_TEXT_OUT_H

#include <stddef.h>

#include "deskbridge/status.h"

/* Zero-initialise; p (malloc'd, NUL-terminated once written to) belongs to the caller, who
 * frees it. */
struct db_out {
    char *p;
    size_t len, cap;
    int failed;
};

void db_out_printf(struct db_out *o, const char *fmt, ...) DB_PRINTF(2, 3);
/* # HELP and # TYPE lines of a family. */
void db_out_header(struct db_out *o, const char *name, const char *type, const char *help);
/* {a="x",b="y"} for n names and values (escaped here); nothing when n is 0. */
void db_out_labels(struct db_out *o, int n, const char *const *names, const char *const *vals);
/* A float as Prometheus reads it; integral values without exponent or fraction. */
void db_out_double(struct db_out *o, double x);
/* One sample: name{labels} value, the value as db_out_double writes it. */
void db_out_sample(struct db_out *o, const char *name, int n, const char *const *names,
                   const char *const *vals, double value);
/* A whole family of one unlabelled sample. */
void db_out_gauge1(struct db_out *o, const char *name, const char *type, const char *help,
                   double value);

#endif
