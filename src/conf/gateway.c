/* gateway.c - the [gateway] key table, and passes 2 and 4 of loading: [gateway] from the
 * file and then the DESKBRIDGE_* overrides, through the generic setters of schema.c; then
 * the rules across keys.  Values are never echoed for SECRET keys or values read from a
 * file (*_file, NAME_FILE). */
#include "conf/loader.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis.h"
#include "util/crypto.h"
#include "util/parse.h"

#define DB_STR_(x) #x
#define DB_STR(x) DB_STR_(x)

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const roles[] = {"ingest", "dispatch", "send", "all", NULL};

#define OFF(f) offsetof(struct db_config, f)

/* The doc lines are the "meaning" column of docs/config.md (test_config checks). */
static const struct db_conf_key gw_keys[] = {
    {.name = "listen", .type = DB_CONF_STR, .env = "DESKBRIDGE_LISTEN", .def = "127.0.0.1:8080",
     .off = OFF(listen),
     .doc = "Address of the HTTP server (webhooks, API, metrics). IPv6 as `[::]:8080`. Port 1-65535."},
    {.name = "admin_listen", .type = DB_CONF_STR, .env = "DESKBRIDGE_ADMIN_LISTEN",
     .off = OFF(admin_listen),
     .doc = "A second address for `/metrics` and the `/v1` API, which `listen` then no longer serves (docs/deployment.md). Unset: `listen` serves everything."},
    /* A URL may carry a Redis password. */
    {.name = "redis_url", .type = DB_CONF_STR, .flags = DB_CONF_SECRET,
     .env = "DESKBRIDGE_REDIS_URL", .off = OFF(redis_url),
     .doc = "`redis://[:password@]host:port/db` or `unix:///path/to/redis.sock`. Treated as a secret (it may carry a password)."},
    {.name = "prefix", .type = DB_CONF_STR, .env = "DESKBRIDGE_PREFIX", .def = "deskbridge",
     .off = OFF(prefix),
     .doc = "Start of every Redis key (`<prefix>:events`, `<prefix>:outbox`...). At most 64 of `A-Z a-z 0-9 _ : . -`. Lets several gateways share one Redis."},
    {.name = "api_token", .type = DB_CONF_LIST, .flags = DB_CONF_SECRET | DB_CONF_REPEATABLE,
     .env = "DESKBRIDGE_API_TOKEN", .off = OFF(api_tokens),
     .doc = "The operator's bearer tokens for the HTTP API, each at least 16 characters;"},
    {.name = "log_format", .type = DB_CONF_ENUM, .flags = DB_CONF_INDEX,
     .env = "DESKBRIDGE_LOG_FORMAT", .def = "text", .values = log_formats, .off = OFF(log_json),
     .doc = "One `key=value` line per event, or one JSON object per line."},
    {.name = "log_level", .type = DB_CONF_ENUM, .env = "DESKBRIDGE_LOG_LEVEL", .def = "info",
     .values = log_levels, .off = OFF(log_level), .doc = "Lowest level written."},
    {.name = "role", .type = DB_CONF_ENUM, .env = "DESKBRIDGE_ROLE", .def = "all",
     .values = roles, .off = OFF(role),
     .doc = "Which part of the pipeline this process runs: webhooks and polling into the stream, the dispatcher, the sender, or everything."},
    {.name = "workers", .type = DB_CONF_INT, .env = "DESKBRIDGE_WORKERS", .def = "1", .min = 1,
     .max = 64, .off = OFF(workers),
     .doc = "Worker processes (each forked from the first, sharing the listening port; only worker 0 long-polls)."},
    {.name = "shutdown_timeout_ms", .type = DB_CONF_INT, .def = "10000", .min = 0,
     .max = 600000, .off = OFF(shutdown_timeout_ms),
     .doc = "How long a stopping process lets in-flight requests and sends finish."},
    {.name = "redis_timeout_ms", .type = DB_CONF_INT,
     .def = DB_STR(DB_REDIS_COMMAND_TIMEOUT_MS), .min = 1, .max = 600000,
     .off = OFF(redis_timeout_ms), .doc = "Timeout of one Redis command."},
    {.name = "max_connections", .type = DB_CONF_INT, .def = "1024", .min = 1, .max = 1000000,
     .off = OFF(max_connections), .doc = "Concurrent HTTP connections accepted."},
    /* Meta retries a webhook for up to 7 days; a shorter memory would store a retry twice. */
    {.name = "dedupe_ttl_s", .type = DB_CONF_INT, .def = "691200", .min = 86400,
     .max = 31536000, .off = OFF(dedupe_ttl_s),
     .doc = "How long a platform message id is remembered to drop redeliveries."},
    /* The dedupe keys outnumber every other key (one per webhook for dedupe_ttl_s); in the
     * dispatcher's database they made each of its lookups slower (bench/dispatch_keyspace.sh). */
    {.name = "dedupe_db", .type = DB_CONF_INT, .env = "DESKBRIDGE_DEDUPE_DB", .def = "-1",
     .min = -1, .max = 1000000, .off = OFF(dedupe_db),
     .doc = "Logical Redis database of the dedupe keys (`<prefix>:dedupe:...`); `-1` keeps them in the database of `redis_url`."},
    {.name = "send_max_attempts", .type = DB_CONF_INT, .def = "8", .min = 1, .max = 1000,
     .off = OFF(send_max_attempts),
     .doc = "Attempts of an outbound message before it is dead-lettered."},
    {.name = "retry_base_ms", .type = DB_CONF_INT, .def = "1000", .min = 1, .max = 3600000,
     .off = OFF(retry_base_ms),
     .doc = "First retry delay of a send; doubles per attempt. Must not exceed `retry_max_ms`."},
    {.name = "retry_max_ms", .type = DB_CONF_INT, .def = "60000", .min = 1, .max = 86400000,
     .off = OFF(retry_max_ms), .doc = "Cap of the retry delay."},
    {.name = "redis_wait_replicas", .type = DB_CONF_INT, .def = "0", .min = 0, .max = 16,
     .off = OFF(redis_wait_replicas),
     .doc = "With a replicated Redis (Sentinel), a webhook is answered 2xx only after this many replicas hold its events"},
    {.name = "claim_idle_ms", .type = DB_CONF_INT, .def = "30000", .min = 100,
     .max = 86400000, .off = OFF(claim_idle_ms),
     .doc = "An outbox entry left pending this long (its process died mid-send) is taken over by another process."},
    {.name = "stream_maxlen", .type = DB_CONF_LONG, .def = "0", .min = 0, .max = LONG_MAX,
     .off = OFF(stream_maxlen),
     .doc = "Approximate cap of `<prefix>:events`, trimmed once a second; an entry a consumer group has not read is kept past it. `0` keeps everything."},
    {.name = "stream_maxlen_hard", .type = DB_CONF_LONG, .def = "0", .min = 0, .max = LONG_MAX,
     .off = OFF(stream_maxlen_hard),
     .doc = "A cap of `<prefix>:events` that removes even entries a group has not read (a group nobody reads any more); `0` never does. At least `stream_maxlen`."},
    {.name = "status_maxlen", .type = DB_CONF_LONG, .def = "0", .min = 0, .max = LONG_MAX,
     .off = OFF(status_maxlen),
     .doc = "Approximate cap of `<prefix>:status`, kept like `stream_maxlen` (never past what a group has not read). `0` keeps everything."},
    {.name = "outbox_maxlen", .type = DB_CONF_LONG, .def = "0", .min = 0, .max = LONG_MAX,
     .off = OFF(outbox_maxlen),
     .doc = "Approximate cap of `<prefix>:outbox`, kept like `stream_maxlen` (never past what a group has not read). `0` keeps everything."},
};

