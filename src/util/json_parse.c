/* json_parse.c - db_json_parse_object: a single-pass reader of RFC 8259 JSON that builds
 * jansson values directly.
 *
 * The webhook path used json_loadb, whose lexer reads the body one character at a time
 * through a callback, checks UTF-8 per character and copies every token into a growing
 * buffer before the value is made.  This reader scans the body in place: strings without
 * escapes go straight from the body into json_stringn_nocheck / json_object_setn_new_nocheck
 * (which copy them), and only strings with escapes are decoded into a scratch buffer.
 *
 * It accepts exactly what json_loadb(JSON_REJECT_DUPLICATES) accepts and builds json_equal
 * values (tests/unit/test_json.c and the differential fuzz target tests/fuzz/fuzz_json.c hold
 * it to that):
 *   - whitespace is space, tab, LF and CR only; nothing but whitespace after the value;
 *   - strings are well-formed UTF-8 with no raw control characters; \u0000 and unpaired
 *     surrogate escapes are refused;
 *   - a key repeated in one object is refused;
 *   - numbers without fraction or exponent are json_int_t, and refused outside its range;
 *     others are reals from strtod, refused when they overflow to infinity (an underflow is
 *     kept as strtod rounds it, as jansson does);
 *   - nesting is bounded by jansson's JSON_PARSER_MAX_DEPTH, counted jansson's way: the
 *     top-level value is at depth 1 and a scalar takes a level of its own.
 *   - one NUL byte right after a number or a literal is skipped, as json_loadb skips it
 *     (see read_document).
 * Containers are tracked on an explicit stack, so hostile nesting costs no C recursion.
 *
 * The process never calls setlocale, so strtod reads '.' as the decimal point. */
#include "util/json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef JSON_PARSER_MAX_DEPTH
#define MAX_DEPTH JSON_PARSER_MAX_DEPTH
#else
#define MAX_DEPTH 2048
#endif

/* 1 for the bytes a string may hold as they are: printable ASCII but '"' and '\\'.  Control
 * characters, the two specials and every byte >= 0x80 (checked as UTF-8) stop the scan. */
static const unsigned char plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20: '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
};

/* Nonzero when one of the 8 bytes of w would stop the scan (not plain above): message texts
 * are long plain runs, and testing a word at a time costs a fraction of a table lookup per
 * byte.  Each test is exact about whether some byte matches: a high bit, a byte below 0x20
 * (the borrow of w - 0x20 per byte, in a byte whose own high bit is clear), a byte equal to
 * '"' or '\\' (a zero byte after the xor). */
static inline uint64_t stops8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high;
}

/* A growing buffer for decoded strings; starts in the reader's own storage so most bodies
 * never allocate one. */
struct scratch {
    char *p;
    size_t len, cap;
    int heap;
};

struct reader {
    const unsigned char *start, *end;
    const char *why;             /* static reason of a syntax error */
    const unsigned char *at;     /* the byte it is about */
    int nomem;
    struct scratch key, str;     /* keys and values apart: a key waits for its value */
    char key_in[128], str_in[512];
};

/* Records a syntax error at byte at; returns NULL so callers can `return fail(...)`. */
static const unsigned char *fail(struct reader *r, const unsigned char *at, const char *why)
{
    r->why = why;
    r->at = at;
    return NULL;
}

static const unsigned char *out_of_memory(struct reader *r)
{
    r->nomem = 1;
    return NULL;
}

static int scratch_put(struct scratch *sc, const void *s, size_t n)
{
    if (sc->cap - sc->len < n) {
        size_t cap = sc->cap * 2;
        if (cap - sc->len < n) cap = sc->len + n;
        char *p = sc->heap ? realloc(sc->p, cap) : malloc(cap);
        if (!p) return -1;
        if (!sc->heap) memcpy(p, sc->p, sc->len);
        sc->p = p;
        sc->cap = cap;
        sc->heap = 1;
    }
    memcpy(sc->p + sc->len, s, n);
    sc->len += n;
    return 0;
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* Length (2-4) of the well-formed multi-byte UTF-8 sequence at s, else 0: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, nothing cut by end. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
    size_t left = (size_t)(end - s);
    unsigned c = s[0];
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong: below U+0800 */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong: below U+10000 */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0; /* a continuation byte, C0/C1 or F5..FF */
}

/* Value of the 4 hex digits at p, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        int d;
        if (c >= '0' && c <= '9') d = (int)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (int)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (int)(c - 'A' + 10);
        else return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Decodes the escape whose backslash is at q into sc; returns the byte after it, or NULL. */
