/* cw_api.c - Chatwoot's Application API as requests and answers, without I/O.
 *
 * Routes and parameters as Chatwoot's source defines them (config/routes.rb, the controllers
 * under app/controllers/api/v1/accounts/, app/builders/messages/message_builder.rb; see
 * docs/chatwoot.md for the files and commits read).  Every request carries the
 * api_access_token header; ids in answers are JSON integers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatwoot/cw_internal.h"
#include "util/crypto.h"
#include "util/json.h"

/* "<url>/api/v1/accounts/<account><tail>" into a malloc'd string. */
static char *api_url(const struct db_chatwoot_conf *o, const char *tail)
{
    size_t ul = strlen(o->url);
    while (ul && o->url[ul - 1] == '/') ul--;
    char *out = NULL;
    if (asprintf(&out, "%.*s/api/v1/accounts/%ld%s", (int)ul, o->url, o->account_id, tail) < 0)
        return NULL;
    return out;
}

static int fill(const struct db_chatwoot_conf *o, struct db_http_req *req, const char *method,
                const char *tail, const char *ctype, char *body, size_t body_len)
{
    memset(req, 0, sizeof *req);
    req->method = strdup(method);
    req->url = api_url(o, tail);
    req->body = body;
    req->body_len = body_len;
    if (!req->method || !req->url || db_headers_add(&req->headers, "api_access_token", o->token) ||
        db_headers_add(&req->headers, "Accept", "application/json") ||
        (ctype && db_headers_add(&req->headers, "Content-Type", ctype))) {
        db_http_req_clear(req);
        return DB_ENOMEM;
    }
    return DB_OK;
}

/* Fills a JSON request from obj (a stolen reference). */
static int fill_json(const struct db_chatwoot_conf *o, struct db_http_req *req, const char *method,
                     const char *tail, json_t *obj)
{
    char *body = obj ? db_json_dump(obj) : NULL;
    json_decref(obj);
    if (!body) return DB_ENOMEM;
    return fill(o, req, method, tail, "application/json", body, strlen(body));
}

int cw_req_contact(const struct db_chatwoot_conf *o, const char *identifier, const char *name,
                   const char *phone, const char *source_id, struct db_http_req *req)
{
    json_t *b = json_pack("{s:I,s:s,s:s}", "inbox_id", (json_int_t)o->inbox_id, "identifier",
                          identifier, "source_id", source_id);
    if (b && name && *name) json_object_set_new(b, "name", json_string(name));
    if (b && phone && *phone) json_object_set_new(b, "phone_number", json_string(phone));
    return fill_json(o, req, "POST", "/contacts", b);
}

/* Percent-encodes s (RFC 3986 unreserved kept), malloc'd. */
static char *pct(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *p = out;
    if (!out) return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~')
            *p++ = (char)*c;
        else p += sprintf(p, "%%%02X", *c);
    }
    *p = '\0';
    return out;
}

int cw_req_contact_search(const struct db_chatwoot_conf *o, const char *identifier, int page,
                          struct db_http_req *req)
{
    char *q = pct(identifier), *tail = NULL;
    if (!q || asprintf(&tail, "/contacts/search?q=%s&page=%d", q, page) < 0) tail = NULL;
    free(q);
    if (!tail) return DB_ENOMEM;
    int rc = fill(o, req, "GET", tail, NULL, NULL, 0);
    free(tail);
    return rc;
}

int cw_req_contact_conversations(const struct db_chatwoot_conf *o, long contact, struct db_http_req *req)
{
    char tail[64];
    snprintf(tail, sizeof tail, "/contacts/%ld/conversations", contact);
    return fill(o, req, "GET", tail, NULL, NULL, 0);
}

