/* walk.h - reading a WhatsApp webhook body while remembering where in it the reader is, so
 * every error names its field ("entry[0].changes[0].value.messages[1].type").  Shared by
 * parse.c and content.c.  The helpers are static inline because they run for every member
 * of every webhook, as cheaply as when they were private to one file. */
#ifndef DESKBRIDGE_CONNECTORS_WHATSAPP_WALK_H
#define DESKBRIDGE_CONNECTORS_WHATSAPP_WALK_H

#include <stddef.h>
#include <string.h>

#include "whatsapp_internal.h"

/* Where in the body the walk is, so every error names its field. */
struct walk {
    const struct wa_account *a;
    struct db_err *e;
    char where[96];
};

static inline int bad(struct walk *w, const char *field, const char *what)
{
    return db_err_set(w->e, DB_EINVAL, "%s%s%s: %s", w->where, *field && *w->where ? "." : "",
                      field, what);
}

static inline int nomem(struct walk *w)
{
    return db_err_set(w->e, DB_ENOMEM, "out of memory");
}

/* *out = borrowed string member key of obj; NULL when absent.  DB_EINVAL when present with
 * another type, or absent/empty and required. */
static inline int get_str(struct walk *w, const json_t *obj, const char *key, int required,
                   const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? bad(w, key, "missing") : DB_OK;
    if (!json_is_string(v)) return bad(w, key, "must be a string");
    if (required && json_string_length(v) == 0) return bad(w, key, "must not be empty");
    *out = json_string_value(v);
    return DB_OK;
}

/* get_str for ids: also bounded, so dedupe keys and external ids stay small. */
static inline int get_id(struct walk *w, const json_t *obj, const char *key, int required,
                  const char **out)
{
    int rc = get_str(w, obj, key, required, out);
    if (rc == DB_OK && *out && strlen(*out) > WA_MAX_ID) return bad(w, key, "id too long");
    return rc;
}

/* Borrowed member key of obj when it is an object (NULL when absent); DB_EINVAL otherwise. */
static inline int get_obj(struct walk *w, const json_t *obj, const char *key, int required,
                   const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? bad(w, key, "missing") : DB_OK;
    if (!json_is_object(v)) return bad(w, key, "must be an object");
    *out = v;
    return DB_OK;
}

static inline int get_arr(struct walk *w, const json_t *obj, const char *key, int required,
                   const json_t **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? bad(w, key, "missing") : DB_OK;
    if (!json_is_array(v)) return bad(w, key, "must be an array");
    *out = v;
    return DB_OK;
}

static inline int get_bool(struct walk *w, const json_t *obj, const char *key, int *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v || json_is_null(v)) return DB_OK;
    if (!json_is_boolean(v)) return bad(w, key, "must be a boolean");
    *out = json_is_true(v);
    return DB_OK;
}

/* Sets dst[key] = copy of s (nothing when s is NULL), mapping jansson failures. */
static inline int put_str(struct walk *w, json_t *dst, const char *key, const char *s)
{
    int rc = db_event_set_str(dst, key, s);
    if (rc == DB_EINVAL) return bad(w, key, "not valid UTF-8");
    return rc == DB_OK ? DB_OK : nomem(w);
}

/* Copies optional string member key of src into dst under dst_key. */
static inline int copy_str(struct walk *w, json_t *dst, const char *dst_key, const json_t *src,
                    const char *key)
{
    const char *s;
    int rc = get_str(w, src, key, 0, &s);
    return rc != DB_OK ? rc : put_str(w, dst, dst_key, s);
}

static inline int put_bool(struct walk *w, json_t *dst, const char *key, int v)
{
    return json_object_set_new(dst, key, json_boolean(v)) == 0 ? DB_OK : nomem(w);
}

/* Takes obj (a new reference) and stores it as dst[key]. */
static inline int put_new(struct walk *w, json_t *dst, const char *key, json_t *obj)
{
    return obj && json_object_set_new(dst, key, obj) == 0 ? DB_OK : nomem(w);
}

/* Appends at most "%s[%zu]" to w->where; returns the previous length for restoring. */
static inline size_t enter(struct walk *w, const char *name, size_t i)
{
    /* Built by hand: it runs for every entry of every webhook, and snprintf was a visible
     * part of the parse, while the path is only read when something is wrong. */
    size_t len = strlen(w->where), n = len, cap = sizeof w->where - 1;
    char digits[24];
    size_t nd = 0;
    do digits[nd++] = (char)('0' + i % 10);
    while ((i /= 10) > 0);
    if (len && n < cap) w->where[n++] = '.';
    for (const char *p = name; *p && n < cap; p++) w->where[n++] = *p;
    if (n < cap) w->where[n++] = '[';
    while (nd > 0 && n < cap) w->where[n++] = digits[--nd];
    if (n < cap) w->where[n++] = ']';
    w->where[n] = '\0';
    return len;
}

static inline void leave(struct walk *w, size_t len)
{
    w->where[len] = '\0';
}

/* content.c: the members of message m that say what it is (type, text, media, location,
 * interactive, button...), written into ev. */
int db_wa_put_content(struct walk *w, json_t *ev, const json_t *m);
/* content.c: a reaction message's emoji and the message it reacts to. */
int db_wa_put_reaction(struct walk *w, json_t *ev, const json_t *m);
/* content.c: an edit (the new content) or, with revoke set, a deletion. */
int db_wa_put_edit(struct walk *w, json_t *ev, const json_t *m, int revoke);

#endif
