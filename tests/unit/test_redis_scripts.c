/* test_redis_scripts.c - the embedded Redis scripts (src/redis/scripts.h) are the .lua files
 * byte for byte, every file is embedded, each one compiles in a real redis-server, and the
 * keys the scripts build are the ones src/redis/keys.h lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "redis_fixture.h"
#include "testutil.h"

#define SCRIPT_DIR "src/redis/scripts/"

static const struct {
    const char *file;
    const char *text;
    int prelude; /* runs behind 1: status_advance.lua, 2: customer_seen.lua, 4: dedupe.lua */
} scripts[] = {
    {"status_advance.lua", db_lua_status_advance, 0},
    {"ingest_plain.lua", db_lua_ingest_plain, 6},
    {"ingest.lua", db_lua_ingest, 7},
    {"dedupe.lua", db_lua_dedupe, 0},
    {"dedupe_moved.lua", db_lua_dedupe_moved, 0},
    {"enqueue.lua", db_lua_enqueue, 1},
    {"set_status.lua", db_lua_set_status, 1},
    {"msg_get.lua", db_lua_msg_get, 0},
    {"dispatch.lua", db_lua_dispatch, 0},
    {"stream_dead.lua", db_lua_stream_dead, 0},
    {"stream_order.lua", db_lua_stream_order, 0},
    {"stream_trim.lua", db_lua_stream_trim, 0},
    {"autoreply_claim.lua", db_lua_autoreply_claim, 0},
    {"metrics_convs.lua", db_lua_metrics_convs, 0},
    {"agent_stats.lua", db_lua_agent_stats, 0},
    {"customer_seen.lua", db_lua_customer_seen, 0},
    {"console_auth.lua", db_lua_console_auth, 0},
    {"console_inbox.lua", db_lua_console_inbox, 0},
    {"console_index.lua", db_lua_console_index, 0},
    {"media_record.lua", db_lua_media_record, 0},
    {"media_forget.lua", db_lua_media_forget, 0},
    {"media_attempt.lua", db_lua_media_attempt, 0},
};
#define NSCRIPTS (sizeof scripts / sizeof scripts[0])

static struct db_test_redis *R;

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    return R ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    db_test_redis_stop(R);
    return 0;
}

static void embedded_text_is_the_file(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSCRIPTS; i++) {
        char path[256];
        snprintf(path, sizeof path, SCRIPT_DIR "%s", scripts[i].file);
        size_t len = 0;
        char *file = db_test_read_file(path, &len);
        assert_non_null(file);
        if (strlen(scripts[i].text) != len || memcmp(scripts[i].text, file, len) != 0)
            fail_msg("%s: the embedded text differs from the file", scripts[i].file);
        free(file);
    }
}

/* A .lua file nobody declared would be compiled in and never used, or used under a name this
 * table does not check. */
static void every_file_is_embedded(void **state)
{
    (void)state;
    DIR *d = opendir(DB_SOURCE_DIR "/" SCRIPT_DIR);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".lua") != 0) continue;
        files++;
        int known = 0;
        for (size_t i = 0; i < NSCRIPTS; i++) known |= strcmp(scripts[i].file, de->d_name) == 0;
        if (!known) fail_msg("%s is not in redis/scripts.h and this test", de->d_name);
    }
    closedir(d);
    assert_int_equal(files, (int)NSCRIPTS);
}

/* SCRIPT LOAD compiles: a syntax error in a file fails here rather than on first use. */
static void every_script_compiles(void **state)
{
    (void)state;
    redisContext *c = db_test_redis_ctx(R);
    for (size_t i = 0; i < NSCRIPTS; i++) {
        size_t plen = scripts[i].prelude & 1 ? strlen(db_lua_status_advance) : 0;
        size_t clen = scripts[i].prelude & 2 ? strlen(db_lua_customer_seen) : 0;
        size_t dlen = scripts[i].prelude & 4 ? strlen(db_lua_dedupe) : 0;
        size_t len = strlen(scripts[i].text);
        char *body = malloc(plen + clen + dlen + len + 1);
        assert_non_null(body);
        memcpy(body, db_lua_status_advance, plen);
        memcpy(body + plen, db_lua_customer_seen, clen);
        memcpy(body + plen + clen, db_lua_dedupe, dlen);
        memcpy(body + plen + clen + dlen, scripts[i].text, len + 1);
        redisReply *r = redisCommand(c, "SCRIPT LOAD %s", body);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_STRING) fail_msg("%s: %s", scripts[i].file, r->str);
        freeReplyObject(r);
        free(body);
    }
}

/* Whether suffix (as written after "P .. '") names a key of keys.h: ":msg:{" is DB_KEY_MSG,
 * ":ext:" is DB_KEY_EXT, ":dispatch:active" is DB_KEY_DISPATCH_ACTIVE. */
