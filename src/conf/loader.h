/* loader.h - the state shared by the files that load a configuration (load.c drives the
 * passes; file.c reads the file, gateway.c applies [gateway] through its key table, env.c
 * the variables and quickstart accounts, tenants.c the tenants).  Private to src/conf/. */
#ifndef DB_CONF_LOADER_H
#define DB_CONF_LOADER_H

#include <stddef.h>

#include "conf/config.h"
#include "conf/config_internal.h"
#include "util/schema.h"
#include "conf/strings.h"

/* Caps: the whole file is read before parsing, and a secret file is a token, not a blob. */
#define DB_CFGL_MAX_CONFIG_BYTES (1u << 20)
#define DB_CFGL_MAX_SECRET_BYTES (64u << 10)
#define DB_CFGL_MAX_ACCOUNT_ID 64
#define DB_CFGL_MIN_API_TOKEN 16
#define DB_CFGL_MAX_GW_KEYS 32
#define DB_CFGL_ENV_FILE "environment"

/* Where a value came from, for "FILE:LINE: KEY:" and "environment: NAME:". */
struct db_cfgl_origin {
    const char *file; /* config file name, or "default" for a value never set */
    int line;         /* 0 when not from a file line */
    const char *var;  /* environment variable name when set from the environment */
    int from_file;    /* read through *_file or NAME_FILE: a secret, never echoed */
};

int db_cfgl_oerr(struct db_err *e, const struct db_cfgl_origin *o, const char *key,
                 const char *fmt, ...) DB_PRINTF(4, 5);
int db_cfgl_oom(struct db_err *e);

struct db_cfgl_sect {
    const struct db_conf_table *feature; /* a feature section's table, NULL for accounts */
    char *platform; /* NULL for [gateway]; owned by the store */
    char *id;
    const char *file;
    int line; /* of the header; 0 for a section made from the environment */
    struct db_conf_kv *kv; /* malloc'd; moves to the configuration when built */
    size_t n, cap;
};

struct db_cfgl {
    struct db_config *c;
    struct db_cfgl_store *st;
    const struct db_config_opts *o;
    db_config_find_fn find;
    char *const *env;
    const char *file; /* display name, owned by the store */
    const char *dir;  /* directory of the config file for relative *_file paths, or NULL */
    struct db_cfgl_sect *secs;
    size_t n_secs, cap_secs;
    size_t gw; /* index of [gateway] in secs, SIZE_MAX before one is seen */
    struct db_cfgl_origin orig[DB_CFGL_MAX_GW_KEYS];
    /* Where each api_token came from, parallel to c->api_tokens (the one list key), so the
     * check pass names the right line of a short token. */
    struct db_cfgl_origin *tok_orig;
    /* 1 for each [gateway] entry read through *_file, parallel to its kv: such values are
     * secrets whatever the key. */
    unsigned char *gw_from_file;
    size_t n_gw_from_file;
    struct db_err *e;
};

/* ---- helpers (file.c) ---- */
int db_cfgl_is_space(char ch);
int db_cfgl_valid_id(const char *id); /* 1 to 64 of A-Z a-z 0-9 _ . - */
/* Reads path (at most cap bytes) into a malloc'd NUL-terminated buffer (caller frees).
 * 0, or -1 with errno set (EFBIG when over cap). */
int db_cfgl_slurp(const char *path, size_t cap, char **out, size_t *len);
const char *db_cfgl_errstr(int err);
/* Reads a secret file for key: its content without one trailing newline, store-owned. */
int db_cfgl_read_secret(struct db_cfgl *L, const char *path, const struct db_cfgl_origin *o,
                        const char *key, char **value);
struct db_cfgl_sect *db_cfgl_sect_add(struct db_cfgl *L, char *platform, char *id,
                                      const char *file, int line);
struct db_cfgl_sect *db_cfgl_sect_find(struct db_cfgl *L, const char *platform, const char *id);
int db_cfgl_kv_add(struct db_cfgl *L, struct db_cfgl_sect *s, const char *key,
                   const char *value, const char *file, int line);
/* The table of the feature section kind name, or NULL. */
const struct db_conf_table *db_cfgl_feature(const struct db_cfgl *L, const char *name);
/* Pass 1: the file's text into L->secs. */
int db_cfgl_parse_text(struct db_cfgl *L, const char *text, size_t len);

/* ---- [gateway] (gateway.c) ---- */
extern const struct db_conf_table db_cfgl_gateway_table;
int db_cfgl_apply_defaults(struct db_cfgl *L);
/* Pass 2: [gateway] of the file, then the DESKBRIDGE_* overrides. */
int db_cfgl_apply_gateway(struct db_cfgl *L);
/* Pass 4: the rules across keys. */
int db_cfgl_check(struct db_cfgl *L);

/* ---- the environment (env.c) ---- */
/* Looks up name and name_FILE: 1 with *value and *var (the variable used) when set, 0 when
 * unset, or a negative db_status. */
int db_cfgl_env_lookup(struct db_cfgl *L, const char *name, const char **value,
                       const char **var);
/* Pass 3: the quickstart accounts (and [schedule default]) from the variables. */
int db_cfgl_add_quickstarts(struct db_cfgl *L);

/* ---- tenants (tenants.c) ---- */
extern const struct db_conf_table db_cfgl_tenant_table;
/* Pass 6: c->tenants from the [tenant NAME] sections, checked across sections. */
int db_cfgl_build_tenants(struct db_cfgl *L);

#endif