int cw_req_conversation(const struct db_chatwoot_conf *o, long contact, const char *source_id,
                        struct db_http_req *req)
{
    /* Without source_id Chatwoot makes a new contact-inbox for every conversation. */
    json_t *b = json_pack("{s:I,s:I,s:s}", "inbox_id", (json_int_t)o->inbox_id, "contact_id",
                          (json_int_t)contact, "source_id", source_id);
    return fill_json(o, req, "POST", "/conversations", b);
}

/* Appends a multipart form field. */
static int part(char **buf, size_t *len, size_t *cap, const char *boundary, const char *head,
                const void *data, size_t n)
{
    size_t hl = strlen(boundary) + strlen(head) + 16;
    if (*len + hl + n + 4 > *cap) {
        size_t c = (*cap + hl + n + 4) * 2;
        char *b = realloc(*buf, c);
        if (!b) return -1;
        *buf = b;
        *cap = c;
    }
    *len += (size_t)sprintf(*buf + *len, "--%s\r\n%s\r\n\r\n", boundary, head);
    if (n) memcpy(*buf + *len, data, n);
    *len += n;
    memcpy(*buf + *len, "\r\n", 2);
    *len += 2;
    return 0;
}

/* A file name safe inside a quoted Content-Disposition parameter. */
static void safe_name(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (const unsigned char *c = (const unsigned char *)(in && *in ? in : "file");
         *c && j + 1 < n; c++)
        out[j++] = (*c < 0x20 || *c == '"' || *c == '\\' || *c == 0x7f) ? '_' : (char)*c;
    out[j] = '\0';
}

int cw_req_message(const struct db_chatwoot_conf *o, long conv, const char *content,
                   const char *source_id, const void *file, size_t file_len,
                   const char *file_name, const char *file_type, struct db_http_req *req)
{
    char tail[64];
    snprintf(tail, sizeof tail, "/conversations/%ld/messages", conv);
    if (!file) {
        json_t *b = json_pack("{s:s,s:s,s:b,s:s}", "content", content ? content : "",
                              "message_type", "incoming", "private", 0, "source_id", source_id);
        return fill_json(o, req, "POST", tail, b);
    }
    unsigned char rnd[12];
    char hex[25], boundary[48], ctype[96], name[128], head[320];
    if (db_random_bytes(rnd, sizeof rnd) != 0) return DB_ENOMEM;
    db_hex_encode(rnd, sizeof rnd, hex);
    snprintf(boundary, sizeof boundary, "deskbridge-%s", hex);
    snprintf(ctype, sizeof ctype, "multipart/form-data; boundary=%s", boundary);
    safe_name(file_name, name, sizeof name);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *ft = file_type && *file_type && !strpbrk(file_type, "\r\n")
                         ? file_type : "application/octet-stream";
    int bad = 0;
    if (content && *content)
        bad |= part(&buf, &len, &cap, boundary, "Content-Disposition: form-data; name=\"content\"",
                    content, strlen(content));
    bad |= part(&buf, &len, &cap, boundary,
                "Content-Disposition: form-data; name=\"message_type\"", "incoming", 8);
    bad |= part(&buf, &len, &cap, boundary,
                "Content-Disposition: form-data; name=\"source_id\"", source_id,
                strlen(source_id));
    snprintf(head, sizeof head,
             "Content-Disposition: form-data; name=\"attachments[]\"; filename=\"%s\"\r\n"
             "Content-Type: %.100s", name, ft);
    bad |= part(&buf, &len, &cap, boundary, head, file, file_len);
    if (!bad && len + strlen(boundary) + 8 <= cap) {
        len += (size_t)sprintf(buf + len, "--%s--\r\n", boundary);
    } else if (!bad) {
        char *b = realloc(buf, len + strlen(boundary) + 8);
        if (!b) bad = 1;
        else buf = b, len += (size_t)sprintf(buf + len, "--%s--\r\n", boundary);
    }
    if (bad) {
        free(buf);
        return DB_ENOMEM;
    }
    return fill(o, req, "POST", tail, ctype, buf, len);
}