#define N_KEYS (sizeof gw_keys / sizeof gw_keys[0])
_Static_assert(N_KEYS <= DB_CFGL_MAX_GW_KEYS, "DB_CFGL_MAX_GW_KEYS is too small");

const struct db_conf_table db_cfgl_gateway_table = {
    .section = "gateway", .size = sizeof(struct db_config), .keys = gw_keys, .n_keys = N_KEYS};

const struct db_conf_table *db_config_gateway_table(void)
{
    return &db_cfgl_gateway_table;
}

const char *db_config_key_name(size_t i)
{
    return i < N_KEYS ? gw_keys[i].name : NULL;
}

/* " (got 'v')" for a value that may be shown, else "", in buf. */
static const char *got(const struct db_conf_key *k, const struct db_cfgl_origin *o,
                       const char *v, char *buf, size_t size)
{
    if ((k->flags & DB_CONF_SECRET) || o->from_file) return "";
    snprintf(buf, size, " (got '%.40s')", v);
    return buf;
}

/* A list takes comma- or newline-separated items, accumulating over repeated file lines;
 * a value from the environment replaces the file's list instead of extending it. */
static int set_list(struct db_cfgl *L, const struct db_conf_key *k, const char *v,
                    const struct db_cfgl_origin *o)
{
    char ***arr = &L->c->api_tokens;
    size_t *n = &L->c->n_api_tokens;
    if (o->var) *n = 0;
    const char *p = v;
    for (;;) {
        size_t len = strcspn(p, ",\n");
        const char *s = p, *end = p + len;
        while (s < end && db_cfgl_is_space(*s)) s++;
        while (end > s && db_cfgl_is_space(end[-1])) end--;
        if (s == end) return db_cfgl_oerr(L->e, o, k->name, "empty entry in the list");
        char *item = db_cfgl_ndup(L->st, s, (size_t)(end - s));
        if (!item) return db_cfgl_oom(L->e);
        char **na = realloc(*arr, (*n + 1) * sizeof *na);
        if (!na) return db_cfgl_oom(L->e);
        *arr = na;
        struct db_cfgl_origin *no = realloc(L->tok_orig, (*n + 1) * sizeof *no);
        if (!no) return db_cfgl_oom(L->e);
        L->tok_orig = no;
        na[*n] = item;
        no[*n] = *o;
        (*n)++;
        if (!p[len]) break;
        p += len + 1;
    }
    return DB_OK;
}

