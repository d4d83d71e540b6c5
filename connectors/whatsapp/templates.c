/* templates.c - the account's message templates: the Graph API request that lists them
 * (GET /<business account id>/message_templates, one page at a time), the approved ones read
 * into the gateway's summary of what a send must supply, and the check of a send's
 * "template" member against that summary, so a wrong parameter count is refused before Meta
 * sees it (developers.facebook.com/documentation/business-messaging/whatsapp/templates/
 * template-management and .../send-message-templates). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/json.h"
#include "whatsapp_internal.h"

/* Templates per page: Meta's page size is a query parameter; its default is 25. */
#define PAGE_LIMIT "100"
#define MAX_CURSOR 512

int db_wa_build_templates(const void *acct, const char *after, struct db_http_req *req,
                          struct db_err *e)
{
    const struct wa_account *a = acct;
    if (!a->business_account_id)
        return db_err_set(e, DB_EUNSUPPORTED,
                          "the account has no business_account_id: templates cannot be listed");
    /* A cursor is Meta's opaque text, handed back as it came: percent-encoded so that no
     * byte of it can change the URL. */
    if (after && strlen(after) > MAX_CURSOR) return db_err_set(e, DB_EINVAL, "paging cursor too long");
    char enc[3 * MAX_CURSOR + 1] = "";
    for (size_t i = 0, o = 0; after && after[i]; i++) {
        unsigned char ch = (unsigned char)after[i];
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~", ch) && ch)
            enc[o++] = (char)ch;
        else
            o += (size_t)snprintf(enc + o, sizeof enc - o, "%%%02X", ch);
        enc[o] = '\0';
    }
    char *base = db_wa_graph_url(a, a->business_account_id, "message_templates");
    if (!base) return db_err_set(e, DB_ENOMEM, "out of memory");
    size_t n = strlen(base) + strlen(enc) + 128;
    char *url = malloc(n);
    if (!url) {
        free(base);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    snprintf(url, n, "%s?fields=name,language,status,category,components&limit=" PAGE_LIMIT "%s%s",
             base, after ? "&after=" : "", enc);
    free(base);
    memset(req, 0, sizeof *req);
    req->method = strdup("GET");
    req->url = url;
    if (!req->method || db_headers_add(&req->headers, "Authorization", a->bearer) != DB_OK) {
        db_http_req_clear(req);
        return db_err_set(e, DB_ENOMEM, "out of memory");
    }
    return DB_OK;
}

/* How many distinct {{...}} placeholders text holds: each is one value a send supplies,
 * positional ({{1}}) or named ({{order_id}}). */
static int placeholders(const char *text)
{
    const char *seen[64];
    size_t len[64];
    int n = 0;
    for (const char *p = text ? strstr(text, "{{") : NULL; p && n < 64; p = strstr(p, "{{")) {
        const char *end = strstr(p + 2, "}}");
        if (!end) break;
        size_t l = (size_t)(end - p - 2);
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = len[i] == l && memcmp(seen[i], p + 2, l) == 0;
        if (!dup && l > 0) {
            seen[n] = p + 2;
            len[n++] = l;
        }
        p = end + 2;
    }
    return n;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

/* New reference: the summary of one approved template, or NULL when t is not one (or on
 * ENOMEM, which the caller cannot tell apart and need not: the template is left out). */
static json_t *summary(const json_t *t)
{
    const char *name = db_json_str(t, "name"), *lang = db_json_str(t, "language");
    const char *status = db_json_str(t, "status");
    if (!name || !lang || !status || strcasecmp(status, "APPROVED") != 0) return NULL;
    json_t *s = json_pack("{s:s, s:s}", "name", name, "language", lang);
    if (!s) return NULL;
    const char *cat = db_json_str(t, "category");
    char buf[32];
    if (cat && strlen(cat) < sizeof buf) {
        snprintf(buf, sizeof buf, "%s", cat);
        lower(buf);
        json_object_set_new(s, "category", json_string(buf));
    }
    const json_t *c;
    size_t i;
    json_array_foreach(json_object_get(t, "components"), i, c) {
        const char *type = db_json_str(c, "type");
        if (!type) continue;
        if (strcasecmp(type, "HEADER") == 0) {
            const char *fmt = db_json_str(c, "format");
            if (!fmt || strlen(fmt) >= sizeof buf) continue;
            snprintf(buf, sizeof buf, "%s", fmt);
            lower(buf);
            /* A header takes one value at most: a text header has one variable or none,
             * a media header its media. */
            int n = strcmp(buf, "text") == 0 ? placeholders(db_json_str(c, "text")) > 0
                    : strcmp(buf, "image") == 0 || strcmp(buf, "video") == 0 ||
                            strcmp(buf, "document") == 0
                        ? 1
                        : 0;
            json_object_set_new(s, "header", json_pack("{s:s, s:i}", "format", buf, "parameters", n));
        } else if (strcasecmp(type, "BODY") == 0) {
            const char *text = db_json_str(c, "text");
            json_object_set_new(s, "body", json_pack("{s:s, s:i}", "text", text ? text : "",
                                                     "parameters", placeholders(text)));
        } else if (strcasecmp(type, "BUTTONS") == 0) {
            json_t *list = json_array();
            const json_t *b;
            size_t k;
            json_array_foreach(json_object_get(c, "buttons"), k, b) {
                const char *bt = db_json_str(b, "type");
                if (!bt || strlen(bt) >= sizeof buf) continue;
                snprintf(buf, sizeof buf, "%s", bt);
                lower(buf);
                /* A URL button with a placeholder takes the URL's end; a copy-code button
                 * takes the code; the others take nothing (a quick reply's payload is
                 * optional). */
                int n = strcmp(buf, "url") == 0 ? placeholders(db_json_str(b, "url")) > 0
                        : strcmp(buf, "copy_code") == 0 ? 1
                                                        : 0;
                json_array_append_new(list, json_pack("{s:i, s:s, s:i}", "index", (int)k, "type",
                                                      buf, "parameters", n));
            }
            if (list) json_object_set_new(s, "buttons", list);
        }
    }
    return s;
}

int db_wa_read_templates(const void *acct, const struct db_http_resp *resp, json_t *list,
                         char **after, struct db_err *e)
{
    json_t *root = NULL;
    struct db_err pe = {0};
    (void)acct;
    *after = NULL;
    if (resp->status == 0)
        return db_err_set(e, DB_EINVAL, "no answer from WhatsApp: %s",
                          resp->transport_error ? resp->transport_error : "transport failure");
    int parsed = db_json_parse_object(resp->body, resp->body_len, &root, &pe) == DB_OK;
    if (resp->status < 200 || resp->status >= 300) {
        const char *msg = parsed ? db_json_str(json_object_get(root, "error"), "message") : NULL;
        int rc = db_err_set(e, DB_EREJECTED, "WhatsApp answered %ld: %.120s", resp->status,
                            msg ? msg : "no error message");
        json_decref(root);
        return rc;
    }
    const json_t *data = parsed ? json_object_get(root, "data") : NULL;
    if (!json_is_array(data)) {
        json_decref(root);
        return db_err_set(e, DB_EINVAL, "WhatsApp's template list has no data array");
    }
    const json_t *t;
    size_t i;
    json_array_foreach(data, i, t) {
        json_t *s = summary(t);
        if (s && json_array_append_new(list, s) != 0) {
            json_decref(root);
            return db_err_set(e, DB_ENOMEM, "out of memory");
        }
    }
    /* Meta gives paging.next only when there is a next page; the cursor names it. */
    const json_t *paging = json_object_get(root, "paging");
    const char *cur = db_json_str(json_object_get(paging, "cursors"), "after");
    if (json_object_get(paging, "next") && cur && *cur && strlen(cur) <= MAX_CURSOR) {
        *after = strdup(cur);
        if (!*after) {
            json_decref(root);
            return db_err_set(e, DB_ENOMEM, "out of memory");
        }
    }
    json_decref(root);
    return DB_OK;
}

/* DB_EINVAL naming the request member what (a count of values) of template tname. */
static int wrong_count(const char **field, const char *what, const char *part, const char *tname,
                       long want, long got, struct db_err *e)
{
    if (field) *field = what;
    return db_err_set(e, DB_EINVAL, "%s: %.60s takes %ld %s parameters, not %ld", what, tname,
                      want, part, got);
}

int db_wa_check_template(const void *acct, const json_t *known, const json_t *tmpl,
                         const char **field, struct db_err *e)
{
    (void)acct;
    const char *name = db_json_str(tmpl, "name"), *lang = db_json_str(tmpl, "language");
    const json_t *t = NULL, *k;
    size_t i;
    if (!name || !lang) {
        if (field) *field = "template";
        return db_err_set(e, DB_EINVAL, "template: needs a name and a language code (strings)");
    }
    json_array_foreach(known, i, k)
        if (!t && strcmp(name, db_json_str(k, "name") ? db_json_str(k, "name") : "") == 0 &&
            strcmp(lang, db_json_str(k, "language") ? db_json_str(k, "language") : "") == 0)
            t = k;
    if (!t) {
        if (field) *field = "template";
        return db_err_set(e, DB_ENOTFOUND, "template: no approved template %.60s in %.20s", name,
                          lang);
    }

    /* body */
    const json_t *params = json_object_get(tmpl, "parameters");
    long want = (long)json_integer_value(json_object_get(json_object_get(t, "body"), "parameters"));
    long got = json_is_array(params) ? (long)json_array_size(params) : 0;
    if (want != got)
        return wrong_count(field, "template.parameters", "body", name, want, got, e);

    /* header */
    const json_t *th = json_object_get(t, "header"), *rh = json_object_get(tmpl, "header");
    want = (long)json_integer_value(json_object_get(th, "parameters"));
    got = rh && !json_is_null(rh) ? 1 : 0;
    if (want != got)
        return wrong_count(field, "template.header", "header", name, want, got, e);
    if (want) {
        const char *fmt = db_json_str(th, "format"), *rt = db_json_str(rh, "type");
        if (!fmt || !rt || strcmp(fmt, rt) != 0) {
            if (field) *field = "template.header";
            return db_err_set(e, DB_EINVAL, "template.header: %.60s has a %.20s header, not %.20s",
                              name, fmt ? fmt : "?", rt ? rt : "missing type");
        }
    }

    /* buttons: every button that takes a value gets exactly one; quick replies may */
    const json_t *rb = json_object_get(tmpl, "buttons"), *b;
    json_array_foreach(json_object_get(t, "buttons"), i, k) {
        long need = (long)json_integer_value(json_object_get(k, "parameters"));
        long idx = (long)json_integer_value(json_object_get(k, "index"));
        const json_t *given = NULL;
        size_t j;
        json_array_foreach(rb, j, b)
            if (json_integer_value(json_object_get(b, "index")) == idx) given = b;
        long n = given ? (long)json_array_size(json_object_get(given, "parameters")) : 0;
        const char *type = db_json_str(k, "type");
        int optional = type && strcmp(type, "quick_reply") == 0 && n <= 1;
        if (n != need && !optional) {
            if (field) *field = "template.buttons";
            return db_err_set(e, DB_EINVAL,
                              "template.buttons: %.60s's button %ld takes %ld parameters, not %ld",
                              name, idx, need, n);
        }
    }
    json_array_foreach(rb, i, b) {
        json_int_t idx = json_integer_value(json_object_get(b, "index"));
        int exists = 0;
        size_t j;
        json_array_foreach(json_object_get(t, "buttons"), j, k)
            exists |= json_integer_value(json_object_get(k, "index")) == idx;
        if (!exists) {
            if (field) *field = "template.buttons";
            return db_err_set(e, DB_EINVAL, "template.buttons: %.60s has no button %lld", name,
                              (long long)idx);
        }
    }
    return DB_OK;
}
