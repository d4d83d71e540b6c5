/* config.c - the INI-like configuration file, environment overrides and quickstart accounts.
 *
 * Loading runs in passes over a fresh struct db_config, so a failure at any point leaves the
 * caller's running configuration untouched (SIGHUP reload):
 *   1. parse the file into sections (syntax, duplicates, unknown sections and [gateway]
 *      keys, *_file secrets resolved);
 *   2. apply [gateway] through the key table, then the DESKBRIDGE_* variables;
 *   3. add the quickstart accounts from TELEGRAM_*, WHATSAPP_*, VIBER_*;
 *   4. check cross-field rules;
 *   5. hand each account section to its connector's account_new;
 *   6. build the tenants and check them against the accounts, each other and the gateway's
 *      tokens (a token names its caller, so it is unique).
 * Values are never echoed for keys flagged SECRET, and account values never at all: a
 * connector's keys are all potentially secret and only the connector knows which. */
#include "conf/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config_internal.h"
#include "redis/redis.h"
#include "util/crypto.h"

/* Caps: the whole file is read before parsing, and a secret file is a token, not a blob. */
#define MAX_CONFIG_BYTES (1u << 20)
#define MAX_SECRET_BYTES (64u << 10)
#define MAX_ACCOUNT_ID 64
#define MIN_API_TOKEN 16
#define DB_STR_(x) #x
#define DB_STR(x) DB_STR_(x)
#define ENV_FILE "environment"

/* ---- string storage: every string of a loaded config, freed together ---- */

struct store {
    char **p;
    size_t n, cap;
};

/* Takes s (malloc'd) into st; on failure frees s.  The result is owned by st. */
static char *st_keep(struct store *st, char *s)
{
    if (!s) return NULL;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        char **p = realloc(st->p, cap * sizeof *p);
        if (!p) {
            free(s);
            return NULL;
        }
        st->p = p;
        st->cap = cap;
    }
    st->p[st->n++] = s;
    return s;
}

/* Copy of s[0..n) owned by st, or NULL when out of memory. */
static char *st_ndup(struct store *st, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return st_keep(st, d);
}

static char *st_dup(struct store *st, const char *s)
{
    return st_ndup(st, s, strlen(s));
}

static void st_free(struct store *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) free(st->p[i]);
    free(st->p);
    free(st);
}

/* ---- where a value came from, for "FILE:LINE: KEY:" and "environment: NAME:" ---- */

struct origin {
    const char *file; /* config file name, or "default" for a value never set */
    int line;         /* 0 when not from a file line */
    const char *var;  /* environment variable name when set from the environment */
    int from_file;    /* read through *_file or NAME_FILE: a secret, never echoed */
};

static int oerr(struct db_err *e, const struct origin *o, const char *key, const char *fmt,
                ...) DB_PRINTF(4, 5);
static int oerr(struct db_err *e, const struct origin *o, const char *key, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (o->var) return db_err_set(e, DB_ECONFIG, ENV_FILE ": %s: %s", o->var, what);
    if (o->line > 0)
        return db_err_set(e, DB_ECONFIG, "%s:%d: %s: %s", o->file, o->line, key, what);
    return db_err_set(e, DB_ECONFIG, "%s: %s: %s", o->file, key, what);
}

static int oom(struct db_err *e)
{
    return db_err_set(e, DB_ENOMEM, "configuration: out of memory");
}

/* ---- the [gateway] key table ---- */

enum ktype { K_STR, K_INT, K_LONG, K_ENUM, K_LIST };

#define F_SECRET 1u     /* never echoed in an error */
#define F_REPEATABLE 2u /* may appear on several lines; the values accumulate */
#define F_INDEX 4u      /* enum stored as its index in an int, not as a string */

struct key_def {
    const char *name;
    enum ktype type;
    unsigned flags;
    const char *env;       /* overriding variable, NULL when none */
    const char *def;       /* default of K_STR/K_ENUM (NULL: unset) */
    long def_num;          /* default of K_INT/K_LONG */
    long min, max;         /* bounds of K_INT/K_LONG */
    const char *const *values; /* K_ENUM, NULL-terminated */
    size_t off;            /* target in struct db_config */
    size_t off_n;          /* K_LIST: the count's target */
};

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const roles[] = {"ingest", "dispatch", "send", "all", NULL};

#define OFF(f) offsetof(struct db_config, f)

static const struct key_def keys[] = {
    {.name = "listen", .type = K_STR, .env = "DESKBRIDGE_LISTEN", .def = "127.0.0.1:8080",
     .off = OFF(listen)},
    /* A URL may carry a Redis password. */
    {.name = "redis_url", .type = K_STR, .flags = F_SECRET, .env = "DESKBRIDGE_REDIS_URL",
     .off = OFF(redis_url)},
    {.name = "prefix", .type = K_STR, .env = "DESKBRIDGE_PREFIX", .def = "deskbridge",
     .off = OFF(prefix)},
    {.name = "api_token", .type = K_LIST, .flags = F_SECRET | F_REPEATABLE,
     .env = "DESKBRIDGE_API_TOKEN", .off = OFF(api_tokens), .off_n = OFF(n_api_tokens)},
    {.name = "log_format", .type = K_ENUM, .flags = F_INDEX, .env = "DESKBRIDGE_LOG_FORMAT",
     .def = "text", .values = log_formats, .off = OFF(log_json)},
    {.name = "log_level", .type = K_ENUM, .env = "DESKBRIDGE_LOG_LEVEL", .def = "info",
     .values = log_levels, .off = OFF(log_level)},
    {.name = "role", .type = K_ENUM, .env = "DESKBRIDGE_ROLE", .def = "all", .values = roles,
     .off = OFF(role)},
    {.name = "workers", .type = K_INT, .env = "DESKBRIDGE_WORKERS", .def_num = 1, .min = 1,
     .max = 64, .off = OFF(workers)},
    {.name = "shutdown_timeout_ms", .type = K_INT, .def_num = 10000, .min = 0, .max = 600000,
     .off = OFF(shutdown_timeout_ms)},
    {.name = "redis_timeout_ms", .type = K_INT, .def_num = DB_REDIS_COMMAND_TIMEOUT_MS, .min = 1,
     .max = 600000, .off = OFF(redis_timeout_ms)},
    {.name = "max_connections", .type = K_INT, .def_num = 1024, .min = 1, .max = 1000000,
     .off = OFF(max_connections)},
    /* Meta retries a webhook for up to 7 days; a shorter memory would store a retry twice. */
    {.name = "dedupe_ttl_s", .type = K_INT, .def_num = 691200, .min = 86400, .max = 31536000,
     .off = OFF(dedupe_ttl_s)},
    {.name = "send_max_attempts", .type = K_INT, .def_num = 8, .min = 1, .max = 1000,
     .off = OFF(send_max_attempts)},
    {.name = "retry_base_ms", .type = K_INT, .def_num = 1000, .min = 1, .max = 3600000,
     .off = OFF(retry_base_ms)},
    {.name = "retry_max_ms", .type = K_INT, .def_num = 60000, .min = 1, .max = 86400000,
     .off = OFF(retry_max_ms)},
    {.name = "redis_wait_replicas", .type = K_INT, .def_num = 0, .min = 0, .max = 16,
     .off = OFF(redis_wait_replicas)},
    {.name = "claim_idle_ms", .type = K_INT, .def_num = 30000, .min = 100, .max = 86400000,
     .off = OFF(claim_idle_ms)},
    {.name = "stream_maxlen", .type = K_LONG, .def_num = 0, .min = 0, .max = LONG_MAX,
     .off = OFF(stream_maxlen)},
};

