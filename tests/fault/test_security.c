/* Security checks that exist today (docs/reliability.md).
 *
 * - API tokens in rotation: two api_token lines, both accepted, anything else refused.
 * - Webhook secrets in rotation: Telegram webhook_secret + webhook_secret_previous and
 *   WhatsApp app_secret + app_secret_previous each accept both and refuse a third.
 * - A source gate: no memcmp/strcmp/strncmp/strcasecmp/strncasecmp in src/ or connectors/
 *   whose arguments name a secret-ish variable (secret, token, signature, sig, hmac,
 *   password), apart from an explicit allowlist of lines that compare names or prefixes.
 * - Logs: a daemon logging JSON at the default level that received and sent messages with a
 *   known phone number, customer text, tokens and secrets, and was offered wrong tokens,
 *   contains none of them.
 * - Tenants: tenant alpha (the Telegram account) and tenant beta (the WhatsApp number) each
 *   read and write their own conversations; each one's token finds the other's conversation
 *   missing (404 on read and on every action), is refused a reply to it (403), sees none of
 *   it in lists, and changes nothing in Redis (outbox length, conversation hash, items). */
#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "api_client.h"
#include "daemon.h"
#include "fake_platform.h"
#include "redis_fixture.h"
#include "testutil.h"
#include "util/crypto.h"

#define TG_TOKEN "7000000001:AAsecTokenNeverLog_q7"
#define TG_NEW "tg-hook-secret-new_q7"
#define TG_OLD "tg-hook-secret-old_q7"
#define WA_NEW "wa-app-secret-new-q7"
#define WA_OLD "wa-app-secret-old-q7"
#define WA_ACCESS "wa-access-token-q7-EAAG"
#define WA_PNID "1550001"
#define VB_TOKEN "vb-auth-token-q7-4d5e6f"
#define API_A "api-token-current-q7-0123"
#define API_B "api-token-previous-q7-4567"
#define API_WRONG "api-token-guessed-q7-8901"
#define TEN_A "tenant-alpha-token-q7-2345"
#define TEN_B "tenant-beta-token-q7-6789"
#define PHONE "16505550123"
#define CUSTOMER_TEXT "customer-private-words-q7"
#define AGENT_TEXT "agent-private-reply-q7"