static int listed(const char *frag, size_t n)
{
    if (n < 2 || frag[0] != ':') return 0;
    frag++, n--;
    if (n >= 2 && frag[n - 2] == ':' && frag[n - 1] == '{') n -= 2;
    else if (frag[n - 1] == ':') n--;
    for (const char *const *k = db_key_suffixes; *k; k++)
        if (strlen(*k) == n && memcmp(*k, frag, n) == 0) return 1;
    return 0;
}

static void scripts_build_only_listed_keys(void **state)
{
    (void)state;
    static const char needle[] = "P .. '";
    int seen = 0;
    for (size_t i = 0; i < NSCRIPTS; i++) {
        for (const char *p = scripts[i].text; (p = strstr(p, needle)); p++) {
            const char *frag = p + strlen(needle), *end = strchr(frag, '\'');
            assert_non_null(end);
            if (!listed(frag, (size_t)(end - frag)))
                fail_msg("%s builds P .. '%.*s', which redis/keys.h does not list",
                         scripts[i].file, (int)(end - frag), frag);
            seen++;
        }
    }
    assert_true(seen > 20); /* the check looked at the scripts' keys at all */
    /* and the check itself refuses an unlisted name */
    assert_false(listed(":nonesuch", 9));
    assert_true(listed(":dispatch:qwait:{", 17));
}

static void key_helpers(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(db_key(b, sizeof b, "p", DB_KEY_OUTBOX), "p:outbox");
    assert_string_equal(db_key_tagged(b, sizeof b, "p", DB_KEY_MSG, "x1"), "p:msg:{x1}");
    assert_string_equal(db_key(b, 6, "p", DB_KEY_EVENTS), "p:eve"); /* cut, terminated */
}

/* The plain ingest script as the store loads it (behind customer_seen.lua and dedupe.lua) writes the events
 * and then the customers passed after '', newest message only, as "<time> <message id>"; a
 * hash of the earlier layout is replaced by the newer of the two; a customer key of another
 * type is skipped without failing the run, whose events are written by then. */
static void ingest_run_writes_its_customers(void **state)
{
    (void)state;
    redisContext *c = db_test_redis_ctx(R);
    size_t lc = strlen(db_lua_customer_seen), ld = strlen(db_lua_dedupe);
    size_t lp = strlen(db_lua_ingest_plain);
    char *body = malloc(lc + ld + lp + 1);
    assert_non_null(body);
    memcpy(body, db_lua_customer_seen, lc);
    memcpy(body + lc, db_lua_dedupe, ld);
    memcpy(body + lc + ld, db_lua_ingest_plain, lp + 1);
    freeReplyObject(redisCommand(c, "RPUSH t:customer:{bad} x"));
    freeReplyObject(redisCommand(c, "HSET t:customer:{old} id m8 ts 8"));
    freeReplyObject(redisCommand(c, "HSET t:customer:{older} id m3 ts 3"));
    redisReply *r = redisCommand(c, "EVAL %s 0 60 t:events %s t:d1 {\"a\":1} %s 600 "
                                    "t:customer:{bad} m1 5 t:customer:{ok} m2 7 "
                                    "t:customer:{old} m5 5 t:customer:{older} m4 4",
                                 body, "", "");
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER) fail_msg("ingest run: %s", r->str ? r->str : "?");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    /* an older message of the same customer changes nothing */
    r = redisCommand(c, "EVAL %s 0 60 t:events %s t:d2 {\"a\":2} %s 600 t:customer:{ok} m0 6",
                     body, "", "");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(c, "XLEN t:events");
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    static const char *const want[][2] = {
        {"t:customer:{ok}", "7 m2"}, {"t:customer:{old}", "8 m8"}, {"t:customer:{older}", "4 m4"}};
    for (size_t i = 0; i < 3; i++) {
        r = redisCommand(c, "GET %s", want[i][0]);
        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want[i][1]) != 0)
            fail_msg("%s: want %s, got %s", want[i][0], want[i][1],
                     r->type == REDIS_REPLY_STRING ? r->str : "no string");
        freeReplyObject(r);
        r = redisCommand(c, "TTL %s", want[i][0]);
        assert_true(r->integer > 0 && r->integer <= 600);
        freeReplyObject(r);
    }
    r = redisCommand(c, "LRANGE t:customer:{bad} 0 -1");
    assert_int_equal((int)r->elements, 1);
    assert_string_equal(r->element[0]->str, "x");
    freeReplyObject(r);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedded_text_is_the_file),
        cmocka_unit_test(every_file_is_embedded),
        cmocka_unit_test(every_script_compiles),
        cmocka_unit_test(scripts_build_only_listed_keys),
        cmocka_unit_test(key_helpers),
        cmocka_unit_test(ingest_run_writes_its_customers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