#define N_KEYS (sizeof keys / sizeof keys[0])

static const struct key_def *key_find(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

/* ---- quickstart accounts from the environment ---- */

enum id_mode {
    ID_TOKEN_PREFIX, /* the digits before ':' of the id variable (Telegram bot token) */
    ID_REQUIRED,     /* the id variable itself, which must be set */
    ID_DEFAULT,      /* the id variable itself, else id_default */
    ID_FIXED,        /* always id_default (feature sections such as [schedule default]) */
};

struct qs_var {
    const char *var;
    const char *key; /* section key, NULL when the variable only names the account */
};

struct quickstart {
    const char *platform;
    const struct qs_var *vars; /* terminated by {NULL, NULL} */
    size_t id_var;             /* index in vars of the variable the id comes from */
    enum id_mode id_mode;
    const char *id_default;
};

static const struct qs_var tg_vars[] = {
    {"TELEGRAM_BOT_TOKEN", "token"},
    {"TELEGRAM_WEBHOOK_SECRET", "webhook_secret"},
    {"TELEGRAM_API_BASE", "api_base"},
    {NULL, NULL},
};
static const struct qs_var wa_vars[] = {
    {"WHATSAPP_ACCESS_TOKEN", "access_token"},
    {"WHATSAPP_APP_SECRET", "app_secret"},
    {"WHATSAPP_VERIFY_TOKEN", "verify_token"},
    {"WHATSAPP_PHONE_NUMBER_ID", "phone_number_id"},
    {"WHATSAPP_API_BASE", "api_base"},
    {NULL, NULL},
};
static const struct qs_var vb_vars[] = {
    {"VIBER_AUTH_TOKEN", "auth_token"},
    {"VIBER_ACCOUNT", NULL},
    {"VIBER_SENDER_NAME", "sender_name"},
    {"VIBER_SENDER_AVATAR", "sender_avatar"},
    {"VIBER_API_BASE", "api_base"},
    {NULL, NULL},
};

static const struct qs_var sched_vars[] = {
    {"DESKBRIDGE_TIMEZONE", "timezone"},
    {"DESKBRIDGE_BUSINESS_HOURS", "hours"},
    {"DESKBRIDGE_HOLIDAYS", "holidays"},
    {"DESKBRIDGE_AWAY_MESSAGE", "away_message"},
    {NULL, NULL},
};

static const struct quickstart quickstarts[] = {
    {.platform = "schedule", .vars = sched_vars, .id_var = 0, .id_mode = ID_FIXED,
     .id_default = "default"},
    {.platform = "telegram", .vars = tg_vars, .id_var = 0, .id_mode = ID_TOKEN_PREFIX},
    {.platform = "whatsapp", .vars = wa_vars, .id_var = 3, .id_mode = ID_REQUIRED},
    {.platform = "viber", .vars = vb_vars, .id_var = 1, .id_mode = ID_DEFAULT,
     .id_default = "viber"},
};

#define N_QUICKSTARTS (sizeof quickstarts / sizeof quickstarts[0])

const char *db_config_key_name(size_t i)
{
    return i < N_KEYS ? keys[i].name : NULL;
}

const char *db_config_env_name(size_t i)
{
    for (size_t k = 0; k < N_KEYS; k++) {
        if (!keys[k].env) continue;
        if (i == 0) return keys[k].env;
        i--;
    }
    for (size_t q = 0; q < N_QUICKSTARTS; q++)
        for (const struct qs_var *v = quickstarts[q].vars; v->var; v++) {
            if (i == 0) return v->var;
            i--;
        }
    return NULL;
}

/* ---- the loader ---- */

struct sect {
    int feature;    /* a feature section ([schedule x], [dispatch]...), not an account */
    char *platform; /* NULL for [gateway]; owned by the store */
    char *id;
    const char *file;
    int line; /* of the header; 0 for a section made from the environment */
    struct db_conf_kv *kv; /* malloc'd; moves to the account when built */
    size_t n, cap;
};

struct loader {
    struct db_config *c;
    struct store *st;
    const struct db_config_opts *o;
    db_config_find_fn find;
    char *const *env;
    const char *file; /* display name, owned by the store */
    const char *dir;  /* directory of the config file for relative *_file paths, or NULL */
    struct sect *secs;
    size_t n_secs, cap_secs;
    size_t gw; /* index of [gateway] in secs, SIZE_MAX before one is seen */
    struct origin orig[N_KEYS];
    /* Where each api_token came from, parallel to c->api_tokens (the one K_LIST key), so the
     * check pass names the right line of a short token. */
    struct origin *tok_orig;
    /* 1 for each [gateway] entry read through *_file, parallel to its kv: such values are
     * secrets whatever the key. */
    unsigned char *gw_from_file;
    size_t n_gw_from_file;
    struct db_err *e;
};

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Trims s in place; returns the first non-blank character. */
static char *trim(char *s)
{
    while (is_space(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1])) s[--n] = '\0';
    return s;
}