/* Sets key k from v (copied into the store, so the struct outlives the file's text and
 * the environment), remembering where it came from. */
static int apply_key(struct db_cfgl *L, const struct db_conf_key *k, const char *v,
                     const struct db_cfgl_origin *o)
{
    int rc = DB_OK;
    if (k->type == DB_CONF_LIST) {
        rc = set_list(L, k, v, o);
    } else {
        char *copy = db_cfgl_dup(L->st, v), buf[160], shown[64];
        if (!copy) return db_cfgl_oom(L->e);
        const char *why = db_conf_set(k, copy, L->c, buf, sizeof buf);
        if (why)
            rc = db_cfgl_oerr(L->e, o, k->name, "%s%s", why,
                              k->type == DB_CONF_STR ? "" : got(k, o, v, shown, sizeof shown));
    }
    if (rc == DB_OK) L->orig[k - gw_keys] = *o;
    return rc;
}

int db_cfgl_apply_defaults(struct db_cfgl *L)
{
    static const struct db_cfgl_origin dflt = {.file = "default"};
    for (size_t i = 0; i < N_KEYS; i++) {
        L->orig[i] = dflt;
        if (!gw_keys[i].def) continue;
        int rc = apply_key(L, &gw_keys[i], gw_keys[i].def, &dflt);
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}

int db_cfgl_apply_gateway(struct db_cfgl *L)
{
    if (L->gw != SIZE_MAX) {
        const struct db_cfgl_sect *g = &L->secs[L->gw];
        for (size_t i = 0; i < g->n; i++) {
            struct db_cfgl_origin o = {.file = g->kv[i].file, .line = g->kv[i].line,
                                       .from_file = i < L->n_gw_from_file && L->gw_from_file[i]};
            int rc = apply_key(L, db_conf_key_find(&db_cfgl_gateway_table, g->kv[i].key),
                               g->kv[i].value, &o);
            if (rc != DB_OK) return rc;
        }
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        if (!gw_keys[i].env) continue;
        const char *value = NULL, *var = NULL;
        int rc = db_cfgl_env_lookup(L, gw_keys[i].env, &value, &var);
        if (rc < 0) return rc;
        if (rc == 0) continue;
        struct db_cfgl_origin o = {.file = DB_CFGL_ENV_FILE, .var = var,
                                   .from_file = var != gw_keys[i].env};
        rc = apply_key(L, &gw_keys[i], value, &o);
        if (rc != DB_OK) return rc;
    }
    return DB_OK;
}

/* ---- pass 4: cross-field checks ---- */

static const struct db_cfgl_origin *orig_of(struct db_cfgl *L, const char *name)
{
    return &L->orig[db_conf_key_find(&db_cfgl_gateway_table, name) - gw_keys];
}

static int is_set(const struct db_cfgl_origin *o)
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
        if (db_cfgl_is_space(*p) || *p == '/') return 0;
    const char *port = colon + 1;
    if (strlen(port) > 5 || *port == '-') return 0;
    long n;
    return db_parse_long(port, 1, 65535, &n) == 0;
}

