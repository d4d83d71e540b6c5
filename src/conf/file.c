/* file.c - pass 1 of loading: the configuration file's text into sections of keys.
 *
 * Syntax, duplicate sections and keys, unknown sections and [gateway] keys are judged here;
 * a key ending in _file is replaced by the content of the file it names (a secret), read
 * relative to the configuration file's directory (through loader.c). */
#include "conf/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Trims s in place; returns the first non-blank character. */
static char *trim(char *s)
{
    while (db_cfgl_is_space(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && db_cfgl_is_space(s[n - 1])) s[--n] = '\0';
    return s;
}

static int valid_key(const char *k)
{
    if (!*k) return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_')) return 0;
    return 1;
}

/* 1 when key may appear on several lines of its section: a repeatable key of [gateway] or of a
 * feature section's table. */
static int key_repeats(const struct db_conf_table *t, const char *key)
{
    const struct db_conf_key *k = t ? db_conf_key_find(t, key) : NULL;
    return k && (k->flags & DB_CONF_REPEATABLE);
}

int db_cfgl_kv_add(struct db_cfgl *L, struct db_cfgl_sect *s, const char *key, const char *value,
                  const char *file, int line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct db_conf_kv *kv = realloc(s->kv, cap * sizeof *kv);
        if (!kv) return db_cfgl_oom(L->e);
        s->kv = kv;
        s->cap = cap;
    }
    char *k = db_cfgl_dup(L->st, key), *v = db_cfgl_dup(L->st, value);
    if (!k || !v) return db_cfgl_oom(L->e);
    s->kv[s->n++] = (struct db_conf_kv){.key = k, .value = v, .file = file, .line = line};
    return DB_OK;
}

static int lerr(struct db_cfgl *L, int line, const char *fmt, ...) DB_PRINTF(3, 4);
static int lerr(struct db_cfgl *L, int line, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return db_err_set(L->e, DB_ECONFIG, "%s:%d: %s", L->file, line, what);
}

static int parse_header(struct db_cfgl *L, char *s, int line, size_t *cur)
{
    size_t len = strlen(s);
    if (s[len - 1] != ']') return lerr(L, line, "a section header must end with ']'");
    s[len - 1] = '\0';
    char *name = trim(s + 1);
    char *sp = name + strcspn(name, " \t");
    char *rest = *sp ? trim(sp + 1) : sp;
    *sp = '\0';
    if (strcmp(name, "gateway") == 0 && !*rest) {
        if (L->gw != SIZE_MAX)
            return lerr(L, line, "[gateway]: duplicate section (first at line %d)",
                        L->secs[L->gw].line);
        if (!db_cfgl_sect_add(L, NULL, NULL, L->file, line)) return db_cfgl_oom(L->e);
        *cur = L->gw = L->n_secs - 1;
        return DB_OK;
    }
    const struct db_conf_table *feat = *name ? db_cfgl_feature(L, name) : NULL;
    if (feat && !feat->named) {
        if (*rest) return lerr(L, line, "[%.40s]: takes no name", name);
        rest = name; /* one per file: its own name is its id */
    }
    if (!*name || (!feat && !L->find(name)) || strpbrk(rest, " \t"))
        return lerr(L, line, "[%.40s%s%.70s]: unknown section", name, *rest ? " " : "", rest);
    if (!*rest) return lerr(L, line, "[%.40s]: missing account id ([%.40s <id>])", name, name);
    if (!db_cfgl_valid_id(rest))
        return lerr(L, line,
                    "[%.40s %.70s]: %s must be 1 to 64 of A-Z a-z 0-9 _ . -",
                    name, rest, feat ? "name" : "account id");
    const struct db_cfgl_sect *dup = db_cfgl_sect_find(L, name, rest);
    if (dup)
        return lerr(L, line, "[%s %s]: duplicate %s (first at line %d)", name, rest,
                    feat ? "section" : "account", dup->line);
    char *p = db_cfgl_dup(L->st, name), *id = db_cfgl_dup(L->st, rest);
    struct db_cfgl_sect *sec = p && id ? db_cfgl_sect_add(L, p, id, L->file, line) : NULL;
    if (!sec) return db_cfgl_oom(L->e);
    sec->feature = feat;
    *cur = L->n_secs - 1;
    return DB_OK;
}