static const unsigned char *read_escape(struct reader *r, const unsigned char *q,
                                        struct scratch *sc)
{
    const unsigned char *end = r->end;
    if (end - q < 2) return fail(r, end, "unexpected end of input in a string");
    char c;
    switch (q[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
        long cp = hex4(q + 2, end);
        if (cp < 0) return fail(r, q, "invalid \\u escape");
        const unsigned char *next = q + 6;
        if (cp == 0) return fail(r, q, "\\u0000 is not allowed");
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(r, q, "unpaired surrogate escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* Only a low-surrogate escape may follow; together they make one code point. */
            long lo = end - next >= 2 && next[0] == '\\' && next[1] == 'u' ? hex4(next + 2, end)
                                                                           : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(r, q, "unpaired surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            next += 6;
        }
        unsigned char u[4];
        size_t n;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
            n = 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6);
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12);
            u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18);
            u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        if (scratch_put(sc, u, n)) return out_of_memory(r);
        return next;
    }
    default: return fail(r, q, "invalid escape");
    }
    if (scratch_put(sc, &c, 1)) return out_of_memory(r);
    return q + 2;
}

/* Reads the string whose opening quote is at p.  *s / *len is its decoded text: borrowed from
 * the body when it has no escape, else from sc (valid until sc is next used).  Returns the
 * byte after the closing quote, or NULL. */
static const unsigned char *read_string(struct reader *r, const unsigned char *p,
                                        struct scratch *sc, const char **s, size_t *len)
{
    const unsigned char *end = r->end, *first = p + 1, *q = first;
    int escaped = 0;
    for (;;) {
        const unsigned char *run = q;
        for (;;) {
            uint64_t w;
            while (end - q >= 8 && (memcpy(&w, q, 8), !stops8(w))) q += 8;
            while (q < end && plain[*q]) q++;
            if (q == end || *q < 0x80) break;
            size_t n = utf8_seq(q, end);
            if (!n) return fail(r, q, "invalid UTF-8 in a string");
            q += n;
        }
        if (escaped && scratch_put(sc, run, (size_t)(q - run))) return out_of_memory(r);
        if (q == end) return fail(r, end, "unexpected end of input in a string");
        if (*q == '"') break;
        if (*q != '\\') return fail(r, q, "control character in a string");
        if (!escaped) {
            /* The first escape: from here on the text is built in sc. */
            escaped = 1;
            sc->len = 0;
            if (scratch_put(sc, first, (size_t)(q - first))) return out_of_memory(r);
        }
        if (!(q = read_escape(r, q, sc))) return NULL;
    }
    if (escaped) {
        *s = sc->p;
        *len = sc->len;
    } else {
        *s = (const char *)first;
        *len = (size_t)(q - first);
    }
    return q + 1;
}

/* Reads the number at p into a new json_integer or json_real (*v, NULL on ENOMEM). */
static const unsigned char *read_number(struct reader *r, const unsigned char *p, json_t **v)
{
    const unsigned char *end = r->end, *q = p;
    int neg = *q == '-', real = 0;
    if (neg) q++;
    const unsigned char *digits = q;
    if (q == end || *q < '0' || *q > '9') return fail(r, p, "invalid number");
    if (*q == '0') {
        q++;
        if (q < end && *q >= '0' && *q <= '9') return fail(r, p, "leading zero in a number");
    } else {
        while (q < end && *q >= '0' && *q <= '9') q++;
    }
    const unsigned char *int_end = q;
    if (q < end && *q == '.') {
        real = 1;
        q++;
        if (q == end || *q < '0' || *q > '9') return fail(r, p, "invalid number");
        while (q < end && *q >= '0' && *q <= '9') q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        real = 1;
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (q == end || *q < '0' || *q > '9') return fail(r, p, "invalid number");
        while (q < end && *q >= '0' && *q <= '9') q++;
    }
    if (!real) {
        /* json_int_t is long long: the magnitude may reach 2^63 only when negative. */
        unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX, u = 0;
        for (const unsigned char *d = digits; d < int_end; d++) {
            unsigned k = (unsigned)(*d - '0');
            if (u > (limit - k) / 10) return fail(r, p, "integer out of range");
            u = u * 10 + k;
        }
        json_int_t i = !neg ? (json_int_t)u : u == limit ? LLONG_MIN : -(json_int_t)u;
        *v = json_integer(i);
        return q;
    }
    /* strtod wants a terminated string and the body is not one. */
    size_t n = (size_t)(q - p);
    char small[64], *text = n < sizeof small ? small : malloc(n + 1);
    if (!text) return out_of_memory(r);
    memcpy(text, p, n);
    text[n] = '\0';
    errno = 0;
    double d = strtod(text, NULL);
    int overflow = errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
    if (text != small) free(text);
    if (overflow) return fail(r, p, "real number out of range");
    *v = json_real(d);
    return q;
}

/* Parses the whole body into *root (a new reference) or fails with r->why / r->nomem; on
 * failure *root is NULL and everything built so far is freed. */
