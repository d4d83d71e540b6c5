/* test_config.c - the configuration file, environment overrides, quickstart accounts and
 * the account_new hand-off, with the exact error messages users see. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hours/hours.h"
#include "auto/rules.h"
#include "app/features.h"
#include "conf/config.h"
#include "conf/config_internal.h"
#include "util/schema.h"
#include "dispatch/dispatcher.h"
#include "dispatch/survey.h"
#include "hookout/hookout.h"
#include "send/canned.h"
#include "testutil.h"
#include "util/crypto.h"
#include "util/parse.h"

#define FIX DB_SOURCE_DIR "/tests/fixtures/config"

static char *const no_env[] = {NULL};

/* Loads text as "test.conf" without building accounts (placeholders would refuse). */
static int load_text(const char *text, char *const *env, struct db_config **c,
                     struct db_err *e)
{
    struct db_config_opts o = {.features = db_feature_tables, .text = text, .text_len = strlen(text), .skip_accounts = 1};
    memset(e, 0, sizeof *e);
    return db_config_load_opts("test.conf", env, &o, c, e);
}

static void expect_error(const char *text, char *const *env, const char *msg)
{
    struct db_config *c = (struct db_config *)1;
    struct db_err e;
    int rc = load_text(text, env, &c, &e);
    if (rc == DB_OK) db_config_free(c);
    assert_int_equal(rc, DB_ECONFIG);
    assert_null(c);
    assert_string_equal(e.msg, msg);
}

static struct db_config *expect_ok(const char *text, char *const *env)
{
    struct db_config *c = NULL;
    struct db_err e;
    int rc = load_text(text, env, &c, &e);
    if (rc != DB_OK) fail_msg("load failed: %s", e.msg);
    assert_non_null(c);
    return c;
}

static const char *kv(const struct db_account *a, const char *key)
{
    const struct db_conf_kv *p = db_conf_find(&a->sec, key);
    return p ? p->value : NULL;
}

/* A temporary directory per test that needs files; removed with its files afterwards. */
struct tmp {
    char dir[64];
    char paths[8][128];
    int n;
};

static const char *tmp_file(struct tmp *t, const char *name, const char *content, size_t len)
{
    if (!t->dir[0]) {
        snprintf(t->dir, sizeof t->dir, "/tmp/db_conf_XXXXXX");
        assert_non_null(mkdtemp(t->dir));
    }
    assert_true(t->n < 8);
    char *p = t->paths[t->n++];
    char full[128];
    snprintf(full, sizeof full, "%s/%s", t->dir, name);
    memcpy(p, full, sizeof full);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
    return p;
}

static void tmp_clean(struct tmp *t)
{
    for (int i = 0; i < t->n; i++) unlink(t->paths[i]);
    if (t->dir[0]) rmdir(t->dir);
}

/* ---- defaults and a complete file ---- */

static void defaults_without_file_or_environment(void **state)
{
    (void)state;
    struct db_config *c = NULL;
    struct db_err e = {0};
    assert_int_equal(db_config_load(NULL, no_env, db_feature_tables, &c, &e), DB_OK);
    assert_null(c->file);
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_null(c->redis_url);
    assert_string_equal(c->prefix, "deskbridge");
    assert_int_equal(c->n_api_tokens, 0);
    assert_int_equal(c->log_json, 0);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->role, "all");
    assert_int_equal(c->workers, 1);
    assert_int_equal(c->shutdown_timeout_ms, 10000);
    assert_int_equal(c->redis_timeout_ms, 1500);
    assert_int_equal(c->max_connections, 1024);
    assert_int_equal(c->dedupe_ttl_s, 691200);
    assert_int_equal(c->send_max_attempts, 8);
    assert_int_equal(c->retry_base_ms, 1000);
    assert_int_equal(c->retry_max_ms, 60000);
    assert_int_equal(c->stream_maxlen, 0);
    assert_int_equal(c->n_accounts, 0);
    assert_null(db_config_sole_account(c, "telegram"));
    db_config_free(c);
    db_config_free(NULL);
}

static void good_file_sets_every_key(void **state)
{
    (void)state;
    struct db_config_opts o = {.features = db_feature_tables, .skip_accounts = 1};
    struct db_config *c = NULL;
    struct db_err e = {0};
    int rc = db_config_load_opts(FIX "/good.conf", no_env, &o, &c, &e);
    if (rc != DB_OK) fail_msg("%s", e.msg);
    assert_string_equal(c->file, FIX "/good.conf");
    assert_string_equal(c->listen, "0.0.0.0:9090");
    assert_string_equal(c->redis_url, "redis://redis:6379/2");
    assert_string_equal(c->prefix, "acme:desk");
    assert_int_equal(c->n_api_tokens, 3);
    assert_string_equal(c->api_tokens[0], "0123456789abcdefOLD");
    assert_string_equal(c->api_tokens[1], "0123456789abcdefOLDER");
    assert_string_equal(c->api_tokens[2], "0123456789abcdefTOKEN"); /* CRLF stripped */
    assert_int_equal(c->log_json, 1);
    assert_string_equal(c->log_level, "debug");
    assert_string_equal(c->role, "dispatch");
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->shutdown_timeout_ms, 0);
    assert_int_equal(c->redis_timeout_ms, 2500);
    assert_int_equal(c->max_connections, 200);
    assert_int_equal(c->dedupe_ttl_s, 86400);
    assert_int_equal(c->send_max_attempts, 3);
    assert_int_equal(c->retry_base_ms, 250);
    assert_int_equal(c->retry_max_ms, 250);
    assert_int_equal(c->stream_maxlen, 100000);

    assert_int_equal(c->n_accounts, 3);
    const struct db_account *tg = db_config_account(c, "telegram", "support");
    assert_non_null(tg);
    assert_ptr_equal(tg->conn, db_connector_find("telegram"));
    assert_string_equal(tg->platform, "telegram");
    assert_string_equal(tg->sec.account, "support");
    assert_null(tg->state);
    /* token_file was read relative to the file, its newline dropped, its key renamed. */
    assert_string_equal(kv(tg, "token"), "tg-secret-123:ABCdef");
    assert_null(kv(tg, "token_file"));
    assert_string_equal(kv(tg, "webhook_secret"), "  spaced # not a comment \"quoted\" \\ ");
    assert_string_equal(kv(tg, "api_base"), "http://127.0.0.1:1");
    const struct db_conf_kv *p = db_conf_find(&tg->sec, "webhook_secret");
    assert_int_equal(p->line, 24);
    assert_string_equal(p->file, FIX "/good.conf");

    const struct db_account *wa = db_config_account(c, "whatsapp", "1234567890");
    assert_non_null(wa);
    assert_string_equal(kv(wa, "access_token"), "wa # token");
    assert_string_equal(kv(wa, "empty"), "");
    const struct db_account *vb = db_config_sole_account(c, "viber");
    assert_non_null(vb);
    assert_string_equal(vb->id, "shop.main-1");
    assert_string_equal(kv(vb, "sender_name"), "Shop");
    assert_null(db_config_account(c, "viber", "shop"));
    assert_null(db_config_account(c, "telegram", "1234567890"));
    db_config_free(c);
}

static void crlf_and_byte_order_mark_are_accepted(void **state)
{
    (void)state;
    struct db_config_opts o = {.features = db_feature_tables, .skip_accounts = 1};
    struct db_config *c = NULL;
    struct db_err e = {0};
    assert_int_equal(db_config_load_opts(FIX "/crlf.conf", no_env, &o, &c, &e), DB_OK);
    assert_int_equal(c->workers, 3);
    assert_string_equal(kv(db_config_account(c, "viber", "crlf"), "auth_token"), "x y");
    db_config_free(c);

    c = expect_ok("\xEF\xBB\xBF[gateway]\nworkers = 5", no_env); /* no final newline */
    assert_int_equal(c->workers, 5);
    db_config_free(c);
    c = expect_ok("", no_env);
    assert_int_equal(c->workers, 1);
    db_config_free(c);
}

/* ---- every bad case, as data: first line "# expect: FILE:LINE: KEY: message" ---- */