/* Removes the quotes and escapes of a quoted value in place. */
static int unquote(struct db_cfgl *L, char *v, int line, const char *key)
{
    char *w = v;
    const char *r = v + 1;
    for (; *r && *r != '"'; r++) {
        if (*r == '\\') {
            r++;
            if (*r != '"' && *r != '\\')
                return lerr(L, line, "%s: only \\\" and \\\\ may follow a backslash", key);
        }
        *w++ = *r;
    }
    if (*r != '"') return lerr(L, line, "%s: unterminated quoted value", key);
    if (r[1]) return lerr(L, line, "%s: text after the closing quote", key);
    *w = '\0';
    return DB_OK;
}

static int mark_from_file(struct db_cfgl *L, size_t i)
{
    if (i >= L->n_gw_from_file) {
        unsigned char *p = realloc(L->gw_from_file, i + 1);
        if (!p) return db_cfgl_oom(L->e);
        memset(p + L->n_gw_from_file, 0, i + 1 - L->n_gw_from_file);
        L->gw_from_file = p;
        L->n_gw_from_file = i + 1;
    }
    L->gw_from_file[i] = 1;
    return DB_OK;
}

static int parse_kv(struct db_cfgl *L, char *s, int line, size_t cur)
{
    char *eq = strchr(s, '=');
    if (!eq) return lerr(L, line, "expected 'key = value' or a [section]");
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (!valid_key(key))
        return lerr(L, line, "%.32s: a key is lowercase a-z, 0-9 and _ only", key);
    if (cur == SIZE_MAX)
        return lerr(L, line, "%s: key before any section (start with [gateway] or "
                             "[<platform> <id>])", key);
    if (*value == '"') {
        int rc = unquote(L, value, line, key);
        if (rc != DB_OK) return rc;
    }
    /* "token_file" sets "token": duplicates and unknown keys are judged on the base name,
     * before any file is opened. */
    char base[128];
    size_t klen = strlen(key);
    int is_file = klen > 5 && strcmp(key + klen - 5, "_file") == 0;
    snprintf(base, sizeof base, "%.*s", (int)(is_file ? klen - 5 : klen), key);
    struct db_cfgl_sect *sec = &L->secs[cur];
    const struct db_conf_table *t = cur == L->gw ? &db_cfgl_gateway_table : sec->feature;
    if (cur == L->gw && !db_conf_key_find(t, base))
        return lerr(L, line, "%.64s: unknown key in [gateway]", key);
    int repeatable = key_repeats(t, base);
    if (!repeatable)
        for (size_t i = 0; i < sec->n; i++)
            if (strcmp(sec->kv[i].key, base) == 0)
                return lerr(L, line, "%.64s: duplicate key (first at line %d)", key,
                            sec->kv[i].line);
    if (is_file) {
        struct db_cfgl_origin o = {.file = L->file, .line = line};
        char *secret = NULL;
        int rc = db_cfgl_read_secret(L, value, &o, key, &secret);
        if (rc != DB_OK) return rc;
        value = secret;
    }
    int rc = db_cfgl_kv_add(L, sec, base, value, L->file, line);
    if (rc == DB_OK && is_file && cur == L->gw) rc = mark_from_file(L, sec->n - 1);
    return rc;
}

int db_cfgl_parse_text(struct db_cfgl *L, const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++) line += *p == '\n';
        return lerr(L, line, "NUL byte in the file");
    }
    char *buf = malloc(len + 1);
    if (!buf) return db_cfgl_oom(L->e);
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *p = buf;
    /* Editors on some systems prepend a UTF-8 byte order mark. */
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    int rc = DB_OK, line = 0;
    size_t cur = SIZE_MAX;
    for (;;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        char *s = trim(p);
        if (*s == '[') rc = parse_header(L, s, line, &cur);
        else if (*s && *s != '#' && *s != ';') rc = parse_kv(L, s, line, cur);
        if (rc != DB_OK || !nl) break;
        p = nl + 1;
    }
    free(buf);
    return rc;
}