static void read_document(struct reader *r, json_t **rootp)
{
    /* Open containers, innermost last; borrowed: each is already owned by its parent, and the
     * outermost by root, so freeing root frees everything on any exit. */
    json_t *open[MAX_DEPTH];
    size_t depth = 0;
    json_t *root = NULL, *v;
    const unsigned char *p = r->start, *end = r->end, *key_at = NULL;
    const char *key = NULL;
    size_t key_len = 0;
    int container, bare;

value:
    p = skip_ws(p, end);
    if (p == end) {
        fail(r, p, "unexpected end of input");
        goto failed;
    }
    if (depth >= MAX_DEPTH) {
        fail(r, p, "nesting too deep");
        goto failed;
    }
    container = bare = 0;
    switch (*p) {
    case '{':
        v = json_object();
        container = 1;
        break;
    case '[':
        v = json_array();
        container = 1;
        break;
    case '"': {
        const char *s;
        size_t len;
        if (!(p = read_string(r, p, &r->str, &s, &len))) goto failed;
        v = json_stringn_nocheck(s, len);
        break;
    }
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0) goto bad_token;
        v = json_true();
        p += 4;
        bare = 1;
        break;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0) goto bad_token;
        v = json_false();
        p += 5;
        bare = 1;
        break;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0) goto bad_token;
        v = json_null();
        p += 4;
        bare = 1;
        break;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if (!(p = read_number(r, p, &v))) goto failed;
        bare = 1;
        break;
    default:
    bad_token:
        fail(r, p, "unexpected character");
        goto failed;
    }
    /* jansson reads one byte past a number or a literal and puts it back, and a NUL byte put
     * back is lost: json_loadb takes `1<NUL>,` as `1,`.  One NUL there is skipped so that
     * both readers accept the same bodies. */
    if (bare && p < end && *p == '\0') p++;
    if (!v) goto nomem;
    if (depth == 0) {
        root = v;
    } else if (json_is_object(open[depth - 1])) {
        /* Setting a key that is already there replaces its value and leaves the size as it
         * was: that is the duplicate check, without a second lookup. */
        json_t *obj = open[depth - 1];
        size_t before = json_object_size(obj);
        if (json_object_setn_new_nocheck(obj, key, key_len, v)) goto nomem; /* v freed */
        if (json_object_size(obj) == before) {
            fail(r, key_at, "duplicate object key");
            goto failed;
        }
    } else if (json_array_append_new(open[depth - 1], v)) {
        goto nomem; /* v freed */
    }
    if (container) {
        open[depth++] = v;
        p = skip_ws(p + 1, end);
        if (p < end && *p == (json_is_object(v) ? '}' : ']')) {
            p++;
            depth--;
        } else if (json_is_object(v)) {
            goto key;
        } else {
            goto value;
        }
    }

    /* after a value: the end of the document, or what its container allows next */
after:
    p = skip_ws(p, end);
    if (depth == 0) {
        if (p != end) {
            fail(r, p, "unexpected data after the value");
            goto failed;
        }
        *rootp = root;
        return;
    }
    if (p == end) {
        fail(r, p, "unexpected end of input");
        goto failed;
    }
    if (json_is_object(open[depth - 1])) {
        if (*p == ',') {
            p++;
            goto key;
        }
        if (*p != '}') {
            fail(r, p, "',' or '}' expected");
            goto failed;
        }
    } else {
        if (*p == ',') {
            p++;
            goto value;
        }
        if (*p != ']') {
            fail(r, p, "',' or ']' expected");
            goto failed;
        }
    }
    p++;
    depth--;
    goto after;

key:
    p = skip_ws(p, end);
    if (p == end) {
        fail(r, p, "unexpected end of input");
        goto failed;
    }
    if (*p != '"') {
        fail(r, p, "string key expected");
        goto failed;
    }
    key_at = p;
    if (!(p = read_string(r, p, &r->key, &key, &key_len))) goto failed;
    p = skip_ws(p, end);
    if (p == end) {
        fail(r, p, "unexpected end of input");
        goto failed;
    }
    if (*p != ':') {
        fail(r, p, "':' expected");
        goto failed;
    }
    p++;
    goto value;

nomem:
    r->nomem = 1;
failed:
    json_decref(root);
    *rootp = NULL;
}

int db_json_parse_object(const void *body, size_t len, json_t **out, struct db_err *e)
{
    *out = NULL;
    if (!body || len == 0) return db_err_set(e, DB_EINVAL, "body is empty");
    struct reader r = {.start = body, .end = (const unsigned char *)body + len};
    r.key = (struct scratch){r.key_in, 0, sizeof r.key_in, 0};
    r.str = (struct scratch){r.str_in, 0, sizeof r.str_in, 0};
    json_t *v;
    read_document(&r, &v);
    if (r.key.heap) free(r.key.p);
    if (r.str.heap) free(r.str.p);
    if (r.nomem) return db_err_set(e, DB_ENOMEM, "out of memory parsing JSON");
    if (!v) {
        /* 1-based line and byte column of the offending byte; the reason is fixed text, never
         * the body's (it may be a customer's words). */
        size_t line = 1;
        const unsigned char *bol = r.start, *nl;
        while ((nl = memchr(bol, '\n', (size_t)(r.at - bol)))) {
            line++;
            bol = nl + 1;
        }
        return db_err_set(e, DB_EINVAL, "body is not JSON: %s at %zu:%zu", r.why, line,
                          (size_t)(r.at - bol) + 1);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return db_err_set(e, DB_EINVAL, "top-level value must be an object");
    }
    *out = v;
    return DB_OK;
}