static int valid_account_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > MAX_ACCOUNT_ID) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

static int valid_key(const char *k)
{
    if (!*k) return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_')) return 0;
    return 1;
}

/* Reads path (at most cap bytes) into a malloc'd NUL-terminated buffer (caller frees).
 * 0, or -1 with errno set (EFBIG when over cap). */
static int slurp(const char *path, size_t cap, char **out, size_t *len)
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

static const char *read_errstr(int err)
{
    return err == EFBIG ? "file too large" : strerror(err);
}

/* Reads a secret file for key (error names o and key): its content without one trailing
 * newline, owned by the store, in *value. */
static int read_secret(struct loader *L, const char *path, const struct origin *o,
                       const char *key, char **value)
{
    char *buf = NULL, *full = NULL;
    const char *shown = path; /* as the user wrote it */
    size_t len = 0;
    if (L->o->no_secret_files)
        return oerr(L->e, o, key, "secret files are disabled here");
    if (!*path) return oerr(L->e, o, key, "empty path");
    if (path[0] != '/' && L->dir) {
        size_t n = strlen(L->dir) + strlen(path) + 2;
        full = malloc(n);
        if (!full) return oom(L->e);
        snprintf(full, n, "%s/%s", L->dir, path);
        path = full;
    }
    if (slurp(path, MAX_SECRET_BYTES, &buf, &len) != 0) {
        int rc = errno == ENOMEM ? oom(L->e)
                                 : oerr(L->e, o, key, "cannot read %.80s: %s", shown,
                                        read_errstr(errno));
        free(full);
        return rc;
    }
    if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '\r') buf[--len] = '\0';
    int rc = DB_OK;
    if (memchr(buf, '\0', len)) rc = oerr(L->e, o, key, "%.80s contains a NUL byte", shown);
    else if (len == 0) rc = oerr(L->e, o, key, "%.80s is empty", shown);
    free(full);
    if (rc != DB_OK) {
        free(buf);
        return rc;
    }
    *value = st_keep(L->st, buf);
    return *value ? DB_OK : oom(L->e);
}

/* ---- generic setters, one per type ---- */

typedef int (*setter_fn)(struct loader *L, const struct key_def *k, const char *v,
                         const struct origin *o);

static void *field(struct loader *L, size_t off)
{
    return (char *)L->c + off;
}

static int set_str(struct loader *L, const struct key_def *k, const char *v,
                   const struct origin *o)
{
    if (!*v) return oerr(L->e, o, k->name, "must not be empty");
    char *s = st_dup(L->st, v);
    if (!s) return oom(L->e);
    *(char **)field(L, k->off) = s;
    return DB_OK;
}

/* " (got 'v')" for a value that may be shown, else "", in buf. */
static const char *got(const struct key_def *k, const struct origin *o, const char *v,
                       char *buf, size_t size)
{
    if ((k->flags & F_SECRET) || o->from_file) return "";
    snprintf(buf, size, " (got '%.40s')", v);
    return buf;
}

static int set_num(struct loader *L, const struct key_def *k, const char *v,
                   const struct origin *o)
{
    char shown[64];
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    /* strtoll accepts leading blanks and '+'; a config value is digits only. */
    int bad = !*v || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) || *end != '\0' ||
              errno == ERANGE;
    if (bad || n < k->min || n > k->max)
        return oerr(L->e, o, k->name, "must be an integer from %ld to %ld%s", k->min, k->max,
                    got(k, o, v, shown, sizeof shown));
    if (k->type == K_INT) *(int *)field(L, k->off) = (int)n;
    else *(long *)field(L, k->off) = (long)n;
    return DB_OK;
}

static int set_enum(struct loader *L, const struct key_def *k, const char *v,
                    const struct origin *o)
{
    for (int i = 0; k->values[i]; i++) {
        if (strcmp(k->values[i], v) != 0) continue;
        if (k->flags & F_INDEX) {
            *(int *)field(L, k->off) = i;
            return DB_OK;
        }
        char *s = st_dup(L->st, v);
        if (!s) return oom(L->e);
        *(char **)field(L, k->off) = s;
        return DB_OK;
    }
    char allowed[96] = "";
    for (int i = 0; k->values[i]; i++) {
        size_t used = strlen(allowed);
        snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? "|" : "", k->values[i]);
    }
    char shown[64];
    return oerr(L->e, o, k->name, "must be %s%s", allowed, got(k, o, v, shown, sizeof shown));
}

/* A list takes comma- or newline-separated items, accumulating over repeated file lines;
 * a value from the environment replaces the file's list instead of extending it. */
static int set_list(struct loader *L, const struct key_def *k, const char *v,
                    const struct origin *o)
{
    char ***arr = field(L, k->off);
    size_t *n = field(L, k->off_n);
    if (o->var) *n = 0;
    const char *p = v;
    for (;;) {
        size_t len = strcspn(p, ",\n");
        const char *s = p, *end = p + len;
        while (s < end && is_space(*s)) s++;
        while (end > s && is_space(end[-1])) end--;
        if (s == end) return oerr(L->e, o, k->name, "empty entry in the list");
        char *item = st_ndup(L->st, s, (size_t)(end - s));
        if (!item) return oom(L->e);
        char **na = realloc(*arr, (*n + 1) * sizeof *na);
        if (!na) return oom(L->e);
        *arr = na;
        struct origin *no = realloc(L->tok_orig, (*n + 1) * sizeof *no);
        if (!no) return oom(L->e);
        L->tok_orig = no;
        na[*n] = item;
        no[*n] = *o;
        (*n)++;
        if (!p[len]) break;
        p += len + 1;
    }
    return DB_OK;
}