static struct db_test_redis *R;
static struct db_fake *TG, *WA;
static struct db_test_daemon D;
static char conf_path[256], env_redis[512];

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    TG = db_fake_start();
    WA = db_fake_start();
    assert_true(R && TG && WA);
    db_fake_default(TG, 200, "{\"ok\":true,\"result\":{\"message_id\":{n}}}");
    db_fake_default(WA, 200, "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.S{n}\"}]}");
    snprintf(conf_path, sizeof conf_path, "/tmp/deskbridge-sec-%d.conf", (int)getpid());
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\n"
            "api_token = " API_A "\n"
            "api_token = " API_B "\n"
            "[telegram 7000000001]\n"
            "token = " TG_TOKEN "\n"
            "webhook_secret = " TG_NEW "\n"
            "webhook_secret_previous = " TG_OLD "\n"
            "api_base = %s\n"
            "[whatsapp " WA_PNID "]\n"
            "access_token = " WA_ACCESS "\n"
            "app_secret = " WA_NEW "\n"
            "app_secret_previous = " WA_OLD "\n"
            "verify_token = wa-verify-q7\n"
            "api_base = %s\n"
            "[viber shop]\n"
            "auth_token = " VB_TOKEN "\n"
            "api_base = http://127.0.0.1:9\n"
            "[tenant alpha]\n"
            "accounts = telegram:7000000001\n"
            "api_token = " TEN_A "\n"
            "[tenant beta]\n"
            "accounts = whatsapp:" WA_PNID "\n"
            "api_token = " TEN_B "\n",
            db_fake_url(TG), db_fake_url(WA));
    fclose(f);
    snprintf(env_redis, sizeof env_redis, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    const char *env[] = {env_redis, "DESKBRIDGE_LOG_FORMAT=json", NULL};
    const char *args[] = {"--config", conf_path, NULL};
    db_test_daemon_start(&D, env, args, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_test_daemon_stop_clean(&D, NULL);
    unlink(conf_path);
    db_fake_stop(TG);
    db_fake_stop(WA);
    db_test_redis_stop(R);
    return 0;
}

static int api_status(const char *authz)
{
    const char *headers[] = {authz, NULL};
    struct db_test_resp r;
    db_test_http(D.port, "GET", "/v1/messages/no-such-message", authz ? headers : NULL, NULL, 0, &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

static void api_accepts_both_rotating_tokens_and_nothing_else(void **state)
{
    (void)state;
    assert_int_equal(api_status("Authorization: Bearer " API_A), 404); /* in, nothing there */
    assert_int_equal(api_status("Authorization: Bearer " API_B), 404);
    assert_int_equal(api_status("Authorization: Bearer " TEN_A), 404);
    assert_int_equal(api_status("Authorization: Bearer " TEN_B), 404);
    assert_int_equal(api_status("Authorization: Bearer " TEN_A TEN_B), 401);
    assert_int_equal(api_status("Authorization: Bearer " API_WRONG), 401);
    assert_int_equal(api_status("Authorization: Bearer " API_A "x"), 401);
    assert_int_equal(api_status("Authorization: Bearer api-token-current-q7-012"), 401);
    assert_int_equal(api_status("Authorization: Bearer "), 401);
    assert_int_equal(api_status("Authorization: " API_A), 401);
    assert_int_equal(api_status("Authorization: Basic " API_A), 401);
    assert_int_equal(api_status(NULL), 401);
}

/* POSTs body to path with header: key itself (Telegram's secret token), or after prefix the
 * hex HMAC-SHA256 of the body under key (WhatsApp, Viber).  Returns the status. */
static int hook_post(const char *path, const char *header, const char *prefix, const char *key,
                     const char *body)
{
    char h[200], hex[65];
    if (prefix) {
        unsigned char mac[32];
        db_hmac_sha256(key, strlen(key), body, strlen(body), mac);
        db_hex_encode(mac, 32, hex);
        snprintf(h, sizeof h, "%s: %s%s", header, prefix, hex);
    } else {
        snprintf(h, sizeof h, "%s: %s", header, key);
    }
    const char *headers[] = {"Content-Type: application/json", h, NULL};
    struct db_test_resp r;
    db_test_http(D.port, "POST", path, headers, body, strlen(body), &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

static int tg_post(long long update_id, const char *secret)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":424242,\"type\":\"private\"},\"text\":\"" CUSTOMER_TEXT "\"}}",
             update_id, update_id);
    return hook_post("/webhooks/telegram/7000000001", "X-Telegram-Bot-Api-Secret-Token", NULL,
                     secret, body);
}

static int wa_post(const char *wamid, const char *secret)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
             "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"display_phone_number\":\"15550001\",\"phone_number_id\":\"" WA_PNID
             "\"},\"contacts\":[{\"profile\":{\"name\":\"Customer Q\"},\"wa_id\":\"" PHONE "\"}],"
             "\"messages\":[{\"from\":\"" PHONE "\",\"id\":\"%s\",\"timestamp\":\"%lld\","
             "\"type\":\"text\",\"text\":{\"body\":\"" CUSTOMER_TEXT "\"}}]}}]}]}",
             wamid, (long long)time(NULL)); /* now: the reply falls inside WhatsApp's window */
    return hook_post("/webhooks/whatsapp/" WA_PNID, "X-Hub-Signature-256", "sha256=", secret, body);
}

static long long xlen(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XLEN deskbridge:events");
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void webhook_secrets_in_rotation_accept_both_and_refuse_a_third(void **state)
{
    (void)state;
    long long before = xlen();
    assert_int_equal(tg_post(810001, TG_NEW), 200);
    assert_int_equal(tg_post(810002, TG_OLD), 200);
    assert_int_equal(tg_post(810003, "tg-hook-secret-other_q7"), 401);
    assert_int_equal(tg_post(810003, TG_NEW "x"), 401);
    assert_int_equal(wa_post("wamid.Q7A", WA_NEW), 200);
    assert_int_equal(wa_post("wamid.Q7B", WA_OLD), 200);
    assert_int_equal(wa_post("wamid.Q7C", "wa-app-secret-other-q7"), 401);
    assert_int_equal(xlen(), before + 4);
}

/* Verification comes before parsing: a body that is not JSON (nor UTF-8) under a signature
 * that does not match is refused 401, and signed right the same body is 400.  A gateway that
 * parsed first would answer 400 both times. */
static void a_bad_signature_is_refused_before_the_body_is_parsed(void **state)
{
    (void)state;
    static const char junk[] = "{\"update_id\": [[[ \xff\xfe not json";
    long long before = xlen();
    const char *tg = "/webhooks/telegram/7000000001", *wa = "/webhooks/whatsapp/" WA_PNID,
               *vb = "/webhooks/viber/shop";
    assert_int_equal(hook_post(tg, "X-Telegram-Bot-Api-Secret-Token", NULL, TG_NEW "x", junk), 401);
    assert_int_equal(hook_post(tg, "X-Telegram-Bot-Api-Secret-Token", NULL, TG_NEW, junk), 400);
    assert_int_equal(hook_post(wa, "X-Hub-Signature-256", "sha256=", WA_NEW "x", junk), 401);
    assert_int_equal(hook_post(wa, "X-Hub-Signature-256", "sha256=", WA_NEW, junk), 400);
    assert_int_equal(hook_post(vb, "X-Viber-Content-Signature", "", VB_TOKEN "x", junk), 401);
    assert_int_equal(hook_post(vb, "X-Viber-Content-Signature", "", VB_TOKEN, junk), 400);
    assert_int_equal(xlen(), before);
}

/* ---- tenants ---- */

#define TG_CONV "telegram:7000000001:424242"
#define WA_CONV "whatsapp:" WA_PNID ":" PHONE

static int call(const char *token, const char *method, const char *path, const char *body)
{
    char authz[96];
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    const char *headers[] = {authz, "Content-Type: application/json", NULL};
    struct db_test_resp r;
    db_test_http(D.port, method, path, headers, body, body ? strlen(body) : 0, &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

static int both_conversations_exist(void *arg)
{
    (void)arg;
    return call(API_A, "GET", "/v1/conversations/" TG_CONV, NULL) == 200 &&
           call(API_A, "GET", "/v1/conversations/" WA_CONV, NULL) == 200;
}

static char *redis_text(const char *fmt, const char *key)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), fmt, key);
    assert_non_null(r);
    char *s = NULL;
    if (r->type == REDIS_REPLY_INTEGER) assert_true(asprintf(&s, "%lld", r->integer) > 0);
    else {
        size_t n = 1;
        for (size_t i = 0; i < r->elements; i++) n += strlen(r->element[i]->str) + 1;
        s = calloc(1, n);
        for (size_t i = 0; i < r->elements; i++) strcat(strcat(s, r->element[i]->str), "\n");
    }
    freeReplyObject(r);
    return s;
}

/* What token sees of the other tenant's conversation other and of the list; nothing of it
 * may show or change. */
static void refused_everything_of(const char *token, const char *other, const char *own,
                                  const char *other_platform)
{
    char path[160], key[160], body[160];
    snprintf(key, sizeof key, "deskbridge:conv:{%s}", other);
    char *hash = redis_text("HGETALL %s", key);
    char *items = redis_text("LLEN %s:items", key);
    long long outbox = db_test_xlen(db_test_redis_ctx(R), "outbox");

    snprintf(path, sizeof path, "/v1/conversations/%s", other);
    assert_int_equal(call(token, "GET", path, NULL), 404);
    static const char *const actions[] = {"assign", "transfer", "close", "priority"};
    static const char *const bodies[] = {"{\"agent\":\"x\"}", "{\"agent\":\"x\"}", "",
                                         "{\"priority\":\"urgent\"}"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "/v1/conversations/%s/%s", other, actions[i]);
        assert_int_equal(call(token, "POST", path, bodies[i]), 404);
    }
    snprintf(body, sizeof body, "{\"conversation\":\"%s\",\"text\":\"" AGENT_TEXT "\"}", other);
    assert_int_equal(call(token, "POST", "/v1/messages", body), 403);

    char *hash2 = redis_text("HGETALL %s", key);
    char *items2 = redis_text("LLEN %s:items", key);
    assert_string_equal(hash, hash2);
    assert_string_equal(items, items2);
    assert_int_equal(db_test_xlen(db_test_redis_ctx(R), "outbox"), outbox);
    free(hash), free(hash2), free(items), free(items2);

    /* Its own conversation is there, and the list holds none of the other's platform. */
    snprintf(path, sizeof path, "/v1/conversations/%s", own);
    assert_int_equal(call(token, "GET", path, NULL), 200);
    char authz[96];
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    const char *headers[] = {authz, NULL};
    struct db_test_resp r;
    db_test_http(D.port, "GET", "/v1/conversations?limit=500", headers, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    char needle[64];
    snprintf(needle, sizeof needle, "\"platform\":\"%s\"", other_platform);
    assert_null(strstr(r.body, needle));
    snprintf(needle, sizeof needle, "\"id\":\"%s\"", own);
    assert_non_null(strstr(r.body, needle));
    db_test_resp_clear(&r);
}

static void tenant_tokens_cannot_read_or_write_another_tenants_conversations(void **state)
{
    (void)state;
    assert_int_equal(tg_post(830001, TG_NEW), 200);
    assert_int_equal(wa_post("wamid.Q7T1", WA_NEW), 200);
    assert_true(db_test_wait(both_conversations_exist, NULL, 10000));
    refused_everything_of(TEN_A, WA_CONV, TG_CONV, "whatsapp");
    refused_everything_of(TEN_B, TG_CONV, WA_CONV, "telegram");
    /* The operator still reaches both. */
    assert_int_equal(call(API_A, "GET", "/v1/conversations/" TG_CONV, NULL), 200);
    assert_int_equal(call(API_A, "GET", "/v1/conversations/" WA_CONV, NULL), 200);
}

/* ---- the source gate ---- */

static const char *const compare_fns[] = {"memcmp(", "strcmp(", "strncmp(", "strcasecmp(",
                                          "strncasecmp(", NULL};
static const char *const secretish[] = {"secret", "token", "signature", "sig", "hmac",
                                        "password", NULL};

/* Lines allowed although they match: each compares a name, a prefix or a fixed literal, not
 * a secret value.  "file|text the line contains". */
static const char *const allowlist[] = {
    /* the "sha256=" prefix of a signature header, before the constant-time compare */
    "src/util/crypto.c|strncmp(hexsig, prefix, pl)",
    NULL,
};

static int allowed(const char *file, const char *line)
{
    for (size_t i = 0; allowlist[i]; i++) {
        const char *bar = strchr(allowlist[i], '|');
        if (strncmp(allowlist[i], file, (size_t)(bar - allowlist[i])) == 0 &&
            file[bar - allowlist[i]] == '\0' && strstr(line, bar + 1))
            return 1;
    }
    return 0;
}

/* 1 when word (lowercased) contains a secret-ish name.  "sig" followed by "n" counts only as
 * "signature", so signal, signed and design do not. */
static int secretish_word(const char *word)
{
    for (size_t s = 0; secretish[s]; s++)
        for (const char *at = strstr(word, secretish[s]); at; at = strstr(at + 1, secretish[s]))
            if (strcmp(secretish[s], "sig") != 0 || at[3] != 'n' ||
                strncmp(at, "signature", 9) == 0)
                return 1;
    return 0;
}

/* 1 when an identifier in args (string literals removed) contains a secret-ish name. */
static int names_a_secret(const char *args, size_t len)
{
    char word[128];
    size_t w = 0;
    int in_str = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? args[i] : ' ';
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            continue;
        }
        if ((isalnum((unsigned char)c) || c == '_') && w + 1 < sizeof word) {
            word[w++] = (char)tolower((unsigned char)c);
            continue;
        }
        word[w] = '\0';
        if (w && secretish_word(word)) return 1;
        w = 0;
    }
    return 0;
}