int cw_req_messages(const struct db_chatwoot_conf *o, long conv, struct db_http_req *req)
{
    char tail[64];
    snprintf(tail, sizeof tail, "/conversations/%ld/messages", conv);
    return fill(o, req, "GET", tail, NULL, NULL, 0);
}

int cw_req_status(const struct db_chatwoot_conf *o, long conv, long msg, const char *status,
                  const char *error, struct db_http_req *req)
{
    char tail[96];
    snprintf(tail, sizeof tail, "/conversations/%ld/messages/%ld", conv, msg);
    json_t *b = json_pack("{s:s}", "status", status);
    if (b && error) json_object_set_new(b, "external_error", json_string(error));
    return fill_json(o, req, "PATCH", tail, b);
}

/* ---- answers ---- */

static json_t *parse(const struct db_http_resp *r)
{
    json_t *obj = NULL;
    struct db_err e = {0};
    if (!r->body || db_json_parse_object(r->body, r->body_len, &obj, &e) != DB_OK) return NULL;
    return obj;
}

static int get_id(const json_t *o, const char *key, long *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0) return -1;
    *out = (long)json_integer_value(v);
    return 0;
}

int cw_read_contact(const struct db_http_resp *r, long *contact, char *source_id, size_t n)
{
    json_t *obj = parse(r);
    const json_t *c = json_object_get(json_object_get(obj, "payload"), "contact");
    int rc = c ? get_id(c, "id", contact) : -1;
    /* payload.contact_inbox is the inbox's own; contact_inboxes[] lists them all. */
    const json_t *ci = json_object_get(json_object_get(obj, "payload"), "contact_inbox");
    const char *sid = db_json_str(ci, "source_id");
    const json_t *list = json_object_get(c, "contact_inboxes");
    for (size_t i = 0; !sid && json_is_array(list) && i < json_array_size(list); i++)
        sid = db_json_str(json_array_get(list, i), "source_id");
    if (rc == 0 && source_id) snprintf(source_id, n, "%s", sid ? sid : "");
    json_decref(obj);
    return rc;
}

int cw_read_search(const struct db_http_resp *r, const char *identifier, long *contact,
                   int *more)
{
    json_t *obj = parse(r);
    const json_t *list = json_object_get(obj, "payload");
    *more = 0;
    if (!json_is_array(list)) {
        json_decref(obj);
        return -1;
    }
    int rc = 1;
    for (size_t i = 0; rc == 1 && i < json_array_size(list); i++) {
        const json_t *c = json_array_get(list, i);
        const char *id = db_json_str(c, "identifier");
        /* The search is a substring match: only an exact identifier is ours. */
        if (id && strcmp(id, identifier) == 0 && get_id(c, "id", contact) == 0) rc = 0;
    }
    *more = json_array_size(list) >= 15;
    json_decref(obj);
    return rc;
}

int cw_read_contact_conversation(const struct db_http_resp *r, long inbox, long *conv)
{
    json_t *obj = parse(r);
    const json_t *list = json_object_get(obj, "payload");
    if (!json_is_array(list)) {
        json_decref(obj);
        return -1;
    }
    int rc = 1;
    long best = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *c = json_array_get(list, i);
        long id, in;
        if (get_id(c, "id", &id) == 0 && get_id(c, "inbox_id", &in) == 0 && in == inbox &&
            id > best)
            best = id, rc = 0;
    }
    if (rc == 0) *conv = best;
    json_decref(obj);
    return rc;
}

int cw_read_id(const struct db_http_resp *r, long *id)
{
    json_t *obj = parse(r);
    int rc = obj ? get_id(obj, "id", id) : -1;
    json_decref(obj);
    return rc;
}