static const setter_fn setters[] = {
    [K_STR] = set_str, [K_INT] = set_num, [K_LONG] = set_num, [K_ENUM] = set_enum,
    [K_LIST] = set_list,
};

static int apply_key(struct loader *L, const struct key_def *k, const char *v,
                     const struct origin *o)
{
    int rc = setters[k->type](L, k, v, o);
    if (rc == DB_OK) L->orig[k - keys] = *o;
    return rc;
}

static int apply_defaults(struct loader *L)
{
    static const struct origin dflt = {.file = "default"};
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key_def *k = &keys[i];
        L->orig[i] = dflt;
        int rc = DB_OK;
        if (k->type == K_INT || k->type == K_LONG) {
            char num[32];
            snprintf(num, sizeof num, "%ld", k->def_num);
            rc = setters[k->type](L, k, num, &dflt);
        } else if (k->def) {
            rc = setters[k->type](L, k, k->def, &dflt);
        }
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}

/* ---- pass 1: the file ---- */

static struct sect *sect_add(struct loader *L, char *platform, char *id, const char *file,
                             int line)
{
    if (L->n_secs == L->cap_secs) {
        size_t cap = L->cap_secs ? L->cap_secs * 2 : 8;
        struct sect *s = realloc(L->secs, cap * sizeof *s);
        if (!s) return NULL;
        L->secs = s;
        L->cap_secs = cap;
    }
    struct sect *s = &L->secs[L->n_secs++];
    *s = (struct sect){.platform = platform, .id = id, .file = file, .line = line};
    return s;
}

static struct sect *sect_find(struct loader *L, const char *platform, const char *id)
{
    for (size_t i = 0; i < L->n_secs; i++)
        if (L->secs[i].platform && strcmp(L->secs[i].platform, platform) == 0 &&
            strcmp(L->secs[i].id, id) == 0)
            return &L->secs[i];
    return NULL;
}

static const struct db_feature_section *feature_find(const char *name)
{
    for (size_t i = 0; db_feature_sections[i].name; i++)
        if (strcmp(db_feature_sections[i].name, name) == 0) return &db_feature_sections[i];
    return NULL;
}

/* 1 when key may appear on several lines of the feature section s. */
static int feature_key_repeats(const struct sect *s, const char *key)
{
    const struct db_feature_section *f = s->feature ? feature_find(s->platform) : NULL;
    for (size_t i = 0; f && f->repeatable && f->repeatable[i]; i++)
        if (strcmp(f->repeatable[i], key) == 0) return 1;
    return 0;
}

static int kv_add(struct loader *L, struct sect *s, const char *key, const char *value,
                  const char *file, int line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct db_conf_kv *kv = realloc(s->kv, cap * sizeof *kv);
        if (!kv) return oom(L->e);
        s->kv = kv;
        s->cap = cap;
    }
    char *k = st_dup(L->st, key), *v = st_dup(L->st, value);
    if (!k || !v) return oom(L->e);
    s->kv[s->n++] = (struct db_conf_kv){.key = k, .value = v, .file = file, .line = line};
    return DB_OK;
}

static int lerr(struct loader *L, int line, const char *fmt, ...) DB_PRINTF(3, 4);
static int lerr(struct loader *L, int line, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return db_err_set(L->e, DB_ECONFIG, "%s:%d: %s", L->file, line, what);
}

static int parse_header(struct loader *L, char *s, int line, size_t *cur)
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
        if (!sect_add(L, NULL, NULL, L->file, line)) return oom(L->e);
        *cur = L->gw = L->n_secs - 1;
        return DB_OK;
    }
    const struct db_feature_section *feat = *name ? feature_find(name) : NULL;
    if (feat && !feat->named) {
        if (*rest) return lerr(L, line, "[%.40s]: takes no name", name);
        rest = name; /* one per file: its own name is its id */
    }
    if (!*name || (!feat && !L->find(name)) || strpbrk(rest, " \t"))
        return lerr(L, line, "[%.40s%s%.70s]: unknown section", name, *rest ? " " : "", rest);
    if (!*rest) return lerr(L, line, "[%.40s]: missing account id ([%.40s <id>])", name, name);
    if (!valid_account_id(rest))
        return lerr(L, line,
                    "[%.40s %.70s]: %s must be 1 to 64 of A-Z a-z 0-9 _ . -",
                    name, rest, feat ? "name" : "account id");
    const struct sect *dup = sect_find(L, name, rest);
    if (dup)
        return lerr(L, line, "[%s %s]: duplicate %s (first at line %d)", name, rest,
                    feat ? "section" : "account", dup->line);
    char *p = st_dup(L->st, name), *id = st_dup(L->st, rest);
    struct sect *sec = p && id ? sect_add(L, p, id, L->file, line) : NULL;
    if (!sec) return oom(L->e);
    sec->feature = feat != NULL;
    *cur = L->n_secs - 1;
    return DB_OK;
}

/* Removes the quotes and escapes of a quoted value in place. */
static int unquote(struct loader *L, char *v, int line, const char *key)
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

static int mark_from_file(struct loader *L, size_t i)
{
    if (i >= L->n_gw_from_file) {
        unsigned char *p = realloc(L->gw_from_file, i + 1);
        if (!p) return oom(L->e);
        memset(p + L->n_gw_from_file, 0, i + 1 - L->n_gw_from_file);
        L->gw_from_file = p;
        L->n_gw_from_file = i + 1;
    }
    L->gw_from_file[i] = 1;
    return DB_OK;
}