static void bad_fixtures_name_file_line_and_key(void **state)
{
    (void)state;
    DIR *d = opendir(FIX "/bad");
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0) continue;
        char path[512], want[512];
        snprintf(path, sizeof path, FIX "/bad/%s", de->d_name);
        char *text = db_test_read_file(path, NULL);
        assert_true(strncmp(text, "# expect: FILE", 14) == 0);
        char *nl = strchr(text, '\n');
        *nl = '\0';
        snprintf(want, sizeof want, "%s%s", path, text + 14);
        free(text);

        struct db_config_opts o = {.features = db_feature_tables, .skip_accounts = 1};
        struct db_config *c = NULL;
        struct db_err e = {0};
        int rc = db_config_load_opts(path, no_env, &o, &c, &e);
        if (rc == DB_OK) db_config_free(c);
        if (rc != DB_ECONFIG || strcmp(e.msg, want) != 0)
            fail_msg("%s: rc %d\n got:  %s\n want: %s", de->d_name, rc, e.msg, want);
        n++;
    }
    closedir(d);
    assert_true(n >= 40);
}

static void syntax_errors_in_text(void **state)
{
    (void)state;
    static const char nul[] = "[gateway]\nworkers = 2\npre\0fix = x\n";
    struct db_config_opts o = {.features = db_feature_tables, .text = nul, .text_len = sizeof nul - 1, .skip_accounts = 1};
    struct db_config *c = NULL;
    struct db_err e = {0};
    assert_int_equal(db_config_load_opts("test.conf", no_env, &o, &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:3: NUL byte in the file");
    /* Without a file name the text is called "config". */
    o = (struct db_config_opts){.text = "[nope]", .text_len = 6};
    assert_int_equal(db_config_load_opts(NULL, no_env, &o, &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "config:1: [nope]: unknown section");
    expect_error("[gateway]\n[]\n", no_env, "test.conf:2: []: unknown section");
    expect_error("[gateway]\n= 5\n", no_env,
                 "test.conf:2: : a key is lowercase a-z, 0-9 and _ only");
    expect_error("[gateway]\n_file = x\n", no_env, "test.conf:2: _file: unknown key in [gateway]");
}

static void missing_file_is_reported(void **state)
{
    (void)state;
    struct db_config *c = NULL;
    struct db_err e = {0};
    assert_int_equal(db_config_load("/nonexistent/deskbridge.conf", no_env, db_feature_tables, &c, &e), DB_ECONFIG);
    assert_null(c);
    assert_string_equal(e.msg, "/nonexistent/deskbridge.conf: cannot read: No such file or directory");
    assert_int_equal(db_config_load(FIX, no_env, db_feature_tables, &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, FIX ": cannot read: Is a directory");
}

/* A configuration deep in a file system still gets its whole error: the key and the reason
 * come after the path and must not be cut off. */
static void errors_keep_the_key_after_a_long_path(void **state)
{
    (void)state;
    char dir[400], path[480];
    snprintf(dir, sizeof dir, "/tmp/db-conf-XXXXXX");
    assert_non_null(mkdtemp(dir));
    size_t base = strlen(dir);
    /* four levels of 60 characters: a path of about 270 characters */
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(dir);
        snprintf(dir + n, sizeof dir - n, "/%060d", i);
        assert_int_equal(mkdir(dir, 0700), 0);
    }
    snprintf(path, sizeof path, "%s/deskbridge.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[gateway]\nworkers = 2\nmax_body_bytes = lots\n", f);
    fclose(f);
    struct db_config *c = NULL;
    struct db_err e = {0};
    assert_int_equal(db_config_load(path, no_env, db_feature_tables, &c, &e), DB_ECONFIG);
    char want[600];
    snprintf(want, sizeof want, "%s:3: max_body_bytes: ", path);
    if (strncmp(e.msg, want, strlen(want)) != 0 || strlen(e.msg) <= strlen(want))
        fail_msg("got  %s\nwant %s<reason>", e.msg, want);
    unlink(path);
    while (strlen(dir) > base) {
        rmdir(dir);
        *strrchr(dir, '/') = '\0';
    }
    rmdir(dir);
}

static void bounds_are_inclusive(void **state)
{
    (void)state;
    struct db_config *c = expect_ok("[gateway]\nworkers = 64\ndedupe_ttl_s = 86400\n"
                                    "shutdown_timeout_ms = 0\nstream_maxlen = 9223372036854775807\n"
                                    "retry_base_ms = 3600000\nretry_max_ms = 86400000\n",
                                    no_env);
    assert_int_equal(c->workers, 64);
    assert_int_equal(c->dedupe_ttl_s, 86400);
    assert_true(c->stream_maxlen == 9223372036854775807L);
    assert_int_equal(c->retry_base_ms, 3600000);
    db_config_free(c);
    c = expect_ok("[gateway]\nworkers = 1\ndedupe_ttl_s = 31536000\n", no_env);
    assert_int_equal(c->workers, 1);
    assert_int_equal(c->dedupe_ttl_s, 31536000);
    db_config_free(c);
    expect_error("[gateway]\ndedupe_ttl_s = 86399\n", no_env,
                 "test.conf:2: dedupe_ttl_s: must be an integer from 86400 to 31536000 (got '86399')");
    expect_error("[gateway]\nsend_max_attempts = 0\n", no_env,
                 "test.conf:2: send_max_attempts: must be an integer from 1 to 1000 (got '0')");
}

static void listen_and_redis_url_forms(void **state)
{
    (void)state;
    static const char *const good[] = {"[::]:8080", "localhost:80", "10.0.0.1:65535",
                                       "gw.example.com:443"};
    static const char *const bad[] = {"[::1]8080", ":8080", "host:", "host:65536", "host:8o",
                                      "[]:80", "a b:80"};
    char text[128], want[192];
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        snprintf(text, sizeof text, "[gateway]\nlisten = \"%s\"\n", good[i]);
        struct db_config *c = expect_ok(text, no_env);
        assert_string_equal(c->listen, good[i]);
        db_config_free(c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "[gateway]\nlisten = \"%s\"\n", bad[i]);
        snprintf(want, sizeof want,
                 "test.conf:2: listen: expected host:port or [ipv6]:port with port 1-65535 "
                 "(got '%s')", bad[i]);
        expect_error(text, no_env, want);
    }
    struct db_config *c = expect_ok("[gateway]\nredis_url = unix:///run/redis.sock\n", no_env);
    assert_string_equal(c->redis_url, "unix:///run/redis.sock");
    db_config_free(c);
}

/* ---- environment ---- */

static void environment_overrides_the_file(void **state)
{
    (void)state;
    char *env[] = {"PATH=/usr/bin",
                   "DESKBRIDGE_LISTEN=0.0.0.0:7000",
                   "DESKBRIDGE_REDIS_URL=redis://env:6379/1",
                   "DESKBRIDGE_PREFIX=envpfx",
                   "DESKBRIDGE_API_TOKEN=envtoken-0123456789,envtoken-abcdefghij",
                   "DESKBRIDGE_LOG_FORMAT=text",
                   "DESKBRIDGE_LOG_LEVEL=warn",
                   "DESKBRIDGE_ROLE=send",
                   "DESKBRIDGE_WORKERS=7",
                   NULL};
    struct db_config *c = expect_ok("[gateway]\nlisten = 127.0.0.1:1\nredis_url = redis://f/0\n"
                                    "prefix = filepfx\napi_token = filetoken-0123456789\n"
                                    "log_format = json\nlog_level = error\nrole = ingest\n"
                                    "workers = 2\nmax_connections = 9\n",
                                    env);
    assert_string_equal(c->listen, "0.0.0.0:7000");
    assert_string_equal(c->redis_url, "redis://env:6379/1");
    assert_string_equal(c->prefix, "envpfx");
    /* The variable replaces the file's tokens rather than adding to them. */
    assert_int_equal(c->n_api_tokens, 2);
    assert_string_equal(c->api_tokens[0], "envtoken-0123456789");
    assert_string_equal(c->api_tokens[1], "envtoken-abcdefghij");
    assert_int_equal(c->log_json, 0);
    assert_string_equal(c->log_level, "warn");
    assert_string_equal(c->role, "send");
    assert_int_equal(c->workers, 7);
    assert_int_equal(c->max_connections, 9); /* no variable: the file's value stays */
    db_config_free(c);
}

static void environment_errors_name_the_variable(void **state)
{
    (void)state;
    char *w[] = {"DESKBRIDGE_WORKERS=0", NULL};
    expect_error("", w, "environment: DESKBRIDGE_WORKERS: must be an integer from 1 to 64 (got '0')");
    char *f[] = {"DESKBRIDGE_LOG_FORMAT=xml", NULL};
    expect_error("", f, "environment: DESKBRIDGE_LOG_FORMAT: must be text|json (got 'xml')");
    char *t[] = {"DESKBRIDGE_API_TOKEN=0123456789abcdefghij,sh0rt-secret", NULL};
    expect_error("", t, "environment: DESKBRIDGE_API_TOKEN: a token must be at least 16 characters");
    char *l[] = {"DESKBRIDGE_LISTEN=8080", NULL};
    expect_error("", l, "environment: DESKBRIDGE_LISTEN: expected host:port or [ipv6]:port with "
                        "port 1-65535 (got '8080')");
    char *p[] = {"DESKBRIDGE_PREFIX=a/b", NULL};
    expect_error("", p, "environment: DESKBRIDGE_PREFIX: at most 64 of A-Z a-z 0-9 _ : . - "
                        "(it starts every Redis key)");
    /* A secret's value is never echoed, even when it is malformed. */
    char *r[] = {"DESKBRIDGE_REDIS_URL=tcp://:hunter2@r", NULL};
    expect_error("", r, "environment: DESKBRIDGE_REDIS_URL: expected redis://host:port/db, "
                        "unix:///path/to/socket or redis+sentinel://host:port,.../master");
    /* The file's key is named when the file set it and the variable did not. */
    char *ok[] = {"DESKBRIDGE_WORKERS=3", NULL};
    expect_error("[gateway]\nretry_base_ms = 90000\n", ok,
                 "test.conf:2: retry_base_ms: must not exceed retry_max_ms (60000)");
}

static void empty_variables_count_as_unset(void **state)
{
    (void)state;
    char *env[] = {"DESKBRIDGE_WORKERS=", "DESKBRIDGE_LISTEN=", "TELEGRAM_BOT_TOKEN=",
                   "WHATSAPP_PHONE_NUMBER_ID=", "VIBER_ACCOUNT=", "DESKBRIDGE_API_TOKEN_FILE=",
                   NULL};
    struct db_config *c = expect_ok("[gateway]\nworkers = 4\n", env);
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->listen, "127.0.0.1:8080");
    assert_int_equal(c->n_accounts, 0);
    db_config_free(c);
}

static void variables_read_from_files(void **state)
{
    (void)state;
    struct tmp t = {0};
    char v1[200], v2[200], v3[200];
    const char *tok = tmp_file(&t, "api", "0123456789abcdef-one\n0123456789abcdef-two\n", 42);
    const char *url = tmp_file(&t, "url", "redis://:pw@r:6379/0\n", 21);
    snprintf(v1, sizeof v1, "DESKBRIDGE_API_TOKEN_FILE=%s", tok);
    snprintf(v2, sizeof v2, "DESKBRIDGE_REDIS_URL_FILE=%s", url);
    char *env[] = {v1, v2, NULL};
    struct db_config *c = expect_ok("", env);
    assert_int_equal(c->n_api_tokens, 2);
    assert_string_equal(c->api_tokens[0], "0123456789abcdef-one");
    assert_string_equal(c->api_tokens[1], "0123456789abcdef-two");
    assert_string_equal(c->redis_url, "redis://:pw@r:6379/0");
    db_config_free(c);

    const char *shorttok = tmp_file(&t, "short", "tiny\n", 5);
    snprintf(v3, sizeof v3, "DESKBRIDGE_API_TOKEN_FILE=%s", shorttok);
    char *s[] = {v3, NULL};
    expect_error("", s,
                 "environment: DESKBRIDGE_API_TOKEN_FILE: a token must be at least 16 characters");
    char *both[] = {"DESKBRIDGE_API_TOKEN=0123456789abcdefghij", v3, NULL};
    expect_error("", both, "environment: DESKBRIDGE_API_TOKEN: set both DESKBRIDGE_API_TOKEN "
                           "and DESKBRIDGE_API_TOKEN_FILE");
    char *missing[] = {"TELEGRAM_BOT_TOKEN_FILE=/nonexistent/tg", NULL};
    expect_error("", missing, "environment: TELEGRAM_BOT_TOKEN_FILE: cannot read /nonexistent/tg: "
                              "No such file or directory");
    const char *empty = tmp_file(&t, "empty", "\n", 1);
    snprintf(v3, sizeof v3, "DESKBRIDGE_PREFIX_FILE=%s", empty);
    char *e1[] = {v3, NULL};
    snprintf(v1, sizeof v1, "environment: DESKBRIDGE_PREFIX_FILE: %s is empty", empty);
    expect_error("", e1, v1);
    tmp_clean(&t);
}

/* ---- *_file keys ---- */

static void file_keys_strip_one_newline_only(void **state)
{
    (void)state;
    struct tmp t = {0};
    tmp_file(&t, "two_newlines", "abc\n\n", 5);
    tmp_file(&t, "crlf", "line1\nline2\r\n", 13);
    tmp_file(&t, "nul", "ab\0cd", 5);
    static const char dconf[] = "[viber a]\nauth_token_file = two_newlines\n"
                                "sender_name_file = crlf\n";
    const char *conf = tmp_file(&t, "d.conf", dconf, sizeof dconf - 1);
    struct db_config_opts o = {.features = db_feature_tables, .skip_accounts = 1};
    struct db_config *c = NULL;
    struct db_err e = {0};
    int rc = db_config_load_opts(conf, no_env, &o, &c, &e);
    if (rc != DB_OK) fail_msg("%s", e.msg);
    const struct db_account *a = db_config_account(c, "viber", "a");
    assert_string_equal(kv(a, "auth_token"), "abc\n");
    assert_string_equal(kv(a, "sender_name"), "line1\nline2");
    assert_int_equal(db_conf_find(&a->sec, "sender_name")->line, 3);
    db_config_free(c);

    char text[256];
    snprintf(text, sizeof text, "[viber a]\nauth_token_file = %s/nul\n", t.dir);
    char want[256];
    snprintf(want, sizeof want, "test.conf:2: auth_token_file: %s/nul contains a NUL byte", t.dir);
    expect_error(text, no_env, want);
    /* The fuzz target's switch: nothing is opened. */
    o = (struct db_config_opts){.text = text, .text_len = strlen(text), .no_secret_files = 1,
                                .skip_accounts = 1};
    assert_int_equal(db_config_load_opts("test.conf", no_env, &o, &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:2: auth_token_file: secret files are disabled here");
    tmp_clean(&t);
}

/* ---- api_token rotation ---- */

static void api_tokens_accumulate_for_rotation(void **state)
{
    (void)state;
    struct db_config *c = expect_ok("[gateway]\napi_token = current-token-0123456789\n"
                                    "api_token = previous-token-0123456789 , older-token-0123456789\n",
                                    no_env);
    assert_int_equal(c->n_api_tokens, 3);
    assert_string_equal(c->api_tokens[0], "current-token-0123456789");
    assert_string_equal(c->api_tokens[1], "previous-token-0123456789");
    assert_string_equal(c->api_tokens[2], "older-token-0123456789");
    db_config_free(c);
    expect_error("[gateway]\napi_token = current-token-0123456789,\n", no_env,
                 "test.conf:2: api_token: empty entry in the list");
}

/* ---- quickstart accounts ---- */

static void telegram_quickstart_from_token(void **state)
{
    (void)state;
    char *env[] = {"TELEGRAM_BOT_TOKEN=123456:AAbbCC", "TELEGRAM_WEBHOOK_SECRET=hook",
                   "TELEGRAM_API_BASE=http://127.0.0.1:9", NULL};
    struct db_config *c = expect_ok("", env);
    assert_int_equal(c->n_accounts, 1);
    const struct db_account *a = db_config_sole_account(c, "telegram");
    assert_non_null(a);
    assert_string_equal(a->id, "123456");
    assert_string_equal(a->sec.platform, "telegram");
    assert_int_equal(a->sec.n, 3);
    assert_string_equal(kv(a, "token"), "123456:AAbbCC");
    assert_string_equal(kv(a, "webhook_secret"), "hook");
    assert_string_equal(kv(a, "api_base"), "http://127.0.0.1:9");
    assert_string_equal(a->sec.kv[0].file, "environment");
    assert_int_equal(a->sec.kv[0].line, 0);
    db_config_free(c);

    char *bad[] = {"TELEGRAM_BOT_TOKEN=abc:secretpart", NULL};
    expect_error("", bad, "environment: TELEGRAM_BOT_TOKEN: no bot id (digits before ':') in the token");
    char *nocolon[] = {"TELEGRAM_BOT_TOKEN=123456", NULL};
    expect_error("", nocolon,
                 "environment: TELEGRAM_BOT_TOKEN: no bot id (digits before ':') in the token");
    char *notoken[] = {"TELEGRAM_WEBHOOK_SECRET=hook", NULL};
    expect_error("", notoken,
                 "environment: TELEGRAM_BOT_TOKEN: required when any TELEGRAM_* variable is set");
}

static void telegram_token_from_file_names_file_variable(void **state)
{
    (void)state;
    struct tmp t = {0};
    char v[200];
    const char *p = tmp_file(&t, "tg", "not-a-token\n", 12);
    snprintf(v, sizeof v, "TELEGRAM_BOT_TOKEN_FILE=%s", p);
    char *env[] = {v, NULL};
    expect_error("", env,
                 "environment: TELEGRAM_BOT_TOKEN_FILE: no bot id (digits before ':') in the token");
    p = tmp_file(&t, "tg2", "777:xyz\n", 8);
    snprintf(v, sizeof v, "TELEGRAM_BOT_TOKEN_FILE=%s", p);
    struct db_config *c = expect_ok("", env);
    assert_string_equal(kv(db_config_account(c, "telegram", "777"), "token"), "777:xyz");
    db_config_free(c);
    tmp_clean(&t);
}

static void whatsapp_quickstart_needs_phone_number_id(void **state)
{
    (void)state;
    char *env[] = {"WHATSAPP_ACCESS_TOKEN=EAAG", "WHATSAPP_APP_SECRET=appsecret",
                   "WHATSAPP_VERIFY_TOKEN=verify", "WHATSAPP_PHONE_NUMBER_ID=106540352242922",
                   "WHATSAPP_API_BASE=http://127.0.0.1:8", NULL};
    struct db_config *c = expect_ok("", env);
    const struct db_account *a = db_config_account(c, "whatsapp", "106540352242922");
    assert_non_null(a);
    assert_int_equal(a->sec.n, 5);
    assert_string_equal(kv(a, "access_token"), "EAAG");
    assert_string_equal(kv(a, "app_secret"), "appsecret");
    assert_string_equal(kv(a, "verify_token"), "verify");
    assert_string_equal(kv(a, "phone_number_id"), "106540352242922");
    assert_string_equal(kv(a, "api_base"), "http://127.0.0.1:8");
    db_config_free(c);

    char *missing[] = {"WHATSAPP_ACCESS_TOKEN=EAAG", NULL};
    expect_error("", missing, "environment: WHATSAPP_PHONE_NUMBER_ID: required when any "
                              "WHATSAPP_* variable is set");
    char *badid[] = {"WHATSAPP_PHONE_NUMBER_ID=+1 555", NULL};
    expect_error("", badid, "environment: WHATSAPP_PHONE_NUMBER_ID: account id must be 1 to 64 "
                            "of A-Z a-z 0-9 _ . -");
}

static void viber_quickstart_account_defaults_to_viber(void **state)
{
    (void)state;
    char *env[] = {"VIBER_AUTH_TOKEN=vbtoken", "VIBER_SENDER_NAME=Shop",
                   "VIBER_SENDER_AVATAR=https://x/a.png", "VIBER_API_BASE=http://127.0.0.1:7",
                   NULL};
    struct db_config *c = expect_ok("", env);
    const struct db_account *a = db_config_account(c, "viber", "viber");
    assert_non_null(a);
    assert_int_equal(a->sec.n, 4);
    assert_string_equal(kv(a, "auth_token"), "vbtoken");
    assert_string_equal(kv(a, "sender_name"), "Shop");
    assert_string_equal(kv(a, "sender_avatar"), "https://x/a.png");
    assert_string_equal(kv(a, "api_base"), "http://127.0.0.1:7");
    db_config_free(c);
    char *named[] = {"VIBER_AUTH_TOKEN=vbtoken", "VIBER_ACCOUNT=shop", NULL};
    c = expect_ok("", named);
    assert_non_null(db_config_account(c, "viber", "shop"));
    assert_int_equal(db_config_account(c, "viber", "shop")->sec.n, 1);
    db_config_free(c);
    char *bad[] = {"VIBER_AUTH_TOKEN=vbtoken", "VIBER_ACCOUNT=a/b", NULL};
    expect_error("", bad,
                 "environment: VIBER_ACCOUNT: account id must be 1 to 64 of A-Z a-z 0-9 _ . -");
}

static void environment_keys_append_to_the_file_account(void **state)
{
    (void)state;
    char *env[] = {"TELEGRAM_BOT_TOKEN=123456:fromenv", "VIBER_AUTH_TOKEN=v", NULL};
    struct db_config *c = expect_ok("[telegram 123456]\ntoken = 123456:fromfile\n"
                                    "webhook_secret = filesecret\n[telegram other]\ntoken = 9:x\n",
                                    env);
    assert_int_equal(c->n_accounts, 3); /* two from the file, viber from the environment */
    const struct db_account *a = db_config_account(c, "telegram", "123456");
    assert_int_equal(a->sec.n, 3);
    const struct db_conf_kv *tok = db_conf_find(&a->sec, "token");
    assert_string_equal(tok->value, "123456:fromenv");
    assert_string_equal(tok->file, "environment");
    assert_int_equal(tok->line, 0);
    assert_string_equal(kv(a, "webhook_secret"), "filesecret");
    assert_int_equal(db_conf_find(&a->sec, "webhook_secret")->line, 3);
    assert_null(db_config_sole_account(c, "telegram"));
    assert_string_equal(db_config_sole_account(c, "viber")->id, "viber");
    /* File accounts come first, in file order. */
    assert_string_equal(c->accounts[0].id, "123456");
    assert_string_equal(c->accounts[1].id, "other");
    assert_string_equal(c->accounts[2].id, "viber");
    db_config_free(c);
}

/* ---- account_new through a connector of the test's own ---- */

static int frees;

static int test_account_new(const struct db_conf_section *sec, void **acct, struct db_err *e)
{
    static const char *const allowed[] = {"token", "mode", NULL};
    int rc = db_conf_check_keys(sec, allowed, e);
    if (rc != DB_OK) return rc;
    const struct db_conf_kv *tok = db_conf_find(sec, "token");
    if (!tok) return db_conf_error(e, sec, NULL, "token", "required");
    const struct db_conf_kv *mode = db_conf_find(sec, "mode");
    if (mode && strcmp(mode->value, "fast") != 0)
        return db_conf_error(e, sec, mode, "mode", "must be fast");
    *acct = strdup(tok->value);
    return *acct ? DB_OK : DB_ENOMEM;
}

static void test_account_free(void *acct)
{
    if (acct) frees++;
    free(acct);
}

static const struct db_connector test_conn = {
    .name = "testplat",
    .account_new = test_account_new,
    .account_free = test_account_free,
};
static const struct db_connector placeholder_conn = {.name = "placeholder"};

static const struct db_connector *test_find(const char *name)
{
    if (strcmp(name, "testplat") == 0) return &test_conn;
    if (strcmp(name, "placeholder") == 0) return &placeholder_conn;
    return NULL;
}

static int load_with_test_find(const char *text, struct db_config **c, struct db_err *e)
{
    struct db_config_opts o = {.features = db_feature_tables, .text = text, .text_len = strlen(text), .find = test_find};
    memset(e, 0, sizeof *e);
    return db_config_load_opts("test.conf", no_env, &o, c, e);
}

static void accounts_are_built_by_their_connector(void **state)
{
    (void)state;
    struct db_config *c = NULL;
    struct db_err e;
    frees = 0;
    int rc = load_with_test_find("[testplat a]\ntoken = ta\n[testplat b]\ntoken = tb\nmode = fast\n",
                                 &c, &e);
    if (rc != DB_OK) fail_msg("%s", e.msg);
    assert_int_equal(c->n_accounts, 2);
    const struct db_account *a = db_config_account(c, "testplat", "a");
    assert_ptr_equal(a->conn, &test_conn);
    assert_string_equal(a->platform, "testplat");
    assert_string_equal((const char *)a->state, "ta");
    assert_string_equal((const char *)db_config_account(c, "testplat", "b")->state, "tb");
    assert_null(db_config_sole_account(c, "testplat"));
    db_config_free(c);
    assert_int_equal(frees, 2);

    /* The connector's own message comes through; states built before it are freed. */
    frees = 0;
    assert_int_equal(load_with_test_find("[testplat a]\ntoken = ta\n[testplat b]\ntoken = tb\n"
                                         "mode = slow\n", &c, &e),
                     DB_ECONFIG);
    assert_null(c);
    assert_string_equal(e.msg, "test.conf:5: mode: must be fast");
    assert_int_equal(frees, 1);
    assert_int_equal(load_with_test_find("[testplat a]\ncolour = red\n", &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:2: colour: unknown key for a testplat account");
    assert_int_equal(load_with_test_find("[testplat a]\n", &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "[testplat a]: token: required");
    /* A connector without account_new (a placeholder) cannot take accounts. */
    assert_int_equal(load_with_test_find("[testplat a]\ntoken = t\n\n[placeholder x]\n", &c, &e),
                     DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:4: [placeholder x]: platform not available");
    /* Platform names come from the same lookup. */
    assert_int_equal(load_with_test_find("[telegram x]\n", &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:1: [telegram x]: unknown section");
}

/* The compiled-in connectors: placeholders must refuse accounts with "platform not
 * available"; finished connectors must accept a realistic quickstart account. */
static void compiled_in_connectors_take_quickstart_accounts(void **state)
{
    (void)state;
    static char *const tg[] = {"TELEGRAM_BOT_TOKEN=123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
                               "TELEGRAM_WEBHOOK_SECRET=hook_secret-1", NULL};
    static char *const wa[] = {"WHATSAPP_ACCESS_TOKEN=EAAGm0PX4ZCpsBAKZAZBexampletoken0123456789",
                               "WHATSAPP_APP_SECRET=0123456789abcdef0123456789abcdef",
                               "WHATSAPP_VERIFY_TOKEN=verify-me-please",
                               "WHATSAPP_PHONE_NUMBER_ID=106540352242922", NULL};
    static char *const vb[] = {"VIBER_AUTH_TOKEN=4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f",
                               "VIBER_SENDER_NAME=Shop", NULL};
    static const struct {
        const char *name, *id;
        char *const *env;
    } cases[] = {{"telegram", "123456789", tg}, {"whatsapp", "106540352242922", wa},
                 {"viber", "viber", vb}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct db_connector *conn = db_connector_find(cases[i].name);
        assert_non_null(conn);
        struct db_config *c = NULL;
        struct db_err e = {0};
        int rc = db_config_load(NULL, cases[i].env, db_feature_tables, &c, &e);
        if (!conn->account_new) {
            char want[128];
            snprintf(want, sizeof want, "environment: [%s %s]: platform not available",
                     cases[i].name, cases[i].id);
            assert_int_equal(rc, DB_ECONFIG);
            assert_string_equal(e.msg, want);
            print_message("%s: placeholder, account_new not exercised\n", cases[i].name);
            continue;
        }
        if (rc != DB_OK) fail_msg("%s: %s", cases[i].name, e.msg);
        const struct db_account *a = db_config_account(c, cases[i].name, cases[i].id);
        assert_non_null(a);
        assert_ptr_equal(a->conn, conn);
        assert_non_null(a->state);
        db_config_free(c);
    }
}

/* Loads text as "test.conf" with env, building the accounts with the compiled-in
 * connectors. */
static int load_accounts(const char *text, char *const *env, struct db_config **c,
                         struct db_err *e)
{
    struct db_config_opts o = {.features = db_feature_tables, .text = text,
                               .text_len = strlen(text)};
    memset(e, 0, sizeof *e);
    return db_config_load_opts("test.conf", env, &o, c, e);
}

/* An account section is read through its connector's key table with the lines the file
 * gave: a wrong value is named by key and line (or by where the environment set it) and
 * never quoted back. */
static void account_values_are_judged_with_their_line(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[telegram 123]\ntoken = 123:abc\n\napi_base = ftp://x.example\n",
         "test.conf:4: api_base: must start with http:// or https://"},
        {"[telegram 123]\ntoken = 123:abc\nwebhook_secret = no spaces please\n",
         "test.conf:3: webhook_secret: must be 1-256 characters of A-Z a-z 0-9 _ -"},
        {"[telegram 123]\ntoken = 123:abc\ncolour = blue\n",
         "test.conf:3: colour: unknown key in [telegram]"},
        {"[whatsapp 1550001]\naccess_token = t\napp_secret = s\nverify_token = v\n"
         "business_account_id = waba-12\n",
         "test.conf:5: business_account_id: must be the digits of a WhatsApp Business Account "
         "id"},
        {"[viber shop]\nauth_token = two words\n",
         "test.conf:2: auth_token: must be printable ASCII without spaces"},
        {"[viber shop]\nauth_token = t0ken\nsender_avatar = avatar.png\n",
         "test.conf:3: sender_avatar: must be an http(s) URL"},
        {"[viber a-shop-name-longer-than-28-characters]\nauth_token = t0ken\n",
         "[viber a-shop-name-longer-than-28-characters]: sender_name: longer than 28 "
         "characters (defaults to the account id; set it explicitly)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct db_config *c = (struct db_config *)1;
        struct db_err e;
        int rc = load_accounts(cases[i].text, no_env, &c, &e);
        if (rc == DB_OK) db_config_free(c);
        assert_int_equal(rc, DB_ECONFIG);
        assert_null(c);
        assert_string_equal(e.msg, cases[i].want);
    }

    /* The environment overrides a wrong line of the file, and is named when it is wrong. */
    static char *const good[] = {"TELEGRAM_BOT_TOKEN=123:abc",
                                 "TELEGRAM_API_BASE=http://127.0.0.1:18700", NULL};
    static char *const bad[] = {"TELEGRAM_BOT_TOKEN=123:abc", "TELEGRAM_API_BASE=127.0.0.1",
                                NULL};
    struct db_config *c = NULL;
    struct db_err e;
    const char *text = "[telegram 123]\ntoken = 123:abc\napi_base = ftp://x.example\n";
    if (load_accounts(text, good, &c, &e) != DB_OK) fail_msg("%s", e.msg);
    db_config_free(c);
    c = NULL;
    assert_int_equal(load_accounts("", bad, &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "environment: api_base: must start with http:// or https://");
}

/* Only a key's last line counts in a feature section too, so a variable overrides a wrong
 * value of the file, as it does in [gateway] and the accounts.  Before the key tables judged
 * the last line only, the file's empty timezone failed the load despite the variable. */
static void variables_override_a_wrong_feature_line(void **state)
{
    (void)state;
    static char *const env[] = {"DESKBRIDGE_TIMEZONE=Europe/Kyiv", NULL};
    struct db_config *c = NULL;
    struct db_err e;
    const char *text = "[schedule default]\ntimezone =\nhours = mon-fri 09:00-18:00\n";
    int rc = load_text(text, env, &c, &e);
    if (rc != DB_OK) fail_msg("%s", e.msg);
    const struct db_conf_section *sec = db_config_section(c, "schedule", "default");
    assert_non_null(sec);
    assert_string_equal(db_conf_find(sec, "timezone")->value, "Europe/Kyiv");
    db_config_free(c);
    expect_error(text, no_env, "test.conf:2: timezone: must not be empty");
}

/* ---- the reference stays in step with the table ---- */

static void docs_document_every_key_and_variable(void **state)
{
    (void)state;
    char *doc = db_test_read_file("docs/config.md", NULL);
    size_t keys = 0, vars = 0;
    char needle[80];
    for (const char *k; (k = db_config_key_name(keys)); keys++) {
        snprintf(needle, sizeof needle, "| `%s` |", k);
        if (!strstr(doc, needle)) fail_msg("docs/config.md has no table row for key %s", k);
    }
    for (const char *v; (v = db_config_env_name(vars)); vars++) {
        snprintf(needle, sizeof needle, "| `%s` |", v);
        if (!strstr(doc, needle)) fail_msg("docs/config.md has no table row for variable %s", v);
    }
    assert_int_equal(keys, 23);
    assert_int_equal(vars, 28); /* 10 gateway overrides, 14 account and 4 schedule quickstart variables */
    assert_non_null(strstr(doc, "NAME_FILE"));
    assert_non_null(strstr(doc, "_file"));
    free(doc);
}

/* The row docs/config.md must hold for key k of a feature table: the table speaks. */
static void doc_row(const struct db_conf_key *k, char *buf, size_t n)
{
    char type[160] = "", def[64] = "-";
    switch (k->type) {
    case DB_CONF_INT:
    case DB_CONF_LONG: snprintf(type, sizeof type, "int %ld-%ld", k->min, k->max); break;
    case DB_CONF_BOOL: snprintf(type, sizeof type, "true \\| false"); break;
    case DB_CONF_URL: snprintf(type, sizeof type, "URL"); break;
    default: snprintf(type, sizeof type, "text"); break;
    }
    if (k->flags & DB_CONF_REQUIRED) strcat(type, ", required");
    if (k->flags & DB_CONF_SECRET) strcat(type, ", secret");
    if (k->flags & DB_CONF_REPEATABLE) strcat(type, ", repeatable");
    if (k->flags & DB_CONF_LANG) strcat(type, ", per language");
    if (k->def) snprintf(def, sizeof def, "`%s`", k->def);
    snprintf(buf, n, "| `%s` | %s | %s | %s |\n", k->name, type, def, k->doc);
}

/* Asserts that every key of t has its row, as the table would write it, under the heading
 * "#### `[SECTION]`" (or "#### `[SECTION <name>]`" for a named section) of doc; counts the
 * rows in *n_rows. */
static void table_rows_in_doc(const char *doc, const struct db_conf_table *t, const char *name,
                              size_t *n_rows)
{
    char head[96], row[512];
    snprintf(head, sizeof head, "\n#### `[%s%s%s]`\n", t->section, t->named ? " " : "",
             t->named ? name : "");
    const char *from = strstr(doc, head);
    if (!from) fail_msg("docs/config.md has no heading %s", head + 1);
    from += strlen(head);
    const char *to = strstr(from, "\n#");
    size_t len = to ? (size_t)(to - from) : strlen(from);
    for (size_t j = 0; j < t->n_keys; j++, (*n_rows)++) {
        const struct db_conf_key *k = &t->keys[j];
        assert_non_null(k->doc);
        doc_row(k, row, sizeof row);
        const char *hit = strstr(from, row);
        if (!hit || hit >= from + len)
            fail_msg("docs/config.md, [%s]: want the row\n%s", t->section, row);
    }
}

/* Every key of every feature table and of every connector's account table has its row, as
 * the table would write it, under the heading of its section; every [gateway] key's row
 * carries the table's doc line. */
static void docs_match_the_key_tables(void **state)
{
    (void)state;
    char *doc = db_test_read_file("docs/config.md", NULL);
    size_t n_tables = 0, n_rows = 0;
    for (size_t i = 0; db_feature_tables[i]; i++, n_tables++)
        table_rows_in_doc(doc, db_feature_tables[i], "NAME", &n_rows);
    assert_int_equal(n_tables, 10);
    assert_int_equal(n_rows, 79);
    size_t n_accounts = 0, n_account_rows = 0;
    for (size_t i = 0; db_connectors[i]; i++) {
        const struct db_conf_table *t = db_connectors[i]->account_keys;
        if (!t) continue;
        assert_string_equal(t->section, db_connectors[i]->name);
        assert_true(t->named && t->quiet); /* any account value may be a secret */
        table_rows_in_doc(doc, t, "ID", &n_account_rows);
        n_accounts++;
    }
    assert_int_equal(n_accounts, 3);
    assert_int_equal(n_account_rows, 16); /* telegram 4, whatsapp 7, viber 5 */
    const struct db_conf_table *g = db_config_gateway_table();
    for (size_t j = 0; j < g->n_keys; j++) {
        char needle[80];
        snprintf(needle, sizeof needle, "\n| `%s` |", g->keys[j].name);
        const char *row = strstr(doc, needle);
        assert_non_null(row);
        const char *eol = strchr(row + 1, '\n');
        const char *hit = strstr(row, g->keys[j].doc);
        if (!hit || (eol && hit > eol))
            fail_msg("docs/config.md: the row of %s lacks \"%s\"", g->keys[j].name,
                     g->keys[j].doc);
    }
    free(doc);
}

/* Each feature section is read once, at load, into its module's struct: numbers as numbers,
 * yes/no as 0/1, defaults filled, schedules and patterns compiled. */
static void feature_sections_become_typed_structs(void **state)
{
    (void)state;
    struct db_config *c = NULL;
    struct db_err e;
    int rc = load_text("[dispatch]\n"
                       "offline_grace_ms = 400\n"
                       "priority_keyword = urgent:urgent\n"
                       "priority_keyword = soon:high\n"
                       "[schedule office]\n"
                       "timezone = Europe/Kyiv\n"
                       "hours = mon-fri 09:00-18:00\n"
                       "away_message = closed\n"
                       "away_message_uk = зачинено\n"
                       "queue_default_wait_s = 120\n"
                       "accounts = telegram:1\n"
                       "[keyword prices]\n"
                       "regex = ^(price|cost)\n"
                       "answer = see the site\n"
                       "resolve = Yes\n"
                       "accounts = telegram:1 , viber:shop\n"
                       "[canned thanks]\n"
                       "text = Thank you\n"
                       "[helpdesk_webhook desk]\n"
                       "url = http://127.0.0.1:9/in\n"
                       "secret = 0123456789abcdef\n"
                       "allow_private = on\n"
                       "events = message, status\n",
                       no_env, &c, &e);
    if (rc != DB_OK) fail_msg("%s", e.msg);

    const struct db_dispatch_conf *d = db_config_obj(c, "dispatch", NULL);
    assert_non_null(d);
    assert_int_equal(d->offline_grace_ms, 400);
    assert_int_equal(d->sweep_ms, 1000);
    assert_int_equal(d->claim_idle_set, 0);
    assert_string_equal(d->rules, "urgent\turgent\nsoon\thigh\n");
    struct db_dispatch_opts o = db_dispatch_opts_of(c);
    assert_int_equal(o.offline_grace_ms, 400);
    assert_int_equal(o.claim_idle_ms, c->claim_idle_ms); /* [gateway]'s when not given */
    assert_int_equal(o.max_deliveries, 10);

    const struct db_schedule_conf *sc = db_schedule_conf_of(c, "telegram", "1");
    assert_non_null(sc);
    assert_ptr_equal(sc, db_config_obj(c, "schedule", "office"));
    assert_null(db_schedule_conf_of(c, "telegram", "2")); /* no [schedule default] */
    assert_non_null(sc->sched);
    assert_string_equal(db_schedule_tz(sc->sched), "Europe/Kyiv");
    assert_int_equal(sc->queue_default_wait_s, 120);
    assert_string_equal(sc->away_message, "closed");
    assert_string_equal(db_schedule_text(sc, "away_message", "uk"), "зачинено");
    assert_string_equal(db_schedule_text(sc, "away_message", "de"), "closed");
    assert_null(sc->greeting);

    const struct db_keyword_rule *k = db_config_obj(c, "keyword", "prices");
    assert_non_null(k);
    assert_int_equal(k->resolve, 1);
    assert_int_equal(k->has_rx, 1);
    assert_string_equal(k->answer, "see the site");
    /* The rule answers only its accounts, from the list split at load. */
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "kind", "message", "text", "price please",
                           "platform", "viber", "account", "shop");
    assert_ptr_equal(db_keyword_rule_for(c, ev), k);
    json_object_set_new(ev, "account", json_string("shop2"));
    assert_null(db_keyword_rule_for(c, ev));
    json_decref(ev);
    const struct db_canned *cn = db_config_obj(c, "canned", "thanks");
    assert_string_equal(cn->text, "Thank you");

    const struct db_hookout_conf *h = db_config_obj(c, "helpdesk_webhook", "desk");
    assert_non_null(h);
    assert_int_equal(h->allow_private, 1);
    assert_int_equal(h->all_kinds, 0);
    assert_int_equal(h->kinds, 1u | DB_HOOKOUT_KIND_STATUS);
    assert_int_equal(h->timeout_ms, 10000);
    assert_int_equal(h->concurrency, 16);
    db_config_free(c);

    /* How an account receives is decided once, at load. */
    assert_int_equal(load_text("[telegram a]\ntoken = 1:x\n"
                               "[telegram b]\ntoken = 2:y\nwebhook_secret = s3cr3t-s3cr3t\n",
                               no_env, &c, &e),
                     DB_OK);
    assert_int_equal(db_config_account(c, "telegram", "a")->polls, 1);
    assert_int_equal(db_config_account(c, "telegram", "b")->polls, 0);
    db_config_free(c);

    /* An empty [dispatch] gives the options a configuration without one gives. */
    assert_int_equal(load_text("[dispatch]\n", no_env, &c, &e), DB_OK);
    struct db_dispatch_opts with = db_dispatch_opts_of(c);
    db_config_free(c);
    assert_int_equal(load_text("", no_env, &c, &e), DB_OK);
    struct db_dispatch_opts without = db_dispatch_opts_of(c);
    db_config_free(c);
    assert_memory_equal(&with, &without, sizeof with);

    /* A feature section's error names the file, the line and the key. */
    assert_int_equal(load_text("[dispatch]\nsweep_ms = 10\n", no_env, &c, &e), DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:2: sweep_ms: must be an integer from 50 to 600000 "
                               "(got '10')");
    assert_int_equal(load_text("[keyword k]\nmatch = a\nanswer = b\nwhen = now\n", no_env, &c,
                               &e),
                     DB_ECONFIG);
    assert_string_equal(e.msg, "test.conf:4: when: unknown key in [keyword]");
}

/* One number, one yes/no, one URL reader, one wipe. */
static void the_shared_value_readers(void **state)
{
    (void)state;
    long v = 7;
    int b = 7;
    assert_int_equal(db_parse_long("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(db_parse_long("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    static const char *const bad[] = {"", " 1", "+1", "1 ", "0x10", "1e3", "10s", "-", "101",
                                      "99999999999999999999", NULL};
    for (size_t i = 0; bad[i]; i++)
        if (db_parse_long(bad[i], 0, 100, &v) == 0) fail_msg("'%s' was taken", bad[i]);
    assert_int_equal(v, -5);
    assert_int_equal(db_parse_long(NULL, 0, 1, &v), -1);
    static const char *const yes[] = {"true", "YES", "On", "1", NULL};
    static const char *const no[] = {"false", "No", "OFF", "0", NULL};
    for (size_t i = 0; yes[i]; i++) {
        assert_int_equal(db_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
        assert_int_equal(db_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
    }
    assert_int_equal(db_parse_bool("maybe", &b), -1);
    assert_int_equal(db_parse_bool("", &b), -1);
    const char *why = NULL;
    assert_int_equal(db_url_check("https://example.com/x?y=1", 0, &why), 0);
    assert_int_equal(db_url_check("HTTP://10.0.0.1:8080/", DB_URL_HTTP, &why), 0);
    assert_int_equal(db_url_check("http://example.com/", 0, &why), -1);
    assert_string_equal(why, "must use https://");
    assert_int_equal(db_url_check("ftp://example.com/", DB_URL_HTTP, &why), -1);
    assert_string_equal(why, "must start with http:// or https://");
    assert_int_equal(db_url_check("https:///path", 0, &why), -1);
    assert_string_equal(why, "has no host");
    assert_int_equal(db_url_check("https://a.example/b c", 0, &why), -1);
    assert_int_equal(db_url_check("https://a.example/\r\nX: y", 0, NULL), -1);
    /* stream ids as numbers, where text order goes wrong */
    assert_int_equal(db_stream_id_cmp("999-0", "1000-0"), -1);
    assert_int_equal(db_stream_id_cmp("1000-10", "1000-9"), 1);
    assert_int_equal(db_stream_id_cmp("1000-9", "1000-9"), 0);
    assert_int_equal(db_stream_id_cmp("1000", "1000-0"), 0);
    assert_int_equal(db_stream_id_cmp("1796664838873-0", "1796664838873-1"), -1);
    assert_int_equal(db_stream_id_cmp("18446744073709551615-0", "18446744073709551614-9"), 1);
    assert_int_equal(db_stream_id_cmp("99999999999999999999-0", "18446744073709551615-0"), 0);
    char secret[] = "hunter2-hunter2";
    db_wipe_str(secret);
    for (size_t i = 0; i < sizeof secret; i++) assert_int_equal(secret[i], 0);
    db_wipe_str(NULL);
}

static void deploy_example_parses(void **state)
{
    (void)state;
    /* The example's secrets live under /run/secrets; swap each *_file line for a plain
     * value so only the syntax and the gateway keys are judged. */
    char *text = db_test_read_file("deploy/deskbridge.conf.example", NULL);
    char *out = malloc(strlen(text) * 2 + 1), *w = out;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *f = strstr(line, "_file = ");
        if (f && strcmp(line, "api_token_file = /run/secrets/deskbridge_api_token") == 0)
            w += sprintf(w, "api_token = example-token-0123456789\n");
        else if (f)
            w += sprintf(w, "%.*s = example\n", (int)(f - line), line);
        else
            w += sprintf(w, "%s\n", line);
    }
    struct db_config *c = expect_ok(out, no_env);
    assert_int_equal(c->n_accounts, 4);
    assert_int_equal(c->log_json, 1);
    assert_non_null(db_config_account(c, "whatsapp", "104729384756201"));
    assert_string_equal(kv(db_config_account(c, "viber", "shop"), "sender_name"), "Example Shop");
    db_config_free(c);
    free(out);
    free(text);
}

/* ---- tenants ---- */

#define TWO_ACCOUNTS "[telegram 111]\ntoken = 111:a\n[whatsapp 222]\naccess_token = x\n"
#define GW_TOKEN "[gateway]\napi_token = operator-token-0123456789\n"

static void tenants_load_with_their_accounts_and_tokens(void **state)
{
    (void)state;
    struct db_config *c = expect_ok(GW_TOKEN TWO_ACCOUNTS
                                    "[tenant alpha]\naccounts = telegram:111\n"
                                    "api_token = alpha-token-0123456789\n"
                                    "api_token = alpha-token-next-012345, alpha-token-third-0123\n"
                                    "[tenant beta.2]\naccounts = whatsapp:222\n"
                                    "api_token = beta-token-0123456789ab\n",
                                    no_env);
    assert_int_equal(c->n_tenants, 2);
    const struct db_tenant *a = &c->tenants[0], *b = &c->tenants[1];
    assert_string_equal(a->name, "alpha");
    assert_int_equal(a->n_accounts, 1);
    assert_string_equal(a->accounts[0], "telegram:111");
    assert_int_equal(a->n_api_tokens, 3);
    assert_string_equal(a->api_tokens[2], "alpha-token-third-0123");
    assert_string_equal(b->name, "beta.2");
    assert_int_equal(b->n_api_tokens, 1);
    assert_true(db_tenant_serves(a, "telegram", "111"));
    assert_false(db_tenant_serves(a, "whatsapp", "222"));
    assert_false(db_tenant_serves(a, "telegram", "11"));
    assert_false(db_tenant_serves(a, "telegra", "m:111"));
    assert_true(db_tenant_serves(NULL, "whatsapp", "222")); /* the operator */
    assert_int_equal(c->n_api_tokens, 1);
    db_config_free(c);
}

static void tenant_token_file_holds_several_tokens(void **state)
{
    (void)state;
    struct tmp t = {0};
    const char *path = tmp_file(&t, "tok", "file-token-one-0123456\nfile-token-two-0123456\n", 46);
    char text[512];
    snprintf(text, sizeof text,
             TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111, whatsapp:222\napi_token_file = %s\n",
             path);
    struct db_config *c = expect_ok(text, no_env);
    assert_int_equal(c->tenants[0].n_accounts, 2);
    assert_int_equal(c->tenants[0].n_api_tokens, 2);
    assert_string_equal(c->tenants[0].api_tokens[1], "file-token-two-0123456");
    db_config_free(c);
    tmp_clean(&t);
}

/* [survey NAME]: which accounts ask, the texts by language with the defaults, and errors that
 * name the line and the key. */
static void survey_sections_load_and_errors_name_line_and_key(void **state)
{
    (void)state;
    struct db_config *c = expect_ok("[survey shop]\naccounts = telegram:1, whatsapp:2\n"
                                    "question = How was it?\nquestion_uk = Як було?\n"
                                    "comment_window_s = 0\n"
                                    "[survey default]\nbuttons = no\n",
                                    no_env);
    const struct db_survey_conf *sc = db_survey_conf_of(c, "whatsapp", "2");
    assert_non_null(sc);
    assert_string_equal(sc->name, "shop");
    assert_int_equal(sc->comment_window_s, 0);
    assert_int_equal(sc->buttons, 1);
    assert_string_equal(db_survey_text(sc, "question", "uk"), "Як було?");
    assert_string_equal(db_survey_text(sc, "question", "de"), "How was it?");
    assert_null(db_survey_text(sc, "reply_hint", "uk")); /* the default then: */
    assert_string_equal(sc->reply_hint, "Reply with a number from 1 to 5.");
    const struct db_survey_conf *d = db_survey_conf_of(c, "viber", "x");
    assert_non_null(d);
    assert_string_equal(d->name, "default");
    assert_int_equal(d->buttons, 0);
    assert_int_equal(d->comment_window_s, 600);
    db_config_free(c);
    c = expect_ok("[survey shop]\naccounts = telegram:1\n", no_env);
    assert_null(db_survey_conf_of(c, "telegram", "2")); /* no default: no survey */
    db_config_free(c);

    expect_error("[survey shop]\naccounts = telegram:1\ncomment_window_s = 99999\n", no_env,
                 "test.conf:3: comment_window_s: must be an integer from 0 to 86400 (got '99999')");
    expect_error("[survey shop]\nquestion = x\n", no_env,
                 "[survey shop]: accounts: is required (only [survey default] applies to every account)");
    expect_error("[survey shop]\naccounts = telegram\n", no_env,
                 "test.conf:2: accounts: 'telegram': want platform:account");
    expect_error("[survey shop]\naccounts = telegram:1\nbuttons_label_uk = Оцініть нашу роботу тут\n",
                 no_env, "test.conf:3: buttons_label_uk: must be at most 20 characters");
    expect_error("[survey shop]\naccounts = telegram:1\ncolour = red\n", no_env,
                 "test.conf:3: colour: unknown key in [survey]");
}

static void tenant_errors_name_file_line_and_key(void **state)
{
    (void)state;
    /* An account that is not configured. */
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111, telegram:999\n"
                              "api_token = alpha-token-0123456789\n",
                 no_env, "test.conf:6: accounts: telegram:999 is not a configured account");
    /* One account in two tenants. */
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\n"
                              "api_token = alpha-token-0123456789\n"
                              "[tenant b]\naccounts = whatsapp:222, telegram:111\n"
                              "api_token = beta-token-0123456789ab\n",
                 no_env, "test.conf:9: accounts: telegram:111 already belongs to [tenant a]");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111,telegram:111\n"
                              "api_token = alpha-token-0123456789\n",
                 no_env, "test.conf:6: accounts: telegram:111 is listed twice in [tenant a]");
    /* One token twice: gateway and tenant, two tenants, one tenant, the gateway. */
    expect_error(GW_TOKEN TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\n"
                                       "api_token = operator-token-0123456789\n",
                 no_env, "test.conf:9: api_token: the same token is already used by [gateway] (line 2)");
    char *const env[] = {"DESKBRIDGE_API_TOKEN=operator-token-0123456789", NULL};
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\n"
                              "api_token = operator-token-0123456789\n",
                 env, "test.conf:7: api_token: the same token is already used by DESKBRIDGE_API_TOKEN");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\n"
                              "api_token = shared-token-0123456789\n"
                              "[tenant b]\naccounts = whatsapp:222\n"
                              "api_token = beta-token-0123456789ab, shared-token-0123456789\n",
                 no_env, "test.conf:10: api_token: the same token is already used by [tenant a] (line 7)");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\n"
                              "api_token = alpha-token-0123456789\n"
                              "api_token = alpha-token-0123456789\n",
                 no_env, "test.conf:8: api_token: the same token is already used by [tenant a] (line 7)");
    expect_error("[gateway]\napi_token = operator-token-0123456789\n"
                 "api_token = operator-token-0123456789\n",
                 no_env, "test.conf:3: api_token: the same token is given twice");
    /* A short token; the message never quotes it. */
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\napi_token = short-tok\n",
                 no_env, "test.conf:7: api_token: a token must be at least 16 characters");
    /* Shape, keys, presence, name. */
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram\napi_token = alpha-token-0123456789\n",
                 no_env, "test.conf:6: accounts: want platform:account-id entries");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111,\napi_token = alpha-token-0123456789\n",
                 no_env, "test.conf:6: accounts: empty entry in the list");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\naccounts = whatsapp:222\n",
                 no_env, "test.conf:7: accounts: duplicate key (first at line 6)");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\nagents = x\n",
                 no_env, "test.conf:7: agents: unknown key in [tenant]");
    expect_error(TWO_ACCOUNTS "[tenant a]\naccounts = telegram:111\n",
                 no_env, "[tenant a]: api_token: is required");
    expect_error(TWO_ACCOUNTS "[tenant a/b]\n",
                 no_env, "test.conf:5: [tenant a/b]: name must be 1 to 64 of A-Z a-z 0-9 _ . -");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_without_file_or_environment),
        cmocka_unit_test(good_file_sets_every_key),
        cmocka_unit_test(crlf_and_byte_order_mark_are_accepted),
        cmocka_unit_test(bad_fixtures_name_file_line_and_key),
        cmocka_unit_test(syntax_errors_in_text),
        cmocka_unit_test(missing_file_is_reported),
        cmocka_unit_test(errors_keep_the_key_after_a_long_path),
        cmocka_unit_test(bounds_are_inclusive),
        cmocka_unit_test(listen_and_redis_url_forms),
        cmocka_unit_test(environment_overrides_the_file),
        cmocka_unit_test(environment_errors_name_the_variable),
        cmocka_unit_test(empty_variables_count_as_unset),
        cmocka_unit_test(variables_read_from_files),
        cmocka_unit_test(file_keys_strip_one_newline_only),
        cmocka_unit_test(api_tokens_accumulate_for_rotation),
        cmocka_unit_test(telegram_quickstart_from_token),
        cmocka_unit_test(telegram_token_from_file_names_file_variable),
        cmocka_unit_test(whatsapp_quickstart_needs_phone_number_id),
        cmocka_unit_test(viber_quickstart_account_defaults_to_viber),
        cmocka_unit_test(environment_keys_append_to_the_file_account),
        cmocka_unit_test(accounts_are_built_by_their_connector),
        cmocka_unit_test(compiled_in_connectors_take_quickstart_accounts),
        cmocka_unit_test(account_values_are_judged_with_their_line),
        cmocka_unit_test(variables_override_a_wrong_feature_line),
        cmocka_unit_test(docs_document_every_key_and_variable),
        cmocka_unit_test(docs_match_the_key_tables),
        cmocka_unit_test(feature_sections_become_typed_structs),
        cmocka_unit_test(the_shared_value_readers),
        cmocka_unit_test(deploy_example_parses),
        cmocka_unit_test(tenants_load_with_their_accounts_and_tokens),
        cmocka_unit_test(tenant_token_file_holds_several_tokens),
        cmocka_unit_test(tenant_errors_name_file_line_and_key),
        cmocka_unit_test(survey_sections_load_and_errors_name_line_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