int db_cfgl_check(struct db_cfgl *L)
{
    const struct db_config *c = L->c;
    for (size_t i = 0; i < c->n_api_tokens; i++) {
        if (strlen(c->api_tokens[i]) < DB_CFGL_MIN_API_TOKEN)
            return db_cfgl_oerr(L->e, &L->tok_orig[i], "api_token",
                        "a token must be at least %d characters", DB_CFGL_MIN_API_TOKEN);
        /* A token names who is calling (operator or tenant), so it must be unique. */
        for (size_t j = 0; j < i; j++)
            if (db_ct_streq(c->api_tokens[i], c->api_tokens[j]))
                return db_cfgl_oerr(L->e, &L->tok_orig[i], "api_token", "the same token is given twice");
    }
    if (strlen(c->prefix) > 64 ||
        strspn(c->prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:.-") !=
            strlen(c->prefix))
        return db_cfgl_oerr(L->e, orig_of(L, "prefix"), "prefix",
                    "at most 64 of A-Z a-z 0-9 _ : . - (it starts every Redis key)");
    if (!valid_listen(c->listen))
    {
        char shown[64];
        return db_cfgl_oerr(L->e, orig_of(L, "listen"), "listen",
                    "expected host:port or [ipv6]:port with port 1-65535%s",
                    got(db_conf_key_find(&db_cfgl_gateway_table, "listen"), orig_of(L, "listen"), c->listen, shown,
                        sizeof shown));
    }
    if (c->admin_listen && (!valid_listen(c->admin_listen) || strcmp(c->admin_listen, c->listen) == 0))
        return db_cfgl_oerr(L->e, orig_of(L, "admin_listen"), "admin_listen",
                            "expected host:port or [ipv6]:port with port 1-65535, not the same as listen");
    if (c->redis_url && strncmp(c->redis_url, "redis://", 8) != 0 &&
        strncmp(c->redis_url, "unix://", 7) != 0 &&
        strncmp(c->redis_url, "redis+sentinel://", 17) != 0)
        return db_cfgl_oerr(L->e, orig_of(L, "redis_url"), "redis_url",
                    "expected redis://host:port/db, unix:///path/to/socket or redis+sentinel://host:port,.../master");
    if (c->retry_base_ms > c->retry_max_ms) {
        const struct db_cfgl_origin *mx = orig_of(L, "retry_max_ms");
        if (is_set(mx) && !is_set(orig_of(L, "retry_base_ms")))
            return db_cfgl_oerr(L->e, mx, "retry_max_ms", "must not be below retry_base_ms (%d)",
                        c->retry_base_ms);
        return db_cfgl_oerr(L->e, orig_of(L, "retry_base_ms"), "retry_base_ms",
                    "must not exceed retry_max_ms (%d)", c->retry_max_ms);
    }
    if (c->stream_maxlen_hard > 0 && (c->stream_maxlen == 0 || c->stream_maxlen_hard < c->stream_maxlen))
        return db_cfgl_oerr(L->e, orig_of(L, "stream_maxlen_hard"), "stream_maxlen_hard",
                            "must be 0 or at least stream_maxlen (%ld), which must be set",
                            c->stream_maxlen);
    return DB_OK;
}