static int parse_kv(struct loader *L, char *s, int line, size_t cur)
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
    struct sect *sec = &L->secs[cur];
    const struct key_def *k = NULL;
    if (cur == L->gw) {
        k = key_find(base);
        if (!k) return lerr(L, line, "%.64s: unknown key in [gateway]", key);
    }
    int repeatable = k ? (k->flags & F_REPEATABLE) != 0 : feature_key_repeats(sec, base);
    if (!repeatable)
        for (size_t i = 0; i < sec->n; i++)
            if (strcmp(sec->kv[i].key, base) == 0)
                return lerr(L, line, "%.64s: duplicate key (first at line %d)", key,
                            sec->kv[i].line);
    if (is_file) {
        struct origin o = {.file = L->file, .line = line};
        char *secret = NULL;
        int rc = read_secret(L, value, &o, key, &secret);
        if (rc != DB_OK) return rc;
        value = secret;
    }
    int rc = kv_add(L, sec, base, value, L->file, line);
    if (rc == DB_OK && is_file && cur == L->gw) rc = mark_from_file(L, sec->n - 1);
    return rc;
}

static int parse_text(struct loader *L, const char *text, size_t len)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++) line += *p == '\n';
        return lerr(L, line, "NUL byte in the file");
    }
    char *buf = malloc(len + 1);
    if (!buf) return oom(L->e);
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

/* ---- pass 2: [gateway] and DESKBRIDGE_* ---- */

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
static int env_lookup(struct loader *L, const char *name, const char **value,
                      const char **var)
{
    char fname[96];
    snprintf(fname, sizeof fname, "%s_FILE", name);
    const char *direct = env_get(L->env, name), *path = env_get(L->env, fname);
    struct origin o = {.var = name};
    if (direct && path) return oerr(L->e, &o, name, "set both %s and %s", name, fname);
    if (direct) {
        *value = direct;
        *var = name;
        return 1;
    }
    if (!path) return 0;
    char *fvar = st_dup(L->st, fname);
    if (!fvar) return oom(L->e);
    o.var = fvar;
    char *secret = NULL;
    int rc = read_secret(L, path, &o, fname, &secret);
    if (rc != DB_OK) return rc;
    *value = secret;
    *var = fvar;
    return 1;
}

static int apply_gateway(struct loader *L)
{
    if (L->gw != SIZE_MAX) {
        const struct sect *g = &L->secs[L->gw];
        for (size_t i = 0; i < g->n; i++) {
            struct origin o = {.file = g->kv[i].file, .line = g->kv[i].line,
                               .from_file = i < L->n_gw_from_file && L->gw_from_file[i]};
            int rc = apply_key(L, key_find(g->kv[i].key), g->kv[i].value, &o);
            if (rc != DB_OK) return rc;
        }
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        if (!keys[i].env) continue;
        const char *value = NULL, *var = NULL;
        int rc = env_lookup(L, keys[i].env, &value, &var);
        if (rc < 0) return rc;
        if (rc == 0) continue;
        struct origin o = {.file = ENV_FILE, .var = var, .from_file = var != keys[i].env};
        rc = apply_key(L, &keys[i], value, &o);
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}

/* ---- pass 3: quickstart accounts ---- */

static int add_quickstart(struct loader *L, const struct quickstart *q)
{
    const char *val[8] = {0}, *var[8] = {0};
    int any = 0;
    for (size_t i = 0; q->vars[i].var; i++) {
        int rc = env_lookup(L, q->vars[i].var, &val[i], &var[i]);
        if (rc < 0) return rc;
        any |= rc;
    }
    if (!any) return DB_OK;
    const char *idvar = q->vars[q->id_var].var;
    struct origin o = {.var = var[q->id_var] ? var[q->id_var] : idvar};
    const char *id = val[q->id_var];
    char idbuf[MAX_ACCOUNT_ID + 1];
    if (q->id_mode == ID_FIXED) {
        id = q->id_default;
    } else if (!id && q->id_mode == ID_DEFAULT) {
        id = q->id_default;
    } else if (!id) {
        return oerr(L->e, &o, idvar, "required when any %.*s_* variable is set",
                    (int)strcspn(idvar, "_"), idvar);
    } else if (q->id_mode == ID_TOKEN_PREFIX) {
        /* Telegram bot tokens are "<bot id>:<secret>"; the id is public, the rest is not. */
        size_t digits = strspn(id, "0123456789");
        if (digits == 0 || id[digits] != ':' || digits > MAX_ACCOUNT_ID)
            return oerr(L->e, &o, idvar, "no bot id (digits before ':') in the token");
        memcpy(idbuf, id, digits);
        idbuf[digits] = '\0';
        id = idbuf;
    }
    if (!valid_account_id(id))
        return oerr(L->e, &o, idvar, "account id must be 1 to 64 of A-Z a-z 0-9 _ . -");
    int feat = feature_find(q->platform) != NULL;
    if (!feat && !L->find(q->platform))
        return oerr(L->e, &o, idvar, "platform not available");
    struct sect *s = sect_find(L, q->platform, id);
    if (!s) {
        char *p = st_dup(L->st, q->platform), *sid = st_dup(L->st, id);
        if (!p || !sid || !(s = sect_add(L, p, sid, ENV_FILE, 0))) return oom(L->e);
        s->feature = feat;
    }
    for (size_t i = 0; q->vars[i].var; i++) {
        if (!val[i] || !q->vars[i].key) continue;
        int rc = kv_add(L, s, q->vars[i].key, val[i], ENV_FILE, 0);
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}

/* ---- pass 4: cross-field checks ---- */

static const struct origin *orig_of(struct loader *L, const char *name)
{
    return &L->orig[key_find(name) - keys];
}

static int is_set(const struct origin *o)
{
    return o->var || o->line > 0;
}

/* host:port or [v6]:port, port 1..65535. */
static int valid_listen(const char *s)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1 || close[1] != ':') return 0;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s || memchr(s, ':', (size_t)(colon - s))) return 0;
    }
    for (const char *p = s; p < colon; p++)
        if (is_space(*p) || *p == '/') return 0;
    const char *port = colon + 1;
    if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port)) return 0;
    long n = strtol(port, NULL, 10);
    return n >= 1 && n <= 65535;
}