int cw_read_find_message(const struct db_http_resp *r, const char *source_id, long *msg)
{
    json_t *obj = parse(r);
    const json_t *list = json_object_get(obj, "payload");
    if (!json_is_array(list)) {
        json_decref(obj);
        return -1;
    }
    int rc = 1;
    for (size_t i = 0; rc == 1 && i < json_array_size(list); i++) {
        const json_t *m = json_array_get(list, i);
        const char *sid = db_json_str(m, "source_id");
        if (sid && strcmp(sid, source_id) == 0 && get_id(m, "id", msg) == 0) rc = 0;
    }
    json_decref(obj);
    return rc;
}

int cw_retryable(long status)
{
    return status == 0 || status == 408 || status == 429 || status >= 500;
}

/* ---- content ---- */

static char *join(const char *a, const char *b)
{
    char *out = NULL;
    if (asprintf(&out, "%s%s", a, b ? b : "") < 0) return NULL;
    return out;
}

char *cw_event_content(const json_t *ev)
{
    const char *kind = db_json_str(ev, "kind");
    const char *type = db_json_str(ev, "type");
    const char *text = db_json_str(ev, "text");
    if (kind && strcmp(kind, "edit") == 0) return join("Edited message: ", text);
    if (kind && strcmp(kind, "reaction") == 0) {
        const json_t *r = json_object_get(ev, "reaction");
        const char *emoji = json_is_string(r) ? json_string_value(r) : db_json_str(r, "emoji");
        if (json_is_array(r) && json_array_size(r))
            emoji = json_string_value(json_array_get(r, 0));
        if (!emoji || !*emoji) return strdup("Removed a reaction");
        return join("Reacted ", emoji);
    }
    if (type && strcmp(type, "location") == 0) {
        const json_t *l = json_object_get(ev, "location");
        char *out = NULL;
        if (asprintf(&out, "Location: %.6f, %.6f", json_number_value(json_object_get(l, "latitude")),
                     json_number_value(json_object_get(l, "longitude"))) < 0)
            return NULL;
        return out;
    }
    if (type && strcmp(type, "contact") == 0) {
        const json_t *c = json_object_get(ev, "contact");
        char *out = NULL;
        const char *n = db_json_str(c, "name"), *p = db_json_str(c, "phone");
        if (!n) n = db_json_str(c, "first_name");
        if (!p) p = db_json_str(c, "phone_number");
        if (asprintf(&out, "Contact: %s %s", n ? n : "", p ? p : "") < 0) return NULL;
        return out;
    }
    if (text) return strdup(text);
    if (type && strcmp(type, "unsupported") == 0)
        return strdup("(a message this messenger's API does not deliver)");
    return strdup("");
}

char *cw_message_content(const json_t *ev, const char *note)
{
    char *c = cw_event_content(ev);
    if (!c || !note) return c;
    char *out = NULL;
    if (asprintf(&out, "%s%s%s", c, *c ? "\n" : "", note) < 0) out = NULL;
    free(c);
    return out;
}

const char *cw_file_name(const json_t *ev, const char *file_type, char *buf, size_t n)
{
    const char *fn = db_json_str(json_object_get(ev, "media"), "file_name");
    if (fn && *fn) return fn;
    const char *type = db_json_str(ev, "type");
    const char *ext = strstr(file_type, "jpeg")  ? ".jpg"
                      : strstr(file_type, "png") ? ".png"
                      : strstr(file_type, "ogg") ? ".ogg"
                      : strstr(file_type, "mp4") ? ".mp4"
                      : strstr(file_type, "pdf") ? ".pdf"
                                                 : "";
    snprintf(buf, n, "%s%s", type ? type : "file", ext);
    return buf;
}

int cw_read_refused(const struct db_http_resp *r, const char *attribute)
{
    json_t *obj = parse(r);
    const json_t *list = json_object_get(obj, "attributes");
    int found = 0;
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
        const char *a = json_string_value(json_array_get(list, i));
        found |= a && strcmp(a, attribute) == 0;
    }
    json_decref(obj);
    return found;
}
