/* search_words.c - the words of a text, as the search index keeps them (search.h). */
#include <string.h>

#include "console/search.h"

#define WORD_MAX 40

/* The code point at s (n bytes left) and its length; a malformed byte is taken as itself. */
static unsigned decode(const unsigned char *s, size_t n, size_t *len)
{
    if (s[0] < 0x80 || n < 2) return *len = 1, s[0];
    if ((s[0] & 0xe0) == 0xc0) return *len = 2, ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
    if ((s[0] & 0xf0) == 0xe0 && n >= 3)
        return *len = 3, ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
    if ((s[0] & 0xf8) == 0xf0 && n >= 4)
        return *len = 4, ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) |
                         ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
    return *len = 1, s[0];
}

static size_t encode(unsigned c, char *out)
{
    if (c < 0x80) return out[0] = (char)c, 1;
    if (c < 0x800) return out[0] = (char)(0xc0 | (c >> 6)), out[1] = (char)(0x80 | (c & 0x3f)), 2;
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

static unsigned lower(unsigned c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;            /* Latin-1 */
    if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
        c != 0x17f) {                                                   /* Latin Extended-A */
        int odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
        if (odd_upper ? (c & 1) : !(c & 1)) return c + 1;
        return c;
    }
    if (c >= 0x410 && c <= 0x42f) return c + 32;                       /* Cyrillic А-Я */
    if (c >= 0x400 && c <= 0x40f) return c + 80;                       /* Ѐ-Џ: Є І Ї ... */
    if (c >= 0x490 && c <= 0x4bf && !(c & 1)) return c + 1;            /* Ґ and kin */
    return c;
}

/* Letters and digits are what words are made of; every other ASCII character and the
 * common punctuation of other scripts cut them. */
static int is_word(unsigned c)
{
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c >= 0x2000 && c <= 0x206f) return 0; /* general punctuation, spaces */
    if (c == 0xa0 || c == 0xab || c == 0xbb || c == 0xd7 || c == 0xf7 || c == 0x060c ||
        c == 0x061f || c == 0x3000 || c == 0x3001 || c == 0x3002 || c == 0xfeff)
        return 0;
    if (c >= 0x1f000) return 0; /* emoji */
    return 1;
}

void db_search_words(const char *text, int prefixes,
                     void (*add)(const char *word, size_t len, void *arg), void *arg)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = text ? strlen(text) : 0, i = 0;
    char word[WORD_MAX + 4];
    size_t ends[WORD_MAX + 1]; /* byte length after each character, for the prefixes */
    while (i < n) {
        size_t wl = 0, chars = 0, len;
        while (i < n) {
            unsigned c = decode(s + i, n - i, &len);
            if (!is_word(c)) break;
            char buf[4];
            size_t k = encode(lower(c), buf);
            if (wl + k <= WORD_MAX) {
                memcpy(word + wl, buf, k);
                wl += k;
                ends[chars++] = wl;
            }
            i += len;
        }
        if (wl == 0) {
            decode(s + i, n - i, &len);
            i += len;
            continue;
        }
        if (prefixes)
            for (size_t c = 1; c + 1 < chars; c++)
                if (ends[c] >= 2) add(word, ends[c], arg);
        if (wl >= 2) add(word, wl, arg);
    }
}
