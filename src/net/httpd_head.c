/* httpd_head.c - the bytes of an answer's head (status line, headers) and of the JSON error
 * body: pure formatting, shared by the server (httpd.c, its own refusals) and the handler's
 * answers (httpd_req.c). */
#include "net/httpd_internal.h"

#include <string.h>

#include <event2/buffer.h>

#include "util/join.h"

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Status";
}

/* Handler-supplied header text goes out verbatim, so CR/LF in it would split the response. */
static int header_text_ok(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

/* JSON string body of s into dst (without quotes), truncated to fit cap on a character
 * boundary.  Returns bytes written. */
static size_t json_escape(char *dst, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (w + 6 > cap) {
            while (w > 0 && ((unsigned char)dst[w - 1] & 0xC0) == 0x80) w--;
            if (w > 0 && ((unsigned char)dst[w - 1] & 0x80)) w--;
            break;
        }
        if (*p == '"' || *p == '\\') {
            dst[w++] = '\\';
            dst[w++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(dst + w, "\\u00", 4);
            dst[w + 4] = hex[*p >> 4];
            dst[w + 5] = hex[*p & 15];
            w += 6;
        } else {
            dst[w++] = (char)*p;
        }
    }
    return w;
}

size_t db_httpd_error_body(char *buf, size_t cap, const char *code, const char *message)
{
    size_t n = 0;
    memcpy(buf, "{\"error\":{\"code\":\"", 18);
    n = 18;
    n += json_escape(buf + n, 128, code ? code : "error");
    memcpy(buf + n, "\",\"message\":\"", 13);
    n += 13;
    n += json_escape(buf + n, cap - n - 8, message ? message : "");
    memcpy(buf + n, "\"}}", 3);
    return n + 3;
}

/* Appends v's decimal digits at p; returns the end. */
/* Leaves the terminating NUL, which the next put overwrites. */
static char *put_ll(char *p, long long v) { return p + db_fmt_ll(p, v); }

static char *put(char *p, const char *s, size_t l)
{
    memcpy(p, s, l);
    return p + l;
}

/* Built in one buffer and added at once: an answer's head is written for every request, and
 * formatting it with snprintf, one evbuffer_add per line, was a measurable part of a small
 * answer's cost. */
void db_httpd_write_head(struct evbuffer *out, int status, const char *ctype, long long clen,
                         int chunked, int keep, int minor, const char *const *extra)
{
    /* status line < 64, Content-Type < 220, Content-Length < 40, the last line < 30 */
    char head[384], *p = put(head, "HTTP/1.1 ", 9);
    p = put_ll(p, status);
    *p++ = ' ';
    const char *why = reason(status);
    p = put(put(p, why, strlen(why)), "\r\n", 2);
    size_t cl;
    if (header_text_ok(ctype) && (cl = strlen(ctype)) < 200)
        p = put(put(put(p, "Content-Type: ", 14), ctype, cl), "\r\n", 2);
    if (clen >= 0)
        p = put(put_ll(put(p, "Content-Length: ", 16), clen), "\r\n", 2);
    else if (chunked)
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    for (size_t i = 0; extra && extra[i]; i++) {
        if (!header_text_ok(extra[i]) || !strchr(extra[i], ':')) continue;
        evbuffer_add(out, head, (size_t)(p - head));
        p = head;
        evbuffer_add(out, extra[i], strlen(extra[i]));
        p = put(p, "\r\n", 2);
    }
    if (!keep) p = put(p, "Connection: close\r\n\r\n", 21);
    else if (minor == 0) p = put(p, "Connection: keep-alive\r\n\r\n", 26);
    else p = put(p, "\r\n", 2);
    evbuffer_add(out, head, (size_t)(p - head));
}

