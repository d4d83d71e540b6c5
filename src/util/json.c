/* json.c - db_json_dump, a compact writer over jansson values, and small getters.  The reader,
 * db_json_parse_object, is in json_parse.c.
 *
 * db_json_dump writes the same bytes as json_dumps(v, JSON_COMPACT) (object members in
 * iteration order, i.e. insertion order; strings escaped as jansson escapes them without
 * JSON_ENSURE_ASCII; reals as jansson prints them without JSON_REAL_PRECISION), and scalars as
 * JSON_ENCODE_ANY would.  json_dumps appends to its buffer one call per character and keeps a
 * hash table of the containers it is inside to catch cycles; this writer copies whole runs
 * into one growing buffer and catches cycles by walking its own chain of parents. */
#include "util/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/join.h"
#include "util/text.h"

const char *db_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

struct out {
    char *p;
    size_t len, cap;
};

/* The containers being written around the current value, innermost first. */
struct parent {
    const json_t *v;
    const struct parent *up;
};

/* The slow half of reserve.  The first buffer holds a typical event (about 600 bytes) in
 * one allocation. */
static int grow(struct out *o, size_t n)
{
    size_t cap = o->cap ? o->cap * 2 : 1024;
    while (cap - o->len < n) cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) return -1;
    o->p = p;
    o->cap = cap;
    return 0;
}

/* Makes room for n more bytes; -1 on ENOMEM (the buffer is kept for the caller to free). */
static inline int reserve(struct out *o, size_t n)
{
    return o->cap - o->len >= n ? 0 : grow(o, n);
}

static int put(struct out *o, const void *s, size_t n)
{
    if (reserve(o, n)) return -1;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return 0;
}

/* What a byte of a string becomes: 0 as it is, 'u' as \u00XX, else the letter after the
 * backslash.  Bytes >= 0x80 are copied once the string is known to be UTF-8. */
static const unsigned char esc[128] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0,   0,   '"', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '\\', 0,  0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
};

/* Nonzero when one of the 8 bytes of w is not copied as it is: a byte >= 0x80 (its high
 * bit), below 0x20 (the borrow of w - 0x20 per byte, in a byte whose own high bit is clear),
 * '"' or '\\' (a zero byte after the xor).  Each test is exact about whether some byte
 * matches; texts are long plain runs, and a word at a time is cheaper than a lookup per byte.
 * The reader (json_parse.c) scans strings the same way. */
static inline uint64_t stops8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high;
}

/* -1 on ENOMEM and on a string that is not UTF-8 (json_dumps refuses those too; they can
 * only come from json_stringn_nocheck). */
static int put_string(struct out *o, const char *str, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    int checked = 0; /* the rest of s is known to be UTF-8 */
    /* Plain bytes never grow, so room for the whole string plus quotes covers every run;
     * an escape makes room for itself. */
    if (reserve(o, len + 2)) return -1;
    o->p[o->len++] = '"';
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        for (;;) {
            uint64_t w;
            while (len - i >= 8 && (memcpy(&w, s + i, 8), !stops8(w))) i += 8;
            while (i < len && s[i] < 0x80 && !esc[s[i]]) i++;
            if (i == len || s[i] < 0x80) break;
            if (!checked) {
                if (!db_utf8_valid(str + i, len - i)) return -1;
                checked = 1;
            }
            i++;
        }
        memcpy(o->p + o->len, s + run, i - run);
        o->len += i - run;
        if (i == len) break;
        unsigned char c = s[i++], e = esc[c];
        if (reserve(o, 6 + (len - i) + 1)) return -1;
        char *w = o->p + o->len;
        w[0] = '\\';
        if (e != 'u') {
            w[1] = (char)e;
            o->len += 2;
        } else {
            w[1] = 'u';
            w[2] = '0';
            w[3] = '0';
            w[4] = hex[c >> 4];
            w[5] = hex[c & 15];
            o->len += 6;
        }
    }
    o->p[o->len++] = '"';
    return 0;
}

static int put_integer(struct out *o, json_int_t v)
{
    char buf[DB_LL_MAX];
    return put(o, buf, db_fmt_ll(buf, v));
}

/* 17 significant digits (enough to read back the same double), then as jansson prints it:
 * ".0" added when the text would read back as an integer, and the exponent without '+' or
 * leading zeros. */
static int put_real(struct out *o, double d)
{
    char buf[48], fixed[48];
    int n = snprintf(buf, sizeof buf, "%.17g", d);
    if (n < 0 || (size_t)n >= sizeof buf) return -1;
    char *e = strchr(buf, 'e');
    if (!e) {
        if (!strchr(buf, '.')) memcpy(buf + n, ".0", 3), n += 2;
        return put(o, buf, (size_t)n);
    }
    size_t k = (size_t)(e - buf) + 1;
    memcpy(fixed, buf, k);
    const char *x = e + 1;
    if (*x == '-') fixed[k++] = *x++;
    else if (*x == '+') x++;
    while (*x == '0' && x[1]) x++;
    while (*x) fixed[k++] = *x++;
    return put(o, fixed, k);
}

static int put_value(struct out *o, const json_t *v, const struct parent *up)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        /* A container inside itself would never end; json_dumps fails on it too. */
        for (const struct parent *q = up; q; q = q->up)
            if (q->v == v) return -1;
        struct parent me = {v, up};
        json_t *c = (json_t *)v; /* jansson's iterators take non-const values */
        if (json_is_array(v)) {
            if (put(o, "[", 1)) return -1;
            size_t n = json_array_size(v);
            for (size_t i = 0; i < n; i++)
                if ((i && put(o, ",", 1)) || put_value(o, json_array_get(v, i), &me)) return -1;
            return put(o, "]", 1);
        }
        if (put(o, "{", 1)) return -1;
        int first = 1;
        for (void *it = json_object_iter(c); it; it = json_object_iter_next(c, it)) {
            if ((!first && put(o, ",", 1)) ||
                put_string(o, json_object_iter_key(it), json_object_iter_key_len(it)) ||
                put(o, ":", 1) || put_value(o, json_object_iter_value(it), &me))
                return -1;
            first = 0;
        }
        return put(o, "}", 1);
    }
    case JSON_STRING: return put_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return put_integer(o, json_integer_value(v));
    case JSON_REAL: return put_real(o, json_real_value(v));
    case JSON_TRUE: return put(o, "true", 4);
    case JSON_FALSE: return put(o, "false", 5);
    case JSON_NULL: return put(o, "null", 4);
    }
    return -1;
}

char *db_json_dump(const json_t *v)
{
    struct out o = {0};
    if (!v || put_value(&o, v, NULL) || put(&o, "", 1)) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