static int check(struct loader *L)
{
    const struct db_config *c = L->c;
    for (size_t i = 0; i < c->n_api_tokens; i++) {
        if (strlen(c->api_tokens[i]) < MIN_API_TOKEN)
            return oerr(L->e, &L->tok_orig[i], "api_token",
                        "a token must be at least %d characters", MIN_API_TOKEN);
        /* A token names who is calling (operator or tenant), so it must be unique. */
        for (size_t j = 0; j < i; j++)
            if (db_ct_streq(c->api_tokens[i], c->api_tokens[j]))
                return oerr(L->e, &L->tok_orig[i], "api_token", "the same token is given twice");
    }
    if (strlen(c->prefix) > 64 ||
        strspn(c->prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:.-") !=
            strlen(c->prefix))
        return oerr(L->e, orig_of(L, "prefix"), "prefix",
                    "at most 64 of A-Z a-z 0-9 _ : . - (it starts every Redis key)");
    if (!valid_listen(c->listen))
    {
        char shown[64];
        return oerr(L->e, orig_of(L, "listen"), "listen",
                    "expected host:port or [ipv6]:port with port 1-65535%s",
                    got(key_find("listen"), orig_of(L, "listen"), c->listen, shown,
                        sizeof shown));
    }
    if (c->redis_url && strncmp(c->redis_url, "redis://", 8) != 0 &&
        strncmp(c->redis_url, "unix://", 7) != 0 &&
        strncmp(c->redis_url, "redis+sentinel://", 17) != 0)
        return oerr(L->e, orig_of(L, "redis_url"), "redis_url",
                    "expected redis://host:port/db, unix:///path/to/socket or redis+sentinel://host:port,.../master");
    if (c->retry_base_ms > c->retry_max_ms) {
        const struct origin *mx = orig_of(L, "retry_max_ms");
        if (is_set(mx) && !is_set(orig_of(L, "retry_base_ms")))
            return oerr(L->e, mx, "retry_max_ms", "must not be below retry_base_ms (%d)",
                        c->retry_base_ms);
        return oerr(L->e, orig_of(L, "retry_base_ms"), "retry_base_ms",
                    "must not exceed retry_max_ms (%d)", c->retry_max_ms);
    }
    return DB_OK;
}

/* ---- pass 5: accounts ---- */

static int build_accounts(struct loader *L)
{
    struct db_config *c = L->c;
    size_t n = 0;
    size_t nf = 0;
    for (size_t i = 0; i < L->n_secs; i++) {
        n += L->secs[i].platform && !L->secs[i].feature;
        nf += L->secs[i].feature;
    }
    if (nf) {
        c->sections = calloc(nf, sizeof *c->sections);
        if (!c->sections) return oom(L->e);
        for (size_t i = 0; i < L->n_secs; i++) {
            struct sect *s = &L->secs[i];
            if (!s->feature) continue;
            struct db_conf_section *sec = &c->sections[c->n_sections++];
            *sec = (struct db_conf_section){
                .platform = s->platform, .account = s->id, .kv = s->kv, .n = s->n};
            s->kv = NULL; /* the configuration owns it now */
            const struct db_feature_section *f = feature_find(s->platform);
            if (f->check) {
                int rc = f->check(sec, L->e);
                if (rc != DB_OK) return rc;
            }
        }
    }
    if (n == 0) return DB_OK;
    c->accounts = calloc(n, sizeof *c->accounts);
    if (!c->accounts) return oom(L->e);
    for (size_t i = 0; i < L->n_secs; i++) {
        struct sect *s = &L->secs[i];
        if (!s->platform || s->feature) continue;
        const struct db_connector *conn = L->find(s->platform);
        if (!conn || (!L->o->skip_accounts && !conn->account_new)) {
            if (s->line > 0)
                return db_err_set(L->e, DB_ECONFIG, "%s:%d: [%s %s]: platform not available",
                                  s->file, s->line, s->platform, s->id);
            return db_err_set(L->e, DB_ECONFIG, ENV_FILE ": [%s %s]: platform not available",
                              s->platform, s->id);
        }
        struct db_account *a = &c->accounts[c->n_accounts++];
        a->conn = conn;
        a->platform = conn->name;
        a->id = s->id;
        a->sec = (struct db_conf_section){
            .platform = s->platform, .account = s->id, .kv = s->kv, .n = s->n};
        s->kv = NULL; /* the account owns it now */
        if (L->o->skip_accounts) continue;
        void *state = NULL;
        int rc = conn->account_new(&a->sec, &state, L->e);
        if (rc != DB_OK) {
            if (conn->account_free) conn->account_free(state);
            return rc;
        }
        a->state = state;
    }
    return DB_OK;
}

/* ---- pass 6: tenants ---- */

const char *const db_tenant_repeatable[] = {"api_token", NULL};

/* Calls fn on each comma- or newline-separated entry of v (blanks around it removed) until
 * fn returns non-zero, which is returned; an empty entry is passed as "" (length 0). */
typedef int (*entry_fn)(const char *s, size_t n, void *arg);
static int each_entry(const char *v, entry_fn fn, void *arg)
{
    for (const char *p = v;;) {
        size_t len = strcspn(p, ",\n");
        const char *s = p, *end = p + len;
        while (s < end && is_space(*s)) s++;
        while (end > s && is_space(end[-1])) end--;
        int rc = fn(s, (size_t)(end - s), arg);
        if (rc) return rc;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

/* One entry of a tenant key, checked alone; what is wrong goes to why. */
struct entry_check {
    const char *key;
    const char *why;
};

static int tenant_entry_bad(const char *s, size_t n, void *arg)
{
    struct entry_check *ck = arg;
    if (n == 0) ck->why = "empty entry in the list";
    else if (strcmp(ck->key, "api_token") == 0 && n < MIN_API_TOKEN)
        ck->why = "a token must be at least " DB_STR(MIN_API_TOKEN) " characters";
    else if (strcmp(ck->key, "accounts") == 0) {
        const char *colon = memchr(s, ':', n);
        char id[MAX_ACCOUNT_ID + 1];
        size_t idn = colon ? n - (size_t)(colon - s) - 1 : 0;
        if (!colon || colon == s || idn == 0 || idn > MAX_ACCOUNT_ID) {
            ck->why = "want platform:account-id entries";
        } else {
            memcpy(id, colon + 1, idn);
            id[idn] = '\0';
            if (!valid_account_id(id)) ck->why = "want platform:account-id entries";
        }
    }
    return ck->why != NULL;
}

int db_tenant_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    static const char *const allowed[] = {"accounts", "api_token", NULL};
    for (size_t i = 0; i < sec->n; i++) {
        const struct db_conf_kv *kv = &sec->kv[i];
        int known = 0;
        for (size_t j = 0; allowed[j]; j++) known |= strcmp(kv->key, allowed[j]) == 0;
        if (!known) return db_conf_error(e, sec, kv, kv->key, "unknown key in [tenant]");
        struct entry_check ck = {.key = kv->key};
        /* The message never quotes the entry: it may be a token. */
        if (each_entry(kv->value, tenant_entry_bad, &ck))
            return db_conf_error(e, sec, kv, kv->key, "%s", ck.why);
    }
    for (size_t j = 0; allowed[j]; j++)
        if (!db_conf_find(sec, allowed[j]))
            return db_conf_error(e, sec, NULL, allowed[j], "required");
    return DB_OK;
}

int db_tenant_serves(const struct db_tenant *t, const char *platform, const char *account)
{
    if (!t) return 1;
    size_t pl = strlen(platform);
    for (size_t i = 0; i < t->n_accounts; i++) {
        const char *a = t->accounts[i];
        if (strncmp(a, platform, pl) == 0 && a[pl] == ':' && strcmp(a + pl + 1, account) == 0)
            return 1;
    }
    return 0;
}

/* Where a token was first given, for "already used by ..." */
struct tok_seen {
    const char *tok;
    const char *tenant; /* NULL: [gateway] */
    const struct origin *gw;
    const struct db_conf_kv *kv;
};

/* The state of building one tenant's lists from its section. */
struct tenant_build {
    struct loader *L;
    struct db_tenant *t;
    const struct db_conf_section *sec;
    const struct db_conf_kv *kv;
    struct tok_seen *seen; /* every token so far: the gateway's, then the tenants' */
    size_t n_seen;
    int rc;
};

static int tenant_add_account(const char *s, size_t n, void *arg)
{
    struct tenant_build *b = arg;
    struct db_config *c = b->L->c;
    char *entry = st_ndup(b->L->st, s, n);
    if (!entry) return b->rc = oom(b->L->e);
    char *colon = strchr(entry, ':');
    *colon = '\0';
    int known = db_config_account(c, entry, colon + 1) != NULL;
    *colon = ':';
    if (!known)
        return b->rc = db_conf_error(b->L->e, b->sec, b->kv, "accounts",
                                     "%.100s is not a configured account", entry);
    for (size_t i = 0; i < c->n_tenants; i++)
        for (size_t j = 0; j < c->tenants[i].n_accounts; j++)
            if (strcmp(c->tenants[i].accounts[j], entry) == 0)
                return b->rc = db_conf_error(
                           b->L->e, b->sec, b->kv, "accounts", "%.100s %s [tenant %s]", entry,
                           &c->tenants[i] == b->t ? "is listed twice in" : "already belongs to",
                           c->tenants[i].name);
    b->t->accounts[b->t->n_accounts++] = entry;
    return 0;
}

static int tenant_add_token(const char *s, size_t n, void *arg)
{
    struct tenant_build *b = arg;
    char *tok = st_ndup(b->L->st, s, n);
    if (!tok) return b->rc = oom(b->L->e);
    for (size_t i = 0; i < b->n_seen; i++) {
        const struct tok_seen *p = &b->seen[i];
        if (!db_ct_streq(p->tok, tok)) continue;
        char where[128];
        if (!p->tenant && p->gw->var) snprintf(where, sizeof where, "%s", p->gw->var);
        else if (!p->tenant) snprintf(where, sizeof where, "[gateway] (line %d)", p->gw->line);
        else snprintf(where, sizeof where, "[tenant %s] (line %d)", p->tenant, p->kv->line);
        return b->rc = db_conf_error(b->L->e, b->sec, b->kv, "api_token",
                                     "the same token is already used by %s", where);
    }
    b->seen[b->n_seen++] = (struct tok_seen){.tok = tok, .tenant = b->t->name, .kv = b->kv};
    b->t->api_tokens[b->t->n_api_tokens++] = tok;
    return 0;
}

static size_t count_entries(const char *v)
{
    size_t n = 1;
    for (; *v; v++) n += *v == ',' || *v == '\n';
    return n;
}

/* Builds c->tenants from the [tenant NAME] sections (already checked one by one) and checks
 * them against each other, the accounts and the gateway's tokens. */
static int build_tenants(struct loader *L)
{
    struct db_config *c = L->c;
    size_t nt = 0, ntok = c->n_api_tokens;
    for (size_t i = 0; i < c->n_sections; i++) {
        const struct db_conf_section *sec = &c->sections[i];
        if (strcmp(sec->platform, "tenant") != 0) continue;
        nt++;
        for (size_t k = 0; k < sec->n; k++)
            if (strcmp(sec->kv[k].key, "api_token") == 0) ntok += count_entries(sec->kv[k].value);
    }
    if (nt == 0) return DB_OK;
    struct tenant_build b = {.L = L};
    c->tenants = calloc(nt, sizeof *c->tenants);
    b.seen = calloc(ntok, sizeof *b.seen);
    if (!c->tenants || !b.seen) {
        free(b.seen);
        return oom(L->e);
    }
    for (size_t i = 0; i < c->n_api_tokens; i++)
        b.seen[b.n_seen++] = (struct tok_seen){.tok = c->api_tokens[i], .gw = &L->tok_orig[i]};
    for (size_t i = 0; i < c->n_sections && b.rc == DB_OK; i++) {
        const struct db_conf_section *sec = &c->sections[i];
        if (strcmp(sec->platform, "tenant") != 0) continue;
        struct db_tenant *t = &c->tenants[c->n_tenants++];
        t->name = sec->account;
        b.t = t;
        b.sec = sec;
        size_t na = 0, nk = 0;
        for (size_t k = 0; k < sec->n; k++) {
            size_t n = count_entries(sec->kv[k].value);
            if (strcmp(sec->kv[k].key, "accounts") == 0) na += n;
            else nk += n;
        }
        t->accounts = calloc(na, sizeof *t->accounts);
        t->api_tokens = calloc(nk, sizeof *t->api_tokens);
        if (!t->accounts || !t->api_tokens) {
            b.rc = oom(L->e);
            break;
        }
        for (size_t k = 0; k < sec->n && b.rc == DB_OK; k++) {
            b.kv = &sec->kv[k];
            int accounts = strcmp(b.kv->key, "accounts") == 0;
            (void)each_entry(b.kv->value, accounts ? tenant_add_account : tenant_add_token, &b);
        }
    }
    free(b.seen);
    return b.rc;
}

/* ---- public ---- */

void db_config_free(struct db_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_accounts; i++) {
        struct db_account *a = &c->accounts[i];
        if (a->state && a->conn && a->conn->account_free) a->conn->account_free(a->state);
        free((void *)a->sec.kv);
    }
    free(c->accounts);
    for (size_t i = 0; i < c->n_tenants; i++) {
        free(c->tenants[i].accounts);
        free(c->tenants[i].api_tokens);
    }
    free(c->tenants);
    for (size_t i = 0; i < c->n_sections; i++) free((void *)c->sections[i].kv);
    free(c->sections);
    free(c->api_tokens);
    st_free(c->storage);
    free(c);
}

static int load(struct loader *L, const char *file)
{
    const struct db_config_opts *o = L->o;
    int rc = apply_defaults(L);
    if (rc != DB_OK) return rc;
    if (o->text || file) {
        L->file = st_dup(L->st, file ? file : "config");
        if (!L->file) return oom(L->e);
        if (file) {
            L->c->file = st_dup(L->st, file);
            const char *slash = strrchr(file, '/');
            if (slash) L->dir = st_ndup(L->st, file, slash == file ? 1 : (size_t)(slash - file));
            if (!L->c->file || (slash && !L->dir)) return oom(L->e);
        }
        if (o->text) {
            if (o->text_len > MAX_CONFIG_BYTES)
                return db_err_set(L->e, DB_ECONFIG, "%s: file too large", L->file);
            rc = parse_text(L, o->text, o->text_len);
        } else {
            char *buf = NULL;
            size_t len = 0;
            if (slurp(file, MAX_CONFIG_BYTES, &buf, &len) != 0)
                return errno == ENOMEM ? oom(L->e)
                                       : db_err_set(L->e, DB_ECONFIG, "%s: cannot read: %s",
                                                    L->file, read_errstr(errno));
            rc = parse_text(L, buf, len);
            free(buf);
        }
        if (rc != DB_OK) return rc;
    }
    if ((rc = apply_gateway(L)) != DB_OK) return rc;
    for (size_t i = 0; i < N_QUICKSTARTS; i++)
        if ((rc = add_quickstart(L, &quickstarts[i])) != DB_OK) return rc;
    if ((rc = check(L)) != DB_OK) return rc;
    if ((rc = build_accounts(L)) != DB_OK) return rc;
    return build_tenants(L);
}

int db_config_load_opts(const char *file, char *const *env, const struct db_config_opts *o,
                        struct db_config **out, struct db_err *e)
{
    static const struct db_config_opts none = {0};
    struct loader L = {.o = o ? o : &none, .env = env, .gw = SIZE_MAX, .e = e};
    L.find = L.o->find ? L.o->find : db_connector_find;
    *out = NULL;
    int rc = DB_ENOMEM;
    L.c = calloc(1, sizeof *L.c);
    L.st = calloc(1, sizeof *L.st);
    if (!L.c || !L.st) {
        rc = oom(e);
        goto fail;
    }
    L.c->storage = L.st;
    rc = load(&L, file);
    if (rc != DB_OK) goto fail;
    for (size_t i = 0; i < L.n_secs; i++) free(L.secs[i].kv);
    free(L.secs);
    free(L.tok_orig);
    free(L.gw_from_file);
    *out = L.c;
    return DB_OK;
fail:
    for (size_t i = 0; i < L.n_secs; i++) free(L.secs[i].kv);
    free(L.secs);
    free(L.tok_orig);
    free(L.gw_from_file);
    if (L.c) db_config_free(L.c); /* owns L.st once attached */
    else st_free(L.st);
    return rc;
}

int db_config_load(const char *file, char *const *env, struct db_config **out,
                   struct db_err *e)
{
    return db_config_load_opts(file, env, NULL, out, e);
}

const struct db_account *db_config_account(const struct db_config *c, const char *platform,
                                           const char *id)
{
    if (!c) return NULL;
    for (size_t i = 0; i < c->n_accounts; i++)
        if (strcmp(c->accounts[i].platform, platform) == 0 && strcmp(c->accounts[i].id, id) == 0)
            return &c->accounts[i];
    return NULL;
}

const struct db_account *db_config_sole_account(const struct db_config *c, const char *platform)
{
    const struct db_account *found = NULL;
    for (size_t i = 0; c && i < c->n_accounts; i++) {
        if (strcmp(c->accounts[i].platform, platform) != 0) continue;
        if (found) return NULL;
        found = &c->accounts[i];
    }
    return found;
}

const struct db_conf_section *db_config_section(const struct db_config *c, const char *type,
                                                const char *name)
{
    for (size_t i = 0; i < c->n_sections; i++)
        if (strcmp(c->sections[i].platform, type) == 0 &&
            (!name || strcmp(c->sections[i].account, name) == 0))
            return &c->sections[i];
    return NULL;
}
