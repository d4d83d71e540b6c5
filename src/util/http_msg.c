#include "deskbridge/http_msg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *db_headers_get(const struct db_headers *h, const char *name)
{
    if (!h) return NULL;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->v[i].name, name) == 0) return h->v[i].value;
    return NULL;
}

int db_headers_add(struct db_headers *h, const char *name, const char *value)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        struct db_header *v = realloc(h->v, cap * sizeof *v);
        if (!v) return DB_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    char *n = strdup(name), *val = strdup(value);
    if (!n || !val) {
        free(n);
        free(val);
        return DB_ENOMEM;
    }
    h->v[h->n].name = n;
    h->v[h->n].value = val;
    h->n++;
    return DB_OK;
}

void db_headers_clear(struct db_headers *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *db_query_param(const char *q, const char *name)
{
    if (!q) return NULL;
    size_t nl = strlen(name);
    for (const char *p = q; *p;) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = seg - nl - 1;
            char *out = malloc(vl + 1), *o = out;
            if (!out) return NULL;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] == '%' && i + 2 < vl && hexval((unsigned char)v[i + 1]) >= 0 &&
                    hexval((unsigned char)v[i + 2]) >= 0) {
                    *o++ = (char)(hexval((unsigned char)v[i + 1]) << 4 |
                                  hexval((unsigned char)v[i + 2]));
                    i += 2;
                } else if (v[i] == '+') {
                    *o++ = ' ';
                } else {
                    *o++ = v[i];
                }
            }
            *o = '\0';
            return out;
        }
        if (!end) break;
        p = end + 1;
    }
    return NULL;
}

void db_http_req_clear(struct db_http_req *req)
{
    if (!req) return;
    free(req->method);
    free(req->url);
    db_headers_clear(&req->headers);
    free(req->body);
    memset(req, 0, sizeof *req);
}

int db_http_req_post_json(struct db_http_req *req, const char *url, const char *json_text)
{
    memset(req, 0, sizeof *req);
    req->method = strdup("POST");
    req->url = strdup(url);
    req->body_len = strlen(json_text);
    req->body = malloc(req->body_len + 1);
    if (!req->method || !req->url || !req->body ||
        db_headers_add(&req->headers, "Content-Type", "application/json") != DB_OK) {
        db_http_req_clear(req);
        return DB_ENOMEM;
    }
    memcpy(req->body, json_text, req->body_len + 1);
    return DB_OK;
}
