/* text_out.c - the Prometheus text exposition format, written into a growing buffer. */
#include "metrics/text_out.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_CAP (8u << 20) /* a scrape larger than this is a bug, not data */

void db_out_printf(struct db_out *o, const char *fmt, ...)
{
    if (o->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if (o->p && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t need = o->len + (size_t)n + 1, cap = o->cap ? o->cap : 4096;
        while (cap < need) cap *= 2;
        if (cap > RENDER_CAP) {
            o->failed = 1;
            return;
        }
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

/* Appends v escaped for a label value: backslash, double quote and newline. */
static void label_value(struct db_out *o, const char *v)
{
    const char *run = v;
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        db_out_printf(o, "%.*s%s", (int)(v - run), run, esc);
        run = v + 1;
    }
    db_out_printf(o, "%s", run);
}

void db_out_header(struct db_out *o, const char *name, const char *type, const char *help)
{
    db_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes {a="x",b="y"} for n names and values; nothing when n is 0. */
void db_out_labels(struct db_out *o, int n, const char *const *names, const char *const *vals)
{
    if (n == 0) return;
    db_out_printf(o, "{");
    for (int i = 0; i < n; i++) {
        db_out_printf(o, "%s%s=\"", i ? "," : "", names[i]);
        label_value(o, vals[i]);
        db_out_printf(o, "\"");
    }
    db_out_printf(o, "}");
}

/* A float as Prometheus reads it; integral values without exponent or fraction. */
void db_out_double(struct db_out *o, double x)
{
    if (isinf(x)) db_out_printf(o, x > 0 ? "+Inf" : "-Inf");
    else if (isnan(x)) db_out_printf(o, "NaN");
    else if (x == floor(x) && fabs(x) < 1e15) db_out_printf(o, "%.0f", x);
    else {
        /* the shortest text that reads back as the same double */
        char b[40];
        snprintf(b, sizeof b, "%.15g", x);
        if (strtod(b, NULL) != x) snprintf(b, sizeof b, "%.17g", x);
        db_out_printf(o, "%s", b);
    }
}

void db_out_sample(struct db_out *o, const char *name, int n, const char *const *names,
                   const char *const *vals, double value)
{
    db_out_printf(o, "%s", name);
    db_out_labels(o, n, names, vals);
    db_out_printf(o, " ");
    db_out_double(o, value);
    db_out_printf(o, "\n");
}

void db_out_gauge1(struct db_out *o, const char *name, const char *type, const char *help,
                       double value)
{
    db_out_header(o, name, type, help);
    db_out_printf(o, "%s ", name);
    db_out_double(o, value);
    db_out_printf(o, "\n");
}