static int allowlisted_hits;

static int scan_file(const char *rel, char *report, size_t rn)
{
    size_t len;
    char *text = db_test_read_file(rel, &len);
    int hits = 0, line_no = 0, in_comment = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        line_no++;
        /* Blank out comments so prose mentioning strcmp does not count. */
        char *code = strdup(line);
        for (char *c = code; *c; c++) {
            if (in_comment) {
                if (c[0] == '*' && c[1] == '/') {
                    in_comment = 0;
                    c[0] = c[1] = ' ';
                    c++;
                } else {
                    *c = ' ';
                }
            } else if (c[0] == '/' && c[1] == '*') {
                in_comment = 1;
                c[0] = c[1] = ' ';
                c++;
            } else if (c[0] == '/' && c[1] == '/') {
                *c = '\0';
                break;
            }
        }
        for (size_t f = 0; compare_fns[f]; f++) {
            for (const char *at = strstr(code, compare_fns[f]); at;
                 at = strstr(at + 1, compare_fns[f])) {
                if (at > code && (isalnum((unsigned char)at[-1]) || at[-1] == '_')) continue;
                const char *open = at + strlen(compare_fns[f]);
                int depth = 1;
                const char *e = open;
                for (; *e && depth; e++) depth += (*e == '(') - (*e == ')');
                if (!names_a_secret(open, (size_t)(e - open))) continue;
                if (allowed(rel, line)) {
                    allowlisted_hits++;
                } else {
                    size_t used = strlen(report);
                    snprintf(report + used, rn - used, "%s:%d: %s\n", rel, line_no, line);
                    hits++;
                }
            }
        }
        free(code);
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return hits;
}

