/* fake_chatwoot_form.c - see fake_chatwoot_form.h. */
#include "fake_chatwoot_form.h"

#include <stdio.h>
#include <string.h>

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn)
{
    for (size_t i = 0; nn <= hn && i <= hn - nn; i++)
        if (memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

static void header_param(const char *head, size_t hl, const char *param, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=\"", param);
    const char *p = memfind(head, hl, pat, strlen(pat));
    *out = '\0';
    if (!p) return;
    p += strlen(pat);
    const char *e = memchr(p, '"', (size_t)(head + hl - p));
    if (!e) return;
    snprintf(out, n, "%.*s", (int)(e - p), p);
}

int cw_form_parse(const char *ctype, const char *body, size_t len, struct cw_form *fm)
{
    memset(fm, 0, sizeof *fm);
    const char *b = strstr(ctype, "boundary=");
    if (!b) return -1;
    char delim[128];
    snprintf(delim, sizeof delim, "--%s", b + 9);
    size_t dl = strlen(delim);
    const char *p = memfind(body, len, delim, dl);
    while (p) {
        p += dl;
        if ((size_t)(body + len - p) >= 2 && p[0] == '-' && p[1] == '-') break;
        if ((size_t)(body + len - p) < 2) return -1;
        p += 2; /* CRLF */
        const char *he = memfind(p, (size_t)(body + len - p), "\r\n\r\n", 4);
        if (!he) return -1;
        const char *data = he + 4;
        const char *next = memfind(data, (size_t)(body + len - data), delim, dl);
        if (!next) return -1;
        size_t n = (size_t)(next - data) - 2; /* the CRLF before the delimiter */
        char name[64], fname[128];
        header_param(p, (size_t)(he - p), "name", name, sizeof name);
        header_param(p, (size_t)(he - p), "filename", fname, sizeof fname);
        if (strcmp(name, "attachments[]") == 0) {
            fm->has_file = 1;
            snprintf(fm->file_name, sizeof fm->file_name, "%s", fname);
            const char *ct = memfind(p, (size_t)(he - p), "Content-Type: ", 14);
            if (ct) {
                ct += 14;
                const char *e = memfind(ct, (size_t)(he - ct), "\r\n", 2);
                snprintf(fm->file_type, sizeof fm->file_type, "%.*s",
                         (int)((e ? e : he) - ct), ct);
            }
            fm->file_size = n;
            for (size_t i = 0; i < n; i++) fm->file_sum += (unsigned char)data[i];
        } else {
            char *dst = strcmp(name, "content") == 0        ? fm->content
                        : strcmp(name, "message_type") == 0 ? fm->message_type
                        : strcmp(name, "source_id") == 0    ? fm->source_id
                        : strcmp(name, "private") == 0      ? fm->private_
                                                            : NULL;
            size_t cap = dst == fm->content ? sizeof fm->content
                         : dst == fm->message_type ? sizeof fm->message_type
                         : dst == fm->private_ ? sizeof fm->private_ : sizeof fm->source_id;
            if (dst) snprintf(dst, cap, "%.*s", (int)n, data);
        }
        p = next;
    }
    return 0;
}

