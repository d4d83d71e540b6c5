/* loader.c - what the passes of loading share (conf/loader.h): the string store that owns
 * every string of a loaded configuration, errors that name file, line and key (or the
 * variable), names and blanks, reading secret files, the section list, the feature tables
 * handed in, and the lookup of NAME / NAME_FILE in the environment.  It calls no pass: the
 * passes (file.c, gateway.c, env.c, tenants.c) call it, and load.c calls them in order. */
#include "conf/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crypto.h"

/* ---- where a value came from, for "FILE:LINE: KEY:" and "environment: NAME:" ---- */

int db_cfgl_oerr(struct db_err *e, const struct db_cfgl_origin *o, const char *key, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (o->var) return db_err_set(e, DB_ECONFIG, DB_CFGL_ENV_FILE ": %s: %s", o->var, what);
    if (o->line > 0)
        return db_err_set(e, DB_ECONFIG, "%s:%d: %s: %s", o->file, o->line, key, what);
    return db_err_set(e, DB_ECONFIG, "%s: %s: %s", o->file, key, what);
}

int db_cfgl_oom(struct db_err *e)
{
    return db_err_set(e, DB_ENOMEM, "configuration: out of memory");
}

/* ---- names, blanks, files ---- */

int db_cfgl_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

int db_cfgl_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > DB_CFGL_MAX_ACCOUNT_ID) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

/* Reads path (at most cap bytes) into a malloc'd NUL-terminated buffer (caller frees).
 * 0, or -1 with errno set (EFBIG when over cap). */
int db_cfgl_slurp(const char *path, size_t cap, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0, size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) goto fail;
    if (S_ISDIR(sb.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    for (;;) {
        if (n == size) {
            if (size > cap) {
                errno = EFBIG;
                goto fail;
            }
            size_t nsize = size ? size * 2 : 4096;
            char *nb = realloc(buf, nsize + 1);
            if (!nb) goto fail;
            buf = nb;
            size = nsize;
        }
        ssize_t r = read(fd, buf + n, size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) goto fail;
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > cap) {
        errno = EFBIG;
        goto fail;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
fail:;
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return -1;
}

const char *db_cfgl_errstr(int err)
{
    return err == EFBIG ? "file too large" : strerror(err);
}

/* Reads a secret file for key (error names o and key): its content without one trailing
 * newline, owned by the store, in *value. */
int db_cfgl_read_secret(struct db_cfgl *L, const char *path, const struct db_cfgl_origin *o,
                       const char *key, char **value)
{
    char *buf = NULL, *full = NULL;
    const char *shown = path; /* as the user wrote it */
    size_t len = 0;
    if (L->o->no_secret_files)
        return db_cfgl_oerr(L->e, o, key, "secret files are disabled here");
    if (!*path) return db_cfgl_oerr(L->e, o, key, "empty path");
    if (path[0] != '/' && L->dir) {
        size_t n = strlen(L->dir) + strlen(path) + 2;
        full = malloc(n);
        if (!full) return db_cfgl_oom(L->e);
        snprintf(full, n, "%s/%s", L->dir, path);
        path = full;
    }
    if (db_cfgl_slurp(path, DB_CFGL_MAX_SECRET_BYTES, &buf, &len) != 0) {
        int rc = errno == ENOMEM ? db_cfgl_oom(L->e)
                                 : db_cfgl_oerr(L->e, o, key, "cannot read %.80s: %s", shown,
                                        db_cfgl_errstr(errno));
        free(full);
        return rc;
    }
    if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '\r') buf[--len] = '\0';
    int rc = DB_OK;
    if (memchr(buf, '\0', len)) rc = db_cfgl_oerr(L->e, o, key, "%.80s contains a NUL byte", shown);
    else if (len == 0) rc = db_cfgl_oerr(L->e, o, key, "%.80s is empty", shown);
    free(full);
    if (rc != DB_OK) {
        free(buf);
        return rc;
    }
    *value = db_cfgl_keep(L->st, buf);
    return *value ? DB_OK : db_cfgl_oom(L->e);
}

/* ---- pass 1: the file ---- */

struct db_cfgl_sect *db_cfgl_sect_add(struct db_cfgl *L, char *platform, char *id, const char *file,
                             int line)
{
    if (L->n_secs == L->cap_secs) {
        size_t cap = L->cap_secs ? L->cap_secs * 2 : 8;
        struct db_cfgl_sect *s = realloc(L->secs, cap * sizeof *s);
        if (!s) return NULL;
        L->secs = s;
        L->cap_secs = cap;
    }
    struct db_cfgl_sect *s = &L->secs[L->n_secs++];
    *s = (struct db_cfgl_sect){.platform = platform, .id = id, .file = file, .line = line};
    return s;
}

struct db_cfgl_sect *db_cfgl_sect_find(struct db_cfgl *L, const char *platform, const char *id)
{
    for (size_t i = 0; i < L->n_secs; i++)
        if (L->secs[i].platform && strcmp(L->secs[i].platform, platform) == 0 &&
            strcmp(L->secs[i].id, id) == 0)
            return &L->secs[i];
    return NULL;
}

const struct db_conf_table *db_cfgl_feature(const struct db_cfgl *L, const char *name)
{
    const struct db_conf_table *const *t = L->o ? L->o->features : NULL;
    for (size_t i = 0; t && t[i]; i++)
        if (strcmp(t[i]->section, name) == 0) return t[i];
    return NULL;
}

/* ---- the environment ---- */

/* The value of NAME in env, "" and NULL both meaning unset. */
static const char *env_get(char *const *env, const char *name)
{
    if (!env) return NULL;
    size_t n = strlen(name);
    for (char *const *p = env; *p; p++)
        if (strncmp(*p, name, n) == 0 && (*p)[n] == '=') return (*p)[n + 1] ? *p + n + 1 : NULL;
    return NULL;
}

/* Looks up name and name_FILE.  1 with *value (store-owned or borrowed from env) and
 * *var (the variable actually used, for messages; store-owned or static) when set, 0 when
 * unset, or a negative db_status. */
int db_cfgl_env_lookup(struct db_cfgl *L, const char *name, const char **value,
                      const char **var)
{
    char fname[96];
    snprintf(fname, sizeof fname, "%s_FILE", name);
    const char *direct = env_get(L->env, name), *path = env_get(L->env, fname);
    struct db_cfgl_origin o = {.var = name};
    if (direct && path) return db_cfgl_oerr(L->e, &o, name, "set both %s and %s", name, fname);
    if (direct) {
        *value = direct;
        *var = name;
        return 1;
    }
    if (!path) return 0;
    char *fvar = db_cfgl_dup(L->st, fname);
    if (!fvar) return db_cfgl_oom(L->e);
    o.var = fvar;
    char *secret = NULL;
    int rc = db_cfgl_read_secret(L, path, &o, fname, &secret);
    if (rc != DB_OK) return rc;
    *value = secret;
    *var = fvar;
    return 1;
}