/* Every .c and .h file under dir (relative to the source tree), subfolders included: the
 * code is laid out in a folder per layer and per connector. */
static int scan_dir(const char *dir, char *report, size_t rn, int *files)
{
    char abs[1024];
    snprintf(abs, sizeof abs, "%s/%s", DB_SOURCE_DIR, dir);
    DIR *d = opendir(abs);
    assert_non_null(d);
    int hits = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char rel[1024];
        snprintf(rel, sizeof rel, "%s/%s", dir, e->d_name);
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", DB_SOURCE_DIR, rel);
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
            hits += scan_dir(rel, report, rn, files);
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 3 || (strcmp(e->d_name + n - 2, ".c") != 0 && strcmp(e->d_name + n - 2, ".h") != 0))
            continue;
        hits += scan_file(rel, report, rn);
        (*files)++;
    }
    closedir(d);
    return hits;
}

static void gate_catches_a_planted_comparison(void **state)
{
    (void)state;
    /* The gate itself must be able to fail. */
    static const char *const bad[] = {"a->secret, b", "hdr, acct->webhook_secret", "sig, expected, 32",
                                      "in_token, cfg->api_tokens[i]", "hmacHex, x", "password, p",
                                      "hexsig, prefix, pl"};
    static const char *const fine[] = {"name, \"X-Telegram-Bot-Api-Secret-Token\"", "k, \"token\"",
                                       "h, \"sha256=\", 7", "signal_name, s", "design, x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!names_a_secret(bad[i], strlen(bad[i]))) fail_msg("not caught: %s", bad[i]);
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        if (names_a_secret(fine[i], strlen(fine[i]))) fail_msg("false alarm: %s", fine[i]);
}

static void no_plain_compare_of_a_secret_in_the_sources(void **state)
{
    (void)state;
    static char report[16384];
    report[0] = '\0';
    int files = 0, hits = 0;
    static const char *const dirs[] = {"src", "connectors"};
    for (size_t i = 0; i < 2; i++) hits += scan_dir(dirs[i], report, sizeof report, &files);
    printf("# secret-compare gate: %d files scanned, %d hits, %d allowlisted lines (%zu patterns)\n",
           files, hits, allowlisted_hits, sizeof allowlist / sizeof allowlist[0] - 1);
    if (hits) fail_msg("plain comparison of a secret-ish value:\n%s", report);
    assert_true(files > 20);
    /* Every allowlist entry still matches a line: stale entries would hide nothing but rot. */
    assert_int_equal(allowlisted_hits, (int)(sizeof allowlist / sizeof allowlist[0] - 1));
}

/* ---- logs ---- */

static int sent_count(void *arg)
{
    (void)arg;
    return db_fake_count(WA, "/messages") >= 1 && db_fake_count(TG, "/sendMessage") >= 1;
}

static void logs_hold_no_phone_text_token_or_secret(void **state)
{
    (void)state;
    /* Inbound with the phone number and the customer's text, good and bad signatures. */
    assert_int_equal(wa_post("wamid.Q7L1", WA_NEW), 200);
    assert_int_equal(wa_post("wamid.Q7L2", "wa-app-secret-wrong-q7"), 401);
    assert_int_equal(tg_post(820001, TG_NEW), 200);
    assert_int_equal(tg_post(820002, "tg-hook-secret-wrong_q7"), 401);
    assert_int_equal(api_status("Authorization: Bearer " API_WRONG), 401);
    /* Outbound to the phone number; one send refused by the platform, one retried. */
    db_fake_rule(WA, "POST", "/messages", 1, 500, "{\"error\":{\"message\":\"later\",\"code\":1}}", 0, 0);
    const char *auth[] = {"Authorization: Bearer " API_A, "Content-Type: application/json", NULL};
    const char *msgs[] = {
        "{\"conversation\":\"whatsapp:" WA_PNID ":" PHONE "\",\"text\":\"" AGENT_TEXT "\"}",
        "{\"conversation\":\"telegram:7000000001:424242\",\"text\":\"" AGENT_TEXT "\"}",
        "{\"conversation\":\"whatsapp:" WA_PNID ":" PHONE "\"}", /* 400: no text */
    };
    for (size_t i = 0; i < 3; i++) {
        struct db_test_resp r;
        db_test_http(D.port, "POST", "/v1/messages", auth, msgs[i], strlen(msgs[i]), &r);
        assert_int_equal(r.status, i < 2 ? 202 : 400);
        db_test_resp_clear(&r);
    }
    assert_true(db_test_wait(sent_count, NULL, 10000));
    assert_true(db_fake_wait(WA, "/messages", 2, 10000) >= 2); /* the retry after the 500 */
    usleep(300000);

    static const char *const needles[] = {PHONE, CUSTOMER_TEXT, AGENT_TEXT, "AAsecTokenNeverLog",
                                          TG_NEW, TG_OLD, WA_NEW, WA_OLD, WA_ACCESS, API_A, API_B,
                                          API_WRONG, TEN_A, TEN_B, "tg-hook-secret-wrong_q7",
                                          "wa-app-secret-wrong-q7", VB_TOKEN, NULL};
    int lines = db_test_daemon_log_count(&D, "{");
    int leaks = 0;
    for (size_t i = 0; needles[i]; i++) {
        int n = db_test_daemon_log_count(&D, needles[i]);
        if (n) {
            print_error("log holds %s on %d lines\n", needles[i], n);
            leaks++;
        }
    }
    printf("# log (json, default level): %d lines checked for %zu needles, %d found\n", lines,
           sizeof needles / sizeof needles[0] - 1, leaks);
    assert_true(lines > 3); /* the daemon did log, as JSON */
    assert_int_equal(leaks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_accepts_both_rotating_tokens_and_nothing_else),
        cmocka_unit_test(webhook_secrets_in_rotation_accept_both_and_refuse_a_third),
        cmocka_unit_test(a_bad_signature_is_refused_before_the_body_is_parsed),
        cmocka_unit_test(tenant_tokens_cannot_read_or_write_another_tenants_conversations),
        cmocka_unit_test(gate_catches_a_planted_comparison),
        cmocka_unit_test(no_plain_compare_of_a_secret_in_the_sources),
        cmocka_unit_test(logs_hold_no_phone_text_token_or_secret),
    };
    return cmocka_run_group_tests_name("security", tests, setup, teardown);
}
