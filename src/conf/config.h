/* config.h - the gateway's configuration: a file of [sections] plus environment overrides.
 *
 * Loading parses into a fresh struct, runs the cross-field checks, builds every account's
 * connector state, and only then hands the result out, so a bad file never replaces a good
 * running configuration (SIGHUP).  Every error names the file, the line and the key.
 * Nothing here calls exit(). docs/config.md documents every key; a test keeps the two in
 * step. */
#ifndef DB_CONFIG_H
#define DB_CONFIG_H

#include <stddef.h>

#include "deskbridge/connector.h"
#include "deskbridge/status.h"

struct db_account {
    const struct db_connector *conn;
    const char *platform;        /* == conn->name */
    const char *id;              /* account id: URL segment and stream member */
    void *state;                 /* conn->account_new result, freed by db_config_free */
    struct db_conf_section sec;  /* the keys as loaded (values with *_file resolved) */
    int polls;                   /* receives by long polling: the connector can poll and no
                                    webhook_secret is configured (decided at load) */
};

/* A business served by this gateway ([tenant NAME], docs/config.md): its API tokens reach
 * only its own accounts.  Every pointer is owned by the configuration. */
struct db_tenant {
    const char *name;
    const char **accounts;    /* "platform:account", each a configured account */
    size_t n_accounts;
    const char **api_tokens;  /* bearer tokens of this tenant (several during a rotation) */
    size_t n_api_tokens;
};

struct db_conf_table;
struct db_config_feature {
    const struct db_conf_table *table;
    void *obj; /* the module's struct; owned by the configuration */
};

struct db_config {
    char *file;               /* path given to --config, NULL when environment only */
    char *listen;             /* host:port, default 127.0.0.1:8080 */
    char *admin_listen;       /* host:port of /metrics and /v1, NULL: listen serves them */
    char *redis_url;          /* NULL when not configured (the run script provides one) */
    char *prefix;             /* key prefix, default "deskbridge" */
    char **api_tokens;        /* bearer tokens accepted by the API (current, previous...) */
    size_t n_api_tokens;
    int log_json;             /* DESKBRIDGE_LOG_FORMAT=json */
    const char *log_level;    /* error|warn|info|debug, default info (static string) */
    const char *role;         /* ingest|dispatch|send|all, default all (static string, or
                                 main's --role argument) */
    int workers;              /* default 1 */
    int worker;               /* index of this worker process (set by main, not configured):
                                 only worker 0 long-polls, as a platform allows one poller */
    int shutdown_timeout_ms;  /* default 10000 */
    int redis_timeout_ms;     /* command timeout, default 2000 */
    int max_connections;      /* HTTP connection cap, default 1024 */
    int dedupe_ttl_s;         /* default 691200 (8 days: outlives Meta's 7-day retries) */
    int dedupe_db;            /* database of the dedupe keys, -1 (default): redis_url's */
    int send_max_attempts;    /* default 8 */
    int retry_base_ms;        /* first retry delay, default 1000 */
    int retry_max_ms;         /* cap, default 60000 */
    int redis_wait_replicas;  /* replicas that must hold a webhook before its 2xx, 0 */
    int claim_idle_ms;        /* pending outbox entries idle this long are claimed, 30000 */
    long stream_maxlen;       /* cap of <prefix>:events kept by stream/trim.c, 0 = unbounded */
    long stream_maxlen_hard;  /* cap that removes unread entries too, 0 = never */
    long status_maxlen;       /* cap of <prefix>:status, 0 = unbounded (default) */
    long outbox_maxlen;       /* cap of <prefix>:outbox, 0 = unbounded (default) */
    struct db_account *accounts;
    size_t n_accounts;
    struct db_tenant *tenants; /* [tenant NAME] sections in file order, cross-checked */
    size_t n_tenants;
    /* Feature sections ([dispatch], [schedule NAME], ...) in file order; platform = the
     * section type, account = its name.  features[i] is sections[i] as its module's typed
     * struct, built once by the module's key table (util/schema.h) when loaded. */
    struct db_conf_section *sections;
    struct db_config_feature *features;
    size_t n_sections;
    void *storage;            /* private: owns every string above */
};

/* Loads file (may be NULL: environment only) and then the environment env (a NULL-terminated
 * "NAME=value" array, normally environ).  DB_OK with *out (free with db_config_free), or
 * DB_ECONFIG with "FILE:LINE: KEY: what is wrong" (or "environment: NAME: ...") in e.
 * Secrets may be given as NAME_FILE=/path (environment) or key_file = /path (file); the
 * file's content (without a trailing newline) becomes the value. */
struct db_conf_table;
/* features is the NULL-terminated list of the feature sections' key tables a file may hold
 * (the application's, src/app/features.h; NULL: none). */
int db_config_load(const char *file, char *const *env,
                   const struct db_conf_table *const *features, struct db_config **out,
                   struct db_err *e) DB_MUST_CHECK;
void db_config_free(struct db_config *c); /* NULL-safe */

/* The feature section (type, name), or NULL.  name NULL matches the first of that type. */
const struct db_conf_section *db_config_section(const struct db_config *c, const char *type,
                                                const char *name);

/* The typed struct of the feature section (type, name) (name NULL: the first of that
 * type), as its module's table built it; NULL when there is no such section.  Borrowed
 * from c: valid while c is (hold the configuration reference). */
const void *db_config_obj(const struct db_config *c, const char *type, const char *name);

/* 1 when t serves the account (platform, account), else 0.  t NULL (the operator) serves
 * every account. */
int db_tenant_serves(const struct db_tenant *t, const char *platform, const char *account);

/* The account (platform, id), or NULL. */
const struct db_account *db_config_account(const struct db_config *c, const char *platform,
                                           const char *id);
/* The only account of platform when there is exactly one (the --account default of the
 * command-line tools), else NULL. */
const struct db_account *db_config_sole_account(const struct db_config *c,
                                                const char *platform);

#endif
